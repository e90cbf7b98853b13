//! The server's protections and identity over real sockets with real clients: NSID and the
//! CHAOS names (dig, kdig), DNS cookies (dig +cookie), the query ACL on UDP and TCP, and UDP
//! response rate limiting under a flood from one client (dropped and slipped responses counted,
//! TCP untouched, another client answered in full, a client with a valid cookie not limited).

mod support;
use hickory_proto::op::{Edns, Message};
use hickory_proto::rr::RecordType;
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
use std::net::{SocketAddr, UdpSocket};
use std::process::Command;
use std::time::{Duration, Instant};
use support::sockets::*;

fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output().expect("client runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn dig(addr: SocketAddr, args: &[&str]) -> String {
    let port = addr.port().to_string();
    let at = format!("@{}", addr.ip());
    let mut all = vec![at.as_str(), "-p", &port, "+time=2", "+tries=1"];
    all.extend_from_slice(args);
    run("dig", &all)
}

fn metric(s: &Server, line_prefix: &str) -> f64 {
    let (_, body) = http_get(s.http, "/metrics").unwrap();
    body.lines()
        .find_map(|l| l.strip_prefix(line_prefix))
        .map(|v| v.trim().parse::<f64>().unwrap())
        .unwrap_or(0.0)
}

/// NSID and the CHAOS identity names with dig and kdig; REFUSED where nothing is configured.
#[test]
fn nsid_and_chaos_identity() {
    let zones = quickstart();
    let s = Server::start_with(
        zones.path(),
        &["--nsid", "ns-test-1", "--version", "zonegate-e2e"],
    );
    let out = run(
        "kdig",
        &[
            &format!("@{}", s.dns.ip()),
            "-p",
            &s.dns.port().to_string(),
            "+nsid",
            "www.acme.example.com",
            "A",
        ],
    );
    assert!(
        out.contains("NSID: 6e 73 2d 74 65 73 74 2d 31") || out.contains("ns-test-1"),
        "{out}"
    );
    let out = dig(s.dns, &["+short", "CH", "TXT", "id.server"]);
    assert_eq!(out.trim(), "\"ns-test-1\"");
    let out = dig(s.dns, &["+short", "CH", "TXT", "hostname.bind"]);
    assert_eq!(out.trim(), "\"ns-test-1\"");
    let out = dig(s.dns, &["+short", "CH", "TXT", "version.bind"]);
    assert_eq!(out.trim(), "\"zonegate-e2e\"");
    let out = dig(s.dns, &["CH", "TXT", "authors.bind"]);
    assert!(out.contains("status: REFUSED"), "{out}");
    // a server without --nsid: no NSID option, id.server refused
    let plain = Server::start(zones.path());
    let out = dig(plain.dns, &["+nsid", "www.acme.example.com", "A"]);
    assert!(
        out.contains("status: NOERROR") && !out.contains("NSID"),
        "{out}"
    );
    let out = dig(plain.dns, &["CH", "TXT", "id.server"]);
    assert!(out.contains("status: REFUSED"), "{out}");
}

/// dig sends a client cookie and gets a server cookie back; sent back, it is "good".
#[test]
fn cookies_with_dig() {
    let zones = quickstart();
    let s = Server::start(zones.path());
    let out = dig(s.dns, &["+cookie", "www.acme.example.com", "A"]);
    let line = out
        .lines()
        .find(|l| l.starts_with("; COOKIE:"))
        .unwrap_or_else(|| panic!("no COOKIE in the answer:\n{out}"));
    // "; COOKIE: <16 hex client><32 hex server> (good)"
    let hex: String = line["; COOKIE: ".len()..]
        .chars()
        .take_while(|c| c.is_ascii_hexdigit())
        .collect();
    assert_eq!(hex.len(), 48, "client and server cookie: {line}");
    assert!(line.contains("(good)"), "{line}");
    let again = dig(
        s.dns,
        &[&format!("+cookie={hex}"), "www.acme.example.com", "A"],
    );
    assert!(again.contains("status: NOERROR"), "{again}");
    assert!(again.contains(&hex[..16]), "{again}");
}

/// The cookie (client + server part, hex) of a dig answer.
fn cookie_of(out: &str) -> String {
    let line = out
        .lines()
        .find(|l| l.starts_with("; COOKIE:"))
        .unwrap_or_else(|| panic!("no COOKIE in the answer:\n{out}"));
    line["; COOKIE: ".len()..]
        .chars()
        .take_while(|c| c.is_ascii_hexdigit())
        .collect()
}

/// Two servers given the same `--cookie-secret-file` (as the operator gives every nameserver
/// of a zone its `<zone>-cookie` Secret) accept each other's server cookies: the cookie ns1
/// made is sent to ns2, which keeps it (the same bytes back, dig says good). A server with a
/// secret of its own replaces it with a fresh one.
#[test]
fn servers_sharing_the_cookie_file_accept_each_other_s_cookies() {
    let zones = quickstart();
    let dir = TempDir::new("cookie");
    let file = dir.path().join("cookie-secrets");
    std::fs::write(&file, "00112233445566778899aabbccddeeff\n").unwrap();
    let args = ["--cookie-secret-file", file.to_str().unwrap()];
    let ns1 = Server::start_with(zones.path(), &args);
    let ns2 = Server::start_with(zones.path(), &args);
    let own = Server::start(zones.path());
    let first = cookie_of(&dig(ns1.dns, &["+cookie", "www.acme.example.com", "A"]));
    assert_eq!(first.len(), 48, "{first}");
    let at_ns2 = dig(
        ns2.dns,
        &[&format!("+cookie={first}"), "www.acme.example.com", "A"],
    );
    assert!(at_ns2.contains("status: NOERROR"), "{at_ns2}");
    assert_eq!(
        cookie_of(&at_ns2),
        first,
        "ns2 keeps ns1's server cookie:\n{at_ns2}"
    );
    let at_own = dig(
        own.dns,
        &[&format!("+cookie={first}"), "www.acme.example.com", "A"],
    );
    let replaced = cookie_of(&at_own);
    assert_eq!(replaced[..16], first[..16], "the same client cookie");
    assert_ne!(
        replaced, first,
        "another secret does not accept it:\n{at_own}"
    );
}

/// Outside --allow-query: REFUSED over UDP and TCP (AXFR too); inside: answered.
#[test]
fn query_acl_on_udp_and_tcp() {
    let zones = quickstart();
    let outside = Server::start_with(zones.path(), &["--allow-query", "192.0.2.0/24"]);
    for transport in ["+notcp", "+tcp"] {
        let out = dig(outside.dns, &[transport, "www.acme.example.com", "A"]);
        assert!(out.contains("status: REFUSED"), "{transport}: {out}");
        assert!(out.contains("ANSWER: 0"), "{transport}: {out}");
    }
    let out = dig(outside.dns, &["AXFR", "acme.example.com"]);
    assert!(!out.contains("IN\tSOA"), "{out}");
    let inside = Server::start_with(
        zones.path(),
        &[
            "--allow-query",
            "192.0.2.0/24",
            "--allow-query",
            "127.0.0.0/8",
        ],
    );
    let out = dig(inside.dns, &["+short", "www.acme.example.com", "A"]);
    assert!(!out.trim().is_empty(), "{out}");
}

/// Sends `n` copies of one question from `from` as fast as it can while a second thread reads
/// the responses; returns (full answers, truncated answers) once no response came for 1 s.
fn flood(server: SocketAddr, from: &str, n: usize) -> (usize, usize) {
    let sock = UdpSocket::bind((from, 0)).unwrap();
    let reader = sock.try_clone().unwrap();
    reader
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    let counts = std::thread::spawn(move || {
        let (mut full, mut truncated) = (0usize, 0usize);
        let mut buf = [0u8; 2048];
        while let Ok((len, _)) = reader.recv_from(&mut buf) {
            let r = Message::from_vec(&buf[..len]).expect("every response parses");
            if r.metadata.truncation {
                assert!(r.answers.is_empty(), "a slipped response carries no answer");
                truncated += 1;
            } else {
                assert!(!r.answers.is_empty());
                full += 1;
            }
        }
        (full, truncated)
    });
    for i in 0..n {
        let mut m = query_msg("www.acme.example.com.", RecordType::A, Some(1232));
        m.metadata.id = i as u16;
        sock.send_to(&m.to_vec().unwrap(), server).unwrap();
        if i % 10 == 9 {
            std::thread::sleep(Duration::from_micros(500)); // about 10 000 queries a second
        }
    }
    counts.join().unwrap()
}

/// A flood of one question from one client, far above the rate: exactly the rate's credit
/// (one second's worth) is answered and the flood keeps the account in debt, so the answered
/// count and the slipped share of the limited (slip 2: every second one) must match the
/// configuration within 10%. The client's /24 shares the account; another /24, TCP and
/// another question are unaffected.
#[test]
fn rate_limiting_a_udp_flood() {
    let zones = quickstart();
    let rate = 20;
    let s = Server::start_with(
        zones.path(),
        &[
            "--rrl-responses-per-second",
            &rate.to_string(),
            "--rrl-slip",
            "2",
        ],
    );
    let n = 1000;
    let started = Instant::now();
    let (full, truncated) = flood(s.dns, "127.0.0.2", n);
    let secs = started.elapsed().as_secs_f64();
    eprintln!("{n} queries in {secs:.2} s: {full} full, {truncated} truncated");
    let within = |got: f64, want: f64| (got - want).abs() <= want * 0.1;
    assert!(
        within(full as f64, rate as f64),
        "{full} full answers, want {rate} within 10%"
    );
    let dropped = metric(&s, "zonegate_rrl_actions_total{action=\"dropped\"} ");
    let slipped = metric(&s, "zonegate_rrl_actions_total{action=\"slipped\"} ");
    let limited = n - full;
    assert_eq!(
        (dropped + slipped) as usize,
        limited,
        "every query was answered or limited"
    );
    assert_eq!(
        slipped as usize, truncated,
        "every slipped response arrived"
    );
    assert!(
        within(truncated as f64, limited as f64 / 2.0),
        "{truncated} of {limited} limited responses slipped, want half within 10%"
    );
    // the same /24 is the same client: still limited (nothing but slips and drops)
    let (full_same, _) = flood(s.dns, "127.0.0.3", 20);
    assert_eq!(full_same, 0, "127.0.0.3 shares 127.0.0.2's /24 account");
    // another /24 has its own account: its first `rate` queries are answered in full
    let (full_other, truncated_other) = flood(s.dns, "127.0.1.2", rate);
    assert_eq!(
        (full_other, truncated_other),
        (rate, 0),
        "127.0.1.2 is another client"
    );
    // over TCP the limited client is answered in full (no rate limit on TCP)
    let m = tcp(
        s.dns,
        &query_msg("www.acme.example.com.", RecordType::A, None),
    );
    assert!(!m.answers.is_empty());
    // a different question is its own account
    let m = udp(
        s.dns,
        &query_msg("acme.example.com.", RecordType::SOA, Some(1232)),
    );
    assert!(!m.metadata.truncation && !m.answers.is_empty());
}

/// The same flood with a valid server cookie is not rate limited (the cookie proves the
/// address, as in BIND): every query answered in full.
#[test]
fn a_valid_cookie_lifts_the_rate_limit() {
    let zones = quickstart();
    let s = Server::start_with(zones.path(), &["--rrl-responses-per-second", "10"]);
    let with_cookie = |id: u16, cookie: &[u8]| {
        let mut m = query_msg("www.acme.example.com.", RecordType::A, None);
        m.metadata.id = id;
        let mut e = Edns::new();
        e.set_max_payload(1232);
        e.options_mut()
            .insert(EdnsOption::Unknown(10, cookie.to_vec()));
        m.set_edns(e);
        m.to_vec().unwrap()
    };
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut buf = [0u8; 2048];
    sock.send_to(&with_cookie(1, &[9, 8, 7, 6, 5, 4, 3, 2]), s.dns)
        .unwrap();
    let (len, _) = sock.recv_from(&mut buf).unwrap();
    let first = Message::from_vec(&buf[..len]).unwrap();
    let cookie = match first.edns.unwrap().option(EdnsCode::Cookie) {
        Some(EdnsOption::Unknown(_, v)) => v.clone(),
        other => panic!("no cookie: {other:?}"),
    };
    assert_eq!(cookie.len(), 24);
    let n = 200;
    let mut full = 0;
    for i in 0..n {
        sock.send_to(&with_cookie(i as u16 + 2, &cookie), s.dns)
            .unwrap();
        let (len, _) = sock.recv_from(&mut buf).expect("answered");
        let m = Message::from_vec(&buf[..len]).unwrap();
        if !m.metadata.truncation && !m.answers.is_empty() {
            full += 1;
        }
    }
    assert_eq!(full, n, "with a valid cookie every answer is sent in full");
    assert_eq!(
        metric(&s, "zonegate_rrl_actions_total{action=\"dropped\"} "),
        0.0
    );
}
