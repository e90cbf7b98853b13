//! The reconcile loop: watches DNSZones, their owned objects, DNSZoneGrants and Nodes; applies
//! what [`desired`](super::desired) says with server-side apply (only when something differs,
//! see [`apply`](super::apply)); deletes what is no longer wanted; writes the status when it
//! changed and publishes an Event for every change of state.

use super::apply::apply_reason;
use super::delegated::{Checker, Expected};
use super::desired::{
    self, DesiredObject, OwnedKind, ServerSettings, desired_gateway_reader, desired_objects,
    nameserver_object_name,
};
use super::leader::{self, LeaseSettings};
use super::metrics::{CheckLabels, OperatorMetrics, ResultLabels};
use super::policy::DomainPolicy;
use super::status::{self, DelegationCheck, Observed, compute_status, status_events};
use super::tenancy::{self, Claim, Verdict};
use super::{
    FIELD_MANAGER, LABEL_MANAGED_BY, LABEL_ZONE, LABEL_ZONE_NAMESPACE, MANAGED_BY, ZoneKey,
};
use crate::api::{DNSZone, DNSZoneGrant, ServiceType};
use futures::channel::mpsc;
use futures::future::{BoxFuture, FutureExt, Shared};
use futures::{Stream, StreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Node, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt::Debug;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, Semaphore};

/// Everything `zonegate operator` is configured with.
#[derive(Clone, Debug)]
pub struct OperatorConfig {
    pub server: ServerSettings,
    pub policy: Option<DomainPolicy>,
    /// `None`: delegations are not checked (`Delegated` stays Unknown).
    pub checker: Option<Checker>,
    pub check_interval: Duration,
    /// TTL written into `status.delegation`.
    pub delegation_ttl: u32,
    /// Reconciles running at once.
    pub concurrency: u16,
    /// `None`: no leader election (this process always reconciles).
    pub lease: Option<LeaseSettings>,
    /// `/metrics`, `/healthz`, `/readyz`.
    pub http: Option<SocketAddr>,
    /// Name of this replica in Events and the Lease.
    pub identity: String,
}

impl Default for OperatorConfig {
    fn default() -> Self {
        Self {
            server: ServerSettings::default(),
            policy: None,
            checker: None,
            check_interval: Duration::from_secs(300),
            delegation_ttl: 3600,
            concurrency: 16,
            lease: None,
            http: None,
            identity: "zonegate-operator".into(),
        }
    }
}

/// A reconcile failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{what}: {source}")]
    Kube {
        what: String,
        #[source]
        source: kube::Error,
    },
    #[error("the watch caches are not synced yet: {0}")]
    NotSynced(String),
}

impl Error {
    fn kube(what: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
        let what = what.into();
        move |source| Error::Kube { what, source }
    }
    fn metric_kind(&self) -> &'static str {
        match self {
            Error::Kube { what, .. } if what.starts_with("applying") => "apply",
            Error::Kube { what, .. } if what.starts_with("deleting") => "delete",
            Error::Kube { what, .. } if what.starts_with("writing the status") => "status",
            Error::Kube { .. } => "api",
            Error::NotSynced(_) => "cache",
        }
    }
}

/// Watch caches of everything the reconciler reads.
#[derive(Clone)]
struct Stores {
    zones: Store<DNSZone>,
    grants: Store<DNSZoneGrant>,
    deployments: Store<Deployment>,
    services: Store<Service>,
    service_accounts: Store<ServiceAccount>,
    config_maps: Store<ConfigMap>,
    roles: Store<Role>,
    role_bindings: Store<RoleBinding>,
    cluster_role_bindings: Store<ClusterRoleBinding>,
    pdbs: Store<PodDisruptionBudget>,
    nodes: Store<Node>,
}

impl Stores {
    async fn wait_ready(&self) -> Result<(), String> {
        macro_rules! wait {
            ($($f:ident),*) => {$(
                self.$f.wait_until_ready().await.map_err(|e| format!("{}: {e}", stringify!($f)))?;
            )*};
        }
        wait!(
            zones,
            grants,
            deployments,
            services,
            service_accounts,
            config_maps,
            roles,
            role_bindings,
            cluster_role_bindings,
            pdbs,
            nodes
        );
        Ok(())
    }

    /// The live object as JSON, and its resourceVersion.
    fn live(&self, kind: OwnedKind, ns: Option<&str>, name: &str) -> Option<(Value, String)> {
        fn get<K>(s: &Store<K>, ns: Option<&str>, name: &str) -> Option<(Value, String)>
        where
            K: Resource<DynamicType = ()> + Clone + Serialize + 'static,
        {
            let mut r = ObjectRef::<K>::new(name);
            if let Some(ns) = ns {
                r = r.within(ns);
            }
            let obj = s.get(&r)?;
            let rv = obj.meta().resource_version.clone().unwrap_or_default();
            Some((serde_json::to_value(obj.as_ref()).ok()?, rv))
        }
        match kind {
            OwnedKind::ServiceAccount => get(&self.service_accounts, ns, name),
            OwnedKind::ConfigMap => get(&self.config_maps, ns, name),
            OwnedKind::Role => get(&self.roles, ns, name),
            OwnedKind::RoleBinding => get(&self.role_bindings, ns, name),
            OwnedKind::ClusterRoleBinding => get(&self.cluster_role_bindings, ns, name),
            OwnedKind::Deployment => get(&self.deployments, ns, name),
            OwnedKind::Service => get(&self.services, ns, name),
            OwnedKind::PodDisruptionBudget => get(&self.pdbs, ns, name),
            OwnedKind::ClusterRole => None,
        }
    }

    /// Every cached object labelled as belonging to `zone`. Looked up by the names the zone's
    /// objects can have (a scan only for its Roles and RoleBindings in other namespaces), so a
    /// reconcile does not walk every object of the cluster.
    fn zone_objects(&self, zone: &ZoneKey) -> Vec<ObjectId> {
        fn labelled(
            meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
            zone: &ZoneKey,
        ) -> bool {
            meta.labels.as_ref().is_some_and(|l| {
                l.get(LABEL_ZONE) == Some(&zone.name)
                    && l.get(LABEL_ZONE_NAMESPACE) == Some(&zone.namespace)
            })
        }
        fn named<K>(
            s: &Store<K>,
            kind: OwnedKind,
            ns: Option<&str>,
            name: String,
            zone: &ZoneKey,
            out: &mut Vec<ObjectId>,
        ) where
            K: Resource<DynamicType = ()> + Clone + 'static,
        {
            let mut r = ObjectRef::<K>::new(&name);
            if let Some(ns) = ns {
                r = r.within(ns);
            }
            if s.get(&r).is_some_and(|o| labelled(o.meta(), zone)) {
                out.push((kind, ns.map(str::to_string), name));
            }
        }
        fn foreign<K>(
            s: &Store<K>,
            kind: OwnedKind,
            name: &str,
            zone: &ZoneKey,
            out: &mut Vec<ObjectId>,
        ) where
            K: Resource<DynamicType = ()> + Clone + 'static,
        {
            for o in s.state_filter(|o| {
                o.meta().name.as_deref() == Some(name)
                    && o.meta().namespace.as_deref() != Some(&zone.namespace)
                    && labelled(o.meta(), zone)
            }) {
                out.push((kind, o.namespace(), name.to_string()));
            }
        }
        let ns = Some(zone.namespace.as_str());
        let z = zone.name.as_str();
        let mut out = Vec::new();
        named(
            &self.service_accounts,
            OwnedKind::ServiceAccount,
            ns,
            desired::dns_object_name(z),
            zone,
            &mut out,
        );
        named(
            &self.config_maps,
            OwnedKind::ConfigMap,
            ns,
            desired::serial_configmap_name(z),
            zone,
            &mut out,
        );
        named(
            &self.roles,
            OwnedKind::Role,
            ns,
            desired::dns_object_name(z),
            zone,
            &mut out,
        );
        named(
            &self.role_bindings,
            OwnedKind::RoleBinding,
            ns,
            desired::dns_object_name(z),
            zone,
            &mut out,
        );
        named(
            &self.pdbs,
            OwnedKind::PodDisruptionBudget,
            ns,
            desired::dns_object_name(z),
            zone,
            &mut out,
        );
        for i in 1..=desired::MAX_NAMESERVERS {
            named(
                &self.deployments,
                OwnedKind::Deployment,
                ns,
                nameserver_object_name(z, i),
                zone,
                &mut out,
            );
            named(
                &self.services,
                OwnedKind::Service,
                ns,
                nameserver_object_name(z, i),
                zone,
                &mut out,
            );
        }
        named(
            &self.cluster_role_bindings,
            OwnedKind::ClusterRoleBinding,
            None,
            desired::gateway_binding_name(&zone.namespace, z),
            zone,
            &mut out,
        );
        let f = desired::foreign_object_name(&zone.namespace, z);
        foreign(&self.roles, OwnedKind::Role, &f, zone, &mut out);
        foreign(
            &self.role_bindings,
            OwnedKind::RoleBinding,
            &f,
            zone,
            &mut out,
        );
        out
    }

    /// Objects without an owner (other namespaces, cluster scope) whose zone no longer exists.
    fn orphans(&self) -> Vec<(OwnedKind, Option<String>, String)> {
        let zones: HashSet<ZoneKey> = self
            .zones
            .state()
            .iter()
            .filter(|z| z.metadata.deletion_timestamp.is_none())
            .map(|z| ZoneKey::new(z.namespace().unwrap_or_default(), z.name_any()))
            .collect();
        let mut out = Vec::new();
        let mut check =
            |kind: OwnedKind, meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta| {
                let Some(l) = &meta.labels else { return };
                if meta
                    .owner_references
                    .as_ref()
                    .is_some_and(|o| !o.is_empty())
                {
                    return;
                }
                if let (Some(z), Some(zns)) = (l.get(LABEL_ZONE), l.get(LABEL_ZONE_NAMESPACE))
                    && !zones.contains(&ZoneKey::new(zns, z))
                {
                    out.push((
                        kind,
                        meta.namespace.clone(),
                        meta.name.clone().unwrap_or_default(),
                    ));
                }
            };
        for o in self.roles.state() {
            check(OwnedKind::Role, &o.metadata);
        }
        for o in self.role_bindings.state() {
            check(OwnedKind::RoleBinding, &o.metadata);
        }
        for o in self.cluster_role_bindings.state() {
            check(OwnedKind::ClusterRoleBinding, &o.metadata);
        }
        out
    }
}

type ObjectId = (OwnedKind, Option<String>, String);

/// The last delegation check of a zone.
struct CheckEntry {
    expected: Expected,
    at: Instant,
    result: DelegationCheck,
}

/// Shared state of the reconciler.
struct Ctx {
    client: Client,
    config: Arc<OperatorConfig>,
    stores: Stores,
    metrics: Arc<OperatorMetrics>,
    recorder: Recorder,
    /// (hash, resourceVersion) of what this process last applied, per object: an object still
    /// at that version needs no look for drift.
    applied: Mutex<HashMap<ObjectId, (String, String)>>,
    checks: Mutex<HashMap<ZoneKey, CheckEntry>>,
    checks_running: Mutex<HashSet<ZoneKey>>,
    check_slots: Arc<Semaphore>,
    recheck: mpsc::UnboundedSender<ObjectRef<DNSZone>>,
    sweep: Notify,
}

/// A create refused because the namespace is being deleted, or is gone.
fn namespace_terminating(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(s) => match (s.code, &s.details) {
            (403, Some(d)) => d.causes.iter().any(|c| c.reason == "NamespaceTerminating"),
            (404, Some(d)) => d.kind == "namespaces",
            _ => false,
        },
        _ => false,
    }
}

fn api_resource(kind: OwnedKind) -> ApiResource {
    let (group, version) = match kind.api_version().split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", kind.api_version()),
    };
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(group, version, kind.kind()),
        kind.plural(),
    )
}

impl Ctx {
    fn api(&self, kind: OwnedKind, ns: Option<&str>) -> Api<DynamicObject> {
        let ar = api_resource(kind);
        match ns {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, &ar),
            None => Api::all_with(self.client.clone(), &ar),
        }
    }

    /// Applies `obj` unless the live object already is as desired. Returns whether it wrote.
    async fn ensure(
        &self,
        obj: &DesiredObject,
        live: Option<(Value, String)>,
    ) -> Result<bool, Error> {
        let id: ObjectId = (obj.kind, obj.namespace.clone(), obj.name.clone());
        if let Some((_, rv)) = &live {
            let applied = self.applied.lock().expect("applied lock");
            if applied.get(&id) == Some(&(obj.hash.clone(), rv.clone())) {
                return Ok(false);
            }
        }
        let Some(reason) = apply_reason(live.as_ref().map(|(v, _)| v), &obj.body, &obj.hash) else {
            if let Some((_, rv)) = live {
                self.applied
                    .lock()
                    .expect("applied lock")
                    .insert(id, (obj.hash.clone(), rv));
            }
            return Ok(false);
        };
        let api = self.api(obj.kind, obj.namespace.as_deref());
        let stored = match api
            .patch(
                &obj.name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&obj.body),
            )
            .await
        {
            Ok(o) => o,
            Err(e) if namespace_terminating(&e) => {
                // The namespace (the zone's, or one it reads) is going away with everything in it.
                tracing::debug!(object = %obj.describe(), "namespace terminating; not applied");
                return Ok(false);
            }
            Err(e) => return Err(Error::kube(format!("applying {}", obj.describe()))(e)),
        };
        self.metrics.write(obj.kind.kind(), "apply");
        tracing::info!(object = %obj.describe(), reason, "applied");
        self.applied.lock().expect("applied lock").insert(
            id,
            (
                obj.hash.clone(),
                stored.resource_version().unwrap_or_default(),
            ),
        );
        Ok(true)
    }

    async fn delete(&self, kind: OwnedKind, ns: Option<&str>, name: &str) -> Result<(), Error> {
        let what = match ns {
            Some(ns) => format!("{} {ns}/{name}", kind.kind()),
            None => format!("{} {name}", kind.kind()),
        };
        match self
            .api(kind, ns)
            .delete(name, &DeleteParams::background())
            .await
        {
            Ok(_) => {
                self.metrics.write(kind.kind(), "delete");
                tracing::info!(object = %what, "deleted");
            }
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(Error::kube(format!("deleting {what}"))(e)),
        }
        self.applied.lock().expect("applied lock").remove(&(
            kind,
            ns.map(str::to_string),
            name.to_string(),
        ));
        Ok(())
    }

    /// The delegation result to show for the zone, starting a new check when the last one is
    /// older than the interval or asked about something else.
    fn delegation(
        self: &Arc<Self>,
        key: &ZoneKey,
        zone: &DNSZone,
        expected: Expected,
    ) -> DelegationCheck {
        let Some(checker) = self.config.checker.clone() else {
            return DelegationCheck::Disabled;
        };
        let (shown, stale) = {
            let checks = self.checks.lock().expect("checks lock");
            match checks.get(key) {
                Some(e) => (
                    e.result.clone(),
                    e.expected != expected || e.at.elapsed() >= self.config.check_interval,
                ),
                None => (DelegationCheck::Pending, true),
            }
        };
        if stale
            && self
                .checks_running
                .lock()
                .expect("lock")
                .insert(key.clone())
        {
            let ctx = self.clone();
            let key = key.clone();
            let zref = ObjectRef::from_obj(zone);
            tokio::spawn(async move {
                let result = {
                    let _slot = ctx.check_slots.clone().acquire_owned().await;
                    checker.check(&expected).await
                };
                let label = match &result {
                    DelegationCheck::Delegated { .. } => "delegated",
                    DelegationCheck::NotDelegated { .. } => "not_delegated",
                    DelegationCheck::Mismatch { .. } => "mismatch",
                    _ => "unreachable",
                };
                ctx.metrics
                    .delegation_checks
                    .get_or_create(&CheckLabels { result: label })
                    .inc();
                tracing::debug!(zone = %key, ?result, "delegation checked");
                ctx.checks.lock().expect("checks lock").insert(
                    key.clone(),
                    CheckEntry {
                        expected,
                        at: Instant::now(),
                        result,
                    },
                );
                ctx.checks_running.lock().expect("lock").remove(&key);
                let _ = ctx.recheck.unbounded_send(zref);
            });
        }
        shown
    }

    async fn publish(&self, zone: &DNSZone, ev: &status::EventSpec) {
        let event = Event {
            type_: if ev.warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: ev.reason.clone(),
            note: Some(ev.note.clone()),
            action: ev.action.clone(),
            secondary: None,
        };
        match self.recorder.publish(&event, &zone.object_ref(&())).await {
            Ok(()) => self.metrics.write("Event", "create"),
            Err(e) if namespace_terminating(&e) => {}
            Err(e) => {
                self.metrics.error("event");
                tracing::warn!(zone = %zone.name_any(), error = %e, "cannot publish an event");
            }
        }
    }
}

/// The zone's expected NS set and glue, from the nameservers in its status.
fn expected_delegation(domain: &str, nameservers: &[crate::api::NameserverStatus]) -> Expected {
    let domain = tenancy::normalize(domain);
    let mut e = Expected {
        domain: domain.clone(),
        ..Expected::default()
    };
    for ns in nameservers {
        e.nameservers.insert(ns.hostname.clone());
        if tenancy::is_at_or_below(&ns.hostname, &domain) {
            let ips: BTreeSet<std::net::IpAddr> =
                ns.addresses.iter().filter_map(|a| a.parse().ok()).collect();
            if !ips.is_empty() {
                e.glue.insert(ns.hostname.clone(), ips);
            }
        }
    }
    e
}

fn now_seconds() -> Time {
    let now = k8s_openapi::jiff::Timestamp::now();
    Time(k8s_openapi::jiff::Timestamp::from_second(now.as_second()).unwrap_or(now))
}

async fn reconcile(zone: Arc<DNSZone>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let start = Instant::now();
    let result = reconcile_zone(&zone, &ctx).await;
    ctx.metrics.duration.observe(start.elapsed().as_secs_f64());
    ctx.metrics
        .reconciles
        .get_or_create(&ResultLabels {
            result: if result.is_ok() { "ok" } else { "error" },
        })
        .inc();
    if let Err(e) = &result {
        ctx.metrics.error(e.metric_kind());
    }
    result
}

async fn reconcile_zone(zone: &DNSZone, ctx: &Arc<Ctx>) -> Result<Action, Error> {
    tokio::time::timeout(Duration::from_secs(60), ctx.stores.wait_ready())
        .await
        .map_err(|_| Error::NotSynced("timed out".into()))?
        .map_err(Error::NotSynced)?;
    if zone.metadata.deletion_timestamp.is_some() {
        // The garbage collector removes the owned objects; the sweeper the others.
        return Ok(Action::await_change());
    }
    let key = ZoneKey::new(zone.namespace().unwrap_or_default(), zone.name_any());
    tracing::debug!(zone = %key, "reconciling");

    // Who may serve which domain, over every zone of the cluster.
    // Only zones of the same domain or above it decide this zone's verdict.
    let mut claims: Vec<Claim> = ctx
        .stores
        .zones
        .state_filter(|z| {
            z.metadata.uid != zone.metadata.uid
                && tenancy::within(&zone.spec.domain, &z.spec.domain)
        })
        .iter()
        .filter_map(|z| Claim::of(z))
        .collect();
    claims.extend(Claim::of(zone));
    let verdict = tenancy::resolve(&claims, ctx.config.policy.as_ref())
        .remove(&key)
        .unwrap_or(Verdict::Accepted);

    // Owned objects: apply what is wanted, delete the rest.
    let grants = ctx.stores.grants.state();
    let grant_refs: Vec<&DNSZoneGrant> = grants.iter().map(|g| g.as_ref()).collect();
    let desired = if verdict.is_accepted() {
        desired_objects(zone, &ctx.config.server, &grant_refs)
    } else {
        Vec::new()
    };
    tracing::debug!(zone = %key, ?verdict, objects = desired.len(), "desired");
    for obj in &desired {
        let live = ctx
            .stores
            .live(obj.kind, obj.namespace.as_deref(), &obj.name);
        ctx.ensure(obj, live).await?;
    }
    let wanted: HashSet<ObjectId> = desired.iter().map(desired::identity).collect();
    for (kind, ns, name) in ctx.stores.zone_objects(&key) {
        if !wanted.contains(&(kind, ns.clone(), name.clone())) {
            ctx.delete(kind, ns.as_deref(), &name).await?;
        }
    }

    // Status.
    let count = if verdict.is_accepted() {
        zone.spec.nameservers.count.max(1) as usize
    } else {
        0
    };
    let ns = key.namespace.as_str();
    let deployments: Vec<Option<Arc<Deployment>>> = (1..=count)
        .map(|i| {
            ctx.stores
                .deployments
                .get(&ObjectRef::new(&nameserver_object_name(&key.name, i)).within(ns))
        })
        .collect();
    let services: Vec<Option<Arc<Service>>> = (1..=count)
        .map(|i| {
            ctx.stores
                .services
                .get(&ObjectRef::new(&nameserver_object_name(&key.name, i)).within(ns))
        })
        .collect();
    let node_addresses = if zone.spec.nameservers.service.type_ == ServiceType::NodePort {
        let nodes = ctx.stores.nodes.state();
        let refs: Vec<&Node> = nodes.iter().map(|n| n.as_ref()).collect();
        status::node_addresses(&refs)
    } else {
        Vec::new()
    };
    let mut obs = Observed {
        verdict: &verdict,
        deployments: deployments.iter().map(|d| d.as_deref()).collect(),
        services: services.iter().map(|s| s.as_deref()).collect(),
        node_addresses: &node_addresses,
        delegation: &DelegationCheck::Pending,
        delegation_ttl: ctx.config.delegation_ttl,
    };
    let now = now_seconds();
    let delegation;
    let new_status = if verdict.is_accepted() {
        let first = compute_status(zone, &obs, now.clone());
        delegation = ctx.delegation(
            &key,
            zone,
            expected_delegation(&zone.spec.domain, &first.nameservers),
        );
        obs.delegation = &delegation;
        compute_status(zone, &obs, now)
    } else {
        ctx.checks.lock().expect("checks lock").remove(&key);
        compute_status(zone, &obs, now)
    };
    if zone.status.as_ref() != Some(&new_status) {
        let api: Api<DNSZone> = Api::namespaced(ctx.client.clone(), ns);
        let body = json!({
            "apiVersion": "zonegate.dev/v1alpha1",
            "kind": "DNSZone",
            "status": new_status,
        });
        api.patch_status(
            &key.name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&body),
        )
        .await
        .map_err(Error::kube(format!("writing the status of DNSZone {key}")))?;
        ctx.metrics.write("DNSZone/status", "apply");
        for ev in status_events(zone.status.as_ref(), &new_status) {
            ctx.publish(zone, &ev).await;
        }
    }
    ctx.metrics.set_zone_conditions(
        &key.to_string(),
        Some(
            new_status
                .conditions
                .iter()
                .map(|c| (c.type_.clone(), c.status.clone()))
                .collect(),
        ),
    );
    Ok(if verdict.is_accepted() && ctx.config.checker.is_some() {
        Action::requeue(ctx.config.check_interval)
    } else {
        Action::requeue(Duration::from_secs(3600))
    })
}

fn error_policy(zone: Arc<DNSZone>, error: &Error, _ctx: Arc<Ctx>) -> Action {
    tracing::warn!(zone = %format!("{}/{}", zone.namespace().unwrap_or_default(), zone.name_any()), %error, "reconcile failed; retrying");
    Action::requeue(Duration::from_secs(5))
}

/// A reflector over `api`: its cache and its stream of touched objects (the cache is updated
/// before an object is passed on).
fn reflect<K>(
    api: Api<K>,
    wc: watcher::Config,
) -> (
    Store<K>,
    impl Stream<Item = Result<K, watcher::Error>> + Send + 'static,
)
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let (reader, writer) = reflector::store();
    let stream = reflector::reflector(writer, watcher(api, wc).default_backoff()).touched_objects();
    (reader, stream)
}

fn zone_ref_of_labels(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) -> Option<ObjectRef<DNSZone>> {
    let l = meta.labels.as_ref()?;
    Some(ObjectRef::new(l.get(LABEL_ZONE)?).within(l.get(LABEL_ZONE_NAMESPACE)?))
}

/// Zones whose verdict may depend on `changed`: itself, zones of the same domain, and zones
/// below it.
fn related_zones(zones: &Store<DNSZone>, changed: &DNSZone) -> Vec<ObjectRef<DNSZone>> {
    zones
        .state_filter(|z| tenancy::within(&z.spec.domain, &changed.spec.domain))
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
) -> Result<(), String> {
    let metrics = Arc::new(OperatorMetrics::new());
    if let Some(addr) = config.http {
        crate::process::serve_http("--http", addr, metrics.clone())
            .await
            .map_err(|e| e.to_string())?;
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
) -> Result<(), String> {
    metrics.ready.store(false, Ordering::Release);
    let owned = watcher::Config::default().labels(&format!("{LABEL_MANAGED_BY}={MANAGED_BY}"));
    let all = watcher::Config::default();
    let (zones, zone_stream) = reflect(Api::<DNSZone>::all(client.clone()), all.clone());
    let (grants, grant_stream) = reflect(Api::<DNSZoneGrant>::all(client.clone()), all.clone());
    let (deployments, deployment_stream) =
        reflect(Api::<Deployment>::all(client.clone()), owned.clone());
    let (services, service_stream) = reflect(Api::<Service>::all(client.clone()), owned.clone());
    let (service_accounts, sa_stream) =
        reflect(Api::<ServiceAccount>::all(client.clone()), owned.clone());
    let (config_maps, cm_stream) = reflect(Api::<ConfigMap>::all(client.clone()), owned.clone());
    let (roles, role_stream) = reflect(Api::<Role>::all(client.clone()), owned.clone());
    let (role_bindings, rb_stream) =
        reflect(Api::<RoleBinding>::all(client.clone()), owned.clone());
    let (cluster_role_bindings, crb_stream) = reflect(
        Api::<ClusterRoleBinding>::all(client.clone()),
        owned.clone(),
    );
    let (pdbs, pdb_stream) = reflect(
        Api::<PodDisruptionBudget>::all(client.clone()),
        owned.clone(),
    );
    let (nodes, node_stream) = reflect(Api::<Node>::all(client.clone()), all.clone());
    let stores = Stores {
        zones: zones.clone(),
        grants,
        deployments,
        services,
        service_accounts,
        config_maps,
        roles,
        role_bindings,
        cluster_role_bindings,
        pdbs,
        nodes,
    };
    let (recheck_tx, recheck_rx) = mpsc::unbounded();
    let ctx = Arc::new(Ctx {
        client: client.clone(),
        config: config.clone(),
        stores: stores.clone(),
        metrics: metrics.clone(),
        recorder: Recorder::new(
            client.clone(),
            Reporter {
                controller: FIELD_MANAGER.into(),
                instance: Some(config.identity.clone()),
            },
        ),
        applied: Mutex::new(HashMap::new()),
        checks: Mutex::new(HashMap::new()),
        checks_running: Mutex::new(HashSet::new()),
        check_slots: Arc::new(Semaphore::new(32)),
        recheck: recheck_tx,
        sweep: Notify::new(),
    });

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
    let controller = Controller::for_stream(
        futures::stream::pending::<Result<DNSZone, watcher::Error>>(),
        zones.clone(),
    )
    .watches_stream(zone_stream, zone_mapper)
    .owns_stream(deployment_stream)
    .owns_stream(service_stream)
    .owns_stream(sa_stream)
    .owns_stream(cm_stream)
    .owns_stream(pdb_stream)
    .watches_stream(role_stream, |o: Role| zone_ref_of_labels(&o.metadata))
    .watches_stream(rb_stream, |o: RoleBinding| zone_ref_of_labels(&o.metadata))
    .watches_stream(crb_stream, |o: ClusterRoleBinding| {
        zone_ref_of_labels(&o.metadata)
    })
    .watches_stream(grant_stream, grant_mapper)
    .watches_stream(node_stream, node_mapper)
    .reconcile_on(recheck_rx)
    .with_config(controller::Config::default().concurrency(config.concurrency));

    let readiness = {
        let stores = stores.clone();
        let metrics = metrics.clone();
        let ctx = ctx.clone();
        async move {
            if stores.wait_ready().await.is_ok() {
                metrics.ready.store(true, Ordering::Release);
                tracing::info!("watch caches synced; reconciling");
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
    Err("the controller stopped".into())
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
            if let Err(e) = ctx.delete(kind, ns.as_deref(), &name).await {
                ctx.metrics.error("delete");
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
        ctx.metrics.retain_zones(&live);
        // Forget what was applied to objects that are gone (the garbage collector's work).
        let applied: Vec<ObjectId> = ctx
            .applied
            .lock()
            .expect("applied lock")
            .keys()
            .cloned()
            .collect();
        let gone: Vec<ObjectId> = applied
            .into_iter()
            .filter(|(kind, ns, name)| {
                *kind != OwnedKind::ClusterRole
                    && ctx.stores.live(*kind, ns.as_deref(), name).is_none()
            })
            .collect();
        {
            let mut memo = ctx.applied.lock().expect("applied lock");
            for id in gone {
                memo.remove(&id);
            }
        }
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
    let api = ctx.api(OwnedKind::ClusterRole, None);
    let live = api
        .get_opt(&obj.name)
        .await
        .map_err(Error::kube(format!("reading {}", obj.describe())))?
        .map(|o| {
            let rv = o.resource_version().unwrap_or_default();
            (serde_json::to_value(o).unwrap_or(Value::Null), rv)
        });
    ctx.ensure(&obj, live).await.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::NameserverStatus;

    fn zone(ns: &str, name: &str, domain: &str) -> DNSZone {
        serde_json::from_value(json!({
            "apiVersion": "zonegate.dev/v1alpha1", "kind": "DNSZone",
            "metadata": {"namespace": ns, "name": name},
            "spec": {"domain": domain},
        }))
        .unwrap()
    }

    #[test]
    fn expected_delegation_has_glue_only_for_in_zone_ip_addresses() {
        let e = expected_delegation(
            "Acme.example.com.",
            &[
                NameserverStatus {
                    hostname: "ns1.acme.example.com".into(),
                    addresses: vec!["192.0.2.1".into(), "lb.example.net".into()],
                },
                NameserverStatus {
                    hostname: "ns.dns.example.net".into(),
                    addresses: vec!["192.0.2.2".into()],
                },
                NameserverStatus {
                    hostname: "ns3.acme.example.com".into(),
                    addresses: vec!["lb3.example.net".into()],
                },
            ],
        );
        assert_eq!(e.domain, "acme.example.com");
        assert_eq!(
            e.nameservers.iter().cloned().collect::<Vec<_>>(),
            vec![
                "ns.dns.example.net",
                "ns1.acme.example.com",
                "ns3.acme.example.com"
            ]
        );
        assert_eq!(e.glue.len(), 1);
        assert_eq!(
            e.glue["ns1.acme.example.com"]
                .iter()
                .map(|ip| ip.to_string())
                .collect::<Vec<_>>(),
            vec!["192.0.2.1"]
        );
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

    #[test]
    fn labels_point_to_the_zone() {
        let meta: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta =
            serde_json::from_value(json!({"name": "x", "namespace": "shop", "labels": {
                LABEL_ZONE: "web", LABEL_ZONE_NAMESPACE: "acme"}}))
            .unwrap();
        let r = zone_ref_of_labels(&meta).unwrap();
        assert_eq!(
            (r.name.as_str(), r.namespace.as_deref()),
            ("web", Some("acme"))
        );
        assert!(zone_ref_of_labels(&Default::default()).is_none());
    }

    #[test]
    fn terminating_namespace_refusals_are_recognised() {
        let status: kube::core::Status = serde_json::from_value(json!({
            "status": "Failure", "code": 403, "reason": "Forbidden",
            "message": "unable to create new content in namespace x because it is being terminated",
            "details": {"causes": [{"reason": "NamespaceTerminating", "message": "namespace x is being terminated", "field": "metadata.namespace"}]}
        }))
        .unwrap();
        assert!(namespace_terminating(&kube::Error::Api(Box::new(
            status.clone()
        ))));
        let mut other = status;
        other.details = None;
        assert!(!namespace_terminating(&kube::Error::Api(Box::new(other))));
        let gone: kube::core::Status = serde_json::from_value(json!({
            "status": "Failure", "code": 404, "reason": "NotFound", "message": "namespaces \"x\" not found",
            "details": {"name": "x", "kind": "namespaces"}
        }))
        .unwrap();
        assert!(namespace_terminating(&kube::Error::Api(Box::new(
            gone.clone()
        ))));
        let mut svc = gone;
        svc.details.as_mut().unwrap().kind = "services".into();
        assert!(!namespace_terminating(&kube::Error::Api(Box::new(svc))));
    }

    #[test]
    fn api_resources_of_owned_kinds() {
        let ar = api_resource(OwnedKind::Deployment);
        assert_eq!(
            (ar.group.as_str(), ar.version.as_str(), ar.plural.as_str()),
            ("apps", "v1", "deployments")
        );
        let ar = api_resource(OwnedKind::Service);
        assert_eq!((ar.group.as_str(), ar.api_version.as_str()), ("", "v1"));
        let ar = api_resource(OwnedKind::ClusterRoleBinding);
        assert_eq!(ar.api_version, "rbac.authorization.k8s.io/v1");
    }
}
