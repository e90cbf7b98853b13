//! Cluster data-plane benchmark: `zonegate serve --zone` against the e2e control plane.
//!
//!   e2e/cluster up; set -a; . <run>/env; set +a
//!   cargo run --release --example bench-cluster -- [OBJECTS] [CHANGES]
//!
//! Creates a zone with OBJECTS Ingresses (default 10 000, each with a load-balancer IP) in a
//! fresh namespace, then measures: time from process start to ready and to answering the last
//! name; RSS beyond an empty-zone server; and the time from an Ingress status change in the
//! apiserver to the changed DNS answer, over CHANGES changes (default 200): median and p99.
//! Prints a Markdown table.

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::networking::v1::Ingress;
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.local_addr().unwrap().port()
}

fn ip(i: usize, generation: usize) -> String {
    format!("10.{}.{}.{}", generation % 200 + 1, (i >> 8) & 255, i & 255)
}

/// One A query; the first address in the answer.
fn query_a(server: SocketAddr, name: &str) -> Option<String> {
    use hickory_proto::op::{Message, MessageType, OpCode, Query};
    use hickory_proto::rr::{Name, RecordType};
    let mut m = Message::new(7, MessageType::Query, OpCode::Query);
    m.add_query(Query::query(Name::from_ascii(name).ok()?, RecordType::A));
    let s = UdpSocket::bind("127.0.0.1:0").ok()?;
    s.set_read_timeout(Some(Duration::from_millis(200))).ok()?;
    s.send_to(&m.to_vec().ok()?, server).ok()?;
    let mut buf = [0u8; 1500];
    let (n, _) = s.recv_from(&mut buf).ok()?;
    let r = Message::from_vec(&buf[..n]).ok()?;
    r.answers
        .iter()
        .find_map(|a| a.data.ip_addr())
        .map(|i| i.to_string())
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

struct Server {
    child: Child,
    dns: SocketAddr,
    http: SocketAddr,
}
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(bin: &str, zone: &str) -> Server {
    let dns: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let http: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let child = Command::new(bin)
        .args([
            "serve",
            "--zone",
            zone,
            "--listen",
            &dns.to_string(),
            "--http",
            &http.to_string(),
        ])
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("zonegate starts");
    Server { child, dns, http }
}

fn ready(http: SocketAddr) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(http) else {
        return false;
    };
    let _ = write!(
        s,
        "GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    );
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.starts_with("HTTP/1.1 200")
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let objects: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let changes: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(200);
    let bin = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("zonegate");
    let bin = bin.to_str().unwrap().to_string();
    assert!(
        std::path::Path::new(&bin).exists(),
        "build the binary first: cargo build --release ({bin})"
    );
    let client = Client::try_default()
        .await
        .expect("KUBECONFIG of an e2e cluster");
    let ns = format!("zg-bench-{}", std::process::id());
    let nsapi: Api<Namespace> = Api::all(client.clone());
    nsapi
        .create(
            &PostParams::default(),
            &serde_json::from_value(serde_json::json!({"metadata": {"name": ns}})).unwrap(),
        )
        .await
        .unwrap();
    let domain = format!("{ns}.example.com");
    let zones: Api<zonegate::api::DNSZone> = Api::namespaced(client.clone(), &ns);
    for (name, dom) in [("z", domain.clone()), ("empty", format!("empty.{domain}"))] {
        let z: zonegate::api::DNSZone = serde_json::from_value(serde_json::json!({
            "apiVersion": "zonegate.dev/v1alpha1", "kind": "DNSZone", "metadata": {"name": name},
            "spec": {"domain": dom, "sources": {"kinds": if name == "empty" { vec!["DNSEndpoint"] } else { vec!["Ingress"] }}}
        })).unwrap();
        zones.create(&PostParams::default(), &z).await.unwrap();
    }
    let ing: Api<Ingress> = Api::namespaced(client.clone(), &ns);
    let t0 = Instant::now();
    futures::stream::iter(0..objects)
        .map(|i| {
            let (ing, domain) = (ing.clone(), domain.clone());
            async move {
                let obj: Ingress = serde_json::from_value(serde_json::json!({
                    "metadata": {"name": format!("web-{i}")},
                    "spec": {"rules": [{"host": format!("host{i}.{domain}")}]}
                })).unwrap();
                ing.create(&PostParams::default(), &obj).await?;
                let st = serde_json::json!({"status": {"loadBalancer": {"ingress": [{"ip": ip(i, 0)}]}}});
                ing.patch_status(&format!("web-{i}"), &PatchParams::default(), &Patch::Merge(&st)).await
            }
        })
        .buffer_unordered(48)
        .try_collect::<Vec<_>>()
        .await
        .expect("create Ingresses");
    eprintln!("created {objects} Ingresses in {:?}", t0.elapsed());

    // empty-zone baseline
    let empty = start(&bin, &format!("{ns}/empty"));
    while !ready(empty.http) {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(500));
    let empty_rss = rss_kib(empty.child.id());
    drop(empty);

    let started = Instant::now();
    let s = start(&bin, &format!("{ns}/z"));
    while !ready(s.http) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let to_ready = started.elapsed();
    let last = format!("host{}.{domain}.", objects - 1);
    while query_a(s.dns, &last).as_deref() != Some(ip(objects - 1, 0).as_str()) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let to_answer = started.elapsed();
    std::thread::sleep(Duration::from_secs(1));
    let rss = rss_kib(s.child.id());

    let mut lat = Vec::new();
    for c in 0..changes {
        let i = (c * 7919) % objects;
        let want = ip(i, c + 1);
        let name = format!("host{i}.{domain}.");
        let st = serde_json::json!({"status": {"loadBalancer": {"ingress": [{"ip": want}]}}});
        let t = Instant::now();
        ing.patch_status(
            &format!("web-{i}"),
            &PatchParams::default(),
            &Patch::Merge(&st),
        )
        .await
        .unwrap();
        loop {
            if query_a(s.dns, &name).as_deref() == Some(want.as_str()) {
                break;
            }
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "change {c} not served"
            );
            std::thread::sleep(Duration::from_micros(500));
        }
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let (p50, p99, max) = (
        pct(&mut lat.clone(), 0.5),
        pct(&mut lat.clone(), 0.99),
        pct(&mut lat, 1.0),
    );
    drop(s);
    let _ = nsapi.delete(&ns, &Default::default()).await;

    println!(
        "| objects | time to ready | time to answer the last name | RSS | RSS empty zone | RSS beyond empty | change→answer median | p99 | max ({changes} changes) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    println!(
        "| {objects} Ingresses | {:.2} s | {:.2} s | {:.1} MiB | {:.1} MiB | {:.1} MiB | {p50:.1} ms | {p99:.1} ms | {max:.1} ms |",
        to_ready.as_secs_f64(),
        to_answer.as_secs_f64(),
        rss as f64 / 1024.0,
        empty_rss as f64 / 1024.0,
        (rss.saturating_sub(empty_rss)) as f64 / 1024.0
    );
}
