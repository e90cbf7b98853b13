//! Whether an owned object needs a server-side apply. Converged objects must cause no writes, so
//! the operator applies only when
//!
//! - the object does not exist, or
//! - its `zonegate.dev/applied-hash` annotation differs from the hash of what the operator wants
//!   now (the operator's wish changed, including fields it no longer sets), or
//! - the live object no longer contains what the operator wants (somebody else changed or
//!   removed one of its fields: drift).
//!
//! Fields the apiserver or other controllers add (defaults, `status`, allocated node ports, ...)
//! do not count as drift: the check is "desired is contained in live", not equality.

use super::ANNOTATION_HASH;
use serde_json::Value;

/// FNV-1a 64 over the canonical JSON text of `v` (object keys sorted), as 16 hex digits. Stable
/// across processes and versions, unlike `std`'s hasher.
pub fn hash_value(v: &Value) -> String {
    let mut h = crate::fnv::Fnv1a::new();
    canonical(v, &mut |bytes: &[u8]| {
        h.bytes(bytes);
    });
    format!("{:016x}", h.finish())
}

fn canonical(v: &Value, feed: &mut impl FnMut(&[u8])) {
    match v {
        Value::Object(m) => {
            feed(b"{");
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    feed(b",");
                }
                feed(Value::String(k.clone()).to_string().as_bytes());
                feed(b":");
                canonical(&m[k], feed);
            }
            feed(b"}");
        }
        Value::Array(a) => {
            feed(b"[");
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    feed(b",");
                }
                canonical(x, feed);
            }
            feed(b"]");
        }
        other => feed(other.to_string().as_bytes()),
    }
}

/// Whether `live` holds everything `desired` says: objects by key (extra keys in `live` are
/// fine), arrays element by element with the same length, scalars equal. Numbers compare by
/// value (`1` and `1.0`).
pub fn contains(live: &Value, desired: &Value) -> bool {
    match (live, desired) {
        (Value::Object(l), Value::Object(d)) => d
            .iter()
            .all(|(k, dv)| l.get(k).is_some_and(|lv| contains(lv, dv))),
        (Value::Array(l), Value::Array(d)) => {
            l.len() == d.len() && l.iter().zip(d).all(|(lv, dv)| contains(lv, dv))
        }
        (Value::Number(l), Value::Number(d)) => l == d || l.as_f64() == d.as_f64(),
        (l, d) => l == d,
    }
}

/// Why an apply is needed, or `None` when the live object is already as desired.
pub fn apply_reason(live: Option<&Value>, desired: &Value, hash: &str) -> Option<&'static str> {
    let Some(live) = live else {
        return Some("missing");
    };
    let live_hash = live
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(ANNOTATION_HASH))
        .and_then(Value::as_str);
    if live_hash != Some(hash) {
        return Some("changed");
    }
    if !contains(live, desired) {
        return Some("drifted");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn hash_ignores_key_order_but_not_values_or_array_order() {
        let a = json!({"a": 1, "b": {"x": [1, 2], "y": "s"}});
        let b: Value = serde_json::from_str(r#"{"b": {"y": "s", "x": [1, 2]}, "a": 1}"#).unwrap();
        assert_eq!(hash_value(&a), hash_value(&b));
        assert_ne!(
            hash_value(&a),
            hash_value(&json!({"a": 1, "b": {"x": [2, 1], "y": "s"}}))
        );
        assert_ne!(
            hash_value(&a),
            hash_value(&json!({"a": 2, "b": {"x": [1, 2], "y": "s"}}))
        );
        assert_eq!(hash_value(&a).len(), 16);
        // Pinned: the hash is stored in clusters and must not change between versions.
        assert_eq!(hash_value(&json!({"k": "v"})), "c60340ed39800210");
    }

    #[test]
    fn containment() {
        let live = json!({"metadata": {"name": "x", "uid": "u", "labels": {"a": "1", "b": "2"}},
                          "spec": {"ports": [{"port": 53, "nodePort": 30053}], "type": "NodePort"}});
        assert!(contains(
            &live,
            &json!({"metadata": {"labels": {"a": "1"}}, "spec": {"ports": [{"port": 53}]}})
        ));
        assert!(!contains(
            &live,
            &json!({"metadata": {"labels": {"a": "2"}}})
        ));
        assert!(!contains(
            &live,
            &json!({"metadata": {"labels": {"c": "1"}}})
        ));
        assert!(!contains(
            &live,
            &json!({"spec": {"ports": [{"port": 53}, {"port": 54}]}})
        ));
        assert!(!contains(&live, &json!({"spec": {"ports": {"port": 53}}})));
        assert!(contains(&json!({"n": 1.0}), &json!({"n": 1})));
        assert!(contains(&json!({"e": {}}), &json!({"e": {}})));
    }

    #[test]
    fn apply_only_when_needed() {
        let desired = json!({"metadata": {"name": "x", "annotations": {ANNOTATION_HASH: "h1"}}, "spec": {"replicas": 2}});
        assert_eq!(apply_reason(None, &desired, "h1"), Some("missing"));
        let mut live = desired.clone();
        live["status"] = json!({"availableReplicas": 2});
        live["metadata"]["resourceVersion"] = json!("7");
        assert_eq!(apply_reason(Some(&live), &desired, "h1"), None);
        // What we want changed.
        assert_eq!(apply_reason(Some(&live), &desired, "h2"), Some("changed"));
        // Somebody scaled it.
        live["spec"]["replicas"] = json!(5);
        assert_eq!(apply_reason(Some(&live), &desired, "h1"), Some("drifted"));
        // Somebody removed our annotation.
        let mut live = desired.clone();
        live["metadata"]["annotations"] = json!({});
        assert_eq!(apply_reason(Some(&live), &desired, "h1"), Some("changed"));
    }
}
