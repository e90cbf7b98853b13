//! Prometheus metrics of the DNS server (`/metrics`).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// `zonegate_rrl_actions_total`: what rate limiting did with a response.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RrlLabels {
    /// `dropped` or `slipped`.
    pub action: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueryLabels {
    /// Zone apex, or `none` for names outside every served zone.
    pub zone: String,
    pub qtype: String,
    pub rcode: String,
    pub transport: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ZoneLabels {
    pub zone: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WatchLabels {
    pub namespace: String,
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NamespaceLabels {
    pub namespace: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TransferLabels {
    pub zone: String,
    /// `axfr`, `ixfr` (increments), `ixfr_full` (whole zone), `ixfr_current` (SOA alone),
    /// `error`.
    pub kind: &'static str,
    /// `sent`, or why it was refused (`refused_address`, `notauth_badsig`, ...).
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NotifyLabels {
    pub zone: String,
    /// `acknowledged`, `retried`, `given_up`, `error_reply`.
    pub result: &'static str,
}

/// Every metric the server exports.
pub struct ServerMetrics {
    pub registry: Registry,
    pub queries: Family<QueryLabels, Counter>,
    pub latency: Histogram,
    pub records: Family<ZoneLabels, Gauge>,
    pub serial: Family<ZoneLabels, Gauge>,
    pub problems: Family<ZoneLabels, Gauge>,
    pub reloads: Counter,
    pub reload_errors: Counter,
    pub zones: Gauge,
    /// Cluster mode: 1 for each watch that is failing (its last known objects are served).
    pub watch_failing: Family<WatchLabels, Gauge>,
    /// Cluster mode: 1 for each namespace the zone lists but may not read (no consent).
    pub namespace_refused: Family<NamespaceLabels, Gauge>,
    /// Cluster mode: seconds since the oldest failing watch started failing (0 when all fine).
    pub stale_seconds: Gauge,
    /// Cluster mode: objects held from the apiserver.
    pub objects: Gauge,
    /// Zone transfers answered, by zone, kind and outcome.
    pub transfers: Family<TransferLabels, Counter>,
    /// Messages of zone transfers sent.
    pub transfer_messages: Counter,
    /// IXFR history per zone (zones with `spec.transfer`): estimated bytes, and versions kept.
    pub ixfr_history_bytes: Family<ZoneLabels, Gauge>,
    pub ixfr_history_versions: Family<ZoneLabels, Gauge>,
    /// NOTIFY messages to secondaries, by zone and result.
    pub notifies: Family<NotifyLabels, Counter>,
    /// TCP connections closed to let a new client in (the limit was reached).
    pub tcp_evicted: Counter,
    /// notAfter of the certificate the encrypted listeners serve, unix seconds (0: none).
    pub tls_not_after: Gauge,
    /// DoT and DoH connections shut down because their listener's cap was reached.
    pub tls_evicted: Counter,
    /// UDP responses limited by RRL, by action (`dropped`, `slipped`: sent truncated).
    pub rrl_actions: Family<RrlLabels, Counter>,
    /// Problems of the last load outside the served zones' own (files, objects, zones not
    /// served); with the sum of `problems` it is the count of the "zones loaded" line.
    pub manifest_problems: Gauge,
}

impl Default for ServerMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl ServerMetrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("zonegate");
        let queries = Family::<QueryLabels, Counter>::default();
        registry.register(
            "dns_queries",
            "DNS queries answered, by zone, type, response code and transport",
            queries.clone(),
        );
        // 10us .. ~80ms
        let latency = Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
            0.00001, 2.0, 14,
        ));
        registry.register(
            "dns_query_duration_seconds",
            "Time to build one DNS response",
            latency.clone(),
        );
        let records = Family::<ZoneLabels, Gauge>::default();
        registry.register(
            "zone_records",
            "Records served per zone (SOA included)",
            records.clone(),
        );
        let serial = Family::<ZoneLabels, Gauge>::default();
        registry.register(
            "zone_serial",
            "SOA serial currently served per zone",
            serial.clone(),
        );
        let problems = Family::<ZoneLabels, Gauge>::default();
        registry.register(
            "zone_problems",
            "Inputs dropped or invalid in the last compile, per zone",
            problems.clone(),
        );
        let reloads = Counter::default();
        registry.register(
            "reloads",
            "Times the served zones were recompiled and swapped in",
            reloads.clone(),
        );
        let reload_errors = Counter::default();
        registry.register(
            "reload_errors",
            "Reloads that found broken input (last good data kept)",
            reload_errors.clone(),
        );
        let zones = Gauge::default();
        registry.register("zones", "Zones served", zones.clone());
        let watch_failing = Family::<WatchLabels, Gauge>::default();
        registry.register(
            "source_watch_failing",
            "Watches failing now (last known data is served)",
            watch_failing.clone(),
        );
        let namespace_refused = Family::<NamespaceLabels, Gauge>::default();
        registry.register(
            "namespace_refused",
            "Namespaces the zone lists but may not read (no DNSZoneGrant)",
            namespace_refused.clone(),
        );
        let stale_seconds = Gauge::default();
        registry.register(
            "source_stale_seconds",
            "Seconds since the oldest failing watch started failing",
            stale_seconds.clone(),
        );
        let objects = Gauge::default();
        registry.register(
            "source_objects",
            "Objects held from the apiserver",
            objects.clone(),
        );
        let transfers = Family::<TransferLabels, Counter>::default();
        registry.register(
            "transfers",
            "Zone transfers (AXFR/IXFR) answered, by zone, kind and outcome",
            transfers.clone(),
        );
        let transfer_messages = Counter::default();
        registry.register(
            "transfer_messages",
            "DNS messages sent in zone transfers",
            transfer_messages.clone(),
        );
        let ixfr_history_bytes = Family::<ZoneLabels, Gauge>::default();
        registry.register(
            "ixfr_history_bytes",
            "Estimated memory held by the zone's IXFR history (the differences of its last versions; zones with spec.transfer only)",
            ixfr_history_bytes.clone(),
        );
        let ixfr_history_versions = Family::<ZoneLabels, Gauge>::default();
        registry.register(
            "ixfr_history_versions",
            "Differences kept in the zone's IXFR history (serials a secondary can IXFR from)",
            ixfr_history_versions.clone(),
        );
        let notifies = Family::<NotifyLabels, Counter>::default();
        registry.register(
            "notifies",
            "NOTIFY messages to secondaries, by zone and result",
            notifies.clone(),
        );
        let tcp_evicted = Counter::default();
        registry.register(
            "dns_tcp_evicted",
            "TCP connections closed because the limit was reached and a new client came (the one idle longest goes)",
            tcp_evicted.clone(),
        );
        registry.register(
            "network_log_events",
            "Log events caused by network input (malformed packets and the like); at most one summary line per minute is logged",
            crate::dns::netlog::EVENTS.clone(),
        );
        let tls_not_after = Gauge::default();
        registry.register(
            "tls_certificate_expiry_timestamp_seconds",
            "notAfter of the certificate served on the DoT, DoH and DoQ listeners, as unix seconds",
            tls_not_after.clone(),
        );
        let tls_evicted = Counter::default();
        registry.register(
            "dns_tls_evicted",
            "DoT and DoH connections shut down because the listener's connection cap was reached (the oldest go)",
            tls_evicted.clone(),
        );
        let rrl_actions = Family::<RrlLabels, Counter>::default();
        registry.register(
            "rrl_actions",
            "UDP responses limited by response rate limiting (--rrl-responses-per-second), by action: dropped, or slipped (sent truncated so that real clients retry over TCP); they are counted in zonegate_queries_total too",
            rrl_actions.clone(),
        );
        let manifest_problems = Gauge::default();
        registry.register(
            "manifest_problems",
            "Problems of the last load outside the served zones (files, objects, zones not served); plus the sum of zonegate_zone_problems it is the count the log's \"zones loaded\" line gives",
            manifest_problems.clone(),
        );
        Self {
            transfers,
            transfer_messages,
            ixfr_history_bytes,
            ixfr_history_versions,
            notifies,
            registry,
            queries,
            latency,
            records,
            serial,
            problems,
            reloads,
            reload_errors,
            zones,
            watch_failing,
            namespace_refused,
            stale_seconds,
            objects,
            tcp_evicted,
            tls_not_after,
            tls_evicted,
            rrl_actions,
            manifest_problems,
        }
    }

    /// Exports one served zone's gauges: records, serial, problems of its last compile, and
    /// its IXFR history when it keeps one.
    pub fn export_zone(
        &self,
        zone: &crate::dns::CompiledZone,
        set: &crate::dns::ZoneSet,
        problems: usize,
    ) {
        let l = ZoneLabels {
            zone: zone.label().to_string(),
        };
        self.records
            .get_or_create(&l)
            .set(zone.record_count() as i64);
        self.serial.get_or_create(&l).set(i64::from(zone.serial()));
        self.problems.get_or_create(&l).set(problems as i64);
        match set.history(zone.origin()) {
            Some(h) => {
                self.ixfr_history_bytes
                    .get_or_create(&l)
                    .set(h.bytes() as i64);
                self.ixfr_history_versions
                    .get_or_create(&l)
                    .set(h.len() as i64);
            }
            None => {
                self.ixfr_history_bytes.remove(&l);
                self.ixfr_history_versions.remove(&l);
            }
        }
    }

    /// Removes a zone's gauges (no longer served).
    pub fn forget_zone(&self, zone: &str) {
        let l = ZoneLabels {
            zone: zone.to_string(),
        };
        self.records.remove(&l);
        self.serial.remove(&l);
        self.problems.remove(&l);
        self.ixfr_history_bytes.remove(&l);
        self.ixfr_history_versions.remove(&l);
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("encoding to a String cannot fail");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every metric the server registers has a row in docs/operations.md's table.
    #[test]
    fn every_server_metric_is_documented() {
        let docs = include_str!("../docs/operations.md");
        // the names registered in this file: `registry.register(` then the quoted name
        let source = include_str!("metrics.rs");
        let code = &source[..source.find("#[cfg(test)]").unwrap()];
        let names: Vec<String> = code
            .split("registry.register(")
            .skip(1)
            .filter_map(|rest| rest.split('"').nth(1))
            .map(|n| format!("zonegate_{n}"))
            .collect();
        assert!(names.len() > 20, "{names:?}");
        for name in names {
            let row = format!("`{name}`");
            let counter = format!("`{name}_total");
            let labelled = format!("`{name}{{");
            assert!(
                docs.contains(&row) || docs.contains(&counter) || docs.contains(&labelled),
                "{name} is not in docs/operations.md"
            );
        }
    }

    #[test]
    fn a_zone_s_history_is_exported_and_forgotten() {
        use crate::dns::journal::{History, diff};
        use crate::dns::{CompiledZone, ZoneSet};
        use crate::zone::ZoneData;
        use std::sync::Arc;
        let d = ZoneData::acme_example();
        let v1 = CompiledZone::build(&d, 1);
        let mut d2 = d.clone();
        d2.add(
            hickory_proto::rr::Name::from_ascii("new.acme.example.com.").unwrap(),
            60,
            hickory_proto::rr::RData::A(std::net::Ipv4Addr::LOCALHOST.into()),
        );
        let v2 = Arc::new(CompiledZone::build(&d2, 2));
        let h = History::default().with(diff(&v1, &v2, None));
        let mut set = ZoneSet::new([v2.clone()]);
        let m = ServerMetrics::new();
        m.export_zone(&v2, &set, 0);
        assert!(!m.encode().contains("zonegate_ixfr_history_bytes{"));
        set.set_history(v2.origin(), Arc::new(h.clone()));
        m.export_zone(&v2, &set, 0);
        let text = m.encode();
        let zone = "zone=\"acme.example.com.\"";
        assert!(
            text.contains(&format!("zonegate_ixfr_history_versions{{{zone}}} 1")),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "zonegate_ixfr_history_bytes{{{zone}}} {}",
                h.bytes()
            )),
            "{text}"
        );
        assert!(
            text.contains(&format!("zonegate_zone_serial{{{zone}}} 2")),
            "{text}"
        );
        m.forget_zone("acme.example.com.");
        assert!(!m.encode().contains(zone));
    }
}
