//! The run loop: leadership (with a Lease, or always when none is configured), the watches that
//! trigger reconciles, readiness, and the sweeper.
//!
//! **Why a sweeper and not a finalizer.** Objects in the zone's own namespace have the DNSZone as
//! owner, so the garbage collector deletes them. Objects elsewhere cannot have it as owner (an
//! owner reference never crosses namespaces, and a namespaced owner cannot own a cluster-scoped
//! object): the Roles and RoleBindings in source namespaces and the Gateway ClusterRoleBinding.
//! A finalizer on the DNSZone would delete them before the zone goes, but it makes the zone's
//! deletion wait for a running operator: with the operator scaled to zero, uninstalled, or
//! without permission, every DNSZone (and its namespace) hangs in `Terminating` until somebody
//! removes the finalizer by hand. The sweeper instead deletes objects whose zone no longer
//! exists, identified by their labels, on every zone deletion and every minute: an operator that
//! was away catches up when it is back, and nothing ever blocks a deletion. What is left behind
//! meanwhile grants only reads of the namespace that consented (and of Gateways) to a
//! ServiceAccount that no longer exists.

use super::delegated::Checker;
use super::desired::{OwnedKind, ServerSettings, desired_gateway_reader};
use super::error::{Error, RunError};
use super::leader::{self, LeaseSettings};
use super::metrics::OperatorMetrics;
use super::policy::DomainPolicy;
use super::reconcile::{Ctx, error_policy, reconcile};
use super::scope::{Scope, reflect};
use super::stores::{OwnedStores, Stores};
use crate::api::{DNSZone, DNSZoneGrant, ServiceType};
use futures::StreamExt;
use futures::channel::mpsc;
use futures::future::{BoxFuture, FutureExt, Shared};
use k8s_openapi::api::core::v1::Node;
use kube::runtime::controller::{self, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use serde_json::Value;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Everything `zonegate operator` is configured with.
#[derive(Clone, Debug)]
pub struct OperatorConfig {
    pub server: ServerSettings,
    pub policy: Option<DomainPolicy>,
    /// `None`: delegations are not checked (`Delegated` stays Unknown).
    pub checker: Option<Checker>,
    pub check_interval: Duration,
    /// `None`: secondaries are not checked (`SecondariesInSync` stays Unknown).
    pub secondary_checker: Option<super::secondaries::SecondaryChecker>,
    pub secondary_interval: Duration,
    /// TTL written into `status.delegation`.
    pub delegation_ttl: u32,
    /// How long the parent must be ready before a DNSSEC rollover removes the old key
    /// (`rollover.rs`).
    pub rollover_hold: Duration,
    /// Reconciles running at once.
    pub concurrency: u16,
    /// `None`: no leader election (this process always reconciles).
    pub lease: Option<LeaseSettings>,
    /// `/metrics`, `/healthz`, `/readyz`.
    pub http: Option<SocketAddr>,
    /// Name of this replica in Events and the Lease.
    pub identity: String,
    /// A reconcile that takes longer is abandoned and retried: kube's client has no read
    /// timeout, so an API call that is never answered (a connection that died with the
    /// apiserver) would otherwise hold the zone for ever.
    pub reconcile_timeout: Duration,
    /// The namespaces watched and acted in (`--watch-namespace`); see [`Scope`].
    pub scope: Scope,
}

impl Default for OperatorConfig {
    fn default() -> Self {
        Self {
            server: ServerSettings::default(),
            policy: None,
            checker: None,
            check_interval: Duration::from_secs(300),
            secondary_checker: None,
            secondary_interval: Duration::from_secs(60),
            delegation_ttl: 3600,
            rollover_hold: Duration::from_secs(86400),
            concurrency: 16,
            lease: None,
            http: None,
            identity: "zonegate-operator".into(),
            reconcile_timeout: Duration::from_secs(90),
            scope: Scope::All,
        }
    }
}

/// Zones whose verdict may depend on `changed`: itself, zones of the same domain, and zones
/// below it.
fn related_zones(zones: &Store<DNSZone>, changed: &DNSZone) -> Vec<ObjectRef<DNSZone>> {
    zones
        .state_filter(|z| crate::domain::within(&z.spec.domain, &changed.spec.domain))
        .iter()
        .map(|z| ObjectRef::from_obj(z.as_ref()))
        .collect()
}

/// Runs the operator until `shutdown` resolves: with leader election when configured, else
/// reconciling right away.
pub async fn run(
    client: Client,
    config: OperatorConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    let metrics = Arc::new(OperatorMetrics::new());
    if let Some(addr) = config.http {
        crate::process::serve_http("--http", addr, metrics.clone())
            .await
            .map_err(|e| RunError::Http(Box::new(e)))?;
    }
    let config = Arc::new(config);
    let shutdown: Shared<BoxFuture<'static, ()>> = shutdown.boxed().shared();
    match config.lease.clone() {
        None => {
            metrics.leader.set(1);
            tokio::select! {
                r = lead(client, config, metrics.clone()) => r,
                _ = shutdown => Ok(()),
            }
        }
        Some(lease) => {
            let m = metrics.clone();
            leader::run_elected(client.clone(), lease, metrics, shutdown, move || {
                lead(client.clone(), config.clone(), m.clone()).boxed()
            })
            .await
        }
    }
}

/// The leader's work: watch, reconcile, sweep. Returns only on a fatal error.
async fn lead(
    client: Client,
    config: Arc<OperatorConfig>,
    metrics: Arc<OperatorMetrics>,
) -> Result<(), RunError> {
    metrics.ready.store(false, Ordering::Release);
    let all = watcher::Config::default();
    let scope = &config.scope;
    let (zones, zone_stream) = reflect::<DNSZone>(&client, scope, all.clone());
    let (grants, grant_stream) = reflect::<DNSZoneGrant>(&client, scope, all.clone());
    // cluster-scoped, read only: every scope sees every Node
    let (nodes, node_stream) = reflect::<Node>(&client, scope, all.clone());
    let controller = Controller::for_stream(
        futures::stream::pending::<Result<DNSZone, watcher::Error>>(),
        zones.clone(),
    );
    let (owned, controller) = OwnedStores::watch(&client, scope, controller);
    let (synced, synced_rx) = tokio::sync::watch::channel(false);
    let stores = Stores {
        zones: zones.clone(),
        grants,
        nodes,
        owned,
        scope: scope.clone(),
        synced: synced_rx,
    };
    let (recheck_tx, recheck_rx) = mpsc::unbounded();
    let ctx = Arc::new(Ctx::new(
        client.clone(),
        config.clone(),
        stores.clone(),
        metrics.clone(),
        recheck_tx,
    ));

    let z = zones.clone();
    let sweep_ctx = ctx.clone();
    let zone_mapper = move |changed: DNSZone| {
        let key = ObjectRef::from_obj(&changed);
        if z.get(&key).is_none() {
            // Deleted: its objects in other namespaces and its ClusterRoleBinding go now.
            sweep_ctx.sweep.notify_one();
        }
        // Itself too: during the initial list the cache is filled only at its end.
        let mut refs = related_zones(&z, &changed);
        if !refs.contains(&key) {
            refs.push(key);
        }
        refs
    };
    let z = zones.clone();
    let grant_mapper = move |g: DNSZoneGrant| {
        let ns = g.namespace().unwrap_or_default();
        z.state()
            .iter()
            .filter(|zone| zone.spec.sources.namespaces.iter().any(|n| n.0 == ns))
            .map(|zone| ObjectRef::from_obj(zone.as_ref()))
            .collect::<Vec<_>>()
    };
    let z = zones.clone();
    let node_mapper = move |_: Node| {
        z.state()
            .iter()
            .filter(|zone| zone.spec.nameservers.service.type_ == ServiceType::NodePort)
            .map(|zone| ObjectRef::from_obj(zone.as_ref()))
            .collect::<Vec<_>>()
    };
    let controller = controller
        .watches_stream(zone_stream, zone_mapper)
        .watches_stream(grant_stream, grant_mapper)
        .watches_stream(node_stream, node_mapper)
        .reconcile_on(recheck_rx)
        .with_config(controller::Config::default().concurrency(config.concurrency));

    let readiness = {
        let scope = config.scope.to_string();
        let stores = stores.clone();
        let metrics = metrics.clone();
        let ctx = ctx.clone();
        async move {
            if stores.wait_listed().await.is_ok() {
                synced.send_replace(true);
                metrics.ready.store(true, Ordering::Release);
                tracing::info!(%scope, "watch caches synced; reconciling");
                ctx.sweep.notify_one();
            }
        }
    };
    let sweeper = sweep_loop(ctx.clone());
    let run = controller
        .run(reconcile, error_policy, ctx.clone())
        .for_each(|r| async move {
            match r {
                Ok(_) => {}
                Err(controller::Error::ObjectNotFound(_)) => {}
                Err(e) => tracing::debug!(error = %e, "controller"),
            }
        });
    tokio::join!(readiness, async {
        tokio::select! {
            _ = run => {},
            _ = sweeper => {},
        }
    });
    Err(RunError::ControllerStopped)
}

/// Deletes objects of deleted zones that the garbage collector cannot (no owner reference), and
/// keeps the shared Gateway reader ClusterRole in place; on notice and every minute.
async fn sweep_loop(ctx: Arc<Ctx>) {
    let _ = ctx.stores.wait_ready().await;
    let mut role_ok = false;
    loop {
        if !role_ok {
            role_ok = match ensure_gateway_reader(&ctx).await {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot apply the ClusterRole {}", super::GATEWAY_READER_CLUSTER_ROLE);
                    false
                }
            };
        }
        for (kind, ns, name) in ctx.stores.orphans() {
            if let Err(e) = ctx.writer.delete(kind, ns.as_deref(), &name).await {
                ctx.metrics.error(e.metric_label());
                tracing::warn!(error = %e, "sweeping");
            }
        }
        // Forget zones that are gone.
        let live: HashSet<String> = ctx
            .stores
            .zones
            .state()
            .iter()
            .map(|z| format!("{}/{}", z.namespace().unwrap_or_default(), z.name_any()))
            .collect();
        ctx.checks
            .lock()
            .expect("checks lock")
            .retain(|k, _| live.contains(&k.to_string()));
        ctx.secondary_checks
            .lock()
            .expect("checks lock")
            .retain(|k, _| live.contains(&k.to_string()));
        ctx.holders.lock().expect("holders lock").retain(&live);
        ctx.metrics.retain_zones(&live);
        // Forget what was applied to objects that are gone (the garbage collector's work).
        ctx.writer.forget(|(kind, ns, name)| {
            *kind != OwnedKind::ClusterRole
                && ctx.stores.owned.live(*kind, ns.as_deref(), name).is_none()
        });
        tokio::select! {
            _ = ctx.sweep.notified() => {},
            _ = tokio::time::sleep(Duration::from_secs(60)) => {},
        }
        // Let a burst of deletions settle into the caches.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn ensure_gateway_reader(ctx: &Ctx) -> Result<(), Error> {
    let obj = desired_gateway_reader();
    let api = ctx.writer.api(OwnedKind::ClusterRole, None);
    let live = api
        .get_opt(&obj.name)
        .await
        .map_err(|source| Error::Api {
            what: format!("reading {}", obj.describe()),
            source,
        })?
        .map(|o| {
            let rv = o.resource_version().unwrap_or_default();
            (serde_json::to_value(o).unwrap_or(Value::Null), rv)
        });
    ctx.writer.ensure(&obj, live).await.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{Request, Response};
    use kube::client::Body;
    use kube::runtime::reflector;
    use serde_json::json;
    use std::collections::BTreeSet;

    fn zone(ns: &str, name: &str, domain: &str) -> DNSZone {
        serde_json::from_value(json!({
            "apiVersion": "zonegate.dev/v1alpha1", "kind": "DNSZone",
            "metadata": {"namespace": ns, "name": name},
            "spec": {"domain": domain},
        }))
        .unwrap()
    }

    #[test]
    fn related_zones_are_same_domain_and_below() {
        let (reader, mut writer) = reflector::store::<DNSZone>();
        for z in [
            zone("a", "root", "example.com"),
            zone("b", "dup", "example.com"),
            zone("c", "sub", "team.example.com"),
            zone("d", "other", "example.org"),
            zone("e", "lookalike", "notexample.com"),
        ] {
            writer.apply_watcher_event(&watcher::Event::Apply(z));
        }
        let mut got: Vec<String> = related_zones(&reader, &zone("a", "root", "example.com"))
            .into_iter()
            .map(|r| format!("{}/{}", r.namespace.unwrap_or_default(), r.name))
            .collect();
        got.sort();
        assert_eq!(got, vec!["a/root", "b/dup", "c/sub"]);
        let got = related_zones(&reader, &zone("c", "sub", "team.example.com"));
        assert_eq!(got.len(), 1);
    }

    /// `%XX` and `+` of a query string, decoded.
    fn decode(q: &str) -> String {
        let b = q.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < b.len() => {
                    out.push(u8::from_str_radix(&q[i + 1..i + 3], 16).unwrap());
                    i += 2;
                }
                c => out.push(c),
            }
            i += 1;
        }
        String::from_utf8(out).unwrap()
    }

    /// Runs the operator (no Lease, no HTTP) against a mocked apiserver until it has listed and
    /// watched `lists` distinct (path, labelSelector) pairs and applied the Gateway reader ClusterRole;
    /// returns those lists and every other request (`METHOD path`).
    async fn first_requests(
        scope: Scope,
        lists: usize,
    ) -> (BTreeSet<(String, String)>, BTreeSet<String>) {
        let (mock, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let client = Client::new(mock, "default");
        let config = OperatorConfig {
            scope,
            ..OperatorConfig::default()
        };
        let (stop, stopped) = futures::channel::oneshot::channel::<()>();
        let task = tokio::spawn(run(client, config, stopped.map(|_| ())));
        let mut listed = BTreeSet::new();
        let mut others = BTreeSet::new();
        let mut watches = Vec::new();
        let mut watched = BTreeSet::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while listed.len() < lists
            || watched.len() < lists
            || !others.iter().any(|o: &String| o.starts_with("PATCH"))
        {
            let (req, send) = tokio::time::timeout_at(deadline, handle.next_request())
                .await
                .unwrap_or_else(|_| panic!("only these lists: {listed:#?}, and {others:#?}"))
                .expect("the client is gone");
            let query = decode(req.uri().query().unwrap_or_default());
            let path = req.uri().path().to_string();
            let param = |k: &str| {
                query
                    .split('&')
                    .find_map(|kv| kv.strip_prefix(&format!("{k}=")))
                    .unwrap_or_default()
                    .to_string()
            };
            let reply = |code: u16, body: Value| {
                Response::builder()
                    .status(code)
                    .header("content-type", "application/json")
                    .body(Body::from(serde_json::to_vec(&body).unwrap()))
                    .unwrap()
            };
            if req.method() == "GET" && param("watch") == "true" {
                // a watch that never says anything; kept open
                watched.insert((path, param("labelSelector")));
                watches.push(send);
            } else if req.method() == "GET" && !param("limit").is_empty() {
                listed.insert((path, param("labelSelector")));
                send.send_response(reply(
                    200,
                    json!({"apiVersion": "v1", "kind": "List",
                        "metadata": {"resourceVersion": "1"}, "items": []}),
                ));
            } else if req.method() == "GET" {
                others.insert(format!("GET {path}"));
                send.send_response(reply(
                    404,
                    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                        "code": 404, "reason": "NotFound", "message": "not found"}),
                ));
            } else {
                others.insert(format!("{} {path}", req.method()));
                let (_, body) = req.into_parts();
                let mut body: Value =
                    serde_json::from_slice(&body.collect_bytes().await.unwrap()).unwrap();
                body["metadata"]["resourceVersion"] = json!("1");
                send.send_response(reply(200, body));
            }
        }
        stop.send(()).unwrap();
        task.await.unwrap().unwrap();
        assert_eq!(
            watched, listed,
            "every list is followed by a watch of the same"
        );
        (listed, others)
    }

    /// The kinds every operator watches: (path below the group version, namespaced).
    const WATCHED: [(&str, bool); 12] = [
        ("/apis/zonegate.dev/v1alpha1/|dnszones", true),
        ("/apis/zonegate.dev/v1alpha1/|dnszonegrants", true),
        ("/api/v1/|nodes", false),
        ("/api/v1/|serviceaccounts", true),
        ("/api/v1/|configmaps", true),
        ("/apis/rbac.authorization.k8s.io/v1/|roles", true),
        ("/apis/rbac.authorization.k8s.io/v1/|rolebindings", true),
        ("/apis/policy/v1/|poddisruptionbudgets", true),
        ("/apis/apps/v1/|deployments", true),
        ("/api/v1/|services", true),
        (
            "/apis/rbac.authorization.k8s.io/v1/|clusterrolebindings",
            false,
        ),
        ("/api/v1/|secrets", true),
    ];

    fn owned(path: &str) -> bool {
        !path.contains("dnszone") && !path.ends_with("/nodes")
    }

    const MANAGED: &str = "app.kubernetes.io/managed-by=zonegate";

    #[tokio::test]
    async fn an_operator_of_every_namespace_watches_cluster_wide() {
        let (listed, others) = first_requests(Scope::All, WATCHED.len()).await;
        let want: BTreeSet<(String, String)> = WATCHED
            .iter()
            .map(|(p, _)| {
                let path = p.replace('|', "");
                let labels = if owned(&path) { MANAGED } else { "" };
                (path, labels.to_string())
            })
            .collect();
        assert_eq!(listed, want);
        assert_eq!(others, gateway_reader_requests());
    }

    /// The requests besides the watches: the shared Gateway reader ClusterRole, read and
    /// applied (the same for every scope).
    fn gateway_reader_requests() -> BTreeSet<String> {
        let path = "/apis/rbac.authorization.k8s.io/v1/clusterroles/zonegate-gateway-reader";
        BTreeSet::from([format!("GET {path}"), format!("PATCH {path}")])
    }

    /// A scoped operator lists (and watches) namespaced kinds in its namespaces only, and
    /// every owned kind, the cluster-scoped ClusterRoleBindings included, only for zones of its
    /// namespaces; Nodes and the shared Gateway reader ClusterRole are the only other
    /// cluster-wide paths.
    #[tokio::test]
    async fn a_scoped_operator_watches_its_namespaces_only() {
        let scope = Scope::parse(&["team-b,team-a"]).unwrap();
        let namespaced = WATCHED.iter().filter(|(_, n)| *n).count();
        let (listed, others) =
            first_requests(scope, 2 * namespaced + WATCHED.len() - namespaced).await;
        let selector = format!("{MANAGED},zonegate.dev/zone-namespace in (team-a,team-b)");
        let mut want = BTreeSet::new();
        for (p, namespaced) in WATCHED {
            let (group, resource) = p.split_once('|').unwrap();
            let paths: Vec<String> = if namespaced {
                ["team-a", "team-b"]
                    .iter()
                    .map(|ns| format!("{group}namespaces/{ns}/{resource}"))
                    .collect()
            } else {
                vec![format!("{group}{resource}")]
            };
            for path in paths {
                let labels = if owned(&path) { selector.as_str() } else { "" };
                want.insert((path, labels.to_string()));
            }
        }
        assert_eq!(listed, want);
        assert_eq!(others, gateway_reader_requests());
    }
}
