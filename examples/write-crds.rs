//! Writes every CRD into `crds/` (used by `make crds`).
fn main() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/crds");
    for (file, yaml) in zonegate::crdgen::crds() {
        std::fs::write(format!("{dir}/{file}"), yaml).expect("write crds/");
        println!("wrote crds/{file}");
    }
}
