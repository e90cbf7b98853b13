//! Where a zone's DNSSEC keys come from. Files mode (`serve --manifests`, `render`): the
//! `v1 Secret` `<zone>-dnssec` of the zone's namespace in the manifest tree when there is one,
//! else a key generated once into `--state-dir` (`dnssec/<namespace>/<zone>/key.pem`, mode
//! 0600) and read from there afterwards; neither is an error naming the zone. Cluster mode: the
//! operator creates the same Secret with [`new_secret_data`], the zone's pods mount it and read
//! it with `ZoneKeys::from_dir` (`serve --dnssec-keys`), and both check it with
//! [`check_algorithm`].

use super::keys::{ACTIVE_KEY, Algorithm, SigningKey, ZoneKeys};
use crate::objects::store::ObjectStore;
use std::path::{Path, PathBuf};

/// The name of a zone's key Secret: `<zone>-dnssec`.
pub fn secret_name(zone: &str) -> String {
    format!("{zone}-dnssec")
}

/// The directory under `state_dir` holding a generated key of the zone `namespace/name`.
pub fn state_key_dir(state_dir: &Path, namespace: &str, name: &str) -> PathBuf {
    state_dir.join("dnssec").join(namespace).join(name)
}

/// The keys of DNSZone `namespace/name` signing with `algorithm`, and where they came from
/// (`Secret acme/acme-dnssec`, or the key file).
pub fn files_mode_keys(
    namespace: &str,
    name: &str,
    algorithm: Algorithm,
    store: &ObjectStore,
    state_dir: Option<&Path>,
) -> Result<(ZoneKeys, String), String> {
    let secret = secret_name(name);
    let (keys, from) = if let Some(s) = store.secrets.get(&(namespace.to_string(), secret.clone()))
    {
        let what = format!("Secret {namespace}/{secret}");
        let keys = ZoneKeys::from_entries(&what, |k| s.data.get(k).map(Vec::as_slice))?;
        (keys, what)
    } else if let Some(state) = state_dir {
        let dir = state_key_dir(state, namespace, name);
        let file = dir.join(ACTIVE_KEY);
        if !file.exists() {
            generate_into(&dir, algorithm)?;
            tracing::info!(
                zone = %format!("{namespace}/{name}"),
                file = %file.display(),
                %algorithm,
                "generated a DNSSEC key"
            );
        }
        (ZoneKeys::from_dir(&dir)?, file.display().to_string())
    } else {
        return Err(format!(
            "DNSZone {namespace}/{name}: spec.dnssec.enabled needs a signing key: a v1 Secret \
                 {secret} in namespace {namespace} in the manifest tree (key.pem: a PKCS#8 PEM \
                 private key), or --state-dir DIR to generate one into"
        ));
    };
    check_algorithm(namespace, name, &from, &keys, algorithm)?;
    Ok((keys, from))
}

/// Refuses keys of another algorithm than `spec.dnssec.algorithm` of DNSZone `namespace/name`
/// (`from` names where they were read).
pub fn check_algorithm(
    namespace: &str,
    name: &str,
    from: &str,
    keys: &ZoneKeys,
    algorithm: Algorithm,
) -> Result<(), String> {
    for k in keys.all() {
        if k.algorithm() != algorithm {
            return Err(format!(
                "DNSZone {namespace}/{name}: {from} holds an {} key, spec.dnssec.algorithm is {algorithm}",
                k.algorithm()
            ));
        }
    }
    Ok(())
}

/// The `data` of a new key Secret `<zone>-dnssec` (entry name -> bytes): a fresh `key.pem` of
/// `algorithm`, the form [`ZoneKeys::from_entries`] reads back.
pub fn new_secret_data(algorithm: Algorithm) -> Result<Vec<(&'static str, Vec<u8>)>, String> {
    let key = SigningKey::generate(algorithm).map_err(|e| e.to_string())?;
    Ok(vec![(ACTIVE_KEY, key.to_pkcs8_pem().into_bytes())])
}

/// Writes a new key to `dir/key.pem`, readable only by its owner.
fn generate_into(dir: &Path, algorithm: Algorithm) -> Result<(), String> {
    use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
    let key = SigningKey::generate(algorithm).map_err(|e| e.to_string())?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    let tmp = dir.join(".key.pem.tmp");
    let write = || -> std::io::Result<()> {
        use std::io::Write as _;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(key.to_pkcs8_pem().as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, dir.join(ACTIVE_KEY))
    };
    write().map_err(|e| format!("{}: {e}", dir.join(ACTIVE_KEY).display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objects::secret::Secret;
    use std::sync::Arc;

    struct Dir(PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn temp(tag: &str) -> Dir {
        let p = std::env::temp_dir().join(format!("zg-dnssec-src-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        Dir(p)
    }

    #[test]
    fn secret_in_the_tree_wins_then_a_generated_key_is_kept() {
        let key = SigningKey::generate(Algorithm::Ed25519).unwrap();
        let mut store = ObjectStore::default();
        let dir = temp("a");
        // nothing: a clear error naming the zone and both ways out
        let e = files_mode_keys("acme", "acme", Algorithm::Ed25519, &store, None).unwrap_err();
        assert!(
            e.starts_with("DNSZone acme/acme: spec.dnssec.enabled"),
            "{e}"
        );
        assert!(
            e.contains("Secret acme-dnssec") && e.contains("--state-dir"),
            "{e}"
        );

        // state dir: generated once, mode 0600, the same key the next time
        let (k1, from) =
            files_mode_keys("acme", "acme", Algorithm::Ed25519, &store, Some(&dir.0)).unwrap();
        assert!(from.ends_with("dnssec/acme/acme/key.pem"), "{from}");
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&from).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let (k2, _) =
            files_mode_keys("acme", "acme", Algorithm::Ed25519, &store, Some(&dir.0)).unwrap();
        assert_eq!(k1.active.public_key(), k2.active.public_key());
        // a different algorithm asked for than the key has
        let e = files_mode_keys(
            "acme",
            "acme",
            Algorithm::EcdsaP256Sha256,
            &store,
            Some(&dir.0),
        )
        .unwrap_err();
        assert!(e.contains("holds an ED25519 key"), "{e}");

        // a Secret in the tree comes first
        let mut s = Secret {
            namespace: "acme".into(),
            name: "acme-dnssec".into(),
            ..Default::default()
        };
        s.data
            .insert("key.pem".into(), key.to_pkcs8_pem().into_bytes());
        store
            .secrets
            .insert(("acme".into(), "acme-dnssec".into()), Arc::new(s));
        let (k3, from) =
            files_mode_keys("acme", "acme", Algorithm::Ed25519, &store, Some(&dir.0)).unwrap();
        assert_eq!(from, "Secret acme/acme-dnssec");
        assert_eq!(k3.active.public_key(), key.public_key());
        // a Secret of another namespace is not the zone's
        let e = files_mode_keys("other", "acme", Algorithm::Ed25519, &store, None).unwrap_err();
        assert!(e.contains("DNSZone other/acme"), "{e}");
    }

    /// What the operator puts in a new key Secret reads back as one key of the algorithm
    /// asked for, a different one each time.
    #[test]
    fn new_secret_data_reads_back_as_one_key() {
        for alg in [Algorithm::EcdsaP256Sha256, Algorithm::Ed25519] {
            let read = |data: &[(&str, Vec<u8>)]| {
                ZoneKeys::from_entries("Secret acme/acme-dnssec", |k| {
                    data.iter()
                        .find(|(n, _)| *n == k)
                        .map(|(_, v)| v.as_slice())
                })
                .unwrap()
            };
            let a = new_secret_data(alg).unwrap();
            assert_eq!(a.len(), 1);
            assert_eq!(a[0].0, "key.pem");
            let (ka, kb) = (read(&a), read(&new_secret_data(alg).unwrap()));
            assert_eq!(ka.active.algorithm(), alg);
            assert!(ka.next.is_none());
            assert_ne!(ka.active.public_key(), kb.active.public_key());
            check_algorithm("acme", "acme", "Secret acme/acme-dnssec", &ka, alg).unwrap();
        }
    }
}
