//! A v1 Secret as the zone compiler reads it: name, namespace and decoded data. `data` values
//! are base64 (as the apiserver and `kubectl get -o yaml` show them); `stringData` values are
//! plain text and win over `data`, as the apiserver merges them.

use super::Meta;
use base64::Engine;
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret {
    pub namespace: String,
    pub name: String,
    pub data: BTreeMap<String, Vec<u8>>,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // keys only, never values
        f.debug_struct("Secret")
            .field("namespace", &self.namespace)
            .field("name", &self.name)
            .field("keys", &self.data.keys().collect::<Vec<_>>())
            .finish()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    #[serde(default)]
    metadata: Meta,
    #[serde(default)]
    data: BTreeMap<String, String>,
    #[serde(default)]
    string_data: BTreeMap<String, String>,
}

impl Secret {
    /// Parses a Secret object; the error names the field.
    pub fn from_value(value: serde_json::Value) -> Result<Self, String> {
        let raw: Raw = serde_json::from_value(value).map_err(|e| e.to_string())?;
        let mut data = BTreeMap::new();
        for (k, v) in raw.data {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(v.trim())
                .map_err(|e| format!("data.{k}: not base64: {e}"))?;
            data.insert(k, bytes);
        }
        for (k, v) in raw.string_data {
            data.insert(k, v.into_bytes());
        }
        Ok(Self {
            namespace: raw.metadata.namespace,
            name: raw.metadata.name,
            data,
        })
    }

    /// A value as UTF-8 text, trimmed.
    pub fn text(&self, key: &str) -> Option<Result<&str, String>> {
        self.data.get(key).map(|v| {
            std::str::from_utf8(v)
                .map(str::trim)
                .map_err(|_| format!("{key}: not UTF-8 text"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn data_is_decoded_and_string_data_wins() {
        let s = Secret::from_value(json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "k", "namespace": "acme"},
            "data": {"name": "eGZyLmtleS4=", "secret": "c2VjcmV0"},
            "stringData": {"secret": "plain"}
        }))
        .unwrap();
        assert_eq!(s.text("name"), Some(Ok("xfr.key.")));
        assert_eq!(s.data["secret"], b"plain");
        assert!(s.text("algorithm").is_none());
        assert!(!format!("{s:?}").contains("plain"));
        let e = Secret::from_value(json!({"metadata": {"name": "k"}, "data": {"secret": "!!"}}))
            .unwrap_err();
        assert!(e.starts_with("data.secret: not base64"), "{e}");
    }
}
