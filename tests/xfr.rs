//! Zone transfers from `zonegate serve --manifests` with real clients and real secondaries on
//! loopback: kdig and dnspython (which verifies every message's TSIG in the chain) for AXFR,
//! IXFR and the refusals; Knot (`knotd`) and NSD (`nsd`) as TSIG secondaries that load the
//! zone, follow changes through NOTIFY, and end up with exactly the records `zonegate render`
//! prints; Knot as the secondary of a signed zone, whose copy passes `ldns-verify-zone`.
//! Needs kdig, knotd, nsd, ldnsutils and python3-dnspython (e2e/deps.sh installs them).

mod support;
use sockets::*;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use support::sockets;

const KEY_NAME: &str = "xfr.zonegate.";
const SECRET: &str = "pRGNUvDz1tJ6cNW7rXn1o6cE2b5nlN8W9bWk8jxjq4M=";
const ZONE: &str = "acme.example.com";
/// libfaketime (Debian package faketime), which moves a process's clock.
const FAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

fn zone_yaml(allow: &str, notify: &[SocketAddr], with_key: bool, mail: &str) -> String {
    let notify: Vec<String> = notify.iter().map(|a| format!("\"{a}\"")).collect();
    let key = if with_key {
        "    tsigSecretName: xfr-key\n"
    } else {
        ""
    };
    format!(
        r#"apiVersion: zonegate.dev/v1alpha1
kind: DNSZone
metadata: {{name: acme, namespace: acme}}
spec:
  domain: {ZONE}
  transfer:
    allowFrom: ["{allow}"]
    notify: [{notify}]
{key}  records:
    - {{name: mail, type: A, values: ["{mail}"]}}
    - {{name: "@", type: MX, values: ["10 mail.{ZONE}."]}}
---
apiVersion: v1
kind: Secret
metadata: {{name: xfr-key, namespace: acme}}
stringData:
  name: {KEY_NAME}
  algorithm: hmac-sha256
  secret: {SECRET}
"#,
        notify = notify.join(", ")
    )
}

/// A DNSEndpoint with `n` names (with TXT padding), so that an AXFR needs several messages.
fn many_names(n: usize) -> String {
    let mut s = String::from(
        "apiVersion: externaldns.k8s.io/v1alpha1\nkind: DNSEndpoint\nmetadata: {name: many, namespace: acme}\nspec:\n  endpoints:\n",
    );
    for i in 0..n {
        s.push_str(&format!(
            "    - {{dnsName: host-{i}.{ZONE}, recordType: A, targets: [10.{}.{}.{}]}}\n",
            (i >> 16) & 255,
            (i >> 8) & 255,
            i & 255
        ));
        if i % 10 == 0 {
            s.push_str(&format!(
                "    - {{dnsName: host-{i}.{ZONE}, recordType: TXT, targets: [\"padding {} for message size\"]}}\n",
                "x".repeat(60)
            ));
        }
    }
    s
}

fn kdig(args: &[&str]) -> Output {
    Command::new("kdig")
        .args(args)
        .output()
        .expect("kdig runs (e2e/deps.sh installs knot-dnsutils)")
}

fn key_arg() -> String {
    format!("hmac-sha256:{}:{SECRET}", KEY_NAME.trim_end_matches('.'))
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Runs a dnspython script with Debian's python3 (python3-dnspython).
fn python(script: &str, args: &[&str]) -> (bool, String) {
    let o = Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python3 runs");
    (o.status.success(), text(&o))
}

/// dnspython: AXFR with TSIG (dns.query.xfr verifies every message and the MAC chain), or IXFR
/// from a serial; prints the number of messages and records, then the records.
const DNSPYTHON_XFR: &str = r#"
import sys, dns.query, dns.tsigkeyring, dns.tsig, dns.rdatatype, dns.message
host, port, zone, key, kind = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
kr = dns.tsigkeyring.from_text({'xfr.zonegate.': ('hmac-sha256', key)}) if key != '-' else None
args = dict(port=port, keyring=kr, keyname='xfr.zonegate.' if kr else None, keyalgorithm=dns.tsig.HMAC_SHA256, lifetime=30)
if kind == 'axfr':
    msgs = list(dns.query.xfr(host, zone, **args))
else:
    msgs = list(dns.query.xfr(host, zone, rdtype=dns.rdatatype.IXFR, serial=int(kind), **args))
rrs = [rr for m in msgs for rr in m.answer]
print(len(msgs), sum(len(r) for r in rrs))
for m in msgs:
    assert (m.tsig is not None) == (kr is not None), 'every message signed'
"#;

/// Compares the records of a zone file text (`zonegate render`) with an AXFR from a server:
/// exits 1 and prints the differences when they differ.
const DNSPYTHON_SAME: &str = r#"
import sys, dns.zone, dns.query, dns.tsigkeyring, dns.rdatatype
render, host, port, origin = open(sys.argv[1]).read(), sys.argv[2], int(sys.argv[3]), sys.argv[4]
want = dns.zone.from_text(render, origin=origin, relativize=False)
kw = {}
if len(sys.argv) > 5:
    kw = dict(keyring=dns.tsigkeyring.from_text({'xfr.zonegate.': ('hmac-sha256', sys.argv[5])}), keyname='xfr.zonegate.')
got = dns.zone.from_xfr(dns.query.xfr(host, origin, port=port, lifetime=30, relativize=False, **kw), relativize=False)
# the SOA serial aside: `render` numbers from the files' time, the server may be past it
# (two changes in one second); the serials are compared on their own
def text(r):
    return r.replace(serial=0).to_text() if r.rdtype == dns.rdatatype.SOA else r.to_text()
def rrsets(z):
    return {(n.to_text(), rds.rdtype, rds.ttl, frozenset(text(r) for r in rds)) for n, node in z.nodes.items() for rds in node.rdatasets}
a, b = rrsets(want), rrsets(got)
if a != b:
    print('only in render:', sorted(a - b)[:10]); print('only in secondary:', sorted(b - a)[:10]); sys.exit(1)
print('same', len(a))
"#;

fn soa_serial(server: SocketAddr) -> Option<u32> {
    let o = kdig(&[
        &format!("@{}", server.ip()),
        "-p",
        &server.port().to_string(),
        "+short",
        "+timeout=1",
        "+retry=0",
        "SOA",
        ZONE,
    ]);
    String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .nth(2)
        .and_then(|s| s.parse().ok())
}

fn render(dir: &Path) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_zonegate"))
        .args(["render", "--manifests"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    String::from_utf8(o.stdout).unwrap()
}

#[test]
fn axfr_tsig_chain_verified_by_kdig_and_dnspython() {
    let dir = TempDir::new("xfr-axfr");
    dir.write(
        "zone.yaml",
        &zone_yaml("127.0.0.1/32", &[], true, "192.0.2.25"),
    );
    dir.write("many.yaml", &many_names(4000));
    let s = Server::start(dir.path());
    let port = s.dns.port().to_string();
    // kdig: every message carries a TSIG record, the transfer succeeds
    let o = kdig(&["@127.0.0.1", "-p", &port, "-y", &key_arg(), "AXFR", ZONE]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    let tsigs = out.lines().filter(|l| l.contains("\tTSIG\t")).count();
    // ";; Received 209387 B (4 messages, 4406 records)"
    let messages: usize = out
        .lines()
        .find_map(|l| l.strip_prefix(";; Received "))
        .and_then(|l| l.split('(').nth(1))
        .and_then(|l| l.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no message count in: {}", &out[out.len() - 400..]));
    assert!(
        messages >= 2,
        "{messages} messages: not a multi-message AXFR"
    );
    assert_eq!(tsigs, messages, "a TSIG on every message");
    // dnspython verifies the chain itself
    let (ok, out) = python(DNSPYTHON_XFR, &["127.0.0.1", &port, ZONE, SECRET, "axfr"]);
    assert!(ok, "dnspython AXFR failed: {out}");
    let n: Vec<usize> = out
        .split_whitespace()
        .take(2)
        .map(|x| x.parse().unwrap())
        .collect();
    assert!(n[0] >= 2, "{out}");
    assert!(n[1] > 4400, "{out}");
    // and the records are those `zonegate render` prints (a transfer through NSD/Knot is
    // compared the same way below)
    let scratch = TempDir::new("xfr-render");
    let rendered = scratch.path().join("render.txt");
    std::fs::write(&rendered, render(dir.path())).unwrap();
    let (ok, out) = python(
        DNSPYTHON_SAME,
        &[
            rendered.to_str().unwrap(),
            "127.0.0.1",
            &port,
            &format!("{ZONE}."),
            SECRET,
        ],
    );
    std::fs::remove_file(&rendered).unwrap();
    assert!(ok, "{out}");
}

/// The `;; Received N B (M messages, R records)` line of a kdig transfer: (messages, records).
fn kdig_received(out: &str) -> (usize, usize) {
    let line = out
        .lines()
        .find_map(|l| l.strip_prefix(";; Received "))
        .unwrap_or_else(|| panic!("no summary in: {}", &out[out.len().saturating_sub(400)..]));
    let nums: Vec<usize> = line
        .split(['(', ' ', ','])
        .filter_map(|w| w.parse().ok())
        .collect();
    (nums[1], nums[2])
}

/// Zone transfer over TLS (XoT, RFC 9103) on the DoT listener: `kdig +tls` gets the whole
/// TSIG-signed AXFR of a zone far larger than the 32 messages (about 2 MiB) hickory-server's
/// DoT path could queue, every message signed, the same messages and records as over TCP;
/// IXFR from the current serial is the SOA alone; a client outside `allowFrom` is refused.
#[test]
fn xot_axfr_and_ixfr_over_tls_with_kdig() {
    let dir = TempDir::new("xfr-xot");
    dir.write(
        "zone.yaml",
        &zone_yaml("127.0.0.1/32", &[], true, "192.0.2.25"),
    );
    dir.write("many.yaml", &many_names(60000));
    let certs = TempDir::new("xot-certs");
    let (key, cert) = (certs.path().join("key.pem"), certs.path().join("cert.pem"));
    self_signed_cert("127.0.0.1", "IP:127.0.0.1", &key, &cert);
    let tls: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let s = Server::start_with(
        dir.path(),
        &[
            "--tls-listen",
            &tls.to_string(),
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    let (tcp_port, tls_port) = (s.dns.port().to_string(), tls.port().to_string());
    let key = key_arg();
    let plain = kdig(&["@127.0.0.1", "-p", &tcp_port, "-y", &key, "AXFR", ZONE]);
    let over_tls = kdig(&[
        "@127.0.0.1",
        "-p",
        &tls_port,
        "+tls",
        "-y",
        &key,
        "AXFR",
        ZONE,
    ]);
    let (plain, over_tls) = (text(&plain), text(&over_tls));
    let (messages, records) = kdig_received(&over_tls);
    assert!(
        over_tls.len() > 2 * 1024 * 1024,
        "the transfer is over 2 MiB of text: {}",
        over_tls.len()
    );
    assert!(
        messages > 33,
        "{messages} messages: more than hickory's queue"
    );
    assert!(records > 66000, "{records} records");
    assert_eq!((messages, records), kdig_received(&plain), "as over TCP");
    let tsigs = over_tls.lines().filter(|l| l.contains("\tTSIG\t")).count();
    assert_eq!(tsigs, messages, "a TSIG on every message");
    assert!(!over_tls.contains("failed"), "{}", &over_tls[..400]);
    // IXFR from the current serial: the SOA alone
    let serial: String = kdig(&["@127.0.0.1", "-p", &tcp_port, "+short", ZONE, "SOA"])
        .stdout
        .split(|b| *b == b' ')
        .nth(2)
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .expect("a SOA");
    let ixfr = text(&kdig(&[
        "@127.0.0.1",
        "-p",
        &tls_port,
        "+tls",
        "-y",
        &key,
        &format!("IXFR={serial}"),
        ZONE,
    ]));
    assert_eq!(kdig_received(&ixfr), (1, 1), "the SOA alone: {ixfr}");
    // no key: refused over TLS as over TCP
    let nokey = text(&kdig(&[
        "@127.0.0.1",
        "-p",
        &tls_port,
        "+tls",
        "AXFR",
        ZONE,
    ]));
    assert!(nokey.contains("REFUSED"), "{nokey}");
}

#[test]
fn refusals_wrong_key_no_key_foreign_address_udp() {
    let dir = TempDir::new("xfr-refuse");
    // only 127.0.0.2 may transfer
    dir.write(
        "zone.yaml",
        &zone_yaml("127.0.0.2/32", &[], true, "192.0.2.25"),
    );
    let s = Server::start(dir.path());
    let port = s.dns.port().to_string();
    let at = format!("@{}", s.dns.ip());
    let xfr = |extra: &[&str]| {
        let mut a = vec![at.as_str(), "-p", &port, "+timeout=3", "+retry=0"];
        a.extend_from_slice(extra);
        a.extend_from_slice(&["AXFR", ZONE]);
        text(&kdig(&a))
    };
    let key = key_arg();
    // allowed address and the key: transferred
    let out = xfr(&["-b", "127.0.0.2", "-y", &key]);
    assert!(out.contains("\tSOA\t") && out.contains("\tTSIG\t"), "{out}");
    // foreign address, even with the key
    let out = xfr(&["-b", "127.0.0.1", "-y", &key]);
    assert!(out.contains("REFUSED"), "{out}");
    // no key
    let out = xfr(&["-b", "127.0.0.2"]);
    assert!(out.contains("REFUSED"), "{out}");
    // wrong secret, unknown key name
    let wrong = format!(
        "hmac-sha256:{}:{}",
        KEY_NAME.trim_end_matches('.'),
        "AAAAUvDz1tJ6cNW7rXn1o6cE2b5nlN8W9bWk8jxjq4M="
    );
    let out = xfr(&["-b", "127.0.0.2", "-y", &wrong]);
    assert!(out.contains("BADSIG"), "{out}");
    let other = format!("hmac-sha256:other-key:{SECRET}");
    let out = xfr(&["-b", "127.0.0.2", "-y", &other]);
    assert!(out.contains("BADKEY"), "{out}");
    // AXFR over UDP is refused; dnspython sees the same refusals
    let out = text(&kdig(&[
        &at,
        "-p",
        &port,
        "+notcp",
        "-b",
        "127.0.0.2",
        "AXFR",
        ZONE,
    ]));
    assert!(out.contains("REFUSED"), "{out}");
    let (ok, out) = python(DNSPYTHON_XFR, &["127.0.0.1", &port, ZONE, SECRET, "axfr"]);
    assert!(!ok && out.contains("REFUSED"), "{out}");
    // the refusals are counted
    let (_, metrics) = http_get(s.http, "/metrics").unwrap();
    for outcome in [
        "refused_address",
        "refused_key_required",
        "notauth_badsig",
        "notauth_badkey",
        "sent",
    ] {
        assert!(
            metrics.contains(&format!("outcome=\"{outcome}\"")),
            "{outcome} not counted:\n{metrics}"
        );
    }
}

/// A secondary daemon in its own run directory, stopped on drop.
struct Secondary {
    name: &'static str,
    addr: SocketAddr,
    child: std::process::Child,
    dir: TempDir,
}

impl Drop for Secondary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Secondary {
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }
}

fn knot(primary: SocketAddr, port: u16) -> Secondary {
    knot_env(primary, port, &[], true)
}

/// `knot` with extra environment variables for knotd, and with or without the TSIG key.
fn knot_env(primary: SocketAddr, port: u16, env: &[(String, String)], tsig: bool) -> Secondary {
    let dir = TempDir::new("knot");
    let d = dir.path().display();
    for sub in ["run", "db", "zones"] {
        std::fs::create_dir_all(dir.path().join(sub)).unwrap();
    }
    let conf = format!(
        r#"server:
    rundir: {d}/run
    listen: 127.0.0.1@{port}
database:
    storage: {d}/db
control:
    listen: {d}/knot.sock
log:
  - target: {d}/log
    any: info
key:
  - id: {KEY_NAME}
    algorithm: hmac-sha256
    secret: {SECRET}
remote:
  - id: primary
    address: {}@{}
{key}acl:
  - id: notify-in
    remote: primary
    action: notify
  - id: transfer-out
    address: 127.0.0.0/8
    action: transfer
template:
  - id: default
    storage: {d}/zones
zone:
  - domain: {ZONE}.
    master: primary
    acl: [notify-in, transfer-out]
"#,
        primary.ip(),
        primary.port(),
        key = if tsig {
            format!("    key: {KEY_NAME}\n")
        } else {
            String::new()
        },
    );
    dir.write("knot.conf", &conf);
    let child = Command::new("knotd")
        .arg("-c")
        .arg(dir.path().join("knot.conf"))
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("knotd runs (e2e/deps.sh installs knot)");
    Secondary {
        name: "knot",
        addr: format!("127.0.0.1:{port}").parse().unwrap(),
        child,
        dir,
    }
}

fn nsd(primary: SocketAddr, port: u16) -> Secondary {
    let dir = TempDir::new("nsd");
    let d = dir.path().display();
    let conf = format!(
        r#"server:
  ip-address: 127.0.0.1@{port}
  username: ""
  chroot: ""
  database: ""
  zonesdir: "{d}"
  zonelistfile: "{d}/zone.list"
  xfrdfile: "{d}/xfrd.state"
  xfrdir: "{d}"
  pidfile: "{d}/nsd.pid"
  logfile: "{d}/log"
  verbosity: 2
remote-control:
  control-enable: no
key:
  name: {KEY_NAME}
  algorithm: hmac-sha256
  secret: "{SECRET}"
zone:
  name: {ZONE}
  zonefile: "{d}/{ZONE}.zone"
  request-xfr: {} {KEY_NAME}
  allow-notify: 127.0.0.1 {KEY_NAME}
  provide-xfr: 127.0.0.0/8 NOKEY
"#,
        primary.to_string().replace(':', "@"),
    );
    dir.write("nsd.conf", &conf);
    let nsd_bin = ["/usr/sbin/nsd", "nsd"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or("nsd");
    let child = Command::new(nsd_bin)
        .arg("-d")
        .arg("-c")
        .arg(dir.path().join("nsd.conf"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nsd runs (e2e/deps.sh installs nsd)");
    Secondary {
        name: "nsd",
        addr: format!("127.0.0.1:{port}").parse().unwrap(),
        child,
        dir,
    }
}

fn wait_serial(secs: &[&Secondary], serial: u32, within: Duration) -> Duration {
    let t0 = Instant::now();
    let mut reached = vec![None; secs.len()];
    loop {
        let mut behind = Vec::new();
        for (i, s) in secs.iter().enumerate() {
            if reached[i].is_some() {
                continue;
            }
            let got = soa_serial(s.addr);
            if got == Some(serial) {
                reached[i] = Some(t0.elapsed());
            } else {
                behind.push((s.name, got));
            }
        }
        if behind.is_empty() {
            let each: Vec<String> = secs
                .iter()
                .zip(&reached)
                .map(|(s, t)| format!("{} {:?}", s.name, t.unwrap_or_default()))
                .collect();
            eprintln!("serial {serial}: {}", each.join(", "));
            return t0.elapsed();
        }
        if t0.elapsed() > within {
            let logs: Vec<String> = secs
                .iter()
                .map(|s| format!("--- {}:\n{}", s.name, s.log()))
                .collect();
            panic!(
                "not at serial {serial} after {within:?}: {behind:?}\n{}",
                logs.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

fn served_serial(s: &Server) -> u32 {
    soa_serial(s.dns).expect("zonegate answers the SOA")
}

/// Waits up to `within` for zonegate to serve a serial other than `old`, and returns it.
fn new_serial(s: &Server, old: u32, within: Duration) -> u32 {
    let t0 = Instant::now();
    loop {
        let now = served_serial(s);
        if now != old {
            return now;
        }
        assert!(
            t0.elapsed() < within,
            "zonegate still serves serial {old} after {within:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Knot and NSD as TSIG secondaries: both load the zone; after a change both serve the new
/// serial within 2 s through NOTIFY (their refresh timer is the SOA's hour); their records
/// equal `zonegate render` record for record.
#[test]
fn knot_and_nsd_follow_through_notify() {
    let dir = TempDir::new("xfr-secondaries");
    let (kp, np) = (free_port(), free_port());
    let targets: Vec<SocketAddr> = [kp, np]
        .iter()
        .map(|p| format!("127.0.0.1:{p}").parse().unwrap())
        .collect();
    dir.write(
        "zone.yaml",
        &zone_yaml("127.0.0.1/32", &targets, true, "192.0.2.25"),
    );
    dir.write("many.yaml", &many_names(300));
    let s = Server::start(dir.path());
    let primary = s.dns;
    let k = knot(primary, kp);
    let n = nsd(primary, np);
    let first = served_serial(&s);
    wait_serial(&[&k, &n], first, Duration::from_secs(20));

    // outside the manifests: a file there would change the content time, and so the serial
    let scratch = TempDir::new("xfr-render");
    let compare = |sec: &Secondary| {
        let rendered = scratch.path().join(format!("render-{}.txt", sec.name));
        std::fs::write(&rendered, render(dir.path())).unwrap();
        let (ok, out) = python(
            DNSPYTHON_SAME,
            &[
                rendered.to_str().unwrap(),
                "127.0.0.1",
                &sec.addr.port().to_string(),
                &format!("{ZONE}."),
            ],
        );
        let _ = std::fs::remove_file(&rendered);
        assert!(ok, "{} differs from render: {out}", sec.name);
    };
    compare(&k);
    compare(&n);

    let mut last = first;
    for (round, mail) in ["192.0.2.26", "192.0.2.27"].iter().enumerate() {
        // a new serial needs a newer content time: the serial is max(previous + 1, mtime)
        dir.write(
            "zone.yaml",
            &zone_yaml("127.0.0.1/32", &targets, true, mail),
        );
        let serial = new_serial(&s, last, Duration::from_secs(10));
        last = serial;
        let took = wait_serial(&[&k, &n], serial, Duration::from_secs(2));
        eprintln!("round {round}: secondaries at serial {serial} {took:?} after zonegate");
        compare(&k);
        compare(&n);
    }
    let (_, metrics) = http_get(s.http, "/metrics").unwrap();
    assert!(
        metrics.contains("result=\"acknowledged\""),
        "NOTIFY not acknowledged:\n{metrics}"
    );
    // the changes arrived by IXFR: incremental answers counted, 2 changes x 2 secondaries
    let ixfrs: u64 = metrics
        .lines()
        .filter(|l| l.starts_with("zonegate_transfers_total{") && l.contains("kind=\"ixfr\""))
        .filter(|l| l.contains("outcome=\"sent\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    assert!(ixfrs >= 4, "{ixfrs} incremental IXFRs:\n{metrics}");
    // and Knot says so itself
    let log = k.log();
    assert!(
        log.lines()
            .any(|l| l.contains("IXFR, incoming") && l.contains("finished")),
        "Knot did not finish an IXFR:\n{log}"
    );
    for l in log.lines().filter(|l| l.contains("IXFR")) {
        eprintln!("knot: {l}");
    }
}

/// A signed zone (`spec.dnssec`, a P-256 key Secret made by openssl) of 300 names with
/// `target` as its secondary (with TSIG when `tsig`), written into `dir`.
fn signed_tree(dir: &TempDir, target: SocketAddr, tsig: bool) {
    let yaml = zone_yaml("127.0.0.1/32", &[target], tsig, "192.0.2.25").replace(
        &format!("  domain: {ZONE}\n"),
        &format!("  domain: {ZONE}\n  dnssec: {{enabled: true}}\n"),
    );
    assert!(yaml.contains("dnssec:"));
    dir.write("zone.yaml", &yaml);
    dir.write("many.yaml", &many_names(300));
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
    let pem: String = String::from_utf8(pem.stdout)
        .unwrap()
        .lines()
        .map(|l| format!("    {l}\n"))
        .collect();
    dir.write(
        "key.yaml",
        &format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: acme-dnssec, namespace: acme}}\nstringData:\n  key.pem: |\n{pem}"
        ),
    );
}

/// An RRSIG time field (`YYYYMMDDHHmmSS`, RFC 4034 §3.2) in seconds since the epoch.
fn rrsig_seconds(t: &str) -> i64 {
    let n = |r: std::ops::Range<usize>| t[r].parse::<i64>().unwrap();
    let (y, m, d) = (n(0..4), n(4..6), n(6..8));
    // days from civil (H. Hinnant)
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    days * 86400 + n(8..10) * 3600 + n(10..12) * 60 + n(12..14)
}

/// (expiration, inception) of the RRSIG over the zone's SOA that `server` answers.
fn soa_rrsig_times(server: SocketAddr) -> (i64, i64) {
    let o = kdig(&[
        &format!("@{}", server.ip()),
        "-p",
        &server.port().to_string(),
        "+dnssec",
        "+short",
        "SOA",
        ZONE,
    ]);
    let out = text(&o);
    let sig = out
        .lines()
        .find(|l| l.starts_with("SOA "))
        .unwrap_or_else(|| panic!("no RRSIG over the SOA: {out}"));
    let f: Vec<&str> = sig.split_whitespace().collect();
    (rrsig_seconds(f[4]), rrsig_seconds(f[5]))
}

/// A week passes (libfaketime moves the clock of zonegate and of the verifier):
/// the zone's signing generation ends, zonegate re-signs it with a new serial and NOTIFY, and
/// Knot, a current secondary that would otherwise keep the old signatures until they expire,
/// transfers the new ones: its RRSIGs move by exactly the 7-day generation, and its copy
/// verifies at the new time. Without the serial change Knot would stay at the old serial.
#[test]
fn knot_secondary_gets_renewed_signatures_when_a_week_passes() {
    let dir = TempDir::new("xfr-resign");
    let kp = free_port();
    let target: SocketAddr = format!("127.0.0.1:{kp}").parse().unwrap();
    // no TSIG: only zonegate's clock moves (Knot's event timers do not survive a faked jump),
    // and TSIG would refuse the week of skew
    signed_tree(&dir, target, false);
    // the clock's offset, read by libfaketime at most once a second (outside the tree)
    let clock_dir = TempDir::new("xfr-clock");
    let clock = clock_dir.path().join("offset");
    std::fs::write(&clock, "+0\n").unwrap();
    assert!(
        Path::new(FAKETIME).is_file(),
        "{FAKETIME} is missing: run e2e/deps.sh (Debian package faketime)"
    );
    let env: Vec<(String, String)> = [
        ("LD_PRELOAD", FAKETIME.to_string()),
        ("FAKETIME_TIMESTAMP_FILE", clock.display().to_string()),
        ("FAKETIME_CACHE_DURATION", "1".to_string()),
        ("FAKETIME_DONT_FAKE_MONOTONIC", "1".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let s = Server::start_env(dir.path(), &[], &env);
    let k = knot_env(s.dns, kp, &[], false);
    let first = served_serial(&s);
    wait_serial(&[&k], first, Duration::from_secs(20));
    let (exp1, inc1) = soa_rrsig_times(k.addr);
    assert_eq!(
        exp1 - inc1,
        14 * 86400 + 3600,
        "window: generation start - 1 h, + 14 days"
    );
    assert_eq!(
        soa_rrsig_times(s.dns),
        (exp1, inc1),
        "Knot serves what zonegate signed"
    );

    std::fs::write(&clock, "+7d\n").unwrap();
    let second = new_serial(&s, first, Duration::from_secs(30));
    assert!(second > first, "{second} after {first}");
    let took = wait_serial(&[&k], second, Duration::from_secs(30));
    let (exp2, inc2) = soa_rrsig_times(k.addr);
    assert_eq!(exp2 - exp1, 7 * 86400, "the next generation's signatures");
    assert_eq!(inc2 - inc1, 7 * 86400);
    eprintln!("serial {first} -> {second}; Knot had the new signatures {took:?} after zonegate");

    // Knot's copy, checked at the faked time a week on
    let (_, verdict) = knot_copy_verified(kp, &dir, &env);
    eprintln!("ldns-verify-zone on Knot's copy a week on: {verdict}");
}

/// The zone as the secondary on `port` serves it (`kdig AXFR`, the records without the final
/// SOA), written to a file in `dir` and checked by `ldns-verify-zone` (with `env`, e.g. a faked
/// clock), which must say it is verified: (the records, ldns-verify-zone's verdict).
fn knot_copy_verified(port: u16, dir: &TempDir, env: &[(String, String)]) -> (Vec<String>, String) {
    let o = kdig(&["@127.0.0.1", "-p", &port.to_string(), "AXFR", ZONE]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    let records: Vec<String> = out
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with(';'))
        .map(str::to_string)
        .collect();
    let file = dir.path().join("from-knot.zone");
    std::fs::write(&file, records[..records.len() - 1].join("\n") + "\n").unwrap();
    let v = Command::new(support::peers::debian_tool("ldns-verify-zone"))
        .arg(&file)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    let verdict = text(&v);
    assert!(
        v.status.success() && verdict.contains("verified"),
        "ldns-verify-zone on the secondary's copy: {verdict}"
    );
    (records, verdict.trim().to_string())
}

/// A signed zone (`spec.dnssec`, key Secret in the tree) with Knot as its TSIG secondary:
/// Knot loads it by AXFR, and the zone Knot then serves, transferred from Knot with
/// `kdig AXFR`, passes `ldns-verify-zone` ("Zone is verified and complete") and has the
/// DNSKEY, NSEC3PARAM and NSEC3 chain: what a validator asking the secondary needs.
#[test]
fn knot_secondary_of_a_signed_zone_serves_it_verifiably() {
    let dir = TempDir::new("xfr-signed");
    let kp = free_port();
    let target: SocketAddr = format!("127.0.0.1:{kp}").parse().unwrap();
    signed_tree(&dir, target, true);
    let s = Server::start(dir.path());
    let k = knot(s.dns, kp);
    wait_serial(&[&k], served_serial(&s), Duration::from_secs(20));
    let (records, verdict) = knot_copy_verified(kp, &dir, &[]);
    let count = |t: &str| {
        records
            .iter()
            .filter(|l| l.split_whitespace().nth(3) == Some(t))
            .count()
    };
    assert_eq!(count("DNSKEY"), 1, "{records:?}");
    assert_eq!(count("NSEC3PARAM"), 1);
    assert!(count("NSEC3") > 300, "{} NSEC3", count("NSEC3"));
    assert!(count("RRSIG") > 600, "{} RRSIG", count("RRSIG"));
    eprintln!(
        "knot's copy: {} records; ldns-verify-zone: {}",
        records.len(),
        verdict.trim()
    );
}
