//! The encrypted transports (DoT, DoH, DoQ on hickory-server) and TCP pipelining, over real
//! sockets against the running binary, with real clients (kdig, dig) and a certificate made
//! at test time with the openssl CLI; a renewed certificate is served without a restart.

mod support;
use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use support::sockets::*;

/// A self-signed P-256 certificate for ns1.acme.example.com and 127.0.0.1 into `dir`.
fn make_cert(dir: &Path, cn: &str) {
    let tmp_c = dir.join("cert.tmp");
    let tmp_k = dir.join("key.tmp");
    self_signed_cert(cn, "DNS:ns1.acme.example.com,IP:127.0.0.1", &tmp_k, &tmp_c);
    std::fs::rename(&tmp_k, dir.join("key.pem")).unwrap();
    std::fs::rename(&tmp_c, dir.join("cert.pem")).unwrap();
}

struct Encrypted {
    server: Server,
    tls: SocketAddr,
    https: SocketAddr,
    quic: SocketAddr,
    _certs: TempDir,
    certs_path: std::path::PathBuf,
    _zones: TempDir,
}

fn start() -> Encrypted {
    start_with(&[])
}

fn start_with(extra: &[&str]) -> Encrypted {
    let zones = quickstart();
    let certs = TempDir::new("certs");
    make_cert(certs.path(), "first");
    let port = |_| format!("127.0.0.1:{}", free_port());
    let (tls, https, quic) = (port(0), port(1), port(2));
    let cert = certs.path().join("cert.pem");
    let key = certs.path().join("key.pem");
    let server = Server::start_with(
        zones.path(),
        &[
            "--tls-listen",
            &tls,
            "--https-listen",
            &https,
            "--quic-listen",
            &quic,
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ]
        .into_iter()
        .chain(extra.iter().copied())
        .collect::<Vec<_>>(),
    );
    Encrypted {
        server,
        tls: tls.parse().unwrap(),
        https: https.parse().unwrap(),
        quic: quic.parse().unwrap(),
        certs_path: certs.path().to_path_buf(),
        _certs: certs,
        _zones: zones,
    }
}

fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output().expect("client runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn client(tool: &str, flag: &str, addr: SocketAddr, name: &str, qtype: &str) -> String {
    run(
        tool,
        &[
            flag,
            &format!("@{}", addr.ip()),
            "-p",
            &addr.port().to_string(),
            name,
            qtype,
            "+short",
            "+timeout=3",
        ],
    )
}

/// kdig over TLS and QUIC, dig and kdig over HTTPS (POST, and GET with `dig +https-get`, both
/// of which RFC 8484 servers must take) get the same answers as UDP.
#[test]
fn dot_doh_doq_answer_like_udp() {
    let e = start();
    let udp = client("dig", "+notcp", e.server.dns, "acme.example.com", "NS");
    assert!(udp.contains("ns1.acme.example.com."), "udp: {udp}");
    for (tool, flag, addr) in [
        ("kdig", "+tls", e.tls),
        ("dig", "+https", e.https),
        ("dig", "+https-get", e.https),
        ("kdig", "+https", e.https),
        ("kdig", "+quic", e.quic),
    ] {
        let got = client(tool, flag, addr, "acme.example.com", "NS");
        assert_eq!(got, udp, "{tool} {flag}");
        let nx = run(
            tool,
            &[
                flag,
                &format!("@{}", addr.ip()),
                "-p",
                &addr.port().to_string(),
                "nx.acme.example.com",
                "A",
                "+timeout=3",
            ],
        );
        assert!(nx.contains("NXDOMAIN"), "{tool} {flag}: {nx}");
        let refused = run(
            tool,
            &[
                flag,
                &format!("@{}", addr.ip()),
                "-p",
                &addr.port().to_string(),
                "example.org",
                "A",
                "+timeout=3",
            ],
        );
        assert!(refused.contains("REFUSED"), "{tool} {flag}: {refused}");
    }
    let (_, metrics) = http_get(e.server.http, "/metrics").unwrap();
    let expiry = metrics
        .lines()
        .find(|l| l.starts_with("zonegate_tls_certificate_expiry_timestamp_seconds "))
        .expect("expiry gauge");
    let v: i64 = expiry.split(' ').nth(1).unwrap().parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!((now + 86_400..=now + 3 * 86_400).contains(&v), "{expiry}");
    for t in ["tls", "https", "quic"] {
        assert!(
            metrics.contains(&format!("transport=\"{t}\"")),
            "no {t} queries counted"
        );
    }
}

/// 100 queries written back to back on one TCP connection get 100 answers, in order.
#[test]
fn tcp_pipelining_of_100_queries() {
    let e = start();
    let mut s = std::net::TcpStream::connect(e.server.dns).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut all = Vec::new();
    for i in 0..100u16 {
        let mut m = query_msg("www.acme.example.com.", RecordType::A, None);
        m.metadata.id = i;
        let b = m.to_vec().unwrap();
        all.extend_from_slice(&(b.len() as u16).to_be_bytes());
        all.extend_from_slice(&b);
    }
    s.write_all(&all).unwrap();
    for i in 0..100u16 {
        let mut len = [0u8; 2];
        s.read_exact(&mut len).unwrap();
        let mut b = vec![0u8; u16::from_be_bytes(len) as usize];
        s.read_exact(&mut b).unwrap();
        let m = Message::from_vec(&b).unwrap();
        assert_eq!(m.metadata.id, i);
        assert!(!m.answers.is_empty());
    }
}

fn served_serial(addr: SocketAddr) -> String {
    let mut child = Command::new("openssl")
        .args(["s_client", "-connect", &addr.to_string(), "-alpn", "dot"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    let mut x = Command::new("openssl")
        .args(["x509", "-noout", "-serial"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    x.stdin.take().unwrap().write_all(&out.stdout).unwrap();
    String::from_utf8_lossy(&x.wait_with_output().unwrap().stdout)
        .trim()
        .to_string()
}

/// A renewed certificate (files replaced, as a Secret volume does) is served on new
/// connections without a restart, while a DoT query loop sees no failure.
#[test]
fn renewed_certificate_is_served_without_restart() {
    let e = start();
    let before = served_serial(e.tls);
    assert!(before.starts_with("serial="), "{before}");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let tls = e.tls;
    let flag = stop.clone();
    let loop_ = std::thread::spawn(move || {
        let (mut ok, mut failed) = (0, 0);
        while !flag.load(std::sync::atomic::Ordering::Relaxed) {
            if client("kdig", "+tls", tls, "acme.example.com", "SOA").contains("hostmaster") {
                ok += 1;
            } else {
                failed += 1;
            }
        }
        (ok, failed)
    });
    make_cert(&e.certs_path, "second");
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut after = before.clone();
    while after == before && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(300));
        after = served_serial(e.tls);
    }
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (ok, failed) = loop_.join().unwrap();
    assert_ne!(after, before, "the renewed certificate was not served");
    assert!(ok > 3, "{ok} queries answered");
    assert_eq!(failed, 0, "{failed} of {} queries failed", ok + failed);
}

/// The network libraries' warnings (hickory-server's, one per failed HTTP/2 handshake) are
/// counted in `zonegate_network_log_events_total`, not dropped and not logged one by one;
/// DoH keeps answering after a run of garbage after the TLS handshake.
#[test]
fn failed_handshakes_are_counted_and_doh_keeps_answering() {
    let e = start();
    let events = || {
        let (_, body) = http_get(e.server.http, "/metrics").unwrap();
        body.lines()
            .find_map(|l| l.strip_prefix("zonegate_network_log_events_total "))
            .map(|v| v.trim().parse::<f64>().unwrap())
            .unwrap_or(0.0)
    };
    let before = events();
    let n = 10;
    for _ in 0..n {
        // TLS with ALPN h2, then not the HTTP/2 preface
        let mut c = Command::new("openssl")
            .args(["s_client", "-quiet", "-alpn", "h2", "-connect"])
            .arg(e.https.to_string())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("openssl runs");
        c.stdin
            .take()
            .unwrap()
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while c.try_wait().unwrap().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = c.kill();
        let _ = c.wait();
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while events() < before + n as f64 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let after = events();
    assert!(
        after >= before + n as f64,
        "{n} failed HTTP/2 handshakes, events {before} -> {after}"
    );
    let a = client("kdig", "+https", e.https, "www.acme.example.com", "A");
    assert!(!a.trim().is_empty(), "DoH answers after the garbage: {a:?}");
}

/// The query ACL holds on the hickory-server transports too: REFUSED over DoT, DoH and DoQ for
/// a client outside --allow-query, and the NSID is answered there as over UDP.
#[test]
fn acl_and_nsid_on_encrypted_transports() {
    let e = start_with(&["--allow-query", "192.0.2.0/24"]);
    for (flag, addr) in [("+tls", e.tls), ("+https", e.https), ("+quic", e.quic)] {
        let out = run(
            "kdig",
            &[
                flag,
                &format!("@{}", addr.ip()),
                "-p",
                &addr.port().to_string(),
                "www.acme.example.com",
                "A",
                "+timeout=3",
            ],
        );
        assert!(out.contains("REFUSED"), "{flag}: {out}");
    }
    let e = start_with(&["--nsid", "ns-dot"]);
    let out = run(
        "kdig",
        &[
            "+tls",
            "+nsid",
            &format!("@{}", e.tls.ip()),
            "-p",
            &e.tls.port().to_string(),
            "www.acme.example.com",
            "A",
            "+timeout=3",
        ],
    );
    assert!(
        out.contains("ns-dot") || out.contains("6e 73 2d 64 6f 74"),
        "{out}"
    );
}
