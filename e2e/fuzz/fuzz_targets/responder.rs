//! Fuzz target `responder`: arbitrary bytes as a DNS request, over UDP and TCP, against the
//! quickstart zone (config/samples/quickstart, loaded as `zonegate serve --manifests` does).
//! Fails on a panic, on an answer that does not parse back with hickory-proto, on an answer
//! whose id is not the request's, and on a UDP answer over the largest payload we honour.
#![no_main]

use hickory_proto::op::Message;
use libfuzzer_sys::fuzz_target;
use std::path::Path;
use std::sync::LazyLock;
use zonegate::dns::ZoneSet;
use zonegate::dns::responder::{MAX_UDP_PAYLOAD, Transport, respond};
use zonegate::feed::files::ManifestLoader;
use zonegate::publish::Publisher;
use zonegate::serial::SerialKeeper;

static ZONES: LazyLock<ZoneSet> = LazyLock::new(|| {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/samples/quickstart");
    let loaded = ManifestLoader::new(&dir).load();
    assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
    let mut publisher = Publisher::default();
    let mut reports = publisher.compile_all(&loaded.store);
    let set = publisher.build_zone_set(&mut reports, &mut SerialKeeper::new(None), 1_800_000_000);
    assert!(!set.is_empty(), "the quickstart compiled to no zone");
    set
});

fuzz_target!(|request: &[u8]| {
    let zones = &*ZONES;
    for transport in [Transport::Udp, Transport::Tcp] {
        let Some((answer, _summary)) = respond(zones, request, transport) else {
            continue;
        };
        let parsed = Message::from_vec(&answer).unwrap_or_else(|e| {
            panic!("{transport:?}: answer does not parse: {e}; answer {answer:02x?}")
        });
        if request.len() >= 12 {
            let id = u16::from_be_bytes([request[0], request[1]]);
            assert_eq!(parsed.metadata.id, id, "{transport:?}: answer id");
        }
        if transport == Transport::Udp {
            assert!(
                answer.len() <= usize::from(MAX_UDP_PAYLOAD),
                "UDP answer of {} bytes",
                answer.len()
            );
        }
    }
});
