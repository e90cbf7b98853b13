//! Kubernetes API types: our `DNSZone` CRD and its offline validation.
pub mod dnszone;
pub mod grant;
pub mod validate;
pub use dnszone::*;
pub use grant::*;
