//! DNSSEC: zone signing keys (keys.rs): generation, PKCS#8 storage, DNSKEY/DS and signing; the
//! zone signer (sign.rs): DNSKEY/CDS/CDNSKEY, RRSIGs and the NSEC3 chain of a compiled zone.
pub mod keys;
pub mod sign;
