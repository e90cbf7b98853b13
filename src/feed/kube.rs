//! The cluster feed: watches of one DNSZone, its consent grants and the source objects it may
//! read, kept in an object store that the zone is recompiled from.
//!
//! - Only namespaced watches, only of the kinds the zone uses, only in namespaces it may read:
//!   its own, and those whose `DNSZoneGrant` allows it. Gateways are watched in the namespaces
//!   that routes name as parents; DNSZones named by `zoneRef` delegations, by name.
//! - A kind whose CRD is missing is skipped with a warning and picked up when discovery shows
//!   it (checked every 10 s). A forbidden or failing watch degrades that watch only.
//! - Watches retry with backoff; meanwhile the last known objects stay in the store, so the
//!   zone keeps being served. A re-list replaces that watch's objects in one step.

use crate::api::{DNSZone, DNSZoneGrantSpec, SourceKind};
use crate::objects::SourceObject;
use futures::StreamExt;
use kube::Client;
use kube::api::{Api, DynamicObject};
use kube::core::{ApiResource, GroupVersionKind};
use kube::runtime::{WatchStreamExt, watcher};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// What a watch is of.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum WatchKind {
    Source(SourceKind),
    Gateway,
    Grant,
    /// One DNSZone by name (our own, or one a delegation refers to).
    Zone(String),
}

impl std::fmt::Display for WatchKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WatchKind::Source(k) => write!(f, "{k}"),
            WatchKind::Gateway => f.write_str("Gateway"),
            WatchKind::Grant => f.write_str("DNSZoneGrant"),
            WatchKind::Zone(n) => write!(f, "DNSZone {n}"),
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

/// Candidate group/versions for each kind, preferred first.
fn candidates(
    kind: &WatchKind,
) -> &'static [(&'static str, &'static str, &'static str, &'static str)] {
    // (group, version, kind, plural)
    match kind {
        WatchKind::Source(SourceKind::Ingress) => {
            &[("networking.k8s.io", "v1", "Ingress", "ingresses")]
        }
        WatchKind::Source(SourceKind::Service) => &[("", "v1", "Service", "services")],
        WatchKind::Source(SourceKind::HTTPRoute) => &[
            ("gateway.networking.k8s.io", "v1", "HTTPRoute", "httproutes"),
            (
                "gateway.networking.k8s.io",
                "v1beta1",
                "HTTPRoute",
                "httproutes",
            ),
        ],
        WatchKind::Source(SourceKind::GRPCRoute) => {
            &[("gateway.networking.k8s.io", "v1", "GRPCRoute", "grpcroutes")]
        }
        WatchKind::Source(SourceKind::TLSRoute) => &[
            ("gateway.networking.k8s.io", "v1", "TLSRoute", "tlsroutes"),
            (
                "gateway.networking.k8s.io",
                "v1alpha3",
                "TLSRoute",
                "tlsroutes",
            ),
            (
                "gateway.networking.k8s.io",
                "v1alpha2",
                "TLSRoute",
                "tlsroutes",
            ),
        ],
        WatchKind::Source(SourceKind::DNSEndpoint) => &[(
            "externaldns.k8s.io",
            "v1alpha1",
            "DNSEndpoint",
            "dnsendpoints",
        )],
        WatchKind::Source(SourceKind::VirtualServer) => {
            &[("k8s.nginx.org", "v1", "VirtualServer", "virtualservers")]
        }
        WatchKind::Gateway => &[
            ("gateway.networking.k8s.io", "v1", "Gateway", "gateways"),
            (
                "gateway.networking.k8s.io",
                "v1beta1",
                "Gateway",
                "gateways",
            ),
        ],
        WatchKind::Grant => &[("zonegate.dev", "v1alpha1", "DNSZoneGrant", "dnszonegrants")],
        WatchKind::Zone(_) => &[("zonegate.dev", "v1alpha1", "DNSZone", "dnszones")],
    }
}

/// Finds which kinds the apiserver serves. Kinds of unreachable groups are reported missing.
pub async fn discover(client: &Client, kinds: &BTreeSet<WatchKind>) -> Resources {
    let mut lists: BTreeMap<String, Option<Vec<String>>> = BTreeMap::new();
    let mut out = Resources::default();
    for kind in kinds {
        let mut found = None;
        for (group, version, k, plural) in candidates(kind) {
            let gv = if group.is_empty() {
                version.to_string()
            } else {
                format!("{group}/{version}")
            };
            if !lists.contains_key(&gv) {
                let res = if group.is_empty() {
                    client.list_core_api_resources(version).await
                } else {
                    client.list_api_group_resources(&gv).await
                };
                lists.insert(
                    gv.clone(),
                    res.ok()
                        .map(|l| l.resources.into_iter().map(|r| r.name).collect()),
                );
            }
            if lists[&gv]
                .as_ref()
                .is_some_and(|names| names.iter().any(|n| n == plural))
            {
                let gvk = GroupVersionKind::gvk(group, version, k);
                found = Some(ApiResource::from_gvk_with_plural(&gvk, plural));
                break;
            }
        }
        out.by_kind.insert(kind.clone(), found);
    }
    out
}

/// Converts a watched object into the feed's form.
/// List items may come without apiVersion/kind: the watch's resource says what they are.
fn convert(
    kind: &WatchKind,
    ar: &ApiResource,
    obj: DynamicObject,
) -> Result<(String, Item), String> {
    let name = obj.metadata.name.clone().unwrap_or_default();
    let (api_version, k) = (ar.api_version.clone(), ar.kind.clone());
    let value = serde_json::to_value(&obj).map_err(|e| e.to_string())?;
    let item = match kind {
        WatchKind::Zone(_) => Item::Zone(Arc::new(
            serde_json::from_value::<DNSZone>(value).map_err(|e| format!("DNSZone {name}: {e}"))?,
        )),
        WatchKind::Grant => {
            let spec = value.get("spec").cloned().unwrap_or_default();
            Item::Grant(Arc::new(
                serde_json::from_value::<DNSZoneGrantSpec>(spec)
                    .map_err(|e| format!("DNSZoneGrant {name}: spec: {e}"))?,
            ))
        }
        WatchKind::Source(_) | WatchKind::Gateway => {
            match SourceObject::from_value(&api_version, &k, value) {
                Ok(Some(o)) => Item::Source(Arc::new(o)),
                Ok(None) => return Err(format!("{k} {name}: unexpected kind {api_version}")),
                Err(e) => return Err(format!("{k} {name}: {e}")),
            }
        }
    };
    Ok((name, item))
}

/// Retry delays of a failing watch: 250 ms doubling up to 4 s, back to 250 ms after a success.
/// Short on purpose: a DNS server should catch up within seconds of the apiserver's return
/// (kube's default grows to 30 s), and a few list calls per failing watch are cheap.
#[derive(Debug, Clone, Copy)]
pub struct WatchBackoff {
    next: Duration,
}

impl Default for WatchBackoff {
    fn default() -> Self {
        Self {
            next: Duration::from_millis(250),
        }
    }
}

impl Iterator for WatchBackoff {
    type Item = Duration;
    fn next(&mut self) -> Option<Duration> {
        let d = self.next;
        self.next = (self.next * 2).min(Duration::from_secs(4));
        Some(d)
    }
}

impl kube::runtime::utils::Backoff for WatchBackoff {
    fn reset(&mut self) {
        *self = Self::default();
    }
}

/// Runs one watch until aborted, sending what it sees to the feed.
pub fn spawn_watch(
    client: Client,
    key: WatchKey,
    ar: ApiResource,
    tx: mpsc::UnboundedSender<FeedMsg>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let api: Api<DynamicObject> = Api::namespaced_with(client, &key.namespace, &ar);
        let mut config = watcher::Config::default();
        if let WatchKind::Zone(name) = &key.kind {
            config = config.fields(&format!("metadata.name={name}"));
        }
        let mut stream = watcher(api, config)
            .backoff(WatchBackoff::default())
            .boxed();
        let mut buffer: Option<BTreeMap<String, Item>> = None;
        let mut synced = false;
        while let Some(ev) = stream.next().await {
            match ev {
                Ok(watcher::Event::Init) => buffer = Some(BTreeMap::new()),
                Ok(watcher::Event::InitApply(obj)) => match convert(&key.kind, &ar, obj) {
                    Ok((name, item)) => {
                        buffer.get_or_insert_with(BTreeMap::new).insert(name, item);
                    }
                    Err(e) => tracing::warn!(watch = %key, error = %e, "object skipped"),
                },
                Ok(watcher::Event::InitDone) => {
                    let objects = buffer.take().unwrap_or_default();
                    synced = true;
                    let _ = tx.send(FeedMsg::Reset(key.clone(), objects));
                    let _ = tx.send(FeedMsg::Health(key.clone(), WatchHealth::Synced));
                }
                Ok(watcher::Event::Apply(obj)) => match convert(&key.kind, &ar, obj) {
                    Ok((name, item)) => {
                        let _ = tx.send(FeedMsg::Apply(key.clone(), name, item));
                    }
                    Err(e) => {
                        tracing::warn!(watch = %key, error = %e, "object skipped; its last good version is kept")
                    }
                },
                Ok(watcher::Event::Delete(obj)) => {
                    let _ = tx.send(FeedMsg::Delete(
                        key.clone(),
                        obj.metadata.name.unwrap_or_default(),
                    ));
                }
                Err(e) => {
                    let forbidden = matches!(&e,
                        watcher::Error::InitialListFailed(kube::Error::Api(s)) | watcher::Error::WatchStartFailed(kube::Error::Api(s)) | watcher::Error::WatchFailed(kube::Error::Api(s))
                        if s.code == 403);
                    let _ = tx.send(FeedMsg::Health(
                        key.clone(),
                        WatchHealth::Failing {
                            error: e.to_string(),
                            forbidden,
                            synced,
                        },
                    ));
                }
            }
        }
    })
}

/// The feed's view of the cluster for one zone.
#[derive(Debug, Default)]
pub struct ClusterState {
    pub zone_ns: String,
    pub zone_name: String,
    /// Objects per watch.
    pub watched: BTreeMap<WatchKey, BTreeMap<String, Item>>,
    pub health: BTreeMap<WatchKey, (WatchHealth, Instant)>,
}

/// Which namespaces a zone may read, and why others are refused.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Access {
    /// Namespace -> kinds that may be read there.
    pub allowed: BTreeMap<String, BTreeSet<SourceKind>>,
    /// Namespace -> why it is not read.
    pub refused: BTreeMap<String, String>,
}

impl ClusterState {
    pub fn new(zone_ns: &str, zone_name: &str) -> Self {
        Self {
            zone_ns: zone_ns.into(),
            zone_name: zone_name.into(),
            ..Default::default()
        }
    }

    /// Applies one message; returns whether content changed.
    pub fn apply(&mut self, msg: FeedMsg) -> bool {
        match msg {
            FeedMsg::Reset(key, objects) => {
                self.watched.insert(key, objects);
                true
            }
            FeedMsg::Apply(key, name, item) => {
                self.watched.entry(key).or_default().insert(name, item);
                true
            }
            FeedMsg::Delete(key, name) => self
                .watched
                .get_mut(&key)
                .is_some_and(|m| m.remove(&name).is_some()),
            FeedMsg::Health(key, h) => {
                self.health.insert(key, (h, Instant::now()));
                false
            }
        }
    }

    /// Our DNSZone, once seen.
    pub fn zone(&self) -> Option<&Arc<DNSZone>> {
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
    pub fn access(&self, zone: &DNSZone) -> Access {
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
    pub fn desired_watches(&self) -> BTreeSet<WatchKey> {
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
        out
    }

    /// The object store the compiler reads: our zone, referenced zones and source objects of
    /// allowed namespaces and kinds.
    pub fn store(&self, access: &Access) -> crate::objects::store::ObjectStore {
        let mut store = crate::objects::store::ObjectStore::default();
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
                    _ => {}
                }
            }
        }
        store
    }

    /// Whether every watch that can work has listed once: a fresh server must not answer from
    /// an empty zone. Missing CRDs and forbidden watches do not block (they degrade one kind).
    pub fn synced(&self, running: &BTreeSet<WatchKey>) -> bool {
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
    pub fn failing(&self) -> Vec<(WatchKey, String, Duration)> {
        self.health
            .iter()
            .filter_map(|(k, (h, t))| match h {
                WatchHealth::Failing { error, .. } => Some((k.clone(), error.clone(), t.elapsed())),
                _ => None,
            })
            .collect()
    }

    /// Source objects currently held (for metrics).
    pub fn object_count(&self) -> usize {
        self.watched.values().map(|m| m.len()).sum()
    }

    pub fn forget(&mut self, key: &WatchKey) {
        self.watched.remove(key);
        self.health.remove(key);
    }
}
