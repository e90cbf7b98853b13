//! zonegate behind the resolvers users already run, with `dig` as the client:
//! - CoreDNS v1.14.7 (`e2e/tools.sh coredns`) forwarding a zone to `zonegate serve --zone` on
//!   the e2e control plane (docs/in-cluster.md), as a pod resolving an Ingress's name would;
//! - dnsmasq (Debian) forwarding a zone to `zonegate serve --manifests` (split DNS,
//!   docs/desktop.md), with no upstream for other names.

mod support;
use support::{cluster, peers, sockets};

use cluster::*;
use serde_json::json;
use sockets::{Server, TempDir, quickstart};
use std::time::Duration;
use support::TestNamespace;

const T: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the e2e control plane and CoreDNS: make test"]
async fn coredns_forwards_the_zone_to_serve_zone() {
    let client = support::client().await;
    let ns = TestNamespace::create(&client).await;
    let ns = ns.name().to_string();
    let d = format!("{ns}.example.com");
    apply(&ns, &zone_yaml("z", &d, ""));
    ingress_with_ip(&ns, "web", &format!("web.{d}"), "192.0.2.50");
    let s = ClusterServer::start(&ns, "z");
    let dir = TempDir::new("coredns");
    let core = peers::free_addr();
    let _coredns = peers::coredns_forwarding(dir.path(), core, &d, s.dns);

    let web = format!("web.{d}.");
    peers::wait_dig(core, &web, "A", &["192.0.2.50"], T);
    // a change reaches the pod through CoreDNS (no cache in this block)
    patch_status(
        &ns,
        "ingress",
        "web",
        json!({"loadBalancer": {"ingress": [{"ip": "192.0.2.51"}]}}),
    );
    peers::wait_dig(core, &web, "A", &["192.0.2.51"], T);
    // the authoritative data comes through: the SOA of the zone, NXDOMAIN for a missing name
    let (status, soa) = peers::dig(core, &format!("{d}."), "SOA");
    assert_eq!((status.as_str(), soa.len()), ("NOERROR", 1), "{soa:?}");
    assert_eq!(peers::dig(core, &format!("nope.{d}."), "A").0, "NXDOMAIN");
    // CoreDNS has no block for other names: not forwarded anywhere
    let (status, answers) = peers::dig(core, "example.org.", "A");
    assert!(
        answers.is_empty() && status == "REFUSED",
        "{status} {answers:?}"
    );
}

#[test]
#[ignore = "needs dnsmasq (e2e/deps.sh): make test"]
fn dnsmasq_split_dns_forwards_only_the_zone() {
    let dir = quickstart();
    let s = Server::start(dir.path());
    let listen = peers::free_addr();
    let _dnsmasq = peers::dnsmasq(listen, "acme.example.com", s.dns);
    // the same answer through dnsmasq as from zonegate itself
    let direct = peers::dig(s.dns, "www.acme.example.com.", "A");
    assert_eq!(direct.0, "NOERROR");
    assert!(!direct.1.is_empty());
    peers::wait_dig(
        listen,
        "www.acme.example.com.",
        "A",
        &direct.1.iter().map(String::as_str).collect::<Vec<_>>(),
        T,
    );
    assert_eq!(
        peers::dig(listen, "nope.acme.example.com.", "A").0,
        "NXDOMAIN"
    );
    // other names are not forwarded: no upstream from /etc/resolv.conf (--no-resolv); dnsmasq
    // answers REFUSED (older versions SERVFAIL), never an answer
    let (status, answers) = peers::dig(listen, "example.org.", "A");
    assert!(
        answers.is_empty() && status != "NOERROR",
        "{status} {answers:?}"
    );
}
