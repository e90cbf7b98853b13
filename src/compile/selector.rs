//! Object selection by labels: `spec.sources.selector` and the ignore labels.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use std::collections::BTreeMap;

/// Labels that take an object out of every zone when set to `true`: ours, and k8s_gateway's for
/// users migrating from it.
pub(crate) const IGNORE_LABELS: [&str; 2] = ["zonegate.dev/ignore", "k8s-gateway.dns/ignore"];

/// Whether an ignore label is set to `true` (case-insensitive, like a YAML boolean written as
/// a string).
pub(crate) fn ignored(labels: &BTreeMap<String, String>) -> bool {
    IGNORE_LABELS.iter().any(|k| {
        labels
            .get(*k)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    })
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Op {
    In(Vec<String>),
    NotIn(Vec<String>),
    Exists,
    DoesNotExist,
}

/// A validated Kubernetes label selector. No selector (or an empty one) matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Selector {
    labels: BTreeMap<String, String>,
    exprs: Vec<(String, Op)>,
}

impl Selector {
    /// Validates `spec.sources.selector` as the apiserver would: `In`/`NotIn` need values,
    /// `Exists`/`DoesNotExist` take none, other operators are unknown. An invalid selector is
    /// an error naming the field; the caller then reads no objects (selecting everything
    /// instead would publish what the tenant meant to filter out).
    pub(crate) fn new(sel: Option<&LabelSelector>) -> Result<Self, (String, String)> {
        let Some(sel) = sel else {
            return Ok(Self::default());
        };
        let mut out = Self {
            labels: sel.match_labels.clone().unwrap_or_default(),
            exprs: Vec::new(),
        };
        for (i, req) in sel.match_expressions.iter().flatten().enumerate() {
            let field = format!("spec.sources.selector.matchExpressions[{i}]");
            let values = req.values.clone().unwrap_or_default();
            let op = match req.operator.as_str() {
                "In" | "NotIn" if values.is_empty() => {
                    return Err((
                        format!("{field}.values"),
                        format!("operator {} needs values", req.operator),
                    ));
                }
                "Exists" | "DoesNotExist" if !values.is_empty() => {
                    return Err((
                        format!("{field}.values"),
                        format!("operator {} takes no values", req.operator),
                    ));
                }
                "In" => Op::In(values),
                "NotIn" => Op::NotIn(values),
                "Exists" => Op::Exists,
                "DoesNotExist" => Op::DoesNotExist,
                other => {
                    return Err((
                        format!("{field}.operator"),
                        format!("unknown operator {other:?}"),
                    ));
                }
            };
            out.exprs.push((req.key.clone(), op));
        }
        Ok(out)
    }

    /// Kubernetes semantics: every matchLabels pair and every expression must hold; `NotIn`
    /// also matches objects without the label.
    pub(crate) fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.labels.iter().all(|(k, v)| labels.get(k) == Some(v))
            && self.exprs.iter().all(|(key, op)| {
                let value = labels.get(key);
                match op {
                    Op::In(vals) => value.is_some_and(|v| vals.contains(v)),
                    Op::NotIn(vals) => value.is_none_or(|v| !vals.contains(v)),
                    Op::Exists => value.is_some(),
                    Op::DoesNotExist => value.is_none(),
                }
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sel(v: serde_json::Value) -> Result<Selector, (String, String)> {
        let s: LabelSelector = serde_json::from_value(v).unwrap();
        Selector::new(Some(&s))
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn ignore_labels() {
        assert!(ignored(&labels(&[("zonegate.dev/ignore", "true")])));
        assert!(ignored(&labels(&[("k8s-gateway.dns/ignore", "True")])));
        assert!(!ignored(&labels(&[("zonegate.dev/ignore", "false")])));
        assert!(!ignored(&labels(&[("zonegate.dev/ignore", "")])));
        assert!(!ignored(&labels(&[])));
    }

    #[test]
    fn no_selector_matches_all() {
        let s = Selector::new(None).unwrap();
        assert!(s.matches(&labels(&[])));
        assert!(sel(json!({})).unwrap().matches(&labels(&[("a", "b")])));
    }

    #[test]
    fn match_labels_all_must_match() {
        let s = sel(json!({"matchLabels": {"dns": "public", "team": "a"}})).unwrap();
        assert!(s.matches(&labels(&[("dns", "public"), ("team", "a"), ("x", "y")])));
        assert!(!s.matches(&labels(&[("dns", "public")])));
        assert!(!s.matches(&labels(&[("dns", "private"), ("team", "a")])));
    }

    #[test]
    fn match_expressions_operators() {
        let s = sel(json!({"matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["web", "api"]},
            {"key": "env", "operator": "NotIn", "values": ["dev"]},
            {"key": "dns", "operator": "Exists"},
            {"key": "private", "operator": "DoesNotExist"}
        ]}))
        .unwrap();
        assert!(s.matches(&labels(&[("tier", "web"), ("dns", "")])));
        assert!(s.matches(&labels(&[("tier", "api"), ("env", "prod"), ("dns", "x")])));
        assert!(!s.matches(&labels(&[("tier", "db"), ("dns", "x")])));
        assert!(!s.matches(&labels(&[("tier", "web"), ("env", "dev"), ("dns", "x")])));
        assert!(!s.matches(&labels(&[("tier", "web")])));
        assert!(!s.matches(&labels(&[("tier", "web"), ("dns", "x"), ("private", "")])));
    }

    #[test]
    fn invalid_selectors_name_the_field() {
        let (f, m) = sel(json!({"matchExpressions": [{"key": "a", "operator": "Exists"}, {"key": "b", "operator": "Gt", "values": ["1"]}]})).unwrap_err();
        assert_eq!(f, "spec.sources.selector.matchExpressions[1].operator");
        assert!(m.contains("unknown operator \"Gt\""));
        let (f, _) =
            sel(json!({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]}))
                .unwrap_err();
        assert_eq!(f, "spec.sources.selector.matchExpressions[0].values");
        let (_, m) =
            sel(json!({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}))
                .unwrap_err();
        assert!(m.contains("takes no values"));
    }
}
