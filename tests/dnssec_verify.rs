//! `zonegate render --dnssec` output checked by three independent DNSSEC zone verifiers:
//! `ldns-verify-zone` (ldnsutils), `kzonecheck -d on` (knot-dnssecutils) and `dnssec-verify`
//! (bind9-utils), for both algorithms and both files-mode key sources (a Secret in the tree, a
//! key generated into `--state-dir`); and the same zone with one signature changed, which they
//! reject (so the check is real); and a signed zone transferred with `kdig AXFR` from
//! `zonegate serve --manifests`, checked by `ldns-verify-zone`. `e2e/deps.sh` installs the
//! tools. A missing tool skips the test with a message, except under CI (`CI` set), where it
//! fails.

mod support;
use std::path::{Path, PathBuf};
use std::process::Command;
use support::peers::debian_tool;
use support::sockets::TempDir;

const ZONE: &str = "acme.example.com";

/// A zone with A/AAAA/CNAME/TXT/MX, a wildcard, an empty non-terminal (`b.deep` exists only
/// through `a.b.deep`) and two delegations without DS: `lab` with glue in the zone, `ext` with
/// an out-of-zone nameserver.
fn zone_yaml(algorithm: &str) -> String {
    format!(
        r#"apiVersion: zonegate.dev/v1alpha1
kind: DNSZone
metadata: {{name: acme, namespace: acme}}
spec:
  domain: {ZONE}
  dnssec: {{enabled: true, algorithm: {algorithm}}}
  soa: {{negativeTtl: 300}}
  records:
    - {{name: "@", type: MX, values: ["10 mail.{ZONE}."]}}
    - {{name: "@", type: TXT, values: ['"v=spf1 -all"']}}
    - {{name: mail, type: A, values: ["192.0.2.25"]}}
    - {{name: www, type: A, values: ["192.0.2.1", "192.0.2.2"]}}
    - {{name: www, type: AAAA, values: ["2001:db8::1"]}}
    - {{name: www, type: TXT, values: ['"hello world"', '"second"']}}
    - {{name: alias, type: CNAME, values: ["www.{ZONE}."]}}
    - {{name: "*.wild", type: A, values: ["192.0.2.9"]}}
    - {{name: a.b.deep, type: A, values: ["192.0.2.3"]}}
  delegations:
    - {{name: lab, nameservers: [{{hostname: ns1.lab.{ZONE}, addresses: [192.0.2.80, "2001:db8::80"]}}]}}
    - {{name: ext, nameservers: [{{hostname: ns.example.net}}]}}
status:
  nameservers:
    - {{hostname: ns1.{ZONE}, addresses: [192.0.2.53]}}
    - {{hostname: ns2.{ZONE}, addresses: [192.0.2.54, "2001:db8::54"]}}
"#
    )
}

/// The three verifiers (`e2e/deps.sh` installs them; a missing one fails the test).
fn verifiers() -> Vec<(&'static str, PathBuf)> {
    ["ldns-verify-zone", "kzonecheck", "dnssec-verify"]
        .into_iter()
        .map(|n| (n, debian_tool(n)))
        .collect()
}

/// Runs verifier `name` on the zone file; (accepted, its output).
fn verify(name: &str, path: &Path, file: &Path) -> (bool, String) {
    let mut cmd = Command::new(path);
    match name {
        "ldns-verify-zone" => cmd.arg(file),
        "kzonecheck" => cmd.args(["-o", ZONE, "-d", "on"]).arg(file),
        // -z: the one key is a CSK (SEP bit set) that signs everything
        "dnssec-verify" => cmd.args(["-o", ZONE, "-z"]).arg(file),
        _ => unreachable!(),
    };
    let out = cmd.output().unwrap_or_else(|e| panic!("{name}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// `zonegate render --dnssec` of `dir`, with `--state-dir` when given.
fn render(dir: &Path, state: Option<&Path>) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zonegate"));
    cmd.args(["render", "--dnssec", "--manifests"]).arg(dir);
    cmd.env_remove("ZONEGATE_STATE_DIR");
    if let Some(s) = state {
        cmd.arg("--state-dir").arg(s);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "render failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The zone with the signature of every RRSIG covering `www`'s A RRset (one per key) changed
/// in one base64 character.
fn mutate(zone: &str) -> String {
    zone.lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            if f.len() == 5
                && f[0] == format!("www.{ZONE}.")
                && f[3] == "RRSIG"
                && f[4].starts_with("A ")
            {
                let mut rdata = f[4].to_string();
                // a character in the middle of the signature's base64
                let i = rdata.len() - 20;
                let c = rdata.as_bytes()[i];
                let new = if c == b'A' { 'B' } else { 'A' };
                rdata.replace_range(i..i + 1, &new.to_string());
                format!("{}\t{}\t{}\t{}\t{rdata}", f[0], f[1], f[2], f[3])
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

fn check(algorithm: &str, key_in_tree: bool) {
    check_with(algorithm, key_in_tree, false);
}

/// `openssl genpkey` of a key of `algorithm`, as PEM.
fn genpkey(algorithm: &str) -> String {
    let args: &[&str] = match algorithm {
        "ED25519" => &["genpkey", "-algorithm", "ed25519"],
        _ => &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ],
    };
    let pem = Command::new("openssl").args(args).output().unwrap();
    assert!(pem.status.success());
    String::from_utf8(pem.stdout).unwrap()
}

/// `next`: the Secret also holds `next.pem` (a rollover: both keys published and signing).
/// kzonecheck 3.2.6 is left out then: on one and the same two-key file it names a different
/// RRset "no valid signature" on each run, while both RRSIGs of the RRset it names verify
/// (ldns-verify-zone, dnssec-verify, and an independent check with Python's cryptography), so
/// its verdict there is not about the file.
fn check_with(algorithm: &str, key_in_tree: bool, next: bool) {
    let tools: Vec<_> = verifiers()
        .into_iter()
        .filter(|(n, _)| !(next && *n == "kzonecheck"))
        .collect();
    let dir = TempDir::new(&format!("dnssec-verify-{algorithm}"));
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::write(tree.join("zone.yaml"), zone_yaml(algorithm)).unwrap();
    let state = dir.path().join("state");
    if key_in_tree {
        let indent =
            |pem: String| -> String { pem.lines().map(|l| format!("    {l}\n")).collect() };
        let mut yaml = format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: acme-dnssec, namespace: acme}}\nstringData:\n  key.pem: |\n{}",
            indent(genpkey(algorithm))
        );
        if next {
            yaml.push_str(&format!("  next.pem: |\n{}", indent(genpkey(algorithm))));
        }
        std::fs::write(tree.join("key.yaml"), yaml).unwrap();
    }
    let signed = render(&tree, (!key_in_tree).then_some(state.as_path()));
    if !key_in_tree {
        // generated once: the second render signs with the same key
        let again = render(&tree, Some(&state));
        let dnskey = |z: &str| -> String {
            z.lines()
                .find(|l| l.contains("\tDNSKEY\t"))
                .unwrap()
                .to_string()
        };
        assert_eq!(dnskey(&signed), dnskey(&again));
    }
    let alg = if algorithm == "ED25519" { "15" } else { "13" };
    for want in [
        "\tDNSKEY\t257 3 ",
        "\tCDS\t",
        "\tCDNSKEY\t257 3 ",
        "\tNSEC3PARAM\t1 0 0 -",
        "\tNSEC3\t1 0 0 - ",
    ] {
        assert!(signed.contains(want), "{want:?} missing:\n{signed}");
    }
    assert!(signed.contains(&format!("\tDNSKEY\t257 3 {alg} ")));
    let keys = if next { 2 } else { 1 };
    for t in ["\tDNSKEY\t", "\tCDS\t", "\tCDNSKEY\t"] {
        assert_eq!(signed.matches(t).count(), keys, "{t}");
    }
    // no signature over the delegation NS or the glue
    for l in signed.lines().filter(|l| l.contains("\tRRSIG\t")) {
        assert!(!l.starts_with("lab.") && !l.starts_with("ns1.lab."), "{l}");
        assert!(!l.starts_with("ext."), "{l}");
    }
    let file = dir.path().join("signed.zone");
    std::fs::write(&file, &signed).unwrap();
    for (name, path) in &tools {
        let (ok, out) = verify(name, path, &file);
        assert!(
            ok,
            "{name} rejects the signed zone:\n{out}\n--- zone:\n{signed}"
        );
        eprintln!(
            "{name} ({algorithm}): accepted: {}",
            out.trim().replace('\n', " | ")
        );
    }
    let bad = mutate(&signed);
    assert_ne!(bad, signed, "a signature was changed");
    let bad_file = dir.path().join("bad.zone");
    std::fs::write(&bad_file, &bad).unwrap();
    for (name, path) in &tools {
        let (ok, out) = verify(name, path, &bad_file);
        assert!(
            !ok,
            "{name} accepts a zone with a changed signature:\n{out}"
        );
        eprintln!(
            "{name} ({algorithm}): rejected the changed signature: {}",
            out.trim().replace('\n', " | ")
        );
    }
}

#[test]
fn ecdsa_zone_with_a_generated_key_passes_three_verifiers() {
    check("ECDSAP256SHA256", false);
}

#[test]
fn ed25519_zone_with_a_secret_in_the_tree_passes_three_verifiers() {
    check("ED25519", true);
}

/// A rollover's two keys: both in DNSKEY, CDS, CDNSKEY, both signing every RRset.
#[test]
fn ecdsa_zone_with_two_keys_passes_ldns_and_bind() {
    check_with("ECDSAP256SHA256", true, true);
}

#[test]
fn ecdsa_zone_with_a_secret_in_the_tree_passes_three_verifiers() {
    check("ECDSAP256SHA256", true);
}

/// `render --dnssec` without a key source says which zone needs what; without `--dnssec` the
/// zone renders unsigned, as before.
#[test]
fn without_a_key_render_dnssec_names_the_zone() {
    let dir = TempDir::new("dnssec-nokey");
    dir.write("zone.yaml", &zone_yaml("ECDSAP256SHA256"));
    let out = Command::new(env!("CARGO_BIN_EXE_zonegate"))
        .args(["render", "--dnssec", "--manifests"])
        .arg(dir.path())
        .env_remove("ZONEGATE_STATE_DIR")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("DNSZone acme/acme: spec.dnssec.enabled needs a signing key"),
        "{err}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_zonegate"))
        .args(["render", "--manifests"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !text.contains("RRSIG") && !text.contains("DNSKEY"),
        "{text}"
    );
}

/// `serve --manifests` refuses to start when a zone asks for DNSSEC and has no key source.
#[test]
fn serve_refuses_dnssec_without_a_key() {
    let dir = TempDir::new("dnssec-serve-nokey");
    dir.write("zone.yaml", &zone_yaml("ED25519"));
    let port = support::sockets::free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_zonegate"))
        .args(["serve", "--manifests"])
        .arg(dir.path())
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env_remove("ZONEGATE_STATE_DIR")
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("serve kept running without a DNSSEC key");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let mut err = String::new();
    use std::io::Read as _;
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert!(!status.success());
    let all = format!("{out}{err}");
    assert!(
        all.contains("DNSZone acme/acme: spec.dnssec.enabled needs a signing key"),
        "{all}"
    );
}

/// `zonegate ds` prints the DS of the key the zone is signed with: what BIND's
/// `dnssec-dsfromkey -2` computes from the rendered DNSKEY, and the zone's CDS.
#[test]
fn ds_command_matches_bind_dsfromkey_and_the_cds() {
    let dsfromkey = debian_tool("dnssec-dsfromkey");
    let dir = TempDir::new("dnssec-ds");
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::write(tree.join("zone.yaml"), zone_yaml("ECDSAP256SHA256")).unwrap();
    let state = dir.path().join("state");
    let signed = render(&tree, Some(&state));
    let file = dir.path().join("signed.zone");
    std::fs::write(&file, &signed).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_zonegate"))
        .args(["ds", "--manifests"])
        .arg(&tree)
        .arg("--state-dir")
        .arg(&state)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ds = String::from_utf8(out.stdout).unwrap();
    let ours: Vec<&str> = ds.lines().filter(|l| !l.starts_with(';')).collect();
    assert_eq!(ours.len(), 1, "{ds}");
    let rdata = |l: &str| -> String {
        let f: Vec<&str> = l.split_whitespace().collect();
        f[f.len() - 4..].join(" ")
    };
    let bind = Command::new(dsfromkey)
        .args(["-2", "-f"])
        .arg(&file)
        .arg(ZONE)
        .output()
        .unwrap();
    let bind = String::from_utf8(bind.stdout).unwrap();
    assert_eq!(
        rdata(ours[0]),
        rdata(bind.trim()),
        "ours: {ds}\nBIND: {bind}"
    );
    let cds = signed.lines().find(|l| l.contains("\tCDS\t")).unwrap();
    assert_eq!(rdata(ours[0]), rdata(cds));
    assert!(ours[0].starts_with(&format!("{ZONE}. 3600 IN DS ")), "{ds}");
    eprintln!(
        "zonegate ds: {}\ndnssec-dsfromkey: {}",
        ours[0],
        bind.trim()
    );
}

/// The records of zone text (a master file or `kdig` output) counted per (owner, type, the
/// type an RRSIG covers); comments, directives and blank lines aside.
fn record_kinds(text: &str) -> std::collections::BTreeMap<(String, String, String), usize> {
    let mut m = std::collections::BTreeMap::new();
    for l in text.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.is_empty() || f[0].starts_with(';') || f[0].starts_with('$') || f.len() < 5 {
            continue;
        }
        let covered = if f[3] == "RRSIG" { f[4] } else { "" };
        *m.entry((f[0].to_lowercase(), f[3].to_string(), covered.to_string()))
            .or_insert(0) += 1;
    }
    m
}

/// A signed zone transferred from `zonegate serve --manifests` (key Secret in the tree) with
/// `kdig AXFR`, over several messages: SOA first and last and only there, every record
/// `render --dnssec` prints (DNSKEY, CDS, CDNSKEY, NSEC3PARAM, the NSEC3 chain, every RRSIG),
/// and `ldns-verify-zone` verifies the transferred zone; with one signature changed it
/// rejects it. Then IXFR from an older serial: the whole signed zone again. Then a change, and
/// the zone transferred after it verifies as well.
#[test]
fn signed_zone_axfr_from_serve_passes_ldns_verify_zone() {
    let ldns = debian_tool("ldns-verify-zone");
    let dir = TempDir::new("dnssec-axfr");
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    let yaml = zone_yaml("ECDSAP256SHA256").replace(
        "  soa: {negativeTtl: 300}\n",
        "  soa: {negativeTtl: 300}\n  transfer: {allowFrom: [\"127.0.0.1/32\"]}\n",
    );
    assert!(yaml.contains("transfer:"));
    std::fs::write(tree.join("zone.yaml"), yaml).unwrap();
    // enough names that the transfer needs several messages
    std::fs::write(tree.join("many.yaml"), many_text(1500)).unwrap();
    let pem: String = genpkey("ECDSAP256SHA256")
        .lines()
        .map(|l| format!("    {l}\n"))
        .collect();
    std::fs::write(
        tree.join("key.yaml"),
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: acme-dnssec, namespace: acme}}\nstringData:\n  key.pem: |\n{pem}"
        ),
    )
    .unwrap();
    let s = support::sockets::Server::start(&tree);
    let port = s.dns.port().to_string();
    let kdig = |args: &[&str]| -> String {
        let o = Command::new("kdig")
            .args(["@127.0.0.1", "-p", &port, "+timeout=10"])
            .args(args)
            .output()
            .expect("kdig runs (e2e/deps.sh installs knot-dnsutils)");
        let out = String::from_utf8_lossy(&o.stdout).to_string();
        assert!(o.status.success(), "kdig {args:?}: {out}");
        out
    };
    let axfr = kdig(&["AXFR", ZONE]);
    let records: Vec<&str> = axfr
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with(';'))
        .collect();
    let is_soa = |l: &str| l.split_whitespace().nth(3) == Some("SOA");
    assert!(is_soa(records[0]) && is_soa(records[records.len() - 1]));
    assert_eq!(records.iter().filter(|l| is_soa(l)).count(), 2);
    // ";; Received 412 B (7 messages, 6062 records)"
    let messages: usize = axfr
        .lines()
        .find_map(|l| l.strip_prefix(";; Received "))
        .and_then(|l| l.split('(').nth(1))
        .and_then(|l| l.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("kdig's message count");
    assert!(messages >= 2, "{messages} messages");
    // the zone as transferred, the closing SOA aside: the records `render --dnssec` prints
    let zone_text = records[..records.len() - 1].join("\n") + "\n";
    let rendered = render(&tree, None);
    let (got, want) = (record_kinds(&zone_text), record_kinds(&rendered));
    for t in ["DNSKEY", "CDS", "CDNSKEY", "NSEC3PARAM", "NSEC3"] {
        assert!(got.keys().any(|k| k.1 == t), "no {t} transferred");
    }
    assert_eq!(got, want, "transferred records differ from render --dnssec");
    let file = dir.path().join("axfr.zone");
    std::fs::write(&file, &zone_text).unwrap();
    let (ok, out) = verify("ldns-verify-zone", &ldns, &file);
    assert!(ok && out.contains("verified"), "ldns-verify-zone: {out}");
    eprintln!(
        "kdig AXFR: {messages} messages, {} records; ldns-verify-zone: {}",
        records.len(),
        out.trim().replace('\n', " | ")
    );
    // the check is real: one changed signature is rejected
    let bad = dir.path().join("bad.zone");
    let changed = mutate(&zone_text);
    assert_ne!(changed, zone_text, "a signature was changed");
    std::fs::write(&bad, &changed).unwrap();
    let (ok, out) = verify("ldns-verify-zone", &ldns, &bad);
    assert!(!ok, "ldns-verify-zone accepts a changed signature: {out}");
    // IXFR from an older serial: the whole signed zone, AXFR-style
    let serial: u32 = records[0]
        .split_whitespace()
        .nth(6)
        .unwrap()
        .parse()
        .unwrap();
    let ixfr = kdig(&[&format!("IXFR={}", serial - 1), ZONE]);
    let ixfr_records: Vec<&str> = ixfr
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with(';'))
        .collect();
    assert_eq!(ixfr_records.len(), records.len(), "IXFR: the whole zone");
    assert_eq!(
        record_kinds(&(ixfr_records[..ixfr_records.len() - 1].join("\n") + "\n")),
        want
    );

    // A change signed incrementally (`sign::update`): one name gone, one address changed, a
    // new name below two new empty non-terminals. The zone transferred after it verifies too.
    let changed_tree = many_text(1500)
        .replace(&format!("host-7.{ZONE}"), &format!("x.y.new-7.{ZONE}"))
        .replace("targets: [10.0.0.9]", "targets: [10.9.9.9]")
        .replace(
            &format!("    - {{dnsName: host-12.{ZONE}, recordType: A, targets: [10.0.0.12]}}\n"),
            "",
        );
    assert!(changed_tree.contains("x.y.new-7") && changed_tree.contains("10.9.9.9"));
    assert!(!changed_tree.contains("host-12."));
    std::fs::write(tree.join(".many.tmp"), changed_tree).unwrap();
    std::fs::rename(tree.join(".many.tmp"), tree.join("many.yaml")).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let after = loop {
        let soa = kdig(&["+short", ZONE, "SOA"]);
        let now: u32 = soa
            .split_whitespace()
            .nth(2)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        if now != serial {
            break kdig(&["AXFR", ZONE]);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the serial did not change"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let after: Vec<&str> = after
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with(';'))
        .collect();
    let text = after[..after.len() - 1].join("\n") + "\n";
    assert!(
        text.contains(&format!("x.y.new-7.{ZONE}")) && !text.contains(&format!("host-12.{ZONE}"))
    );
    assert_eq!(
        record_kinds(&text),
        record_kinds(&render(&tree, None)),
        "after the change"
    );
    let file = dir.path().join("after.zone");
    std::fs::write(&file, &text).unwrap();
    let (ok, out) = verify("ldns-verify-zone", &ldns, &file);
    assert!(
        ok && out.contains("verified"),
        "ldns-verify-zone after a change: {out}"
    );
}

/// The `many` DNSEndpoint of `n` names `host-I`, addresses 10.0.I/256.I%256.
fn many_text(n: usize) -> String {
    let mut many = String::from(
        "apiVersion: externaldns.k8s.io/v1alpha1\nkind: DNSEndpoint\nmetadata: {name: many, namespace: acme}\nspec:\n  endpoints:\n",
    );
    for i in 0..n {
        many.push_str(&format!(
            "    - {{dnsName: host-{i}.{ZONE}, recordType: A, targets: [10.0.{}.{}]}}\n",
            i >> 8,
            i & 255
        ));
    }
    many
}
