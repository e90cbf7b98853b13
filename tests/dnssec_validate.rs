//! A signed zone served by `zonegate serve --manifests` and validated by real resolvers:
//! `unbound` (Debian) with the zone's DNSKEY as trust anchor and a stub zone to our server
//! sets AD on positive, CNAME, wildcard, NXDOMAIN, NODATA, empty non-terminal, wildcard NODATA
//! and no-DS answers, and answers SERVFAIL to the same questions when its anchor is another
//! key; `delv` says "fully validated" for the same cases. Also over the wire: DO and non-DO
//! answers are kept apart by the answer cache, and a DO answer too large for 512 bytes is
//! truncated and complete over TCP. `e2e/deps.sh` installs unbound, delv and dig; a missing
//! tool skips the test with a message, except under CI (`CI` set), where it fails.

mod support;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::peers::{Proc, debian_tool};
use support::sockets::{Server, TempDir, free_port};

const ZONE: &str = "acme.example.com";

const TREE: &str = r#"apiVersion: zonegate.dev/v1alpha1
kind: DNSZone
metadata: {name: acme, namespace: acme}
spec:
  domain: acme.example.com
  dnssec: {enabled: true}
  records:
    - {name: "@", type: MX, values: ["10 mail.acme.example.com."]}
    - {name: mail, type: A, values: ["192.0.2.25"]}
    - {name: www, type: A, values: ["192.0.2.1", "192.0.2.2"]}
    - {name: www, type: AAAA, values: ["2001:db8::1"]}
    - {name: alias, type: CNAME, values: ["www.acme.example.com."]}
    - {name: "*.wild", type: A, values: ["192.0.2.9"]}
    - {name: a.b.deep, type: A, values: ["192.0.2.3"]}
  delegations:
    - {name: lab, nameservers: [{hostname: ns1.lab.acme.example.com, addresses: [192.0.2.80]}]}
status:
  nameservers:
    - {hostname: ns1.acme.example.com, addresses: [192.0.2.53]}
    - {hostname: ns2.acme.example.com, addresses: [192.0.2.54]}
"#;

/// (question, type, expected rcode) of every validated case.
const CASES: &[(&str, &str, &str)] = &[
    ("www.acme.example.com", "A", "NOERROR"),
    ("alias.acme.example.com", "A", "NOERROR"),
    ("x.wild.acme.example.com", "A", "NOERROR"),
    ("nope.acme.example.com", "A", "NXDOMAIN"),
    ("x.nope.b.deep.acme.example.com", "A", "NXDOMAIN"),
    ("www.acme.example.com", "TXT", "NOERROR"),
    ("b.deep.acme.example.com", "A", "NOERROR"),
    ("x.wild.acme.example.com", "TXT", "NOERROR"),
    ("lab.acme.example.com", "DS", "NOERROR"),
    ("acme.example.com", "DNSKEY", "NOERROR"),
];

/// The DNSKEY line `render --dnssec` prints with the key in `state` (generated there if none).
fn dnskey(tree: &Path, state: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_zonegate"))
        .args(["render", "--dnssec", "--manifests"])
        .arg(tree)
        .arg("--state-dir")
        .arg(state)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .find(|l| l.contains("\tDNSKEY\t"))
        .expect("a DNSKEY")
        .replace('\t', " ")
}

/// `dig` through `addr` with `args`: (rcode, flags, whole output).
fn dig(dig: &Path, addr: SocketAddr, args: &[&str]) -> (String, Vec<String>, String) {
    let out = Command::new(dig)
        .arg(format!("@{}", addr.ip()))
        .args(["-p", &addr.port().to_string(), "+tries=1", "+time=5"])
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let rcode = text
        .lines()
        .find_map(|l| l.split("status: ").nth(1))
        .map(|s| s.split(',').next().unwrap_or("").to_string())
        .unwrap_or_else(|| "no reply".into());
    let flags = text
        .lines()
        .find_map(|l| l.strip_prefix(";; flags: "))
        .map(|f| {
            f.split(';')
                .next()
                .unwrap_or("")
                .split_whitespace()
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    (rcode, flags, text)
}

/// A running unbound validating `ZONE` with trust anchor `anchor`, stub to `server`.
fn unbound(bin: &Path, dir: &Path, anchor: &str, server: SocketAddr) -> (Proc, SocketAddr) {
    std::fs::create_dir_all(dir).unwrap();
    let port = free_port();
    std::fs::write(dir.join("ta.key"), format!("{anchor}\n")).unwrap();
    let conf = format!(
        "server:\n  interface: 127.0.0.1@{port}\n  port: {port}\n  username: \"\"\n  chroot: \"\"\n  directory: \"{d}\"\n  pidfile: \"{d}/unbound.pid\"\n  use-syslog: no\n  logfile: \"\"\n  do-not-query-localhost: no\n  trust-anchor-file: \"{d}/ta.key\"\n  module-config: \"validator iterator\"\n  trust-anchor-signaling: no\n  val-log-level: 2\nstub-zone:\n  name: \"{ZONE}\"\n  stub-addr: 127.0.0.1@{sp}\n",
        d = dir.display(),
        sp = server.port()
    );
    std::fs::write(dir.join("unbound.conf"), conf).unwrap();
    let mut cmd = Command::new(bin);
    cmd.args(["-d", "-c"])
        .arg(dir.join("unbound.conf"))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    let p = Proc::spawn("unbound", &mut cmd);
    (p, format!("127.0.0.1:{port}").parse().unwrap())
}

/// Waits until unbound answers anything at `addr`.
fn wait_up(digp: &Path, addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if dig(digp, addr, &["id.server", "CH", "TXT"]).0 != "no reply" {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("unbound does not answer on {addr}");
}

#[test]
fn unbound_and_delv_validate_the_served_zone() {
    let (ub, delv, digp) = (
        debian_tool("unbound"),
        debian_tool("delv"),
        debian_tool("dig"),
    );
    let dir = TempDir::new("dnssec-validate");
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::write(tree.join("zone.yaml"), TREE).unwrap();
    let state = dir.path().join("state");
    let anchor = dnskey(&tree, &state);
    let other = dnskey(&tree, &dir.path().join("other-state"));
    assert_ne!(anchor, other);
    let server = Server::start_with(&tree, &["--state-dir", state.to_str().unwrap()]);

    // the right anchor: AD on every case
    let (mut good, good_addr) = unbound(&ub, &dir.path().join("ub-good"), &anchor, server.dns);
    wait_up(&digp, good_addr);
    for (name, rtype, rcode) in CASES {
        let (got, flags, text) = dig(&digp, good_addr, &["+dnssec", name, rtype]);
        assert_eq!(got, *rcode, "{name} {rtype}:\n{text}");
        assert!(
            flags.iter().any(|f| f == "ad"),
            "{name} {rtype}: no AD:\n{text}"
        );
        eprintln!(
            "unbound, our anchor: {name} {rtype}: {got}, flags {}",
            flags.join(" ")
        );
    }
    good.assert_running();

    // another key as anchor: bogus, SERVFAIL
    let (mut bad, bad_addr) = unbound(&ub, &dir.path().join("ub-bad"), &other, server.dns);
    wait_up(&digp, bad_addr);
    for (name, rtype, _) in CASES {
        let (got, _, text) = dig(&digp, bad_addr, &["+dnssec", name, rtype]);
        assert_eq!(
            got, "SERVFAIL",
            "{name} {rtype} with another anchor:\n{text}"
        );
    }
    eprintln!(
        "unbound, another anchor: SERVFAIL for all {} cases",
        CASES.len()
    );
    bad.assert_running();

    // delv with the same anchor
    let key_b64 = anchor.split_whitespace().last().unwrap();
    let alg = anchor.split_whitespace().nth(6).unwrap();
    let anchors = dir.path().join("delv.conf");
    std::fs::write(
        &anchors,
        format!("trust-anchors {{ {ZONE}. static-key 257 3 {alg} \"{key_b64}\"; }};\n"),
    )
    .unwrap();
    for (name, rtype, _) in CASES {
        let out = Command::new(&delv)
            .arg(format!("@{}", server.dns.ip()))
            .args(["-p", &server.dns.port().to_string(), "-a"])
            .arg(&anchors)
            .arg(format!("+root={ZONE}"))
            .args([name, rtype])
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            text.contains("fully validated"),
            "delv {name} {rtype}:\n{text}"
        );
        let verdict = text
            .lines()
            .find(|l| l.contains("fully validated"))
            .unwrap();
        eprintln!("delv: {name} {rtype}: {verdict}");
    }
}

#[test]
fn do_answers_are_cached_apart_and_truncated_over_udp() {
    let digp = debian_tool("dig");
    let dir = TempDir::new("dnssec-do");
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::write(tree.join("zone.yaml"), TREE).unwrap();
    let state = dir.path().join("state");
    let server = Server::start_with(&tree, &["--state-dir", state.to_str().unwrap()]);
    let rrsig = |text: &str| text.contains("\tRRSIG\t");
    // non-DO, DO, non-DO: the cache answers the third from the first, never the second
    let q = ["+norec", "+nocookie", "www.acme.example.com", "A"];
    let (_, _, plain) = dig(&digp, server.dns, &[&["+nodnssec"], &q[..]].concat());
    let (_, _, signed) = dig(&digp, server.dns, &[&["+dnssec"], &q[..]].concat());
    let (_, _, again) = dig(&digp, server.dns, &[&["+nodnssec"], &q[..]].concat());
    assert!(!rrsig(&plain) && !rrsig(&again), "{plain}\n{again}");
    assert!(rrsig(&signed), "{signed}");
    let (_, _, signed2) = dig(&digp, server.dns, &[&["+dnssec"], &q[..]].concat());
    assert!(rrsig(&signed2));
    // an NXDOMAIN with its proofs is over 512 bytes: TC over UDP, whole over TCP
    let nx = [
        "+norec",
        "+nocookie",
        "+dnssec",
        "nope.acme.example.com",
        "A",
    ];
    let (rcode, flags, text) = dig(
        &digp,
        server.dns,
        &[&["+bufsize=512", "+ignore"], &nx[..]].concat(),
    );
    assert_eq!(rcode, "NXDOMAIN", "{text}");
    assert!(
        flags.iter().any(|f| f == "tc"),
        "no TC at 512 bytes:\n{text}"
    );
    let (rcode, flags, text) = dig(&digp, server.dns, &[&["+bufsize=512"], &nx[..]].concat());
    assert_eq!(rcode, "NXDOMAIN");
    assert!(text.contains("Truncated, retrying in TCP mode"), "{text}");
    assert!(!flags.iter().any(|f| f == "tc"));
    assert!(
        text.contains("NSEC3\t1 0 0 -") || text.contains("NSEC3 1 0 0 -"),
        "{text}"
    );
    // 1232 bytes hold it
    let (_, flags, text) = dig(
        &digp,
        server.dns,
        &[&["+bufsize=1232", "+ignore"], &nx[..]].concat(),
    );
    assert!(!flags.iter().any(|f| f == "tc"), "{text}");
    assert!(
        text.contains("NSEC3\t1 0 0 -") || text.contains("NSEC3 1 0 0 -"),
        "{text}"
    );
}

/// A key Secret that turns unreadable after start does not unsign the zone (a DS at the parent
/// would make it bogus): the reload that brings a new record keeps signing with the old key.
#[test]
fn a_broken_key_secret_keeps_the_zone_signed_with_the_old_key() {
    let digp = debian_tool("dig");
    let dir = TempDir::new("dnssec-broken-key");
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::write(tree.join("zone.yaml"), TREE).unwrap();
    let pem = Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .output()
        .unwrap();
    assert!(pem.status.success());
    let secret = |body: &str| {
        let indented: String = body.lines().map(|l| format!("    {l}\n")).collect();
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: acme-dnssec, namespace: acme}}\nstringData:\n  key.pem: |\n{indented}"
        )
    };
    std::fs::write(
        tree.join("key.yaml"),
        secret(&String::from_utf8(pem.stdout).unwrap()),
    )
    .unwrap();
    let server = Server::start(&tree);
    let dnskey = |args: &[&str]| -> String {
        let (_, _, text) = dig(&digp, server.dns, args);
        text
    };
    let short = ["+short", "+norec", "acme.example.com", "DNSKEY"];
    let before = dnskey(&short);
    assert!(before.starts_with("257 3 13 "), "{before}");
    std::fs::write(tree.join("key.yaml"), secret("not a key")).unwrap();
    std::fs::write(
        tree.join("zone.yaml"),
        TREE.replace(
            "    - {name: mail,",
            "    - {name: new, type: A, values: [\"192.0.2.77\"]}\n    - {name: mail,",
        ),
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = dnskey(&["+dnssec", "+norec", "new.acme.example.com", "A"]);
        if text.contains("192.0.2.77") {
            assert!(text.contains("RRSIG"), "the new record is signed:\n{text}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the change was not served:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(dnskey(&short), before, "the same key");
}
