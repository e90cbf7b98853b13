//! Times the stages of loading a manifest tree (used while tuning; `cargo run --release
//! --example profile-load -- DIR [FILE FROM TO]`): load, compile, index (signing included when
//! `PROFILE_DNSSEC=1`: every zone with a new P-256 key); then, with FILE (one of the tree's
//! manifests), FROM replaced by TO in it and an incremental reload, 5 times (back and forth).
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
    if std::env::var("PROFILE_DNSSEC").is_ok_and(|v| v == "1") {
        use zonegate::dnssec::keys::{ACTIVE_KEY, Algorithm, SigningKey, ZoneKeys};
        for r in &reports {
            let pem = SigningKey::generate(Algorithm::EcdsaP256Sha256)
                .expect("a key")
                .to_pkcs8_pem();
            let keys =
                ZoneKeys::from_entries(&r.zone, |k| (k == ACTIVE_KEY).then_some(pem.as_bytes()))
                    .expect("keys");
            publisher.set_keys(&r.zone, Some(std::sync::Arc::new(keys)));
        }
    }
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
        let changed = text.replacen(&from, &to, 1);
        for round in 0..5u64 {
            let now = if round % 2 == 0 { &changed } else { &text };
            std::fs::write(&file, now).expect("write FILE");
            let t = Instant::now();
            let loaded = loader.load();
            let t_load = t.elapsed();
            let t = Instant::now();
            let mut reports = publisher.compile_all(&loaded.store);
            let t_compile = t.elapsed();
            let t = Instant::now();
            let set = publisher.build_zone_set(&mut reports, &mut keeper, 2 + round);
            let t_build = t.elapsed();
            println!(
                "after touching {file}: load {t_load:?} compile {t_compile:?} build {t_build:?} zones {}",
                set.len()
            );
        }
        std::fs::write(&file, text).expect("restore FILE");
    }
}
