//! Times the stages of loading a manifest tree (used while tuning; `cargo run --release
//! --example profile-load -- DIR [FILE FROM TO]`): load, compile, index; then, with FILE (one
//! of the tree's manifests), FROM replaced by TO in it and an incremental reload.
use std::time::Instant;

/// Resident set size in MiB (Linux).
fn rss_mib() -> f64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: f64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0.0);
    pages * 4096.0 / (1024.0 * 1024.0)
}

fn main() {
    let dir = std::env::args().nth(1).expect("DIR");
    let touch = std::env::args().nth(2);
    let t = Instant::now();
    let mut loader = zonegate::feed::files::ManifestLoader::new(&dir);
    let loaded = loader.load();
    let t_load = t.elapsed();
    let rss_load = rss_mib();
    let t = Instant::now();
    let mut publisher = zonegate::publish::Publisher::default();
    let mut reports = publisher.compile_all(&loaded.store);
    let t_compile = t.elapsed();
    let rss_compile = rss_mib();
    let t = Instant::now();
    let mut keeper = zonegate::serial::SerialKeeper::new(None);
    let set = publisher.build_zone_set(&mut reports, &mut keeper, 1);
    let t_build = t.elapsed();
    println!(
        "load {t_load:?} compile {t_compile:?} build {t_build:?} zones {} objects {}",
        set.len(),
        loaded.store.objects.len()
    );
    println!(
        "RSS MiB after load {rss_load:.1}, compile {rss_compile:.1}, build {:.1}",
        rss_mib()
    );
    if let Some(file) = touch {
        let from = std::env::args().nth(3).expect("FROM");
        let to = std::env::args().nth(4).expect("TO");
        let text = std::fs::read_to_string(&file).expect("FILE");
        std::fs::write(&file, text.replacen(&from, &to, 1)).expect("write FILE");
        let t = Instant::now();
        let loaded = loader.load();
        let t_load = t.elapsed();
        let t = Instant::now();
        let mut reports = publisher.compile_all(&loaded.store);
        let t_compile = t.elapsed();
        let t = Instant::now();
        let set = publisher.build_zone_set(&mut reports, &mut keeper, 2);
        let t_build = t.elapsed();
        std::fs::write(&file, text).expect("restore FILE");
        println!(
            "after touching {file}: load {t_load:?} compile {t_compile:?} build {t_build:?} zones {}",
            set.len()
        );
    }
}
