//! DNSSEC: zone signing keys (keys.rs): generation, PKCS#8 storage, DNSKEY/DS and signing.
pub mod keys;
