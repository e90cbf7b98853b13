//! One reconcile of one DNSZone: decide its verdict over every claim of its domain
//! ([`tenancy`](super::tenancy)), apply what [`desired`](super::desired) says through the
//! [`Writer`], delete what is no longer wanted, and write the status when it changed, publishing
//! an Event for every change of state. Each reconcile runs in a tracing span carrying the zone's
//! key, so its log lines name the zone once.

use super::FIELD_MANAGER;
use super::ZoneKey;
use super::delegated::Expected;
use super::desired::{self, desired_objects, nameserver_object_name};
use super::error::Error;
use super::metrics::{CheckLabels, OperatorMetrics, ResultLabels};
use super::run::OperatorConfig;
use super::secondaries::SecondaryAnswer;
use super::status::{
    self, DelegationCheck, Observed, SecondariesCheck, compute_status, status_events,
};
use super::stores::{ObjectId, Stores};
use super::tenancy::{self, Claim, Holders, Verdict};
use super::writer::{Writer, namespace_terminating};
use crate::api::{DNSZone, DNSZoneGrant, ServiceType};
use futures::channel::mpsc;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::ObjectRef;
use kube::{Client, Resource, ResourceExt};
use serde_json::json;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, Semaphore};
use tracing::Instrument;

/// The last delegation check of a zone.
pub struct CheckEntry {
    expected: Expected,
    at: Instant,
    result: DelegationCheck,
}

/// The last look at a zone's secondaries.
pub struct SecondaryEntry {
    targets: Vec<SocketAddr>,
    serial: u32,
    at: Instant,
    answers: Vec<(SocketAddr, SecondaryAnswer)>,
}

/// Shared state of the reconciler.
pub struct Ctx {
    pub client: Client,
    pub config: Arc<OperatorConfig>,
    pub stores: Stores,
    pub metrics: Arc<OperatorMetrics>,
    pub writer: Writer,
    recorder: Recorder,
    /// Who holds which domain, as far as this process knows (see [`tenancy`]).
    pub holders: Mutex<Holders>,
    pub checks: Mutex<HashMap<ZoneKey, CheckEntry>>,
    checks_running: Mutex<HashSet<ZoneKey>>,
    pub secondary_checks: Mutex<HashMap<ZoneKey, SecondaryEntry>>,
    secondary_running: Mutex<HashSet<ZoneKey>>,
    check_slots: Arc<Semaphore>,
    /// Since when the parent has been seen ready for a zone's rollover to finish.
    rollover_ready: Mutex<HashMap<ZoneKey, std::time::Instant>>,
    recheck: mpsc::UnboundedSender<ObjectRef<DNSZone>>,
    /// Wakes the sweeper (a zone was deleted, the caches synced).
    pub sweep: Notify,
}

impl Ctx {
    pub fn new(
        client: Client,
        config: Arc<OperatorConfig>,
        stores: Stores,
        metrics: Arc<OperatorMetrics>,
        recheck: mpsc::UnboundedSender<ObjectRef<DNSZone>>,
    ) -> Self {
        Ctx {
            recorder: Recorder::new(
                client.clone(),
                Reporter {
                    controller: FIELD_MANAGER.into(),
                    instance: Some(config.identity.clone()),
                },
            ),
            writer: Writer::new(client.clone(), metrics.clone()),
            client,
            config,
            stores,
            metrics,
            holders: Mutex::new(Holders::default()),
            checks: Mutex::new(HashMap::new()),
            checks_running: Mutex::new(HashSet::new()),
            rollover_ready: Mutex::new(HashMap::new()),
            secondary_checks: Mutex::new(HashMap::new()),
            secondary_running: Mutex::new(HashSet::new()),
            check_slots: Arc::new(Semaphore::new(32)),
            recheck,
            sweep: Notify::new(),
        }
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
            let check = async move {
                let result = {
                    let _slot = ctx.check_slots.clone().acquire_owned().await;
                    checker.check(&expected).await
                };
                let label = match &result {
                    DelegationCheck::Delegated { .. } => "delegated",
                    DelegationCheck::NotDelegated { .. } => "not_delegated",
                    DelegationCheck::Mismatch { .. } => "mismatch",
                    DelegationCheck::DsMissing { .. } => "ds_missing",
                    DelegationCheck::DsMismatch { .. } => "ds_mismatch",
                    _ => "unreachable",
                };
                ctx.metrics
                    .delegation_checks
                    .get_or_create(&CheckLabels { result: label })
                    .inc();
                tracing::debug!(?result, "delegation checked");
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
            };
            tokio::spawn(check.in_current_span());
        }
        shown
    }

    /// The secondaries' state to show for the zone, starting a new check when the last one is
    /// older than the interval, or was of other targets or another serial. What is shown is
    /// always judged against the serial that check asked about, so a serial change never shows
    /// a secondary as behind before it was asked again.
    fn secondaries(
        self: &Arc<Self>,
        key: &ZoneKey,
        zone: &DNSZone,
        targets: Vec<SocketAddr>,
        serial: Option<u32>,
    ) -> SecondariesCheck {
        let Some(checker) = self.config.secondary_checker.clone() else {
            return SecondariesCheck::Disabled;
        };
        let Some(serial) = serial else {
            return SecondariesCheck::SerialUnknown;
        };
        let (shown, stale) = {
            let checks = self.secondary_checks.lock().expect("checks lock");
            match checks.get(key) {
                Some(e) if e.targets == targets => (
                    SecondariesCheck::Checked {
                        serial: e.serial,
                        answers: e
                            .answers
                            .iter()
                            .map(|(a, r)| (a.to_string(), r.clone()))
                            .collect(),
                    },
                    e.serial != serial || e.at.elapsed() >= self.config.secondary_interval,
                ),
                _ => (SecondariesCheck::Pending, true),
            }
        };
        if stale
            && self
                .secondary_running
                .lock()
                .expect("lock")
                .insert(key.clone())
        {
            let ctx = self.clone();
            let key = key.clone();
            let zref = ObjectRef::from_obj(zone);
            let domain = crate::domain::normalize(&zone.spec.domain);
            let check = async move {
                let answers = {
                    let _slot = ctx.check_slots.clone().acquire_owned().await;
                    checker.check(&domain, &targets, serial).await
                };
                tracing::debug!(?answers, serial, "secondaries checked");
                ctx.secondary_checks.lock().expect("checks lock").insert(
                    key.clone(),
                    SecondaryEntry {
                        targets,
                        serial,
                        at: Instant::now(),
                        answers,
                    },
                );
                ctx.secondary_running.lock().expect("lock").remove(&key);
                let _ = ctx.recheck.unbounded_send(zref);
            };
            tokio::spawn(check.in_current_span());
        }
        shown
    }

    /// The rollover step the zone's annotation asks for (`rollover.rs`), carried out on its key
    /// Secret; returns the message for `status.dnssec.rollover`.
    async fn rollover(
        &self,
        key: &ZoneKey,
        zone: &DNSZone,
        algorithm: crate::dnssec::keys::Algorithm,
        secret: &k8s_openapi::api::core::v1::Secret,
        check: &DelegationCheck,
    ) -> Result<Option<String>, Error> {
        use super::rollover::{self, Action as Step, Request};
        use crate::dnssec::keys::{ACTIVE_KEY, DS_TTL, NEXT_KEY, SigningKey, ZoneKeys};
        let req = rollover::request(zone);
        if req == Request::None {
            self.rollover_ready.lock().expect("lock").remove(key);
            return Ok(None);
        }
        let name = desired::dnssec_secret_name(&key.name);
        let what = format!("Secret {}/{name}", key.namespace);
        let data = secret.data.clone().unwrap_or_default();
        let Ok(keys) = ZoneKeys::from_entries(&what, |k| data.get(k).map(|b| b.0.as_slice()))
        else {
            // DNSSECReady says what is wrong with the key
            return Ok(Some(
                "rollover waits: the key Secret does not hold a usable key".into(),
            ));
        };
        let domain = crate::domain::normalize(&zone.spec.domain);
        let ds = |k: &SigningKey| {
            let line = k.ds_presentation(&domain, DS_TTL);
            (
                k.key_tag(),
                crate::dnssec::ds::normalize(&line).unwrap_or(line),
            )
        };
        let state = rollover::Keys {
            active: ds(&keys.active),
            next: keys.next.as_ref().map(ds),
        };
        let ready_for = {
            let mut ready = self.rollover_ready.lock().expect("lock");
            match rollover::parent_ready(&state, check) {
                Ok(()) => Some(
                    ready
                        .entry(key.clone())
                        .or_insert_with(std::time::Instant::now)
                        .elapsed(),
                ),
                Err(_) => {
                    ready.remove(key);
                    None
                }
            }
        };
        let b64 = |bytes: &[u8]| {
            serde_json::Value::String(base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                bytes,
            ))
        };
        let event = |reason: &str, note: String| status::EventSpec {
            warning: false,
            reason: reason.into(),
            action: "Rollover".into(),
            note,
        };
        match rollover::decide(&req, &state, check, ready_for, self.config.rollover_hold) {
            Step::Idle(m) => Ok(m),
            Step::Wait(m) | Step::Hold(m) => Ok(Some(m)),
            Step::AddNext => {
                let next = SigningKey::generate(algorithm).map_err(|e| Error::Api {
                    what: format!("generating the next DNSSEC key of {what}"),
                    source: kube::Error::Service(e.to_string().into()),
                })?;
                let mut patch = serde_json::Map::new();
                patch.insert(NEXT_KEY.into(), b64(next.to_pkcs8_pem().as_bytes()));
                self.writer
                    .patch_secret_data(&key.namespace, &name, patch)
                    .await?;
                let note = format!(
                    "DNSSEC rollover started: key {} added as {NEXT_KEY} to {what}; both keys sign. Give the registrar its DS ({}) and remove the old one, then annotate {}=finish",
                    next.key_tag(),
                    next.ds_presentation(&domain, DS_TTL),
                    rollover::ANNOTATION
                );
                self.publish(zone, &event("DNSSECRolloverStarted", note.clone()))
                    .await;
                Ok(Some(note))
            }
            Step::Promote => {
                let mut patch = serde_json::Map::new();
                let next = data.get(NEXT_KEY).map(|b| b.0.clone()).unwrap_or_default();
                patch.insert(ACTIVE_KEY.into(), b64(&next));
                patch.insert(NEXT_KEY.into(), serde_json::Value::Null);
                self.writer
                    .patch_secret_data(&key.namespace, &name, patch)
                    .await?;
                self.rollover_ready.lock().expect("lock").remove(key);
                let note = format!(
                    "DNSSEC rollover finished: key {} is the only key of {what}; key {} is gone",
                    state.next.as_ref().map(|n| n.0).unwrap_or_default(),
                    state.active.0
                );
                self.publish(zone, &event("DNSSECRolloverFinished", note.clone()))
                    .await;
                Ok(Some(note))
            }
        }
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
                tracing::warn!(error = %e, "cannot publish an event");
            }
        }
    }
}

/// The zone's expected NS set, glue and DS (a signed zone), from its computed status.
pub fn expected_delegation(domain: &str, status: &crate::api::DNSZoneStatus) -> Expected {
    let nameservers = &status.nameservers;
    let domain = crate::domain::normalize(domain);
    let mut e = Expected {
        domain: domain.clone(),
        ds: status
            .dnssec
            .iter()
            .flat_map(|d| &d.ds)
            .filter_map(|l| crate::dnssec::ds::normalize(l).ok())
            .collect(),
        ..Expected::default()
    };
    for ns in nameservers {
        e.nameservers.insert(ns.hostname.clone());
        if crate::domain::is_at_or_below(&ns.hostname, &domain) {
            let ips: BTreeSet<std::net::IpAddr> =
                ns.addresses.iter().filter_map(|a| a.parse().ok()).collect();
            if !ips.is_empty() {
                e.glue.insert(ns.hostname.clone(), ips);
            }
        }
    }
    e
}

/// The zone's `spec.transfer.notify` targets, parsed (CEL has checked them), without repeats.
pub fn notify_targets(zone: &DNSZone) -> Vec<SocketAddr> {
    let mut out = Vec::new();
    for n in zone.spec.transfer.iter().flat_map(|t| &t.notify) {
        if let Ok(a) = crate::zone::transfer::parse_notify_target(&n.0)
            && !out.contains(&a)
        {
            out.push(a);
        }
    }
    out
}

fn now_seconds() -> Time {
    let now = k8s_openapi::jiff::Timestamp::now();
    Time(k8s_openapi::jiff::Timestamp::from_second(now.as_second()).unwrap_or(now))
}

/// `namespace/name` of a DNSZone.
pub fn zone_key(zone: &DNSZone) -> ZoneKey {
    ZoneKey::new(zone.namespace().unwrap_or_default(), zone.name_any())
}

/// The controller's reconcile function: [`reconcile_zone`] with its metrics and the
/// configured timeout (`OperatorConfig::reconcile_timeout`), in a span that names the zone.
#[tracing::instrument(name = "reconcile", skip_all, fields(zone = %zone_key(&zone)))]
pub async fn reconcile(zone: Arc<DNSZone>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let start = Instant::now();
    let limit = ctx.config.reconcile_timeout;
    let result = match tokio::time::timeout(limit, reconcile_zone(&zone, &ctx)).await {
        Ok(r) => r,
        Err(_) => Err(Error::Timeout(limit)),
    };
    ctx.metrics.duration.observe(start.elapsed().as_secs_f64());
    ctx.metrics
        .reconciles
        .get_or_create(&ResultLabels {
            result: if result.is_ok() { "ok" } else { "error" },
        })
        .inc();
    if let Err(e) = &result {
        ctx.metrics.error(e.metric_label());
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
    let key = zone_key(zone);
    tracing::debug!("reconciling");

    // Who may serve which domain, over every zone of the cluster.
    // Only zones of the same domain or above it decide this zone's verdict.
    let mut claims: Vec<Claim> = ctx
        .stores
        .zones
        .state_filter(|z| {
            z.metadata.uid != zone.metadata.uid
                && crate::domain::within(&zone.spec.domain, &z.spec.domain)
        })
        .iter()
        .filter_map(|z| tenancy::claim_of(z))
        .collect();
    claims.extend(tenancy::claim_of(zone));
    let verdict = {
        // Marking, deciding and recording under one lock: reconciles of two zones of one domain
        // see each other's outcome whole.
        let mut holders = ctx.holders.lock().expect("holders lock");
        holders.mark(&mut claims);
        let verdict = tenancy::resolve(&claims, ctx.config.policy.as_ref())
            .remove(&key)
            .unwrap_or(Verdict::Accepted);
        holders.record(&key, &crate::domain::normalize(&zone.spec.domain), &verdict);
        verdict
    };

    // Owned objects: apply what is wanted, delete the rest.
    let grants = ctx.stores.grants.state();
    let grant_refs: Vec<&DNSZoneGrant> = grants.iter().map(|g| g.as_ref()).collect();
    let mut desired = if verdict.is_accepted() {
        desired_objects(zone, &ctx.config.server, &grant_refs)
    } else {
        Vec::new()
    };
    // A scoped operator writes nothing outside its namespaces: a source namespace out of scope
    // gets no Role (its grants are not watched either, so it shows as not consenting).
    desired.retain(|o| {
        let admitted = ctx.config.scope.admits(o.namespace.as_deref());
        if !admitted {
            tracing::debug!(object = %o.describe(), "outside --watch-namespace: not written");
        }
        admitted
    });
    tracing::debug!(?verdict, objects = desired.len(), "desired");
    let owned = &ctx.stores.owned;
    // the key Secret if this reconcile created it: the status reads it before the cache has it
    let mut created_dnssec_secret: Option<k8s_openapi::api::core::v1::Secret> = None;
    for obj in &desired {
        let live = owned.live(obj.kind, obj.namespace.as_deref(), &obj.name);
        if obj.seed.is_some() {
            let created = ctx.writer.create_once(obj, live).await?;
            if matches!(obj.seed, Some(desired::SecretSeed::Dnssec(_))) {
                created_dnssec_secret = created.and_then(|o| {
                    serde_json::to_value(o)
                        .ok()
                        .and_then(|v| serde_json::from_value(v).ok())
                });
            }
        } else {
            ctx.writer.ensure(obj, live).await?;
        }
    }
    let wanted: HashSet<ObjectId> = desired.iter().map(desired::identity).collect();
    for (kind, ns, name) in owned.zone_objects(&key) {
        if !wanted.contains(&(kind, ns.clone(), name.clone())) {
            ctx.writer.delete(kind, ns.as_deref(), &name).await?;
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
            owned
                .deployments
                .get(&ObjectRef::new(&nameserver_object_name(&key.name, i)).within(ns))
        })
        .collect();
    let services: Vec<Option<Arc<Service>>> = (1..=count)
        .map(|i| {
            owned
                .services
                .get(&ObjectRef::new(&nameserver_object_name(&key.name, i)).within(ns))
        })
        .collect();
    let serial_configmap = owned
        .config_maps
        .get(&ObjectRef::new(&desired::serial_configmap_name(&key.name)).within(ns));
    let dnssec_secret = zone.spec.dnssec_enabled().and_then(|_| {
        owned
            .secrets
            .get(&ObjectRef::new(&desired::dnssec_secret_name(&key.name)).within(ns))
            .or_else(|| created_dnssec_secret.map(Arc::new))
    });
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
        rollover: None,
        secondaries: &SecondariesCheck::Pending,
        delegation_ttl: ctx.config.delegation_ttl,
        placements: &ctx.config.server.placements,
        serial_configmap: serial_configmap.as_deref(),
        dnssec_secret: dnssec_secret.as_deref(),
    };
    let now = now_seconds();
    let targets = notify_targets(zone);
    let secondaries = if verdict.is_accepted() && !targets.is_empty() {
        let serial = owned
            .config_maps
            .get(&ObjectRef::new(&desired::serial_configmap_name(&key.name)).within(ns))
            .and_then(|cm| cm.data.as_ref()?.get("serial")?.parse::<u32>().ok());
        ctx.secondaries(&key, zone, targets.clone(), serial)
    } else {
        ctx.secondary_checks
            .lock()
            .expect("checks lock")
            .remove(&key);
        SecondariesCheck::Pending
    };
    obs.secondaries = &secondaries;
    let delegation;
    let rollover;
    let new_status = if verdict.is_accepted() {
        let first = compute_status(zone, &obs, now.clone());
        delegation = ctx.delegation(&key, zone, expected_delegation(&zone.spec.domain, &first));
        obs.delegation = &delegation;
        rollover = match (zone.spec.dnssec_enabled(), dnssec_secret.as_deref()) {
            (Some(spec), Some(secret)) => {
                ctx.rollover(&key, zone, spec.algorithm, secret, &delegation)
                    .await?
            }
            _ => None,
        };
        obs.rollover = rollover.as_deref();
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
        .map_err(|source| Error::Status {
            zone: key.clone(),
            source,
        })?;
        ctx.metrics.write("DNSZone/status", "apply");
        for ev in status_events(zone.status.as_ref(), &new_status) {
            ctx.publish(zone, &ev).await;
        }
    }
    ctx.metrics.set_secondaries(
        &key.namespace,
        &key.name,
        new_status
            .secondaries
            .iter()
            .map(|s| (s.address.clone(), s.in_sync))
            .collect(),
    );
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
    let mut next = Duration::from_secs(3600);
    if verdict.is_accepted() && ctx.config.checker.is_some() {
        next = next.min(ctx.config.check_interval);
    }
    if verdict.is_accepted() && !targets.is_empty() && ctx.config.secondary_checker.is_some() {
        next = next.min(ctx.config.secondary_interval);
    }
    Ok(Action::requeue(next))
}

/// After a failed reconcile: log it (in the zone's span) and retry in 5 s.
pub fn error_policy(zone: Arc<DNSZone>, error: &Error, _ctx: Arc<Ctx>) -> Action {
    let span = tracing::info_span!("reconcile", zone = %zone_key(&zone));
    span.in_scope(|| tracing::warn!(%error, "reconcile failed; retrying"));
    Action::requeue(Duration::from_secs(5))
}

#[cfg(test)]
mod tests {
    use super::super::desired::OwnedKind;
    use super::*;
    use crate::api::NameserverStatus;

    #[test]
    fn expected_delegation_has_glue_only_for_in_zone_ip_addresses() {
        let status = |nameservers| crate::api::DNSZoneStatus {
            nameservers,
            ..Default::default()
        };
        let e = expected_delegation(
            "Acme.example.com.",
            &status(vec![
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
            ]),
        );
        assert!(e.ds.is_empty(), "unsigned: no DS check");
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
        // signed: the DS of status.dnssec, in the form the parent's answers are compared in
        let signed = crate::api::DNSZoneStatus {
            dnssec: Some(crate::api::DnssecStatus {
                key_tag: 12345,
                ds: vec![format!(
                    "acme.example.com. 3600 IN DS 12345 13 2 {}",
                    "ab".repeat(32)
                )],
                dnskey: Vec::new(),
                rollover: None,
            }),
            ..Default::default()
        };
        let e = expected_delegation("acme.example.com", &signed);
        assert_eq!(
            e.ds.into_iter().collect::<Vec<_>>(),
            vec![format!("12345 13 2 {}", "AB".repeat(32))]
        );
    }

    mod with_a_mocked_apiserver {
        //! `reconcile` against a mocked apiserver: which requests a zone causes, with what
        //! bodies, and what a failure does.
        use super::super::super::desired::{ServerSettings, desired_objects};
        use super::super::super::fixtures::{Call, Fixture, api_error, echo, zone};
        use super::super::super::status::status_events;
        use super::*;
        use crate::api::DNSZoneStatus;
        use serde_json::{Value, json};

        fn config() -> OperatorConfig {
            OperatorConfig {
                server: ServerSettings::default(),
                ..OperatorConfig::default()
            }
        }

        fn lines(calls: &[Call]) -> Vec<String> {
            calls.iter().map(Call::line).collect()
        }

        /// The requests that make the objects a default zone `acme/web` wants: server-side
        /// applies, and the cookie Secret's create.
        fn owned_paths() -> Vec<String> {
            [
                "/api/v1/namespaces/acme/serviceaccounts/web-dns",
                "/api/v1/namespaces/acme/configmaps/web-serial",
                "POST /api/v1/namespaces/acme/secrets",
                "/apis/rbac.authorization.k8s.io/v1/namespaces/acme/roles/web-dns",
                "/apis/rbac.authorization.k8s.io/v1/namespaces/acme/rolebindings/web-dns",
                "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/zonegate.acme.web.gateways",
                "/apis/apps/v1/namespaces/acme/deployments/web-ns1",
                "/api/v1/namespaces/acme/services/web-ns1",
                "/apis/apps/v1/namespaces/acme/deployments/web-ns2",
                "/api/v1/namespaces/acme/services/web-ns2",
                "/apis/policy/v1/namespaces/acme/poddisruptionbudgets/web-dns",
            ]
            .iter()
            .map(|p| {
                if p.starts_with('/') {
                    format!("PATCH {p}")
                } else {
                    p.to_string()
                }
            })
            .collect()
        }

        /// A new zone: one server-side apply per owned object with exactly the desired body,
        /// then the status, then one Event per condition.
        async fn new_zone(f: &mut Fixture) -> (DNSZone, DNSZoneStatus) {
            let z = zone("acme", "web", json!({"domain": "acme.example.com"}));
            f.add_zone(&z);
            let (result, calls) = f.reconcile(&z, echo(&z)).await;
            let action = result.expect("reconcile");
            assert_eq!(action, Action::requeue(Duration::from_secs(3600)));

            let desired = desired_objects(&z, &ServerSettings::default(), &[]);
            let mut expected = owned_paths();
            expected.push(
                "PATCH /apis/zonegate.dev/v1alpha1/namespaces/acme/dnszones/web/status".into(),
            );
            let status: DNSZoneStatus =
                serde_json::from_value(calls[desired.len()].body["status"].clone()).unwrap();
            let events = status_events(None, &status);
            assert!(!events.is_empty());
            for _ in &events {
                expected.push("POST /apis/events.k8s.io/v1/namespaces/acme/events".into());
            }
            assert_eq!(lines(&calls), expected);

            for (call, obj) in calls.iter().zip(&desired) {
                if obj.seed.is_some() {
                    // created once: the body and the secret, no server-side apply
                    let mut body = call.body.clone();
                    let data = body.as_object_mut().unwrap().remove("data").unwrap();
                    assert_eq!(body, obj.body, "{}", call.line());
                    assert!(data[desired::COOKIE_SECRET_KEY].is_string(), "{data}");
                    assert_eq!(call.query, "&fieldManager=zonegate-operator");
                    continue;
                }
                assert_eq!(call.body, obj.body, "{}", call.line());
                assert_eq!(
                    call.query,
                    "&force=true&fieldManager=zonegate-operator",
                    "{}",
                    call.line()
                );
            }
            let st = &calls[desired.len()];
            assert_eq!(st.query, "&force=true&fieldManager=zonegate-operator");
            assert_eq!(
                (&st.body["apiVersion"], &st.body["kind"]),
                (&json!("zonegate.dev/v1alpha1"), &json!("DNSZone"))
            );
            let cond = |t: &str| {
                status
                    .conditions
                    .iter()
                    .find(|c| c.type_ == t)
                    .map(|c| (c.status.clone(), c.reason.clone()))
                    .unwrap()
            };
            assert_eq!(cond("Accepted"), ("True".into(), "Accepted".into()));
            assert_eq!(cond("Ready").0, "False");
            assert_eq!(status.observed_generation, Some(1));
            for (call, ev) in calls[desired.len() + 1..].iter().zip(&events) {
                assert_eq!(call.body["reason"], json!(ev.reason));
                assert_eq!(call.body["note"], json!(ev.note));
                assert_eq!(call.body["regarding"]["name"], json!("web"));
            }
            let metrics = f.metrics.encode();
            assert!(
                metrics.contains(
                    "zonegate_operator_api_writes_total{kind=\"Deployment\",verb=\"apply\"} 2"
                ),
                "{metrics}"
            );
            (z, status)
        }

        /// `--watch-namespace acme`: a source namespace outside the scope gets no Role or
        /// RoleBinding; every other request is the same as without a scope.
        #[tokio::test]
        async fn a_scoped_operator_writes_nothing_outside_its_namespaces() {
            let z = zone(
                "acme",
                "web",
                json!({"domain": "acme.example.com", "sources": {"namespaces": ["shop"]}}),
            );
            let mut f = Fixture::new(config());
            f.add_zone(&z);
            let (r, everywhere) = f.reconcile(&z, echo(&z)).await;
            r.unwrap();
            let shop = |l: &String| l.contains("/namespaces/shop/");
            assert_eq!(lines(&everywhere).iter().filter(|l| shop(l)).count(), 2);
            let mut f = Fixture::new(OperatorConfig {
                scope: super::super::super::scope::Scope::parse(&["acme"]).unwrap(),
                ..config()
            });
            f.add_zone(&z);
            let (r, scoped) = f.reconcile(&z, echo(&z)).await;
            r.unwrap();
            let in_scope: Vec<String> = lines(&everywhere)
                .into_iter()
                .filter(|l| !shop(l))
                .collect();
            assert_eq!(lines(&scoped), in_scope);
        }

        #[tokio::test]
        async fn a_new_zone_gets_its_objects_then_its_status_and_events() {
            let mut f = Fixture::new(config());
            new_zone(&mut f).await;
        }

        /// The cookie Secret is created once with fresh random bytes and never written again:
        /// not when the cache has it (whatever it holds now: an admin's rotation stays), not
        /// by a fresh operator whose cache has not seen it yet (the apiserver's
        /// `AlreadyExists` is the end of it, no apply follows).
        #[tokio::test]
        async fn the_cookie_secret_is_created_once_and_never_rewritten() {
            let secrets = |calls: &[Call]| -> Vec<Call> {
                calls
                    .iter()
                    .filter(|c| c.path.contains("/secrets"))
                    .cloned()
                    .collect()
            };
            let mut f = Fixture::new(config());
            let z = zone("acme", "web", json!({"domain": "acme.example.com"}));
            f.add_zone(&z);
            let (result, calls) = f.reconcile(&z, echo(&z)).await;
            result.expect("reconcile");
            let created = secrets(&calls);
            assert_eq!(
                lines(&created),
                vec!["POST /api/v1/namespaces/acme/secrets"]
            );
            let first = created[0].body["data"][desired::COOKIE_SECRET_KEY].clone();
            assert_eq!(created[0].body["metadata"]["name"], "web-cookie");
            assert_eq!(
                created[0].body["metadata"]["ownerReferences"][0]["uid"],
                "uid-acme-web"
            );

            // the Secret in the cache, rotated by an admin, its labels and annotation kept
            let mut live = created[0].body.clone();
            live["metadata"]["resourceVersion"] = json!("5");
            live["data"][desired::COOKIE_SECRET_KEY] = json!("cm90YXRlZAo=");
            f.owned.apply_json(OwnedKind::Secret, live);
            for i in 0..2 {
                let (result, calls) = f.reconcile(&z, echo(&z)).await;
                result.expect("reconcile");
                assert!(
                    secrets(&calls).is_empty(),
                    "reconcile {i}: {:?}",
                    lines(&calls)
                );
            }

            // a fresh operator, its cache without the Secret: one create, refused, and no more
            let mut fresh = Fixture::new(config());
            fresh.add_zone(&z);
            let mut ok = echo(&z);
            let (result, calls) = fresh
                .reconcile(&z, |c| {
                    if c.path.contains("/secrets") {
                        (
                            409,
                            api_error(
                                409,
                                "AlreadyExists",
                                "secrets \"web-cookie\" already exists",
                            ),
                        )
                    } else {
                        ok(c)
                    }
                })
                .await;
            result.expect("AlreadyExists is not an error");
            let tried = secrets(&calls);
            assert_eq!(lines(&tried), vec!["POST /api/v1/namespaces/acme/secrets"]);
            let second = tried[0].body["data"][desired::COOKIE_SECRET_KEY].clone();
            assert_ne!(first, second, "each create has new random bytes");
            let metrics = fresh.metrics.encode();
            assert!(
                !metrics.contains("kind=\"Secret\",verb=\"create\"} 1"),
                "a refused create is no write: {metrics}"
            );
            assert!(
                f.metrics.encode().contains(
                    "zonegate_operator_api_writes_total{kind=\"Secret\",verb=\"create\"} 1"
                )
            );
        }

        /// `spec.dnssec.enabled`: the key Secret `web-dnssec` is created once (owned by the
        /// zone, a `key.pem` of the zone's algorithm) and, once in the cache, never written
        /// again: the key stays the one the parent's DS names.
        #[tokio::test]
        async fn the_dnssec_key_secret_is_created_once() {
            use base64::Engine;
            let dnssec = |calls: &[Call]| -> Vec<Call> {
                calls
                    .iter()
                    .filter(|c| {
                        c.path.contains("/secrets") && c.body["metadata"]["name"] == "web-dnssec"
                    })
                    .cloned()
                    .collect()
            };
            let mut f = Fixture::new(config());
            let z = zone(
                "acme",
                "web",
                json!({"domain": "acme.example.com", "dnssec": {"enabled": true}}),
            );
            f.add_zone(&z);
            let (result, calls) = f.reconcile(&z, echo(&z)).await;
            result.expect("reconcile");
            let created = dnssec(&calls);
            assert_eq!(
                lines(&created),
                vec!["POST /api/v1/namespaces/acme/secrets"]
            );
            let body = &created[0].body;
            assert_eq!(
                body["metadata"]["ownerReferences"][0]["uid"],
                "uid-acme-web"
            );
            assert_eq!(body["metadata"]["ownerReferences"][0]["kind"], "DNSZone");
            let pem = base64::engine::general_purpose::STANDARD
                .decode(body["data"]["key.pem"].as_str().unwrap())
                .unwrap();
            let keys = crate::dnssec::keys::ZoneKeys::from_entries("created", |k| {
                (k == "key.pem").then_some(pem.as_slice())
            })
            .unwrap();
            assert_eq!(
                keys.active.algorithm(),
                crate::dnssec::keys::Algorithm::EcdsaP256Sha256
            );
            // the status of the same reconcile already has the created key's DS (the cache
            // has not seen the Secret yet): no KeyMissing warning for a new zone
            let status = calls
                .iter()
                .find(|c| c.path.ends_with("/status"))
                .map(|c| c.body["status"].clone())
                .expect("a status patch");
            let ready = status["conditions"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["type"] == "DNSSECReady")
                .cloned()
                .unwrap();
            assert_eq!(
                (&ready["status"], &ready["reason"]),
                (&json!("True"), &json!("KeyLoaded"))
            );
            assert_eq!(
                status["dnssec"]["ds"],
                json!(keys.ds_presentation("acme.example.com", 3600))
            );
            assert_eq!(status["dnssec"]["keyTag"], json!(keys.active.key_tag()));

            let mut live = body.clone();
            live["metadata"]["resourceVersion"] = json!("7");
            f.owned.apply_json(OwnedKind::Secret, live);
            for i in 0..2 {
                let (result, calls) = f.reconcile(&z, echo(&z)).await;
                result.expect("reconcile");
                let touched: Vec<Call> = calls
                    .iter()
                    .filter(|c| {
                        c.path.contains("web-dnssec") || c.body["metadata"]["name"] == "web-dnssec"
                    })
                    .cloned()
                    .collect();
                assert!(touched.is_empty(), "reconcile {i}: {:?}", lines(&touched));
            }
        }

        #[tokio::test]
        async fn a_converged_zone_causes_no_request() {
            let mut f = Fixture::new(config());
            let (mut z, status) = new_zone(&mut f).await;
            // The caches catch up: every object as applied, the zone with its status.
            for obj in desired_objects(&z, &ServerSettings::default(), &[]) {
                let mut live = obj.body.clone();
                live["metadata"]["resourceVersion"] = json!("1");
                f.owned.apply_json(obj.kind, live);
            }
            z.status = Some(status);
            f.add_zone(&z);
            // The objects exist now, so the status says more (the Services have no address
            // yet): one status write and no object write.
            let (result, calls) = f.reconcile(&z, echo(&z)).await;
            result.expect("reconcile");
            let st = &calls[0];
            assert_eq!(
                lines(&calls[..1]),
                vec!["PATCH /apis/zonegate.dev/v1alpha1/namespaces/acme/dnszones/web/status"]
            );
            z.status = Some(serde_json::from_value(st.body["status"].clone()).unwrap());
            f.add_zone(&z);
            // Converged: nothing to write.
            let (result, calls) = f.reconcile(&z, |c| panic!("unexpected {}", c.line())).await;
            result.expect("reconcile");
            assert!(calls.is_empty(), "{:?}", lines(&calls));

            // The memo is not what keeps it quiet: a fresh process (empty memo) with the
            // same caches compares and finds nothing to do either.
            let mut fresh = Fixture::new(config());
            fresh.add_zone(&z);
            for obj in desired_objects(&z, &ServerSettings::default(), &[]) {
                let mut live = obj.body.clone();
                live["metadata"]["resourceVersion"] = json!("7");
                fresh.owned.apply_json(obj.kind, live);
            }
            let (result, calls) = fresh
                .reconcile(&z, |c| panic!("unexpected {}", c.line()))
                .await;
            result.expect("reconcile");
            assert!(calls.is_empty(), "{:?}", lines(&calls));
        }

        #[tokio::test]
        async fn a_refused_apply_is_an_apply_error_of_that_kind_and_stops_the_reconcile() {
            let mut f = Fixture::new(config());
            let z = zone("acme", "web", json!({"domain": "acme.example.com"}));
            f.add_zone(&z);
            let mut ok = echo(&z);
            let (result, calls) = f
                .reconcile(&z, |c| {
                    if c.path.contains("/services/") {
                        (422, api_error(422, "Invalid", "spec.ports: bad"))
                    } else {
                        ok(c)
                    }
                })
                .await;
            let err = result.unwrap_err();
            assert!(
                matches!(&err, Error::Apply { kind: OwnedKind::Service, object, .. } if object == "Service acme/web-ns1"),
                "{err:?}"
            );
            assert_eq!(err.metric_label(), "apply");
            // nothing after the refused apply: no second nameserver, no status
            assert_eq!(lines(&calls), owned_paths()[..8].to_vec());
            let metrics = f.metrics.encode();
            let errors: Vec<&str> = metrics
                .lines()
                .filter(|l| l.starts_with("zonegate_operator_reconcile_errors_total{"))
                .collect();
            assert_eq!(
                errors,
                vec!["zonegate_operator_reconcile_errors_total{kind=\"apply\"} 1"]
            );
            assert!(
                metrics.contains("zonegate_operator_reconciles_total{result=\"error\"} 1"),
                "{metrics}"
            );
        }

        /// An apiserver that takes requests and never answers (kube's client has no read
        /// timeout) ends the reconcile with a Timeout error, to be retried, instead of holding
        /// the zone for ever.
        #[tokio::test]
        async fn an_apiserver_that_never_answers_times_the_reconcile_out() {
            let mut f = Fixture::new(OperatorConfig {
                reconcile_timeout: Duration::from_millis(300),
                ..config()
            });
            let z = zone("acme", "web", json!({"domain": "acme.example.com"}));
            f.add_zone(&z);
            let started = Instant::now();
            let (result, requests) = f.reconcile_unanswered(&z).await;
            let err = result.unwrap_err();
            assert!(matches!(err, Error::Timeout(_)), "{err:?}");
            assert_eq!(err.metric_label(), "timeout");
            assert_eq!(
                requests, 1,
                "the first write waits, nothing after it is sent"
            );
            assert!(started.elapsed() >= Duration::from_millis(300));
            let text = f.metrics.encode();
            assert!(
                text.contains("zonegate_operator_reconcile_errors_total{kind=\"timeout\"} 1"),
                "{text}"
            );
        }

        #[tokio::test]
        async fn a_refused_status_write_is_a_status_error() {
            let mut f = Fixture::new(config());
            let z = zone("acme", "web", json!({"domain": "acme.example.com"}));
            f.add_zone(&z);
            let mut ok = echo(&z);
            let (result, calls) = f
                .reconcile(&z, |c| {
                    if c.path.ends_with("/status") {
                        (
                            409,
                            api_error(409, "Conflict", "the object has been modified"),
                        )
                    } else {
                        ok(c)
                    }
                })
                .await;
            let err = result.unwrap_err();
            assert!(
                matches!(&err, Error::Status { zone, .. } if zone.to_string() == "acme/web"),
                "{err:?}"
            );
            assert_eq!(err.metric_label(), "status");
            // no Event for a status that was not written
            assert!(calls.last().unwrap().path.ends_with("/status"));
        }

        #[tokio::test]
        async fn a_rejected_zone_deletes_what_it_had_and_says_why() {
            let mut f = Fixture::new(config());
            let older = zone("other", "first", json!({"domain": "acme.example.com"}));
            let mut z = zone("acme", "web", json!({"domain": "acme.example.com"}));
            z.metadata.creation_timestamp = Some(Time("2026-02-01T00:00:00Z".parse().unwrap()));
            f.add_zone(&older);
            f.add_zone(&z);
            // what the zone had when it still held the domain
            for obj in desired_objects(&z, &ServerSettings::default(), &[]) {
                let mut live = obj.body.clone();
                live["metadata"]["resourceVersion"] = json!("1");
                f.owned.apply_json(obj.kind, live);
            }
            let (result, calls) = f.reconcile(&z, echo(&z)).await;
            result.expect("reconcile");
            let deletes: Vec<String> = lines(&calls)
                .into_iter()
                .filter(|l| l.starts_with("DELETE "))
                .collect();
            let mut expected: Vec<String> = owned_paths()
                .iter()
                .map(|l| match l.strip_prefix("POST ") {
                    Some(p) => format!("DELETE {p}/web-cookie"),
                    None => l.replacen("PATCH", "DELETE", 1),
                })
                .collect();
            expected.sort();
            let mut got = deletes.clone();
            got.sort();
            assert_eq!(got, expected);
            let st = calls.iter().find(|c| c.path.ends_with("/status")).unwrap();
            let status: DNSZoneStatus = serde_json::from_value(st.body["status"].clone()).unwrap();
            let accepted = status
                .conditions
                .iter()
                .find(|c| c.type_ == "Accepted")
                .unwrap();
            assert_eq!(
                (accepted.status.as_str(), accepted.reason.as_str()),
                ("False", "DomainConflict")
            );
            assert!(
                accepted.message.contains("DNSZone other/first"),
                "{}",
                accepted.message
            );
        }

        fn accepted_status(generation: i64) -> Value {
            json!({"observedGeneration": generation, "conditions": [
                {"type": "Accepted", "status": "True", "reason": "Accepted", "message": "",
                 "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": generation}]})
        }

        #[tokio::test]
        async fn the_zone_serving_a_domain_keeps_it_from_an_older_zone_that_moves_to_it() {
            let mut f = Fixture::new(config());
            // b/new serves shop.example.com (its status says so, for its current spec) ...
            let mut holder = zone("b", "new", json!({"domain": "shop.example.com"}));
            holder.metadata.creation_timestamp =
                Some(Time("2026-03-01T00:00:00Z".parse().unwrap()));
            holder.status = Some(serde_json::from_value(accepted_status(1)).unwrap());
            // ... when a/old, older, changes its domain to it (generation 2; its status is
            // still about generation 1).
            let mut mover = zone("a", "old", json!({"domain": "shop.example.com"}));
            mover.metadata.generation = Some(2);
            mover.status = Some(serde_json::from_value(accepted_status(1)).unwrap());
            f.add_zone(&holder);
            f.add_zone(&mover);
            let (result, calls) = f.reconcile(&mover, echo(&mover)).await;
            result.expect("reconcile");
            let st = calls.iter().find(|c| c.path.ends_with("/status")).unwrap();
            let status: DNSZoneStatus = serde_json::from_value(st.body["status"].clone()).unwrap();
            let accepted = status
                .conditions
                .iter()
                .find(|c| c.type_ == "Accepted")
                .unwrap();
            assert_eq!(
                (
                    accepted.status.as_str(),
                    accepted.reason.as_str(),
                    accepted.message.as_str()
                ),
                (
                    "False",
                    "DomainConflict",
                    "domain shop.example.com is already claimed by DNSZone b/new, which serves it already and keeps it until it goes away; this zone gets no nameservers while it exists"
                )
            );
            assert!(
                !calls
                    .iter()
                    .any(|c| c.method == "PATCH" && !c.path.ends_with("/status"))
            );

            // The holder reconciles: still accepted; and from then on this process knows it
            // holds the domain, whatever the statuses say.
            let (result, _) = f.reconcile(&holder, echo(&holder)).await;
            result.expect("reconcile");
            let mut stale = holder.clone();
            stale.metadata.generation = Some(5);
            f.add_zone(&stale);
            let (result, calls) = f.reconcile(&mover, echo(&mover)).await;
            result.expect("reconcile");
            let st = calls.iter().find(|c| c.path.ends_with("/status")).unwrap();
            assert_eq!(
                st.body["status"]["conditions"][0]["reason"],
                json!("DomainConflict")
            );

            // Without the holder, the older zone gets the domain.
            f.zones
                .apply_watcher_event(&kube::runtime::watcher::Event::Delete(stale));
            let (result, calls) = f.reconcile(&mover, echo(&mover)).await;
            result.expect("reconcile");
            let st = calls.iter().find(|c| c.path.ends_with("/status")).unwrap();
            assert_eq!(
                st.body["status"]["conditions"][0]["reason"],
                json!("Accepted")
            );
        }
    }
}
