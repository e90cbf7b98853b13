//! zonegate: per-tenant authoritative DNS zones for Kubernetes.
pub mod api;
pub mod crdgen;
pub mod dns;
pub mod feed;
pub mod objects;
pub mod serial;
pub mod zone;
