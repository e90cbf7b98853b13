//! `crds/` must be exactly what `zonegate crd` prints: regenerate with `make crds`.

#[test]
fn committed_crd_is_current() {
    let committed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/crds/dnszones.zonegate.dev.yaml"
    ))
    .expect("crds/dnszones.zonegate.dev.yaml exists");
    let generated = zonegate::crdgen::crd_yaml();
    assert!(
        committed == generated,
        "crds/dnszones.zonegate.dev.yaml is stale: run `make crds` (cargo run -q -- crd > crds/dnszones.zonegate.dev.yaml) and commit it"
    );
}
