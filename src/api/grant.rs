//! The `DNSZoneGrant` custom resource (`zonegate.dev/v1alpha1`): a namespace's consent that
//! DNSZones of other namespaces may publish names from its objects. Created in the *source*
//! namespace by whoever owns it, in the spirit of Gateway API's ReferenceGrant. Without a
//! matching grant, a DNSZone that lists the namespace in `spec.sources.namespaces` reads
//! nothing from it and says so in its status.

use super::{NamespaceName, SourceKind};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// DNSZoneGrant lets DNSZones in other namespaces read this namespace's objects.
#[derive(CustomResource, JsonSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[kube(
    group = "zonegate.dev",
    version = "v1alpha1",
    kind = "DNSZoneGrant",
    plural = "dnszonegrants",
    singular = "dnszonegrant",
    shortname = "dzg",
    category = "zonegate",
    namespaced,
    derive = "PartialEq",
    doc = "DNSZoneGrant is a namespace's consent that the listed DNSZones (in other namespaces) may publish names from this namespace's objects."
)]
#[serde(rename_all = "camelCase")]
pub struct DNSZoneGrantSpec {
    /// The DNSZones allowed to read this namespace.
    #[schemars(length(min = 1, max = 64))]
    pub zones: Vec<GrantedZone>,
    /// Kinds of objects they may read. Default (empty): every source kind.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 7))]
    pub kinds: Vec<SourceKind>,
}

/// A DNSZone, or every DNSZone of a namespace.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GrantedZone {
    /// Namespace of the DNSZone.
    pub namespace: NamespaceName,
    /// Name of the DNSZone. Default: every DNSZone in that namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub name: Option<String>,
}

impl DNSZoneGrantSpec {
    /// Whether this grant lets DNSZone `zone_ns/zone_name` read objects of `kind`.
    pub fn allows(&self, zone_ns: &str, zone_name: &str, kind: SourceKind) -> bool {
        (self.kinds.is_empty() || self.kinds.contains(&kind))
            && self.zones.iter().any(|z| {
                z.namespace.0 == zone_ns && z.name.as_deref().is_none_or(|n| n == zone_name)
            })
    }

    /// Whether this grant lets the zone read anything at all.
    pub fn allows_zone(&self, zone_ns: &str, zone_name: &str) -> bool {
        self.zones
            .iter()
            .any(|z| z.namespace.0 == zone_ns && z.name.as_deref().is_none_or(|n| n == zone_name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn grant(v: serde_json::Value) -> DNSZoneGrantSpec {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn matches_zone_by_namespace_and_optional_name() {
        let g = grant(json!({"zones":[{"namespace":"acme","name":"web"},{"namespace":"beta"}]}));
        assert!(g.allows("acme", "web", SourceKind::Ingress));
        assert!(!g.allows("acme", "other", SourceKind::Ingress));
        assert!(g.allows("beta", "anything", SourceKind::Service));
        assert!(!g.allows("gamma", "web", SourceKind::Ingress));
        assert!(g.allows_zone("beta", "x"));
        assert!(!g.allows_zone("acme", "x"));
    }

    #[test]
    fn kinds_restrict_when_given() {
        let g = grant(json!({"zones":[{"namespace":"acme"}],"kinds":["Ingress"]}));
        assert!(g.allows("acme", "z", SourceKind::Ingress));
        assert!(!g.allows("acme", "z", SourceKind::Service));
    }
}
