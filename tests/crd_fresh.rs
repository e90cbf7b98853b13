//! `crds/` must be exactly what `zonegate crd` prints: regenerate with `make crds`.

#[test]
fn committed_crds_are_current() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/crds");
    for (file, generated) in zonegate::crdgen::crds() {
        let committed = std::fs::read_to_string(format!("{dir}/{file}")).unwrap_or_default();
        assert!(
            committed == generated,
            "crds/{file} is stale or missing: run `make crds` and commit it"
        );
    }
}
