//! The certificate of the encrypted listeners (DoT, DoH, DoQ): loaded from PEM files, served
//! through a `ResolvesServerCert` backed by `ArcSwap`, and reloaded when the files change (as
//! cert-manager rewrites a Secret volume), without a restart and without a lock on handshakes.

use arc_swap::ArcSwap;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// How often the certificate files are re-read (they are small; a changed content is parsed).
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(2);

/// A certificate and key as loaded, with what the metrics and logs say about it.
pub struct Loaded {
    pub key: Arc<CertifiedKey>,
    /// notAfter of the leaf certificate, as unix seconds.
    pub not_after: i64,
    /// The leaf's serial number, hex.
    pub serial: String,
}

/// Reads a PEM certificate chain and a PEM private key (PKCS#8, PKCS#1 or SEC1) and checks that
/// they belong together.
pub fn load(cert: &Path, key: &Path) -> Result<Loaded, String> {
    let cert_pem =
        std::fs::read(cert).map_err(|e| format!("--tls-cert {}: {e}", cert.display()))?;
    let key_pem = std::fs::read(key).map_err(|e| format!("--tls-key {}: {e}", key.display()))?;
    parse(&cert_pem, &key_pem)
}

/// [`load`] on bytes already read.
pub fn parse(cert_pem: &[u8], key_pem: &[u8]) -> Result<Loaded, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("--tls-cert: not a PEM certificate chain: {e}"))?;
    let Some(leaf) = chain.first() else {
        return Err("--tls-cert: no certificate in the file".into());
    };
    let (serial, not_after) =
        leaf_facts(leaf).ok_or("--tls-cert: the first certificate is not valid X.509 DER")?;
    let key = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|e| format!("--tls-key: not a PEM private key: {e}"))?;
    let signer = rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|e| format!("--tls-key: unsupported key: {e}"))?;
    let certified = CertifiedKey::new(chain, signer);
    certified
        .keys_match()
        .map_err(|e| format!("--tls-cert and --tls-key do not belong together: {e}"))?;
    Ok(Loaded {
        key: Arc::new(certified),
        not_after,
        serial,
    })
}

/// The certificate every handshake gets: the one loaded last. Open connections keep the one
/// they were made with.
#[derive(Debug)]
pub struct CertResolver {
    current: ArcSwap<CertifiedKey>,
}

impl CertResolver {
    pub fn new(key: Arc<CertifiedKey>) -> Self {
        Self {
            current: ArcSwap::new(key),
        }
    }

    pub fn store(&self, key: Arc<CertifiedKey>) {
        self.current.store(key);
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

/// Watches the two files and swaps a new certificate in when their content changes and parses;
/// a broken or half-written pair is reported once and the old certificate kept. Calls
/// `on_load` with each certificate taken (the first one included).
pub fn spawn_reloader(
    cert: PathBuf,
    key: PathBuf,
    first: (Vec<u8>, Vec<u8>),
    resolver: Arc<CertResolver>,
    on_load: impl Fn(&Loaded) + Send + 'static,
) {
    tokio::spawn(async move {
        let mut last = first;
        let mut last_error: Option<String> = None;
        let mut tick = tokio::time::interval(RELOAD_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            // a Secret volume swaps a symlink: reading the paths always gets one whole version
            let (Ok(c), Ok(k)) = (tokio::fs::read(&cert).await, tokio::fs::read(&key).await) else {
                continue;
            };
            if (&c, &k) == (&last.0, &last.1) {
                continue;
            }
            match parse(&c, &k) {
                Ok(loaded) => {
                    resolver.store(loaded.key.clone());
                    on_load(&loaded);
                    tracing::info!(serial = %loaded.serial, not_after = loaded.not_after, "TLS certificate reloaded");
                    last = (c, k);
                    last_error = None;
                }
                Err(e) => {
                    // cert and key are rewritten one after the other: retry, say it once
                    if last_error.as_deref() != Some(&e) {
                        tracing::warn!(error = %e, "new TLS certificate files not usable yet; serving the previous certificate");
                        last_error = Some(e);
                    }
                }
            }
        }
    });
}

/// (serial as hex, notAfter as unix seconds) of a DER certificate.
fn leaf_facts(cert: &[u8]) -> Option<(String, i64)> {
    let (tag, cert_body, _) = der(cert)?;
    if tag != 0x30 {
        return None;
    }
    let (tag, tbs, _) = der(cert_body)?;
    if tag != 0x30 {
        return None;
    }
    let mut rest = tbs;
    let (mut tag, mut value, mut next) = der(rest)?;
    if tag == 0xa0 {
        // [0] EXPLICIT version
        rest = next;
        (tag, value, next) = der(rest)?;
    }
    if tag != 0x02 {
        return None;
    }
    let serial: String = value.iter().map(|b| format!("{b:02X}")).collect();
    rest = next;
    let (_sig_alg, _, rest) = der(rest)?;
    let (_issuer, _, rest) = der(rest)?;
    let (tag, validity, _) = der(rest)?;
    if tag != 0x30 {
        return None;
    }
    let (_, _, after_before) = der(validity)?;
    let (tag, not_after, _) = der(after_before)?;
    Some((serial, der_time(tag, not_after)?))
}

/// One DER TLV: (tag, value, what follows).
fn der(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let tag = *b.first()?;
    let first = *b.get(1)? as usize;
    let (len, header) = if first < 0x80 {
        (first, 2)
    } else {
        let n = first & 0x7f;
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | *b.get(2 + i)? as usize;
        }
        (len, 2 + n)
    };
    let end = header.checked_add(len)?;
    Some((tag, b.get(header..end)?, b.get(end..)?))
}

/// UTCTime (YYMMDDHHMMSSZ) or GeneralizedTime (YYYYMMDDHHMMSSZ) as unix seconds.
fn der_time(tag: u8, v: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(v).ok()?.strip_suffix('Z')?;
    let (year, rest) = match tag {
        0x17 => {
            let yy: i64 = s.get(..2)?.parse().ok()?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, s.get(2..)?)
        }
        0x18 => (s.get(..4)?.parse().ok()?, s.get(4..)?),
        _ => return None,
    };
    if rest.len() != 10 || !rest.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let n = |i: usize| rest[i..i + 2].parse::<i64>().unwrap_or(0);
    let (month, day, h, m, sec) = (n(0), n(2), n(4), n(6), n(8));
    // days from civil (H. Hinnant)
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + m * 60 + sec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_times_are_unix_seconds() {
        assert_eq!(der_time(0x17, b"700101000000Z"), Some(0));
        assert_eq!(der_time(0x17, b"261202070000Z"), Some(1_796_194_800));
        assert_eq!(der_time(0x18, b"20261202070000Z"), Some(1_796_194_800));
        assert_eq!(der_time(0x18, b"20000229120000Z"), Some(951_825_600));
        assert_eq!(der_time(0x17, b"2612020700Z"), None);
        assert_eq!(der_time(0x04, b"261202070000Z"), None);
    }

    #[test]
    fn broken_der_is_rejected_not_panicking() {
        for b in [
            &[][..],
            &[0x30],
            &[0x30, 0x85, 1, 1, 1, 1, 1],
            &[0x30, 0x03, 0x30, 0x01],
        ] {
            assert!(leaf_facts(b).is_none());
        }
        assert!(parse(b"junk", b"junk").is_err());
    }
}
