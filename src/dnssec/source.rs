//! Where a zone's DNSSEC keys come from in files mode (`serve --manifests`, `render`): the
//! `v1 Secret` `<zone>-dnssec` of the zone's namespace in the manifest tree when there is one,
//! else a key generated once into `--state-dir` (`dnssec/<namespace>/<zone>/key.pem`, mode
//! 0600) and read from there afterwards; neither is an error naming the zone.

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
    for k in keys.all() {
        if k.algorithm() != algorithm {
            return Err(format!(
                "DNSZone {namespace}/{name}: {from} holds an {} key, spec.dnssec.algorithm is {algorithm}",
                k.algorithm()
            ));
        }
    }
    Ok((keys, from))
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
}
