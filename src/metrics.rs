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

    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("encoding to a String cannot fail");
        out
    }
}
