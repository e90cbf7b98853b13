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

/// The DS line `zonegate ds` prints for the zone `zone` (`namespace/name`) of `tree`.
fn ds_line(tree: &Path, state: &Path, zone: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_zonegate"))
        .args(["ds", "--manifests"])
        .arg(tree)
        .arg("--state-dir")
        .arg(state)
        .args(["--zone", zone])
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
        .find(|l| l.contains(" DS "))
        .expect("a DS line")
        .to_string()
}

/// A parent and its signed child on one server, the child's DS in the parent's delegation
/// (`spec.delegations[].ds`): unbound, anchored at the parent only, follows the chain of trust
/// into the child (AD), because the DS query at the child's apex is answered from the parent
/// (RFC 4035 §3.1.4.1). With a DS for another key the child is bogus (SERVFAIL); with no DS
/// it is insecure (answered, no AD). delv agrees on the secure case.
#[test]
fn a_signed_child_validates_through_its_ds_in_the_parent() {
    let (ub, delv, digp) = (
        debian_tool("unbound"),
        debian_tool("delv"),
        debian_tool("dig"),
    );
    let dir = TempDir::new("dnssec-chain");
    let tree = dir.path().join("tree");
    let state = dir.path().join("state");
    std::fs::create_dir_all(&tree).unwrap();
    let child = "apiVersion: zonegate.dev/v1alpha1\nkind: DNSZone\nmetadata: {name: sec, namespace: acme}\nspec:\n  domain: sec.acme.example.com\n  dnssec: {enabled: true}\n  records:\n    - {name: www, type: A, values: [\"192.0.2.77\"]}\n";
    std::fs::write(tree.join("child.yaml"), child).unwrap();
    let parent = |ds: &str| {
        format!(
            "apiVersion: zonegate.dev/v1alpha1\nkind: DNSZone\nmetadata: {{name: acme, namespace: acme}}\nspec:\n  domain: {ZONE}\n  dnssec: {{enabled: true}}\n  records:\n    - {{name: www, type: A, values: [\"192.0.2.1\"]}}\n  delegations:\n    - name: sec\n      nameservers: [{{hostname: ns1.sec.acme.example.com, addresses: [127.0.0.1]}}]\n{ds}"
        )
    };
    std::fs::write(tree.join("zone.yaml"), parent("")).unwrap();
    let ds = ds_line(&tree, &state, "acme/sec");
    // another key's DS: the same tag and algorithm, another digest
    let mut wrong = ds.clone();
    let last = wrong.pop().unwrap();
    wrong.push(if last == '0' { '1' } else { '0' });
    let anchor = dnskey(&tree, &state);
    let child_a = ("www.sec.acme.example.com", "A");
    for (case, ds_field, rcode, ad) in [
        ("the child's DS", Some(&ds), "NOERROR", true),
        ("another key's DS", Some(&wrong), "SERVFAIL", false),
        ("no DS", None, "NOERROR", false),
    ] {
        let field = ds_field
            .map(|d| format!("      ds: [\"{d}\"]\n"))
            .unwrap_or_default();
        std::fs::write(tree.join("zone.yaml"), parent(&field)).unwrap();
        let server = Server::start_with(&tree, &["--state-dir", state.to_str().unwrap()]);
        let (direct, _, text) = dig(
            &digp,
            server.dns,
            &["+dnssec", "+norecurse", "sec.acme.example.com", "DS"],
        );
        assert_eq!(direct, "NOERROR", "{case}: DS from the parent:\n{text}");
        assert_eq!(
            text.lines()
                .filter(|l| !l.starts_with(';') && l.contains("\tDS\t"))
                .count(),
            usize::from(ds_field.is_some()),
            "{case}: the parent's DS RRset at the child's apex:\n{text}"
        );
        let sub = dir.path().join(format!("ub-{}", case.replace(' ', "-")));
        let (mut u, addr) = unbound(&ub, &sub, &anchor, server.dns);
        wait_up(&digp, addr);
        let (got, flags, text) = dig(&digp, addr, &["+dnssec", child_a.0, child_a.1]);
        assert_eq!(got, rcode, "{case}:\n{text}");
        assert_eq!(
            flags.iter().any(|f| f == "ad"),
            ad,
            "{case}: AD {ad} expected:\n{text}"
        );
        // the parent itself stays secure in every case
        let (got, flags, text) = dig(&digp, addr, &["+dnssec", "www.acme.example.com", "A"]);
        assert!(
            got == "NOERROR" && flags.iter().any(|f| f == "ad"),
            "{case}: parent:\n{text}"
        );
        eprintln!(
            "unbound, anchor at the parent, {case}: {} {} -> {rcode}, AD {ad}",
            child_a.0, child_a.1
        );
        if ad {
            let key_b64 = anchor.split_whitespace().last().unwrap();
            let alg = anchor.split_whitespace().nth(6).unwrap();
            let anchors = sub.join("delv.conf");
            std::fs::write(
                &anchors,
                format!("trust-anchors {{ {ZONE}. static-key 257 3 {alg} \"{key_b64}\"; }};\n"),
            )
            .unwrap();
            let out = Command::new(&delv)
                .arg(format!("@{}", server.dns.ip()))
                .args(["-p", &server.dns.port().to_string(), "-a"])
                .arg(&anchors)
                .arg(format!("+root={ZONE}"))
                .args([child_a.0, child_a.1])
                .output()
                .unwrap();
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(text.contains("fully validated"), "delv {case}:\n{text}");
        }
        u.assert_running();
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
