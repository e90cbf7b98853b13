//! The watch caches the reconciler reads: DNSZones, DNSZoneGrants, Nodes, and one cache per owned
//! kind (Secrets included: only those labelled `managed-by=zonegate`, the zones' own). The owned kinds are listed once, in the table at [`owned_kinds!`]: the cache, its watch,
//! the readiness wait, the live-object lookup, the look-up of a zone's objects and the orphan scan
//! are all generated from that table. Adding an owned kind means a variant of
//! [`OwnedKind`](super::desired::OwnedKind) (what it is, in `desired.rs`), the objects
//! `desired_objects` builds of it, and one row here.

use super::desired::{self, OwnedKind};
use super::scope::{Scope, reflect};
use super::{LABEL_MANAGED_BY, LABEL_ZONE, LABEL_ZONE_NAMESPACE, MANAGED_BY, ZoneKey};
use crate::api::{DNSZone, DNSZoneGrant};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Node, Secret, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::runtime::controller::Controller;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;
use serde_json::Value;
use std::collections::HashSet;
use tokio::sync::watch;

/// `(kind, namespace, name)` of an owned object.
pub type ObjectId = (OwnedKind, Option<String>, String);

/// Where a kind's objects of one zone live, besides the names in the zone's own namespace (or at
/// cluster scope, for cluster-scoped kinds).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Elsewhere {
    /// Only there.
    No,
    /// Also in other namespaces (the source namespaces the zone reads), all named
    /// [`desired::foreign_object_name`]. They cannot have the zone as owner.
    ForeignNamespaces,
}

/// The table of owned kinds with a watch cache. Each row: the kind (the name of both the
/// `OwnedKind` variant and the `k8s-openapi` type), the cache's field, the names the kind's
/// objects of zone `z` can have (`fn(&ZoneKey) -> Vec<String>`), and where else they live.
/// `ClusterRole` has no row: the one shared ClusterRole is read directly by the sweeper.
macro_rules! owned_kinds {
    ($( $kind:ident => $field:ident, names: $names:expr, elsewhere: $elsewhere:expr; )*) => {
        /// One watch cache per owned kind (objects labelled `managed-by=zonegate` only).
        #[derive(Clone)]
        pub struct OwnedStores {
            $( pub $field: Store<$kind>, )*
        }

        impl OwnedStores {
            /// Caches fed by the writers (for tests, which fill them by hand).
            #[cfg(test)]
            pub fn for_tests() -> (Self, OwnedWriters) {
                $( let $field = kube::runtime::reflector::store::<$kind>(); )*
                (
                    Self { $( $field: $field.0, )* },
                    OwnedWriters { $( $field: $field.1, )* },
                )
            }

            /// Starts a watch per kind and adds each to `controller`: a change of an owned object
            /// reconciles the zone named by its labels.
            /// Within a [`Scope`] of namespaces, only objects of zones in those namespaces are
            /// watched (by label), and namespaced kinds only in those namespaces.
            pub fn watch(
                client: &Client,
                scope: &Scope,
                mut controller: Controller<DNSZone>,
            ) -> (Self, Controller<DNSZone>) {
                let mut labels = format!("{LABEL_MANAGED_BY}={MANAGED_BY}");
                if let Some(zones) = scope.zone_selector() {
                    labels = format!("{labels},{zones}");
                }
                let wc = watcher::Config::default().labels(&labels);
                $(
                    let ($field, stream) = reflect::<$kind>(client, scope, wc.clone());
                    controller = controller
                        .watches_stream(stream, |o: $kind| zone_ref_of_labels(o.meta()));
                )*
                (Self { $( $field, )* }, controller)
            }

            async fn wait_ready(&self) -> Result<(), String> {
                $(
                    self.$field
                        .wait_until_ready()
                        .await
                        .map_err(|e| format!("{}: {e}", stringify!($field)))?;
                )*
                Ok(())
            }

            /// The live object as JSON, and its resourceVersion.
            pub fn live(&self, kind: OwnedKind, ns: Option<&str>, name: &str) -> Option<(Value, String)> {
                match kind {
                    $( OwnedKind::$kind => live(&self.$field, ns, name), )*
                    #[allow(unreachable_patterns)]
                    _ => None,
                }
            }

            /// Every cached object labelled as belonging to `zone`. Looked up by the names the
            /// zone's objects can have (a scan only for kinds that also live in other
            /// namespaces), so a reconcile does not walk every object of the cluster.
            pub fn zone_objects(&self, zone: &ZoneKey) -> Vec<ObjectId> {
                let mut out = Vec::new();
                $(
                    let kind = OwnedKind::$kind;
                    let ns = kind.namespaced().then_some(zone.namespace.as_str());
                    let names: fn(&ZoneKey) -> Vec<String> = $names;
                    for name in names(zone) {
                        named(&self.$field, kind, ns, name, zone, &mut out);
                    }
                    if $elsewhere == Elsewhere::ForeignNamespaces {
                        foreign(&self.$field, kind, zone, &mut out);
                    }
                )*
                out
            }

            /// Objects without an owner reference (in other namespaces, or cluster-scoped)
            /// whose zone is not in `zones`: nobody but the sweeper deletes them. Only objects
            /// in `scope` whose zone's namespace is in `scope` too: another scope's zones are
            /// not in `zones`, and their objects are not this operator's to delete.
            pub fn orphans(&self, zones: &HashSet<ZoneKey>, scope: &Scope) -> Vec<ObjectId> {
                let mut out = Vec::new();
                $(
                    let kind = OwnedKind::$kind;
                    if $elsewhere == Elsewhere::ForeignNamespaces || !kind.namespaced() {
                        for o in self.$field.state() {
                            if let Some(id) = orphan(kind, o.meta(), zones, scope) {
                                out.push(id);
                            }
                        }
                    }
                )*
                out
            }
        }

        /// The writing halves of [`OwnedStores::for_tests`].
        #[cfg(test)]
        pub struct OwnedWriters {
            $( pub $field: kube::runtime::reflector::store::Writer<$kind>, )*
        }

        #[cfg(test)]
        impl OwnedWriters {
            /// Marks every cache as listed.
            pub fn ready(&mut self) {
                $( self.$field.apply_watcher_event(&watcher::Event::InitDone); )*
            }

            /// Puts an object (as JSON) into the cache of its kind.
            pub fn apply_json(&mut self, kind: OwnedKind, v: Value) {
                match kind {
                    $(
                        OwnedKind::$kind => self.$field.apply_watcher_event(
                            &watcher::Event::Apply(serde_json::from_value(v).expect(stringify!($kind))),
                        ),
                    )*
                    #[allow(unreachable_patterns)]
                    other => panic!("no cache for {other:?}"),
                }
            }
        }
    };
}

owned_kinds! {
    ServiceAccount => service_accounts,
        names: |z| vec![desired::dns_object_name(&z.name)],
        elsewhere: Elsewhere::No;
    ConfigMap => config_maps,
        names: |z| vec![desired::serial_configmap_name(&z.name)],
        elsewhere: Elsewhere::No;
    Role => roles,
        names: |z| vec![desired::dns_object_name(&z.name)],
        elsewhere: Elsewhere::ForeignNamespaces;
    RoleBinding => role_bindings,
        names: |z| vec![desired::dns_object_name(&z.name)],
        elsewhere: Elsewhere::ForeignNamespaces;
    PodDisruptionBudget => pdbs,
        names: |z| vec![desired::dns_object_name(&z.name)],
        elsewhere: Elsewhere::No;
    Deployment => deployments,
        names: nameserver_names,
        elsewhere: Elsewhere::No;
    Service => services,
        names: nameserver_names,
        elsewhere: Elsewhere::No;
    ClusterRoleBinding => cluster_role_bindings,
        names: |z| vec![desired::gateway_binding_name(&z.namespace, &z.name)],
        elsewhere: Elsewhere::No;
    Secret => secrets,
        names: |z| vec![desired::cookie_secret_name(&z.name), desired::dnssec_secret_name(&z.name)],
        elsewhere: Elsewhere::No;
}

fn nameserver_names(z: &ZoneKey) -> Vec<String> {
    (1..=desired::MAX_NAMESERVERS)
        .map(|i| desired::nameserver_object_name(&z.name, i))
        .collect()
}

/// Watch caches of everything the reconciler reads.
#[derive(Clone)]
pub struct Stores {
    pub zones: Store<DNSZone>,
    pub grants: Store<DNSZoneGrant>,
    pub nodes: Store<Node>,
    pub owned: OwnedStores,
    /// What the caches cover (`--watch-namespace`).
    pub scope: Scope,
    /// True once every cache has listed: set by the one task that awaits the caches
    /// ([`Stores::wait_listed`]), awaited by everyone else ([`Stores::wait_ready`]).
    pub synced: watch::Receiver<bool>,
}

impl Stores {
    /// Waits until every cache has listed (see [`Stores::wait_listed`]); an error when the
    /// caches were dropped before.
    pub async fn wait_ready(&self) -> Result<(), String> {
        self.synced
            .clone()
            .wait_for(|synced| *synced)
            .await
            .map(|_| ())
            .map_err(|_| "the watch caches stopped before they were synced".to_string())
    }

    /// Waits for each cache's first list. For one waiter only (then it sets [`Stores::synced`]):
    /// kube's `Store::wait_until_ready` wakes only the task that polled it last (one waker in a
    /// oneshot), so of several tasks waiting at once the others sleep until something else wakes
    /// them; a reconcile started during the initial list sat out its 60 s timeout that way.
    pub async fn wait_listed(&self) -> Result<(), String> {
        let name = |what: &'static str| move |e| format!("{what}: {e}");
        self.zones.wait_until_ready().await.map_err(name("zones"))?;
        self.grants
            .wait_until_ready()
            .await
            .map_err(name("grants"))?;
        self.owned.wait_ready().await?;
        self.nodes.wait_until_ready().await.map_err(name("nodes"))?;
        Ok(())
    }

    /// Owned objects of zones that no longer exist (or are being deleted) and that the garbage
    /// collector cannot remove (no owner reference).
    pub fn orphans(&self) -> Vec<ObjectId> {
        let zones: HashSet<ZoneKey> = self
            .zones
            .state()
            .iter()
            .filter(|z| z.metadata.deletion_timestamp.is_none())
            .map(|z| ZoneKey::new(z.namespace().unwrap_or_default(), z.name_any()))
            .collect();
        self.owned.orphans(&zones, &self.scope)
    }
}

fn live<K>(s: &Store<K>, ns: Option<&str>, name: &str) -> Option<(Value, String)>
where
    K: Resource<DynamicType = ()> + Clone + Serialize + 'static,
{
    let obj = s.get(&object_ref(ns, name))?;
    let rv = obj.meta().resource_version.clone().unwrap_or_default();
    Some((serde_json::to_value(obj.as_ref()).ok()?, rv))
}

fn object_ref<K: Resource<DynamicType = ()>>(ns: Option<&str>, name: &str) -> ObjectRef<K> {
    let r = ObjectRef::<K>::new(name);
    match ns {
        Some(ns) => r.within(ns),
        None => r,
    }
}

fn labelled(meta: &ObjectMeta, zone: &ZoneKey) -> bool {
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
    if s.get(&object_ref(ns, &name))
        .is_some_and(|o| labelled(o.meta(), zone))
    {
        out.push((kind, ns.map(str::to_string), name));
    }
}

fn foreign<K>(s: &Store<K>, kind: OwnedKind, zone: &ZoneKey, out: &mut Vec<ObjectId>)
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    let name = desired::foreign_object_name(&zone.namespace, &zone.name);
    for o in s.state_filter(|o| {
        o.meta().name.as_deref() == Some(name.as_str())
            && o.meta().namespace.as_deref() != Some(&zone.namespace)
            && labelled(o.meta(), zone)
    }) {
        out.push((kind, o.namespace(), name.clone()));
    }
}

fn orphan(
    kind: OwnedKind,
    meta: &ObjectMeta,
    zones: &HashSet<ZoneKey>,
    scope: &Scope,
) -> Option<ObjectId> {
    let l = meta.labels.as_ref()?;
    if !scope.admits(meta.namespace.as_deref()) {
        return None;
    }
    if meta
        .owner_references
        .as_ref()
        .is_some_and(|o| !o.is_empty())
    {
        return None;
    }
    let (z, zns) = (l.get(LABEL_ZONE)?, l.get(LABEL_ZONE_NAMESPACE)?);
    if !scope.contains(zns) {
        return None;
    }
    (!zones.contains(&ZoneKey::new(zns, z))).then(|| {
        (
            kind,
            meta.namespace.clone(),
            meta.name.clone().unwrap_or_default(),
        )
    })
}

/// The zone an owned object belongs to, from its labels.
pub fn zone_ref_of_labels(meta: &ObjectMeta) -> Option<ObjectRef<DNSZone>> {
    let l = meta.labels.as_ref()?;
    Some(ObjectRef::new(l.get(LABEL_ZONE)?).within(l.get(LABEL_ZONE_NAMESPACE)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn meta(v: Value) -> ObjectMeta {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn labels_point_to_the_zone() {
        let m = meta(json!({"name": "x", "namespace": "shop", "labels": {
            LABEL_ZONE: "web", LABEL_ZONE_NAMESPACE: "acme"}}));
        let r = zone_ref_of_labels(&m).unwrap();
        assert_eq!(
            (r.name.as_str(), r.namespace.as_deref()),
            ("web", Some("acme"))
        );
        assert!(zone_ref_of_labels(&Default::default()).is_none());
    }

    fn labels(zone: &str) -> Value {
        json!({LABEL_MANAGED_BY: MANAGED_BY, LABEL_ZONE: zone, LABEL_ZONE_NAMESPACE: "acme"})
    }

    #[test]
    fn a_zone_s_objects_are_found_by_name_and_label_and_orphans_by_missing_zone() {
        let (stores, mut w) = OwnedStores::for_tests();
        let apply = |v: Value| -> Value { v };
        w.deployments.apply_watcher_event(&watcher::Event::Apply(
            serde_json::from_value(apply(json!({"metadata": {"name": "web-ns2",
                    "namespace": "acme", "labels": labels("web")}})))
            .unwrap(),
        ));
        // right name, other zone's labels: not this zone's
        w.services.apply_watcher_event(&watcher::Event::Apply(
            serde_json::from_value(json!({"metadata": {"name": "web-ns1",
                "namespace": "acme", "labels": labels("other")}}))
            .unwrap(),
        ));
        // a Role in a source namespace (no owner) and one of a zone that is gone
        for (ns, zone) in [("shop", "web"), ("shop", "gone")] {
            w.roles.apply_watcher_event(&watcher::Event::Apply(
                serde_json::from_value(json!({"metadata": {
                    "name": desired::foreign_object_name("acme", zone),
                    "namespace": ns, "labels": labels(zone)}}))
                .unwrap(),
            ));
        }
        w.cluster_role_bindings
            .apply_watcher_event(&watcher::Event::Apply(
                serde_json::from_value(json!({"metadata": {
                    "name": desired::gateway_binding_name("acme", "web"), "labels": labels("web")},
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "x"}}))
                .unwrap(),
            ));
        let mut got = stores.zone_objects(&ZoneKey::new("acme", "web"));
        got.sort();
        assert_eq!(
            got,
            vec![
                (OwnedKind::Role, Some("shop".into()), "web-dns.acme".into()),
                (
                    OwnedKind::ClusterRoleBinding,
                    None,
                    "zonegate.acme.web.gateways".into()
                ),
                (OwnedKind::Deployment, Some("acme".into()), "web-ns2".into()),
            ]
        );
        assert!(
            stores
                .live(OwnedKind::Deployment, Some("acme"), "web-ns2")
                .is_some()
        );
        assert!(
            stores
                .live(OwnedKind::Deployment, Some("other"), "web-ns2")
                .is_none()
        );
        let zones = HashSet::from([ZoneKey::new("acme", "web")]);
        let gone = vec![(OwnedKind::Role, Some("shop".into()), "gone-dns.acme".into())];
        assert_eq!(stores.orphans(&zones, &Scope::All), gone);
        // A scoped operator sweeps only objects in its namespaces of zones in its namespaces:
        // the Role in `shop` is another scope's when `acme` or `shop` is not in this one.
        let scope = |s: &str| Scope::parse(&[s]).unwrap();
        assert_eq!(stores.orphans(&zones, &scope("acme,shop")), gone);
        assert!(stores.orphans(&zones, &scope("shop")).is_empty());
        assert!(stores.orphans(&zones, &scope("acme")).is_empty());
        // nor, with no zone at all in its caches, a cluster-scoped object of another scope
        let none = HashSet::new();
        let mut all = stores.orphans(&none, &Scope::All);
        all.sort();
        assert_eq!(all.len(), 3, "{all:?}");
        assert!(stores.orphans(&none, &scope("other")).is_empty());
        assert_eq!(
            stores.orphans(&none, &scope("acme")),
            vec![(
                OwnedKind::ClusterRoleBinding,
                None,
                "zonegate.acme.web.gateways".into()
            )]
        );
    }
}
