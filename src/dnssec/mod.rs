//! DNSSEC: zone signing keys (keys.rs): generation, PKCS#8 storage, DNSKEY/DS and signing; the
//! zone signer (sign.rs): DNSKEY/CDS/CDNSKEY, RRSIGs and the NSEC3 chain of a compiled zone;
//! the files-mode key source (source.rs): a Secret in the tree or a key in `--state-dir`; DS
//! records as text (ds.rs).
pub mod ds;
pub mod keys;
pub mod sign;
pub mod source;
