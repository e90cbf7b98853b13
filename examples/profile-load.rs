//! Times the stages of loading a manifest tree (used while tuning; `cargo run --release
//! --example profile-load -- DIR`).
use std::time::Instant;
fn main() {
    let dir = std::env::args().nth(1).expect("DIR");
    let t = Instant::now();
    let mut loader = zonegate::feed::files::ManifestLoader::new(&dir);
    let loaded = loader.load();
    let t_load = t.elapsed();
    let t = Instant::now();
    let mut reports = zonegate::publish::compile_all(&loaded.store);
    let t_compile = t.elapsed();
    let t = Instant::now();
    let mut keeper = zonegate::serial::SerialKeeper::new(None);
    let set = zonegate::publish::build_zone_set(&mut reports, &mut keeper, 1);
    let t_build = t.elapsed();
    let t = Instant::now();
    let again = loader.load();
    let t_reload = t.elapsed();
    println!(
        "load {t_load:?} compile {t_compile:?} build {t_build:?} reload-unchanged {t_reload:?} zones {} objects {}",
        set.len(),
        again.store.objects.len()
    );
}
