//! The operator's Prometheus metrics and its HTTP endpoint: `/metrics`, `/healthz` (the process
//! runs) and `/readyz` (it is a standby waiting for the Lease, or the leader with its caches
//! synced).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    /// `ok` or `error`.
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    /// What failed: `apply`, `delete`, `status`, `cache`, ...
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WriteLabels {
    /// Object kind written (`Deployment`, `DNSZone/status`, `Event`, ...).
    pub kind: String,
    /// `apply`, `delete` or `create`.
    pub verb: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConditionLabels {
    pub condition: String,
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SecondaryLabels {
    pub namespace: String,
    pub zone: String,
    pub address: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CheckLabels {
    /// `delegated`, `not_delegated`, `mismatch`, `unreachable`.
    pub result: &'static str,
}

/// Every metric of the operator.
/// (namespace, name) of a zone.
type ZoneName = (String, String);

pub struct OperatorMetrics {
    registry: Registry,
    /// Metrics without the `zonegate_operator_` prefix (names alerts are written against).
    plain: Registry,
    /// `zonegate_secondary_in_sync{namespace,zone,address}`: 1 while that secondary serves the
    /// zone's serial, 0 when it is behind or does not answer.
    pub secondary_in_sync: Family<SecondaryLabels, Gauge>,
    secondaries: Mutex<BTreeMap<ZoneName, Vec<(String, bool)>>>,
    pub reconciles: Family<ResultLabels, Counter>,
    pub errors: Family<ErrorLabels, Counter>,
    pub duration: Histogram,
    pub writes: Family<WriteLabels, Counter>,
    pub zones: Family<ConditionLabels, Gauge>,
    pub leader: Gauge,
    pub delegation_checks: Family<CheckLabels, Counter>,
    /// Per zone (`ns/name`): the status of each condition, from which `zones` is counted.
    zone_conditions: Mutex<BTreeMap<String, Vec<(String, String)>>>,
    pub ready: AtomicBool,
}

impl Default for OperatorMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl OperatorMetrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("zonegate_operator");
        let reconciles = Family::<ResultLabels, Counter>::default();
        registry.register(
            "reconciles",
            "DNSZone reconciles, by result",
            reconciles.clone(),
        );
        let errors = Family::<ErrorLabels, Counter>::default();
        registry.register(
            "reconcile_errors",
            "Reconcile errors, by what failed",
            errors.clone(),
        );
        // 1 ms .. ~16 s
        let duration = Histogram::new(exponential_buckets(0.001, 2.0, 15));
        registry.register(
            "reconcile_duration_seconds",
            "Time to reconcile one DNSZone",
            duration.clone(),
        );
        let writes = Family::<WriteLabels, Counter>::default();
        registry.register(
            "api_writes",
            "Writes to the Kubernetes API (applies, deletes, status patches, events), by kind and verb",
            writes.clone(),
        );
        let zones = Family::<ConditionLabels, Gauge>::default();
        registry.register("zones", "DNSZones by condition and status", zones.clone());
        let leader = Gauge::default();
        registry.register(
            "leader",
            "1 while this replica holds the Lease and reconciles",
            leader.clone(),
        );
        let delegation_checks = Family::<CheckLabels, Counter>::default();
        registry.register(
            "delegation_checks",
            "Questions to parent zones about a zone's delegation, by outcome",
            delegation_checks.clone(),
        );
        let mut plain = Registry::default();
        let secondary_in_sync = Family::<SecondaryLabels, Gauge>::default();
        plain.register(
            "zonegate_secondary_in_sync",
            "1 while a secondary (spec.transfer.notify) serves the zone's serial, 0 when it is behind or does not answer",
            secondary_in_sync.clone(),
        );
        Self {
            registry,
            plain,
            secondary_in_sync,
            secondaries: Mutex::new(BTreeMap::new()),
            reconciles,
            errors,
            duration,
            writes,
            zones,
            leader,
            delegation_checks,
            zone_conditions: Mutex::new(BTreeMap::new()),
            ready: AtomicBool::new(false),
        }
    }

    pub fn write(&self, kind: &str, verb: &'static str) {
        self.writes
            .get_or_create(&WriteLabels {
                kind: kind.to_string(),
                verb,
            })
            .inc();
    }

    pub fn error(&self, kind: &str) {
        self.errors
            .get_or_create(&ErrorLabels {
                kind: kind.to_string(),
            })
            .inc();
    }

    /// Records the conditions of zone `key` (`None`: the zone is gone) and recounts `zones`.
    pub fn set_zone_conditions(&self, key: &str, conditions: Option<Vec<(String, String)>>) {
        let mut map = self.zone_conditions.lock().expect("metrics lock");
        match conditions {
            Some(c) => {
                if map.get(key) == Some(&c) {
                    return;
                }
                map.insert(key.to_string(), c);
            }
            None => {
                if map.remove(key).is_none() {
                    return;
                }
            }
        }
        let mut counts: BTreeMap<(String, String), i64> = BTreeMap::new();
        for conds in map.values() {
            for (c, s) in conds {
                *counts.entry((c.clone(), s.clone())).or_default() += 1;
            }
        }
        self.zones.clear();
        for ((condition, status), n) in counts {
            self.zones
                .get_or_create(&ConditionLabels { condition, status })
                .set(n);
        }
    }

    /// Forgets the zones not in `live` (`ns/name`).
    /// The secondaries of zone `namespace/zone` as its status shows them (empty: none); the
    /// gauges of addresses no longer listed go.
    pub fn set_secondaries(&self, namespace: &str, zone: &str, secondaries: Vec<(String, bool)>) {
        let mut map = self.secondaries.lock().expect("metrics lock");
        let key = (namespace.to_string(), zone.to_string());
        let labels = |address: &str| SecondaryLabels {
            namespace: namespace.to_string(),
            zone: zone.to_string(),
            address: address.to_string(),
        };
        for (address, _) in map.get(&key).into_iter().flatten() {
            if !secondaries.iter().any(|(a, _)| a == address) {
                self.secondary_in_sync.remove(&labels(address));
            }
        }
        for (address, in_sync) in &secondaries {
            self.secondary_in_sync
                .get_or_create(&labels(address))
                .set(i64::from(*in_sync));
        }
        if secondaries.is_empty() {
            map.remove(&key);
        } else {
            map.insert(key, secondaries);
        }
    }

    pub fn retain_zones(&self, live: &std::collections::HashSet<String>) {
        let gone: Vec<String> = self
            .zone_conditions
            .lock()
            .expect("metrics lock")
            .keys()
            .filter(|k| !live.contains(*k))
            .cloned()
            .collect();
        for k in gone {
            self.set_zone_conditions(&k, None);
        }
        let gone: Vec<(String, String)> = self
            .secondaries
            .lock()
            .expect("metrics lock")
            .keys()
            .filter(|(ns, z)| !live.contains(&format!("{ns}/{z}")))
            .cloned()
            .collect();
        for (ns, z) in gone {
            self.set_secondaries(&ns, &z, Vec::new());
        }
    }

    /// Forgets every zone (on losing the lease).
    pub fn clear_zones(&self) {
        self.zone_conditions.lock().expect("metrics lock").clear();
        self.zones.clear();
        self.secondaries.lock().expect("metrics lock").clear();
        self.secondary_in_sync.clear();
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        use prometheus_client::encoding::text::{encode_eof, encode_registry};
        encode_registry(&mut out, &self.registry)
            .and_then(|()| encode_registry(&mut out, &self.plain))
            .and_then(|()| encode_eof(&mut out))
            .expect("encoding to a String cannot fail");
        out
    }
}

impl crate::http::Endpoint for OperatorMetrics {
    fn ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }
    fn not_ready_reason(&self) -> &'static str {
        "not ready: starting, or the leader's caches are not synced yet\n"
    }
    fn metrics(&self) -> String {
        self.encode()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secondary_gauges_follow_the_status_and_go_with_the_zone() {
        let m = OperatorMetrics::new();
        m.set_secondaries(
            "acme",
            "web",
            vec![
                ("192.0.2.1:53".into(), true),
                ("192.0.2.2:53".into(), false),
            ],
        );
        let text = m.encode();
        assert!(text.contains("zonegate_secondary_in_sync{namespace=\"acme\",zone=\"web\",address=\"192.0.2.1:53\"} 1"), "{text}");
        assert!(text.contains("zonegate_secondary_in_sync{namespace=\"acme\",zone=\"web\",address=\"192.0.2.2:53\"} 0"), "{text}");
        assert_eq!(text.matches("# EOF").count(), 1);
        assert!(text.contains("zonegate_operator_leader"));
        m.set_secondaries("acme", "web", vec![("192.0.2.2:53".into(), true)]);
        let text = m.encode();
        assert!(!text.contains("192.0.2.1:53"), "{text}");
        assert!(text.contains("address=\"192.0.2.2:53\"} 1"), "{text}");
        m.retain_zones(&Default::default());
        assert!(!m.encode().contains("address="));
    }

    #[test]
    fn zones_by_condition_are_recounted() {
        let m = OperatorMetrics::new();
        let c = |a: &str, r: &str| {
            Some(vec![
                ("Accepted".to_string(), a.to_string()),
                ("Ready".to_string(), r.to_string()),
            ])
        };
        m.set_zone_conditions("a/x", c("True", "True"));
        m.set_zone_conditions("a/y", c("True", "False"));
        m.set_zone_conditions("b/z", c("False", "False"));
        let text = m.encode();
        assert!(
            text.contains("zonegate_operator_zones{condition=\"Ready\",status=\"False\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("zonegate_operator_zones{condition=\"Accepted\",status=\"True\"} 2"),
            "{text}"
        );
        m.set_zone_conditions("b/z", None);
        let text = m.encode();
        assert!(
            text.contains("zonegate_operator_zones{condition=\"Ready\",status=\"False\"} 1"),
            "{text}"
        );
        assert!(
            !text.contains("condition=\"Accepted\",status=\"False\""),
            "{text}"
        );
        m.write("Deployment", "apply");
        m.reconciles
            .get_or_create(&ResultLabels { result: "ok" })
            .inc();
        let text = m.encode();
        assert!(
            text.contains(
                "zonegate_operator_api_writes_total{kind=\"Deployment\",verb=\"apply\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains("zonegate_operator_reconciles_total{result=\"ok\"} 1"),
            "{text}"
        );
    }
}
