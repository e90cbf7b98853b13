//! DNSSEC signing keys: generation, PKCS#8 PEM storage, the DNSKEY and DS a zone publishes, and
//! signatures in DNSSEC wire format. Pure (no Kubernetes types), on ring.
//!
//! One key per zone is a combined signing key (CSK, flags 257: zone key + secure entry point);
//! Randomness: ring's `SystemRandom` reads the kernel through the
//! `getrandom` crate 0.2, which on Linux calls getrandom(2) with `libc::syscall` (no `dlsym`,
//! no file), so the static release binary needs no `/dev/urandom` (the
//! `generates_without_dev_urandom` test checks the path it takes).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _,
};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A DNSSEC signing algorithm (RFC 8624: ECDSAP256SHA256 MUST, ED25519 RECOMMENDED).
#[derive(
    schemars::JsonSchema, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Hash, Default,
)]
pub enum Algorithm {
    /// Algorithm 13 (RFC 6605): the default, validated by every resolver.
    #[default]
    #[serde(rename = "ECDSAP256SHA256")]
    EcdsaP256Sha256,
    /// Algorithm 15 (RFC 8080): smaller signatures, deterministic.
    #[serde(rename = "ED25519")]
    Ed25519,
}

impl Algorithm {
    /// The IANA algorithm number in DNSKEY, DS and RRSIG records.
    pub fn number(self) -> u8 {
        match self {
            Algorithm::EcdsaP256Sha256 => 13,
            Algorithm::Ed25519 => 15,
        }
    }

    /// The mnemonic, as in the API (`ECDSAP256SHA256`, `ED25519`).
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::EcdsaP256Sha256 => "ECDSAP256SHA256",
            Algorithm::Ed25519 => "ED25519",
        }
    }

    /// Length of a signature in wire format.
    pub fn signature_len(self) -> usize {
        64
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a key could not be made or read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("not a PEM \"PRIVATE KEY\" block: {0}")]
    Pem(String),
    #[error(
        "not a PKCS#8 ECDSA P-256 or Ed25519 private key (the DNSSEC algorithms zonegate signs with: ECDSAP256SHA256, ED25519)"
    )]
    Pkcs8,
    #[error("key generation failed: {0}")]
    Generate(String),
}

enum Pair {
    Ecdsa(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

/// A zone's signing key: the private key, its PKCS#8 form and the public key as DNSKEY wants
/// it. Flags are always 257 (a CSK).
pub struct SigningKey {
    pair: Pair,
    pkcs8: Vec<u8>,
    /// The DNSKEY public key field: P-256 `x || y` (64 bytes), Ed25519 the 32-byte point.
    public: Vec<u8>,
    rng: SystemRandom,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("algorithm", &self.algorithm())
            .field("key_tag", &self.key_tag())
            .finish_non_exhaustive()
    }
}

/// DNSKEY flags of a CSK: Zone Key (bit 7) and Secure Entry Point (bit 15).
pub const CSK_FLAGS: u16 = 257;
/// The DNSKEY protocol field, always 3 (RFC 4034 §2.1.2).
pub const PROTOCOL: u8 = 3;
/// DS digest type SHA-256 (RFC 4509), the only one we generate (RFC 8624).
pub const DIGEST_SHA256: u8 = 2;

impl SigningKey {
    /// A fresh key from the kernel's random source.
    pub fn generate(algorithm: Algorithm) -> Result<Self, KeyError> {
        let rng = SystemRandom::new();
        let doc = match algorithm {
            Algorithm::EcdsaP256Sha256 => {
                EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            }
            Algorithm::Ed25519 => Ed25519KeyPair::generate_pkcs8(&rng),
        }
        .map_err(|e| KeyError::Generate(e.to_string()))?;
        Self::from_pkcs8_der(doc.as_ref())
    }

    /// A key from PKCS#8 DER; the algorithm is the key's (P-256 or Ed25519, PKCS#8 v1 or v2).
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, KeyError> {
        let rng = SystemRandom::new();
        if let Ok(pair) = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der, &rng) {
            // uncompressed point: 0x04 || x || y
            let public = pair.public_key().as_ref()[1..].to_vec();
            return Ok(Self {
                pair: Pair::Ecdsa(pair),
                pkcs8: der.to_vec(),
                public,
                rng,
            });
        }
        if let Ok(pair) = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der) {
            let public = pair.public_key().as_ref().to_vec();
            return Ok(Self {
                pair: Pair::Ed25519(pair),
                pkcs8: der.to_vec(),
                public,
                rng,
            });
        }
        Err(KeyError::Pkcs8)
    }

    /// A key from a PEM `PRIVATE KEY` block (what `to_pkcs8_pem` writes, and what
    /// `openssl genpkey -algorithm ed25519` or `openssl genpkey -algorithm EC -pkeyopt
    /// ec_paramgen_curve:P-256` print).
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self, KeyError> {
        const BEGIN: &str = "-----BEGIN PRIVATE KEY-----";
        const END: &str = "-----END PRIVATE KEY-----";
        let start = pem.find(BEGIN).ok_or_else(|| {
            KeyError::Pem(if pem.contains("-----BEGIN EC PRIVATE KEY-----") {
                "an \"EC PRIVATE KEY\" (SEC1) block; convert it with `openssl pkcs8 -topk8 -nocrypt`".into()
            } else {
                format!("no {BEGIN} line")
            })
        })?;
        let body = &pem[start + BEGIN.len()..];
        let end = body
            .find(END)
            .ok_or_else(|| KeyError::Pem(format!("no {END} line")))?;
        let b64: String = body[..end]
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        let der = B64
            .decode(b64.as_bytes())
            .map_err(|e| KeyError::Pem(format!("bad base64: {e}")))?;
        Self::from_pkcs8_der(&der)
    }

    /// The key as a PEM `PRIVATE KEY` block (PKCS#8), 64 base64 characters a line.
    pub fn to_pkcs8_pem(&self) -> String {
        let b64 = B64.encode(&self.pkcs8);
        let mut out = String::from("-----BEGIN PRIVATE KEY-----\n");
        for chunk in b64.as_bytes().chunks(64) {
            out.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
            out.push('\n');
        }
        out.push_str("-----END PRIVATE KEY-----\n");
        out
    }

    pub fn algorithm(&self) -> Algorithm {
        match self.pair {
            Pair::Ecdsa(_) => Algorithm::EcdsaP256Sha256,
            Pair::Ed25519(_) => Algorithm::Ed25519,
        }
    }

    /// The DNSKEY public key field.
    pub fn public_key(&self) -> &[u8] {
        &self.public
    }

    /// DNSKEY RDATA: flags 257, protocol 3, algorithm, public key.
    pub fn dnskey_rdata(&self) -> Vec<u8> {
        dnskey_rdata(CSK_FLAGS, self.algorithm().number(), &self.public)
    }

    /// The key tag (RFC 4034 Appendix B) of [`Self::dnskey_rdata`].
    pub fn key_tag(&self) -> u16 {
        key_tag(&self.dnskey_rdata())
    }

    /// DS RDATA with a SHA-256 digest, for the zone apex `zone`.
    pub fn ds_rdata(&self, zone: &str) -> Vec<u8> {
        let digest = self.ds_digest(zone);
        let mut out = Vec::with_capacity(4 + digest.len());
        out.extend_from_slice(&self.key_tag().to_be_bytes());
        out.push(self.algorithm().number());
        out.push(DIGEST_SHA256);
        out.extend_from_slice(&digest);
        out
    }

    /// SHA-256 over the owner name (canonical wire form) and the DNSKEY RDATA (RFC 4034 §5.1.4).
    pub fn ds_digest(&self, zone: &str) -> Vec<u8> {
        ds_digest(zone, &self.dnskey_rdata())
    }

    /// `zone. TTL IN DNSKEY 257 3 ALG BASE64`, one line.
    pub fn dnskey_presentation(&self, zone: &str, ttl: u32) -> String {
        format!(
            "{} {ttl} IN DNSKEY {CSK_FLAGS} {PROTOCOL} {} {}",
            fqdn(zone),
            self.algorithm().number(),
            B64.encode(&self.public)
        )
    }

    /// `zone. TTL IN DS TAG ALG 2 HEX`, one line: what a tenant gives the registrar.
    pub fn ds_presentation(&self, zone: &str, ttl: u32) -> String {
        format!("{} {ttl} IN DS {}", fqdn(zone), self.ds_text(zone))
    }

    /// The DS RDATA in presentation form (`TAG ALG 2 HEX`), for a CDS or a registrar form.
    pub fn ds_text(&self, zone: &str) -> String {
        format!(
            "{} {} {DIGEST_SHA256} {}",
            self.key_tag(),
            self.algorithm().number(),
            hex_upper(&self.ds_digest(zone))
        )
    }

    /// A signature over `data` in DNSSEC wire format: ECDSA `r || s` (64 bytes, RFC 6605 §4),
    /// Ed25519 the 64-byte signature (RFC 8080 §3).
    pub fn sign(&self, data: &[u8]) -> Vec<u8> {
        match &self.pair {
            Pair::Ecdsa(p) => p
                .sign(&self.rng, data)
                .expect("ECDSA signing with a valid key")
                .as_ref()
                .to_vec(),
            Pair::Ed25519(p) => p.sign(data).as_ref().to_vec(),
        }
    }
}

/// DNSKEY RDATA from its fields.
pub fn dnskey_rdata(flags: u16, algorithm: u8, public: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + public.len());
    out.extend_from_slice(&flags.to_be_bytes());
    out.push(PROTOCOL);
    out.push(algorithm);
    out.extend_from_slice(public);
    out
}

/// The SHA-256 DS digest of DNSKEY RDATA at `zone` (RFC 4034 §5.1.4, RFC 4509).
pub fn ds_digest(zone: &str, dnskey_rdata: &[u8]) -> Vec<u8> {
    let mut data = name_wire(zone);
    data.extend_from_slice(dnskey_rdata);
    ring::digest::digest(&ring::digest::SHA256, &data)
        .as_ref()
        .to_vec()
}

/// RFC 4034 Appendix B key tag of DNSKEY RDATA (algorithm 1 excepted, which we never use).
pub fn key_tag(rdata: &[u8]) -> u16 {
    let mut ac: u32 = 0;
    for (i, b) in rdata.iter().enumerate() {
        ac += if i & 1 == 1 {
            u32::from(*b)
        } else {
            u32::from(*b) << 8
        };
    }
    ac += (ac >> 16) & 0xFFFF;
    (ac & 0xFFFF) as u16
}

/// Verifies a wire-format signature with the public key of a DNSKEY (tests, and a self-check
/// before a key is used).
pub fn verify(algorithm: Algorithm, public: &[u8], data: &[u8], signature: &[u8]) -> bool {
    use ring::signature::{ECDSA_P256_SHA256_FIXED, ED25519, UnparsedPublicKey};
    match algorithm {
        Algorithm::EcdsaP256Sha256 => {
            let mut point = Vec::with_capacity(65);
            point.push(4);
            point.extend_from_slice(public);
            UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point)
                .verify(data, signature)
                .is_ok()
        }
        Algorithm::Ed25519 => UnparsedPublicKey::new(&ED25519, public)
            .verify(data, signature)
            .is_ok(),
    }
}

fn fqdn(zone: &str) -> String {
    let z = zone.trim_end_matches('.').to_ascii_lowercase();
    format!("{z}.")
}

/// A name in canonical (lowercase, uncompressed) wire form; `""` or `"."` is the root.
pub fn name_wire(name: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.len() + 2);
    for label in name
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
    {
        out.push(label.len() as u8);
        out.extend(label.bytes().map(|b| b.to_ascii_lowercase()));
    }
    out.push(0);
    out
}

fn hex_upper(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02X}");
    }
    s
}

/// The TTL of the DS and DNSKEY lines given to the registrar (`zonegate ds`,
/// `status.dnssec`): the registry picks its own TTL, this is only the line's field.
pub const DS_TTL: u32 = 3600;

/// The Secret `<zone>-dnssec` key holding the active key.
pub const ACTIVE_KEY: &str = "key.pem";
/// The optional Secret key holding a key being rolled in: published and signing too.
pub const NEXT_KEY: &str = "next.pem";

/// A zone's keys as the Secret `<zone>-dnssec` holds them: the active key (`key.pem`) and
/// optionally the next one (`next.pem`), both published in DNSKEY, CDS and CDNSKEY and both
/// signing (CSK double-signature rollover, RFC 6781 §4.1.2, RFC 7583).
#[derive(Debug)]
pub struct ZoneKeys {
    pub active: SigningKey,
    pub next: Option<SigningKey>,
}

impl ZoneKeys {
    /// The keys from Secret data (`key.pem` required, `next.pem` optional; other entries are
    /// ignored). `what` names the source in errors, e.g. `Secret acme/acme-dnssec`.
    pub fn from_entries<'a>(
        what: &str,
        mut get: impl FnMut(&str) -> Option<&'a [u8]>,
    ) -> Result<Self, String> {
        let parse = |name: &str, bytes: &[u8]| -> Result<SigningKey, String> {
            let text = std::str::from_utf8(bytes)
                .map_err(|_| format!("{what}: {name} is not UTF-8 PEM text"))?;
            SigningKey::from_pkcs8_pem(text).map_err(|e| format!("{what}: {name}: {e}"))
        };
        let active = get(ACTIVE_KEY).ok_or_else(|| {
            format!("{what}: no {ACTIVE_KEY} (the active DNSSEC key, PKCS#8 PEM)")
        })?;
        let active = parse(ACTIVE_KEY, active)?;
        let next = match get(NEXT_KEY) {
            Some(bytes) if !bytes.iter().all(u8::is_ascii_whitespace) => {
                Some(parse(NEXT_KEY, bytes)?)
            }
            _ => None,
        };
        if let Some(n) = &next
            && n.public_key() == active.public_key()
        {
            return Err(format!(
                "{what}: {NEXT_KEY} is the same key as {ACTIVE_KEY}"
            ));
        }
        Ok(Self { active, next })
    }

    /// The keys from a directory holding `key.pem` and maybe `next.pem`: the Secret as the
    /// kubelet mounts it (`serve --dnssec-keys DIR`).
    pub fn from_dir(dir: &std::path::Path) -> Result<Self, String> {
        let read = |name: &str| -> Result<Option<Vec<u8>>, String> {
            match std::fs::read(dir.join(name)) {
                Ok(b) => Ok(Some(b)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(format!("{}: {e}", dir.join(name).display())),
            }
        };
        let active = read(ACTIVE_KEY)?;
        let next = read(NEXT_KEY)?;
        Self::from_entries(&dir.display().to_string(), |name| match name {
            ACTIVE_KEY => active.as_deref(),
            NEXT_KEY => next.as_deref(),
            _ => None,
        })
    }

    /// Every key, active first.
    pub fn all(&self) -> impl Iterator<Item = &SigningKey> {
        std::iter::once(&self.active).chain(self.next.as_ref())
    }

    /// The DS lines of every key (what `status.dnssec.ds` and `zonegate ds` print).
    pub fn ds_presentation(&self, zone: &str, ttl: u32) -> Vec<String> {
        self.all().map(|k| k.ds_presentation(zone, ttl)).collect()
    }

    /// The DNSKEY lines of every key (`status.dnssec.dnskey`).
    pub fn dnskey_presentation(&self, zone: &str, ttl: u32) -> Vec<String> {
        self.all()
            .map(|k| k.dnskey_presentation(zone, ttl))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// PKCS#8 v1 of a P-256 key from its private scalar and public point (the form ring writes).
    fn p256_pkcs8(private: &[u8], public_xy: &[u8]) -> Vec<u8> {
        let mut der =
            hex("308187020100301306072a8648ce3d020106082a8648ce3d030107046d306b0201010420");
        der.extend_from_slice(private);
        der.extend_from_slice(&hex("a144034200"));
        der.push(4);
        der.extend_from_slice(public_xy);
        der
    }

    fn ed25519_pkcs8(seed: &[u8]) -> Vec<u8> {
        let mut der = hex("302e020100300506032b657004220420");
        der.extend_from_slice(seed);
        der
    }

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// RFC 6605 §6.1: the example.net. P-256 DNSKEY has key tag 55648 and its SHA-256 DS, and
    /// the RFC's RRSIG over `www.example.net. A 192.0.2.1` verifies with it. (The RFC's private
    /// key does not give that public key, so signing is checked with a generated key.)
    #[test]
    fn rfc6605_example_dnskey_gives_its_tag_ds_and_verifies_its_rrsig() {
        let public = B64
            .decode("GojIhhXUN/u4v54ZQqGSnyhWJwaubCvTmeexv7bR6edbkrSqQpF64cYbcB7wNcP+e+MAnLr+Wi9xMWyQLc8NAA==")
            .unwrap();
        let rdata = dnskey_rdata(257, 13, &public);
        assert_eq!(key_tag(&rdata), 55648);
        assert_eq!(
            hex_upper(&ds_digest("example.net.", &rdata)),
            "B4C8C1FE2E7477127B27115656AD6256F424625BF5C1E2770CE6D6E37DF61D17"
        );
        let mut data = Vec::new();
        data.extend_from_slice(&1u16.to_be_bytes()); // type covered A
        data.push(13);
        data.push(3);
        data.extend_from_slice(&3600u32.to_be_bytes());
        data.extend_from_slice(&1284026679u32.to_be_bytes()); // 20100909100439
        data.extend_from_slice(&1281607479u32.to_be_bytes()); // 20100812100439
        data.extend_from_slice(&55648u16.to_be_bytes());
        data.extend_from_slice(&name_wire("example.net"));
        data.extend_from_slice(&name_wire("www.example.net"));
        data.extend_from_slice(&1u16.to_be_bytes());
        data.extend_from_slice(&1u16.to_be_bytes());
        data.extend_from_slice(&3600u32.to_be_bytes());
        data.extend_from_slice(&4u16.to_be_bytes());
        data.extend_from_slice(&[192, 0, 2, 1]);
        let sig = B64
            .decode("qx6wLYqmh+l9oCKTN6qIc+bw6ya+KJ8oMz0YP107epXAyGmt+3SNruPFKG7tZoLBLlUzGGus7ZwmwWep666VCw==")
            .unwrap();
        assert!(verify(Algorithm::EcdsaP256Sha256, &public, &data, &sig));
        let last = data.len() - 1;
        data[last] = 2;
        assert!(!verify(Algorithm::EcdsaP256Sha256, &public, &data, &sig));
    }

    /// A PKCS#8 document whose public point is not the private key's is refused (ring checks
    /// the pair): the RFC 6605 private key with the RFC's DNSKEY, then with its real point.
    #[test]
    fn a_mismatched_key_pair_is_refused() {
        let private = B64
            .decode("GU6SnQ/Ojn+PhPWc9dgzqBFrmgBgPB8Bb3bwzMDVXPI=")
            .unwrap();
        let rfc_public = B64
            .decode("GojIhhXUN/u4v54ZQqGSnyhWJwaubCvTmeexv7bR6edbkrSqQpF64cYbcB7wNcP+e+MAnLr+Wi9xMWyQLc8NAA==")
            .unwrap();
        let own_public = B64
            .decode("b6hFXW86fWtiTOX3GgSK/rox/SY1xhk7ocXFGvnaSe+fIMiA+yjs01Pl+Ozkh+74f5H8LPFpzmJXgBKipI4JrA==")
            .unwrap();
        assert_eq!(
            SigningKey::from_pkcs8_der(&p256_pkcs8(&private, &rfc_public)).unwrap_err(),
            KeyError::Pkcs8
        );
        let key = SigningKey::from_pkcs8_der(&p256_pkcs8(&private, &own_public)).unwrap();
        assert_eq!(key.public_key(), &own_public[..]);
        assert!(verify(key.algorithm(), &own_public, b"x", &key.sign(b"x")));
    }

    /// RFC 8080 §6.1: the example.com. Ed25519 key, key tag 3613, its DS, and (Ed25519 being
    /// deterministic) the exact RRSIG signature of the example MX RRset.
    #[test]
    fn rfc8080_example_key_gives_its_tag_ds_and_signature() {
        let seed = B64
            .decode("ODIyNjAzODQ2MjgwODAxMjI2NDUxOTAyMDQxNDIyNjI=")
            .unwrap();
        let key = SigningKey::from_pkcs8_der(&ed25519_pkcs8(&seed)).unwrap();
        assert_eq!(key.algorithm(), Algorithm::Ed25519);
        assert_eq!(
            key.dnskey_presentation("example.com", 3600),
            "example.com. 3600 IN DNSKEY 257 3 15 l02Woi0iS8Aa25FQkUd9RMzZHJpBoRQwAQEX1SxZJA4="
        );
        assert_eq!(key.key_tag(), 3613);
        assert_eq!(
            key.ds_presentation("example.com", 3600),
            "example.com. 3600 IN DS 3613 15 2 3AA5AB37EFCE57F737FC1627013FEE07BDF241BD10F3B1964AB55C78E79A304B"
        );
        // RRSIG RDATA minus the signature, then the RR in canonical form (RFC 4034 §3.1.8.1)
        let mut data = Vec::new();
        data.extend_from_slice(&15u16.to_be_bytes()); // type covered MX
        data.push(15); // algorithm
        data.push(2); // labels
        data.extend_from_slice(&3600u32.to_be_bytes());
        data.extend_from_slice(&1440021600u32.to_be_bytes());
        data.extend_from_slice(&1438207200u32.to_be_bytes());
        data.extend_from_slice(&3613u16.to_be_bytes());
        data.extend_from_slice(&name_wire("example.com"));
        data.extend_from_slice(&name_wire("example.com"));
        data.extend_from_slice(&15u16.to_be_bytes());
        data.extend_from_slice(&1u16.to_be_bytes());
        data.extend_from_slice(&3600u32.to_be_bytes());
        let mx = [&10u16.to_be_bytes()[..], &name_wire("mail.example.com")].concat();
        data.extend_from_slice(&(mx.len() as u16).to_be_bytes());
        data.extend_from_slice(&mx);
        let sig = key.sign(&data);
        assert_eq!(
            B64.encode(&sig),
            "oL9krJun7xfBOIWcGHi7mag5/hdZrKWw15jPGrHpjQeRAvTdszaPD+QLs3fx8A4M3e23mRZ9VrbpMngwcrqNAg=="
        );
        assert!(verify(Algorithm::Ed25519, key.public_key(), &data, &sig));
    }

    #[test]
    fn generated_keys_round_trip_through_pem_and_sign() {
        for alg in [Algorithm::EcdsaP256Sha256, Algorithm::Ed25519] {
            let key = SigningKey::generate(alg).unwrap();
            assert_eq!(key.algorithm(), alg);
            let pem = key.to_pkcs8_pem();
            assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{pem}");
            assert!(pem.ends_with("-----END PRIVATE KEY-----\n"), "{pem}");
            assert!(pem.lines().all(|l| l.len() <= 64));
            let back = SigningKey::from_pkcs8_pem(&pem).unwrap();
            assert_eq!(back.algorithm(), alg);
            assert_eq!(back.public_key(), key.public_key());
            assert_eq!(back.key_tag(), key.key_tag());
            assert_eq!(back.to_pkcs8_pem(), pem);
            let sig = back.sign(b"some rrset");
            assert_eq!(sig.len(), alg.signature_len());
            assert!(verify(alg, key.public_key(), b"some rrset", &sig));
            assert_eq!(
                key.dnskey_rdata()[..4],
                [1, 1, 3, alg.number()],
                "flags 257, protocol 3"
            );
            let ds = key.ds_presentation("Acme.Example.COM", 300);
            assert!(
                ds.starts_with(&format!(
                    "acme.example.com. 300 IN DS {} {} 2 ",
                    key.key_tag(),
                    alg.number()
                )),
                "{ds}"
            );
            assert_eq!(ds.len() - ds.rfind(' ').unwrap() - 1, 64, "SHA-256 in hex");
        }
        let a = SigningKey::generate(Algorithm::Ed25519).unwrap();
        let b = SigningKey::generate(Algorithm::Ed25519).unwrap();
        assert_ne!(a.public_key(), b.public_key());
    }

    /// Keys openssl writes (`openssl genpkey`), PKCS#8 v1 for Ed25519 with the EC parameters
    /// for P-256, are read with the algorithm they are.
    #[test]
    fn reads_openssl_keys() {
        let ed = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            B64.encode(ed25519_pkcs8(&[7u8; 32]))
        );
        let key = SigningKey::from_pkcs8_pem(&ed).unwrap();
        assert_eq!(key.algorithm(), Algorithm::Ed25519);
        let Ok(out) = std::process::Command::new("openssl")
            .args([
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
            ])
            .output()
        else {
            return; // no openssl here: the Ed25519 case above still ran
        };
        let pem = String::from_utf8(out.stdout).unwrap();
        let key = SigningKey::from_pkcs8_pem(&pem).unwrap();
        assert_eq!(key.algorithm(), Algorithm::EcdsaP256Sha256);
        assert!(verify(
            key.algorithm(),
            key.public_key(),
            b"x",
            &key.sign(b"x")
        ));
    }

    #[test]
    fn rejects_what_is_not_a_usable_key() {
        assert!(matches!(
            SigningKey::from_pkcs8_pem("hello"),
            Err(KeyError::Pem(_))
        ));
        let sec1 = "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n";
        let e = SigningKey::from_pkcs8_pem(sec1).unwrap_err();
        assert!(e.to_string().contains("openssl pkcs8 -topk8"), "{e}");
        let junk = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        assert_eq!(
            SigningKey::from_pkcs8_pem(junk).unwrap_err(),
            KeyError::Pkcs8
        );
        let bad = "-----BEGIN PRIVATE KEY-----\n!!\n-----END PRIVATE KEY-----\n";
        assert!(matches!(
            SigningKey::from_pkcs8_pem(bad),
            Err(KeyError::Pem(_))
        ));
    }

    #[test]
    fn algorithm_serde_names_and_default() {
        assert_eq!(Algorithm::default(), Algorithm::EcdsaP256Sha256);
        assert_eq!(
            serde_json::to_string(&Algorithm::EcdsaP256Sha256).unwrap(),
            "\"ECDSAP256SHA256\""
        );
        assert_eq!(
            serde_json::from_str::<Algorithm>("\"ED25519\"").unwrap(),
            Algorithm::Ed25519
        );
        assert!(serde_json::from_str::<Algorithm>("\"RSASHA1\"").is_err());
    }

    #[test]
    fn key_tag_and_name_wire_basics() {
        assert_eq!(name_wire("."), vec![0]);
        assert_eq!(name_wire("A.b."), vec![1, b'a', 1, b'b', 0]);
        // odd length: the last byte counts as a high byte
        assert_eq!(key_tag(&[0x01, 0x02, 0x03]), 0x0402);
        assert_eq!(key_tag(&[0xff, 0xff, 0xff, 0xff]), 0xffff);
    }

    /// getrandom(2) through the syscall works where ring generates keys: run the generation in
    /// a thread after checking the syscall itself answers (no file is opened for it; see the
    /// module comment for why that holds in a static binary).
    #[test]
    fn generates_without_dev_urandom() {
        let mut buf = [0u8; 8];
        // SAFETY: writes at most 8 bytes into buf.
        let n = unsafe { libc::syscall(libc::SYS_getrandom, buf.as_mut_ptr(), buf.len(), 0) };
        assert_eq!(n, 8, "getrandom(2) is available");
        SigningKey::generate(Algorithm::EcdsaP256Sha256).unwrap();
    }

    #[test]
    fn zone_keys_from_secret_entries_and_a_mounted_dir() {
        let a = SigningKey::generate(Algorithm::EcdsaP256Sha256).unwrap();
        let b = SigningKey::generate(Algorithm::Ed25519).unwrap();
        let (pa, pb) = (a.to_pkcs8_pem(), b.to_pkcs8_pem());
        let one = ZoneKeys::from_entries("Secret acme/acme-dnssec", |n| {
            (n == ACTIVE_KEY).then_some(pa.as_bytes())
        })
        .unwrap();
        assert!(one.next.is_none());
        assert_eq!(
            one.ds_presentation("acme.example.com", 3600),
            vec![a.ds_presentation("acme.example.com", 3600)]
        );

        let path = std::env::temp_dir().join(format!("zg-dnssec-keys-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        struct Dir(std::path::PathBuf);
        impl Dir {
            fn path(&self) -> &std::path::Path {
                &self.0
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
        let dir = Dir(path);
        let e = ZoneKeys::from_dir(dir.path()).unwrap_err();
        assert!(e.contains("no key.pem"), "{e}");
        std::fs::write(dir.path().join("key.pem"), &pa).unwrap();
        std::fs::write(dir.path().join("next.pem"), &pb).unwrap();
        let two = ZoneKeys::from_dir(dir.path()).unwrap();
        assert_eq!(two.active.key_tag(), a.key_tag());
        assert_eq!(two.next.as_ref().unwrap().key_tag(), b.key_tag());
        assert_eq!(two.dnskey_presentation("acme.example.com", 60).len(), 2);

        std::fs::write(dir.path().join("next.pem"), &pa).unwrap();
        let e = ZoneKeys::from_dir(dir.path()).unwrap_err();
        assert!(e.contains("same key"), "{e}");
        std::fs::write(dir.path().join("next.pem"), "").unwrap();
        assert!(
            ZoneKeys::from_dir(dir.path()).unwrap().next.is_none(),
            "an empty next.pem is no key"
        );
        std::fs::write(dir.path().join("key.pem"), "junk").unwrap();
        let e = ZoneKeys::from_dir(dir.path()).unwrap_err();
        assert!(e.contains("key.pem: not a PEM"), "{e}");
    }
}
