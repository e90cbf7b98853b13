//! An apiserver outage: `serve --zone` keeps answering from its last known data, with zero
//! failed or changed answers during 30 s without kube-apiserver, and serves changes made after
//! it returns. Its own test binary: stopping the apiserver would disturb other tests.

mod support;
use support::cluster;

use cluster::*;
use hickory_proto::rr::RecordType;
use serde_json::json;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use support::TestNamespace;

fn cluster_cmd(args: &[&str]) {
    let run = support::env().kubeconfig.parent().unwrap().to_path_buf();
    let st = Command::new(support::repo_root().join("e2e/cluster"))
        .args(args)
        .arg(&run)
        .status()
        .expect("e2e/cluster runs");
    assert!(st.success(), "e2e/cluster {args:?} failed");
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the e2e control plane: make test"]
async fn apiserver_outage_changes_nothing_and_changes_after_return_are_served() {
    let client = support::client().await;
    let ns = TestNamespace::create(&client).await;
    let ns_name = ns.name().to_string();
    let d = format!("{ns_name}.example.com");
    apply(
        &ns_name,
        &zone_yaml(
            "z",
            &d,
            "  records: [{name: static, type: A, values: [192.0.2.1]}]\n",
        ),
    );
    ingress_with_ip(&ns_name, "web", &format!("web.{d}"), "192.0.2.2");
    let s = ClusterServer::start(&ns_name, "z");
    let web = format!("web.{d}.");
    wait_answer(
        s.dns,
        &web,
        RecordType::A,
        &["192.0.2.2"],
        Duration::from_secs(20),
    );
    let zone = format!("{d}.");
    let serial = soa_serial(s.dns, &zone);

    // steady query loop over the whole outage
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, bad) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let looper = {
        let (stop, ok, bad, dns, web, zone) = (
            stop.clone(),
            ok.clone(),
            bad.clone(),
            s.dns,
            web.clone(),
            zone.clone(),
        );
        std::thread::spawn(move || {
            let mut failures = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let a = std::panic::catch_unwind(|| answer(dns, &web, RecordType::A));
                let z = std::panic::catch_unwind(|| soa_serial(dns, &zone));
                match (a, z) {
                    (Ok((_, v)), Ok(sn)) if v == vec!["192.0.2.2".to_string()] && sn == serial => {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    other => {
                        bad.fetch_add(1, Ordering::Relaxed);
                        if failures.len() < 5 {
                            failures.push(format!("{:?}", other.0.ok()));
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            failures
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    /// Brings the apiserver back even if an assertion fails during the outage.
    struct Restart(bool);
    impl Drop for Restart {
        fn drop(&mut self) {
            if self.0 {
                cluster_cmd(&["start-apiserver"]);
            }
        }
    }
    cluster_cmd(&["stop-apiserver"]);
    let mut restart = Restart(true);
    let down = Instant::now();
    std::thread::sleep(Duration::from_secs(30));
    let ready = s.ready();
    let metrics = s.metrics();
    restart.0 = false;
    cluster_cmd(&["start-apiserver"]);
    let outage = down.elapsed();
    assert!(ready, "still ready during the outage");
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let failures = looper.join().unwrap();
    let (ok, bad) = (ok.load(Ordering::Relaxed), bad.load(Ordering::Relaxed));
    eprintln!("outage {outage:?}: {ok} good answers, {bad} failed or changed");
    assert_eq!(
        bad, 0,
        "failed or changed answers during the outage: {failures:?}"
    );
    assert!(ok > 1000, "the loop really ran ({ok} answers)");
    assert!(
        metrics.contains("zonegate_source_watch_failing{"),
        "staleness exposed: {metrics}"
    );
    assert!(
        !metrics.contains("zonegate_source_stale_seconds 0\n"),
        "stale seconds > 0 during the outage"
    );

    // after the apiserver returns, changes are served (watches resync with backoff)
    patch_status(
        &ns_name,
        "ingress",
        "web",
        json!({"loadBalancer": {"ingress": [{"ip": "192.0.2.3"}]}}),
    );
    let took = wait_answer(
        s.dns,
        &web,
        RecordType::A,
        &["192.0.2.3"],
        Duration::from_secs(90),
    );
    eprintln!("change after the outage served in {took:?}");
    assert!(soa_serial(s.dns, &zone) > serial);
    drop(ns);
}
