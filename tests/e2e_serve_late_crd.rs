//! A source kind whose CRD is missing does not block the zone, and is picked up when the CRD is
//! installed. Its own test binary: it removes and restores cluster-wide CRDs.

mod support;
use support::cluster;

use cluster::*;
use hickory_proto::rr::RecordType;
use serde_json::json;
use std::time::Duration;
use support::TestNamespace;

const GATEWAY_CRDS: [&str; 2] = [
    "httproutes.gateway.networking.k8s.io",
    "gateways.gateway.networking.k8s.io",
];

fn crd_dir() -> std::path::PathBuf {
    let out = std::process::Command::new(support::repo_root().join("e2e/build-control-plane.sh"))
        .output()
        .expect("build-control-plane.sh runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let dir = text
        .lines()
        .find_map(|l| l.strip_prefix("CRDS="))
        .expect("CRDS= line");
    dir.into()
}

/// Re-installs the Gateway API CRDs even if the test fails.
struct Restore(std::path::PathBuf);
impl Drop for Restore {
    fn drop(&mut self) {
        for f in [
            "gateway.networking.k8s.io_httproutes.yaml",
            "gateway.networking.k8s.io_gateways.yaml",
        ] {
            let p = self.0.join(f);
            let _ = support::kubectl(&[
                "apply",
                "--server-side",
                "--force-conflicts",
                "-f",
                p.to_str().unwrap(),
            ]);
        }
        let _ = support::kubectl(&[
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd/httproutes.gateway.networking.k8s.io",
            "crd/gateways.gateway.networking.k8s.io",
        ]);
    }
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the e2e control plane: make test"]
async fn missing_gateway_api_crds_do_not_block_and_are_picked_up_later() {
    let dir = crd_dir();
    assert!(
        dir.join("gateway.networking.k8s.io_httproutes.yaml")
            .is_file(),
        "CRD files in {}",
        dir.display()
    );
    let _restore = Restore(dir.clone());
    let client = support::client().await;
    let ns = TestNamespace::create(&client).await;
    let n = ns.name().to_string();
    let d = format!("{n}.example.com");
    for crd in GATEWAY_CRDS {
        support::kubectl_ok(&["delete", "crd", crd, "--wait=true"]);
    }
    apply(&n, &zone_yaml("z", &d, ""));
    ingress_with_ip(&n, "web", &format!("web.{d}"), "192.0.2.5");
    let s = ClusterServer::start(&n, "z");
    wait_answer(
        s.dns,
        &format!("web.{d}."),
        RecordType::A,
        &["192.0.2.5"],
        Duration::from_secs(10),
    );

    // install the CRDs: routes are picked up without a restart
    drop(_restore);
    apply(
        &n,
        "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: gw}\nspec:\n  gatewayClassName: x\n  listeners: [{name: http, protocol: HTTP, port: 80}]\n",
    );
    patch_status(
        &n,
        "gateway",
        "gw",
        json!({"addresses": [{"type": "IPAddress", "value": "192.0.2.6"}]}),
    );
    apply(
        &n,
        &format!(
            "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: r}}\nspec:\n  parentRefs: [{{name: gw}}]\n  hostnames: [app.{d}]\n"
        ),
    );
    patch_status(
        &n,
        "httproute",
        "r",
        json!({"parents": [{"parentRef": {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "gw"}, "controllerName": "example.net/gw", "conditions": [{"type": "Accepted", "status": "True", "reason": "Accepted", "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}]}),
    );
    let took = wait_answer(
        s.dns,
        &format!("app.{d}."),
        RecordType::A,
        &["192.0.2.6"],
        Duration::from_secs(40),
    );
    eprintln!("HTTPRoute served {took:?} after its CRD was installed");
    wait_answer(
        s.dns,
        &format!("web.{d}."),
        RecordType::A,
        &["192.0.2.5"],
        Duration::from_secs(1),
    );
}
