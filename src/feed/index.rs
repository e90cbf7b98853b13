//! The cluster feed's index of one zone: everything the watches have seen (the zone, the
//! zones its delegations name, consent grants, source objects), which watches should run, and
//! what was published last. The watch tasks (`feed::kube`) feed it through [`ZoneIndex::apply`],
//! [`ZoneIndex::delete`], [`ZoneIndex::reset`] (a completed re-list: the watch's objects are
//! replaced in one step) and [`ZoneIndex::health`]; the loop of `serve --zone`
//! (`cmd/cluster_mode.rs`) only drives it: it starts and stops the watches
//! [`ZoneIndex::plan_watches`] asks for and calls [`ZoneIndex::publish`], which recompiles when
//! something changed and every watch that can list has listed, and swaps the compiled zone in.
//! No I/O happens here except through the [`SerialSource`] handed to `publish` and the reads of
//! the DNSSEC key directory ([`ZoneIndex::reload_keys`]), so the index is unit-tested with typed
//! objects (the tests at the end).
//!
//! Rules it keeps:
//! - Only namespaced watches, only of the kinds the zone uses, only in namespaces it may read:
//!   its own, and those whose `DNSZoneGrant` allows it. Gateways are watched in the namespaces
//!   that routes name as parents; DNSZones named by `zoneRef` delegations, by name.
//! - A kind the apiserver does not serve (CRD missing) is skipped with one warning and started
//!   once discovery shows it. A forbidden or failing watch degrades that watch only.
//! - A failing watch keeps its last known objects, so the zone keeps being served.
//! - A fresh server publishes nothing until every watch that can work has listed once.

use crate::api::{DNSZone, DNSZoneGrantSpec, SourceKind};
use crate::compile::CompileOptions;
use crate::dns::ZoneSet;
use crate::dns::server::SharedZones;
use crate::dnssec::keys::ZoneKeys;
use crate::metrics::{NamespaceLabels, ServerMetrics, WatchLabels};
use crate::objects::SourceObject;
use crate::objects::secret::Secret;
use crate::publish::ZonePipeline;
use crate::serial::SerialSource;
use kube::core::ApiResource;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a watch is of.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum WatchKind {
    Source(SourceKind),
    Gateway,
    Grant,
    /// One DNSZone by name (our own, or one a delegation refers to).
    Zone(String),
    /// One Secret by name: the TSIG key `spec.transfer.tsigSecretName` names (the pods' Role
    /// grants only that name, so the watch selects it by `metadata.name`).
    Secret(String),
}

impl std::fmt::Display for WatchKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WatchKind::Source(k) => write!(f, "{k}"),
            WatchKind::Gateway => f.write_str("Gateway"),
            WatchKind::Grant => f.write_str("DNSZoneGrant"),
            WatchKind::Zone(n) => write!(f, "DNSZone {n}"),
            WatchKind::Secret(n) => write!(f, "Secret {n}"),
        }
    }
}

/// One watch: a kind in a namespace.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WatchKey {
    pub namespace: String,
    pub kind: WatchKind,
}

impl std::fmt::Display for WatchKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} in namespace {}", self.kind, self.namespace)
    }
}

/// An object as the feed keeps it.
#[derive(Clone, Debug)]
pub enum Item {
    Source(Arc<SourceObject>),
    Zone(Arc<DNSZone>),
    Grant(Arc<DNSZoneGrantSpec>),
    Secret(Arc<Secret>),
}

/// Health of one watch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WatchHealth {
    /// Listing for the first time.
    Starting,
    /// Listed and watching.
    Synced,
    /// Failing; the last known objects are kept. `synced` says whether it ever listed.
    Failing {
        error: String,
        forbidden: bool,
        synced: bool,
    },
}

/// Messages from watch tasks to the feed.
#[derive(Debug)]
pub enum FeedMsg {
    /// A (re-)list completed: these are all the watch's objects now.
    Reset(WatchKey, BTreeMap<String, Item>),
    Apply(WatchKey, String, Item),
    Delete(WatchKey, String),
    Health(WatchKey, WatchHealth),
}

/// The API resource of each kind, found by discovery (`None`: its CRD is not installed).
#[derive(Clone, Debug, Default)]
pub struct Resources {
    pub by_kind: BTreeMap<WatchKind, Option<ApiResource>>,
}

/// What the watches have seen: objects and health per watch.
#[derive(Debug, Default)]
struct Watched {
    zone_ns: String,
    zone_name: String,
    /// Objects per watch, by name.
    watched: BTreeMap<WatchKey, BTreeMap<String, Item>>,
    /// Health per watch, and since when (for a failing watch: since its first failure).
    health: BTreeMap<WatchKey, (WatchHealth, Instant)>,
}

/// What `publish` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Published {
    /// Nothing changed since the last publish (or nothing was ever synced): nothing done.
    Clean,
    /// Not every watch has listed yet (or our DNSZone is not seen yet): nothing served.
    Waiting,
    /// Recompiled, but the zone cannot be served (it compiled to no apex: rejected or invalid);
    /// the previous zone, if any, stays.
    Unservable,
    /// The zone served now: its apex and serial, and whether its content changed.
    Zone {
        zone: String,
        serial: u32,
        changed: bool,
    },
}

/// The watches to start (with the resource to watch) and to stop.
#[derive(Debug, Default)]
pub struct WatchPlan {
    pub start: Vec<(WatchKey, ApiResource)>,
    pub stop: Vec<WatchKey>,
}

/// What was published last.
#[derive(Clone, Debug)]
struct Last {
    origin: String,
    hash: u64,
    serial: u32,
    records: u64,
}

/// The index of one zone (see the module comment).
pub struct ZoneIndex {
    seen: Watched,
    /// What the apiserver serves, from the last discovery.
    resources: Resources,
    /// Watches the driver runs now.
    running: BTreeSet<WatchKey>,
    /// Watches of kinds not served, warned about once.
    missing_warned: BTreeSet<WatchKey>,
    /// Whether anything changed since the last compile.
    dirty: bool,
    /// Whether the zone was compiled once with every watch synced.
    synced_once: bool,
    pipeline: ZonePipeline,
    last: Option<Last>,
    // logged once when they appear, not on every recompile
    last_refused: BTreeMap<String, String>,
    last_problems: BTreeSet<String>,
    // label sets exported last, to remove gauges that no longer apply
    refused_exported: Vec<String>,
    failing_exported: Vec<WatchLabels>,
    metrics: Arc<ServerMetrics>,
    zones: SharedZones,
    /// DNSSEC keys (see [`ZoneIndex::set_key_dir`]).
    dnssec: DnssecKeys,
}

/// The DNSSEC keys of a signed zone in cluster mode: the key Secret as the pod mounts it
/// (`serve --dnssec-keys DIR`), read at start and on each [`ZoneIndex::reload_keys`].
#[derive(Default)]
struct DnssecKeys {
    dir: Option<std::path::PathBuf>,
    /// The keys read last from `dir`, or why they could not be read.
    read: Option<Result<Arc<ZoneKeys>, String>>,
    /// The keys the zone is signed with now (kept through a later unreadable key).
    signing: Option<Arc<ZoneKeys>>,
    /// Why a zone with `spec.dnssec.enabled` is not signed, after the last publish.
    refused: Option<String>,
    /// The last key problem logged, to say it once.
    warned: Option<String>,
    /// Never sign (a process that answers no DNS: `zonegate hosts`).
    off: bool,
}

impl ZoneIndex {
    /// Every kind the feed may watch: discovery is asked about these.
    pub fn all_kinds() -> BTreeSet<WatchKind> {
        SourceKind::ALL
            .iter()
            .map(|k| WatchKind::Source(*k))
            .chain([
                WatchKind::Gateway,
                WatchKind::Grant,
                WatchKind::Zone(String::new()),
                WatchKind::Secret(String::new()),
            ])
            .collect()
    }

    /// The index of DNSZone `zone_ns/zone_name`, publishing into `zones`.
    pub fn new(
        zone_ns: &str,
        zone_name: &str,
        resources: Resources,
        metrics: Arc<ServerMetrics>,
        zones: SharedZones,
    ) -> Self {
        Self {
            seen: Watched {
                zone_ns: zone_ns.into(),
                zone_name: zone_name.into(),
                ..Default::default()
            },
            resources,
            running: BTreeSet::new(),
            missing_warned: BTreeSet::new(),
            dirty: true,
            synced_once: false,
            pipeline: ZonePipeline::default(),
            last: None,
            last_refused: BTreeMap::new(),
            last_problems: BTreeSet::new(),
            refused_exported: Vec::new(),
            failing_exported: Vec::new(),
            metrics,
            zones,
            dnssec: DnssecKeys::default(),
        }
    }

    /// Where the zone's DNSSEC keys are (`key.pem`, maybe `next.pem`: the mounted Secret
    /// `<zone>-dnssec`); reads them now. Without a directory a zone with `spec.dnssec.enabled`
    /// is not signed ([`ZoneIndex::dnssec_refused`] says why).
    pub fn set_key_dir(&mut self, dir: Option<std::path::PathBuf>) {
        self.dnssec.dir = dir;
        self.reload_keys();
    }

    /// Publishes the zone unsigned whatever its `spec.dnssec` says, without a word: for a
    /// process that answers no DNS (`zonegate hosts` reads only the names and addresses).
    pub fn disable_signing(&mut self) {
        self.dnssec.off = true;
    }

    /// Reads the key directory again; a change of keys marks the zone for publication (signed
    /// with the new keys). An unreadable or broken key after a good one keeps the good one
    /// (a Secret volume is swapped whole, so this is a broken Secret, not a half-written one).
    pub fn reload_keys(&mut self) {
        let Some(dir) = &self.dnssec.dir else {
            return;
        };
        let read = ZoneKeys::from_dir(dir).map(Arc::new);
        let same = match (&self.dnssec.read, &read) {
            (Some(Ok(a)), Ok(b)) => a
                .all()
                .map(|k| k.public_key())
                .eq(b.all().map(|k| k.public_key())),
            (Some(Err(a)), Err(b)) => a == b,
            _ => false,
        };
        if !same {
            self.dnssec.read = Some(read);
            self.dirty = true;
        }
    }

    /// Why the zone (with `spec.dnssec.enabled`) was published unsigned, if it was: no key
    /// directory, no usable key in it, or a key of another algorithm. `serve` refuses to start
    /// then.
    pub fn dnssec_refused(&self) -> Option<&str> {
        self.dnssec.refused.as_deref()
    }

    /// The keys to sign `zone` with: None when it is not signed.
    fn signing_keys(&mut self, zone: &DNSZone) -> Option<Arc<ZoneKeys>> {
        self.dnssec.refused = None;
        let spec = zone.spec.dnssec_enabled().filter(|_| !self.dnssec.off);
        let Some(spec) = spec else {
            self.dnssec.signing = None;
            self.dnssec.warned = None;
            return None;
        };
        let (ns, name) = (&self.seen.zone_ns, &self.seen.zone_name);
        let secret = crate::dnssec::source::secret_name(name);
        let keys = match (&self.dnssec.dir, &self.dnssec.read) {
            (None, _) | (_, None) => Err(format!(
                "DNSZone {ns}/{name}: spec.dnssec.enabled needs a signing key: serve \
                 --dnssec-keys DIR, the Secret {secret} mounted there (the operator's \
                 nameserver pods do this)"
            )),
            (Some(_), Some(Err(e))) => Err(format!(
                "DNSZone {ns}/{name}: spec.dnssec.enabled: the key Secret {secret}: {e}"
            )),
            (Some(dir), Some(Ok(k))) => crate::dnssec::source::check_algorithm(
                ns,
                name,
                &dir.display().to_string(),
                k,
                spec.algorithm,
            )
            .map(|()| k.clone()),
        };
        match keys {
            Ok(k) => {
                let known = self.dnssec.signing.as_ref().is_some_and(|s| {
                    s.all()
                        .map(|k| k.public_key())
                        .eq(k.all().map(|k| k.public_key()))
                });
                if !known {
                    let domain = zone.spec.domain.trim_end_matches('.');
                    tracing::info!(
                        zone = %format!("{ns}/{name}"),
                        key_tags = ?k.all().map(|k| k.key_tag()).collect::<Vec<_>>(),
                        ds = ?k.ds_presentation(domain, 3600),
                        "DNSSEC keys loaded"
                    );
                }
                self.dnssec.signing = Some(k.clone());
                self.dnssec.warned = None;
                Some(k)
            }
            Err(e) => {
                // a zone signed before stays signed with the keys it had: going unsigned
                // under a DS at the parent would make it bogus for validating resolvers
                let kept = self.dnssec.signing.clone();
                if self.dnssec.warned.as_deref() != Some(&e) {
                    if kept.is_some() {
                        tracing::warn!(problem = %e, "DNSSEC keys unusable; still signing with the keys loaded before");
                    } else {
                        tracing::warn!(problem = %e, "DNSSEC keys unusable; the zone is served unsigned");
                    }
                    self.dnssec.warned = Some(e.clone());
                }
                if kept.is_none() {
                    self.dnssec.refused = Some(e);
                }
                kept
            }
        }
    }

    /// Marks a signed zone for publication when a new signing generation has begun (or its
    /// keys changed), so that signatures are renewed, with a new serial, also when nothing
    /// else changes. Cheap: no compile unless due.
    pub fn refresh_signatures(&mut self) {
        if self
            .pipeline
            .resign_due_at(crate::publish::unix_now() as u32)
        {
            self.dirty = true;
        }
    }

    /// A watch saw `name` created or changed.
    pub fn apply(&mut self, key: WatchKey, name: String, item: Item) {
        self.seen.watched.entry(key).or_default().insert(name, item);
        self.dirty = true;
    }

    /// A watch saw `name` deleted.
    pub fn delete(&mut self, key: &WatchKey, name: &str) {
        if self
            .seen
            .watched
            .get_mut(key)
            .is_some_and(|m| m.remove(name).is_some())
        {
            self.dirty = true;
        }
    }

    /// A watch (re-)listed: `objects` are all its objects now, replacing what it held.
    pub fn reset(&mut self, key: WatchKey, objects: BTreeMap<String, Item>) {
        self.seen.watched.insert(key, objects);
        self.dirty = true;
    }

    /// A watch's health changed; logs when it starts failing and when it recovers.
    pub fn health(&mut self, key: WatchKey, health: WatchHealth) {
        let was_failing = matches!(
            self.seen.health.get(&key).map(|x| &x.0),
            Some(WatchHealth::Failing { .. })
        );
        match &health {
            WatchHealth::Failing {
                error, forbidden, ..
            } if !was_failing => {
                tracing::warn!(watch = %key, forbidden, error = %error, "watch failing; serving its last known objects and retrying");
            }
            WatchHealth::Synced if was_failing => {
                tracing::info!(watch = %key, "watch recovered and resynced")
            }
            _ => {}
        }
        // consent depends on whether grant watches work, and the transfer policy on whether
        // the key's Secret can be read: recompute the refusal reasons
        if matches!(key.kind, WatchKind::Grant | WatchKind::Secret(_)) {
            self.dirty = true;
        }
        // a failing watch reports each failed retry: it has been failing since the first
        let since = match self.seen.health.get(&key) {
            Some((_, since)) if was_failing && matches!(health, WatchHealth::Failing { .. }) => {
                *since
            }
            _ => Instant::now(),
        };
        self.seen.health.insert(key, (health, since));
    }

    /// One message of a watch task.
    pub fn handle(&mut self, msg: FeedMsg) {
        match msg {
            FeedMsg::Reset(key, objects) => self.reset(key, objects),
            FeedMsg::Apply(key, name, item) => self.apply(key, name, item),
            FeedMsg::Delete(key, name) => self.delete(&key, &name),
            FeedMsg::Health(key, h) => self.health(key, h),
        }
    }

    /// Whether some kind was not served at the last discovery (so discovery should run again).
    pub fn needs_discovery(&self) -> bool {
        self.resources.by_kind.values().any(Option::is_none)
    }

    /// The result of a new discovery; logs kinds that appeared.
    pub fn discovered(&mut self, fresh: Resources) {
        for (k, v) in &fresh.by_kind {
            if v.is_some() && self.resources.by_kind.get(k).is_some_and(Option::is_none) {
                tracing::info!(kind = %k, "kind now served by the apiserver; watching it");
            }
        }
        self.resources = fresh;
    }

    /// The watches to start and stop to match what the zone needs now; the driver must do what
    /// it says. Watches of kinds not served are warned about once and left out until served.
    pub fn plan_watches(&mut self) -> WatchPlan {
        let desired = self.seen.desired_watches();
        let mut plan = WatchPlan::default();
        for key in &desired {
            if self.running.contains(key) {
                continue;
            }
            let lookup = match &key.kind {
                WatchKind::Zone(_) => WatchKind::Zone(String::new()),
                WatchKind::Secret(_) => WatchKind::Secret(String::new()),
                k => k.clone(),
            };
            match self.resources.by_kind.get(&lookup).cloned().flatten() {
                Some(ar) => {
                    tracing::debug!(watch = %key, "starting watch");
                    self.running.insert(key.clone());
                    self.missing_warned.remove(key);
                    plan.start.push((key.clone(), ar));
                }
                None => {
                    if self.missing_warned.insert(key.clone()) {
                        tracing::warn!(watch = %key, "kind not served by the apiserver (CRD not installed?); skipped until it appears");
                    }
                }
            }
        }
        let stale: Vec<WatchKey> = self
            .running
            .iter()
            .filter(|k| !desired.contains(k))
            .cloned()
            .collect();
        for key in stale {
            self.running.remove(&key);
            self.seen.forget(&key);
            self.dirty = true;
            plan.stop.push(key);
        }
        plan
    }

    /// Recompiles and publishes the zone if anything changed and every running watch that can
    /// list has listed; logs which zone and serial is served.
    pub async fn publish(&mut self, serials: &mut impl SerialSource) -> Published {
        if !self.dirty {
            return Published::Clean;
        }
        if !self.seen.synced(&self.running) {
            return Published::Waiting;
        }
        self.dirty = false;
        self.synced_once = true;
        let zone = self
            .seen
            .zone()
            .cloned()
            .expect("synced implies the zone is known");
        let access = self.seen.access(&zone);
        self.export_access(&access);
        let store = self.seen.store(&access);
        let copts = CompileOptions {
            namespaces: Some(access.allowed.keys().cloned().collect()),
        };
        let keys = self.signing_keys(&zone);
        self.pipeline.set_keys(keys);
        let content = self.pipeline.compile(&zone, &store, &copts);
        // a signed zone's serial also follows its keys and signing generation; the shared serial
        // sets its own floor (`SharedSerial`), so the generation's start is not needed here
        let (hash, _) = self
            .pipeline
            .serial_basis(content, 0, crate::publish::unix_now() as u32);
        let problems: BTreeSet<String> = self
            .pipeline
            .problems()
            .iter()
            .chain(self.pipeline.transfer_problems())
            .map(|p| p.to_string())
            .collect();
        for p in problems.difference(&self.last_problems) {
            tracing::warn!(problem = %p, "zone input dropped");
        }
        self.last_problems = problems;
        if self.pipeline.data().origin.is_root() {
            return Published::Unservable;
        }
        let origin = self.pipeline.data().origin.to_ascii();
        let count = self.pipeline.data().record_count() as u64;
        let serial = serials.serial(&origin, hash, count).await;
        let records = self.swap_in(serial);
        crate::process::release_freed_memory();
        self.metrics.zones.set(1);
        self.metrics.reloads.inc();
        let changed = self
            .last
            .as_ref()
            .is_none_or(|l| l.hash != hash || l.origin != origin || l.serial != serial);
        if changed {
            tracing::info!(zone = %origin, serial, records, "zone published");
        } else {
            tracing::info!(zone = %origin, serial, records, "zone recompiled, content unchanged; serving the same serial");
        }
        self.last = Some(Last {
            origin: origin.clone(),
            hash,
            serial,
            records: count,
        });
        Published::Zone {
            zone: origin,
            serial,
            changed,
        }
    }

    /// The zone's content as last compiled.
    pub fn data(&self) -> &crate::zone::ZoneData {
        self.pipeline.data()
    }

    /// Whether the zone has been compiled with every watch synced (the server may answer).
    pub fn synced_once(&self) -> bool {
        self.synced_once
    }

    /// Asks the serial source again for the content published last: another server of the
    /// zone may have published a newer serial for it. Republishes if so. Only while the
    /// compiled data is servable: never publishes an unservable zone.
    pub async fn recheck_serial(&mut self, serials: &mut impl SerialSource) -> Option<u32> {
        let last = self.last.as_mut()?;
        if self.pipeline.data().origin.is_root() {
            return None;
        }
        let serial = serials.serial(&last.origin, last.hash, last.records).await;
        if serial == last.serial {
            return None;
        }
        last.serial = serial;
        let origin = last.origin.clone();
        self.swap_in(serial);
        tracing::info!(zone = %origin, serial, "zone published with the serial another server of the zone chose for the same content");
        Some(serial)
    }

    /// Swaps in the zone as last compiled, with `serial` and its transfer policy; returns its
    /// record count.
    fn swap_in(&mut self, serial: u32) -> usize {
        let z = self.pipeline.publish(serial);
        let records = z.record_count();
        let mut set = ZoneSet::new([z.clone()]);
        if let Some(t) = self.pipeline.transfer() {
            set.set_transfer(z.origin(), t.clone());
        }
        if let Some(h) = self.pipeline.history() {
            set.set_history(z.origin(), h.clone());
        }
        self.metrics
            .export_zone(&z, &set, self.pipeline.problems().len());
        self.zones.store(Arc::new(set));
        records
    }

    /// Exports the health gauges: failing watches, how stale the oldest is, objects held.
    pub fn export_health(&mut self) {
        for l in self.failing_exported.drain(..) {
            self.metrics.watch_failing.remove(&l);
        }
        let failing = self.seen.failing();
        let oldest = failing.iter().map(|f| f.2).max().unwrap_or_default();
        for (k, _, _) in &failing {
            let l = WatchLabels {
                namespace: k.namespace.clone(),
                kind: k.kind.to_string(),
            };
            self.metrics.watch_failing.get_or_create(&l).set(1);
            self.failing_exported.push(l);
        }
        self.metrics.stale_seconds.set(oldest.as_secs() as i64);
        self.metrics.objects.set(self.seen.object_count() as i64);
    }

    /// Refused namespaces: gauges, and a log line when a refusal appears or consent arrives.
    fn export_access(&mut self, access: &Access) {
        for ns in self.refused_exported.drain(..) {
            self.metrics
                .namespace_refused
                .remove(&NamespaceLabels { namespace: ns });
        }
        for (ns, why) in &access.refused {
            self.metrics
                .namespace_refused
                .get_or_create(&NamespaceLabels {
                    namespace: ns.clone(),
                })
                .set(1);
            self.refused_exported.push(ns.clone());
            if self.last_refused.get(ns) != Some(why) {
                tracing::warn!(namespace = %ns, "namespace refused: {why}");
            }
        }
        for ns in access.allowed.keys() {
            if self.last_refused.contains_key(ns) {
                tracing::info!(namespace = %ns, "namespace now readable (consent given)");
            }
        }
        self.last_refused = access.refused.clone();
    }

    /// Watches failing now, with their errors.
    pub fn failing(&self) -> Vec<(WatchKey, String, Duration)> {
        self.seen.failing()
    }
}

/// Which namespaces a zone may read, and why others are refused.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Access {
    /// Namespace -> kinds that may be read there.
    pub allowed: BTreeMap<String, BTreeSet<SourceKind>>,
    /// Namespace -> why it is not read.
    pub refused: BTreeMap<String, String>,
}

impl Watched {
    /// Our DNSZone, once seen.
    fn zone(&self) -> Option<&Arc<DNSZone>> {
        let key = WatchKey {
            namespace: self.zone_ns.clone(),
            kind: WatchKind::Zone(self.zone_name.clone()),
        };
        self.watched
            .get(&key)
            .and_then(|m| m.get(&self.zone_name))
            .and_then(|i| match i {
                Item::Zone(z) => Some(z),
                _ => None,
            })
    }

    /// Grants in a namespace.
    fn grants(&self, ns: &str) -> impl Iterator<Item = &Arc<DNSZoneGrantSpec>> {
        let key = WatchKey {
            namespace: ns.to_string(),
            kind: WatchKind::Grant,
        };
        self.watched
            .get(&key)
            .into_iter()
            .flat_map(|m| m.values())
            .filter_map(|i| match i {
                Item::Grant(g) => Some(g),
                _ => None,
            })
    }

    /// The namespaces the zone lists, with consent applied.
    fn access(&self, zone: &DNSZone) -> Access {
        let mut access = Access::default();
        let listed: Vec<String> = if zone.spec.sources.namespaces.is_empty() {
            vec![self.zone_ns.clone()]
        } else {
            zone.spec
                .sources
                .namespaces
                .iter()
                .map(|n| n.0.clone())
                .collect()
        };
        let kinds: BTreeSet<SourceKind> = zone.spec.sources.kinds.iter().copied().collect();
        for ns in listed {
            if ns == self.zone_ns {
                access.allowed.insert(ns, kinds.clone());
                continue;
            }
            let granted: BTreeSet<SourceKind> = kinds
                .iter()
                .copied()
                .filter(|k| {
                    self.grants(&ns)
                        .any(|g| g.allows(&self.zone_ns, &self.zone_name, *k))
                })
                .collect();
            if granted.is_empty() {
                let grant_watch = WatchKey {
                    namespace: ns.clone(),
                    kind: WatchKind::Grant,
                };
                let why = match self.health.get(&grant_watch).map(|h| &h.0) {
                    Some(WatchHealth::Failing {
                        forbidden: true, ..
                    }) => "cannot read its DNSZoneGrants (forbidden)".to_string(),
                    Some(WatchHealth::Failing { error, .. }) => {
                        format!("cannot read its DNSZoneGrants: {error}")
                    }
                    _ => format!(
                        "no DNSZoneGrant in namespace {ns} allows DNSZone {}/{}",
                        self.zone_ns, self.zone_name
                    ),
                };
                access.refused.insert(ns, why);
            } else {
                access.allowed.insert(ns, granted);
            }
        }
        access
    }

    /// Every watch this zone needs now.
    fn desired_watches(&self) -> BTreeSet<WatchKey> {
        let mut out = BTreeSet::new();
        out.insert(WatchKey {
            namespace: self.zone_ns.clone(),
            kind: WatchKind::Zone(self.zone_name.clone()),
        });
        let Some(zone) = self.zone().cloned() else {
            return out;
        };
        for ns in zone
            .spec
            .sources
            .namespaces
            .iter()
            .map(|n| &n.0)
            .filter(|n| **n != self.zone_ns)
        {
            out.insert(WatchKey {
                namespace: ns.clone(),
                kind: WatchKind::Grant,
            });
        }
        let access = self.access(&zone);
        for (ns, kinds) in &access.allowed {
            for k in kinds {
                out.insert(WatchKey {
                    namespace: ns.clone(),
                    kind: WatchKind::Source(*k),
                });
            }
        }
        // Gateways named as parents by the routes we hold.
        for (key, items) in &self.watched {
            if !matches!(
                key.kind,
                WatchKind::Source(
                    SourceKind::HTTPRoute | SourceKind::GRPCRoute | SourceKind::TLSRoute
                )
            ) {
                continue;
            }
            for item in items.values() {
                if let Item::Source(o) = item
                    && let SourceObject::Route(_, r) = o.as_ref()
                {
                    for p in &r.spec.parent_refs {
                        if p.kind.as_deref().unwrap_or("Gateway") == "Gateway" {
                            let ns = p.namespace.clone().unwrap_or_else(|| key.namespace.clone());
                            out.insert(WatchKey {
                                namespace: ns,
                                kind: WatchKind::Gateway,
                            });
                        }
                    }
                }
            }
        }
        for d in &zone.spec.delegations {
            if let Some(r) = &d.zone_ref {
                let ns = r
                    .namespace
                    .as_ref()
                    .map(|n| n.0.clone())
                    .unwrap_or_else(|| self.zone_ns.clone());
                out.insert(WatchKey {
                    namespace: ns,
                    kind: WatchKind::Zone(r.name.clone()),
                });
            }
        }
        if let Some(name) = zone
            .spec
            .transfer
            .as_ref()
            .and_then(|t| t.tsig_secret_name.as_ref())
        {
            out.insert(WatchKey {
                namespace: self.zone_ns.clone(),
                kind: WatchKind::Secret(name.clone()),
            });
        }
        out
    }

    /// The object store the compiler reads: our zone, referenced zones, source objects of
    /// allowed namespaces and kinds, and the TSIG Secret (or why it cannot be read: a watch
    /// that failed before it ever listed; one that listed keeps the key it last saw).
    fn store(&self, access: &Access) -> crate::objects::store::ObjectStore {
        let mut store = crate::objects::store::ObjectStore::default();
        for (key, (health, _)) in &self.health {
            if let (
                WatchKind::Secret(name),
                WatchHealth::Failing {
                    error,
                    forbidden,
                    synced: false,
                },
            ) = (&key.kind, health)
            {
                let why = if *forbidden {
                    "forbidden: the nameserver pods' Role does not grant it yet".to_string()
                } else {
                    error.clone()
                };
                store
                    .unreadable_secrets
                    .insert((key.namespace.clone(), name.clone()), why);
            }
        }
        for (key, items) in &self.watched {
            let allowed = match &key.kind {
                WatchKind::Source(k) => access
                    .allowed
                    .get(&key.namespace)
                    .is_some_and(|ks| ks.contains(k)),
                WatchKind::Gateway => true,
                _ => false,
            };
            for item in items.values() {
                match item {
                    Item::Source(o) if allowed => {
                        store.objects.insert(o.key(), o.clone());
                    }
                    Item::Zone(z) => {
                        let name = z.metadata.name.clone().unwrap_or_default();
                        store.zones.insert(
                            (key.namespace.clone(), name),
                            crate::objects::store::ZoneEntry {
                                zone: z.clone(),
                                origin: "apiserver".into(),
                            },
                        );
                    }
                    Item::Secret(sec) if matches!(key.kind, WatchKind::Secret(_)) => {
                        store
                            .secrets
                            .insert((sec.namespace.clone(), sec.name.clone()), sec.clone());
                    }
                    _ => {}
                }
            }
        }
        store
    }

    /// Whether every watch that can work has listed once: a fresh server must not answer from
    /// an empty zone. Missing CRDs and forbidden watches do not block (they degrade one kind).
    fn synced(&self, running: &BTreeSet<WatchKey>) -> bool {
        self.zone().is_some()
            && running
                .iter()
                .all(|k| match self.health.get(k).map(|h| &h.0) {
                    Some(WatchHealth::Synced) => true,
                    Some(WatchHealth::Failing {
                        forbidden: true, ..
                    }) => true,
                    Some(WatchHealth::Failing { synced, .. }) => *synced,
                    _ => false,
                })
    }

    /// Watches currently failing, with how long since they last changed state.
    fn failing(&self) -> Vec<(WatchKey, String, Duration)> {
        self.health
            .iter()
            .filter_map(|(k, (h, t))| match h {
                WatchHealth::Failing { error, .. } => Some((k.clone(), error.clone(), t.elapsed())),
                _ => None,
            })
            .collect()
    }

    /// Source objects currently held (for metrics).
    fn object_count(&self) -> usize {
        self.watched.values().map(|m| m.len()).sum()
    }

    fn forget(&mut self, key: &WatchKey) {
        self.watched.remove(key);
        self.health.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serial::{SerialKeeper, SerialStore, SharedSerial, StoreError};
    use arc_swap::ArcSwap;
    use hickory_proto::rr::{Name, RecordType};
    use kube::core::GroupVersionKind;
    use serde_json::json;

    /// Serials from a local keeper at a fixed clock; counts the calls.
    #[derive(Default)]
    struct Serials {
        keeper: SerialKeeper,
        calls: usize,
        now: u64,
    }
    impl SerialSource for Serials {
        async fn serial(&mut self, zone: &str, hash: u64, _: u64) -> u32 {
            self.calls += 1;
            self.keeper.serial(zone, hash, self.now.max(1000))
        }
    }

    /// Every kind served, except `missing`.
    fn resources(missing: &[WatchKind]) -> Resources {
        let mut r = Resources::default();
        for k in ZoneIndex::all_kinds() {
            let ar = (!missing.contains(&k)).then(|| {
                ApiResource::from_gvk(&GroupVersionKind::gvk("test.zonegate.dev", "v1", "Test"))
            });
            r.by_kind.insert(k, ar);
        }
        r
    }

    struct Fixture {
        ix: ZoneIndex,
        zones: SharedZones,
        metrics: Arc<ServerMetrics>,
        serials: Serials,
    }

    fn fixture(missing: &[WatchKind]) -> Fixture {
        let zones: SharedZones = Arc::new(ArcSwap::from_pointee(ZoneSet::default()));
        let metrics = Arc::new(ServerMetrics::new());
        let ix = ZoneIndex::new(
            "acme",
            "z",
            resources(missing),
            metrics.clone(),
            zones.clone(),
        );
        Fixture {
            ix,
            zones,
            metrics,
            serials: Serials::default(),
        }
    }

    fn key(ns: &str, kind: WatchKind) -> WatchKey {
        WatchKey {
            namespace: ns.into(),
            kind,
        }
    }
    fn zone_key() -> WatchKey {
        key("acme", WatchKind::Zone("z".into()))
    }
    fn endpoints(ns: &str) -> WatchKey {
        key(ns, WatchKind::Source(SourceKind::DNSEndpoint))
    }
    fn grants(ns: &str) -> WatchKey {
        key(ns, WatchKind::Grant)
    }

    /// DNSZone acme/z for acme.example.com reading `namespaces` (its own first) and `kinds`.
    fn zone(namespaces: &[&str], kinds: &[&str]) -> BTreeMap<String, Item> {
        let z: DNSZone = serde_json::from_value(json!({
            "apiVersion": "zonegate.dev/v1alpha1", "kind": "DNSZone",
            "metadata": {"name": "z", "namespace": "acme"},
            "spec": {"domain": "acme.example.com", "sources": {"namespaces": namespaces, "kinds": kinds}}
        }))
        .unwrap();
        BTreeMap::from([("z".to_string(), Item::Zone(Arc::new(z)))])
    }

    /// A DNSEndpoint `ns/name` publishing `host` A `ip`.
    fn endpoint(ns: &str, name: &str, host: &str, ip: &str) -> (String, Item) {
        let o = SourceObject::from_value(
            "externaldns.k8s.io/v1alpha1",
            "DNSEndpoint",
            json!({"apiVersion": "externaldns.k8s.io/v1alpha1", "kind": "DNSEndpoint",
                "metadata": {"name": name, "namespace": ns},
                "spec": {"endpoints": [{"dnsName": host, "recordType": "A", "targets": [ip]}]}}),
        )
        .unwrap()
        .unwrap();
        (name.to_string(), Item::Source(Arc::new(o)))
    }

    /// A DNSZoneGrant letting acme/z read its namespace.
    fn grant() -> (String, Item) {
        let spec: DNSZoneGrantSpec =
            serde_json::from_value(json!({"zones": [{"namespace": "acme", "name": "z"}]})).unwrap();
        ("let-acme".to_string(), Item::Grant(Arc::new(spec)))
    }

    fn started(plan: &WatchPlan) -> Vec<WatchKey> {
        plan.start.iter().map(|(k, _)| k.clone()).collect()
    }

    impl Fixture {
        /// A watch lists `objects` and reports itself synced.
        fn listed(&mut self, key: WatchKey, objects: Vec<(String, Item)>) {
            self.ix.reset(key.clone(), objects.into_iter().collect());
            self.ix.health(key, WatchHealth::Synced);
        }

        async fn publish(&mut self) -> Published {
            self.ix.publish(&mut self.serials).await
        }

        /// The A records served at `host` now (from the swapped-in zone set).
        fn served(&self, host: &str) -> Vec<String> {
            let name = Name::from_ascii(host).unwrap();
            let set = self.zones.load();
            let Some(z) = set.find(&name) else {
                return vec![];
            };
            assert_eq!(z.serial(), self.ix.last.as_ref().unwrap().serial);
            self.ix
                .pipeline
                .data()
                .rrset(&name, RecordType::A)
                .map(|s| s.rdata.iter().map(|r| r.to_string()).collect())
                .unwrap_or_default()
        }

        fn served_serial(&self) -> Option<u32> {
            let set = self.zones.load();
            set.find(&Name::from_ascii("acme.example.com.").unwrap())
                .map(|z| z.serial())
        }

        /// The zone's own watch lists the zone, and the plan that follows.
        fn zone_seen(&mut self, namespaces: &[&str], kinds: &[&str]) -> WatchPlan {
            assert_eq!(started(&self.ix.plan_watches()), vec![zone_key()]);
            self.ix.reset(zone_key(), zone(namespaces, kinds));
            self.ix.health(zone_key(), WatchHealth::Synced);
            self.ix.plan_watches()
        }
    }

    #[tokio::test]
    async fn consent_granted_then_revoked() {
        let mut f = fixture(&[]);
        let plan = f.zone_seen(&["acme", "shop"], &["DNSEndpoint"]);
        // the shop's grants are watched, but not its objects: no consent yet
        assert_eq!(started(&plan), vec![endpoints("acme"), grants("shop")]);
        assert_eq!(
            f.publish().await,
            Published::Waiting,
            "watches not listed yet"
        );
        f.listed(
            endpoints("acme"),
            vec![endpoint("acme", "web", "www.acme.example.com", "192.0.2.1")],
        );
        f.listed(grants("shop"), vec![]);
        assert!(matches!(
            f.publish().await,
            Published::Zone { changed: true, .. }
        ));
        assert_eq!(f.served("www.acme.example.com."), ["192.0.2.1"]);
        let text = f.metrics.encode();
        assert!(
            text.contains("zonegate_namespace_refused{namespace=\"shop\"} 1"),
            "{text}"
        );

        // consent: the shop's DNSEndpoints are watched, and published once listed
        f.ix.apply(grants("shop"), grant().0, grant().1);
        assert_eq!(started(&f.ix.plan_watches()), vec![endpoints("shop")]);
        assert_eq!(
            f.publish().await,
            Published::Waiting,
            "the new watch has not listed"
        );
        f.listed(
            endpoints("shop"),
            vec![endpoint(
                "shop",
                "cart",
                "cart.acme.example.com",
                "192.0.2.7",
            )],
        );
        assert!(matches!(
            f.publish().await,
            Published::Zone { changed: true, .. }
        ));
        assert_eq!(f.served("cart.acme.example.com."), ["192.0.2.7"]);
        assert!(!f.metrics.encode().contains("namespace=\"shop\""));

        // revoked: the watch stops and the shop's names go in the same publish
        f.ix.delete(&grants("shop"), "let-acme");
        let plan = f.ix.plan_watches();
        assert!(plan.start.is_empty());
        assert_eq!(plan.stop, vec![endpoints("shop")]);
        assert!(matches!(
            f.publish().await,
            Published::Zone { changed: true, .. }
        ));
        assert!(f.served("cart.acme.example.com.").is_empty());
        assert_eq!(f.served("www.acme.example.com."), ["192.0.2.1"]);
    }

    #[tokio::test]
    async fn a_failing_watch_keeps_its_objects_and_a_recovery_relists() {
        let mut f = fixture(&[]);
        f.zone_seen(&[], &["DNSEndpoint"]);
        f.listed(
            endpoints("acme"),
            vec![endpoint("acme", "web", "www.acme.example.com", "192.0.2.1")],
        );
        let Published::Zone { serial, .. } = f.publish().await else {
            panic!("not published")
        };
        f.ix.health(
            endpoints("acme"),
            WatchHealth::Failing {
                error: "connection refused".into(),
                forbidden: false,
                synced: true,
            },
        );
        assert_eq!(f.publish().await, Published::Clean, "nothing to recompile");
        assert_eq!(f.served("www.acme.example.com."), ["192.0.2.1"]);
        assert_eq!(f.served_serial(), Some(serial));
        f.ix.export_health();
        let text = f.metrics.encode();
        assert!(
            text.contains(
                "zonegate_source_watch_failing{namespace=\"acme\",kind=\"DNSEndpoint\"} 1"
            ),
            "{text}"
        );
        assert_eq!(f.ix.failing().len(), 1);
        // each failed retry reports again; the failure's age counts from the first
        std::thread::sleep(Duration::from_millis(30));
        f.ix.health(
            endpoints("acme"),
            WatchHealth::Failing {
                error: "connection refused".into(),
                forbidden: false,
                synced: true,
            },
        );
        assert!(f.ix.failing()[0].2 >= Duration::from_millis(30));

        // back: the re-list is the truth, and the failing gauge goes
        f.listed(
            endpoints("acme"),
            vec![endpoint("acme", "web", "www.acme.example.com", "192.0.2.2")],
        );
        assert!(matches!(
            f.publish().await,
            Published::Zone { changed: true, .. }
        ));
        assert_eq!(f.served("www.acme.example.com."), ["192.0.2.2"]);
        f.ix.export_health();
        assert!(!f.metrics.encode().contains("kind=\"DNSEndpoint\"} 1"));
    }

    #[tokio::test]
    async fn a_watch_that_never_listed_blocks_the_first_publish_unless_forbidden() {
        let mut f = fixture(&[]);
        f.zone_seen(&[], &["DNSEndpoint", "Service"]);
        f.listed(key("acme", WatchKind::Source(SourceKind::Service)), vec![]);
        let failing = |forbidden| WatchHealth::Failing {
            error: "boom".into(),
            forbidden,
            synced: false,
        };
        f.ix.health(endpoints("acme"), failing(false));
        assert_eq!(
            f.publish().await,
            Published::Waiting,
            "a fresh server must not answer from an empty zone"
        );
        assert!(!f.ix.synced_once());
        f.ix.health(endpoints("acme"), failing(true));
        assert!(matches!(f.publish().await, Published::Zone { .. }));
        assert!(f.ix.synced_once());
    }

    #[tokio::test]
    async fn a_crd_that_appears_late_is_watched_then() {
        let missing = WatchKind::Source(SourceKind::DNSEndpoint);
        let mut f = fixture(std::slice::from_ref(&missing));
        let plan = f.zone_seen(&[], &["DNSEndpoint", "Service"]);
        assert_eq!(
            started(&plan),
            vec![key("acme", WatchKind::Source(SourceKind::Service))]
        );
        assert!(f.ix.needs_discovery());
        f.listed(key("acme", WatchKind::Source(SourceKind::Service)), vec![]);
        // the missing kind does not hold the zone back
        assert!(matches!(f.publish().await, Published::Zone { .. }));
        assert!(f.ix.plan_watches().start.is_empty(), "still not served");

        f.ix.discovered(resources(&[]));
        assert!(!f.ix.needs_discovery());
        assert_eq!(started(&f.ix.plan_watches()), vec![endpoints("acme")]);
        f.listed(
            endpoints("acme"),
            vec![endpoint("acme", "web", "www.acme.example.com", "192.0.2.1")],
        );
        assert!(matches!(
            f.publish().await,
            Published::Zone { changed: true, .. }
        ));
        assert_eq!(f.served("www.acme.example.com."), ["192.0.2.1"]);
    }

    #[tokio::test]
    async fn a_relist_replaces_the_watch_objects_in_one_publish() {
        let mut f = fixture(&[]);
        f.zone_seen(&[], &["DNSEndpoint"]);
        f.listed(
            endpoints("acme"),
            vec![
                endpoint("acme", "a", "a.acme.example.com", "192.0.2.1"),
                endpoint("acme", "b", "b.acme.example.com", "192.0.2.2"),
            ],
        );
        let Published::Zone { serial: first, .. } = f.publish().await else {
            panic!("not published")
        };
        let calls = f.serials.calls;
        // the re-list: a deleted, b changed, c new
        f.ix.reset(
            endpoints("acme"),
            [
                endpoint("acme", "b", "b.acme.example.com", "192.0.2.20"),
                endpoint("acme", "c", "c.acme.example.com", "192.0.2.3"),
            ]
            .into_iter()
            .collect(),
        );
        // nothing is served from a half-applied list: the old zone until the publish
        assert_eq!(f.served("a.acme.example.com."), ["192.0.2.1"]);
        assert_eq!(f.served_serial(), Some(first));
        f.serials.now = 2000;
        let Published::Zone {
            serial: second,
            changed: true,
            ..
        } = f.publish().await
        else {
            panic!("not republished")
        };
        assert_eq!(
            f.serials.calls,
            calls + 1,
            "one serial for the whole change"
        );
        assert!(second > first);
        assert!(f.served("a.acme.example.com.").is_empty());
        assert_eq!(f.served("b.acme.example.com."), ["192.0.2.20"]);
        assert_eq!(f.served("c.acme.example.com."), ["192.0.2.3"]);

        // the same list again: recompiled, same content, same serial
        f.ix.reset(
            endpoints("acme"),
            [
                endpoint("acme", "b", "b.acme.example.com", "192.0.2.20"),
                endpoint("acme", "c", "c.acme.example.com", "192.0.2.3"),
            ]
            .into_iter()
            .collect(),
        );
        assert_eq!(
            f.publish().await,
            Published::Zone {
                zone: "acme.example.com.".into(),
                serial: second,
                changed: false
            }
        );
        assert_eq!(f.publish().await, Published::Clean);
    }

    /// `spec.dnssec.enabled`: without `--dnssec-keys` the zone is published unsigned and
    /// `dnssec_refused` names the zone, the field and the flag (serve refuses to start on it);
    /// with the mounted key it is signed with it; a new key in the directory is picked up on
    /// `reload_keys`, a broken one keeps the last good key; a key of another algorithm is
    /// refused naming both.
    #[tokio::test]
    async fn a_signed_zone_signs_with_the_mounted_key_and_follows_it() {
        use crate::dnssec::keys::{Algorithm, SigningKey};
        let signed_zone: DNSZone = serde_json::from_value(json!({
            "apiVersion": "zonegate.dev/v1alpha1", "kind": "DNSZone",
            "metadata": {"name": "z", "namespace": "acme"},
            "spec": {"domain": "acme.example.com", "dnssec": {"enabled": true},
                "sources": {"namespaces": ["acme"], "kinds": ["DNSEndpoint"]}}
        }))
        .unwrap();
        let item = BTreeMap::from([("z".to_string(), Item::Zone(Arc::new(signed_zone)))]);
        let dir = std::env::temp_dir().join(format!("zg-index-keys-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let write = |k: &SigningKey| std::fs::write(dir.join("key.pem"), k.to_pkcs8_pem()).unwrap();
        let dnskey_tags = |f: &Fixture| -> Option<Vec<u16>> {
            let set = f.zones.load();
            let z = set.find(&Name::from_ascii("acme.example.com.").unwrap())?;
            let signed = z.dnssec()?;
            Some(
                signed
                    .apex
                    .iter()
                    .filter(|r| r.rtype == RecordType::DNSKEY)
                    .map(|r| crate::dnssec::keys::key_tag(&r.rdata))
                    .collect(),
            )
        };

        let mut f = fixture(&[]);
        f.ix.set_key_dir(None);
        assert_eq!(started(&f.ix.plan_watches()), vec![zone_key()]);
        f.listed(zone_key(), item.clone().into_iter().collect());
        f.ix.plan_watches();
        f.listed(
            endpoints("acme"),
            vec![endpoint("acme", "web", "www.acme.example.com", "192.0.2.1")],
        );
        assert!(matches!(f.publish().await, Published::Zone { .. }));
        let e = f.ix.dnssec_refused().expect("refused").to_string();
        assert!(
            e.starts_with("DNSZone acme/z: spec.dnssec.enabled needs a signing key")
                && e.contains("--dnssec-keys")
                && e.contains("z-dnssec"),
            "{e}"
        );
        assert_eq!(dnskey_tags(&f), None, "unsigned");

        let k1 = SigningKey::generate(Algorithm::EcdsaP256Sha256).unwrap();
        write(&k1);
        f.ix.set_key_dir(Some(dir.clone()));
        assert!(matches!(f.publish().await, Published::Zone { .. }));
        assert_eq!(f.ix.dnssec_refused(), None);
        assert_eq!(dnskey_tags(&f), Some(vec![k1.key_tag()]));
        f.ix.reload_keys();
        assert_eq!(
            f.publish().await,
            Published::Clean,
            "same key: nothing to do"
        );

        let k2 = SigningKey::generate(Algorithm::EcdsaP256Sha256).unwrap();
        write(&k2);
        f.ix.reload_keys();
        assert!(matches!(f.publish().await, Published::Zone { .. }));
        assert_eq!(dnskey_tags(&f), Some(vec![k2.key_tag()]));

        std::fs::write(dir.join("key.pem"), "not a key").unwrap();
        f.ix.reload_keys();
        assert!(matches!(f.publish().await, Published::Zone { .. }));
        assert_eq!(
            dnskey_tags(&f),
            Some(vec![k2.key_tag()]),
            "the good key stays"
        );
        assert_eq!(f.ix.dnssec_refused(), None);

        // a fresh server with a key of another algorithm than spec.dnssec.algorithm
        write(&SigningKey::generate(Algorithm::Ed25519).unwrap());
        let mut g = fixture(&[]);
        g.ix.set_key_dir(Some(dir.clone()));
        g.ix.plan_watches();
        g.listed(zone_key(), item.clone().into_iter().collect());
        g.ix.plan_watches();
        g.listed(endpoints("acme"), vec![]);
        assert!(matches!(g.publish().await, Published::Zone { .. }));
        let e = g.ix.dnssec_refused().expect("refused").to_string();
        assert!(
            e.contains("holds an ED25519 key, spec.dnssec.algorithm is ECDSAP256SHA256"),
            "{e}"
        );
        assert_eq!(dnskey_tags(&g), None);

        // a process that answers no DNS (`zonegate hosts`): unsigned, nothing refused
        let mut h = fixture(&[]);
        h.ix.disable_signing();
        h.ix.plan_watches();
        h.listed(zone_key(), item.into_iter().collect());
        h.ix.plan_watches();
        h.listed(endpoints("acme"), vec![]);
        assert!(matches!(h.publish().await, Published::Zone { .. }));
        assert_eq!(h.ix.dnssec_refused(), None);
        assert_eq!(dnskey_tags(&h), None);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A serial ConfigMap that cannot be reached.
    struct Unreachable;
    impl SerialStore for Unreachable {
        type Version = ();
        async fn read(&self) -> Result<Option<crate::serial::Stored<()>>, StoreError> {
            Err(StoreError::Unavailable("connection refused".into()))
        }
        async fn create(&self, _: &crate::serial::Record) -> Result<(), StoreError> {
            Err(StoreError::Unavailable("connection refused".into()))
        }
        async fn replace(&self, _: (), _: &crate::serial::Record) -> Result<(), StoreError> {
            Err(StoreError::Unavailable("connection refused".into()))
        }
        fn describe(&self) -> String {
            "acme/z-serial".into()
        }
    }

    #[tokio::test]
    async fn the_zone_is_served_with_a_local_serial_when_the_configmap_is_unreachable() {
        let mut f = fixture(&[]);
        let mut serials = SharedSerial::new(Unreachable, SerialKeeper::new(None));
        serials.now = || 1_700_000_000;
        f.zone_seen(&[], &["DNSEndpoint"]);
        f.listed(
            endpoints("acme"),
            vec![endpoint("acme", "web", "www.acme.example.com", "192.0.2.1")],
        );
        assert_eq!(
            f.ix.publish(&mut serials).await,
            Published::Zone {
                zone: "acme.example.com.".into(),
                serial: 1_700_000_000,
                changed: true
            }
        );
        assert!(serials.degraded());
        assert_eq!(f.served("www.acme.example.com."), ["192.0.2.1"]);
        // a change within the same second still moves the serial forward
        f.ix.apply(
            endpoints("acme"),
            endpoint("acme", "web", "www.acme.example.com", "192.0.2.9").0,
            endpoint("acme", "web", "www.acme.example.com", "192.0.2.9").1,
        );
        assert!(matches!(
            f.ix.publish(&mut serials).await,
            Published::Zone {
                serial: 1_700_000_001,
                ..
            }
        ));
        assert_eq!(f.served_serial(), Some(1_700_000_001));
    }

    /// Serials as another replica decided them: `bump` is added to every answer. Keeps the
    /// record counts it was asked with.
    struct Other {
        bump: u32,
        records: Vec<u64>,
    }
    impl SerialSource for Other {
        async fn serial(&mut self, _: &str, _: u64, records: u64) -> u32 {
            self.records.push(records);
            5000 + self.bump
        }
    }

    #[tokio::test]
    async fn a_serial_chosen_by_another_server_is_adopted_without_recompiling() {
        let mut f = fixture(&[]);
        f.zone_seen(&[], &["DNSEndpoint"]);
        f.listed(endpoints("acme"), vec![]);
        let mut other = Other {
            bump: 0,
            records: Vec::new(),
        };
        assert!(matches!(
            f.ix.publish(&mut other).await,
            Published::Zone { serial: 5000, .. }
        ));
        // the serial source is told the record count served (SOA, NS and glue of an empty zone)
        let served = f
            .zones
            .load()
            .zones()
            .next()
            .map(|z| z.record_count() as u64);
        assert_eq!(other.records.first().copied(), served);
        assert!(served.is_some_and(|n| n >= 2), "{served:?}");
        assert_eq!(f.ix.recheck_serial(&mut other).await, None, "unchanged");
        other.bump = 3;
        assert_eq!(f.ix.recheck_serial(&mut other).await, Some(5003));
        assert_eq!(f.served_serial(), Some(5003));
        assert_eq!(f.ix.publish(&mut other).await, Published::Clean);
    }

    /// DNSZone acme/z allowing transfers with the TSIG key in Secret `xfr-key`.
    fn transfer_zone() -> BTreeMap<String, Item> {
        let z: DNSZone = serde_json::from_value(json!({
            "apiVersion": "zonegate.dev/v1alpha1", "kind": "DNSZone",
            "metadata": {"name": "z", "namespace": "acme"},
            "spec": {"domain": "acme.example.com", "sources": {"kinds": ["DNSEndpoint"]},
                "transfer": {"allowFrom": ["127.0.0.1"], "tsigSecretName": "xfr-key"}}
        }))
        .unwrap();
        BTreeMap::from([("z".to_string(), Item::Zone(Arc::new(z)))])
    }

    /// Secret acme/xfr-key holding key `name` with `secret` (as the apiserver shows it: base64).
    fn tsig_secret(name: &str, secret: &str) -> (String, Item) {
        use base64::Engine;
        let b = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let s = Secret::from_value(json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "xfr-key", "namespace": "acme"},
            "data": {"name": b(name), "secret": b(secret)}}))
        .unwrap();
        ("xfr-key".to_string(), Item::Secret(Arc::new(s)))
    }

    /// The key the served zone's transfers require now (its name), or why none is usable.
    fn served_key(f: &Fixture) -> Result<String, String> {
        use crate::zone::transfer::KeyRequirement;
        let set = f.zones.load();
        let t = set
            .transfer(&Name::from_ascii("acme.example.com.").unwrap())
            .expect("a transfer policy");
        match &t.key {
            KeyRequirement::Key(k) => Ok(k.name.to_ascii()),
            KeyRequirement::Unusable(why) => Err(why.clone()),
            KeyRequirement::None => panic!("no key required"),
        }
    }

    const B64: &str = "pRGNUvDz1tJ6cNW7rXn1o6cE2b5nlN8W9bWk8jxjq4M=";

    #[tokio::test]
    async fn the_tsig_secret_is_watched_by_name_and_followed() {
        let mut f = fixture(&[]);
        assert_eq!(started(&f.ix.plan_watches()), vec![zone_key()]);
        f.ix.reset(zone_key(), transfer_zone());
        f.ix.health(zone_key(), WatchHealth::Synced);
        let secret = key("acme", WatchKind::Secret("xfr-key".into()));
        let mut plan = started(&f.ix.plan_watches());
        plan.sort();
        assert_eq!(plan, vec![endpoints("acme"), secret.clone()]);
        f.listed(endpoints("acme"), vec![]);
        assert_eq!(
            f.publish().await,
            Published::Waiting,
            "the Secret not listed"
        );

        // forbidden (the Role not applied yet): published, transfers refused, and why
        f.ix.health(
            secret.clone(),
            WatchHealth::Failing {
                error: "secrets \"xfr-key\" is forbidden".into(),
                forbidden: true,
                synced: false,
            },
        );
        let Published::Zone { serial, .. } = f.publish().await else {
            panic!("not published")
        };
        let why = served_key(&f).unwrap_err();
        assert!(
            why.contains("Secret acme/xfr-key cannot be read (forbidden"),
            "{why}"
        );
        assert!(
            f.ix.pipeline.transfer_problems()[0]
                .message
                .contains("cannot be read")
        );

        // readable: the key is used; the zone's content and serial do not change
        f.listed(secret.clone(), vec![tsig_secret("xfr.acme", B64)]);
        assert_eq!(
            f.publish().await,
            Published::Zone {
                zone: "acme.example.com.".into(),
                serial,
                changed: false
            }
        );
        assert_eq!(served_key(&f), Ok("xfr.acme.".into()));
        assert!(f.ix.pipeline.transfer_problems().is_empty());

        // rotated: the new key at the next publish
        let (n, i) = tsig_secret("xfr2.acme", B64);
        f.ix.apply(secret.clone(), n, i);
        f.publish().await;
        assert_eq!(served_key(&f), Ok("xfr2.acme.".into()));

        // the watch fails after listing (apiserver outage): the last key is kept
        f.ix.health(
            secret.clone(),
            WatchHealth::Failing {
                error: "connection refused".into(),
                forbidden: false,
                synced: true,
            },
        );
        f.publish().await;
        assert_eq!(served_key(&f), Ok("xfr2.acme.".into()));

        // a bad key refuses transfers with the field named
        let (n, i) = tsig_secret("xfr2.acme", "c2hvcnQ=");
        f.ix.apply(secret.clone(), n, i);
        f.publish().await;
        assert!(served_key(&f).unwrap_err().contains("too short"));
        assert_eq!(f.ix.pipeline.transfer_problems()[0].field, "data.secret");

        // deleted: refused, "not found"
        f.ix.delete(&secret, "xfr-key");
        f.publish().await;
        assert!(
            served_key(&f)
                .unwrap_err()
                .contains("Secret acme/xfr-key not found")
        );

        // spec.transfer removed: the Secret watch stops
        f.ix.apply(
            zone_key(),
            "z".into(),
            zone(&[], &["DNSEndpoint"])["z"].clone(),
        );
        let plan = f.ix.plan_watches();
        assert_eq!(plan.stop, vec![secret]);
    }
}
