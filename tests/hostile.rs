//! The standing hostile battery: what a hostile tester sends to `zonegate serve --manifests`
//! (the real binary, on free loopback ports, over UDP and TCP) and the broken manifest trees
//! it is given (to `serve`, `check` and `hosts --watch`), each with the behaviour expected;
//! after the whole battery the server still answers correctly and its memory stays bounded.
//!
//! `ZONEGATE_TEST_BIN` runs the battery against another build of the binary (to see which
//! cases an older build fails).

mod support;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};
use sockets::{TempDir, free_port, http_get, query_msg, tcp_raw, udp_raw};
use std::io::{BufRead, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::sockets;

const ZONE: &str = r#"
apiVersion: zonegate.dev/v1alpha1
kind: DNSZone
metadata: {name: acme, namespace: acme}
spec:
  domain: acme.example.com
  ttl: 60
  records:
    - {name: www, type: A, values: ["192.0.2.10"]}
    - {name: loop-a, type: CNAME, values: ["loop-b.acme.example.com"]}
    - {name: loop-b, type: CNAME, values: ["loop-a.acme.example.com"]}
    - name: dkim._domainkey
      type: TXT
      values: ['"v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQC"']
    - {name: unquoted._domainkey, type: TXT, values: ["v=DKIM1; k=rsa; p=MIGf"]}
    - {name: empty, type: TXT, values: ["", "; only a comment"]}
    - {name: quoted-empty, type: TXT, values: ['""']}
    - {name: escapes, type: TXT, values: ['"a\;b" "q\"uote" "back\\slash" "\065\066C"']}
    - name: big
      type: TXT
      values: [BIG]
"#;

fn zone_yaml() -> String {
    let long: Vec<String> = (0..30)
        .map(|i| format!("'\"{i:02}-{}\"'", "x".repeat(60)))
        .collect();
    ZONE.replace("[BIG]", &format!("[{}]", long.join(", ")))
}

fn bin() -> PathBuf {
    std::env::var_os("ZONEGATE_TEST_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_zonegate")))
}

/// A running `zonegate serve --manifests` whose log lines are collected; killed on drop.
struct Served {
    child: Child,
    dns: SocketAddr,
    http: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
}

impl Served {
    fn start(dir: &Path, extra: &[&str]) -> Self {
        Self::start_with(Command::new(bin()), dir, extra)
    }

    /// As `start`, by a user that mode 000 keeps out (see `as_nobody`). The tree must be
    /// readable by it.
    fn start_as_nobody(dir: &Path, extra: &[&str]) -> Self {
        Self::start_with(as_nobody(), dir, extra)
    }

    /// `cmd serve --manifests dir …`: `cmd` is the binary, or a wrapper that runs it.
    fn start_with(mut cmd: Command, dir: &Path, extra: &[&str]) -> Self {
        let dns: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let http: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let mut child = cmd
            .args(["serve", "--manifests"])
            .arg(dir)
            .args(["--listen", &dns.to_string(), "--http", &http.to_string()])
            .args(extra)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("zonegate starts");
        let log = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().unwrap();
        collect(stderr, log.clone());
        let s = Self {
            child,
            dns,
            http,
            log,
        };
        s.wait_http();
        s
    }

    /// Waits until the HTTP endpoint answers at all (ready or not).
    fn wait_http(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if http_get(self.http, "/healthz").is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("zonegate did not start; log:\n{}", self.log_text());
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.ready() == 200 {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("not ready; log:\n{}", self.log_text());
    }

    fn ready(&self) -> u16 {
        http_get(self.http, "/readyz").map(|(c, _)| c).unwrap_or(0)
    }

    fn log_lines(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    fn log_text(&self) -> String {
        self.log_lines().join("\n")
    }

    /// Waits for a log line containing `needle` (after `skip` lines); returns it.
    fn wait_log(&self, skip: usize, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(l) = self
                .log_lines()
                .iter()
                .skip(skip)
                .find(|l| l.contains(needle))
            {
                return l.clone();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("no log line with {needle:?}; log:\n{}", self.log_text());
    }

    fn metric(&self, name: &str) -> f64 {
        let (_, body) = http_get(self.http, "/metrics").unwrap();
        body.lines()
            .filter(|l| l.starts_with(name))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap()
    }

    fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

/// Collects the lines of `stderr` into `log`, without terminal colours.
fn collect(stderr: std::process::ChildStderr, log: Arc<Mutex<Vec<String>>>) {
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let mut plain = String::with_capacity(line.len());
            let mut esc = false;
            for ch in line.chars() {
                match (esc, ch) {
                    (false, '\x1b') => esc = true,
                    (true, 'm') => esc = false,
                    (true, _) => {}
                    (false, c) => plain.push(c),
                }
            }
            log.lock().unwrap().push(plain);
        }
    });
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn zone_dir() -> TempDir {
    let d = TempDir::new("hostile");
    d.write("zone.yaml", &zone_yaml());
    d
}

// ------------------------------------------------------------------ raw wire helpers

/// A DNS header.
fn header(id: u16, flags: u16, qd: u16, an: u16, ns: u16, ar: u16) -> Vec<u8> {
    [id, flags, qd, an, ns, ar]
        .iter()
        .flat_map(|v| v.to_be_bytes())
        .collect()
}

/// `name` in wire format (no compression).
fn wire_name(name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for l in name.trim_end_matches('.').split('.') {
        out.push(l.len() as u8);
        out.extend_from_slice(l.as_bytes());
    }
    out.push(0);
    out
}

fn question(name: &str, qtype: u16, class: u16) -> Vec<u8> {
    let mut q = wire_name(name);
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&class.to_be_bytes());
    q
}

/// An OPT record: payload size, version, DO, and raw option bytes.
fn opt(version: u8, dnssec_ok: bool, options: &[u8]) -> Vec<u8> {
    let mut r = vec![0u8]; // root name
    r.extend_from_slice(&41u16.to_be_bytes());
    r.extend_from_slice(&1232u16.to_be_bytes());
    r.push(0); // extended rcode
    r.push(version);
    r.extend_from_slice(&(if dnssec_ok { 0x8000u16 } else { 0 }).to_be_bytes());
    r.extend_from_slice(&(options.len() as u16).to_be_bytes());
    r.extend_from_slice(options);
    r
}

/// A query for `name`/`qtype` with optional additional records appended.
fn raw_query(id: u16, name: &str, qtype: u16, additional: &[Vec<u8>]) -> Vec<u8> {
    let mut m = header(id, 0x0100, 1, 0, 0, additional.len() as u16);
    m.extend(question(name, qtype, 1));
    for a in additional {
        m.extend_from_slice(a);
    }
    m
}

/// The reply to `bytes` over UDP or TCP.
fn send(server: SocketAddr, bytes: &[u8], tcp: bool) -> Option<Vec<u8>> {
    if tcp {
        tcp_raw(server, bytes)
    } else {
        udp_raw(server, bytes, Duration::from_millis(700))
    }
}

fn rcode_of(reply: &[u8]) -> u16 {
    let m = Message::from_vec(reply).expect("the reply parses");
    u16::from(m.metadata.response_code)
}

/// The server answers `www` correctly over both transports.
fn answers_correctly(s: &Served) {
    for tcp in [false, true] {
        let q = query_msg("www.acme.example.com.", RecordType::A, Some(1232));
        let reply = send(s.dns, &q.to_vec().unwrap(), tcp).expect("an answer");
        let m = Message::from_vec(&reply).unwrap();
        assert_eq!(m.metadata.id, q.metadata.id);
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert_eq!(m.answers[0].data.to_string(), "192.0.2.10", "tcp={tcp}");
    }
}

// ------------------------------------------------------------------ the wire battery

/// One wire case: the request and what must come back (`None`: no reply at all).
struct Case {
    what: &'static str,
    bytes: Vec<u8>,
    want: Option<u16>,
}

fn wire_cases() -> Vec<Case> {
    let www = "www.acme.example.com";
    let formerr = Some(1);
    let mut cases = vec![
        Case {
            what: "empty packet",
            bytes: vec![],
            want: None,
        },
        Case {
            what: "11-byte packet",
            bytes: vec![0x12; 11],
            want: None,
        },
        Case {
            what: "QR=1 (a response)",
            bytes: {
                let mut m = raw_query(1, www, 1, &[]);
                m[2] |= 0x80;
                m
            },
            want: None,
        },
        Case {
            what: "qdcount 0",
            bytes: header(2, 0x0100, 0, 0, 0, 0),
            want: formerr,
        },
        Case {
            what: "qdcount 2",
            bytes: {
                let mut m = header(3, 0x0100, 2, 0, 0, 0);
                m.extend(question(www, 1, 1));
                m.extend(question(www, 28, 1));
                m
            },
            want: formerr,
        },
        Case {
            what: "qdcount 2 with one question present",
            bytes: {
                let mut m = header(4, 0x0100, 2, 0, 0, 0);
                m.extend(question(www, 1, 1));
                m
            },
            want: formerr,
        },
        Case {
            what: "compression pointer to itself",
            bytes: {
                let mut m = header(5, 0x0100, 1, 0, 0, 0);
                m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
                m
            },
            want: formerr,
        },
        Case {
            what: "compression loop of two pointers",
            bytes: {
                let mut m = header(6, 0x0100, 1, 0, 0, 0);
                m.extend_from_slice(&[1, b'a', 0xc0, 16, 0xc0, 12, 0, 1, 0, 1]);
                m
            },
            want: formerr,
        },
        Case {
            what: "forward compression pointer past the end",
            bytes: {
                let mut m = header(7, 0x0100, 1, 0, 0, 0);
                m.extend_from_slice(&[0xc0, 200, 0, 1, 0, 1]);
                m
            },
            want: formerr,
        },
        Case {
            what: "label type 0x40 (extended, obsolete)",
            bytes: {
                let mut m = header(8, 0x0100, 1, 0, 0, 0);
                m.extend_from_slice(&[0x41, b'x', 0, 0, 1, 0, 1]);
                m
            },
            want: formerr,
        },
        Case {
            what: "label type 0x80 (reserved)",
            bytes: {
                let mut m = header(9, 0x0100, 1, 0, 0, 0);
                m.extend_from_slice(&[0x81, b'x', 0, 0, 1, 0, 1]);
                m
            },
            want: formerr,
        },
        Case {
            what: "name longer than 255 bytes",
            bytes: {
                let long = vec!["a".repeat(63); 5].join(".") + ".acme.example.com";
                raw_query(10, &long, 1, &[])
            },
            want: formerr,
        },
        Case {
            what: "label running past the end",
            bytes: {
                let mut m = header(11, 0x0100, 1, 0, 0, 0);
                m.extend_from_slice(&[40, b'a', b'b']);
                m
            },
            want: formerr,
        },
        Case {
            what: "two OPT records",
            bytes: raw_query(12, www, 1, &[opt(0, false, &[]), opt(0, false, &[])]),
            want: formerr,
        },
        Case {
            what: "EDNS option longer than the OPT RDATA",
            bytes: raw_query(13, www, 1, &[opt(0, false, &[0, 10, 0, 40, 1, 2])]),
            want: formerr,
        },
        Case {
            what: "EDNS option cut short (length 4, 2 bytes)",
            bytes: raw_query(14, www, 1, &[opt(0, false, &[0xfd, 0xe9, 0, 4, 1, 2])]),
            want: Some(0),
        },
        Case {
            what: "EDNS client-subnet option with a bad family",
            bytes: raw_query(15, www, 1, &[opt(0, false, &[0, 8, 0, 4, 0, 9, 24, 0])]),
            want: formerr,
        },
        Case {
            what: "EDNS version 1",
            bytes: raw_query(16, www, 1, &[opt(1, false, &[])]),
            want: Some(16), // BADVERS
        },
        Case {
            what: "AXFR (not offered)",
            bytes: raw_query(17, "acme.example.com", 252, &[]),
            want: Some(5),
        },
        Case {
            what: "IXFR (not offered)",
            bytes: raw_query(18, "acme.example.com", 251, &[]),
            want: Some(5),
        },
        Case {
            what: "CHAOS TXT version.bind",
            bytes: {
                let mut m = header(19, 0x0100, 1, 0, 0, 0);
                m.extend(question("version.bind", 16, 3));
                m
            },
            want: Some(5),
        },
        Case {
            what: "CHAOS class inside the zone",
            bytes: {
                let mut m = header(20, 0x0100, 1, 0, 0, 0);
                m.extend(question(www, 1, 3));
                m
            },
            want: Some(5),
        },
        Case {
            what: "qtype 0",
            bytes: raw_query(21, www, 0, &[]),
            want: formerr,
        },
        Case {
            what: "qtype OPT",
            bytes: raw_query(22, www, 41, &[]),
            want: formerr,
        },
        Case {
            what: "answer record in a query",
            bytes: {
                let mut m = header(23, 0x0100, 1, 1, 0, 0);
                m.extend(question(www, 1, 1));
                m.extend(wire_name(www));
                m.extend_from_slice(&[0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1]);
                m
            },
            want: formerr,
        },
        Case {
            what: "name outside every zone",
            bytes: raw_query(24, "www.example.org", 1, &[]),
            want: Some(5),
        },
        Case {
            what: "trailing garbage after the question",
            bytes: {
                let mut m = raw_query(25, www, 1, &[]);
                m.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
                m
            },
            want: Some(0),
        },
    ];
    for (i, opcode) in [1u16, 2, 3, 4, 5, 6, 15].into_iter().enumerate() {
        let mut m = raw_query(100 + i as u16, www, 1, &[]);
        m[2] = (m[2] & 0x87) | ((opcode as u8) << 3);
        cases.push(Case {
            what: "opcode other than QUERY",
            bytes: m,
            want: Some(4), // NOTIMP
        });
    }
    cases
}

/// Every wire case over UDP and TCP; then the server still answers correctly.
#[test]
fn wire_cases_over_udp_and_tcp() {
    let d = zone_dir();
    let mut s = Served::start(d.path(), &[]);
    s.wait_ready();
    let mut failures = Vec::new();
    for case in wire_cases() {
        for tcp in [false, true] {
            if tcp && case.bytes.is_empty() {
                continue; // a zero-length TCP frame: covered by the short-packet case
            }
            let reply = send(s.dns, &case.bytes, tcp);
            let got = reply.as_deref().map(rcode_of);
            if got != case.want {
                failures.push(format!(
                    "{} over {}: got {got:?}, want {:?}",
                    case.what,
                    if tcp { "TCP" } else { "UDP" },
                    case.want
                ));
            }
            if let Some(r) = &reply {
                // the id is echoed whatever the rcode
                assert_eq!(r[..2], case.bytes[..2], "{}", case.what);
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(s.alive());
    answers_correctly(&s);
}

/// The DO bit (RFC 3225), QCLASS ANY, a CNAME loop and the TXT values, over both transports.
#[test]
fn protocol_details_and_served_data() {
    let d = zone_dir();
    let s = Served::start(d.path(), &[]);
    s.wait_ready();
    for tcp in [false, true] {
        let t = if tcp { "TCP" } else { "UDP" };
        // DO copied
        for dnssec_ok in [true, false] {
            let q = raw_query(1, "www.acme.example.com", 1, &[opt(0, dnssec_ok, &[])]);
            let m = Message::from_vec(&send(s.dns, &q, tcp).unwrap()).unwrap();
            assert_eq!(
                m.edns.as_ref().map(|e| e.flags().dnssec_ok),
                Some(dnssec_ok),
                "DO over {t}"
            );
        }
        // QCLASS * answers the IN data
        let mut q = header(2, 0x0100, 1, 0, 0, 0);
        q.extend(question("www.acme.example.com", 1, 255));
        let m = Message::from_vec(&send(s.dns, &q, tcp).unwrap()).unwrap();
        assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{t}");
        assert_eq!(m.answers.len(), 1, "{t}");
        assert_eq!(m.answers[0].data.to_string(), "192.0.2.10");
        // a CNAME loop: each CNAME once
        let m = ask(&s, "loop-a.acme.example.com.", RecordType::A, tcp);
        let owners: Vec<String> = m.answers.iter().map(|r| r.name.to_ascii()).collect();
        assert_eq!(
            owners,
            ["loop-a.acme.example.com.", "loop-b.acme.example.com."],
            "{t}"
        );
        // TXT: a quoted DKIM value whole; the unquoted one is refused, not cut
        assert_eq!(
            txt(&s, "dkim._domainkey.acme.example.com.", tcp),
            vec![vec![
                "v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQC".to_string()
            ]]
        );
        let m = ask(
            &s,
            "unquoted._domainkey.acme.example.com.",
            RecordType::TXT,
            tcp,
        );
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain, "{t}");
        // empty values are not served as RDLENGTH 0; `""` is one empty string
        let m = ask(&s, "empty.acme.example.com.", RecordType::TXT, tcp);
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain, "{t}");
        assert_eq!(
            txt(&s, "quoted-empty.acme.example.com.", tcp),
            vec![vec![String::new()]]
        );
        assert_eq!(
            txt(&s, "escapes.acme.example.com.", tcp),
            vec![vec![
                "a;b".to_string(),
                "q\"uote".to_string(),
                "back\\slash".to_string(),
                "ABC".to_string()
            ]]
        );
    }
    // the refused values are reported in the log with the quoted form to use
    let line = s.wait_log(0, "spec.records[4].values[0]");
    assert!(line.contains("would be dropped"), "{line}");
    assert!(
        line.contains("quote the value to keep it: '\"v=DKIM1; k=rsa; p=MIGf\"'"),
        "{line}"
    );
}

fn ask(s: &Served, name: &str, rtype: RecordType, tcp: bool) -> Message {
    let q = query_msg(name, rtype, Some(1232));
    let reply = send(s.dns, &q.to_vec().unwrap(), tcp).expect("an answer");
    Message::from_vec(&reply).expect("the answer parses")
}

fn txt(s: &Served, name: &str, tcp: bool) -> Vec<Vec<String>> {
    ask(s, name, RecordType::TXT, tcp)
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::TXT(t) => Some(
                t.txt_data
                    .iter()
                    .map(|b| String::from_utf8_lossy(b).into_owned())
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}

/// `zonegate check --manifests dir`: the exit code and the report (stdout).
fn check(dir: &Path) -> (Option<i32>, String) {
    let out = Command::new(bin())
        .args(["check", "--manifests"])
        .arg(dir)
        .output()
        .expect("zonegate check runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// A DNSZone of `domain` named `namespace/name`, with `spec.records` written inline.
fn zone_doc(namespace: &str, name: &str, domain: &str, records: &str) -> String {
    format!(
        "apiVersion: zonegate.dev/v1alpha1\nkind: DNSZone\nmetadata: {{name: {name}, namespace: {namespace}}}\nspec:\n  domain: {domain}\n  records:\n{records}"
    )
}

/// `check` reports a CNAME loop among static records once, naming the file, document, field
/// and the loop, and fails (before: `ok: 1 files, 1 zones, no problems`, exit 0).
#[test]
fn check_reports_a_cname_loop() {
    let d = TempDir::new("hostile-loop");
    d.write(
        "zone.yaml",
        &zone_doc(
            "acme",
            "acme",
            "acme.example.com",
            "    - {name: www, type: A, values: [\"192.0.2.10\"]}\n    - {name: loop-a, type: CNAME, values: [\"loop-b.acme.example.com\"]}\n    - {name: loop-b, type: CNAME, values: [\"loop-a.acme.example.com\"]}\n",
        ),
    );
    let (code, report) = check(d.path());
    let loops: Vec<&str> = report
        .lines()
        .filter(|l| l.contains("CNAME loop"))
        .collect();
    assert_eq!(loops.len(), 1, "the loop is reported once:\n{report}");
    assert!(
        loops[0].starts_with(
            "error: zone.yaml#1: DNSZone acme/acme: spec.records[1]: CNAME loop: loop-a.acme.example.com. -> loop-b.acme.example.com. -> loop-a.acme.example.com."
        ),
        "{report}"
    );
    assert_eq!(code, Some(1), "{report}");
}

/// An unquoted TXT value with blanks is served as written (separate strings, as RFC 1035 says)
/// but `check` and the server's log say so and show the quoted form to use (before: `check`
/// said nothing and the log neither).
#[test]
fn unquoted_txt_with_blanks_is_reported_with_the_quoted_form() {
    let d = TempDir::new("hostile-blanks");
    d.write(
        "zone.yaml",
        &zone_doc(
            "acme",
            "acme",
            "acme.example.com",
            "    - {name: www, type: A, values: [\"192.0.2.10\"]}\n    - {name: spf, type: TXT, values: [\"v=spf1 include:_spf.example.net -all\"]}\n",
        ),
    );
    let quoted = "quote the value: '\"v=spf1 include:_spf.example.net -all\"'";
    let (_, report) = check(d.path());
    let line = report
        .lines()
        .find(|l| l.contains("spec.records[1].values[0]"))
        .unwrap_or_else(|| panic!("check names the value:\n{report}"));
    assert!(
        line.contains("zone.yaml#1: DNSZone acme/acme:")
            && line.contains("unquoted blanks make 3 separate strings")
            && line.contains(quoted),
        "{line}"
    );
    let s = Served::start(d.path(), &[]);
    s.wait_ready();
    assert_eq!(
        txt(&s, "spf.acme.example.com.", false),
        vec![vec![
            "v=spf1".to_string(),
            "include:_spf.example.net".to_string(),
            "-all".to_string()
        ]],
        "served as written"
    );
    let logged = s.wait_log(0, "spec.records[1].values[0]");
    assert!(logged.contains(quoted), "{logged}");
}

/// A document over the 32 MiB limit is refused before it is parsed, at once, naming the file
/// and document; the rest of the tree is still checked (before: accepted after seconds of
/// parsing, exit 0).
#[test]
fn an_oversized_document_is_refused_naming_the_file() {
    let d = TempDir::new("hostile-big");
    d.write(
        "zone.yaml",
        &zone_doc(
            "acme",
            "acme",
            "acme.example.com",
            "    - {name: www, type: A, values: [\"192.0.2.10\"]}\n",
        ),
    );
    d.write(
        "big.yaml",
        &format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: small}}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: big}}\ndata:\n  k: \"{}\"\n",
            "x".repeat(33 << 20)
        ),
    );
    let t = Instant::now();
    let (code, report) = check(d.path());
    let took = t.elapsed();
    eprintln!("check of a 33 MiB document took {took:?}");
    assert!(
        report.lines().any(|l| l.starts_with(
            "error: big.yaml: invalid YAML: document 2 is 33 MiB, more than the 32 MiB a document may have"
        )),
        "{}",
        &report[..report.len().min(2000)]
    );
    assert!(report.contains("1 zone compiled"), "{report}");
    assert_eq!(code, Some(1));
    assert!(took < Duration::from_secs(3), "{took:?}");
}

/// Files mode: a DNSZone added later for a domain already served (no `creationTimestamp`, as
/// GitOps manifests have) does not take the domain, even though its name sorts first; it is
/// reported, and it takes over once the first zone goes away. Before, the newcomer won the
/// name tie-break and the domain's answers changed under the served zone.
#[test]
fn a_zone_added_later_does_not_take_a_served_domain() {
    let d = TempDir::new("hostile-newcomer");
    let www = "    - {name: www, type: A, values: [\"IP\"]}\n";
    let shop =
        |name: &str, ip: &str| zone_doc("team", name, "shop.example.com", &www.replace("IP", ip));
    d.write("a.yaml", &shop("zz-shop", "192.0.2.1"));
    let s = Served::start(d.path(), &[]);
    s.wait_ready();
    let addr = |s: &Served| {
        ask(s, "www.shop.example.com.", RecordType::A, false)
            .answers
            .first()
            .map(|r| r.data.to_string())
    };
    assert_eq!(addr(&s).as_deref(), Some("192.0.2.1"));
    let n = s.log_lines().len();
    d.write("b.yaml", &shop("aa-shop", "192.0.2.2"));
    let l = s.wait_log(n, "DomainConflict");
    assert!(
        l.contains("zone=team/aa-shop") && l.contains("claimed by DNSZone team/zz-shop"),
        "the newcomer is the one reported: {l}"
    );
    assert_eq!(
        addr(&s).as_deref(),
        Some("192.0.2.1"),
        "the served zone keeps it"
    );
    // another reload changes nothing
    let n = s.log_lines().len();
    d.write(
        "touch.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: t}\n",
    );
    s.wait_log(n, "zones reloaded");
    assert_eq!(addr(&s).as_deref(), Some("192.0.2.1"));
    // once the first zone goes away, the newcomer serves the domain
    std::fs::remove_file(d.path().join("a.yaml")).unwrap();
    wait_for(|| addr(&s).as_deref() == Some("192.0.2.2"), || s.log_text());
}

/// A flood of malformed EDNS options, each with a new option code, once wrote one WARN line
/// per packet (from hickory-proto); now they are counted and summarised.
#[test]
fn malformed_packet_flood_writes_a_bounded_number_of_log_lines() {
    let d = zone_dir();
    let s = Served::start(d.path(), &[]);
    s.wait_ready();
    let before = s.log_lines().len();
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let n = 3000u16;
    let mut buf = [0u8; 2048];
    let mut answered = 0;
    for i in 0..n {
        let code = 0xfd00u16.wrapping_add(i);
        let [c0, c1] = code.to_be_bytes();
        // option length 4 with 2 bytes of data: "incomplete or poorly formatted"
        let q = raw_query(
            i,
            "www.acme.example.com",
            1,
            &[opt(0, false, &[c0, c1, 0, 4, 1, 2])],
        );
        sock.send_to(&q, s.dns).unwrap();
        if i % 16 == 15 {
            while sock.recv_from(&mut buf).is_ok() {
                answered += 1;
                if answered % 16 == 0 {
                    break;
                }
            }
        }
    }
    std::thread::sleep(Duration::from_millis(1500));
    let lines: Vec<String> = s.log_lines()[before..].to_vec();
    eprintln!(
        "{n} malformed packets: {} log lines, {answered} answers read",
        lines.len()
    );
    assert!(
        lines.len() <= 2,
        "{} log lines for {n} packets:\n{}",
        lines.len(),
        lines[..lines.len().min(5)].join("\n")
    );
    assert!(answered > 0, "the packets were answered");
    let counted = s.metric("zonegate_network_log_events_total");
    assert!(counted >= n as f64, "counted {counted}");
    answers_correctly(&s);
}

/// `/readyz` is 503 while no zone is served (empty tree, broken DNSZone), unless
/// `--allow-empty`; it turns 200 once a zone is there.
#[test]
fn not_ready_without_a_served_zone_unless_allowed() {
    let d = TempDir::new("hostile-empty");
    let s = Served::start(d.path(), &[]);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(s.ready(), 503, "empty tree");
    let log = s.log_text();
    assert!(log.contains("no zone is served"), "{log}");
    assert!(!log.contains("last good"), "{log}");
    // a broken DNSZone: still nothing served
    d.write("zone.yaml", "apiVersion: zonegate.dev/v1alpha1\nkind: DNSZone\nmetadata: {name: z, namespace: acme}\nspec: {domain: Bad_Domain}\n");
    s.wait_log(0, "zones reloaded");
    assert_eq!(s.ready(), 503, "broken DNSZone");
    d.write("zone.yaml", &zone_yaml());
    s.wait_ready();
    let allowed = Served::start(TempDir::new("hostile-empty2").path(), &["--allow-empty"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while allowed.ready() != 200 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(allowed.ready(), 200, "--allow-empty");
}

/// The "zones loaded" line names the zones and serials, its problem count equals the warnings
/// before it and the metrics; a reload says what changed, with right plurals.
#[test]
fn log_lines_and_metrics_agree() {
    let d = zone_dir();
    d.write(
        "ing.yaml",
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: web, namespace: acme}\nspec:\n  rules: [{host: bad_name.acme.example.com}]\nstatus: {loadBalancer: {ingress: [{ip: 192.0.2.1}]}}\n---\nnot a mapping\n",
    );
    let s = Served::start(d.path(), &[]);
    s.wait_ready();
    let loaded = s.wait_log(0, "zones loaded");
    let lines = s.log_lines();
    let at = lines.iter().position(|l| *l == loaded).unwrap();
    let warnings = lines[..at].iter().filter(|l| l.contains("WARN")).count();
    let count = |key: &str| -> usize {
        let pat = format!("{key}=");
        loaded
            .split_whitespace()
            .find_map(|w| w.strip_prefix(&pat))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {key} in {loaded}"))
    };
    assert_eq!(count("problems"), warnings, "{}", lines[..=at].join("\n"));
    let zone_problems = s.metric("zonegate_zone_problems");
    let manifest_problems = s.metric("zonegate_manifest_problems");
    assert_eq!(count("zone_problems") as f64, zone_problems);
    assert_eq!(count("manifest_problems") as f64, manifest_problems);
    assert_eq!(count("problems") as f64, zone_problems + manifest_problems);
    assert!(
        loaded.contains("1 zone: acme.example.com. (serial "),
        "{loaded}"
    );
    // compile problems name the file and document as well as the object and field
    let p = lines
        .iter()
        .find(|l| l.contains("bad_name"))
        .expect("the Ingress problem");
    assert!(
        p.contains("ing.yaml#1") && p.contains("Ingress acme/web: spec.rules[0].host"),
        "{p}"
    );
    // a reload that changes nothing says so; one that changes the zone names its new serial
    let n = s.log_lines().len();
    d.write(
        "unrelated.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
    );
    let l = s.wait_log(n, "zones reloaded");
    assert!(l.contains("1 zone, nothing changed"), "{l}");
    let n = s.log_lines().len();
    d.write(
        "zone.yaml",
        &zone_yaml().replace("192.0.2.10", "192.0.2.11"),
    );
    let l = s.wait_log(n, "zones reloaded");
    assert!(
        l.contains("1 zone changed: acme.example.com. (serial "),
        "{l}"
    );
}

/// Broken manifest trees: deep YAML fails fast and names the file; a broken file keeps its
/// content.
#[test]
fn broken_manifest_trees_keep_last_good_content() {
    let d = team_tree("192.0.2.77");
    let s = Served::start(d.path(), &[]);
    s.wait_ready();
    assert_eq!(team_www(&s).as_deref(), Some("192.0.2.77"));
    // (an unreadable subdirectory: unreadable_subdirectory_keeps_last_good_content_as_nobody)
    // a 120 KB file of nested lists: refused at once, named, nothing else delayed
    let n = s.log_lines().len();
    let t = Instant::now();
    d.write(
        "deep.yaml",
        &format!("a: {}{}\n", "[".repeat(60_000), "]".repeat(60_000)),
    );
    let l = s.wait_log(n, "deep.yaml");
    let took = t.elapsed();
    eprintln!("120 KB nested-list file reported after {took:?}");
    assert!(l.contains("nested deeper than 64 levels"), "{l}");
    // (before the depth limit: 36 s for this file in a debug build, 10 s in a release one)
    assert!(took < Duration::from_secs(3), "{took:?}");
    // a broken file keeps its last good content
    let n = s.log_lines().len();
    write_nested(&d, "team/apps/web.yaml", "kind: [unclosed\n");
    let l = s.wait_log(n, "web.yaml");
    assert!(l.contains("keeping this file's last good content"), "{l}");
    assert_eq!(team_www(&s).as_deref(), Some("192.0.2.77"));
    answers_correctly(&s);
}

/// Writes a file in a subdirectory (write-then-rename inside that directory).
fn write_nested(d: &TempDir, name: &str, text: &str) {
    let p = d.path().join(name);
    let dir = p.parent().unwrap();
    std::fs::create_dir_all(dir).unwrap();
    let tmp = dir.join(".tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(tmp, p).unwrap();
}

fn set_mode(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A directory at mode 000 until dropped, then 0755 again (also when a test fails, so that a
/// user who is not root can remove the tree).
struct Unreadable(PathBuf);

impl Unreadable {
    fn new(dir: PathBuf) -> Self {
        set_mode(&dir, 0o000);
        Self(dir)
    }
}

impl Drop for Unreadable {
    fn drop(&mut self) {
        set_mode(&self.0, 0o755);
    }
}

/// A subdirectory that turns unreadable keeps its last good content and is named (the server
/// runs as a user that mode 000 keeps out: `as_nobody`).
#[test]
fn unreadable_subdirectory_keeps_last_good_content_as_nobody() {
    if !can_run_as_nobody() {
        return;
    }
    let d = team_tree("192.0.2.77");
    let s = Served::start_as_nobody(d.path(), &[]);
    s.wait_ready();
    assert_eq!(team_www(&s).as_deref(), Some("192.0.2.77"));
    let team = Unreadable::new(d.path().join("team"));
    let n = s.log_lines().len();
    d.write(
        "touch.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: t}\n",
    );
    let l = s.wait_log(n, "cannot read directory");
    drop(team);
    assert!(l.contains("team/: cannot read directory"), "{l}");
    assert!(
        l.contains("keeping the last good content of its 1 file"),
        "{l}"
    );
    assert_eq!(team_www(&s).as_deref(), Some("192.0.2.77"), "records kept");
}

/// A subdirectory already unreadable when the server starts is treated like an unreadable
/// file: the server starts and serves the rest, the problem names the subdirectory, and once
/// it is readable its files are served and watched. Before, `serve` exited 1 with `cannot
/// watch …: Permission denied`.
#[test]
fn subdirectory_unreadable_at_start_is_served_around_as_nobody() {
    if !can_run_as_nobody() {
        return;
    }
    let d = team_tree("192.0.2.77");
    let team = Unreadable::new(d.path().join("team"));
    let mut s = Served::start_as_nobody(d.path(), &[]);
    s.wait_ready();
    let l = s.wait_log(0, "cannot read directory");
    assert!(
        l.contains("team/: cannot read directory") && l.contains("nothing from it is served"),
        "{l}"
    );
    answers_correctly(&s);
    assert_eq!(team_www(&s), None, "nothing from team/ yet");
    std::thread::sleep(Duration::from_millis(300));
    assert!(s.alive(), "the server runs; log:\n{}", s.log_text());
    // readable again: picked up without touching any file, then watched
    drop(team);
    wait_for(
        || team_www(&s).as_deref() == Some("192.0.2.77"),
        || s.log_text(),
    );
    write_nested(&d, "team/apps/web.yaml", &team_zone("192.0.2.78"));
    wait_for(
        || team_www(&s).as_deref() == Some("192.0.2.78"),
        || s.log_text(),
    );
    assert!(!s.log_text().contains("cannot watch"), "{}", s.log_text());
}

/// The same for `zonegate hosts --manifests DIR --watch`: it keeps running, writes what it can
/// read, and adds the subdirectory's names once it is readable (before: exit 1, `cannot watch`).
#[test]
fn hosts_watch_reads_a_subdirectory_unreadable_at_start_as_nobody() {
    if !can_run_as_nobody() {
        return;
    }
    let d = team_tree("192.0.2.77");
    // the watcher writes the hosts file, and its temporary file next to it
    let out = TempDir::new("hostile-hosts");
    let hosts = out.path().join("hosts");
    std::fs::write(&hosts, "").unwrap();
    if is_root() {
        for p in [out.path(), hosts.as_path()] {
            std::os::unix::fs::chown(p, Some(65534), Some(65534)).unwrap();
        }
    }
    let team = Unreadable::new(d.path().join("team"));
    /// Kills the watcher however the test ends.
    struct Running(Child);
    impl Drop for Running {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut child = as_nobody()
        .args(["hosts", "--watch", "--manifests"])
        .arg(d.path())
        .arg("--hosts-file")
        .arg(&hosts)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map(Running)
        .unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    collect(child.0.stderr.take().unwrap(), log.clone());
    let log_text = || log.lock().unwrap().join("\n");
    let has = |name: &str| std::fs::read_to_string(&hosts).unwrap().contains(name);
    wait_for(|| has("www.acme.example.com"), log_text);
    std::thread::sleep(Duration::from_millis(300));
    let running = child.0.try_wait().unwrap().is_none();
    assert!(running, "hosts --watch runs; log:\n{}", log_text());
    assert!(!has("www.team.example.com"));
    drop(team);
    wait_for(|| has("www.team.example.com"), log_text);
}

fn is_root() -> bool {
    unsafe { libc::geteuid() == 0 }
}

/// The binary, run by a user that mode 000 keeps out: root reads anything, so as root it runs
/// with uid and gid 65534 (`setpriv`); any other user is kept out already.
fn as_nobody() -> Command {
    if !is_root() {
        return Command::new(bin());
    }
    let mut setpriv = Command::new("setpriv");
    setpriv
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(bin());
    setpriv
}

/// Whether the `_as_nobody` cases can run: as root they need setpriv.
fn can_run_as_nobody() -> bool {
    let ok = !is_root() || Command::new("setpriv").arg("--help").output().is_ok();
    if !ok {
        eprintln!("skipped: running as root needs setpriv to drop to nobody");
    }
    ok
}

/// The DNSZone of `team/apps/web.yaml`: team.example.com with `www` at `ip`.
fn team_zone(ip: &str) -> String {
    format!(
        "apiVersion: zonegate.dev/v1alpha1\nkind: DNSZone\nmetadata: {{name: team, namespace: team}}\nspec:\n  domain: team.example.com\n  records: [{{name: www, type: A, values: [\"{ip}\"]}}]\n"
    )
}

/// The zone tree plus `team/apps/web.yaml`, readable by any user.
fn team_tree(ip: &str) -> TempDir {
    let d = zone_dir();
    write_nested(&d, "team/apps/web.yaml", &team_zone(ip));
    set_mode(d.path(), 0o755);
    d
}

/// The address served for www.team.example.com, if any.
fn team_www(s: &Served) -> Option<String> {
    ask(s, "www.team.example.com.", RecordType::A, false)
        .answers
        .first()
        .map(|r| r.data.to_string())
}

/// Waits up to 10 s for `cond`; panics with `log()` otherwise.
fn wait_for(cond: impl Fn() -> bool, log: impl Fn() -> String) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out; log:\n{}", log());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// TCP: 1 100 clients that each send a query every 2 s, then 1 100 that send queries and
/// never read; a new client is still answered promptly (the connections idle longest are
/// closed when the limit is reached). Before, the first 1 024 held every slot and new clients
/// waited in the accept queue indefinitely.
#[test]
fn tcp_floods_do_not_keep_new_clients_out() {
    let d = zone_dir();
    let s = Served::start(d.path(), &[]);
    s.wait_ready();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let query = {
        let q = query_msg("www.acme.example.com.", RecordType::A, None)
            .to_vec()
            .unwrap();
        let mut f = (q.len() as u16).to_be_bytes().to_vec();
        f.extend(q);
        f
    };
    // the slow clients: a query every 2 s each, answers read
    let mut slow = Vec::new();
    for _ in 0..1100 {
        match TcpStream::connect_timeout(&s.dns, Duration::from_secs(2)) {
            Ok(c) => slow.push(c),
            Err(_) => break,
        }
    }
    let connected = slow.len();
    let slow = Arc::new(Mutex::new(slow));
    let ticker = {
        let (slow, stop, query) = (slow.clone(), stop.clone(), query.clone());
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                for c in slow.lock().unwrap().iter_mut() {
                    let _ = c.set_nonblocking(true);
                    let _ = c.write(&query);
                    let mut sink = [0u8; 512];
                    let _ = c.read(&mut sink);
                }
                std::thread::sleep(Duration::from_secs(2));
            }
        })
    };
    std::thread::sleep(Duration::from_secs(3));
    let first = new_client_latency(&s);
    // the never-reading clients: a query for a large answer, then silence
    let big = {
        let q = query_msg("big.acme.example.com.", RecordType::TXT, None)
            .to_vec()
            .unwrap();
        let mut f = (q.len() as u16).to_be_bytes().to_vec();
        f.extend(q);
        f.repeat(2)
    };
    let mut silent = Vec::new();
    for _ in 0..1100 {
        if let Ok(mut c) = TcpStream::connect_timeout(&s.dns, Duration::from_secs(2)) {
            let _ = c.set_nonblocking(true);
            let _ = c.write(&big);
            silent.push(c);
        }
    }
    std::thread::sleep(Duration::from_secs(1));
    let second = (0..5)
        .map(|_| new_client_latency(&s))
        .collect::<Option<Vec<_>>>()
        .map(|mut v| {
            v.sort();
            v[2]
        });
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    ticker.join().unwrap();
    let evicted = s.metric("zonegate_dns_tcp_evicted_total");
    eprintln!(
        "{connected} slow clients: new client answered in {first:?}; with {} never-reading clients more: {second:?} (median of 5); {evicted} connections evicted",
        silent.len()
    );
    let first = first.expect("a new client is answered next to 1 100 slow ones");
    let second = second.expect("new clients are answered next to 1 100 never-reading ones");
    assert!(first < Duration::from_secs(1), "{first:?}");
    assert!(second < Duration::from_secs(1), "{second:?}");
    assert!(evicted > 0.0);
    drop(silent);
    drop(slow);
    answers_correctly(&s);
}

/// How long a new TCP client waits for its answer (`None`: none within 5 s).
fn new_client_latency(s: &Served) -> Option<Duration> {
    let t = Instant::now();
    let q = query_msg("www.acme.example.com.", RecordType::A, None);
    let mut c = TcpStream::connect_timeout(&s.dns, Duration::from_secs(5)).ok()?;
    c.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let bytes = q.to_vec().unwrap();
    let mut f = (bytes.len() as u16).to_be_bytes().to_vec();
    f.extend(bytes);
    c.write_all(&f).ok()?;
    let mut len = [0u8; 2];
    c.read_exact(&mut len).ok()?;
    let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
    c.read_exact(&mut buf).ok()?;
    let m = Message::from_vec(&buf).ok()?;
    (m.answers.len() == 1).then(|| t.elapsed())
}

/// A client that pipelines queries and never reads: once its socket buffers are full the
/// server's write makes no progress, and the connection is closed after the write timeout
/// (before, the write waited forever and held the connection).
#[test]
fn tcp_write_that_does_not_progress_times_out() {
    let d = zone_dir();
    let s = Served::start(d.path(), &[]);
    s.wait_ready();
    let q = query_msg("big.acme.example.com.", RecordType::TXT, None)
        .to_vec()
        .unwrap();
    let mut frame = (q.len() as u16).to_be_bytes().to_vec();
    frame.extend(q);
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    sock.connect(&s.dns.into()).unwrap();
    let mut c: TcpStream = sock.into();
    c.set_write_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    // push queries until the server stops reading them (its write is blocked)
    let mut sent = 0;
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(4) {
        match c.write(&frame.repeat(50)) {
            Ok(n) => sent += n / frame.len(),
            Err(_) => break,
        }
    }
    // wait past the write timeout, then read what came: the server closed the connection
    std::thread::sleep(Duration::from_secs(7));
    c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut got = 0usize;
    let mut buf = vec![0u8; 65536];
    let closed = loop {
        match c.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break true,
            Err(_) => break false, // timed out: still open
        }
    };
    eprintln!(
        "pipelined {sent} queries without reading; read {got} bytes afterwards; closed: {closed}"
    );
    assert!(closed, "the stalled connection was closed");
    // closed while stalled, not after writing every answer once the client read (before the
    // write timeout: 232 MB of answers came, then the idle timeout closed it)
    assert!(got < 1 << 20, "{got} bytes came after the stall");
    answers_correctly(&s);
}

/// After everything above in one server: still correct, and memory bounded.
#[test]
fn after_the_whole_battery_the_server_answers_and_memory_is_bounded() {
    let d = zone_dir();
    let mut s = Served::start(d.path(), &[]);
    s.wait_ready();
    let start_rss = s.rss_kib();
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut r: u64 = 0x9e37_79b9_7f4a_7c15;
    let cases = wire_cases();
    for round in 0..20 {
        for case in &cases {
            for tcp in [false, true] {
                if tcp && (round % 5 != 0 || case.bytes.is_empty()) {
                    continue;
                }
                let _ = send(s.dns, &case.bytes, tcp).map(|_| ());
            }
            // mutated copies of the case, by UDP, replies not awaited
            for _ in 0..50 {
                let mut b = case.bytes.clone();
                r ^= r << 13;
                r ^= r >> 7;
                r ^= r << 17;
                if !b.is_empty() {
                    let k = (r as usize) % b.len();
                    b[k] ^= (r >> 32) as u8 | 1;
                }
                if r.is_multiple_of(7) {
                    b.truncate((r as usize >> 8) % (b.len() + 1));
                }
                let _ = sock.send_to(&b, s.dns);
            }
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    assert!(s.alive());
    answers_correctly(&s);
    let end_rss = s.rss_kib();
    eprintln!("RSS {start_rss} KiB at start, {end_rss} KiB after the battery");
    assert!(
        end_rss < 150 * 1024,
        "RSS {end_rss} KiB after the battery (start {start_rss} KiB)"
    );
}

/// The hostile zone served with DoT and DoH listeners on free ports and a self-signed
/// certificate for 127.0.0.1 (kept in `certs`, which also holds the DoH client's scratch files).
struct TlsServed {
    served: Served,
    tls: SocketAddr,
    https: SocketAddr,
    cert: PathBuf,
    certs: TempDir,
    _zone: TempDir,
}

impl TlsServed {
    fn start() -> Self {
        let zone = zone_dir();
        let certs = TempDir::new("certs");
        let (key, cert) = (certs.path().join("key.pem"), certs.path().join("cert.pem"));
        sockets::self_signed_cert("127.0.0.1", "IP:127.0.0.1", &key, &cert);
        let tls: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let https: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let served = Served::start(
            zone.path(),
            &[
                "--tls-listen",
                &tls.to_string(),
                "--https-listen",
                &https.to_string(),
                "--tls-cert",
                cert.to_str().unwrap(),
                "--tls-key",
                key.to_str().unwrap(),
            ],
        );
        served.wait_ready();
        TlsServed {
            served,
            tls,
            https,
            cert,
            certs,
            _zone: zone,
        }
    }
}

/// One DNS-over-TLS exchange (RFC 7858: a TCP frame inside TLS), trusting `cert` for the
/// server's address; `None` when the server closes without a reply or none comes in 2 s.
fn dot_raw(server: SocketAddr, cert: &Path, bytes: &[u8]) -> Option<Vec<u8>> {
    use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(cert).expect("the PEM certificate"))
        .unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = ServerName::IpAddress(server.ip().into());
    let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let tcp = TcpStream::connect(server).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let mut frame = (bytes.len() as u16).to_be_bytes().to_vec();
    frame.extend_from_slice(bytes);
    tls.write_all(&frame).ok()?;
    let mut len = [0u8; 2];
    tls.read_exact(&mut len).ok()?;
    let mut reply = vec![0u8; u16::from_be_bytes(len) as usize];
    tls.read_exact(&mut reply).ok()?;
    Some(reply)
}

/// One DNS-over-HTTPS exchange (RFC 8484 POST over HTTP/2) with curl: the HTTP status (0 when
/// there was none), curl's exit code (92: the server reset the HTTP/2 stream) and, when the
/// status is 200, the DNS message in the body.
fn doh_raw(
    server: SocketAddr,
    cert: &Path,
    bytes: &[u8],
    dir: &Path,
) -> (u16, i32, Option<Vec<u8>>) {
    let (body, out) = (dir.join("query.bin"), dir.join("reply.bin"));
    std::fs::write(&body, bytes).unwrap();
    let _ = std::fs::remove_file(&out);
    let status = Command::new("curl")
        .args(["-s", "--http2", "--max-time", "3", "--cacert"])
        .arg(cert)
        .args(["-H", "content-type: application/dns-message"])
        .args(["-H", "accept: application/dns-message", "--data-binary"])
        .arg(format!("@{}", body.display()))
        .arg("-o")
        .arg(&out)
        .args(["-w", "%{http_code}"])
        .arg(format!("https://{server}/dns-query"))
        .output()
        .expect("curl runs");
    let code: u16 = String::from_utf8_lossy(&status.stdout)
        .trim()
        .parse()
        .unwrap_or(0);
    let reply = (code == 200).then(|| std::fs::read(&out).unwrap_or_default());
    (code, status.status.code().unwrap_or(-1), reply)
}

/// Every wire case over DoT and DoH (hickory-server's listeners around the same responder):
/// a reply wherever TCP gives one, with the same rcode and the query's id, and no DNS message
/// where TCP gives none (over DoH hickory-server then resets the request's HTTP/2 stream, or
/// answers with an HTTP 4xx); then the server still answers correctly over all three.
#[test]
fn wire_cases_over_dot_and_doh() {
    let t = TlsServed::start();
    let (mut s, tls, https, cert, certs) = (t.served, t.tls, t.https, t.cert, t.certs);
    let mut failures = Vec::new();
    let mut compared = 0;
    for case in wire_cases() {
        if case.bytes.is_empty() {
            continue; // a zero-length frame or body: covered by the short-packet case
        }
        let tcp = send(s.dns, &case.bytes, true).as_deref().map(rcode_of);
        let dot = dot_raw(tls, &cert, &case.bytes);
        let (status, curl_exit, doh) = doh_raw(https, &cert, &case.bytes, certs.path());
        for (transport, reply) in [("DoT", &dot), ("DoH", &doh)] {
            let got = reply.as_deref().map(rcode_of);
            if got != tcp {
                failures.push(format!(
                    "{} over {transport}: got {got:?}, TCP {tcp:?} (HTTP {status})",
                    case.what
                ));
            }
            if let Some(r) = reply {
                assert!(
                    Message::from_vec(r).is_ok(),
                    "{} over {transport}: the reply does not parse",
                    case.what
                );
                assert_eq!(r[..2], case.bytes[..2], "{} over {transport}", case.what);
                compared += 1;
            }
        }
        if doh.is_none() {
            assert!(
                (400..500).contains(&status) || (status == 0 && curl_exit == 92),
                "{}: no DNS message over DoH must come as a 4xx or a stream reset, got HTTP \
                 {status}, curl exit {curl_exit}",
                case.what
            );
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(compared >= 20, "only {compared} replies compared");
    assert!(s.alive());
    answers_correctly(&s);
    let query = raw_query(7, "www.acme.example.com", 1, &[]);
    assert_eq!(
        dot_raw(tls, &cert, &query).as_deref().map(rcode_of),
        Some(0)
    );
    let (_, _, doh) = doh_raw(https, &cert, &query, certs.path());
    assert_eq!(doh.as_deref().map(rcode_of), Some(0));
}

/// 1 100 connections that never start their TLS handshake, on the DoT and on the DoH port,
/// do not keep a new client out: at 1 024 the one idle longest is closed (counted in
/// `zonegate_dns_tls_evicted_total`) and a new DoT and DoH client are answered at once.
#[test]
fn tls_floods_do_not_keep_new_clients_out() {
    let t = TlsServed::start();
    let (s, tls, https, cert, certs) = (t.served, t.tls, t.https, t.cert, t.certs);
    let query = raw_query(9, "www.acme.example.com", 1, &[]);
    let mut idle = Vec::new();
    for addr in [tls, https] {
        for _ in 0..1100 {
            if let Ok(c) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
                idle.push(c);
            }
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    let t = Instant::now();
    let dot = dot_raw(tls, &cert, &query).as_deref().map(rcode_of);
    let dot_took = t.elapsed();
    let t = Instant::now();
    let (_, _, doh) = doh_raw(https, &cert, &query, certs.path());
    let doh_took = t.elapsed();
    let evicted = s.metric("zonegate_dns_tls_evicted_total");
    eprintln!(
        "{} idle connections: DoT answered in {dot_took:?}, DoH in {doh_took:?}; {evicted} evicted",
        idle.len()
    );
    assert_eq!(dot, Some(0), "a new DoT client is answered");
    assert_eq!(
        doh.as_deref().map(rcode_of),
        Some(0),
        "a new DoH client is answered"
    );
    assert!(dot_took < Duration::from_secs(2) && doh_took < Duration::from_secs(2));
    assert!(evicted >= 2.0 * (1100.0 - 1024.0), "{evicted} evicted");
    drop(idle);
    answers_correctly(&s);
}
