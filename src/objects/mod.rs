//! Slim models of the Kubernetes objects the zone compiler reads.
//!
//! Both feeds (manifest files and apiserver watches) deserialize objects straight into these
//! types, which keep only the fields the compiler needs, so 10 000 Ingresses cost little memory.
//! Unknown fields are ignored. Nothing here knows about DNS wire formats.

pub mod secret;
pub mod store;

use serde::Deserialize;
use std::collections::BTreeMap;

/// The metadata fields the compiler uses.
#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Meta {
    #[serde(default)]
    pub name: String,
    /// Empty means `default` (normalised by the feeds).
    #[serde(default)]
    pub namespace: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// RFC 3339; used to settle conflicts deterministically (older wins).
    #[serde(default)]
    pub creation_timestamp: Option<String>,
    #[serde(default)]
    pub resource_version: Option<String>,
}

/// `status.loadBalancer.ingress[]` entry (Ingress and Service).
#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
pub struct LbIngress {
    #[serde(default)]
    pub ip: Option<String>,
    #[serde(default)]
    pub hostname: Option<String>,
}

#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
pub struct LbStatus {
    #[serde(default)]
    pub ingress: Vec<LbIngress>,
}

// ---------------------------------------------------------------- Ingress (networking.k8s.io/v1)

#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Ingress {
    #[serde(default)]
    pub metadata: Meta,
    #[serde(default)]
    pub spec: IngressSpec,
    #[serde(default)]
    pub status: IngressStatus,
}

#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct IngressSpec {
    #[serde(default)]
    pub ingress_class_name: Option<String>,
    #[serde(default)]
    pub rules: Vec<IngressRule>,
    #[serde(default)]
    pub tls: Vec<IngressTls>,
}

#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
pub struct IngressRule {
    #[serde(default)]
    pub host: Option<String>,
}

#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
pub struct IngressTls {
    #[serde(default)]
    pub hosts: Vec<String>,
}

#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct IngressStatus {
    #[serde(default)]
    pub load_balancer: LbStatus,
}

// ---------------------------------------------------------------- Service (v1)

#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Service {
    #[serde(default)]
    pub metadata: Meta,
    #[serde(default)]
    pub spec: ServiceSpec,
    #[serde(default)]
    pub status: ServiceStatus,
}

#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ServiceSpec {
    /// `ClusterIP` when absent.
    #[serde(default, rename = "type")]
    pub type_: Option<String>,
    #[serde(default, rename = "externalIPs")]
    pub external_ips: Vec<String>,
}

#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ServiceStatus {
    #[serde(default)]
    pub load_balancer: LbStatus,
}

// ---------------------------------------------------------------- Gateway API

/// gateway.networking.k8s.io Gateway (read only as a route's parent).
#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Gateway {
    #[serde(default)]
    pub metadata: Meta,
    #[serde(default)]
    pub spec: GatewaySpec,
    #[serde(default)]
    pub status: GatewayStatus,
}

#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GatewaySpec {
    #[serde(default)]
    pub gateway_class_name: String,
    #[serde(default)]
    pub listeners: Vec<Listener>,
}

#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Listener {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub hostname: Option<String>,
    #[serde(default)]
    pub port: Option<i32>,
    #[serde(default)]
    pub protocol: String,
    #[serde(default)]
    pub allowed_routes: Option<AllowedRoutes>,
}

#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
pub struct AllowedRoutes {
    #[serde(default)]
    pub namespaces: Option<RouteNamespaces>,
    #[serde(default)]
    pub kinds: Vec<RouteGroupKind>,
}

#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
pub struct RouteNamespaces {
    /// `Same` (default), `All` or `Selector`.
    #[serde(default)]
    pub from: Option<String>,
}

#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
pub struct RouteGroupKind {
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub kind: String,
}

#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
pub struct GatewayStatus {
    #[serde(default)]
    pub addresses: Vec<GatewayAddress>,
}

#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
pub struct GatewayAddress {
    /// `IPAddress` (default) or `Hostname`.
    #[serde(default, rename = "type")]
    pub type_: Option<String>,
    #[serde(default)]
    pub value: String,
}

/// HTTPRoute, GRPCRoute and TLSRoute share the fields we read.
#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Route {
    #[serde(default)]
    pub metadata: Meta,
    #[serde(default)]
    pub spec: RouteSpec,
    #[serde(default)]
    pub status: RouteStatus,
}

#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RouteSpec {
    #[serde(default)]
    pub hostnames: Vec<String>,
    #[serde(default)]
    pub parent_refs: Vec<ParentRef>,
}

#[derive(Deserialize, Clone, Debug, Default, PartialEq, Eq, Hash)]
#[serde(rename_all = "camelCase")]
pub struct ParentRef {
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub section_name: Option<String>,
    #[serde(default)]
    pub port: Option<i32>,
}

#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
pub struct RouteStatus {
    #[serde(default)]
    pub parents: Vec<RouteParentStatus>,
}

#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RouteParentStatus {
    #[serde(default)]
    pub parent_ref: ParentRef,
    #[serde(default)]
    pub conditions: Vec<StatusCondition>,
}

#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
pub struct StatusCondition {
    #[serde(default, rename = "type")]
    pub type_: String,
    #[serde(default)]
    pub status: String,
}

// ---------------------------------------------------------------- ExternalDNS DNSEndpoint

#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
pub struct DnsEndpoint {
    #[serde(default)]
    pub metadata: Meta,
    #[serde(default)]
    pub spec: DnsEndpointSpec,
}

#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
pub struct DnsEndpointSpec {
    #[serde(default)]
    pub endpoints: Vec<Endpoint>,
}

#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Endpoint {
    #[serde(default)]
    pub dns_name: String,
    #[serde(default)]
    pub targets: Vec<String>,
    #[serde(default)]
    pub record_type: String,
    #[serde(default, rename = "recordTTL")]
    pub record_ttl: Option<i64>,
}

// ---------------------------------------------------------------- nginx VirtualServer

#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
pub struct VirtualServer {
    #[serde(default)]
    pub metadata: Meta,
    #[serde(default)]
    pub spec: VirtualServerSpec,
    #[serde(default)]
    pub status: VirtualServerStatus,
}

#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
pub struct VirtualServerSpec {
    #[serde(default)]
    pub host: String,
}

#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct VirtualServerStatus {
    #[serde(default)]
    pub external_endpoints: Vec<ExternalEndpoint>,
}

#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
pub struct ExternalEndpoint {
    #[serde(default)]
    pub ip: Option<String>,
    #[serde(default)]
    pub hostname: Option<String>,
}

// ---------------------------------------------------------------- the union

/// Which kind of Gateway API route.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RouteKind {
    HTTPRoute,
    GRPCRoute,
    TLSRoute,
}

/// Any object the compiler reads.
#[derive(Clone, Debug, PartialEq)]
pub enum SourceObject {
    Ingress(Ingress),
    Service(Service),
    Gateway(Gateway),
    Route(RouteKind, Route),
    DnsEndpoint(DnsEndpoint),
    VirtualServer(VirtualServer),
}

/// Identifies one object: `Ingress acme/web`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey {
    pub kind: &'static str,
    pub namespace: String,
    pub name: String,
}

impl std::fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}/{}", self.kind, self.namespace, self.name)
    }
}

impl SourceObject {
    pub fn kind(&self) -> &'static str {
        match self {
            SourceObject::Ingress(_) => "Ingress",
            SourceObject::Service(_) => "Service",
            SourceObject::Gateway(_) => "Gateway",
            SourceObject::Route(RouteKind::HTTPRoute, _) => "HTTPRoute",
            SourceObject::Route(RouteKind::GRPCRoute, _) => "GRPCRoute",
            SourceObject::Route(RouteKind::TLSRoute, _) => "TLSRoute",
            SourceObject::DnsEndpoint(_) => "DNSEndpoint",
            SourceObject::VirtualServer(_) => "VirtualServer",
        }
    }

    pub fn meta(&self) -> &Meta {
        match self {
            SourceObject::Ingress(o) => &o.metadata,
            SourceObject::Service(o) => &o.metadata,
            SourceObject::Gateway(o) => &o.metadata,
            SourceObject::Route(_, o) => &o.metadata,
            SourceObject::DnsEndpoint(o) => &o.metadata,
            SourceObject::VirtualServer(o) => &o.metadata,
        }
    }

    pub fn meta_mut(&mut self) -> &mut Meta {
        match self {
            SourceObject::Ingress(o) => &mut o.metadata,
            SourceObject::Service(o) => &mut o.metadata,
            SourceObject::Gateway(o) => &mut o.metadata,
            SourceObject::Route(_, o) => &mut o.metadata,
            SourceObject::DnsEndpoint(o) => &mut o.metadata,
            SourceObject::VirtualServer(o) => &mut o.metadata,
        }
    }

    pub fn key(&self) -> ObjectKey {
        let m = self.meta();
        ObjectKey {
            kind: self.kind(),
            namespace: m.namespace.clone(),
            name: m.name.clone(),
        }
    }

    /// Parses a Kubernetes object given as JSON (as `kubectl get -o json` or a watch shows it)
    /// by its `apiVersion` group and `kind`. `Ok(None)` for kinds the compiler does not read.
    pub fn from_value(
        api_version: &str,
        kind: &str,
        value: serde_json::Value,
    ) -> Result<Option<SourceObject>, serde_json::Error> {
        let group = api_version.rsplit_once('/').map(|(g, _)| g).unwrap_or("");
        let obj = match (group, kind) {
            ("networking.k8s.io", "Ingress") => {
                SourceObject::Ingress(serde_json::from_value(value)?)
            }
            ("", "Service") => SourceObject::Service(serde_json::from_value(value)?),
            ("gateway.networking.k8s.io", "Gateway") => {
                SourceObject::Gateway(serde_json::from_value(value)?)
            }
            ("gateway.networking.k8s.io", "HTTPRoute") => {
                SourceObject::Route(RouteKind::HTTPRoute, serde_json::from_value(value)?)
            }
            ("gateway.networking.k8s.io", "GRPCRoute") => {
                SourceObject::Route(RouteKind::GRPCRoute, serde_json::from_value(value)?)
            }
            ("gateway.networking.k8s.io", "TLSRoute") => {
                SourceObject::Route(RouteKind::TLSRoute, serde_json::from_value(value)?)
            }
            ("externaldns.k8s.io", "DNSEndpoint") => {
                SourceObject::DnsEndpoint(serde_json::from_value(value)?)
            }
            ("k8s.nginx.org", "VirtualServer") => {
                SourceObject::VirtualServer(serde_json::from_value(value)?)
            }
            _ => return Ok(None),
        };
        Ok(Some(obj))
    }
}
