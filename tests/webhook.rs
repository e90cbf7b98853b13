//! `zonegate webhook --manifests` over real sockets: the protocol's answers and error paths
//! (negotiation, bad JSON 400, oversized 413, wrong media types 415/406, storage failure 500,
//! 404/405), per-record refusal, and the stored records answered by `zonegate serve
//! --manifests` from the same directory.

mod support;
use hickory_proto::rr::RecordType;
use serde_json::{Value, json};
use sockets::{Server, TempDir, free_port, query_msg, udp};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::sockets;

const MEDIA: &str = "application/external.dns.webhook+json;version=1";

const ZONE: &str = "apiVersion: zonegate.dev/v1alpha1\nkind: DNSZone\nmetadata: {name: zone, namespace: acme}\nspec:\n  domain: acme.example.com\n";

struct Webhook {
    child: Child,
    addr: SocketAddr,
}

impl Webhook {
    fn start(dir: &std::path::Path, extra: &[&str]) -> Self {
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_zonegate"))
            .args(["webhook", "--zone", "acme/zone", "--manifests"])
            .arg(dir)
            .args(["--listen", &addr.to_string()])
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("zonegate webhook starts");
        let w = Self { child, addr };
        let t0 = Instant::now();
        while request(w.addr, "GET", "/healthz", &[], b"")
            .map(|r| r.0)
            .ok()
            != Some(200)
        {
            assert!(t0.elapsed() < Duration::from_secs(20), "webhook not up");
            std::thread::sleep(Duration::from_millis(20));
        }
        w
    }
}

impl Drop for Webhook {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request (Connection: close); returns (status, headers lowercased, body).
fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<(u16, String, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("transfer-encoding"))
    {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes())?;
    // a server may answer (413) and close before the whole body is sent
    let _ = s.write_all(body);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let out = String::from_utf8_lossy(&out).into_owned();
    let (h, b) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    let code = h
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok((code, h.to_ascii_lowercase(), b.to_string()))
}

fn post(addr: SocketAddr, path: &str, body: &Value) -> (u16, String, String) {
    request(
        addr,
        "POST",
        path,
        &[("Content-Type", MEDIA), ("Accept", MEDIA)],
        body.to_string().as_bytes(),
    )
    .unwrap()
}

fn records(addr: SocketAddr) -> Value {
    let (code, h, body) = request(addr, "GET", "/records", &[("Accept", MEDIA)], b"").unwrap();
    assert_eq!(code, 200, "{h}{body}");
    assert!(h.contains(&format!("content-type: {MEDIA}")), "{h}");
    serde_json::from_str(&body).unwrap()
}

#[test]
fn negotiation_health_and_routing() {
    let dir = TempDir::new("wh-neg");
    dir.write("zone.yaml", ZONE);
    let w = Webhook::start(dir.path(), &[]);
    let (code, h, body) = request(w.addr, "GET", "/", &[("Accept", MEDIA)], b"").unwrap();
    assert_eq!(code, 200);
    // ExternalDNS compares this header byte for byte
    assert!(h.contains(&format!("\r\ncontent-type: {MEDIA}\r\n")), "{h}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"include": ["acme.example.com"]})
    );
    assert_eq!(request(w.addr, "GET", "/healthz", &[], b"").unwrap().0, 200);
    assert_eq!(request(w.addr, "GET", "/nope", &[], b"").unwrap().0, 404);
    let (code, h, _) = request(w.addr, "DELETE", "/records", &[], b"").unwrap();
    assert_eq!(code, 405);
    assert!(h.contains("allow: get, post"), "{h}");
    assert_eq!(
        request(w.addr, "GET", "/adjustendpoints", &[], b"")
            .unwrap()
            .0,
        405
    );
    assert_eq!(request(w.addr, "POST", "/", &[], b"{}").unwrap().0, 405);
    assert_eq!(records(w.addr), json!([]));
}

#[test]
fn error_paths_bad_json_oversized_media_types() {
    let dir = TempDir::new("wh-err");
    dir.write("zone.yaml", ZONE);
    let w = Webhook::start(dir.path(), &["--max-body-size", "2048"]);
    let ct = [("Content-Type", MEDIA)];
    // bad JSON and a wrong shape: 400
    assert_eq!(
        request(w.addr, "POST", "/records", &ct, b"{not json")
            .unwrap()
            .0,
        400
    );
    assert_eq!(
        request(w.addr, "POST", "/records", &ct, b"{\"create\": 7}")
            .unwrap()
            .0,
        400
    );
    assert_eq!(
        request(w.addr, "POST", "/adjustendpoints", &ct, b"[{]")
            .unwrap()
            .0,
        400
    );
    // over the cap: 413, by Content-Length and by a chunked body that grows past it
    let big = format!("{{\"create\":[{{\"dnsName\":\"{}\"}}]}}", "a".repeat(4000));
    assert_eq!(
        request(w.addr, "POST", "/records", &ct, big.as_bytes())
            .unwrap()
            .0,
        413
    );
    let mut chunked = Vec::new();
    for piece in big.as_bytes().chunks(500) {
        chunked.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        chunked.extend_from_slice(piece);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let te = [("Content-Type", MEDIA), ("Transfer-Encoding", "chunked")];
    assert_eq!(
        request(w.addr, "POST", "/adjustendpoints", &te, &chunked)
            .unwrap()
            .0,
        413
    );
    // wrong media types: 415 for a body, 406 for what the client accepts
    for bad in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/external.dns.webhook+json;version=2",
    ] {
        let (code, _, _) =
            request(w.addr, "POST", "/records", &[("Content-Type", bad)], b"{}").unwrap();
        assert_eq!(code, 415, "Content-Type {bad}");
    }
    for bad in [
        "text/html",
        "application/external.dns.webhook+json;version=2",
    ] {
        assert_eq!(
            request(w.addr, "GET", "/records", &[("Accept", bad)], b"")
                .unwrap()
                .0,
            406,
            "Accept {bad}"
        );
        assert_eq!(
            request(w.addr, "GET", "/", &[("Accept", bad)], b"")
                .unwrap()
                .0,
            406,
            "Accept {bad}"
        );
    }
    // nothing was stored by any of these
    assert_eq!(records(w.addr), json!([]));
    assert!(!dir.path().join("zonegate-webhook-acme-zone.yaml").exists());
}

#[test]
fn records_are_refused_per_record_stored_and_served() {
    let dir = TempDir::new("wh-rec");
    dir.write("zone.yaml", ZONE);
    let w = Webhook::start(dir.path(), &[]);
    let heritage =
        "\"heritage=external-dns,external-dns/owner=zg,external-dns/resource=ingress/acme/web\"";
    let good = json!([
        {"dnsName": "web.acme.example.com", "targets": ["192.0.2.10"], "recordType": "A", "recordTTL": 120,
         "labels": {"resource": "ingress/acme/web"}},
        {"dnsName": "a-web.acme.example.com", "targets": [heritage], "recordType": "TXT", "labels": {"ownedRecord": "web.acme.example.com"}},
        {"dnsName": "foo.acme.example.com", "targets": ["foo.acme.example.com"], "recordType": "CNAME"},
    ]);
    let bad = json!([
        {"dnsName": "web.other.org", "targets": ["192.0.2.11"], "recordType": "A"},
        {"dnsName": "p.acme.example.com", "targets": ["x.example.net"], "recordType": "PTR"},
        {"dnsName": "b.acme.example.com", "targets": ["300.1.1.1"], "recordType": "A"},
    ]);
    let mut all = good.as_array().unwrap().clone();
    all.extend(bad.as_array().unwrap().iter().cloned());

    // adjustendpoints leaves out what cannot be stored, the rest unchanged
    let (code, h, body) = post(w.addr, "/adjustendpoints", &Value::Array(all.clone()));
    assert_eq!(code, 200);
    assert!(h.contains(&format!("content-type: {MEDIA}")));
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), good);
    // ExternalDNS may send null for an empty list
    assert_eq!(
        post(w.addr, "/adjustendpoints", &Value::Null).2.trim(),
        "[]"
    );

    // POST /records applies the valid part of the batch: 204
    let (code, _, _) = post(w.addr, "/records", &json!({"create": all}));
    assert_eq!(code, 204);
    let mut got = records(w.addr).as_array().unwrap().clone();
    let mut want = good.as_array().unwrap().clone();
    let key = |v: &Value| format!("{}{}", v["dnsName"], v["recordType"]);
    got.sort_by_key(key);
    want.sort_by_key(key);
    assert_eq!(got, want, "records round-trip exactly");

    // served by `serve --manifests` from the same directory; the self-CNAME is not a loop
    let s = Server::start(dir.path());
    let m = udp(
        s.dns,
        &query_msg("web.acme.example.com.", RecordType::A, None),
    );
    assert_eq!(m.answers.len(), 1, "{m:?}");
    assert_eq!(m.answers[0].data.to_string(), "192.0.2.10");
    assert_eq!(m.answers[0].ttl, 120);
    let m = udp(
        s.dns,
        &query_msg("foo.acme.example.com.", RecordType::A, None),
    );
    assert!(m.answers.is_empty(), "{m:?}");
    let m = udp(
        s.dns,
        &query_msg("a-web.acme.example.com.", RecordType::TXT, None),
    );
    assert_eq!(m.answers.len(), 1);

    // update and delete; serve picks the change up
    let (code, _, _) = post(
        w.addr,
        "/records",
        &json!({
            "updateOld": [good[0]],
            "updateNew": [{"dnsName": "web.acme.example.com", "targets": ["192.0.2.20"], "recordType": "A", "recordTTL": 120,
                           "labels": {"resource": "ingress/acme/web"}}],
            "delete": [good[2]],
        }),
    );
    assert_eq!(code, 204);
    let t0 = Instant::now();
    loop {
        let m = udp(
            s.dns,
            &query_msg("web.acme.example.com.", RecordType::A, None),
        );
        if m.answers.first().map(|r| r.data.to_string()) == Some("192.0.2.20".into()) {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "update not served: {m:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(records(w.addr).as_array().unwrap().len(), 2);
}

#[test]
fn storage_failure_is_retryable_and_loses_nothing() {
    let dir = TempDir::new("wh-fail");
    dir.write("zone.yaml", ZONE);
    let w = Webhook::start(dir.path(), &[]);
    let create = json!({"create": [{"dnsName": "a.acme.example.com", "targets": ["192.0.2.1"], "recordType": "A"}]});
    assert_eq!(post(w.addr, "/records", &create).0, 204);
    // someone breaks the file: reads and writes answer 500 (ExternalDNS retries), the file stays
    let path = dir.path().join("zonegate-webhook-acme-zone.yaml");
    std::fs::write(&path, "spec: {endpoints: [1, 2]}\n").unwrap();
    let (code, _, body) = request(w.addr, "GET", "/records", &[("Accept", MEDIA)], b"").unwrap();
    assert_eq!(code, 500, "{body}");
    assert!(body.contains("zonegate-webhook-acme-zone.yaml"), "{body}");
    let more = json!({"create": [{"dnsName": "b.acme.example.com", "targets": ["192.0.2.2"], "recordType": "A"}]});
    assert_eq!(post(w.addr, "/records", &more).0, 500);
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "spec: {endpoints: [1, 2]}\n"
    );
    // repaired: works again
    std::fs::remove_file(&path).unwrap();
    assert_eq!(post(w.addr, "/records", &more).0, 204);
    assert_eq!(records(w.addr).as_array().unwrap().len(), 1);
}

#[test]
fn unknown_zone_fails_loudly() {
    let dir = TempDir::new("wh-nozone");
    dir.write("zone.yaml", ZONE);
    let out = Command::new(env!("CARGO_BIN_EXE_zonegate"))
        .args(["webhook", "--zone", "acme/other", "--manifests"])
        .arg(dir.path())
        .args(["--listen", &format!("127.0.0.1:{}", free_port())])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--zone acme/other: no such DNSZone"), "{err}");
}

#[test]
fn hosts_follows_what_the_webhook_stores() {
    let dir = TempDir::new("wh-hosts");
    dir.write("zone.yaml", ZONE);
    let w = Webhook::start(dir.path(), &[]);
    let hosts_dir = TempDir::new("wh-hosts-file");
    let hosts = hosts_dir.path().join("hosts");
    std::fs::write(&hosts, "127.0.0.1 localhost\n").unwrap();
    let create = json!({"create": [
        {"dnsName": "web.acme.example.com", "targets": ["192.0.2.10"], "recordType": "A"},
        {"dnsName": "alias.acme.example.com", "targets": ["web.acme.example.com"], "recordType": "CNAME"},
        {"dnsName": "ext.acme.example.com", "targets": ["lb.example.net"], "recordType": "CNAME"},
    ]});
    assert_eq!(post(w.addr, "/records", &create).0, 204);
    let mut watch = Command::new(env!("CARGO_BIN_EXE_zonegate"))
        .args(["hosts", "--zone", "acme/zone", "--watch", "--manifests"])
        .arg(dir.path())
        .arg("--hosts-file")
        .arg(&hosts)
        .env("RUST_LOG", "warn")
        .spawn()
        .unwrap();
    let wait_for = |want: &str, gone: &str| {
        let t0 = Instant::now();
        loop {
            let text = std::fs::read_to_string(&hosts).unwrap_or_default();
            if text.contains(want) && (gone.is_empty() || !text.contains(gone)) {
                return text;
            }
            assert!(t0.elapsed() < Duration::from_secs(10), "hosts file: {text}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let text = wait_for("192.0.2.10 web.acme.example.com\n", "");
    assert!(
        text.starts_with("127.0.0.1 localhost\n# BEGIN zonegate"),
        "{text}"
    );
    assert!(
        text.contains("192.0.2.10 alias.acme.example.com\n"),
        "{text}"
    );
    assert!(
        text.contains("# ext.acme.example.com: an alias of lb.example.net"),
        "{text}"
    );
    // a change stored by the webhook reaches the hosts file
    let update = json!({
        "updateOld": [{"dnsName": "web.acme.example.com", "targets": ["192.0.2.10"], "recordType": "A"}],
        "updateNew": [{"dnsName": "web.acme.example.com", "targets": ["192.0.2.11"], "recordType": "A"}],
    });
    assert_eq!(post(w.addr, "/records", &update).0, 204);
    wait_for("192.0.2.11 alias.acme.example.com\n", "192.0.2.10");
    let _ = watch.kill();
    let _ = watch.wait();
}
