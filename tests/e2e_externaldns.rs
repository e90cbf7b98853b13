//! The real ExternalDNS v0.23.0 (`e2e/tools.sh externaldns`) with `--provider=webhook` against
//! `zonegate webhook` in cluster mode, on the e2e control plane, and `zonegate serve --zone`
//! answering what it stores. The DNSZone reads only DNSEndpoints, so every answer went
//! Ingress/Service -> ExternalDNS -> webhook -> DNSEndpoint -> serve.

mod support;
use support::{cluster, peers, sockets};

use cluster::*;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use serde_json::json;
use std::time::Duration;
use support::TestNamespace;

const T: Duration = Duration::from_secs(20);

fn ingress(name: &str, host: &str, annotations: &str) -> String {
    format!(
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: {name}\n  annotations: {{{annotations}}}\nspec:\n  rules: [{{host: {host}}}]\n"
    )
}

fn lb(ip: &str) -> serde_json::Value {
    json!({"loadBalancer": {"ingress": [{"ip": ip}]}})
}

fn txt(dns: std::net::SocketAddr, name: &str) -> Vec<String> {
    answer(dns, name, RecordType::TXT).1
}

/// Waits until the TXT answer at `name` satisfies `ok` (the webhook writes one DNSEndpoint per
/// name, so a record and its ownership TXT can be published a moment apart).
fn wait_txt(dns: std::net::SocketAddr, name: &str, ok: impl Fn(&[String]) -> bool) -> Vec<String> {
    let t0 = std::time::Instant::now();
    loop {
        let got = txt(dns, name);
        if ok(&got) {
            return got;
        }
        assert!(t0.elapsed() < T, "TXT {name}: still {got:?} after {T:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the e2e control plane and ExternalDNS: make test"]
async fn sync_upsert_only_and_ownership() {
    let env = support::env();
    let client = support::client().await;
    let ns = TestNamespace::create(&client).await;
    let ns = ns.name().to_string();
    let d = format!("{ns}.example.com");
    apply(
        &ns,
        &zone_yaml("z", &d, "  sources: {kinds: [DNSEndpoint]}\n"),
    );
    let (_hook, hook_addr) = peers::webhook(&format!("{ns}/z"), Some(&env.kubeconfig), None);
    let s = ClusterServer::start(&ns, "z");
    let once = |extra: &[&str]| peers::external_dns_once(&env.kubeconfig, &ns, hook_addr, extra);
    let owner_a = ["--txt-owner-id=owner-a", "--policy=sync"];

    // an Ingress and a LoadBalancer Service appear
    apply(&ns, &ingress("web", &format!("web.{d}"), ""));
    patch_status(&ns, "ingress", "web", lb("192.0.2.10"));
    apply(
        &ns,
        &format!(
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: api\n  annotations: {{external-dns.kubernetes.io/hostname: api.{d}}}\nspec:\n  type: LoadBalancer\n  ports: [{{port: 80}}]\n"
        ),
    );
    patch_status(&ns, "service", "api", lb("192.0.2.20"));
    let took = once(&owner_a);
    eprintln!("external-dns --once (first sync) took {took:?}");
    wait_answer(
        s.dns,
        &format!("web.{d}."),
        RecordType::A,
        &["192.0.2.10"],
        T,
    );
    wait_answer(
        s.dns,
        &format!("api.{d}."),
        RecordType::A,
        &["192.0.2.20"],
        T,
    );
    // the TXT registry's ownership record came back exactly as ExternalDNS wrote it
    let owned = wait_txt(s.dns, &format!("a-web.{d}."), |t| t.len() == 1);
    assert!(
        owned[0].contains(
            "heritage=external-dns,external-dns/owner=owner-a,external-dns/resource=ingress/"
        ),
        "{owned:?}"
    );
    // stored as labelled DNSEndpoints in the zone's namespace
    let listed = support::kubectl_ok(&[
        "get",
        "dnsendpoints",
        "-n",
        &ns,
        "-l",
        "app.kubernetes.io/managed-by=zonegate-webhook,zonegate.dev/webhook-zone=z",
        "-o",
        "name",
    ]);
    assert!(listed.lines().count() >= 4, "{listed}");

    // a second run with nothing changed is a no-op (the records read back match)
    once(&owner_a);
    wait_answer(
        s.dns,
        &format!("web.{d}."),
        RecordType::A,
        &["192.0.2.10"],
        T,
    );

    // changed target -> new answer
    patch_status(&ns, "ingress", "web", lb("192.0.2.11"));
    once(&owner_a);
    wait_answer(
        s.dns,
        &format!("web.{d}."),
        RecordType::A,
        &["192.0.2.11"],
        T,
    );

    // another owner cannot take the names over, nor delete them under sync
    apply(&ns, &ingress("web-b", &format!("web.{d}"), ""));
    patch_status(&ns, "ingress", "web-b", lb("192.0.2.99"));
    once(&["--txt-owner-id=owner-b", "--policy=sync"]);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        answer(s.dns, &format!("web.{d}."), RecordType::A).1,
        vec!["192.0.2.11"]
    );
    assert_eq!(
        answer(s.dns, &format!("api.{d}."), RecordType::A).1,
        vec!["192.0.2.20"]
    );
    assert!(txt(s.dns, &format!("a-web.{d}."))[0].contains("owner=owner-a"));
    delete(&ns, "ingress", "web-b");

    // deleted Ingress: kept under upsert-only, gone under sync
    delete(&ns, "ingress", "web");
    once(&["--txt-owner-id=owner-a", "--policy=upsert-only"]);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        answer(s.dns, &format!("web.{d}."), RecordType::A).1,
        vec!["192.0.2.11"]
    );
    once(&owner_a);
    wait_answer(s.dns, &format!("web.{d}."), RecordType::A, &[], T);
    assert_eq!(
        answer(s.dns, &format!("web.{d}."), RecordType::A).0,
        ResponseCode::NXDomain
    );
    wait_txt(s.dns, &format!("a-web.{d}."), |t| t.is_empty());
    // the Service's name is untouched
    assert_eq!(
        answer(s.dns, &format!("api.{d}."), RecordType::A).1,
        vec!["192.0.2.20"]
    );
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the e2e control plane and ExternalDNS: make test"]
async fn txt_prefix_round_trips() {
    let env = support::env();
    let client = support::client().await;
    let ns = TestNamespace::create(&client).await;
    let ns = ns.name().to_string();
    let d = format!("{ns}.example.com");
    apply(
        &ns,
        &zone_yaml("z", &d, "  sources: {kinds: [DNSEndpoint]}\n"),
    );
    let (_hook, hook_addr) = peers::webhook(&format!("{ns}/z"), Some(&env.kubeconfig), None);
    let s = ClusterServer::start(&ns, "z");
    let flags = [
        "--txt-owner-id=owner-p",
        "--txt-prefix=reg-",
        "--policy=sync",
    ];
    let once = || peers::external_dns_once(&env.kubeconfig, &ns, hook_addr, &flags);
    apply(&ns, &ingress("web", &format!("web.{d}"), ""));
    patch_status(&ns, "ingress", "web", lb("192.0.2.30"));
    once();
    wait_answer(
        s.dns,
        &format!("web.{d}."),
        RecordType::A,
        &["192.0.2.30"],
        T,
    );
    let owned = wait_txt(s.dns, &format!("reg-a-web.{d}."), |t| t.len() == 1);
    assert!(owned[0].contains("external-dns/owner=owner-p"), "{owned:?}");
    // ownership is recognised through the prefixed record: an update and a delete go through
    patch_status(&ns, "ingress", "web", lb("192.0.2.31"));
    once();
    wait_answer(
        s.dns,
        &format!("web.{d}."),
        RecordType::A,
        &["192.0.2.31"],
        T,
    );
    delete(&ns, "ingress", "web");
    once();
    wait_answer(s.dns, &format!("web.{d}."), RecordType::A, &[], T);
    wait_txt(s.dns, &format!("reg-a-web.{d}."), |t| t.is_empty());
}

/// The Desktop Kubernetes flow: ExternalDNS with the webhook provider and the example Ingress
/// (its `external-dns.alpha.kubernetes.io/target` is its own host) ends with the name resolving
/// on the host to the ingress address, by hosts file and by split DNS (dnsmasq).
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the e2e control plane, ExternalDNS and dnsmasq: make test"]
async fn desktop_kubernetes_flow_hosts_file_and_split_dns() {
    let env = support::env();
    let client = support::client().await;
    let ns = TestNamespace::create(&client).await;
    let ns = ns.name().to_string();
    let d = format!("{ns}.dtk.io");
    // default sources: serve --zone reads the Ingress too, and the webhook's DNSEndpoints
    apply(&ns, &zone_yaml("dtk", &d, ""));
    let (_hook, hook_addr) = peers::webhook(&format!("{ns}/dtk"), Some(&env.kubeconfig), None);
    let s = ClusterServer::start(&ns, "dtk");
    let host = format!("foo.{d}");
    apply(
        &ns,
        &ingress(
            "foo",
            &host,
            &format!("external-dns.alpha.kubernetes.io/target: {host}"),
        ),
    );
    patch_status(&ns, "ingress", "foo", lb("192.0.2.60"));
    peers::external_dns_once(
        &env.kubeconfig,
        &ns,
        hook_addr,
        &[
            "--txt-owner-id=dtk",
            "--policy=sync",
            "--enable-legacy-annotation-prefix",
        ],
    );
    // ExternalDNS sent the CNAME to itself; it is stored as sent (and its ownership record)...
    let stored = support::kubectl_ok(&[
        "get",
        "dnsendpoints",
        "-n",
        &ns,
        "-l",
        "app.kubernetes.io/managed-by=zonegate-webhook",
        "-o",
        "jsonpath={range .items[*].spec.endpoints[*]}{.dnsName} {.recordType} {.targets[0]}{\"\\n\"}{end}",
    ]);
    assert!(stored.contains(&format!("{host} CNAME {host}")), "{stored}");
    assert!(stored.contains(&format!("cname-foo.{d} TXT")), "{stored}");
    // ...and a second run sees its records and changes nothing (no endless re-create)
    peers::external_dns_once(
        &env.kubeconfig,
        &ns,
        hook_addr,
        &[
            "--txt-owner-id=dtk",
            "--policy=sync",
            "--enable-legacy-annotation-prefix",
        ],
    );
    // the name answers with the ingress address, not a CNAME loop
    wait_answer(
        s.dns,
        &format!("{host}."),
        RecordType::A,
        &["192.0.2.60"],
        T,
    );
    assert!(
        answer(s.dns, &format!("{host}."), RecordType::CNAME)
            .1
            .is_empty()
    );

    // split DNS: dnsmasq forwards the zone to zonegate
    let listen = peers::free_addr();
    let _dnsmasq = peers::dnsmasq(listen, &d, s.dns);
    peers::wait_dig(listen, &format!("{host}."), "A", &["192.0.2.60"], T);

    // hosts file: the block follows the zone
    let dir = sockets::TempDir::new("dtk-hosts");
    let hosts = dir.path().join("hosts");
    std::fs::write(&hosts, "127.0.0.1 localhost\r\n").unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_zonegate"));
    cmd.args([
        "hosts",
        "--zone",
        &format!("{ns}/dtk"),
        "--watch",
        "--hosts-file",
    ])
    .arg(&hosts)
    .arg("--kubeconfig")
    .arg(&env.kubeconfig);
    let mut hosts_proc = peers::Proc::spawn("zonegate hosts", &mut cmd);
    let want = format!("192.0.2.60 {host}\r\n");
    let t0 = std::time::Instant::now();
    loop {
        let text = std::fs::read_to_string(&hosts).unwrap_or_default();
        if text.contains(&want) {
            assert!(
                text.starts_with("127.0.0.1 localhost\r\n# BEGIN zonegate"),
                "{text}"
            );
            break;
        }
        hosts_proc.assert_running();
        assert!(t0.elapsed() < T, "hosts file never got {want:?}: {text:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    // a changed ingress address reaches both
    patch_status(&ns, "ingress", "foo", lb("192.0.2.61"));
    peers::wait_dig(listen, &format!("{host}."), "A", &["192.0.2.61"], T);
    let t0 = std::time::Instant::now();
    while !std::fs::read_to_string(&hosts)
        .unwrap()
        .contains(&format!("192.0.2.61 {host}\r\n"))
    {
        assert!(t0.elapsed() < T, "hosts file not updated");
        std::thread::sleep(Duration::from_millis(100));
    }
}
