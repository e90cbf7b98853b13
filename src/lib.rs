//! zonegate: per-tenant authoritative DNS zones for Kubernetes.
pub mod api;
pub mod crdgen;
pub mod objects;
pub mod zone;
