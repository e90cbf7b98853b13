//! zonegate: per-tenant authoritative DNS zones for Kubernetes.
pub mod api;
pub mod cmd;
pub mod compile;
pub mod crdgen;
pub mod dns;
pub mod feed;
pub mod http;
pub mod metrics;
pub mod notifier;
pub mod objects;
pub mod operator;
pub mod parallel;
pub mod publish;
pub mod render;
pub mod serial;
pub mod zone;
