//! Where and how the nameserver pods of a zone are scheduled: image pull secrets, node selector,
//! tolerations, affinity, priority class and topology spread constraints, set by the platform
//! admin (`--server-placement`, the chart's `server.placement`), and named profiles of them a
//! tenant may pick per zone (`--server-placement-profiles`, the chart's
//! `server.placementProfiles`; `spec.nameservers.placement` of a DNSZone). A tenant can choose
//! only among what the admin offers: the DNSZone names a profile, never a node, taint or
//! priority class.
//!
//! A profile's fields replace the default's field by field (a profile that sets only
//! `nodeSelector` keeps the default's tolerations). The pod's own anti-affinity between
//! nameservers always stays: `affinity.podAntiAffinity` terms are added to it.

use k8s_openapi::api::core::v1::{
    Affinity, LocalObjectReference, Toleration, TopologySpreadConstraint,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// Scheduling settings of nameserver pods. Unset fields add nothing.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Placement {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_secrets: Option<Vec<LocalObjectReference>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerations: Option<Vec<Toleration>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_class_name: Option<String>,
    /// A constraint without `labelSelector` gets the nameserver's own pods (its zone and
    /// nameserver labels): spread the pods of one nameserver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topology_spread_constraints: Option<Vec<TopologySpreadConstraint>>,
}

impl Placement {
    /// Parses a JSON object (`--server-placement`); empty text is no placement.
    pub fn parse(text: &str) -> Result<Placement, String> {
        if text.trim().is_empty() {
            return Ok(Placement::default());
        }
        serde_json::from_str(text).map_err(|e| e.to_string())
    }

    /// `self` with every field `over` sets replaced by `over`'s.
    pub fn overridden_by(&self, over: &Placement) -> Placement {
        Placement {
            image_pull_secrets: over
                .image_pull_secrets
                .clone()
                .or_else(|| self.image_pull_secrets.clone()),
            node_selector: over
                .node_selector
                .clone()
                .or_else(|| self.node_selector.clone()),
            tolerations: over
                .tolerations
                .clone()
                .or_else(|| self.tolerations.clone()),
            affinity: over.affinity.clone().or_else(|| self.affinity.clone()),
            priority_class_name: over
                .priority_class_name
                .clone()
                .or_else(|| self.priority_class_name.clone()),
            topology_spread_constraints: over
                .topology_spread_constraints
                .clone()
                .or_else(|| self.topology_spread_constraints.clone()),
        }
    }

    /// Writes the placement into a pod spec (JSON) that already has the operator's
    /// `affinity.podAntiAffinity`; `own_pods` selects this nameserver's pods.
    pub fn apply_to(&self, pod: &mut Map<String, Value>, own_pods: &Value) {
        if let Some(s) = self.image_pull_secrets.as_ref().filter(|s| !s.is_empty()) {
            pod.insert("imagePullSecrets".into(), to_json(s));
        }
        if let Some(s) = self.node_selector.as_ref().filter(|s| !s.is_empty()) {
            pod.insert("nodeSelector".into(), to_json(s));
        }
        if let Some(t) = self.tolerations.as_ref().filter(|t| !t.is_empty()) {
            pod.insert("tolerations".into(), to_json(t));
        }
        if let Some(p) = self.priority_class_name.as_ref().filter(|p| !p.is_empty()) {
            pod.insert("priorityClassName".into(), json!(p));
        }
        if let Some(a) = &self.affinity {
            let affinity = pod
                .entry("affinity")
                .or_insert_with(|| json!({}))
                .as_object_mut()
                .expect("affinity object");
            let given = to_json(a);
            for (k, v) in given.as_object().into_iter().flatten() {
                if k != "podAntiAffinity" {
                    affinity.insert(k.clone(), v.clone());
                    continue;
                }
                // the admin's anti-affinity terms join the operator's
                let anti = affinity
                    .entry("podAntiAffinity")
                    .or_insert_with(|| json!({}))
                    .as_object_mut()
                    .expect("podAntiAffinity object");
                for (kind, terms) in v.as_object().into_iter().flatten() {
                    let list = anti
                        .entry(kind.clone())
                        .or_insert_with(|| json!([]))
                        .as_array_mut()
                        .expect("anti-affinity terms");
                    list.extend(terms.as_array().into_iter().flatten().cloned());
                }
            }
        }
        if let Some(c) = self
            .topology_spread_constraints
            .as_ref()
            .filter(|c| !c.is_empty())
        {
            let mut list = to_json(c);
            for t in list.as_array_mut().into_iter().flatten() {
                if t.get("labelSelector").is_none_or(Value::is_null) {
                    t["labelSelector"] = json!({ "matchLabels": own_pods });
                }
            }
            pod.insert("topologySpreadConstraints".into(), list);
        }
    }
}

fn to_json<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).expect("placement serialises")
}

/// The admin's placement: the default for every zone and the profiles tenants may pick.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Placements {
    pub default: Placement,
    pub profiles: BTreeMap<String, Placement>,
}

impl Placements {
    /// Parses `--server-placement-profiles`: a JSON object of profile name to placement.
    pub fn parse_profiles(text: &str) -> Result<BTreeMap<String, Placement>, String> {
        if text.trim().is_empty() {
            return Ok(BTreeMap::new());
        }
        let profiles: BTreeMap<String, Placement> =
            serde_json::from_str(text).map_err(|e| e.to_string())?;
        if let Some(bad) = profiles.keys().find(|k| !valid_profile_name(k)) {
            return Err(format!(
                "profile name {bad:?}: lowercase letters, digits and '-', at most 63"
            ));
        }
        Ok(profiles)
    }

    /// The placement of a zone that asks for `profile` (`spec.nameservers.placement`): the
    /// default overridden by the profile. Unknown profile: an error naming the ones there are.
    pub fn for_zone(&self, profile: Option<&str>) -> Result<Placement, String> {
        let Some(name) = profile else {
            return Ok(self.default.clone());
        };
        match self.profiles.get(name) {
            Some(p) => Ok(self.default.overridden_by(p)),
            None if self.profiles.is_empty() => Err(format!(
                "spec.nameservers.placement: no placement profile {name:?}: the platform offers none (remove the field)"
            )),
            None => Err(format!(
                "spec.nameservers.placement: no placement profile {name:?}; the platform offers: {}",
                self.profiles.keys().cloned().collect::<Vec<_>>().join(", ")
            )),
        }
    }
}

/// A profile name as `spec.nameservers.placement` may carry it (the CRD's pattern).
pub fn valid_profile_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admin() -> Placements {
        Placements {
            default: Placement::parse(
                r#"{"imagePullSecrets": [{"name": "regcred"}],
                    "nodeSelector": {"role": "dns"},
                    "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "dns", "effect": "NoSchedule"}],
                    "priorityClassName": "system-cluster-critical",
                    "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [{"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]}]}]}},
                                 "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 10, "podAffinityTerm": {"topologyKey": "rack", "labelSelector": {"matchLabels": {"app": "x"}}}}]}},
                    "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "ScheduleAnyway"}]}"#,
            )
            .unwrap(),
            profiles: Placements::parse_profiles(
                r#"{"edge": {"nodeSelector": {"role": "edge"}}, "anywhere": {"nodeSelector": {}, "tolerations": []}}"#,
            )
            .unwrap(),
        }
    }

    #[test]
    fn parse_rejects_unknown_fields_and_bad_shapes() {
        assert_eq!(Placement::parse("").unwrap(), Placement::default());
        assert!(
            Placement::parse(r#"{"nodeSelecter": {}}"#)
                .unwrap_err()
                .contains("nodeSelecter")
        );
        assert!(Placement::parse(r#"{"tolerations": {"key": "x"}}"#).is_err());
        assert!(
            Placements::parse_profiles(r#"{"Edge": {}}"#)
                .unwrap_err()
                .contains("Edge")
        );
        assert!(Placements::parse_profiles(r#"{"edge": {"affinty": {}}}"#).is_err());
    }

    #[test]
    fn profiles_override_field_by_field() {
        let a = admin();
        let edge = a.for_zone(Some("edge")).unwrap();
        assert_eq!(edge.node_selector.unwrap()["role"], "edge");
        assert_eq!(edge.tolerations, a.default.tolerations, "inherited");
        assert_eq!(
            edge.priority_class_name.as_deref(),
            Some("system-cluster-critical")
        );
        // an empty value in a profile clears the default's
        let anywhere = a.for_zone(Some("anywhere")).unwrap();
        let mut pod = Map::new();
        anywhere.apply_to(&mut pod, &json!({}));
        assert!(pod.get("nodeSelector").is_none() && pod.get("tolerations").is_none());
        assert_eq!(a.for_zone(None).unwrap(), a.default);
        let e = a.for_zone(Some("gpu")).unwrap_err();
        assert!(
            e.contains("spec.nameservers.placement") && e.contains("anywhere, edge"),
            "{e}"
        );
        let e = Placements::default().for_zone(Some("gpu")).unwrap_err();
        assert!(e.contains("offers none"), "{e}");
    }

    #[test]
    fn apply_keeps_the_operator_anti_affinity_and_fills_spread_selectors() {
        let mut pod = json!({"affinity": {"podAntiAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 50, "podAffinityTerm": {"topologyKey": "zone"}}],
            "requiredDuringSchedulingIgnoredDuringExecution": [{"topologyKey": "kubernetes.io/hostname"}]}}});
        let own = json!({"zonegate.dev/zone": "web", "zonegate.dev/nameserver": "ns1"});
        admin().default.apply_to(pod.as_object_mut().unwrap(), &own);
        assert_eq!(pod["imagePullSecrets"], json!([{"name": "regcred"}]));
        assert_eq!(pod["nodeSelector"], json!({"role": "dns"}));
        assert_eq!(pod["tolerations"][0]["key"], "dedicated");
        assert_eq!(pod["priorityClassName"], "system-cluster-critical");
        let anti = &pod["affinity"]["podAntiAffinity"];
        let preferred = anti["preferredDuringSchedulingIgnoredDuringExecution"]
            .as_array()
            .unwrap();
        assert_eq!(preferred.len(), 2);
        assert_eq!(preferred[0]["weight"], 50, "the operator's term first");
        assert_eq!(preferred[1]["podAffinityTerm"]["topologyKey"], "rack");
        assert_eq!(
            anti["requiredDuringSchedulingIgnoredDuringExecution"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        assert!(
            pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
                .is_object()
        );
        assert_eq!(
            pod["topologySpreadConstraints"][0]["labelSelector"],
            json!({"matchLabels": own})
        );
    }
}
