//! Kubernetes API types: our `DNSZone` CRD.
pub mod dnszone;
pub use dnszone::*;
