//! DNS behaviour of `zonegate serve --manifests`, over real UDP and TCP sockets against the
//! running binary, with hickory's client and with raw wire bytes.

mod support;
use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::{RData, RecordType};
use sockets::*;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};
use support::sockets;

/// An extra zone with distinct TTLs and a large RRset, next to the quickstart.
const EXTRA: &str = r#"
apiVersion: zonegate.dev/v1alpha1
kind: DNSZone
metadata: {name: other, namespace: other}
spec:
  domain: other.example.org
  ttl: 120
  soa: {negativeTtl: 30}
  records:
    - name: big
      type: TXT
      values: [BIG]
    - name: a-only
      type: A
      values: ["192.0.2.7"]
"#;

fn extra_zone() -> String {
    let long: Vec<String> = (0..40)
        .map(|i| format!("'\"{i:02}-{}\"'", "x".repeat(50)))
        .collect();
    EXTRA.replace("[BIG]", &format!("[{}]", long.join(", ")))
}

fn setup() -> (TempDir, Server) {
    let dir = quickstart();
    dir.write("other.yaml", &extra_zone());
    let server = Server::start(dir.path());
    (dir, server)
}

fn addrs(m: &Message, t: RecordType) -> Vec<IpAddr> {
    let mut v: Vec<IpAddr> = m
        .answers
        .iter()
        .filter(|r| r.record_type() == t)
        .filter_map(|r| r.data.ip_addr())
        .collect();
    v.sort();
    v
}

fn soa_serial(m: &Message) -> u32 {
    m.answers
        .iter()
        .chain(m.authorities.iter())
        .find_map(|r| match &r.data {
            RData::SOA(s) => Some(s.serial),
            _ => None,
        })
        .expect("an SOA record")
}

#[tokio::test(flavor = "multi_thread")]
async fn answers_sources_and_static_records_over_udp_and_tcp() {
    let (_dir, s) = setup();
    for tcp in [false, true] {
        let mut c = if tcp {
            hickory_tcp(s.dns).await
        } else {
            hickory_udp(s.dns).await
        };
        let m = ask(&mut c, "www.acme.example.com.", RecordType::A).await;
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert!(m.metadata.authoritative, "AA set");
        assert!(!m.metadata.recursion_available, "RA clear");
        assert_eq!(
            addrs(&m, RecordType::A),
            vec!["198.51.100.10".parse::<IpAddr>().unwrap()]
        );
        let m = ask(&mut c, "www.acme.example.com.", RecordType::AAAA).await;
        assert_eq!(
            addrs(&m, RecordType::AAAA),
            vec!["2001:db8::10".parse::<IpAddr>().unwrap()]
        );
        // Service by annotation and by name.namespace.domain
        for n in ["api.acme.example.com.", "api.acme.acme.example.com."] {
            let m = ask(&mut c, n, RecordType::A).await;
            assert_eq!(
                addrs(&m, RecordType::A),
                vec!["198.51.100.20".parse::<IpAddr>().unwrap()],
                "{n}"
            );
        }
        // HTTPRoute through a Gateway in another namespace
        let m = ask(&mut c, "app.acme.example.com.", RecordType::A).await;
        assert_eq!(
            addrs(&m, RecordType::A),
            vec!["198.51.100.30".parse::<IpAddr>().unwrap()]
        );
        // DNSEndpoint with its own TTL
        let m = ask(&mut c, "legacy.acme.example.com.", RecordType::A).await;
        assert_eq!(m.answers.len(), 2);
        assert!(m.answers.iter().all(|r| r.ttl == 300), "recordTTL honoured");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn apex_soa_ns_and_glue() {
    let (_dir, s) = setup();
    let mut c = hickory_udp(s.dns).await;
    let m = ask(&mut c, "acme.example.com.", RecordType::NS).await;
    let mut ns: Vec<String> = m.answers.iter().map(|r| r.data.to_string()).collect();
    ns.sort();
    assert_eq!(ns, vec!["ns1.acme.example.com.", "ns2.acme.example.com."]);
    let glue: Vec<String> = m
        .additionals
        .iter()
        .filter_map(|r| r.data.ip_addr())
        .map(|i| i.to_string())
        .collect();
    for g in ["203.0.113.1", "203.0.113.2", "2001:db8:53::2"] {
        assert!(glue.contains(&g.to_string()), "glue {g} in {glue:?}");
    }
    let m = ask(&mut c, "acme.example.com.", RecordType::SOA).await;
    assert_eq!(m.answers.len(), 1);
    let RData::SOA(soa) = &m.answers[0].data else {
        panic!("SOA")
    };
    assert_eq!(soa.mname.to_ascii(), "ns1.acme.example.com.");
    assert_eq!(soa.rname.to_ascii(), "hostmaster.acme.example.com.");
    assert!(
        soa.serial > 1_600_000_000,
        "time-based serial, got {}",
        soa.serial
    );
    let m = ask(&mut c, "ns2.acme.example.com.", RecordType::AAAA).await;
    assert_eq!(
        addrs(&m, RecordType::AAAA),
        vec!["2001:db8:53::2".parse::<IpAddr>().unwrap()]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn negative_answers_carry_soa_with_negative_ttl() {
    let (_dir, s) = setup();
    let mut c = hickory_udp(s.dns).await;
    // NXDOMAIN
    let m = ask(&mut c, "nope.other.example.org.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert!(m.metadata.authoritative);
    assert!(m.answers.is_empty());
    assert_eq!(m.authorities.len(), 1);
    assert_eq!(m.authorities[0].record_type(), RecordType::SOA);
    assert_eq!(m.authorities[0].ttl, 30, "min(SOA TTL 120, negativeTtl 30)");
    // NODATA: the name exists with another type
    let m = ask(&mut c, "a-only.other.example.org.", RecordType::AAAA).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.answers.is_empty());
    assert_eq!(m.authorities[0].record_type(), RecordType::SOA);
    // NODATA for empty non-terminals (RFC 8020): _tcp exists because _sip._tcp does
    for ent in ["_tcp.acme.example.com.", "acme.acme.example.com."] {
        let m = ask(&mut c, ent, RecordType::A).await;
        assert_eq!(
            m.metadata.response_code,
            ResponseCode::NoError,
            "{ent} is an empty non-terminal"
        );
        assert!(m.answers.is_empty());
        assert_eq!(m.authorities[0].record_type(), RecordType::SOA);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn cname_chain_wildcard_and_additional_data() {
    let (_dir, s) = setup();
    let mut c = hickory_udp(s.dns).await;
    let m = ask(&mut c, "docs.acme.example.com.", RecordType::A).await;
    assert_eq!(m.answers[0].record_type(), RecordType::CNAME);
    assert_eq!(m.answers[0].data.to_string(), "www.acme.example.com.");
    assert_eq!(
        addrs(&m, RecordType::A),
        vec!["198.51.100.10".parse::<IpAddr>().unwrap()],
        "CNAME followed in zone"
    );
    // out-of-zone CNAME target is left to the resolver
    let m = ask(&mut c, "status.acme.example.com.", RecordType::A).await;
    assert_eq!(m.answers.len(), 1);
    assert_eq!(m.answers[0].record_type(), RecordType::CNAME);
    // wildcard of any depth below preview, owner is the query name
    for n in [
        "x.preview.acme.example.com.",
        "a.b.preview.acme.example.com.",
    ] {
        let m = ask(&mut c, n, RecordType::A).await;
        assert_eq!(
            addrs(&m, RecordType::A),
            vec!["192.0.2.99".parse::<IpAddr>().unwrap()],
            "{n}"
        );
        assert_eq!(m.answers[0].name.to_ascii(), n);
    }
    // MX with the exchange's address as additional data
    let m = ask(&mut c, "acme.example.com.", RecordType::MX).await;
    assert_eq!(m.answers.len(), 1);
    assert!(
        m.additionals
            .iter()
            .any(|r| r.data.ip_addr() == Some("192.0.2.25".parse().unwrap()))
    );
    let m = ask(&mut c, "_sip._tcp.acme.example.com.", RecordType::SRV).await;
    assert_eq!(m.answers.len(), 1);
    assert!(
        m.additionals
            .iter()
            .any(|r| r.data.ip_addr() == Some("2001:db8::5060".parse().unwrap()))
    );
    let m = ask(&mut c, "acme.example.com.", RecordType::CAA).await;
    assert_eq!(m.answers.len(), 1);
    let m = ask(&mut c, "_acme-challenge.acme.example.com.", RecordType::TXT).await;
    assert_eq!(m.answers[0].ttl, 30);
}

#[tokio::test(flavor = "multi_thread")]
async fn referral_for_delegated_child() {
    let (_dir, s) = setup();
    let mut c = hickory_udp(s.dns).await;
    let m = ask(&mut c, "host.lab.acme.example.com.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(!m.metadata.authoritative, "referrals are not authoritative");
    assert!(m.answers.is_empty());
    assert_eq!(m.authorities.len(), 1);
    assert_eq!(m.authorities[0].record_type(), RecordType::NS);
    assert_eq!(m.authorities[0].name.to_ascii(), "lab.acme.example.com.");
    assert_eq!(
        m.additionals
            .iter()
            .filter_map(|r| r.data.ip_addr())
            .collect::<Vec<_>>(),
        vec!["192.0.2.53".parse::<IpAddr>().unwrap()]
    );
}

#[test]
fn refused_outside_served_zones_never_recursion() {
    let (_dir, s) = setup();
    for name in ["www.example.net.", "example.com.", "."] {
        let m = udp(s.dns, &query_msg(name, RecordType::A, None));
        assert_eq!(m.metadata.response_code, ResponseCode::Refused, "{name}");
        assert!(!m.metadata.recursion_available);
        assert!(!m.metadata.authoritative);
        assert!(m.answers.is_empty() && m.authorities.is_empty());
    }
}

#[test]
fn question_echoed_as_sent_and_matching_is_case_insensitive() {
    let (_dir, s) = setup();
    let q = query_msg("WwW.AcMe.ExAmPlE.CoM.", RecordType::A, None);
    let raw = udp_raw(s.dns, &q.to_vec().unwrap(), Duration::from_secs(3)).unwrap();
    let m = Message::from_vec(&raw).unwrap();
    assert_eq!(m.metadata.id, q.metadata.id);
    assert_eq!(
        m.queries[0].name().to_string(),
        "WwW.AcMe.ExAmPlE.CoM.",
        "case preserved"
    );
    // byte-exact question section
    let qlen = q.to_vec().unwrap().len() - 12;
    assert_eq!(&raw[12..12 + qlen], &q.to_vec().unwrap()[12..]);
    assert_eq!(m.answers.len(), 1);
}

#[test]
fn edns_payload_truncation_and_tcp_fallback() {
    let (_dir, s) = setup();
    // EDNS answered with OPT advertising 1232
    let m = udp(
        s.dns,
        &query_msg("www.acme.example.com.", RecordType::A, Some(4096)),
    );
    let e = m.edns.as_ref().expect("OPT echoed");
    assert_eq!(e.max_payload(), 1232);
    // 40 TXT strings of ~54 bytes: more than 1232 bytes
    let big = query_msg("big.other.example.org.", RecordType::TXT, Some(4096));
    let m = udp(s.dns, &big);
    assert!(m.metadata.truncation, "TC set over UDP");
    assert!(m.answers.is_empty());
    let raw = udp_raw(s.dns, &big.to_vec().unwrap(), Duration::from_secs(3)).unwrap();
    assert!(raw.len() <= 1232);
    let m = tcp(s.dns, &big);
    assert!(!m.metadata.truncation);
    assert_eq!(m.answers.len(), 40, "whole answer over TCP");
    // without EDNS the limit is 512
    let m = udp(
        s.dns,
        &query_msg("acme.example.com.", RecordType::TXT, None),
    );
    assert!(!m.metadata.truncation);
    let m = udp(
        s.dns,
        &query_msg("big.other.example.org.", RecordType::TXT, None),
    );
    assert!(m.metadata.truncation);
}

#[test]
fn badvers_for_edns_versions_above_zero() {
    let (_dir, s) = setup();
    let mut q = query_msg("www.acme.example.com.", RecordType::A, Some(1232));
    q.edns.as_mut().unwrap().set_version(1);
    let m = udp(s.dns, &q);
    // 16 is BADVERS in an OPT context (hickory decodes the shared code point as BADSIG)
    assert_eq!(
        u16::from(m.metadata.response_code),
        16,
        "{:?}",
        m.metadata.response_code
    );
    assert!(m.answers.is_empty());
    assert_eq!(m.edns.as_ref().map(|e| e.version()), Some(0));
}

#[test]
fn any_is_answered_minimally() {
    let (_dir, s) = setup();
    let m = udp(
        s.dns,
        &query_msg("acme.example.com.", RecordType::ANY, Some(1232)),
    );
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(!m.answers.is_empty());
    let t = m.answers[0].record_type();
    assert!(
        m.answers.iter().all(|r| r.record_type() == t),
        "one RRset only (RFC 8482)"
    );
}

#[test]
fn formerr_notimp_refused_and_silence() {
    let (_dir, s) = setup();
    // two questions: FORMERR
    let mut q = query_msg("www.acme.example.com.", RecordType::A, None);
    q.add_query(q.queries[0].clone());
    let m = udp(s.dns, &q);
    assert_eq!(m.metadata.response_code, ResponseCode::FormErr);
    // header says 1 question, body is garbage: FORMERR with the same id
    let mut raw = query_msg("www.acme.example.com.", RecordType::A, None)
        .to_vec()
        .unwrap();
    let id = [raw[0], raw[1]];
    raw.truncate(16);
    let reply = udp_raw(s.dns, &raw, Duration::from_secs(3)).expect("FORMERR reply");
    let m = Message::from_vec(&reply).unwrap();
    assert_eq!(m.metadata.id, u16::from_be_bytes(id));
    assert_eq!(m.metadata.response_code, ResponseCode::FormErr);
    // opcode STATUS: NOTIMP
    let mut q = query_msg("www.acme.example.com.", RecordType::A, None);
    q.metadata.op_code = OpCode::Status;
    assert_eq!(udp(s.dns, &q).metadata.response_code, ResponseCode::NotImp);
    // zone transfers are refused
    let q = query_msg("acme.example.com.", RecordType::AXFR, None);
    assert_eq!(tcp(s.dns, &q).metadata.response_code, ResponseCode::Refused);
    // a response is never answered; short junk is ignored
    let mut q = query_msg("www.acme.example.com.", RecordType::A, None);
    q.metadata.message_type = MessageType::Response;
    assert!(udp_raw(s.dns, &q.to_vec().unwrap(), Duration::from_millis(300)).is_none());
    assert!(udp_raw(s.dns, &[1, 2, 3], Duration::from_millis(300)).is_none());
}

#[test]
fn survives_arbitrary_bytes() {
    let (_dir, s) = setup();
    let valid = query_msg("www.acme.example.com.", RecordType::A, Some(1232))
        .to_vec()
        .unwrap();
    let mut x: u64 = 0x9e3779b97f4a7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..3000 {
        let mut b = if i % 2 == 0 {
            valid.clone()
        } else {
            vec![0u8; (next() % 300) as usize]
        };
        let flips = 1 + next() % 8;
        for _ in 0..flips {
            if b.is_empty() {
                break;
            }
            let p = (next() as usize) % b.len();
            b[p] = next() as u8;
        }
        sock.send_to(&b, s.dns).unwrap();
        if i % 500 == 0 {
            let _ = tcp_raw(s.dns, &b); // and over TCP
        }
    }
    std::thread::sleep(Duration::from_millis(200));
    let m = udp(
        s.dns,
        &query_msg("www.acme.example.com.", RecordType::A, None),
    );
    assert_eq!(m.answers.len(), 1, "still answering after garbage");
    let m = tcp(
        s.dns,
        &query_msg("www.acme.example.com.", RecordType::A, None),
    );
    assert_eq!(m.answers.len(), 1, "TCP still answering after garbage");
}

fn wait_for_answer(dns: SocketAddr, name: &str, want: Option<&str>, within: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let m = udp(dns, &query_msg(name, RecordType::A, None));
        let got = m
            .answers
            .iter()
            .find_map(|r| r.data.ip_addr())
            .map(|i| i.to_string());
        if got.as_deref() == want {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "{name}: wanted {want:?}, still {got:?} after {within:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn reloads_on_change_and_keeps_last_good_data() {
    let (dir, s) = setup();
    let before = soa_serial(&udp(
        s.dns,
        &query_msg("acme.example.com.", RecordType::SOA, None),
    ));
    let other = || {
        soa_serial(&udp(
            s.dns,
            &query_msg("other.example.org.", RecordType::SOA, None),
        ))
    };
    let other_before = other();
    std::thread::sleep(Duration::from_millis(1100)); // next second: a new file mtime
    let ing = std::fs::read_to_string(dir.path().join("ingress.yaml")).unwrap();
    dir.write(
        "ingress.yaml",
        &ing.replace("198.51.100.10", "198.51.100.11"),
    );
    let took = wait_for_answer(
        s.dns,
        "www.acme.example.com.",
        Some("198.51.100.11"),
        Duration::from_secs(5),
    );
    assert!(took < Duration::from_secs(2), "change applied in {took:?}");
    let after = soa_serial(&udp(
        s.dns,
        &query_msg("acme.example.com.", RecordType::SOA, None),
    ));
    assert!(after > before, "serial increased: {before} -> {after}");
    assert_eq!(other(), other_before, "the unchanged zone keeps its serial");
    // a broken file: the last good data keeps being served
    dir.write(
        "ingress.yaml",
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: [broken\n",
    );
    std::thread::sleep(Duration::from_millis(300));
    wait_for_answer(
        s.dns,
        "www.acme.example.com.",
        Some("198.51.100.11"),
        Duration::from_secs(1),
    );
    let (_, metrics) = http_get(s.http, "/metrics").unwrap();
    assert!(
        metrics.contains("zonegate_reload_errors_total 1"),
        "{metrics}"
    );
    // removing an object removes its name
    std::fs::remove_file(dir.path().join("ingress.yaml")).unwrap();
    wait_for_answer(s.dns, "www.acme.example.com.", None, Duration::from_secs(5));
}

#[test]
fn two_servers_on_the_same_tree_publish_the_same_serial() {
    let dir = quickstart();
    let a = Server::start(dir.path());
    std::thread::sleep(Duration::from_millis(1100));
    let b = Server::start(dir.path());
    let q = query_msg("acme.example.com.", RecordType::SOA, None);
    assert_eq!(soa_serial(&udp(a.dns, &q)), soa_serial(&udp(b.dns, &q)));
    drop(a);
    let c = Server::start(dir.path());
    assert_eq!(
        soa_serial(&udp(b.dns, &q)),
        soa_serial(&udp(c.dns, &q)),
        "restart keeps the serial"
    );
}

#[test]
fn health_readiness_and_metrics() {
    let (_dir, s) = setup();
    assert_eq!(http_get(s.http, "/healthz").unwrap().0, 200);
    assert_eq!(http_get(s.http, "/readyz").unwrap().0, 200);
    assert_eq!(http_get(s.http, "/nope").unwrap().0, 404);
    udp(
        s.dns,
        &query_msg("www.acme.example.com.", RecordType::A, None),
    );
    udp(
        s.dns,
        &query_msg("nope.acme.example.com.", RecordType::A, None),
    );
    // per-thread counters reach /metrics within a second
    let want = r#"zonegate_dns_queries_total{zone="acme.example.com.",qtype="A",rcode="No Error",transport="udp"} 1"#;
    let nx = r#"zonegate_dns_queries_total{zone="acme.example.com.",qtype="A",rcode="Non-Existent Domain",transport="udp"} 1"#;
    let t0 = Instant::now();
    let body = loop {
        let (code, body) = http_get(s.http, "/metrics").unwrap();
        assert_eq!(code, 200);
        if body.contains(want) && body.contains(nx) {
            break body;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(3),
            "query counters missing: {body}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        body.contains(r#"zonegate_zone_records{zone="acme.example.com."}"#),
        "{body}"
    );
    assert!(
        body.contains("zonegate_dns_query_duration_seconds_bucket"),
        "{body}"
    );
    // idle: reading the manifests must not itself trigger reloads
    let reloads = |b: &str| {
        b.lines()
            .find(|l| l.starts_with("zonegate_reloads_total"))
            .map(str::to_string)
    };
    std::thread::sleep(Duration::from_millis(500));
    let first = reloads(&http_get(s.http, "/metrics").unwrap().1);
    std::thread::sleep(Duration::from_millis(500));
    let second = reloads(&http_get(s.http, "/metrics").unwrap().1);
    assert_eq!(first, second, "no reloads without changes");
    assert!(first.is_some());
}
