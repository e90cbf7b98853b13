//! The objects an accepted DNSZone should have, as server-side apply bodies. Pure functions of
//! the zone, the operator's settings and the DNSZoneGrants of the namespaces it reads.
//!
//! Per zone `Z` in namespace `N` (nameserver `i` is 1-based):
//!
//! | object | name | namespace | owner |
//! |---|---|---|---|
//! | ServiceAccount | `Z-dns` | N | the DNSZone |
//! | Role + RoleBinding (read the zone's source kinds, its DNSZones, its TSIG Secret by name) | `Z-dns` | N | the DNSZone |
//! | Role + RoleBinding (read consented kinds, DNSZoneGrants, zoneRef'd DNSZones) | `Z-dns.N` | each other namespace read | none: the operator deletes them |
//! | ClusterRoleBinding to `zonegate-gateway-reader` (route kinds only) | `zonegate.N.Z.gateways` | — | none: the operator deletes it |
//! | Deployment | `Z-ns<i>` | N | the DNSZone |
//! | Service (port 53 UDP+TCP) | `Z-ns<i>` | N | the DNSZone |
//! | PodDisruptionBudget (all of the zone's pods, maxUnavailable 1) | `Z-dns` | N | the DNSZone |
//! | ConfigMap the servers share the SOA serial through (they get and update only it) | `Z-serial` | N | the DNSZone |
//! | Secret: the DNS cookie secret every server of the zone signs with (created once, never rewritten) | `Z-cookie` | N | the DNSZone |
//! | Secret: the DNSSEC signing key, with `spec.dnssec.enabled` (created once, never rewritten) | `Z-dnssec` | N | the DNSZone |
//!
//! Namespaced objects can only be owned by objects of their own namespace, and cluster-scoped
//! ones only by cluster-scoped owners, hence the two kinds without owner.

use super::apply::hash_value;
use super::placement::Placements;
use super::{
    ANNOTATION_HASH, GATEWAY_READER_CLUSTER_ROLE, LABEL_MANAGED_BY, LABEL_NAMESERVER, LABEL_ZONE,
    LABEL_ZONE_NAMESPACE, MANAGED_BY, ZoneKey,
};
use crate::api::{DNSZone, DNSZoneGrant, ServiceType, SourceKind};
use crate::process::LogFormat;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// Container ports of the server pods and the Services' port.
pub const DNS_PORT: u16 = 5353;
pub const HTTP_PORT: u16 = 8080;
pub const SERVICE_PORT: u16 = 53;
/// With `spec.nameservers.tls`: the pods' DoT (TCP) and DoQ (UDP) port, and the Services' 853.
pub const DOT_PORT: u16 = 8853;
pub const DOT_SERVICE_PORT: u16 = 853;
/// With `spec.nameservers.tls`: the pods' DoH port, and the Services' 443.
pub const DOH_PORT: u16 = 8443;
pub const DOH_SERVICE_PORT: u16 = 443;
/// Where the server pods mount the `spec.nameservers.tls` Secret.
const TLS_DIR: &str = "/etc/zonegate/tls";
/// Where the server pods mount the zone's cookie Secret, and the key (file) of its secrets.
const COOKIE_DIR: &str = "/etc/zonegate/cookie";
pub const COOKIE_SECRET_KEY: &str = "cookie-secrets";
/// Where the server pods of a signed zone mount its key Secret (`serve --dnssec-keys`).
pub const DNSSEC_DIR: &str = "/etc/zonegate/dnssec";
/// Most nameservers a zone can have (`spec.nameservers.count`, CRD maximum).
pub const MAX_NAMESERVERS: usize = 4;
/// UID/GID the server runs as (the distroless `nonroot` user).
pub const RUN_AS: i64 = 65532;

/// How strictly the pods of different nameservers are kept off the same node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum NodeSpread {
    /// Required anti-affinity: losing one node never takes two nameservers (needs at least
    /// `spec.nameservers.count` schedulable nodes).
    #[default]
    Required,
    /// Preferred anti-affinity only (single-node development clusters).
    Preferred,
}

/// Operator configuration of the server pods.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerSettings {
    pub image: String,
    pub image_pull_policy: Option<String>,
    /// `resources.requests` / `resources.limits` (`cpu`, `memory`, ...), as written.
    pub requests: BTreeMap<String, String>,
    pub limits: BTreeMap<String, String>,
    pub node_spread: NodeSpread,
    /// `--log-format` of the servers: the operator's own.
    pub log_format: LogFormat,
    /// Scheduling of the server pods: the admin's default and the profiles zones may pick.
    pub placements: Placements,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            image: "zonegate:latest".into(),
            image_pull_policy: None,
            requests: BTreeMap::from([
                ("cpu".into(), "50m".into()),
                ("memory".into(), "64Mi".into()),
            ]),
            limits: BTreeMap::from([("memory".into(), "256Mi".into())]),
            node_spread: NodeSpread::Required,
            log_format: LogFormat::Text,
            placements: Placements::default(),
        }
    }
}

/// Kinds of objects the operator writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OwnedKind {
    ServiceAccount,
    Role,
    RoleBinding,
    ClusterRole,
    ClusterRoleBinding,
    Deployment,
    Service,
    PodDisruptionBudget,
    ConfigMap,
    Secret,
}

impl OwnedKind {
    pub const ALL: [OwnedKind; 10] = [
        OwnedKind::ServiceAccount,
        OwnedKind::Role,
        OwnedKind::RoleBinding,
        OwnedKind::ClusterRole,
        OwnedKind::ClusterRoleBinding,
        OwnedKind::Deployment,
        OwnedKind::Service,
        OwnedKind::PodDisruptionBudget,
        OwnedKind::ConfigMap,
        OwnedKind::Secret,
    ];

    pub fn api_version(self) -> &'static str {
        match self {
            OwnedKind::ServiceAccount
            | OwnedKind::Service
            | OwnedKind::ConfigMap
            | OwnedKind::Secret => "v1",
            OwnedKind::Role
            | OwnedKind::RoleBinding
            | OwnedKind::ClusterRole
            | OwnedKind::ClusterRoleBinding => "rbac.authorization.k8s.io/v1",
            OwnedKind::Deployment => "apps/v1",
            OwnedKind::PodDisruptionBudget => "policy/v1",
        }
    }

    pub fn kind(self) -> &'static str {
        match self {
            OwnedKind::ServiceAccount => "ServiceAccount",
            OwnedKind::Role => "Role",
            OwnedKind::RoleBinding => "RoleBinding",
            OwnedKind::ClusterRole => "ClusterRole",
            OwnedKind::ClusterRoleBinding => "ClusterRoleBinding",
            OwnedKind::Deployment => "Deployment",
            OwnedKind::Service => "Service",
            OwnedKind::PodDisruptionBudget => "PodDisruptionBudget",
            OwnedKind::ConfigMap => "ConfigMap",
            OwnedKind::Secret => "Secret",
        }
    }

    pub fn plural(self) -> &'static str {
        match self {
            OwnedKind::ServiceAccount => "serviceaccounts",
            OwnedKind::Role => "roles",
            OwnedKind::RoleBinding => "rolebindings",
            OwnedKind::ClusterRole => "clusterroles",
            OwnedKind::ClusterRoleBinding => "clusterrolebindings",
            OwnedKind::Deployment => "deployments",
            OwnedKind::Service => "services",
            OwnedKind::PodDisruptionBudget => "poddisruptionbudgets",
            OwnedKind::ConfigMap => "configmaps",
            OwnedKind::Secret => "secrets",
        }
    }

    pub fn namespaced(self) -> bool {
        !matches!(self, OwnedKind::ClusterRole | OwnedKind::ClusterRoleBinding)
    }
}

/// What a created-once Secret is filled with when the operator creates it. Such a Secret is
/// never applied: it is created when missing (with fresh random contents) and then left alone,
/// so no reconcile, restart or second operator can rotate it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretSeed {
    /// 128 random bits, as one line of 32 hex digits (`serve --cookie-secret-file`).
    Cookie,
    /// A new DNSSEC signing key of this algorithm (`key.pem`, `dnssec::source::new_secret_data`).
    Dnssec(crate::dnssec::keys::Algorithm),
}

impl SecretSeed {
    /// The Secret's `data` (base64 values), made now.
    pub fn data(self) -> Map<String, Value> {
        use base64::Engine;
        match self {
            SecretSeed::Cookie => {
                let mut k = [0u8; 16];
                crate::random::fill(&mut k);
                let line: String = k.iter().map(|b| format!("{b:02x}")).collect::<String>() + "\n";
                let mut m = Map::new();
                m.insert(
                    COOKIE_SECRET_KEY.into(),
                    json!(base64::engine::general_purpose::STANDARD.encode(line)),
                );
                m
            }
            SecretSeed::Dnssec(algorithm) => {
                // ring draws from getrandom(2), as `random::fill` does: it fails only where
                // the kernel has no random source, and then no secret can be made at all
                let data = crate::dnssec::source::new_secret_data(algorithm)
                    .expect("a DNSSEC key from the system's random source");
                data.into_iter()
                    .map(|(k, v)| {
                        (
                            k.to_string(),
                            json!(base64::engine::general_purpose::STANDARD.encode(v)),
                        )
                    })
                    .collect()
            }
        }
    }
}

/// One object to apply: the body carries the hash annotation.
#[derive(Clone, Debug, PartialEq)]
pub struct DesiredObject {
    pub kind: OwnedKind,
    pub namespace: Option<String>,
    pub name: String,
    pub body: Value,
    /// Hash of the body without the annotation.
    pub hash: String,
    /// Set for Secrets that are created once (with these contents) and never applied.
    pub seed: Option<SecretSeed>,
}

impl DesiredObject {
    /// Adds `apiVersion`, `kind` and the hash annotation to `body` (which has `metadata`).
    fn new(kind: OwnedKind, mut body: Value) -> Self {
        body["apiVersion"] = json!(kind.api_version());
        body["kind"] = json!(kind.kind());
        let hash = hash_value(&body);
        let meta = body["metadata"].as_object_mut().expect("metadata object");
        let annotations = meta
            .entry("annotations")
            .or_insert_with(|| Value::Object(Map::new()));
        annotations[ANNOTATION_HASH] = json!(hash);
        let name = meta["name"].as_str().expect("metadata.name").to_string();
        let namespace = meta
            .get("namespace")
            .and_then(Value::as_str)
            .map(str::to_string);
        DesiredObject {
            kind,
            namespace,
            name,
            body,
            hash,
            seed: None,
        }
    }

    /// `kind namespace/name` for logs and messages.
    pub fn describe(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{} {ns}/{}", self.kind.kind(), self.name),
            None => format!("{} {}", self.kind.kind(), self.name),
        }
    }
}

/// The names of a zone's objects.
pub fn nameserver_object_name(zone: &str, i: usize) -> String {
    format!("{zone}-ns{i}")
}
pub fn dns_object_name(zone: &str) -> String {
    format!("{zone}-dns")
}
/// Role/RoleBinding of zone `zone_ns/zone` in another namespace (`.` cannot occur in zone
/// names, so these never collide with a zone's own objects).
pub fn foreign_object_name(zone_ns: &str, zone: &str) -> String {
    format!("{zone}-dns.{zone_ns}")
}
/// The ConfigMap through which a zone's servers share the SOA serial (`serve --zone`).
pub fn serial_configmap_name(zone: &str) -> String {
    format!("{zone}-serial")
}
/// The Secret holding the DNS cookie secret all the zone's servers share (RFC 9018).
pub fn cookie_secret_name(zone: &str) -> String {
    format!("{zone}-cookie")
}
/// The Secret holding the zone's DNSSEC keys (`spec.dnssec.enabled`), the name files mode
/// reads too.
pub fn dnssec_secret_name(zone: &str) -> String {
    crate::dnssec::source::secret_name(zone)
}
pub fn gateway_binding_name(zone_ns: &str, zone: &str) -> String {
    format!("zonegate.{zone_ns}.{zone}.gateways")
}

/// The zone's nameserver hostnames (lowercase, no trailing dot): `spec.nameservers.hostnames`,
/// else `ns1.<domain>` ... `nsN.<domain>`.
pub fn nameserver_hostnames(zone: &DNSZone) -> Vec<String> {
    let domain = crate::domain::normalize(&zone.spec.domain);
    let count = zone.spec.nameservers.count.max(1) as usize;
    let given = zone.spec.nameservers.hostnames.as_deref().unwrap_or(&[]);
    (1..=count)
        .map(|i| match given.get(i - 1) {
            Some(h) => crate::domain::normalize(&h.0),
            None => format!("ns{i}.{domain}"),
        })
        .collect()
}

/// The API group and resource a source kind is read through.
pub fn source_resource(kind: SourceKind) -> (&'static str, &'static str) {
    match kind {
        SourceKind::Ingress => ("networking.k8s.io", "ingresses"),
        SourceKind::Service => ("", "services"),
        SourceKind::HTTPRoute => ("gateway.networking.k8s.io", "httproutes"),
        SourceKind::GRPCRoute => ("gateway.networking.k8s.io", "grpcroutes"),
        SourceKind::TLSRoute => ("gateway.networking.k8s.io", "tlsroutes"),
        SourceKind::DNSEndpoint => ("externaldns.k8s.io", "dnsendpoints"),
        SourceKind::VirtualServer => ("k8s.nginx.org", "virtualservers"),
    }
}

fn reads_routes(kinds: &[SourceKind]) -> bool {
    kinds.iter().any(|k| {
        matches!(
            k,
            SourceKind::HTTPRoute | SourceKind::GRPCRoute | SourceKind::TLSRoute
        )
    })
}

/// Read-only rules on `resources` ((group, resource) pairs), one rule per API group, sorted.
pub fn read_rules(resources: &BTreeSet<(&str, &str)>) -> Value {
    let mut by_group: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (g, r) in resources {
        by_group.entry(g).or_default().push(r);
    }
    Value::Array(
        by_group
            .into_iter()
            .map(|(g, rs)| json!({"apiGroups": [g], "resources": rs, "verbs": ["get", "list", "watch"]}))
            .collect(),
    )
}

/// The source kinds `zone` may read in each namespace of `spec.sources.namespaces` other than its
/// own, by the DNSZoneGrants there (a namespace without a matching grant maps to no kinds).
pub fn consented_kinds(
    zone: &DNSZone,
    grants: &[&DNSZoneGrant],
) -> BTreeMap<String, BTreeSet<SourceKind>> {
    let (zns, zname) = zone_key_parts(zone);
    let mut out = BTreeMap::new();
    for ns in &zone.spec.sources.namespaces {
        if ns.0 == zns {
            continue;
        }
        let mut kinds = BTreeSet::new();
        for g in grants
            .iter()
            .filter(|g| g.metadata.namespace.as_deref() == Some(ns.0.as_str()))
        {
            for k in &zone.spec.sources.kinds {
                if g.spec.allows(zns, zname, *k) {
                    kinds.insert(*k);
                }
            }
        }
        out.insert(ns.0.clone(), kinds);
    }
    out
}

fn zone_key_parts(zone: &DNSZone) -> (&str, &str) {
    (
        zone.metadata.namespace.as_deref().unwrap_or_default(),
        zone.metadata.name.as_deref().unwrap_or_default(),
    )
}

/// Labels of every object of the zone.
pub fn zone_labels(zone: &ZoneKey) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert(LABEL_MANAGED_BY.into(), json!(MANAGED_BY));
    m.insert(LABEL_ZONE.into(), json!(zone.name));
    m.insert(LABEL_ZONE_NAMESPACE.into(), json!(zone.namespace));
    m
}

fn nameserver_labels(zone: &ZoneKey, i: usize) -> Map<String, Value> {
    let mut m = zone_labels(zone);
    m.insert(LABEL_NAMESERVER.into(), json!(format!("ns{i}")));
    m
}

fn owner_reference(zone: &DNSZone) -> Value {
    json!([{
        "apiVersion": "zonegate.dev/v1alpha1",
        "kind": "DNSZone",
        "name": zone.metadata.name.as_deref().unwrap_or_default(),
        "uid": zone.metadata.uid.as_deref().unwrap_or_default(),
        "controller": true,
        "blockOwnerDeletion": true,
    }])
}

/// Metadata of an object in the zone's namespace, owned by the zone.
fn owned_meta(zone: &DNSZone, name: String, labels: Map<String, Value>) -> Value {
    let (ns, _) = zone_key_parts(zone);
    json!({
        "name": name,
        "namespace": ns,
        "labels": labels,
        "ownerReferences": owner_reference(zone),
    })
}

/// Every object an accepted zone should have, in apply order (identities and permissions before
/// the pods that use them).
pub fn desired_objects(
    zone: &DNSZone,
    settings: &ServerSettings,
    grants: &[&DNSZoneGrant],
) -> Vec<DesiredObject> {
    let mut out = vec![
        desired_service_account(zone),
        desired_serial_configmap(zone),
        desired_cookie_secret(zone),
    ];
    out.extend(desired_dnssec_secret(zone));
    out.extend(desired_rbac(zone, grants));
    for i in 1..=zone.spec.nameservers.count.max(1) as usize {
        out.push(desired_deployment(zone, settings, i));
        out.push(desired_service(zone, i));
    }
    out.push(desired_pdb(zone));
    out
}

fn key_of(zone: &DNSZone) -> ZoneKey {
    let (ns, name) = zone_key_parts(zone);
    ZoneKey::new(ns, name)
}

pub fn desired_service_account(zone: &DNSZone) -> DesiredObject {
    let key = key_of(zone);
    DesiredObject::new(
        OwnedKind::ServiceAccount,
        json!({ "metadata": owned_meta(zone, dns_object_name(&key.name), zone_labels(&key)) }),
    )
}

/// The serial ConfigMap, created empty: the servers fill it. Creating it here lets their Role
/// name it (`resourceNames` cannot restrict `create`).
pub fn desired_serial_configmap(zone: &DNSZone) -> DesiredObject {
    let key = key_of(zone);
    DesiredObject::new(
        OwnedKind::ConfigMap,
        json!({ "metadata": owned_meta(zone, serial_configmap_name(&key.name), zone_labels(&key)) }),
    )
}

/// The cookie Secret: created once with a random secret, then never written again (so a
/// reconcile cannot rotate it); only the kubelet reads it, to mount it into the zone's pods.
pub fn desired_cookie_secret(zone: &DNSZone) -> DesiredObject {
    let key = key_of(zone);
    let mut o = DesiredObject::new(
        OwnedKind::Secret,
        json!({
            "metadata": owned_meta(zone, cookie_secret_name(&key.name), zone_labels(&key)),
            "type": "Opaque",
        }),
    );
    o.seed = Some(SecretSeed::Cookie);
    o
}

/// The key Secret of a zone with `spec.dnssec.enabled`: created once with a new key of
/// `spec.dnssec.algorithm`, then never written again (a key that changed under a DS at the
/// parent makes the zone bogus); only the kubelet reads it, to mount it into the zone's pods.
/// A zone that turns DNSSEC off loses it with the other objects it no longer needs.
pub fn desired_dnssec_secret(zone: &DNSZone) -> Option<DesiredObject> {
    let spec = zone.spec.dnssec_enabled()?;
    let key = key_of(zone);
    let mut o = DesiredObject::new(
        OwnedKind::Secret,
        json!({
            "metadata": owned_meta(zone, dnssec_secret_name(&key.name), zone_labels(&key)),
            "type": "Opaque",
        }),
    );
    o.seed = Some(SecretSeed::Dnssec(spec.algorithm));
    Some(o)
}

/// Roles and bindings of the zone's ServiceAccount: in its namespace, in each other namespace it
/// reads, and the Gateway reader binding when it reads routes.
pub fn desired_rbac(zone: &DNSZone, grants: &[&DNSZoneGrant]) -> Vec<DesiredObject> {
    let key = key_of(zone);
    let sa = dns_object_name(&key.name);
    let subject = json!([{ "kind": "ServiceAccount", "name": sa, "namespace": key.namespace }]);
    let mut out = Vec::new();

    // Own namespace: the source kinds and the namespace's DNSZones.
    let mut own: BTreeSet<(&str, &str)> = zone
        .spec
        .sources
        .kinds
        .iter()
        .map(|k| source_resource(*k))
        .collect();
    own.insert(("zonegate.dev", "dnszones"));
    let name = dns_object_name(&key.name);
    let mut rules = read_rules(&own);
    rules.as_array_mut().expect("rules array").push(json!({
        "apiGroups": [""],
        "resources": ["configmaps"],
        "resourceNames": [serial_configmap_name(&key.name)],
        "verbs": ["get", "update"],
    }));
    // The TSIG key's Secret, that one only (the servers watch it by `metadata.name`, which
    // `resourceNames` authorizes for list and watch too).
    if let Some(secret) = zone
        .spec
        .transfer
        .as_ref()
        .and_then(|t| t.tsig_secret_name.as_ref())
    {
        rules.as_array_mut().expect("rules array").push(json!({
            "apiGroups": [""],
            "resources": ["secrets"],
            "resourceNames": [secret],
            "verbs": ["get", "list", "watch"],
        }));
    }
    out.push(DesiredObject::new(
        OwnedKind::Role,
        json!({ "metadata": owned_meta(zone, name.clone(), zone_labels(&key)), "rules": rules }),
    ));
    out.push(DesiredObject::new(
        OwnedKind::RoleBinding,
        json!({
            "metadata": owned_meta(zone, name.clone(), zone_labels(&key)),
            "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name },
            "subjects": subject,
        }),
    ));

    // Other namespaces: DNSZoneGrants where listed (to see consent come and go), the consented
    // kinds, and DNSZones where a delegation's zoneRef points.
    let mut foreign: BTreeMap<String, BTreeSet<(&str, &str)>> = BTreeMap::new();
    for (ns, kinds) in consented_kinds(zone, grants) {
        let set = foreign.entry(ns).or_default();
        set.insert(("zonegate.dev", "dnszonegrants"));
        set.extend(kinds.into_iter().map(source_resource));
    }
    for d in &zone.spec.delegations {
        if let Some(r) = &d.zone_ref
            && let Some(ns) = &r.namespace
            && ns.0 != key.namespace
        {
            foreign
                .entry(ns.0.clone())
                .or_default()
                .insert(("zonegate.dev", "dnszones"));
        }
    }
    let name = foreign_object_name(&key.namespace, &key.name);
    for (ns, resources) in foreign {
        let meta = json!({ "name": name, "namespace": ns, "labels": zone_labels(&key) });
        out.push(DesiredObject::new(
            OwnedKind::Role,
            json!({ "metadata": meta, "rules": read_rules(&resources) }),
        ));
        out.push(DesiredObject::new(
            OwnedKind::RoleBinding,
            json!({
                "metadata": meta,
                "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name },
                "subjects": subject,
            }),
        ));
    }

    if reads_routes(&zone.spec.sources.kinds) {
        out.push(DesiredObject::new(
            OwnedKind::ClusterRoleBinding,
            json!({
                "metadata": {
                    "name": gateway_binding_name(&key.namespace, &key.name),
                    "labels": zone_labels(&key),
                },
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": GATEWAY_READER_CLUSTER_ROLE,
                },
                "subjects": subject,
            }),
        ));
    }
    out
}

/// The shared ClusterRole of Gateway readers (applied once by the operator).
pub fn desired_gateway_reader() -> DesiredObject {
    let mut labels = Map::new();
    labels.insert(LABEL_MANAGED_BY.into(), json!(MANAGED_BY));
    DesiredObject::new(
        OwnedKind::ClusterRole,
        json!({
            "metadata": { "name": GATEWAY_READER_CLUSTER_ROLE, "labels": labels },
            "rules": read_rules(&BTreeSet::from([("gateway.networking.k8s.io", "gateways")])),
        }),
    )
}

/// The server Deployment of nameserver `i`.
pub fn desired_deployment(zone: &DNSZone, settings: &ServerSettings, i: usize) -> DesiredObject {
    let key = key_of(zone);
    let ns_label = format!("ns{i}");
    let selector = json!({ LABEL_ZONE: key.name, LABEL_NAMESERVER: ns_label });
    let other_nameservers = json!({
        "matchLabels": { LABEL_ZONE: key.name },
        "matchExpressions": [{ "key": LABEL_NAMESERVER, "operator": "NotIn", "values": [ns_label] }],
    });
    let same_nameserver = json!({ "matchLabels": selector });
    let host = "kubernetes.io/hostname";
    let mut preferred = vec![
        json!({ "weight": 50, "podAffinityTerm": { "labelSelector": other_nameservers, "topologyKey": "topology.kubernetes.io/zone" } }),
        json!({ "weight": 25, "podAffinityTerm": { "labelSelector": same_nameserver, "topologyKey": host } }),
    ];
    let mut anti = Map::new();
    match settings.node_spread {
        NodeSpread::Required => {
            anti.insert(
                "requiredDuringSchedulingIgnoredDuringExecution".into(),
                json!([{ "labelSelector": other_nameservers, "topologyKey": host }]),
            );
        }
        NodeSpread::Preferred => preferred.insert(
            0,
            json!({ "weight": 100, "podAffinityTerm": { "labelSelector": other_nameservers, "topologyKey": host } }),
        ),
    }
    anti.insert(
        "preferredDuringSchedulingIgnoredDuringExecution".into(),
        Value::Array(preferred),
    );

    let mut resources = Map::new();
    if !settings.requests.is_empty() {
        resources.insert("requests".into(), json!(settings.requests));
    }
    if !settings.limits.is_empty() {
        resources.insert("limits".into(), json!(settings.limits));
    }
    let mut container = json!({
        "name": "dns",
        "image": settings.image,
        "args": [
            "serve",
            "--zone", format!("{}/{}", key.namespace, key.name),
            "--listen", format!("0.0.0.0:{DNS_PORT}"),
            "--http", format!("0.0.0.0:{HTTP_PORT}"),
            "--log-format", settings.log_format.as_str(),
        ],
        "ports": [
            { "name": "dns-udp", "containerPort": DNS_PORT, "protocol": "UDP" },
            { "name": "dns-tcp", "containerPort": DNS_PORT, "protocol": "TCP" },
            { "name": "http", "containerPort": HTTP_PORT, "protocol": "TCP" },
        ],
        "livenessProbe": {
            "httpGet": { "path": "/healthz", "port": "http" },
            "periodSeconds": 10,
            "failureThreshold": 3,
        },
        "readinessProbe": {
            "httpGet": { "path": "/readyz", "port": "http" },
            "periodSeconds": 5,
            "failureThreshold": 2,
        },
        "resources": resources,
        "securityContext": {
            "allowPrivilegeEscalation": false,
            "readOnlyRootFilesystem": true,
            "runAsNonRoot": true,
            "capabilities": { "drop": ["ALL"] },
        },
        "volumeMounts": [
            { "name": "tmp", "mountPath": "/tmp" },
            { "name": "cookie", "mountPath": COOKIE_DIR, "readOnly": true },
        ],
    });
    if let Some(p) = &settings.image_pull_policy {
        container["imagePullPolicy"] = json!(p);
    }
    server_protections(&mut container, &zone.spec.nameservers);
    let mut pod_labels = nameserver_labels(&key, i);
    pod_labels.insert("app.kubernetes.io/component".into(), json!("nameserver"));
    let mut pod = json!({
        "serviceAccountName": dns_object_name(&key.name),
        // the Secrets' files are 0440 root:fsGroup: readable by the server's group, no one else
        "securityContext": {
            "runAsNonRoot": true,
            "runAsUser": RUN_AS,
            "runAsGroup": RUN_AS,
            "fsGroup": RUN_AS,
            "seccompProfile": { "type": "RuntimeDefault" },
        },
        "affinity": { "podAntiAffinity": anti },
        "containers": [container],
        "volumes": [
            { "name": "tmp", "emptyDir": { "sizeLimit": "16Mi" } },
            { "name": "cookie", "secret": { "secretName": cookie_secret_name(&key.name), "defaultMode": 0o440 } },
        ],
    });
    if let Some(tls) = &zone.spec.nameservers.tls {
        pod["volumes"]
            .as_array_mut()
            .expect("volumes")
            .push(json!({ "name": "tls", "secret": { "secretName": tls.secret_name, "defaultMode": 0o440 } }));
    }
    if zone.spec.dnssec_enabled().is_some() {
        mount_dnssec_keys(&mut pod, &key.name);
    }
    // an unknown profile keeps the default placement (the reconciler reports it)
    let placement = settings
        .placements
        .for_zone(zone.spec.nameservers.placement.as_deref())
        .unwrap_or_else(|_| settings.placements.default.clone());
    placement.apply_to(pod.as_object_mut().expect("pod spec"), &selector);
    DesiredObject::new(
        OwnedKind::Deployment,
        json!({
            "metadata": owned_meta(zone, nameserver_object_name(&key.name, i), nameserver_labels(&key, i)),
            "spec": {
                "replicas": zone.spec.nameservers.replicas.max(1),
                "selector": { "matchLabels": selector },
                // A new pod must be ready before an old one goes: a rollout never leaves the
                // nameserver without an answering pod.
                "strategy": { "type": "RollingUpdate", "rollingUpdate": { "maxSurge": 1, "maxUnavailable": 0 } },
                "revisionHistoryLimit": 3,
                "template": { "metadata": { "labels": pod_labels }, "spec": pod },
            },
        }),
    )
}

/// What the server container gets beyond plain DNS: its NSID (the pod's name, so a client can
/// tell which pod answered), the zone's shared cookie secret, response rate limiting (`rateLimit`, 100 a second by default, 0 =
/// off), and with `tls` the encrypted listeners, their ports and the certificate's mount.
fn server_protections(container: &mut Value, ns: &crate::api::NameserversSpec) {
    container["env"] = json!([
        { "name": "ZONEGATE_NSID", "valueFrom": { "fieldRef": { "fieldPath": "metadata.name" } } },
    ]);
    let args = container["args"].as_array_mut().expect("args");
    // the zone's shared cookie secret: a client moving between its servers keeps its cookie
    args.push(json!("--cookie-secret-file"));
    args.push(json!(format!("{COOKIE_DIR}/{COOKIE_SECRET_KEY}")));
    let rl = ns.rate_limit.clone().unwrap_or_default();
    if rl.responses_per_second > 0 {
        for (flag, v) in [
            ("--rrl-responses-per-second", rl.responses_per_second),
            ("--rrl-slip", rl.slip),
            ("--rrl-window", rl.window),
        ] {
            args.push(json!(flag));
            args.push(json!(v.to_string()));
        }
    }
    if ns.tls.is_some() {
        for (flag, v) in [
            ("--tls-listen", format!("0.0.0.0:{DOT_PORT}")),
            ("--quic-listen", format!("0.0.0.0:{DOT_PORT}")),
            ("--https-listen", format!("0.0.0.0:{DOH_PORT}")),
            ("--tls-cert", format!("{TLS_DIR}/tls.crt")),
            ("--tls-key", format!("{TLS_DIR}/tls.key")),
        ] {
            args.push(json!(flag));
            args.push(json!(v));
        }
        let ports = container["ports"].as_array_mut().expect("ports");
        ports.push(json!({ "name": "dot", "containerPort": DOT_PORT, "protocol": "TCP" }));
        ports.push(json!({ "name": "doq", "containerPort": DOT_PORT, "protocol": "UDP" }));
        ports.push(json!({ "name": "doh", "containerPort": DOH_PORT, "protocol": "TCP" }));
        container["volumeMounts"]
            .as_array_mut()
            .expect("volumeMounts")
            .push(json!({ "name": "tls", "mountPath": TLS_DIR, "readOnly": true }));
    }
}

/// A signed zone's pods: the key Secret read-only (0440, like the cookie) at [`DNSSEC_DIR`], and
/// `serve --dnssec-keys` reading it. Not `optional`: a pod waits for the Secret rather than
/// start without the key.
fn mount_dnssec_keys(pod: &mut Value, zone: &str) {
    pod["volumes"]
        .as_array_mut()
        .expect("volumes")
        .push(json!({ "name": "dnssec", "secret": { "secretName": dnssec_secret_name(zone), "defaultMode": 0o440 } }));
    let container = &mut pod["containers"][0];
    container["volumeMounts"]
        .as_array_mut()
        .expect("volumeMounts")
        .push(json!({ "name": "dnssec", "mountPath": DNSSEC_DIR, "readOnly": true }));
    let args = container["args"].as_array_mut().expect("args");
    args.push(json!("--dnssec-keys"));
    args.push(json!(DNSSEC_DIR));
}

/// The Service of nameserver `i`: port 53 UDP and TCP to the pods' 5353 (and with
/// `spec.nameservers.tls` 853 TCP and UDP and 443 TCP to the encrypted listeners).
pub fn desired_service(zone: &DNSZone, i: usize) -> DesiredObject {
    let key = key_of(zone);
    let svc = &zone.spec.nameservers.service;
    let mut meta = owned_meta(
        zone,
        nameserver_object_name(&key.name, i),
        nameserver_labels(&key, i),
    );
    if !svc.annotations.is_empty() {
        meta["annotations"] = json!(svc.annotations);
    }
    let type_ = match svc.type_ {
        ServiceType::LoadBalancer => "LoadBalancer",
        ServiceType::NodePort => "NodePort",
        ServiceType::ClusterIP => "ClusterIP",
    };
    let mut spec = json!({
        "type": type_,
        "selector": { LABEL_ZONE: key.name, LABEL_NAMESERVER: format!("ns{i}") },
        "ports": [
            { "name": "dns-udp", "port": SERVICE_PORT, "targetPort": "dns-udp", "protocol": "UDP" },
            { "name": "dns-tcp", "port": SERVICE_PORT, "targetPort": "dns-tcp", "protocol": "TCP" },
        ],
    });
    if zone.spec.nameservers.tls.is_some() {
        let ports = spec["ports"].as_array_mut().expect("ports");
        ports.push(json!({ "name": "dot", "port": DOT_SERVICE_PORT, "targetPort": "dot", "protocol": "TCP" }));
        ports.push(json!({ "name": "doq", "port": DOT_SERVICE_PORT, "targetPort": "doq", "protocol": "UDP" }));
        ports.push(json!({ "name": "doh", "port": DOH_SERVICE_PORT, "targetPort": "doh", "protocol": "TCP" }));
    }
    if svc.type_ == ServiceType::LoadBalancer
        && let Some(class) = &svc.load_balancer_class
    {
        spec["loadBalancerClass"] = json!(class);
    }
    if svc.type_ != ServiceType::ClusterIP
        && let Some(p) = svc.external_traffic_policy
    {
        spec["externalTrafficPolicy"] = json!(match p {
            crate::api::ExternalTrafficPolicy::Cluster => "Cluster",
            crate::api::ExternalTrafficPolicy::Local => "Local",
        });
    }
    DesiredObject::new(
        OwnedKind::Service,
        json!({ "metadata": meta, "spec": spec }),
    )
}

/// One budget over all the zone's server pods: a drain takes at most one of them at a time, so
/// every nameserver but at most one keeps all its pods. (Per-nameserver budgets cannot say
/// that: with one replica each, they would let every nameserver be evicted at once.)
pub fn desired_pdb(zone: &DNSZone) -> DesiredObject {
    let key = key_of(zone);
    DesiredObject::new(
        OwnedKind::PodDisruptionBudget,
        json!({
            "metadata": owned_meta(zone, dns_object_name(&key.name), zone_labels(&key)),
            "spec": {
                "maxUnavailable": 1,
                "selector": { "matchLabels": { LABEL_ZONE: key.name } },
                "unhealthyPodEvictionPolicy": "AlwaysAllow",
            },
        }),
    )
}

/// The `(kind, namespace, name)` identity of a desired object.
pub fn identity(o: &DesiredObject) -> (OwnedKind, Option<String>, String) {
    (o.kind, o.namespace.clone(), o.name.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::{Service, ServiceAccount};
    use k8s_openapi::api::policy::v1::PodDisruptionBudget;
    use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, Role, RoleBinding};

    fn zone(spec: Value) -> DNSZone {
        serde_json::from_value(json!({
            "apiVersion": "zonegate.dev/v1alpha1", "kind": "DNSZone",
            "metadata": {"namespace": "acme", "name": "web", "uid": "u-1", "generation": 1},
            "spec": spec,
        }))
        .unwrap()
    }

    fn grant(ns: &str, spec: Value) -> DNSZoneGrant {
        serde_json::from_value(json!({
            "apiVersion": "zonegate.dev/v1alpha1", "kind": "DNSZoneGrant",
            "metadata": {"namespace": ns, "name": "g"},
            "spec": spec,
        }))
        .unwrap()
    }

    fn find<'a>(
        objs: &'a [DesiredObject],
        kind: OwnedKind,
        ns: Option<&str>,
        name: &str,
    ) -> &'a DesiredObject {
        objs.iter()
            .find(|o| o.kind == kind && o.namespace.as_deref() == ns && o.name == name)
            .unwrap_or_else(|| {
                panic!(
                    "no {kind:?} {ns:?}/{name} in {:?}",
                    objs.iter().map(DesiredObject::describe).collect::<Vec<_>>()
                )
            })
    }

    #[test]
    fn default_zone_gets_every_object_with_labels_and_owner() {
        let z = zone(json!({"domain": "acme.example.com"}));
        let objs = desired_objects(&z, &ServerSettings::default(), &[]);
        let names: Vec<String> = objs.iter().map(DesiredObject::describe).collect();
        assert_eq!(
            names,
            vec![
                "ServiceAccount acme/web-dns",
                "ConfigMap acme/web-serial",
                "Secret acme/web-cookie",
                "Role acme/web-dns",
                "RoleBinding acme/web-dns",
                "ClusterRoleBinding zonegate.acme.web.gateways",
                "Deployment acme/web-ns1",
                "Service acme/web-ns1",
                "Deployment acme/web-ns2",
                "Service acme/web-ns2",
                "PodDisruptionBudget acme/web-dns",
            ]
        );
        for o in &objs {
            let labels = &o.body["metadata"]["labels"];
            assert_eq!(labels[LABEL_MANAGED_BY], "zonegate", "{}", o.describe());
            assert_eq!(labels[LABEL_ZONE], "web", "{}", o.describe());
            assert_eq!(labels[LABEL_ZONE_NAMESPACE], "acme", "{}", o.describe());
            assert_eq!(o.body["metadata"]["annotations"][ANNOTATION_HASH], o.hash);
            assert_eq!(o.body["apiVersion"], o.kind.api_version());
            assert_eq!(o.body["kind"], o.kind.kind());
            if o.kind.namespaced() {
                let owner = &o.body["metadata"]["ownerReferences"][0];
                assert_eq!(owner["uid"], "u-1");
                assert_eq!(owner["kind"], "DNSZone");
                assert_eq!(owner["controller"], true);
            } else {
                assert!(o.body["metadata"].get("ownerReferences").is_none());
            }
        }
        // Every body is a valid object of its kind.
        for o in &objs {
            let b = o.body.clone();
            match o.kind {
                OwnedKind::ServiceAccount => {
                    drop(serde_json::from_value::<ServiceAccount>(b).unwrap())
                }
                OwnedKind::Role => drop(serde_json::from_value::<Role>(b).unwrap()),
                OwnedKind::RoleBinding => drop(serde_json::from_value::<RoleBinding>(b).unwrap()),
                OwnedKind::ClusterRoleBinding => {
                    drop(serde_json::from_value::<ClusterRoleBinding>(b).unwrap())
                }
                OwnedKind::Deployment => drop(serde_json::from_value::<Deployment>(b).unwrap()),
                OwnedKind::Service => drop(serde_json::from_value::<Service>(b).unwrap()),
                OwnedKind::PodDisruptionBudget => {
                    drop(serde_json::from_value::<PodDisruptionBudget>(b).unwrap())
                }
                OwnedKind::ConfigMap => drop(
                    serde_json::from_value::<k8s_openapi::api::core::v1::ConfigMap>(b).unwrap(),
                ),
                OwnedKind::Secret => {
                    drop(serde_json::from_value::<k8s_openapi::api::core::v1::Secret>(b).unwrap())
                }
                OwnedKind::ClusterRole => unreachable!(),
            }
        }
    }

    /// `spec.dnssec.enabled`: the key Secret `web-dnssec`, owned, created once (seeded, no
    /// key in the body) with a key of `spec.dnssec.algorithm` that `ZoneKeys` reads back;
    /// every nameserver pod mounts it read-only and passes `--dnssec-keys`; the pods' Role
    /// never names it. Without `spec.dnssec` (or `enabled: false`) none of that.
    #[test]
    fn a_signed_zone_gets_a_key_secret_mounted_by_every_nameserver() {
        use base64::Engine;
        let z = zone(
            json!({"domain": "acme.example.com", "nameservers": {"count": 2},
            "dnssec": {"enabled": true, "algorithm": "ED25519"}}),
        );
        let objs = desired_objects(&z, &ServerSettings::default(), &[]);
        let secret = find(&objs, OwnedKind::Secret, Some("acme"), "web-dnssec");
        let alg = crate::dnssec::keys::Algorithm::Ed25519;
        assert_eq!(secret.seed, Some(SecretSeed::Dnssec(alg)));
        assert_eq!(secret.body["type"], "Opaque");
        assert!(secret.body.get("data").is_none(), "no key in the body");
        assert_eq!(secret.body["metadata"]["ownerReferences"][0]["uid"], "u-1");
        assert_eq!(
            secret.body["metadata"]["labels"][LABEL_MANAGED_BY],
            MANAGED_BY
        );
        let data = SecretSeed::Dnssec(alg).data();
        assert_eq!(data.keys().collect::<Vec<_>>(), ["key.pem"]);
        let pem = base64::engine::general_purpose::STANDARD
            .decode(data["key.pem"].as_str().unwrap())
            .unwrap();
        let keys = crate::dnssec::keys::ZoneKeys::from_entries("t", |k| {
            (k == "key.pem").then_some(pem.as_slice())
        })
        .unwrap();
        assert_eq!(keys.active.algorithm(), alg);
        for i in 1..=2 {
            let d = find(
                &objs,
                OwnedKind::Deployment,
                Some("acme"),
                &format!("web-ns{i}"),
            );
            let pod = &d.body["spec"]["template"]["spec"];
            assert!(
                pod["volumes"].as_array().unwrap().contains(
                    &json!({"name": "dnssec", "secret": {"secretName": "web-dnssec", "defaultMode": 0o440}})
                ),
                "{pod}"
            );
            let c = &pod["containers"][0];
            assert!(
                c["volumeMounts"].as_array().unwrap().contains(
                    &json!({"name": "dnssec", "mountPath": "/etc/zonegate/dnssec", "readOnly": true})
                ),
                "{c}"
            );
            let args = c["args"].as_array().unwrap();
            let at = args
                .iter()
                .position(|a| *a == "--dnssec-keys")
                .expect("flag");
            assert_eq!(args[at + 1], "/etc/zonegate/dnssec");
            assert!(serde_json::from_value::<Deployment>(d.body.clone()).is_ok());
        }
        let role = find(&objs, OwnedKind::Role, Some("acme"), "web-dns");
        assert!(!role.body["rules"].to_string().contains("secrets"));

        for spec in [
            json!({"domain": "acme.example.com"}),
            json!({"domain": "acme.example.com", "dnssec": {"enabled": false}}),
        ] {
            let objs = desired_objects(&zone(spec), &ServerSettings::default(), &[]);
            assert!(!objs.iter().any(|o| o.name == "web-dnssec"));
            let d = find(&objs, OwnedKind::Deployment, Some("acme"), "web-ns1");
            let text = d.body.to_string();
            assert!(!text.contains("dnssec"), "{text}");
        }
    }

    /// The cookie Secret: owned, created once with 16 random bytes as 32 hex digits (what
    /// `serve --cookie-secret-file` reads), fresh bytes each time it is made; its body (what
    /// the hash covers) holds no secret. Every nameserver pod mounts it read-only (0440, group
    /// 65532) and passes the file; the pods' Role never names it.
    #[test]
    fn every_nameserver_shares_the_zone_s_cookie_secret() {
        use base64::Engine;
        let z = zone(json!({"domain": "acme.example.com", "nameservers": {"count": 3}}));
        let objs = desired_objects(&z, &ServerSettings::default(), &[]);
        let secret = find(&objs, OwnedKind::Secret, Some("acme"), "web-cookie");
        assert_eq!(secret.seed, Some(SecretSeed::Cookie));
        assert_eq!(secret.body["type"], "Opaque");
        assert!(secret.body.get("data").is_none(), "no secret in the body");
        let parsed =
            serde_json::from_value::<k8s_openapi::api::core::v1::Secret>(secret.body.clone());
        assert!(parsed.is_ok());
        let file = |d: &Map<String, Value>| {
            let b = base64::engine::general_purpose::STANDARD
                .decode(d[COOKIE_SECRET_KEY].as_str().unwrap())
                .unwrap();
            String::from_utf8(b).unwrap()
        };
        let (a, b) = (
            file(&SecretSeed::Cookie.data()),
            file(&SecretSeed::Cookie.data()),
        );
        assert_eq!(a.len(), 33, "{a:?}");
        assert!(a.ends_with('\n') && a.trim().bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b, "fresh random bytes each time");
        assert!(crate::dns::cookies::CookieSecrets::parse(&a).is_ok());

        for i in 1..=3 {
            let d = find(
                &objs,
                OwnedKind::Deployment,
                Some("acme"),
                &format!("web-ns{i}"),
            );
            let pod = &d.body["spec"]["template"]["spec"];
            assert_eq!(
                pod["volumes"][1],
                json!({"name": "cookie", "secret": {"secretName": "web-cookie", "defaultMode": 0o440}})
            );
            assert_eq!(pod["securityContext"]["fsGroup"], RUN_AS);
            let c = &pod["containers"][0];
            assert_eq!(
                c["volumeMounts"][1],
                json!({"name": "cookie", "mountPath": "/etc/zonegate/cookie", "readOnly": true})
            );
            let args: Vec<&str> = c["args"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap())
                .collect();
            let at = args
                .iter()
                .position(|a| *a == "--cookie-secret-file")
                .unwrap();
            assert_eq!(args[at + 1], "/etc/zonegate/cookie/cookie-secrets");
        }
        let role = find(&objs, OwnedKind::Role, Some("acme"), "web-dns");
        assert!(!role.body["rules"].to_string().contains("secrets"));
    }

    /// Every server pod gets its name as NSID; `rateLimit` becomes the --rrl flags; `tls`
    /// adds the encrypted listeners, their ports, the Secret's read-only mount and the
    /// Services' 853/TCP, 853/UDP and 443/TCP. Without them, none of it.
    #[test]
    fn nsid_rate_limit_and_tls_reach_the_pods_and_services() {
        let s = ServerSettings::default();
        let plain = zone(json!({"domain": "acme.example.com"}));
        let d: Deployment = serde_json::from_value(desired_deployment(&plain, &s, 1).body).unwrap();
        let pod = d.spec.unwrap().template.spec.unwrap();
        let c = &pod.containers[0];
        let env = c.env.clone().unwrap();
        assert_eq!(env[0].name, "ZONEGATE_NSID");
        let field = env[0].value_from.clone().unwrap().field_ref.unwrap();
        assert_eq!(field.field_path, "metadata.name");
        let args = c.args.clone().unwrap();
        assert!(!args.iter().any(|a| a.starts_with("--tls")), "{args:?}");
        // rate limiting is on by default, 100 a second; 0 turns it off
        let i = args
            .iter()
            .position(|a| a == "--rrl-responses-per-second")
            .unwrap();
        assert_eq!(args[i + 1], "100");
        let off = zone(json!({"domain": "acme.example.com",
            "nameservers": {"rateLimit": {"responsesPerSecond": 0}}}));
        let d: Deployment = serde_json::from_value(desired_deployment(&off, &s, 1).body).unwrap();
        let off_args = d.spec.unwrap().template.spec.unwrap().containers[0]
            .args
            .clone()
            .unwrap();
        assert!(
            !off_args.iter().any(|a| a.starts_with("--rrl")),
            "{off_args:?}"
        );
        assert_eq!(c.ports.as_ref().unwrap().len(), 3);
        assert_eq!(
            pod.volumes.as_ref().unwrap().len(),
            2,
            "/tmp and the cookie secret"
        );
        let svc: Service = serde_json::from_value(desired_service(&plain, 1).body).unwrap();
        assert_eq!(svc.spec.unwrap().ports.unwrap().len(), 2);

        let z = zone(json!({"domain": "acme.example.com", "nameservers": {
            "rateLimit": {"responsesPerSecond": 20},
            "tls": {"secretName": "ns-cert"}}}));
        let d: Deployment = serde_json::from_value(desired_deployment(&z, &s, 1).body).unwrap();
        let pod = d.spec.unwrap().template.spec.unwrap();
        let c = &pod.containers[0];
        let args = c.args.clone().unwrap();
        let after = |flag: &str| {
            let i = args
                .iter()
                .position(|a| a == flag)
                .unwrap_or_else(|| panic!("{flag}: {args:?}"));
            args[i + 1].clone()
        };
        assert_eq!(after("--rrl-responses-per-second"), "20");
        assert_eq!(after("--rrl-slip"), "2");
        assert_eq!(after("--rrl-window"), "15");
        assert_eq!(after("--tls-listen"), "0.0.0.0:8853");
        assert_eq!(after("--quic-listen"), "0.0.0.0:8853");
        assert_eq!(after("--https-listen"), "0.0.0.0:8443");
        assert_eq!(after("--tls-cert"), "/etc/zonegate/tls/tls.crt");
        assert_eq!(after("--tls-key"), "/etc/zonegate/tls/tls.key");
        let ports: Vec<(String, i32, String)> = c
            .ports
            .clone()
            .unwrap()
            .into_iter()
            .map(|p| (p.name.unwrap(), p.container_port, p.protocol.unwrap()))
            .collect();
        for want in [
            ("dot", 8853, "TCP"),
            ("doq", 8853, "UDP"),
            ("doh", 8443, "TCP"),
        ] {
            assert!(
                ports.contains(&(want.0.into(), want.1, want.2.into())),
                "{want:?} in {ports:?}"
            );
        }
        let mount = c
            .volume_mounts
            .clone()
            .unwrap()
            .into_iter()
            .find(|m| m.name == "tls")
            .unwrap();
        assert_eq!(
            (mount.mount_path.as_str(), mount.read_only),
            ("/etc/zonegate/tls", Some(true))
        );
        let vol = pod
            .volumes
            .unwrap()
            .into_iter()
            .find(|v| v.name == "tls")
            .unwrap();
        let secret = vol.secret.unwrap();
        assert_eq!(secret.secret_name.as_deref(), Some("ns-cert"));
        assert_eq!(secret.default_mode, Some(0o440));
        assert_eq!(pod.security_context.unwrap().fs_group, Some(RUN_AS));
        let svc: Service = serde_json::from_value(desired_service(&z, 1).body).unwrap();
        let ports: Vec<(String, i32, String, String)> = svc
            .spec
            .unwrap()
            .ports
            .unwrap()
            .into_iter()
            .map(|p| {
                let target = match p.target_port.unwrap() {
                    k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(s) => s,
                    other => panic!("{other:?}"),
                };
                (p.name.unwrap(), p.port, p.protocol.unwrap(), target)
            })
            .collect();
        for want in [
            ("dot", 853, "TCP"),
            ("doq", 853, "UDP"),
            ("doh", 443, "TCP"),
        ] {
            assert!(
                ports.contains(&(want.0.into(), want.1, want.2.into(), want.0.into())),
                "{want:?} in {ports:?}"
            );
        }
    }

    #[test]
    fn deployment_runs_the_server_hardened() {
        let z =
            zone(json!({"domain": "acme.example.com", "nameservers": {"count": 3, "replicas": 2}}));
        let mut s = ServerSettings {
            image: "registry.example/zonegate:1.2.3".into(),
            ..ServerSettings::default()
        };
        s.image_pull_policy = Some("Always".into());
        let d: Deployment = serde_json::from_value(desired_deployment(&z, &s, 2).body).unwrap();
        assert_eq!(d.metadata.name.as_deref(), Some("web-ns2"));
        let spec = d.spec.unwrap();
        assert_eq!(spec.replicas, Some(2));
        let sel = spec.selector.match_labels.unwrap();
        assert_eq!(sel[LABEL_ZONE], "web");
        assert_eq!(sel[LABEL_NAMESERVER], "ns2");
        let ru = spec.strategy.unwrap().rolling_update.unwrap();
        assert_eq!(
            serde_json::to_value(&ru).unwrap(),
            json!({"maxSurge": 1, "maxUnavailable": 0})
        );
        let t = spec.template;
        assert_eq!(t.metadata.unwrap().labels.unwrap()[LABEL_NAMESERVER], "ns2");
        let pod = t.spec.unwrap();
        assert_eq!(pod.service_account_name.as_deref(), Some("web-dns"));
        let psc = pod.security_context.unwrap();
        assert_eq!(psc.run_as_non_root, Some(true));
        assert_eq!(psc.run_as_user, Some(65532));
        let c = &pod.containers[0];
        assert_eq!(c.image.as_deref(), Some("registry.example/zonegate:1.2.3"));
        assert_eq!(c.image_pull_policy.as_deref(), Some("Always"));
        assert_eq!(
            c.args.clone().unwrap(),
            vec![
                "serve",
                "--zone",
                "acme/web",
                "--listen",
                "0.0.0.0:5353",
                "--http",
                "0.0.0.0:8080",
                "--log-format",
                "text",
                "--cookie-secret-file",
                "/etc/zonegate/cookie/cookie-secrets",
                "--rrl-responses-per-second",
                "100",
                "--rrl-slip",
                "2",
                "--rrl-window",
                "15"
            ]
        );
        let json_logs = ServerSettings {
            log_format: LogFormat::Json,
            ..s.clone()
        };
        let args = &desired_deployment(&z, &json_logs, 2).body["spec"]["template"]["spec"]["containers"]
            [0]["args"];
        assert_eq!(
            args.as_array().unwrap()[7..9],
            [json!("--log-format"), json!("json")]
        );
        let ports: Vec<(String, i32, String)> = c
            .ports
            .clone()
            .unwrap()
            .into_iter()
            .map(|p| (p.name.unwrap(), p.container_port, p.protocol.unwrap()))
            .collect();
        assert_eq!(
            ports,
            vec![
                ("dns-udp".into(), 5353, "UDP".into()),
                ("dns-tcp".into(), 5353, "TCP".into()),
                ("http".into(), 8080, "TCP".into())
            ]
        );
        let sc = c.security_context.clone().unwrap();
        assert_eq!(sc.read_only_root_filesystem, Some(true));
        assert_eq!(sc.allow_privilege_escalation, Some(false));
        assert_eq!(sc.capabilities.unwrap().drop.unwrap(), vec!["ALL"]);
        assert!(c.security_context.as_ref().unwrap().privileged.is_none());
        let live = c.liveness_probe.clone().unwrap().http_get.unwrap();
        assert_eq!(live.path.as_deref(), Some("/healthz"));
        let ready = c.readiness_probe.clone().unwrap().http_get.unwrap();
        assert_eq!(ready.path.as_deref(), Some("/readyz"));
        let res = serde_json::to_value(c.resources.clone().unwrap()).unwrap();
        assert_eq!(
            res,
            json!({"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}})
        );

        // Other nameservers of the zone never share a node (required), and prefer other zones.
        let anti = serde_json::to_value(pod.affinity.unwrap().pod_anti_affinity.unwrap()).unwrap();
        assert_eq!(
            anti["requiredDuringSchedulingIgnoredDuringExecution"],
            json!([{
                "labelSelector": {
                    "matchLabels": {LABEL_ZONE: "web"},
                    "matchExpressions": [{"key": LABEL_NAMESERVER, "operator": "NotIn", "values": ["ns2"]}],
                },
                "topologyKey": "kubernetes.io/hostname",
            }])
        );
        assert_eq!(
            anti["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"]["topologyKey"],
            "topology.kubernetes.io/zone"
        );

        s.node_spread = NodeSpread::Preferred;
        let d = desired_deployment(&z, &s, 1).body;
        let anti = &d["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"];
        assert!(
            anti.get("requiredDuringSchedulingIgnoredDuringExecution")
                .is_none()
        );
        assert_eq!(
            anti["preferredDuringSchedulingIgnoredDuringExecution"][0]["weight"],
            100
        );
        assert_eq!(
            anti["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"]["topologyKey"],
            "kubernetes.io/hostname"
        );
    }

    #[test]
    fn deployments_get_the_admin_placement_and_the_zone_profile() {
        use crate::operator::placement::{Placement, Placements};
        let s = ServerSettings {
            placements: Placements {
                default: Placement::parse(
                    r#"{"imagePullSecrets": [{"name": "regcred"}], "nodeSelector": {"role": "dns"},
                        "tolerations": [{"key": "dns", "operator": "Exists"}],
                        "priorityClassName": "dns-critical",
                        "affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 1, "preference": {"matchExpressions": [{"key": "ssd", "operator": "Exists"}]}}]}},
                        "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "DoNotSchedule"}]}"#,
                )
                .unwrap(),
                profiles: Placements::parse_profiles(r#"{"edge": {"nodeSelector": {"role": "edge"}}}"#)
                    .unwrap(),
            },
            ..ServerSettings::default()
        };
        let z = zone(json!({"domain": "acme.example.com"}));
        let d: Deployment = serde_json::from_value(desired_deployment(&z, &s, 1).body).unwrap();
        let pod = d.spec.unwrap().template.spec.unwrap();
        assert_eq!(pod.image_pull_secrets.unwrap()[0].name, "regcred");
        assert_eq!(pod.node_selector.unwrap()["role"], "dns");
        assert_eq!(pod.tolerations.unwrap()[0].key.as_deref(), Some("dns"));
        assert_eq!(pod.priority_class_name.as_deref(), Some("dns-critical"));
        let affinity = pod.affinity.unwrap();
        assert!(affinity.node_affinity.is_some());
        assert!(
            affinity
                .pod_anti_affinity
                .unwrap()
                .required_during_scheduling_ignored_during_execution
                .is_some(),
            "the operator's own anti-affinity stays"
        );
        let tsc = &pod.topology_spread_constraints.unwrap()[0];
        assert_eq!(
            tsc.label_selector
                .as_ref()
                .unwrap()
                .match_labels
                .as_ref()
                .unwrap()[LABEL_NAMESERVER],
            "ns1"
        );
        // a zone picks a profile: its fields replace the default's
        let z = zone(json!({"domain": "acme.example.com", "nameservers": {"placement": "edge"}}));
        let b = desired_deployment(&z, &s, 2).body;
        let pod = &b["spec"]["template"]["spec"];
        assert_eq!(pod["nodeSelector"], json!({"role": "edge"}));
        assert_eq!(pod["priorityClassName"], "dns-critical");
        // an unknown profile keeps the default
        let z = zone(json!({"domain": "acme.example.com", "nameservers": {"placement": "gpu"}}));
        let b = desired_deployment(&z, &s, 1).body;
        assert_eq!(
            b["spec"]["template"]["spec"]["nodeSelector"],
            json!({"role": "dns"})
        );
        // and without any placement, none of the fields appear
        let b = desired_deployment(&z, &ServerSettings::default(), 1).body;
        let pod = &b["spec"]["template"]["spec"];
        for f in [
            "imagePullSecrets",
            "nodeSelector",
            "tolerations",
            "priorityClassName",
            "topologySpreadConstraints",
        ] {
            assert!(pod.get(f).is_none(), "{f}");
        }
    }

    #[test]
    fn service_follows_spec_nameservers_service() {
        let z = zone(
            json!({"domain": "acme.example.com", "nameservers": {"service": {
            "type": "LoadBalancer",
            "annotations": {"metallb.universe.tf/address-pool": "public"},
            "loadBalancerClass": "example.com/lb",
            "externalTrafficPolicy": "Local"}}}),
        );
        let o = desired_service(&z, 1);
        let s: Service = serde_json::from_value(o.body.clone()).unwrap();
        let ann = s.metadata.annotations.unwrap();
        assert_eq!(ann["metallb.universe.tf/address-pool"], "public");
        assert_eq!(ann[ANNOTATION_HASH], o.hash);
        let spec = s.spec.unwrap();
        assert_eq!(spec.type_.as_deref(), Some("LoadBalancer"));
        assert_eq!(spec.load_balancer_class.as_deref(), Some("example.com/lb"));
        assert_eq!(spec.external_traffic_policy.as_deref(), Some("Local"));
        assert_eq!(spec.selector.unwrap()[LABEL_NAMESERVER], "ns1");
        assert_eq!(
            serde_json::to_value(spec.ports.unwrap()).unwrap(),
            json!([
                {"name": "dns-udp", "port": 53, "targetPort": "dns-udp", "protocol": "UDP"},
                {"name": "dns-tcp", "port": 53, "targetPort": "dns-tcp", "protocol": "TCP"},
            ])
        );

        let z = zone(
            json!({"domain": "acme.example.com", "nameservers": {"service": {
            "type": "ClusterIP", "loadBalancerClass": "x", "externalTrafficPolicy": "Local"}}}),
        );
        let spec = &desired_service(&z, 1).body["spec"];
        assert_eq!(spec["type"], "ClusterIP");
        assert!(spec.get("loadBalancerClass").is_none());
        assert!(spec.get("externalTrafficPolicy").is_none());
        let z = zone(
            json!({"domain": "acme.example.com", "nameservers": {"service": {
            "type": "NodePort", "loadBalancerClass": "x", "externalTrafficPolicy": "Local"}}}),
        );
        let spec = &desired_service(&z, 1).body["spec"];
        assert!(spec.get("loadBalancerClass").is_none());
        assert_eq!(spec["externalTrafficPolicy"], "Local");
    }

    #[test]
    fn pdb_spans_the_whole_zone() {
        let z = zone(json!({"domain": "acme.example.com"}));
        let p = &desired_pdb(&z).body;
        assert_eq!(p["metadata"]["name"], "web-dns");
        assert_eq!(p["spec"]["maxUnavailable"], 1);
        assert_eq!(
            p["spec"]["selector"],
            json!({"matchLabels": {LABEL_ZONE: "web"}})
        );
        assert_eq!(p["spec"]["unhealthyPodEvictionPolicy"], "AlwaysAllow");
    }

    #[test]
    fn rbac_grants_the_tsig_secret_by_name_only() {
        let z = zone(json!({"domain": "acme.example.com",
            "transfer": {"allowFrom": ["192.0.2.0/24"], "tsigSecretName": "xfr-key"}}));
        let objs = desired_rbac(&z, &[]);
        let role = find(&objs, OwnedKind::Role, Some("acme"), "web-dns");
        let rules = role.body["rules"].as_array().unwrap();
        let secrets: Vec<&Value> = rules
            .iter()
            .filter(|r| r["resources"] == json!(["secrets"]))
            .collect();
        assert_eq!(
            secrets,
            [
                &json!({"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["xfr-key"],
                "verbs": ["get", "list", "watch"]})
            ]
        );
        // without a key, no Secret at all
        let z = zone(
            json!({"domain": "acme.example.com", "transfer": {"allowFrom": ["192.0.2.0/24"]}}),
        );
        let objs = desired_rbac(&z, &[]);
        let role = find(&objs, OwnedKind::Role, Some("acme"), "web-dns");
        assert!(!role.body["rules"].to_string().contains("secrets"));
    }

    #[test]
    fn rbac_reads_exactly_the_zone_kinds_in_its_namespace() {
        let z = zone(
            json!({"domain": "acme.example.com", "sources": {"kinds": ["Service", "Ingress", "DNSEndpoint"]}}),
        );
        let objs = desired_rbac(&z, &[]);
        assert_eq!(objs.len(), 2, "no gateway binding without route kinds");
        let role = find(&objs, OwnedKind::Role, Some("acme"), "web-dns");
        assert_eq!(
            role.body["rules"],
            json!([
                {"apiGroups": [""], "resources": ["services"], "verbs": ["get", "list", "watch"]},
                {"apiGroups": ["externaldns.k8s.io"], "resources": ["dnsendpoints"], "verbs": ["get", "list", "watch"]},
                {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses"], "verbs": ["get", "list", "watch"]},
                {"apiGroups": ["zonegate.dev"], "resources": ["dnszones"], "verbs": ["get", "list", "watch"]},
                {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["web-serial"], "verbs": ["get", "update"]},
            ])
        );
        let rb = find(&objs, OwnedKind::RoleBinding, Some("acme"), "web-dns");
        assert_eq!(
            rb.body["roleRef"],
            json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "web-dns"})
        );
        assert_eq!(
            rb.body["subjects"],
            json!([{"kind": "ServiceAccount", "name": "web-dns", "namespace": "acme"}])
        );
    }

    #[test]
    fn rbac_in_other_namespaces_follows_consent() {
        let z = zone(json!({"domain": "acme.example.com",
        "sources": {"kinds": ["Ingress", "Service", "HTTPRoute"], "namespaces": ["acme", "shop", "blog", "nogrant"]},
        "delegations": [
            {"name": "team", "zoneRef": {"namespace": "team", "name": "child"}},
            {"name": "own", "zoneRef": {"name": "sub"}},
        ]}));
        let g_shop = grant(
            "shop",
            json!({"zones": [{"namespace": "acme", "name": "web"}], "kinds": ["Ingress", "VirtualServer"]}),
        );
        let g_blog = grant("blog", json!({"zones": [{"namespace": "acme"}]}));
        let g_other = grant("nogrant", json!({"zones": [{"namespace": "elsewhere"}]}));
        let objs = desired_rbac(&z, &[&g_shop, &g_blog, &g_other]);
        let names: Vec<String> = objs.iter().map(DesiredObject::describe).collect();
        assert_eq!(
            names,
            vec![
                "Role acme/web-dns",
                "RoleBinding acme/web-dns",
                "Role blog/web-dns.acme",
                "RoleBinding blog/web-dns.acme",
                "Role nogrant/web-dns.acme",
                "RoleBinding nogrant/web-dns.acme",
                "Role shop/web-dns.acme",
                "RoleBinding shop/web-dns.acme",
                "Role team/web-dns.acme",
                "RoleBinding team/web-dns.acme",
                "ClusterRoleBinding zonegate.acme.web.gateways",
            ]
        );
        let rules =
            |ns: &str| find(&objs, OwnedKind::Role, Some(ns), "web-dns.acme").body["rules"].clone();
        let rw = |g: &str, r: &[&str]| json!({"apiGroups": [g], "resources": r, "verbs": ["get", "list", "watch"]});
        // shop consents to Ingress (and VirtualServer, which the zone does not read).
        assert_eq!(
            rules("shop"),
            json!([
                rw("networking.k8s.io", &["ingresses"]),
                rw("zonegate.dev", &["dnszonegrants"])
            ])
        );
        // blog consents to everything: the zone's three kinds.
        assert_eq!(
            rules("blog"),
            json!([
                rw("", &["services"]),
                rw("gateway.networking.k8s.io", &["httproutes"]),
                rw("networking.k8s.io", &["ingresses"]),
                rw("zonegate.dev", &["dnszonegrants"]),
            ])
        );
        // nogrant: only the grants, to see consent appear.
        assert_eq!(
            rules("nogrant"),
            json!([rw("zonegate.dev", &["dnszonegrants"])])
        );
        // team: the child DNSZone of a zoneRef delegation.
        assert_eq!(rules("team"), json!([rw("zonegate.dev", &["dnszones"])]));
        let rb = find(&objs, OwnedKind::RoleBinding, Some("shop"), "web-dns.acme");
        assert_eq!(rb.body["subjects"][0]["namespace"], "acme");
        assert!(rb.body["metadata"].get("ownerReferences").is_none());
        let crb = find(
            &objs,
            OwnedKind::ClusterRoleBinding,
            None,
            "zonegate.acme.web.gateways",
        );
        assert_eq!(crb.body["roleRef"]["name"], GATEWAY_READER_CLUSTER_ROLE);
        assert_eq!(crb.body["subjects"][0]["name"], "web-dns");
    }

    #[test]
    fn hash_changes_with_content_only() {
        let z = zone(json!({"domain": "acme.example.com"}));
        let s = ServerSettings::default();
        assert_eq!(
            desired_deployment(&z, &s, 1).hash,
            desired_deployment(&z, &s, 1).hash
        );
        let s2 = ServerSettings {
            image: "other".into(),
            ..s.clone()
        };
        assert_ne!(
            desired_deployment(&z, &s, 1).hash,
            desired_deployment(&z, &s2, 1).hash
        );
        let z2 = zone(json!({"domain": "acme.example.com", "nameservers": {"replicas": 3}}));
        assert_ne!(
            desired_deployment(&z, &s, 1).hash,
            desired_deployment(&z2, &s, 1).hash
        );
        // A different incarnation of the zone (new uid) re-applies (new owner reference).
        let mut z3 = z.clone();
        z3.metadata.uid = Some("u-2".into());
        assert_ne!(desired_service(&z, 1).hash, desired_service(&z3, 1).hash);
    }

    #[test]
    fn nameserver_names() {
        let z = zone(json!({"domain": "Acme.example.com", "nameservers": {"count": 3}}));
        assert_eq!(
            nameserver_hostnames(&z),
            vec![
                "ns1.acme.example.com",
                "ns2.acme.example.com",
                "ns3.acme.example.com"
            ]
        );
        let z = zone(
            json!({"domain": "acme.example.com", "nameservers": {"count": 2, "hostnames": ["a.dns.example.net", "B.acme.example.com."]}}),
        );
        assert_eq!(
            nameserver_hostnames(&z),
            vec!["a.dns.example.net", "b.acme.example.com"]
        );
    }

    #[test]
    fn gateway_reader_cluster_role() {
        let o = desired_gateway_reader();
        assert_eq!(o.name, GATEWAY_READER_CLUSTER_ROLE);
        assert_eq!(
            o.body["rules"],
            json!([{"apiGroups": ["gateway.networking.k8s.io"], "resources": ["gateways"], "verbs": ["get", "list", "watch"]}])
        );
    }
}
