//! `zonegate operator`: turns each accepted DNSZone into running, reachable nameservers and tells
//! the tenant what to register at the parent zone (see `docs/operator.md`).
//!
//! The pure parts (what to create, who may claim which domain, what the status says) live in
//! [`desired`], [`tenancy`], [`policy`] and [`status`]; [`apply`] decides whether an object needs
//! a write. [`controller`] wires them to the API (watches, server-side apply, status, events),
//! [`delegated`] asks the parent zone's nameservers, [`leader`] holds the Lease and [`metrics`]
//! serves `/metrics`, `/healthz` and `/readyz`.

pub mod apply;
pub mod cli;
pub mod controller;
pub mod delegated;
pub mod desired;
pub mod leader;
pub mod metrics;
pub mod policy;
pub mod status;
pub mod tenancy;

pub use cli::{OperatorArgs, main};
pub use controller::{OperatorConfig, run};

/// The field manager of every server-side apply the operator does.
pub const FIELD_MANAGER: &str = "zonegate-operator";

/// `app.kubernetes.io/managed-by` value on every owned object.
pub const MANAGED_BY: &str = "zonegate";
/// Label keys on owned objects.
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub const LABEL_ZONE: &str = "zonegate.dev/zone";
pub const LABEL_ZONE_NAMESPACE: &str = "zonegate.dev/zone-namespace";
pub const LABEL_NAMESERVER: &str = "zonegate.dev/nameserver";
/// Annotation holding the hash of what the operator last applied to an object.
pub const ANNOTATION_HASH: &str = "zonegate.dev/applied-hash";

/// The shared ClusterRole that lets a zone's servers read Gateways (route parents live in any
/// namespace).
pub const GATEWAY_READER_CLUSTER_ROLE: &str = "zonegate-gateway-reader";

/// `namespace/name` of a DNSZone.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ZoneKey {
    pub namespace: String,
    pub name: String,
}

impl ZoneKey {
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl std::fmt::Display for ZoneKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}
