//! Fuzz target `manifests`: arbitrary bytes as one manifest file, loaded and compiled as
//! `zonegate check` and `serve --manifests` do (ManifestLoader, Publisher). Fails on a panic,
//! on a load problem without a location or message, and on a compiled zone that renders
//! without `$ORIGIN` or answers a query with bytes that do not parse back.
#![no_main]

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};
use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::LazyLock;
use zonegate::dns::responder::{Transport, respond};
use zonegate::feed::files::ManifestLoader;
use zonegate::publish::Publisher;
use zonegate::serial::SerialKeeper;

/// One directory per fuzzing process, holding the one file under test.
static DIR: LazyLock<PathBuf> = LazyLock::new(|| {
    let d = std::env::temp_dir().join(format!("zonegate-fuzz-manifests-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
});

fuzz_target!(|text: &[u8]| {
    let dir = &*DIR;
    std::fs::write(dir.join("input.yaml"), text).expect("write the input");
    let loaded = ManifestLoader::new(dir).load();
    for p in &loaded.problems {
        assert!(!p.location.is_empty(), "problem without location: {p}");
        assert!(!p.message.is_empty(), "problem without message: {p}");
    }
    let mut publisher = Publisher::default();
    let mut reports = publisher.compile_all(&loaded.store);
    let set = publisher.build_zone_set(&mut reports, &mut SerialKeeper::new(None), 1_800_000_000);
    for r in &reports {
        if let (Some(data), Some(serial)) = (publisher.data(&r.zone), r.serial) {
            let text = zonegate::render::master_file(data, serial);
            assert!(text.starts_with("$ORIGIN "), "render of {}", r.zone);
        }
    }
    for zone in set.zones() {
        let apex = zone.origin().clone();
        let www = Name::from_ascii("www").unwrap().append_domain(&apex);
        for name in [Some(apex), www.ok()].into_iter().flatten() {
            for qtype in [
                RecordType::ANY,
                RecordType::A,
                RecordType::TXT,
                RecordType::SOA,
            ] {
                let mut q = Message::new(7, MessageType::Query, OpCode::Query);
                q.add_query(Query::query(name.clone(), qtype));
                let bytes = q.to_vec().expect("encode the query");
                for t in [Transport::Udp, Transport::Tcp] {
                    let (resp, _) = respond(&set, &bytes, t)
                        .unwrap_or_else(|| panic!("no answer to {name} {qtype} over {t:?}"));
                    let parsed = Message::from_vec(&resp).unwrap_or_else(|e| {
                        panic!("{name} {qtype} over {t:?}: answer does not parse: {e}")
                    });
                    assert_eq!(parsed.metadata.id, 7);
                }
            }
        }
    }
});
