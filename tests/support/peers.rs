//! Helpers for tests that run zonegate next to the real peers users already run: ExternalDNS
//! and CoreDNS (built by `e2e/tools.sh`), dnsmasq (Debian, `e2e/deps.sh`), and `dig` as the
//! client. A missing tool fails the test with how to get it; nothing is skipped.
#![allow(dead_code)]

use super::sockets::free_port;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A Go tool built by `e2e/tools.sh`: `$VAR` if set (make test exports it), else the script's
/// cached build (it builds the tool if missing, which takes minutes the first time).
pub fn go_tool(var: &str, target: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(var).filter(|v| !v.is_empty()) {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "${var}={} does not exist", p.display());
        return p;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("e2e/tools.sh");
    let out = Command::new(&script)
        .arg(target)
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "e2e/tools.sh {target} failed (set ${var} to a built binary, or fix the build)"
    );
    let p = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    assert!(p.is_file(), "e2e/tools.sh {target} printed {}", p.display());
    p
}

pub fn external_dns() -> PathBuf {
    go_tool("ZONEGATE_EXTERNAL_DNS", "externaldns")
}

pub fn coredns() -> PathBuf {
    go_tool("ZONEGATE_COREDNS", "coredns")
}

/// A Debian-installed program (`e2e/deps.sh` installs it).
pub fn debian_tool(name: &str) -> PathBuf {
    for dir in ["/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/bin"] {
        let p = Path::new(dir).join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!("{name} is not installed: run e2e/deps.sh");
}

/// A child process killed (and reaped) on drop.
pub struct Proc {
    pub child: Child,
    pub what: String,
}

impl Proc {
    pub fn spawn(what: &str, cmd: &mut Command) -> Self {
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {what}: {e}"));
        Self {
            child,
            what: what.to_string(),
        }
    }

    /// Panics if the process has exited.
    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("{} exited: {status}", self.what);
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free loopback address (UDP and TCP).
pub fn free_addr() -> SocketAddr {
    format!("127.0.0.1:{}", free_port()).parse().unwrap()
}

/// Waits until a TCP connect to `addr` succeeds.
pub fn wait_tcp(addr: SocketAddr, proc: &mut Proc, timeout: Duration) {
    let t0 = Instant::now();
    while std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        proc.assert_running();
        assert!(
            t0.elapsed() < timeout,
            "{} not listening on {addr} after {timeout:?}",
            proc.what
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `zonegate webhook` for `zone` (NAMESPACE/NAME): cluster mode with `kubeconfig`, else files
/// mode on `manifests`.
pub fn webhook(
    zone: &str,
    kubeconfig: Option<&Path>,
    manifests: Option<&Path>,
) -> (Proc, SocketAddr) {
    let addr = free_addr();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zonegate"));
    cmd.args(["webhook", "--zone", zone, "--listen", &addr.to_string()]);
    if let Some(k) = kubeconfig {
        cmd.arg("--kubeconfig").arg(k);
    }
    if let Some(m) = manifests {
        cmd.arg("--manifests").arg(m);
    }
    cmd.env(
        "RUST_LOG",
        std::env::var("ZONEGATE_E2E_LOG").unwrap_or_else(|_| "warn".into()),
    );
    let mut p = Proc::spawn("zonegate webhook", &mut cmd);
    wait_tcp(addr, &mut p, Duration::from_secs(30));
    (p, addr)
}

/// One `external-dns --once` run with the webhook provider against `webhook`; `extra` adds
/// flags (`--policy`, `--txt-owner-id`, ...). Panics with its log unless it exits 0.
pub fn external_dns_once(
    kubeconfig: &Path,
    namespace: &str,
    webhook: SocketAddr,
    extra: &[&str],
) -> Duration {
    let t0 = Instant::now();
    let out: Output = Command::new(external_dns())
        .args([
            "--provider=webhook",
            &format!("--webhook-provider-url=http://{webhook}"),
            "--source=ingress",
            "--source=service",
            &format!("--namespace={namespace}"),
            "--registry=txt",
            "--once",
            &format!("--metrics-address=127.0.0.1:{}", free_port()),
            "--log-level=debug",
        ])
        .arg(format!("--kubeconfig={}", kubeconfig.display()))
        .args(extra)
        .output()
        .expect("external-dns runs");
    assert!(
        out.status.success(),
        "external-dns {extra:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    t0.elapsed()
}

/// `dig @addr name type +short` answers, sorted (a real stub client over UDP).
pub fn dig(addr: SocketAddr, name: &str, rtype: &str) -> (String, Vec<String>) {
    let out = Command::new(debian_tool("dig"))
        .arg(format!("@{}", addr.ip()))
        .args(["-p", &addr.port().to_string(), name, rtype])
        .args(["+tries=1", "+time=2", "+nocookie"])
        .output()
        .expect("dig runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let status = text
        .lines()
        .find_map(|l| l.split("status: ").nth(1))
        .map(|s| s.split(',').next().unwrap_or("").to_string())
        .unwrap_or_else(|| format!("no reply: {text}"));
    let mut answers: Vec<String> = text
        .split(";; ANSWER SECTION:")
        .nth(1)
        .map(|s| {
            s.lines()
                .skip(1)
                .take_while(|l| !l.trim().is_empty())
                .filter(|l| l.split_whitespace().nth(3) == Some(rtype))
                .filter_map(|l| l.split_whitespace().nth(4).map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    answers.sort();
    (status, answers)
}

/// Waits until `dig` gets exactly `want` for `name`/`rtype` through `addr`.
pub fn wait_dig(addr: SocketAddr, name: &str, rtype: &str, want: &[&str], timeout: Duration) {
    let t0 = Instant::now();
    let mut want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
    want.sort();
    loop {
        let (status, got) = dig(addr, name, rtype);
        if got == want {
            return;
        }
        assert!(
            t0.elapsed() < timeout,
            "{name} {rtype} via {addr}: wanted {want:?}, still {status} {got:?} after {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// dnsmasq on `listen` forwarding only `zone` to `upstream` (the split-DNS set-up of
/// docs/desktop.md): no /etc/resolv.conf upstreams, no /etc/hosts, no cache.
pub fn dnsmasq(listen: SocketAddr, zone: &str, upstream: SocketAddr) -> Proc {
    let mut cmd = Command::new(debian_tool("dnsmasq"));
    cmd.args([
        "--keep-in-foreground",
        "--conf-file=/dev/null",
        "--no-resolv",
        "--no-hosts",
        "--no-poll",
        "--cache-size=0",
        "--bind-interfaces",
        "--log-facility=-",
        "--pid-file=",
        "--user=root",
        &format!("--listen-address={}", listen.ip()),
        &format!("--port={}", listen.port()),
        &format!("--server=/{zone}/{}#{}", upstream.ip(), upstream.port()),
    ]);
    let mut p = Proc::spawn("dnsmasq", &mut cmd);
    wait_tcp(listen, &mut p, Duration::from_secs(10));
    p
}

/// CoreDNS on `listen` with one server block forwarding `zone` to `upstream` (the stanza of
/// docs/in-cluster.md); `dir` holds the Corefile.
pub fn coredns_forwarding(
    dir: &Path,
    listen: SocketAddr,
    zone: &str,
    upstream: SocketAddr,
) -> Proc {
    let corefile = dir.join("Corefile");
    std::fs::write(
        &corefile,
        format!(
            "{zone}:{port} {{\n    bind {ip}\n    errors\n    forward . {upstream}\n}}\n",
            port = listen.port(),
            ip = listen.ip()
        ),
    )
    .unwrap();
    let mut cmd = Command::new(coredns());
    cmd.arg("-conf").arg(&corefile).current_dir(dir);
    let mut p = Proc::spawn("coredns", &mut cmd);
    wait_tcp(listen, &mut p, Duration::from_secs(20));
    p
}
