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
/// value (`1` and `1.0`), and so do resource quantities (`resources.requests`/`limits` values
/// and `sizeLimit`: the apiserver stores `1024Mi` as `1Gi`, see [`super::quantity`]).
pub fn contains(live: &Value, desired: &Value) -> bool {
    contains_in(live, desired, Within::Object)
}

/// Where in the object a comparison is: quantities are compared as numbers.
#[derive(Clone, Copy, PartialEq)]
enum Within {
    Object,
    /// a `resources` map (its `requests` and `limits` hold quantities)
    Resources,
    Quantities,
    Quantity,
}

fn contains_in(live: &Value, desired: &Value, at: Within) -> bool {
    match (live, desired) {
        (Value::Object(l), Value::Object(d)) => d.iter().all(|(k, dv)| {
            let inner = match (at, k.as_str()) {
                (Within::Quantities, _) => Within::Quantity,
                (Within::Resources, "requests" | "limits") => Within::Quantities,
                (_, "resources") => Within::Resources,
                (_, "sizeLimit") => Within::Quantity,
                _ => Within::Object,
            };
            l.get(k).is_some_and(|lv| contains_in(lv, dv, inner))
        }),
        (Value::Array(l), Value::Array(d)) => {
            l.len() == d.len() && l.iter().zip(d).all(|(lv, dv)| contains_in(lv, dv, at))
        }
        (Value::Number(l), Value::Number(d)) => l == d || l.as_f64() == d.as_f64(),
        (Value::String(l), Value::String(d)) if at == Within::Quantity => {
            super::quantity::same(l, d)
        }
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
    fn quantities_compare_by_value_where_they_are_quantities() {
        // as the apiserver stores a Deployment the operator asked for with non-canonical values
        let desired = json!({"spec": {"template": {"spec": {
            "containers": [{"name": "dns", "resources": {
                "requests": {"cpu": "1000m", "memory": "1024Mi"},
                "limits": {"memory": "1.5Gi", "ephemeral-storage": "1e3"}}}],
            "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "16384Ki"}}]}}}});
        let live = json!({"spec": {"template": {"spec": {
            "containers": [{"name": "dns", "image": "x", "resources": {
                "requests": {"cpu": "1", "memory": "1Gi"},
                "limits": {"memory": "1536Mi", "ephemeral-storage": "1k"}}}],
            "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "16Mi"}}]}}}});
        assert!(contains(&live, &desired));
        // a real change is still drift
        let mut changed = live.clone();
        changed["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["memory"] =
            json!("1G");
        assert!(!contains(&changed, &desired));
        let mut changed = live.clone();
        changed["spec"]["template"]["spec"]["volumes"][0]["emptyDir"]["sizeLimit"] = json!("17Mi");
        assert!(!contains(&changed, &desired));
        // elsewhere, strings are text: a label "1000m" is not the label "1"
        assert!(!contains(
            &json!({"metadata": {"labels": {"a": "1"}}}),
            &json!({"metadata": {"labels": {"a": "1000m"}}})
        ));
        // and a container named "requests" is not a quantity map
        assert!(!contains(
            &json!({"requests": {"x": "1"}}),
            &json!({"requests": {"x": "1000m"}})
        ));
        // apply_reason sees no drift once the hash matches
        let mut d = desired.clone();
        d["metadata"] = json!({"annotations": {ANNOTATION_HASH: "h"}});
        let mut l = live.clone();
        l["metadata"] = json!({"annotations": {ANNOTATION_HASH: "h"}});
        assert_eq!(apply_reason(Some(&l), &d, "h"), None);
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
