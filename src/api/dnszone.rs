//! The `DNSZone` custom resource (`zonegate.dev/v1alpha1`): the contract tenants and GitOps
//! repositories write against. Doc comments become `kubectl explain` text; validation that the
//! apiserver can do lives here as OpenAPI constraints and CEL rules.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector, Time};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `JsonSchema` for a transparent string newtype: the given inline string schema.
macro_rules! string_schema {
    ($ty:ident, $schema:tt) => {
        impl schemars::JsonSchema for $ty {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($ty).into()
            }
            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!($schema)
            }
            fn inline_schema() -> bool {
                true
            }
        }
    };
}

/// Pattern of `spec.domain`: a lowercase fully qualified name of at least two labels, without
/// the trailing dot.
pub const DOMAIN_PATTERN: &str =
    r"^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)+[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$";

/// A lowercase DNS hostname (no trailing dot); may start with `*.` where wildcards are allowed.
pub const HOSTNAME_PATTERN: &str =
    r"^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)*[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.?$";

/// A DNSZone is one tenant's authoritative zone. The operator runs nameservers for it; the
/// nameservers answer the zone from the tenant's Kubernetes objects and static records.
#[allow(clippy::duplicated_attributes)] // printcolumn(type_ = ...) repeats by design
#[derive(CustomResource, KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[kube(
    group = "zonegate.dev",
    version = "v1alpha1",
    kind = "DNSZone",
    plural = "dnszones",
    singular = "dnszone",
    shortname = "dz",
    category = "zonegate",
    namespaced,
    status = "DNSZoneStatus",
    derive = "PartialEq",
    doc = "DNSZone is a tenant's authoritative DNS zone for a domain it owns. zonegate runs its nameservers and answers it from the tenant's Ingresses, LoadBalancer Services, Gateway API routes, DNSEndpoints, VirtualServers and static records.",
    printcolumn(name = "Domain", type_ = "string", json_path = ".spec.domain"),
    printcolumn(
        name = "Accepted",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Accepted\")].status"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Nameservers",
        type_ = "string",
        json_path = ".status.nameservers[*].addresses[*]"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    ),
    printcolumn(
        name = "Serial",
        type_ = "integer",
        json_path = ".status.serial",
        priority = 1
    ),
    printcolumn(
        name = "Records",
        type_ = "integer",
        json_path = ".status.records",
        priority = 1
    ),
    printcolumn(
        name = "Last-Served",
        type_ = "date",
        json_path = ".status.lastServed",
        priority = 1
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.records) || self.records.all(r, r.name == '@' || !r.name.endsWith('.') || r.name == self.domain + '.' || r.name.endsWith('.' + self.domain + '.'))").message("spec.records[].name: a fully qualified name (ending in '.') must be inside spec.domain").field_path(".records").reason(Reason::FieldValueInvalid))]
#[x_kube(validation = Rule::new("!has(self.delegations) || self.delegations.all(d, d.name != '@' && d.name != self.domain && d.name != self.domain + '.' && (!d.name.endsWith('.') || d.name.endsWith('.' + self.domain + '.')))").message("spec.delegations[].name: must name a child strictly below spec.domain").field_path(".delegations").reason(Reason::FieldValueInvalid))]
pub struct DNSZoneSpec {
    /// The zone apex: a lowercase fully qualified domain name without the trailing dot, for
    /// example `acme.example.com`. At least two labels. Immutable; to move a zone, create a new
    /// DNSZone. Two DNSZones can never claim the same domain: the older one keeps it.
    #[schemars(regex(pattern = DOMAIN_PATTERN), length(min = 3, max = 253))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.domain is immutable").reason(Reason::FieldValueForbidden))]
    pub domain: String,

    /// TTL in seconds of the records derived from source objects (Ingresses, Services, routes,
    /// ...). An object's `external-dns.alpha.kubernetes.io/ttl` annotation overrides it.
    #[serde(default = "default_ttl")]
    #[schemars(range(min = 1, max = 86400))]
    pub ttl: u32,

    /// The zone's nameservers: how many, their names, and how they are exposed.
    #[serde(default)]
    pub nameservers: NameserversSpec,

    /// Which Kubernetes objects may publish names in this zone.
    #[serde(default)]
    pub sources: SourcesSpec,

    /// Static records served as written, next to the records derived from sources. At most 500
    /// entries of at most 16 values each (the apiserver's CEL cost budget); publish more through
    /// DNSEndpoint objects.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 500))]
    pub records: Vec<StaticRecord>,

    /// Child zones delegated to other nameservers; answered with referrals and glue.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256))]
    pub delegations: Vec<Delegation>,

    /// Timers and contact of the zone's SOA record.
    #[serde(default)]
    pub soa: SoaSpec,

    /// Zone transfers (AXFR, IXFR) to secondary nameservers, and NOTIFY to them on every
    /// serial change. Absent: every transfer is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer: Option<TransferSpec>,

    /// DNSSEC signing of the zone (docs/dnssec.md). Absent or `enabled: false`: unsigned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dnssec: Option<DnssecSpec>,
}

/// `spec.dnssec`: sign the zone with one combined signing key (a CSK, DNSKEY flags 257). The
/// key is the Secret `<zone>-dnssec` in the zone's namespace (`key.pem`, and `next.pem` during
/// a rollover); with `serve --manifests`, a `v1 Secret` of that name in the tree, else one
/// generated once into `--state-dir`.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct DnssecSpec {
    /// Sign the zone: DNSKEY, CDS and CDNSKEY at the apex, RRSIGs over every authoritative
    /// RRset, NSEC3 (RFC 9276 parameters) for authenticated denial.
    #[serde(default)]
    pub enabled: bool,
    /// Signing algorithm of a generated key: `ECDSAP256SHA256` (13, the default) or `ED25519`
    /// (15). A key given in the Secret must be of this algorithm.
    #[serde(default)]
    pub algorithm: crate::dnssec::keys::Algorithm,
}

impl DNSZoneSpec {
    /// The DNSSEC settings when signing is on.
    pub fn dnssec_enabled(&self) -> Option<&DnssecSpec> {
        self.dnssec.as_ref().filter(|d| d.enabled)
    }
}

/// Who may transfer the zone, whom to notify of changes and the TSIG key that guards both.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct TransferSpec {
    /// Networks (`192.0.2.0/24`, `2001:db8::/64`) or single addresses allowed to transfer the
    /// zone with AXFR or IXFR. Empty: nobody. With `tsigSecretName` a transfer needs both the
    /// address and the key.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    #[x_kube(validation = Rule::new("self.all(c, isCIDR(c) || isIP(c))").message("spec.transfer.allowFrom: each entry must be a CIDR (192.0.2.0/24) or an IP address").reason(Reason::FieldValueInvalid))]
    pub allow_from: Vec<TransferNetwork>,

    /// Secondaries sent a DNS NOTIFY (RFC 1996) whenever the serial changes: an IP address,
    /// optionally with a port (`192.0.2.10`, `198.51.100.7:5300`, `[2001:db8::7]:5300`).
    /// Default port 53.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    #[x_kube(validation = Rule::new("self.all(a, isIP(a) || (a.matches('^[0-9.]+:[0-9]{1,5}$') && isIP(a.substring(0, a.lastIndexOf(':')))) || (a.matches('^\\\\[[0-9a-fA-F:.]+\\\\]:[0-9]{1,5}$') && isIP(a.substring(1, a.lastIndexOf(']')))))").message("spec.transfer.notify: each entry must be an IP address, IPv4:port or [IPv6]:port").reason(Reason::FieldValueInvalid))]
    pub notify: Vec<NotifyTarget>,

    /// Name of a Secret in the zone's namespace holding a TSIG key (RFC 8945): keys `name`
    /// (the key name), `algorithm` (`hmac-sha256`, the default, or `hmac-sha512`) and `secret`
    /// (base64, as `tsig-keygen` prints it). When set, transfers must be signed with this key
    /// and NOTIFY messages are signed with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = SECRET_NAME_PATTERN), length(min = 1, max = 253))]
    pub tsig_secret_name: Option<String>,
}

/// A Secret name (a DNS-1123 subdomain).
pub const SECRET_NAME_PATTERN: &str =
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";

/// A network in CIDR notation, or a single IP address.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
#[serde(transparent)]
pub struct TransferNetwork(pub String);

string_schema!(TransferNetwork, { "type": "string", "maxLength": 49 });

/// An IP address with an optional port.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
#[serde(transparent)]
pub struct NotifyTarget(pub String);

string_schema!(NotifyTarget, { "type": "string", "maxLength": 53 });

fn default_ttl() -> u32 {
    60
}

/// How many nameservers the zone has, what they are called and how they are reached.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.hostnames) || size(self.hostnames) == self.count").message("spec.nameservers.hostnames must list exactly spec.nameservers.count names").field_path(".hostnames").reason(Reason::FieldValueInvalid))]
pub struct NameserversSpec {
    /// Number of nameservers (NS records), each with its own Service and external address.
    #[serde(default = "default_ns_count")]
    #[schemars(range(min = 1, max = 4))]
    pub count: u32,

    /// Explicit nameserver hostnames, one per nameserver, without the trailing dot. Default
    /// `ns1.<domain>` ... `nsN.<domain>`. Names inside the zone get glue records from the
    /// nameservers' addresses; names outside the zone need none (their owner must resolve them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 4))]
    pub hostnames: Option<Vec<NameserverHostname>>,

    /// Server pods behind each nameserver.
    #[serde(default = "default_replicas")]
    #[schemars(range(min = 1, max = 10))]
    pub replicas: u32,

    /// How each nameserver's Service is exposed.
    #[serde(default)]
    pub service: NameserverService,

    /// Placement profile of the server pods: one of the profiles the platform offers (the
    /// operator's `--server-placement-profiles`, the chart's `server.placementProfiles`), which
    /// set node selector, tolerations, affinity, priority class and topology spread. Default: the
    /// platform's default placement. An unknown profile keeps the default and says so in an
    /// Event and the Ready condition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"), length(max = 63))]
    pub placement: Option<String>,

    /// UDP response rate limiting on the server pods (RRL, as BIND's `rate-limit`). On by
    /// default at 100 responses a second; `responsesPerSecond: 0` turns it off. It sees the
    /// clients' real addresses only with `service.externalTrafficPolicy: Local` (or a load
    /// balancer that preserves them); behind SNAT the clients of one node share its limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimitSpec>,

    /// Encrypted transports on every nameserver: DNS over TLS (853/TCP), over QUIC (853/UDP)
    /// and over HTTPS (443/TCP, path /dns-query), with the certificate of a
    /// `kubernetes.io/tls` Secret in the zone's namespace (cert-manager's, typically). Its
    /// names should be the nameserver hostnames. A renewed certificate is served without a
    /// restart. Without it, only plain DNS on port 53.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<NameserverTls>,
}

/// `spec.nameservers.rateLimit`: the server's `--rrl-*` flags.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RateLimitSpec {
    /// Responses per second to one client prefix (/24, /56) for one answer (name and type;
    /// NXDOMAINs of the zone count as one answer); 0 turns rate limiting off.
    #[serde(default = "default_rps")]
    #[schemars(range(min = 0, max = 1000000))]
    pub responses_per_second: u32,
    /// Every Nth limited response is sent truncated so a real client retries over TCP; the
    /// others are dropped. 0 drops all, 1 truncates all.
    #[serde(default = "default_slip")]
    #[schemars(range(min = 0, max = 10))]
    pub slip: u32,
    /// Seconds over which a client's rate is averaged.
    #[serde(default = "default_window")]
    #[schemars(range(min = 1, max = 3600))]
    pub window: u32,
}

impl Default for RateLimitSpec {
    fn default() -> Self {
        Self {
            responses_per_second: default_rps(),
            slip: default_slip(),
            window: default_window(),
        }
    }
}

fn default_rps() -> u32 {
    100
}
fn default_slip() -> u32 {
    2
}
fn default_window() -> u32 {
    15
}

/// `spec.nameservers.tls`.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NameserverTls {
    /// A `kubernetes.io/tls` Secret (`tls.crt`, `tls.key`) in the zone's namespace. The server
    /// pods mount it; nothing else reads it.
    #[schemars(
        regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"),
        length(min = 1, max = 253)
    )]
    pub secret_name: String,
}

impl Default for NameserversSpec {
    fn default() -> Self {
        Self {
            count: default_ns_count(),
            hostnames: None,
            replicas: default_replicas(),
            service: NameserverService::default(),
            placement: None,
            rate_limit: None,
            tls: None,
        }
    }
}

fn default_ns_count() -> u32 {
    2
}
fn default_replicas() -> u32 {
    2
}

/// A nameserver hostname: a lowercase DNS name without the trailing dot.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(transparent)]
pub struct NameserverHostname(pub String);

string_schema!(NameserverHostname, {
    "type": "string",
    "pattern": DOMAIN_PATTERN,
    "maxLength": 253,
});

/// Service settings of the nameservers.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct NameserverService {
    /// Service type. LoadBalancer gives every nameserver its own external IP.
    #[serde(default, rename = "type")]
    pub type_: ServiceType,

    /// Annotations set on every nameserver Service (for example load-balancer settings).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,

    /// `spec.loadBalancerClass` of the Services.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer_class: Option<String>,

    /// `spec.externalTrafficPolicy` of the Services (LoadBalancer and NodePort only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_traffic_policy: Option<ExternalTrafficPolicy>,
}

/// Kubernetes Service type of the nameserver Services.
#[derive(
    schemars::JsonSchema, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Default,
)]
pub enum ServiceType {
    #[default]
    LoadBalancer,
    NodePort,
    ClusterIP,
}

/// Kubernetes `externalTrafficPolicy`.
#[derive(schemars::JsonSchema, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExternalTrafficPolicy {
    Cluster,
    Local,
}

/// Where the zone's names come from.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SourcesSpec {
    /// Kinds of objects read. Default: all of them.
    #[serde(default = "SourceKind::all")]
    #[schemars(length(max = 7))]
    #[x_kube(validation = Rule::new("self.all(x, self.exists_one(y, x == y))").message("spec.sources.kinds must not repeat a kind"))]
    pub kinds: Vec<SourceKind>,

    /// Namespaces whose objects are read. Default (empty): only the DNSZone's own namespace.
    /// In a cluster, another namespace is read only when it consents (see docs/multi-tenancy.md).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub namespaces: Vec<NamespaceName>,

    /// Only objects whose labels match this selector are read. Default: all objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
}

impl Default for SourcesSpec {
    fn default() -> Self {
        Self {
            kinds: SourceKind::all(),
            namespaces: Vec::new(),
            selector: None,
        }
    }
}

/// A Kubernetes namespace name.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(transparent)]
pub struct NamespaceName(pub String);

string_schema!(NamespaceName, {
    "type": "string",
    "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
    "maxLength": 63,
});

/// A kind of Kubernetes object that can publish names in a zone.
#[derive(
    schemars::JsonSchema,
    Deserialize,
    Serialize,
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
)]
pub enum SourceKind {
    /// networking.k8s.io/v1 Ingress: rule and TLS hosts, load-balancer status addresses.
    Ingress,
    /// v1 Service of type LoadBalancer: `<name>.<namespace>.<domain>` and hostname annotations.
    Service,
    /// gateway.networking.k8s.io HTTPRoute: hostnames, parent Gateway addresses.
    HTTPRoute,
    /// gateway.networking.k8s.io GRPCRoute.
    GRPCRoute,
    /// gateway.networking.k8s.io TLSRoute.
    TLSRoute,
    /// externaldns.k8s.io/v1alpha1 DNSEndpoint: endpoints as written.
    DNSEndpoint,
    /// k8s.nginx.org/v1 VirtualServer: `spec.host` and external endpoints.
    VirtualServer,
}

impl SourceKind {
    pub const ALL: [SourceKind; 7] = [
        SourceKind::Ingress,
        SourceKind::Service,
        SourceKind::HTTPRoute,
        SourceKind::GRPCRoute,
        SourceKind::TLSRoute,
        SourceKind::DNSEndpoint,
        SourceKind::VirtualServer,
    ];
    pub fn all() -> Vec<SourceKind> {
        Self::ALL.to_vec()
    }
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Ingress => "Ingress",
            SourceKind::Service => "Service",
            SourceKind::HTTPRoute => "HTTPRoute",
            SourceKind::GRPCRoute => "GRPCRoute",
            SourceKind::TLSRoute => "TLSRoute",
            SourceKind::DNSEndpoint => "DNSEndpoint",
            SourceKind::VirtualServer => "VirtualServer",
        }
    }
}

impl std::fmt::Display for SourceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A static record of the zone.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.type != 'A' || self.values.all(v, isIP(v) && ip(v).family() == 4)").message("spec.records[].values: an A record takes IPv4 addresses").field_path(".values").reason(Reason::FieldValueInvalid))]
#[x_kube(validation = Rule::new("self.type != 'AAAA' || self.values.all(v, isIP(v) && ip(v).family() == 6)").message("spec.records[].values: an AAAA record takes IPv6 addresses").field_path(".values").reason(Reason::FieldValueInvalid))]
#[x_kube(validation = Rule::new("self.type != 'CNAME' || size(self.values) == 1").message("spec.records[].values: a CNAME record takes exactly one target").field_path(".values").reason(Reason::FieldValueInvalid))]
#[x_kube(validation = Rule::new("self.type != 'CNAME' || self.name != '@'").message("spec.records[].name: a CNAME cannot be at the zone apex").field_path(".name").reason(Reason::FieldValueInvalid))]
pub struct StaticRecord {
    /// Owner name: `@` for the apex, a name relative to the domain (`www`, `*.apps`), or a fully
    /// qualified name inside the domain (`www.acme.example.com.`, trailing dot optional when the
    /// name ends with the domain).
    #[schemars(length(min = 1, max = 254))]
    pub name: String,

    /// Record type.
    #[serde(rename = "type")]
    pub type_: RecordKind,

    /// TTL in seconds. Default: `spec.ttl`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 604800))]
    pub ttl: Option<u32>,

    /// RDATA values in zone-file presentation format, one record each: `192.0.2.1` (A),
    /// `10 mail.example.com.` (MX), `"v=spf1 -all"` (TXT), `0 issue "letsencrypt.org"` (CAA).
    #[schemars(length(min = 1, max = 16))]
    pub values: Vec<RecordValue>,
}

/// One RDATA value in presentation format.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
#[serde(transparent)]
pub struct RecordValue(pub String);

string_schema!(RecordValue, { "type": "string", "minLength": 1, "maxLength": 1024 });

/// Record types accepted in `spec.records`.
#[derive(
    schemars::JsonSchema,
    Deserialize,
    Serialize,
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
)]
pub enum RecordKind {
    A,
    AAAA,
    CNAME,
    TXT,
    MX,
    SRV,
    CAA,
    NS,
}

/// A child zone delegated to other nameservers.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.zoneRef) != (has(self.nameservers) && size(self.nameservers) > 0)").message("spec.delegations[]: set exactly one of nameservers and zoneRef").reason(Reason::FieldValueInvalid))]
pub struct Delegation {
    /// The child zone: relative to the domain (`team-a`) or fully qualified inside it.
    #[schemars(length(min = 1, max = 254))]
    pub name: String,

    /// The child's nameservers, with addresses for glue when they are inside the child zone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 13))]
    pub nameservers: Vec<DelegatedNameserver>,

    /// Delegate to another DNSZone: its nameservers and addresses are taken from its status,
    /// and so is its DS when it is signed (`status.dnssec.ds`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone_ref: Option<ZoneRef>,

    /// DS records of a child that signs, served (and signed) at the cut so that validating
    /// resolvers can follow the chain of trust: `KEY-TAG ALGORITHM DIGEST-TYPE DIGEST`, the
    /// digest in hex (`12345 13 2 3A1F...`), or a whole DS line as `zonegate ds` prints it.
    /// With `zoneRef` they are served besides those of the child's status.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8))]
    pub ds: Vec<DsRecord>,
}

/// A DS record's data in presentation form (RFC 4034 §5.3).
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
#[serde(transparent)]
pub struct DsRecord(pub String);

string_schema!(DsRecord, { "type": "string", "minLength": 1, "maxLength": 400 });

/// A nameserver of a delegated child zone.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DelegatedNameserver {
    /// The nameserver's hostname, without the trailing dot.
    #[schemars(regex(pattern = DOMAIN_PATTERN), length(max = 253))]
    pub hostname: String,
    /// IPv4 and IPv6 addresses of the nameserver, served as glue when it is inside the child.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8))]
    #[x_kube(validation = Rule::new("self.all(a, isIP(a))").message("addresses must be IP addresses"))]
    pub addresses: Vec<IpAddress>,
}

/// A reference to another DNSZone.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ZoneRef {
    /// Namespace of the DNSZone. Default: this DNSZone's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<NamespaceName>,
    /// Name of the DNSZone.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// SOA record settings.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SoaSpec {
    /// Mailbox of the zone's administrator in DNS form (`hostmaster.acme.example.com`, the
    /// first `.` stands for `@`). Default: `hostmaster.<domain>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = HOSTNAME_PATTERN), length(max = 254))]
    pub rname: Option<String>,
    /// Seconds after which secondaries check the serial.
    #[serde(default = "default_refresh")]
    #[schemars(range(min = 60, max = 2419200))]
    pub refresh: u32,
    /// Seconds between retries of a failed refresh.
    #[serde(default = "default_retry")]
    #[schemars(range(min = 60, max = 2419200))]
    pub retry: u32,
    /// Seconds after which secondaries stop answering without a refresh.
    #[serde(default = "default_expire")]
    #[schemars(range(min = 300, max = 31536000))]
    pub expire: u32,
    /// Seconds resolvers cache a negative answer (NXDOMAIN or NODATA), RFC 2308.
    #[serde(default = "default_negative_ttl")]
    #[schemars(range(min = 0, max = 86400))]
    pub negative_ttl: u32,
}

impl Default for SoaSpec {
    fn default() -> Self {
        Self {
            rname: None,
            refresh: default_refresh(),
            retry: default_retry(),
            expire: default_expire(),
            negative_ttl: default_negative_ttl(),
        }
    }
}

fn default_refresh() -> u32 {
    3600
}
fn default_retry() -> u32 {
    600
}
fn default_expire() -> u32 {
    1209600
}
fn default_negative_ttl() -> u32 {
    60
}

/// Observed state of a DNSZone.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct DNSZoneStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// `Accepted` (the domain claim is valid and not in conflict), `Ready` (server pods are
    /// available and every nameserver has an address), `Delegated` (the parent zone returns our
    /// NS set), with `spec.transfer.notify` `SecondariesInSync` (every secondary serves the
    /// zone's serial), and with `spec.dnssec.enabled` `DNSSECReady` (the key Secret exists and
    /// holds a usable key: reason `KeyLoaded`, else `KeyMissing` or `KeyInvalid`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,

    /// The SOA serial the nameservers serve (they agree on it through the ConfigMap
    /// `<name>-serial`). Absent until a nameserver has published the zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<u32>,

    /// Records served with `serial`, SOA, NS and glue included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub records: Option<u64>,

    /// When a nameserver first served `serial`: the time the zone's current content went live.
    /// It moves only when the serial does, so a zone whose content does not change keeps it (and
    /// its status is not rewritten). For a serial published by a version of zonegate that did
    /// not record the time, the time a current nameserver first found it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_served: Option<Time>,

    /// Each nameserver with its external addresses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nameservers: Vec<NameserverStatus>,

    /// The records to create in the parent zone or at the registrar, in zone-file text: NS for
    /// every nameserver, glue A/AAAA for nameserver names inside the zone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub delegation: Vec<String>,

    /// A CoreDNS server block forwarding this zone to the cluster IPs of its nameserver
    /// Services, for cluster admins to add to the cluster's Corefile so that pods resolve the
    /// zone (docs/in-cluster.md). Set once every nameserver Service has a cluster IP.
    #[serde(
        rename = "coreDNSStanza",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub core_dns_stanza: Option<String>,

    /// Each `spec.transfer.notify` target, asked for the zone's SOA by the operator (every
    /// `--secondary-check-interval` seconds): the serial it serves, and whether that is the
    /// serial the zone's nameservers serve. The `SecondariesInSync` condition sums it up.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secondaries: Vec<SecondaryStatus>,

    /// With `spec.dnssec.enabled`, once the key Secret `<name>-dnssec` holds a usable key: its
    /// key tag, and the DS and DNSKEY records to give the registrar (docs/registrar.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dnssec: Option<DnssecStatus>,
}

/// The zone's DNSSEC key as the operator read it from the Secret `<name>-dnssec`.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct DnssecStatus {
    /// The key tag of the active key (`key.pem`).
    pub key_tag: u16,
    /// The DS record of every key (SHA-256), one zone-file line each, exactly what `zonegate
    /// ds` prints: what to paste at the registrar.
    pub ds: Vec<String>,
    /// The DNSKEY record of every key, one zone-file line each (for registrars that take the
    /// DNSKEY rather than the DS).
    pub dnskey: Vec<String>,
    /// Where a key rollover asked with the annotation `zonegate.dev/dnssec-rollover` stands,
    /// and what to do next.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollover: Option<String>,
}

/// A secondary nameserver as the operator last saw it.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct SecondaryStatus {
    /// The `spec.transfer.notify` entry, as `IP:port`.
    pub address: String,
    /// The SOA serial it serves for the zone; absent when it did not answer with one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<u32>,
    /// Whether it serves the zone's current serial (or a newer one).
    pub in_sync: bool,
}

/// A nameserver and its addresses.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct NameserverStatus {
    /// The nameserver's hostname.
    pub hostname: String,
    /// External addresses: load-balancer IPs, a load-balancer hostname, or node addresses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<String>,
}

/// An IPv4 or IPv6 address in text form.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
#[serde(transparent)]
pub struct IpAddress(pub String);

string_schema!(IpAddress, { "type": "string", "maxLength": 45 });

impl IpAddress {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for IpAddress {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl DNSZone {
    /// What the rule of who serves a domain ([`crate::domain::resolve`]) needs to know about this
    /// zone. Not marked as holding: each mode knows who holds a domain in its own way.
    pub fn claim(&self) -> crate::domain::Claim {
        let namespace = self.metadata.namespace.clone().unwrap_or_default();
        let name = self.metadata.name.clone().unwrap_or_default();
        let domain = crate::domain::normalize(&self.spec.domain);
        let delegates = self
            .spec
            .delegations
            .iter()
            .filter_map(|d| {
                let r = d.zone_ref.as_ref()?;
                let ns = r
                    .namespace
                    .as_ref()
                    .map(|n| n.0.clone())
                    .unwrap_or_else(|| namespace.clone());
                Some((
                    crate::domain::child_name(&d.name, &domain),
                    crate::domain::ZoneKey::new(ns, r.name.clone()),
                ))
            })
            .collect();
        crate::domain::Claim {
            key: crate::domain::ZoneKey::new(namespace, name),
            domain,
            created: self
                .metadata
                .creation_timestamp
                .as_ref()
                .map(|t| t.0.as_nanosecond()),
            delegates,
            holds: false,
        }
    }
}
