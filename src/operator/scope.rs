//! The operator's scope (`--watch-namespace`): every namespace (the default), or a set of them.
//! A scoped operator lists and watches DNSZones, DNSZoneGrants and its owned kinds in those
//! namespaces only (one watch per namespace, merged into one cache per kind by [`Merge`]),
//! writes no object into another namespace, and sweeps only objects of its own zones. Nodes are
//! read cluster-wide either way (a NodePort zone's addresses), and the cluster-scoped owned kind
//! (the zones' Gateway ClusterRoleBindings) is watched cluster-wide but selected by the label
//! naming the zone's namespace, so a scoped operator never sees another scope's.

use super::LABEL_ZONE_NAMESPACE;
use futures::{Stream, StreamExt};
use kube::api::Api;
use kube::core::{ClusterResourceScope, NamespaceResourceScope};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;

/// Which namespaces the operator watches and acts in.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Scope {
    /// Every namespace (no `--watch-namespace`).
    #[default]
    All,
    /// These namespaces only (never empty).
    Namespaces(BTreeSet<String>),
}

impl Scope {
    /// The scope of `--watch-namespace` values (each a namespace or a comma list of them; none
    /// for every namespace).
    pub fn parse<S: AsRef<str>>(values: &[S]) -> Result<Scope, String> {
        let mut set = BTreeSet::new();
        for v in values {
            for ns in v.as_ref().split(',').map(str::trim) {
                if !is_namespace_name(ns) {
                    return Err(format!(
                        "{ns:?} is not a namespace name (lowercase letters, digits and '-', at most 63)"
                    ));
                }
                set.insert(ns.to_string());
            }
        }
        Ok(if set.is_empty() {
            Scope::All
        } else {
            Scope::Namespaces(set)
        })
    }

    /// Whether objects in namespace `ns` are in scope.
    pub fn contains(&self, ns: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Namespaces(set) => set.contains(ns),
        }
    }

    /// Whether an object in `ns` (`None`: cluster-scoped) may be written by this operator.
    /// Cluster-scoped objects are: the operator owns them through a zone in scope.
    pub fn admits(&self, ns: Option<&str>) -> bool {
        ns.is_none_or(|ns| self.contains(ns))
    }

    /// The Lease name for `base` (`--lease-name` not given): `base` itself for every namespace,
    /// `base-` and a stable hash of the namespaces otherwise, so operators of different scopes
    /// never compete for one Lease while replicas of one scope do.
    pub fn lease_name(&self, base: &str) -> String {
        match self {
            Scope::All => base.to_string(),
            Scope::Namespaces(set) => {
                let mut h = crate::fnv::Fnv1a::new();
                for ns in set {
                    // a namespace never holds a comma: the join is unambiguous
                    h.bytes(ns.as_bytes()).bytes(b",");
                }
                format!("{base}-{:016x}", h.finish())
            }
        }
    }

    /// The label selector clause that keeps owned objects to the scope's zones
    /// (`zonegate.dev/zone-namespace in (a,b)`), `None` for every namespace.
    pub fn zone_selector(&self) -> Option<String> {
        match self {
            Scope::All => None,
            Scope::Namespaces(set) => Some(format!(
                "{LABEL_ZONE_NAMESPACE} in ({})",
                set.iter().cloned().collect::<Vec<_>>().join(",")
            )),
        }
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scope::All => f.write_str("all namespaces"),
            Scope::Namespaces(set) => {
                f.write_str(&set.iter().cloned().collect::<Vec<_>>().join(","))
            }
        }
    }
}

/// A DNS-1123 label: what the apiserver takes as a namespace name.
fn is_namespace_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// The `Api`s that cover a kind within a scope: one per namespace for namespaced kinds in a
/// scope, else the cluster-wide one. Implemented for the two kinds of `Resource::Scope`.
pub trait ScopedApis {
    fn apis<K>(client: &Client, scope: &Scope) -> Vec<Api<K>>
    where
        K: Resource<Scope = Self, DynamicType = ()>;
}

impl ScopedApis for NamespaceResourceScope {
    fn apis<K>(client: &Client, scope: &Scope) -> Vec<Api<K>>
    where
        K: Resource<Scope = Self, DynamicType = ()>,
    {
        match scope {
            Scope::All => vec![Api::all(client.clone())],
            Scope::Namespaces(set) => set
                .iter()
                .map(|ns| Api::namespaced(client.clone(), ns))
                .collect(),
        }
    }
}

impl ScopedApis for ClusterResourceScope {
    fn apis<K>(client: &Client, _: &Scope) -> Vec<Api<K>>
    where
        K: Resource<Scope = Self, DynamicType = ()>,
    {
        vec![Api::all(client.clone())]
    }
}

/// A reflector over kind `K` within `scope`: its cache and its stream of touched objects (the
/// cache is updated before an object is passed on). Several namespaces are watched one by one
/// and merged ([`Merge`]) into one cache that is ready once every namespace was listed.
pub fn reflect<K>(
    client: &Client,
    scope: &Scope,
    wc: watcher::Config,
) -> (
    reflector::Store<K>,
    impl Stream<Item = Result<K, watcher::Error>> + Send + 'static,
)
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::Scope: ScopedApis,
{
    let (reader, writer) = reflector::store();
    let mut apis = K::Scope::apis::<K>(client, scope);
    let events = if apis.len() == 1 {
        let api = apis.pop().expect("one Api");
        watcher(api, wc).default_backoff().boxed()
    } else {
        let n = apis.len();
        let streams = apis.into_iter().enumerate().map(|(i, api)| {
            watcher(api, wc.clone())
                .default_backoff()
                .map(move |r| (i, r))
                .boxed()
        });
        let mut merge = Merge::new(n);
        futures::stream::select_all(streams)
            .flat_map(move |(i, r)| {
                futures::stream::iter(match r {
                    Ok(ev) => merge.step(i, ev).into_iter().map(Ok).collect::<Vec<_>>(),
                    Err(e) => vec![Err(e)],
                })
            })
            .boxed()
    };
    let stream = reflector::reflector(writer, events).touched_objects();
    (reader, stream)
}

/// Merges the watch events of several namespaces into the events of one cache: one initial list
/// (`Init`, every object, `InitDone`) once every namespace has been listed, then each change as
/// it comes. A later re-list of one namespace (a watch that expired) becomes `Apply` of what it
/// listed and `Delete` of what it no longer has: a cache-wide `Init`/`InitDone` would replace
/// the objects of every other namespace with that one's.
pub struct Merge<K> {
    namespaces: Vec<Namespace<K>>,
    listed: bool,
}

struct Namespace<K> {
    objects: BTreeMap<String, K>,
    /// Objects of a list in progress.
    listing: Option<Vec<K>>,
    listed: bool,
}

impl<K: Resource + Clone> Merge<K> {
    pub fn new(n: usize) -> Self {
        Merge {
            namespaces: (0..n)
                .map(|_| Namespace {
                    objects: BTreeMap::new(),
                    listing: None,
                    listed: false,
                })
                .collect(),
            listed: false,
        }
    }

    /// The cache events for event `ev` of namespace `i`.
    pub fn step(&mut self, i: usize, ev: watcher::Event<K>) -> Vec<watcher::Event<K>> {
        use watcher::Event;
        let listed = self.listed;
        let ns = &mut self.namespaces[i];
        match ev {
            Event::Apply(o) => {
                ns.objects.insert(o.name_any(), o.clone());
                if listed {
                    vec![Event::Apply(o)]
                } else {
                    vec![]
                }
            }
            Event::Delete(o) => {
                ns.objects.remove(&o.name_any());
                if listed {
                    vec![Event::Delete(o)]
                } else {
                    vec![]
                }
            }
            Event::Init => {
                ns.listing = Some(Vec::new());
                vec![]
            }
            Event::InitApply(o) => {
                ns.listing.get_or_insert_with(Vec::new).push(o);
                vec![]
            }
            Event::InitDone => {
                let new: BTreeMap<String, K> = ns
                    .listing
                    .take()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|o| (o.name_any(), o))
                    .collect();
                let old = std::mem::replace(&mut ns.objects, new);
                ns.listed = true;
                if listed {
                    let mut out: Vec<Event<K>> = old
                        .into_iter()
                        .filter(|(name, _)| !ns.objects.contains_key(name))
                        .map(|(_, o)| Event::Delete(o))
                        .collect();
                    out.extend(ns.objects.values().cloned().map(Event::Apply));
                    out
                } else if self.namespaces.iter().all(|n| n.listed) {
                    self.listed = true;
                    let mut out = vec![Event::Init];
                    for n in &self.namespaces {
                        out.extend(n.objects.values().cloned().map(Event::InitApply));
                    }
                    out.push(Event::InitDone);
                    out
                } else {
                    vec![]
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use watcher::Event;

    #[test]
    fn flags_make_a_scope() {
        assert_eq!(Scope::parse::<&str>(&[]).unwrap(), Scope::All);
        let s = Scope::parse(&["b,a", "c", " a "]).unwrap();
        assert_eq!(
            s,
            Scope::Namespaces(["a", "b", "c"].map(String::from).into())
        );
        assert_eq!(s.to_string(), "a,b,c");
        assert!(s.contains("a") && !s.contains("d"));
        assert!(s.admits(None) && s.admits(Some("b")) && !s.admits(Some("d")));
        assert!(Scope::All.contains("anything"));
        for bad in ["", "a,,b", "Upper", "-a", "a_b", &"x".repeat(64)] {
            assert!(Scope::parse(&[bad]).is_err(), "{bad:?}");
        }
        assert_eq!(
            s.zone_selector().unwrap(),
            "zonegate.dev/zone-namespace in (a,b,c)"
        );
        assert_eq!(Scope::All.zone_selector(), None);
    }

    #[test]
    fn each_scope_has_its_own_lease() {
        let ab = Scope::parse(&["a,b"]).unwrap();
        assert_eq!(
            Scope::All.lease_name("zonegate-operator"),
            "zonegate-operator"
        );
        // the same set in any order: one Lease (replicas of one scope elect one leader)
        assert_eq!(
            ab.lease_name("zonegate-operator"),
            Scope::parse(&["b", "a"])
                .unwrap()
                .lease_name("zonegate-operator")
        );
        // pinned (FNV-1a 64 of "a,b,", checked in Python): a new version must find the Lease
        // the old one holds
        assert_eq!(
            ab.lease_name("zonegate-operator"),
            "zonegate-operator-587e57826f60363e"
        );
        for other in [&["a"][..], &["a,b,c"], &["ab"], &["a,bb"]] {
            assert_ne!(
                Scope::parse(other).unwrap().lease_name("zonegate-operator"),
                ab.lease_name("zonegate-operator"),
                "{other:?}"
            );
        }
    }

    fn cm(name: &str, v: &str) -> ConfigMap {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": "x"}, "data": {"v": v}}))
        .unwrap()
    }

    fn names(events: &[Event<ConfigMap>]) -> Vec<String> {
        events
            .iter()
            .map(|e| match e {
                Event::Apply(o) => format!("apply {}", o.name_any()),
                Event::Delete(o) => format!("delete {}", o.name_any()),
                Event::Init => "init".into(),
                Event::InitApply(o) => format!("initapply {}", o.name_any()),
                Event::InitDone => "initdone".into(),
            })
            .collect()
    }

    #[test]
    fn merged_namespaces_list_once_and_relist_alone() {
        let mut m = Merge::new(2);
        assert!(m.step(0, Event::Init).is_empty());
        assert!(m.step(0, Event::InitApply(cm("a1", "1"))).is_empty());
        assert!(
            m.step(0, Event::InitDone).is_empty(),
            "namespace 1 not listed yet"
        );
        // a change in a listed namespace before the others are: part of the initial list
        assert!(m.step(0, Event::Apply(cm("a2", "1"))).is_empty());
        assert!(m.step(1, Event::Init).is_empty());
        assert!(m.step(1, Event::InitApply(cm("b1", "1"))).is_empty());
        assert_eq!(
            names(&m.step(1, Event::InitDone)),
            [
                "init",
                "initapply a1",
                "initapply a2",
                "initapply b1",
                "initdone"
            ]
        );
        // then changes pass as they come
        assert_eq!(names(&m.step(1, Event::Apply(cm("b2", "1")))), ["apply b2"]);
        assert_eq!(
            names(&m.step(0, Event::Delete(cm("a1", "1")))),
            ["delete a1"]
        );
        // a re-list of namespace 0: what it lost is deleted, what it has applied, and
        // namespace 1 is left alone
        assert!(m.step(0, Event::Init).is_empty());
        assert!(m.step(0, Event::InitApply(cm("a3", "1"))).is_empty());
        assert_eq!(
            names(&m.step(0, Event::InitDone)),
            ["delete a2", "apply a3"]
        );

        // the events build the right cache
        let (reader, mut writer) = reflector::store::<ConfigMap>();
        let mut m = Merge::new(2);
        let feed = [
            (0, Event::Init),
            (0, Event::InitApply(cm("a1", "1"))),
            (0, Event::InitDone),
            (1, Event::Init),
            (1, Event::InitApply(cm("b1", "1"))),
            (1, Event::InitDone),
            (0, Event::Init),
            (0, Event::InitApply(cm("a2", "1"))),
            (0, Event::InitDone),
            (1, Event::Apply(cm("b1", "2"))),
        ];
        for (i, ev) in feed {
            for out in m.step(i, ev) {
                writer.apply_watcher_event(&out);
            }
        }
        let mut got: Vec<(String, String)> = reader
            .state()
            .iter()
            .map(|o| (o.name_any(), o.data.as_ref().unwrap()["v"].clone()))
            .collect();
        got.sort();
        assert_eq!(got, [("a2".into(), "1".into()), ("b1".into(), "2".into())]);
    }
}
