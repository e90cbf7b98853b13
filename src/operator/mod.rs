//! `zonegate operator`: turns each accepted DNSZone into running, reachable nameservers and tells
//! the tenant what to register at the parent zone (see `docs/operator.md`).
//!
//! The pure parts (what to create, who may claim which domain, what the status says) live in
//! [`desired`], [`tenancy`], [`policy`] and [`status`]; [`apply`] decides whether an object needs
//! a write. The parts that meet the API:
//!
//! - [`stores`]: the watch caches, with the one table of owned kinds;
//! - [`writer`]: server-side apply and delete of owned objects, skipping converged ones;
//! - [`reconcile`]: one DNSZone from verdict to owned objects to status and Events;
//! - [`run`]: leadership, the watches that trigger reconciles, readiness, and the sweeper that
//!   deletes what the garbage collector cannot (in place of a finalizer: see [`run`]);
//! - [`scope`]: which namespaces the operator watches and acts in (`--watch-namespace`), and the
//!   merge of several namespaces' watches into one cache;
//! - [`error`]: why a reconcile failed, and the metric label of each kind of failure.
//!
//! [`delegated`] asks the parent zone's nameservers, [`rollover`] decides the steps of a DNSSEC
//! key rollover, [`leader`] holds the Lease and [`metrics`] serves `/metrics`, `/healthz` and
//! `/readyz`.

pub mod apply;
pub mod cli;
pub mod delegated;
pub mod desired;
mod dns_query;
pub mod error;
#[cfg(test)]
mod fixtures;
pub mod leader;
pub mod metrics;
pub mod placement;
pub mod policy;
pub mod quantity;
pub mod reconcile;
pub mod rollover;
pub mod run;
pub mod scope;
pub mod secondaries;
pub mod status;
pub mod stores;
pub mod tenancy;
pub mod writer;

pub use cli::{OperatorArgs, main};
pub use run::{OperatorConfig, run};

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

pub use crate::domain::ZoneKey;
