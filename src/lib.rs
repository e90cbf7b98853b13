//! zonegate: per-tenant authoritative DNS zones for Kubernetes.
pub mod api;
pub mod atomic_file;
pub mod cmd;
pub mod compile;
pub mod crdgen;
pub mod dns;
pub mod dnssec;
pub mod domain;
pub mod error;
pub mod feed;
pub mod fnv;
pub mod hosts;
pub mod http;
pub mod metrics;
pub mod notifier;
pub mod objects;
pub mod operator;
pub mod parallel;
pub mod process;
pub mod publish;
pub mod random;
pub mod render;
pub mod serial;
#[cfg(test)]
mod test_rng;
pub mod webhook;
pub mod zone;
