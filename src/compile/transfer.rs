//! A DNSZone's `spec.transfer` and its TSIG Secret to the plain `TransferPolicy` the DNS
//! engine enforces. A key that is named but unusable (Secret missing, algorithm unknown,
//! secret not base64) is a problem and makes the policy refuse every transfer: never open.

use super::Problem;
use crate::api::DNSZone;
use crate::objects::store::ObjectStore;
use crate::zone::transfer::{
    KeyRequirement, TransferPolicy, TsigAlgorithm, TsigKey, parse_network, parse_notify_target,
};
use base64::Engine;
use hickory_proto::rr::Name;

/// The zone's transfer policy (`None` without `spec.transfer`) and the problems found.
pub fn policy(zone: &DNSZone, store: &ObjectStore) -> (Option<TransferPolicy>, Vec<Problem>) {
    let Some(spec) = &zone.spec.transfer else {
        return (None, Vec::new());
    };
    let ns = zone.metadata.namespace.clone().unwrap_or_default();
    let object = format!(
        "DNSZone {ns}/{}",
        zone.metadata.name.as_deref().unwrap_or_default()
    );
    let mut problems = Vec::new();
    let mut allow_from = Vec::new();
    for (i, n) in spec.allow_from.iter().enumerate() {
        match parse_network(&n.0) {
            Ok(n) => allow_from.push(n),
            Err(e) => problems.push(Problem::new(
                &object,
                format!("spec.transfer.allowFrom[{i}]"),
                e,
            )),
        }
    }
    let mut notify = Vec::new();
    for (i, n) in spec.notify.iter().enumerate() {
        match parse_notify_target(&n.0) {
            Ok(a) if !notify.contains(&a) => notify.push(a),
            Ok(_) => {}
            Err(e) => problems.push(Problem::new(
                &object,
                format!("spec.transfer.notify[{i}]"),
                e,
            )),
        }
    }
    let key = match &spec.tsig_secret_name {
        None => KeyRequirement::None,
        Some(name) => match store.secrets.get(&(ns.clone(), name.clone())) {
            None => {
                let why = match store.unreadable_secrets.get(&(ns.clone(), name.clone())) {
                    Some(e) => format!(
                        "Secret {ns}/{name} cannot be read ({e}); every transfer is refused until it can"
                    ),
                    None => format!(
                        "Secret {ns}/{name} not found; every transfer is refused until it exists"
                    ),
                };
                problems.push(Problem::new(&object, "spec.transfer.tsigSecretName", &why));
                KeyRequirement::Unusable(why)
            }
            Some(secret) => match key_of(secret) {
                Ok(k) => KeyRequirement::Key(k),
                Err((field, why)) => {
                    let why = format!("{why}; every transfer is refused until it is fixed");
                    problems.push(Problem::new(format!("Secret {ns}/{name}"), field, &why));
                    KeyRequirement::Unusable(why)
                }
            },
        },
    };
    (
        Some(TransferPolicy {
            allow_from,
            notify,
            key,
        }),
        problems,
    )
}

/// Reads a TSIG key from a Secret: `name`, `algorithm` (default hmac-sha256), `secret`
/// (base64). Errors name the data key.
pub fn key_of(secret: &crate::objects::secret::Secret) -> Result<TsigKey, (String, String)> {
    let field = |k: &str| format!("data.{k}");
    let name = match secret.text("name") {
        None => return Err((field("name"), "missing: the TSIG key name".into())),
        Some(Err(e)) => return Err((field("name"), e)),
        Some(Ok(n)) => n,
    };
    let fq = if name.ends_with('.') {
        name.to_string()
    } else {
        format!("{name}.")
    };
    let name = Name::from_ascii(&fq)
        .ok()
        .filter(|n| !n.is_root() && fq.len() <= 254)
        .ok_or_else(|| (field("name"), format!("{name:?} is not a domain name")))?
        .to_lowercase();
    let algorithm = match secret.text("algorithm") {
        None => TsigAlgorithm::HmacSha256,
        Some(Err(e)) => return Err((field("algorithm"), e)),
        Some(Ok(a)) => TsigAlgorithm::from_text(a).ok_or_else(|| {
            (
                field("algorithm"),
                format!("{a:?} is not supported; use hmac-sha256 or hmac-sha512"),
            )
        })?,
    };
    let b64 = match secret.text("secret") {
        None => return Err((field("secret"), "missing: the key, in base64".into())),
        Some(Err(e)) => return Err((field("secret"), e)),
        Some(Ok(s)) => s,
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| (field("secret"), format!("not base64: {e}")))?;
    if bytes.len() < 16 {
        return Err((
            field("secret"),
            format!(
                "{} bytes is too short a key; use at least 16 (tsig-keygen makes 32)",
                bytes.len()
            ),
        ));
    }
    Ok(TsigKey {
        name,
        algorithm,
        secret: bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objects::secret::Secret;
    use serde_json::json;
    use std::sync::Arc;

    fn zone(transfer: serde_json::Value) -> DNSZone {
        serde_json::from_value(
            json!({"apiVersion":"zonegate.dev/v1alpha1","kind":"DNSZone",
            "metadata":{"name":"z","namespace":"acme"},
            "spec":{"domain":"acme.example.com","transfer":transfer}}),
        )
        .unwrap()
    }

    fn store_with(secret: serde_json::Value) -> ObjectStore {
        let s = Secret::from_value(secret).unwrap();
        let mut store = ObjectStore::default();
        store
            .secrets
            .insert((s.namespace.clone(), s.name.clone()), Arc::new(s));
        store
    }

    const B64: &str = "pRGNUvDz1tJ6cNW7rXn1o6cE2b5nlN8W9bWk8jxjq4M=";

    #[test]
    fn policy_reads_networks_targets_and_key() {
        let store = store_with(json!({"metadata":{"name":"xfr-key","namespace":"acme"},
            "stringData":{"name":"xfr.zonegate","secret":B64}}));
        let (p, problems) = policy(
            &zone(
                json!({"allowFrom":["127.0.0.0/8"],"notify":["127.0.0.1:5300","127.0.0.1:5300"],
                "tsigSecretName":"xfr-key"}),
            ),
            &store,
        );
        assert!(problems.is_empty(), "{problems:?}");
        let p = p.unwrap();
        assert!(p.allows_address("127.0.0.9".parse().unwrap()));
        assert_eq!(p.notify, vec!["127.0.0.1:5300".parse().unwrap()]);
        let KeyRequirement::Key(k) = &p.key else {
            panic!("{:?}", p.key)
        };
        assert_eq!(k.name.to_ascii(), "xfr.zonegate.");
        assert_eq!(k.algorithm, TsigAlgorithm::HmacSha256);
        assert_eq!(k.secret.len(), 32);
    }

    #[test]
    fn unusable_keys_close_the_zone_and_name_the_field() {
        let missing = policy(
            &zone(json!({"allowFrom":["127.0.0.1"],"tsigSecretName":"nope"})),
            &ObjectStore::default(),
        );
        assert!(matches!(
            missing.0.unwrap().key,
            KeyRequirement::Unusable(_)
        ));
        assert_eq!(missing.1[0].field, "spec.transfer.tsigSecretName");
        assert!(missing.1[0].message.contains("Secret acme/nope not found"));
        for (data, field) in [
            (json!({"secret":B64}), "data.name"),
            (
                json!({"name":"k","algorithm":"hmac-md5","secret":B64}),
                "data.algorithm",
            ),
            (json!({"name":"k","secret":"not base64!"}), "data.secret"),
            (json!({"name":"k","secret":"c2hvcnQ="}), "data.secret"),
            (json!({"name":"k"}), "data.secret"),
        ] {
            let store =
                store_with(json!({"metadata":{"name":"k","namespace":"acme"},"stringData":data}));
            let (p, problems) = policy(&zone(json!({"tsigSecretName":"k"})), &store);
            assert!(
                matches!(p.unwrap().key, KeyRequirement::Unusable(_)),
                "{field}"
            );
            assert_eq!(problems[0].object, "Secret acme/k");
            assert_eq!(problems[0].field, field);
        }
        // a Secret of another namespace is not this zone's
        let other = store_with(json!({"metadata":{"name":"k","namespace":"other"},
            "stringData":{"name":"k","secret":B64}}));
        let (p, _) = policy(&zone(json!({"tsigSecretName":"k"})), &other);
        assert!(matches!(p.unwrap().key, KeyRequirement::Unusable(_)));
    }
}
