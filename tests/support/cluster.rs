//! Helpers for end-to-end tests of `zonegate serve --zone` against the e2e control plane.
#![allow(dead_code)]

use super::sockets::{free_port, http_get, query_msg, udp};
use crate::support;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{RData, RecordType};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `zonegate serve --zone`, killed on drop.
pub struct ClusterServer {
    pub child: Child,
    pub dns: SocketAddr,
    pub http: SocketAddr,
}

impl ClusterServer {
    /// Starts the binary and waits until /readyz says ready. A free port can be taken by another
    /// process between `free_port` and the server's bind (tests run in parallel): a server that
    /// exits before it is ready is started again on new ports, at most five times.
    pub fn start(ns: &str, zone: &str) -> Self {
        Self::start_as(ns, zone, &support::env().kubeconfig)
    }

    /// [`start`](Self::start) with these credentials (a ServiceAccount's, as a pod has).
    pub fn start_as(ns: &str, zone: &str, kubeconfig: &std::path::Path) -> Self {
        for _ in 0..5 {
            let mut s = Self::spawn_as(ns, zone, kubeconfig);
            if s.wait_ready_or_exit(Duration::from_secs(60)) {
                return s;
            }
        }
        panic!("serve --zone {ns}/{zone} exited before it was ready, 5 times");
    }

    /// [`start`](Self::start) with more flags (retried on new ports like it).
    pub fn start_with(ns: &str, zone: &str, extra: &[&str]) -> Self {
        for _ in 0..5 {
            let mut s = Self::spawn_with(ns, zone, &support::env().kubeconfig, extra);
            if s.wait_ready_or_exit(Duration::from_secs(60)) {
                return s;
            }
        }
        panic!("serve --zone {ns}/{zone} {extra:?} exited before it was ready, 5 times");
    }

    /// Waits until /readyz says ready (true) or the process exits (false).
    fn wait_ready_or_exit(&mut self, timeout: Duration) -> bool {
        let t0 = Instant::now();
        while !self.ready() {
            if let Ok(Some(status)) = self.child.try_wait() {
                eprintln!("serve --zone exited before it was ready ({status}); starting it again");
                return false;
            }
            assert!(
                t0.elapsed() < timeout,
                "serve --zone not ready after {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        true
    }

    pub fn spawn(ns: &str, zone: &str) -> Self {
        Self::spawn_as(ns, zone, &support::env().kubeconfig)
    }

    pub fn spawn_as(ns: &str, zone: &str, kubeconfig: &std::path::Path) -> Self {
        Self::spawn_with(ns, zone, kubeconfig, &[])
    }

    /// [`spawn_as`](Self::spawn_as) with more flags.
    pub fn spawn_with(ns: &str, zone: &str, kubeconfig: &std::path::Path, extra: &[&str]) -> Self {
        let dns: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let http: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_zonegate"))
            .args(["serve", "--zone", &format!("{ns}/{zone}")])
            .args(["--listen", &dns.to_string(), "--http", &http.to_string()])
            .args(extra)
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .env(
                "RUST_LOG",
                std::env::var("ZONEGATE_E2E_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("zonegate starts");
        Self { child, dns, http }
    }

    pub fn ready(&self) -> bool {
        http_get(self.http, "/readyz")
            .map(|(c, _)| c == 200)
            .unwrap_or(false)
    }

    pub fn wait_ready(&self, timeout: Duration) {
        let t0 = Instant::now();
        while !self.ready() {
            assert!(
                t0.elapsed() < timeout,
                "serve --zone not ready after {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn metrics(&self) -> String {
        http_get(self.http, "/metrics")
            .map(|(_, b)| b)
            .unwrap_or_default()
    }
}

impl Drop for ClusterServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The answer to `name`/`rtype`: the rcode and the RDATA of the answer records, sorted.
pub fn answer(dns: SocketAddr, name: &str, rtype: RecordType) -> (ResponseCode, Vec<String>) {
    let m = udp(dns, &query_msg(name, rtype, None));
    let mut v: Vec<String> = m
        .answers
        .iter()
        .filter(|r| r.record_type() == rtype)
        .map(|r| r.data.to_string())
        .collect();
    v.sort();
    (m.metadata.response_code, v)
}

/// Waits until `name`/`rtype` answers exactly `want` (sorted RDATA); returns how long it took.
pub fn wait_answer(
    dns: SocketAddr,
    name: &str,
    rtype: RecordType,
    want: &[&str],
    timeout: Duration,
) -> Duration {
    let t0 = Instant::now();
    let mut want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
    want.sort();
    loop {
        let (_, got) = answer(dns, name, rtype);
        if got == want {
            return t0.elapsed();
        }
        assert!(
            t0.elapsed() < timeout,
            "{name} {rtype}: wanted {want:?}, still {got:?} after {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn soa_serial(dns: SocketAddr, zone: &str) -> u32 {
    let m = udp(dns, &query_msg(zone, RecordType::SOA, None));
    match m.answers.first().map(|r| &r.data) {
        Some(RData::SOA(s)) => s.serial,
        other => panic!("no SOA for {zone}: {other:?}"),
    }
}

/// `kubectl apply -n NS -f -`.
pub fn apply(ns: &str, yaml: &str) {
    let out = support::kubectl_with_stdin(&["apply", "-n", ns, "-f", "-"], Some(yaml));
    assert!(
        out.status.success(),
        "kubectl apply failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Merge-patches an object's status subresource, as a controller would.
pub fn patch_status(ns: &str, resource: &str, name: &str, status: serde_json::Value) {
    let body = serde_json::json!({ "status": status }).to_string();
    support::kubectl_ok(&[
        "patch",
        "-n",
        ns,
        resource,
        name,
        "--subresource=status",
        "--type=merge",
        "-p",
        &body,
    ]);
}

/// An Ingress `name` for `host` in `ns`, with `ip` as its load balancer's address in its status
/// (what an ingress controller would write).
pub fn ingress_with_ip(ns: &str, name: &str, host: &str, ip: &str) {
    apply(
        ns,
        &format!(
            "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {{name: {name}}}\nspec:\n  rules: [{{host: {host}}}]\n"
        ),
    );
    patch_status(
        ns,
        "ingress",
        name,
        serde_json::json!({"loadBalancer": {"ingress": [{"ip": ip}]}}),
    );
}

pub fn delete(ns: &str, resource: &str, name: &str) {
    support::kubectl_ok(&["delete", "-n", ns, resource, name, "--wait=false"]);
}

pub fn zone_yaml(name: &str, domain: &str, extra_spec: &str) -> String {
    format!(
        "apiVersion: zonegate.dev/v1alpha1\nkind: DNSZone\nmetadata: {{name: {name}}}\nspec:\n  domain: {domain}\n{extra_spec}"
    )
}
