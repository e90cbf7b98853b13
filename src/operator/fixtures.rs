//! Test fixtures for the reconciler without a cluster, in the style of kube-rs controller-rs's
//! `fixtures.rs`: watch caches filled by hand with typed objects, and a mocked apiserver
//! (`tower-test`) behind a real `kube::Client` that records every request (method, path, query,
//! JSON body) and answers it as the test says.

use super::error::Error;
use super::metrics::OperatorMetrics;
use super::reconcile::{Ctx, reconcile};
use super::run::OperatorConfig;
use super::stores::{OwnedStores, OwnedWriters, Stores};
use crate::api::{DNSZone, DNSZoneGrant};
use futures::channel::mpsc;
use http::{Request, Response};
use k8s_openapi::api::core::v1::Node;
use kube::client::Body;
use kube::runtime::controller::Action;
use kube::runtime::reflector::{self, ObjectRef, store::Writer};
use kube::runtime::watcher;
use serde_json::{Value, json};
use std::sync::Arc;

/// One request the reconciler sent.
#[derive(Clone, Debug)]
pub struct Call {
    pub method: String,
    pub path: String,
    pub query: String,
    /// The JSON body (`Null` when empty).
    pub body: Value,
}

impl Call {
    /// `METHOD path`, for comparing sequences.
    pub fn line(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

/// A reconciler with hand-filled caches and a mocked apiserver.
pub struct Fixture {
    pub ctx: Arc<Ctx>,
    pub metrics: Arc<OperatorMetrics>,
    pub zones: Writer<DNSZone>,
    /// Filled by the tests that need DNSZoneGrants or Nodes.
    #[allow(dead_code)]
    pub grants: Writer<DNSZoneGrant>,
    #[allow(dead_code)]
    pub nodes: Writer<Node>,
    pub owned: OwnedWriters,
    handle: tower_test::mock::Handle<Request<Body>, Response<Body>>,
    _recheck: mpsc::UnboundedReceiver<ObjectRef<DNSZone>>,
}

impl Fixture {
    /// Every cache listed (and empty).
    pub fn new(config: OperatorConfig) -> Self {
        let (mock, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let client = kube::Client::new(mock, "default");
        let (zones_r, mut zones) = reflector::store::<DNSZone>();
        let (grants_r, mut grants) = reflector::store::<DNSZoneGrant>();
        let (nodes_r, mut nodes) = reflector::store::<Node>();
        let (owned_r, mut owned) = OwnedStores::for_tests();
        zones.apply_watcher_event(&watcher::Event::InitDone);
        grants.apply_watcher_event(&watcher::Event::InitDone);
        nodes.apply_watcher_event(&watcher::Event::InitDone);
        owned.ready();
        let stores = Stores {
            zones: zones_r,
            grants: grants_r,
            nodes: nodes_r,
            owned: owned_r,
            scope: config.scope.clone(),
            synced: tokio::sync::watch::channel(true).1,
        };
        let metrics = Arc::new(OperatorMetrics::new());
        let (tx, rx) = mpsc::unbounded();
        let ctx = Arc::new(Ctx::new(
            client,
            Arc::new(config),
            stores,
            metrics.clone(),
            tx,
        ));
        Fixture {
            ctx,
            metrics,
            zones,
            grants,
            nodes,
            owned,
            handle,
            _recheck: rx,
        }
    }

    /// Puts `zone` into the DNSZone cache.
    pub fn add_zone(&mut self, zone: &DNSZone) {
        self.zones
            .apply_watcher_event(&watcher::Event::Apply(zone.clone()));
    }

    /// Reconciles `zone`, answering each request with `answer` (status code and JSON body).
    /// Returns the reconcile's result and every request, in order.
    pub async fn reconcile(
        &mut self,
        zone: &DNSZone,
        mut answer: impl FnMut(&Call) -> (u16, Value),
    ) -> (Result<Action, Error>, Vec<Call>) {
        let mut task = tokio::spawn(reconcile(Arc::new(zone.clone()), self.ctx.clone()));
        let mut calls = Vec::new();
        let result = loop {
            tokio::select! {
                biased;
                r = &mut task => break r.expect("the reconcile panicked"),
                next = self.handle.next_request() => {
                    let (req, send) = next.expect("the client is gone");
                    let (parts, body) = req.into_parts();
                    let bytes = body.collect_bytes().await.expect("request body");
                    let call = Call {
                        method: parts.method.to_string(),
                        path: parts.uri.path().to_string(),
                        query: parts.uri.query().unwrap_or_default().to_string(),
                        body: if bytes.is_empty() {
                            Value::Null
                        } else {
                            serde_json::from_slice(&bytes).expect("a JSON request body")
                        },
                    };
                    let (code, reply) = answer(&call);
                    calls.push(call);
                    send.send_response(
                        Response::builder()
                            .status(code)
                            .header("content-type", "application/json")
                            .body(Body::from(serde_json::to_vec(&reply).unwrap()))
                            .unwrap(),
                    );
                }
            }
        };
        (result, calls)
    }
}

impl Fixture {
    /// Reconciles `zone` against an apiserver that takes every request and never answers.
    /// Returns the reconcile's result and how many requests it sent.
    pub async fn reconcile_unanswered(&mut self, zone: &DNSZone) -> (Result<Action, Error>, usize) {
        let mut task = tokio::spawn(reconcile(Arc::new(zone.clone()), self.ctx.clone()));
        // the requests' reply handles are kept, unanswered, until the reconcile is over
        let mut pending = Vec::new();
        let result = loop {
            tokio::select! {
                biased;
                r = &mut task => break r.expect("the reconcile panicked"),
                next = self.handle.next_request() => pending.push(next.expect("the client is gone")),
            }
        };
        (result, pending.len())
    }
}

/// The apiserver's usual answer: an applied object comes back as sent with a resourceVersion, a
/// status patch returns `zone` with that status, an Event comes back as created.
pub fn echo(zone: &DNSZone) -> impl FnMut(&Call) -> (u16, Value) + use<> {
    let zone = serde_json::to_value(zone).unwrap();
    move |call: &Call| {
        if call.path.ends_with("/status") {
            let mut z = zone.clone();
            z["status"] = call.body["status"].clone();
            return (200, z);
        }
        if call.method == "DELETE" {
            return (
                200,
                json!({"kind": "Status", "apiVersion": "v1", "status": "Success", "code": 200}),
            );
        }
        let mut body = call.body.clone();
        body["metadata"]["resourceVersion"] = json!("1");
        (if call.method == "POST" { 201 } else { 200 }, body)
    }
}

/// An apiserver error response.
pub fn api_error(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code,
        "reason": reason, "message": message})
}

/// A DNSZone as the apiserver stores it.
pub fn zone(ns: &str, name: &str, spec: Value) -> DNSZone {
    serde_json::from_value(json!({
        "apiVersion": "zonegate.dev/v1alpha1", "kind": "DNSZone",
        "metadata": {"namespace": ns, "name": name, "uid": format!("uid-{ns}-{name}"),
            "generation": 1, "resourceVersion": "10",
            "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": spec,
    }))
    .unwrap()
}
