//! From an object store to the zones being served: settle domain claims, compile every zone,
//! assign serials and build the immutable `ZoneSet` that is swapped in atomically.

use crate::api::DNSZone;
use crate::compile::{CompileOptions, Problem, ZoneCompiler};
use crate::dns::journal::{self, History};
use crate::dns::{CompiledZone, ZoneSet};
use crate::dnssec::keys::ZoneKeys;
use crate::domain::{self, Claim, Mode, Verdict, ZoneKey};
use crate::objects::store::ObjectStore;
use crate::serial::{SerialKeeper, content_hash_from, name_hash, names_sum};
use crate::zone::ZoneData;
use crate::zone::transfer::TransferPolicy;
use hickory_proto::rr::Name;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The outcome for one DNSZone object.
#[derive(Debug)]
pub struct ZoneReport {
    /// `namespace/name`.
    pub zone: String,
    pub domain: String,
    /// Where the DNSZone came from (file location or `apiserver`).
    pub origin: String,
    /// The apex, when the zone is served (its content is `Publisher::data(zone)`).
    pub apex: Option<Name>,
    /// Fingerprint of the compiled content (`serial::content_hash`), when served.
    pub hash: Option<u64>,
    pub serial: Option<u32>,
    /// Why the zone is not served (domain conflict), if it is not.
    pub rejected: Option<String>,
    /// The compiler's problems, then those of `spec.transfer` and its Secret.
    pub problems: Vec<Problem>,
}

/// What is pending publication in a `ZonePipeline`.
#[derive(Debug, Default)]
enum Pending {
    #[default]
    Nothing,
    Names(Vec<Name>),
    Everything,
}

/// One zone from objects to its serving index, incrementally: the compiler keeps its
/// intermediate results, the content hash is kept up to date name by name, and the index is
/// patched at the names that changed (`CompiledZone::patch`). A change to one object of a large
/// zone costs that object's names, not the zone.
#[derive(Default)]
pub struct ZonePipeline {
    compiler: ZoneCompiler,
    /// Sum of `serial::name_hash` over the zone's names.
    names_sum: u64,
    pending: Pending,
    published: Option<Arc<CompiledZone>>,
    /// The zone's transfer policy from the last compile, and its problems.
    transfer: Option<Arc<TransferPolicy>>,
    transfer_problems: Vec<Problem>,
    /// IXFR history, kept only while the zone has a transfer policy.
    history: Option<Arc<History>>,
    /// Whether the last `compile` recompiled the whole zone.
    pub last_full: bool,
    /// The zone's DNSSEC keys when it is signed (`spec.dnssec`; set by the feed).
    keys: Option<Arc<ZoneKeys>>,
}

impl ZonePipeline {
    /// Compiles the zone from `store`; returns the content hash.
    pub fn compile(&mut self, zone: &DNSZone, store: &ObjectStore, opts: &CompileOptions) -> u64 {
        let (policy, problems) = crate::compile::transfer::policy(zone, store);
        if self.transfer.as_deref() != policy.as_ref() {
            self.transfer = policy.map(Arc::new);
        }
        self.transfer_problems = problems;
        let delta = self.compiler.update(zone, store, opts);
        let data = self.compiler.data();
        self.last_full = delta.full;
        if delta.full {
            self.names_sum = names_sum(data);
            self.pending = Pending::Everything;
        } else if !delta.changed.is_empty() {
            let mut names = Vec::with_capacity(delta.changed.len());
            for (name, before) in delta.changed {
                if let Some(before) = &before {
                    self.names_sum = self.names_sum.wrapping_sub(name_hash(&name, before));
                }
                if let Some(now) = data.records.get(&name) {
                    self.names_sum = self.names_sum.wrapping_add(name_hash(&name, now));
                }
                names.push(name);
            }
            match &mut self.pending {
                Pending::Nothing => self.pending = Pending::Names(names),
                Pending::Names(v) => v.extend(names),
                Pending::Everything => {}
            }
        }
        content_hash_from(data, self.names_sum)
    }

    pub fn data(&self) -> &ZoneData {
        self.compiler.data()
    }

    /// The compiler's problems (those of the zone's content).
    pub fn problems(&self) -> &[Problem] {
        self.compiler.problems()
    }

    /// Problems of `spec.transfer` and its TSIG Secret.
    pub fn transfer_problems(&self) -> &[Problem] {
        &self.transfer_problems
    }

    /// The IXFR history of the published versions, when the zone has `spec.transfer`.
    pub fn history(&self) -> Option<&Arc<History>> {
        self.history.as_ref()
    }

    /// The transfer policy, when the zone has `spec.transfer`.
    pub fn transfer(&self) -> Option<&Arc<TransferPolicy>> {
        self.transfer.as_ref()
    }

    /// Sets the DNSSEC keys (None: unsigned); the next `publish` signs with them.
    pub fn set_keys(&mut self, keys: Option<Arc<ZoneKeys>>) {
        self.keys = keys;
    }

    /// What the serial follows, and the floor of a new one, for content `content_hash` dated
    /// `dated` at `now`: the same two for an unsigned zone; for a signed zone
    /// `serial::signed_hash` over its keys and signing generation at `now`, and `dated` raised to
    /// that generation's start. So renewed signatures and new keys come with a new serial, and
    /// two servers reading the same tree agree on it as they do on the content's.
    pub fn serial_basis(&self, content_hash: u64, dated: u64, now: u32) -> (u64, u64) {
        let Some(keys) = &self.keys else {
            return (content_hash, dated);
        };
        let origin = &self.data().origin;
        let generation = crate::dnssec::sign::generation(origin, now);
        let dnskeys: Vec<Vec<u8>> = keys.all().map(|k| k.dnskey_rdata()).collect();
        (
            crate::serial::signed_hash(content_hash, dnskeys.iter().map(Vec::as_slice), generation),
            dated.max(u64::from(crate::dnssec::sign::generation_start(
                origin, generation,
            ))),
        )
    }

    /// Whether `last` must be signed again at `now`: signing was turned on or off, the keys
    /// changed, or a new signing generation has begun (`sign::needs_resign`).
    fn resign_due(&self, last: &CompiledZone, now: u32) -> bool {
        match (&self.keys, last.dnssec()) {
            (None, None) => false,
            (Some(keys), Some(signed)) => {
                let tags: Vec<u16> = keys.all().map(|k| k.key_tag()).collect();
                let dnskeys: Vec<u16> = signed
                    .apex
                    .iter()
                    .filter(|r| r.rtype == hickory_proto::rr::RecordType::DNSKEY)
                    .map(|r| crate::dnssec::keys::key_tag(&r.rdata))
                    .collect();
                tags != dnskeys || crate::dnssec::sign::needs_resign(signed, now)
            }
            _ => true,
        }
    }

    /// Whether the zone published last must be signed again at `now` (a new signing
    /// generation, or keys changed): cheap, for a periodic check.
    pub fn resign_due_at(&self, now: u32) -> bool {
        self.published
            .as_ref()
            .is_some_and(|last| self.resign_due(last, now))
    }

    /// The serving index of the last compile with `serial`: the last one again when nothing
    /// changed, a patched copy when some names did, a fresh build otherwise.
    pub fn publish(&mut self, serial: u32) -> Arc<CompiledZone> {
        self.publish_at(serial, unix_now() as u32)
    }

    /// `publish` with the signing time `now`.
    pub fn publish_at(&mut self, serial: u32, now: u32) -> Arc<CompiledZone> {
        let pending = std::mem::take(&mut self.pending);
        let data = self.compiler.data();
        let (zone, names) = match (&self.published, pending) {
            (Some(last), Pending::Nothing)
                if last.serial() == serial && !self.resign_due(last, now) =>
            {
                if self.transfer.is_none() {
                    self.history = None;
                }
                return last.clone();
            }
            (Some(last), Pending::Nothing) => (last.patch(data, [], serial), Some(Vec::new())),
            (Some(last), Pending::Names(names)) => (last.patch(data, &names, serial), Some(names)),
            _ => (CompiledZone::build(data, serial), None),
        };
        // signed from the content and serial published, from the last signed version at the
        // names whose RRsets differ from the last publication (`sign_zone_reusing`): a
        // rewritten object's unchanged names keep their signatures
        let zone = match &self.keys {
            Some(keys) => {
                let prev = self.published.as_ref().and_then(|p| p.dnssec());
                let changed: Option<std::collections::HashSet<Name>> =
                    match (&names, &self.published) {
                        (Some(names), Some(last)) => Some(
                            names
                                .iter()
                                .map(Name::to_lowercase)
                                .filter(|n| last.node(n) != zone.node(n))
                                .collect(),
                        ),
                        _ => None,
                    };
                let reuse = match (prev, &changed) {
                    (Some(prev), Some(changed)) => {
                        Some(crate::dnssec::sign::Reuse { prev, changed })
                    }
                    _ => None,
                };
                zone.with_dnssec(Arc::new(crate::dnssec::sign::sign_zone_reusing(
                    data, serial, keys, now, reuse,
                )))
            }
            None => zone,
        };
        let zone = Arc::new(zone);
        // the difference to the last version, for IXFR: only for zones that allow transfers
        self.history = match (&self.transfer, &self.published) {
            (Some(_), Some(last)) => {
                let d = journal::diff(last, &zone, names.as_deref());
                Some(Arc::new(
                    self.history.as_deref().cloned().unwrap_or_default().with(d),
                ))
            }
            (Some(_), None) => Some(Arc::new(History::default())),
            (None, _) => None,
        };
        self.published = Some(zone.clone());
        zone
    }
}

/// Every DNSZone of a store, each in its own `ZonePipeline`.
#[derive(Default)]
pub struct Publisher {
    pipelines: BTreeMap<String, ZonePipeline>,
    /// Domain -> the zone the last `compile_all` accepted for it: the holder of the domain
    /// (see [`crate::domain`]).
    held: BTreeMap<String, ZoneKey>,
}

impl Publisher {
    /// Compiles every zone in `store`. Who serves a domain is [`crate::domain::resolve`] in
    /// [`Mode::Files`]: the zone this publisher served it with last keeps it; otherwise the
    /// oldest (creationTimestamp, then namespace/name). The others are reported and not served.
    pub fn compile_all(&mut self, store: &ObjectStore) -> Vec<ZoneReport> {
        let claims: Vec<Claim> = store
            .zones
            .values()
            .map(|entry| {
                let mut c = entry.zone.claim();
                c.holds = self.held.get(&c.domain) == Some(&c.key);
                c
            })
            .collect();
        let verdicts = domain::resolve(&claims, Mode::Files, |_| None);
        // Reports by domain, the zone serving it first, the others by age.
        let mut order: Vec<&Claim> = claims.iter().collect();
        order.sort_by_key(|c| {
            (
                c.domain.clone(),
                !verdicts[&c.key].is_accepted(),
                c.created.is_none(),
                c.created,
                c.key.clone(),
            )
        });
        let mut reports = Vec::new();
        let mut live = BTreeMap::new();
        let mut held = BTreeMap::new();
        for c in order {
            let entry = &store.zones[&(c.key.namespace.clone(), c.key.name.clone())];
            let zone = c.key.to_string();
            if let Verdict::Rejected { reason, message } = &verdicts[&c.key] {
                reports.push(ZoneReport {
                    zone,
                    domain: c.domain.clone(),
                    origin: entry.origin.clone(),
                    apex: None,
                    hash: None,
                    serial: None,
                    rejected: Some(format!("{reason}: {message}")),
                    problems: Vec::new(),
                });
                continue;
            }
            held.insert(c.domain.clone(), c.key.clone());
            let mut pipeline = self.pipelines.remove(&zone).unwrap_or_default();
            let hash = pipeline.compile(&entry.zone, store, &CompileOptions::default());
            // An invalid domain compiles to an empty zone at the root: never serve that.
            let apex = pipeline.data().origin.clone();
            let servable = !apex.is_root();
            reports.push(ZoneReport {
                zone: zone.clone(),
                domain: c.domain.clone(),
                origin: entry.origin.clone(),
                apex: servable.then_some(apex),
                hash: servable.then_some(hash),
                serial: None,
                rejected: None,
                problems: pipeline
                    .problems()
                    .iter()
                    .chain(pipeline.transfer_problems())
                    .cloned()
                    .collect(),
            });
            live.insert(zone, pipeline);
        }
        self.pipelines = live;
        self.held = held;
        reports
    }

    /// Sets the DNSSEC keys of the zone `namespace/name` (None: unsigned), for the next
    /// `build_zone_set`.
    pub fn set_keys(&mut self, zone: &str, keys: Option<Arc<ZoneKeys>>) {
        if let Some(p) = self.pipelines.get_mut(zone) {
            p.set_keys(keys);
        }
    }

    /// Whether a published zone must be signed again at `now` (`ZonePipeline::resign_due_at`).
    pub fn resign_due_at(&self, now: u32) -> bool {
        self.pipelines.values().any(|p| p.resign_due_at(now))
    }

    /// The compiled content of a served zone (`namespace/name`).
    pub fn data(&self, zone: &str) -> Option<&ZoneData> {
        self.pipelines.get(zone).map(ZonePipeline::data)
    }

    /// Assigns serials (new ones no lower than `content_time`) and builds the serving
    /// snapshot, signing the zones that have keys.
    pub fn build_zone_set(
        &mut self,
        reports: &mut [ZoneReport],
        keeper: &mut SerialKeeper,
        content_time: u64,
    ) -> ZoneSet {
        self.build_zone_set_at(reports, keeper, content_time, unix_now() as u32)
    }

    /// `build_zone_set` with the signing time `now`.
    pub fn build_zone_set_at(
        &mut self,
        reports: &mut [ZoneReport],
        keeper: &mut SerialKeeper,
        content_time: u64,
        now: u32,
    ) -> ZoneSet {
        let mut zones = Vec::new();
        let mut transfers = Vec::new();
        for r in reports.iter_mut() {
            if let (Some(apex), Some(hash)) = (&r.apex, r.hash)
                && let Some(pipeline) = self.pipelines.get_mut(&r.zone)
            {
                let (basis, dated) = pipeline.serial_basis(hash, content_time, now);
                let serial = keeper.serial(&apex.to_ascii(), basis, dated);
                r.serial = Some(serial);
                let zone = pipeline.publish_at(serial, now);
                if let Some(t) = pipeline.transfer() {
                    transfers.push((
                        zone.origin().clone(),
                        t.clone(),
                        pipeline.history().cloned(),
                    ));
                }
                zones.push(zone);
            }
        }
        let mut set = ZoneSet::new(zones);
        for (origin, policy, history) in transfers {
            set.set_transfer(&origin, policy);
            if let Some(h) = history {
                set.set_history(&origin, h);
            }
        }
        set
    }
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    //! The incremental pipeline against the pure functions: after every random change, the
    //! compiler's data and problems equal a fresh `compile`, the kept-up hash equals
    //! `content_hash`, and the patched index equals a fresh `CompiledZone::build`.
    use super::*;
    use crate::compile::compile;
    use crate::compile::testing::*;
    use crate::serial::content_hash;
    use serde_json::{Value, json};

    use crate::test_rng::Rng;

    const NAMES: &[&str] = &[
        "acme.example.com",
        "a.acme.example.com",
        "b.acme.example.com",
        "www.acme.example.com",
        "x.y.acme.example.com",
        "deep.x.y.acme.example.com",
        "*.apps.acme.example.com",
        "ns1.acme.example.com",
        "sub.acme.example.com",
        "host.sub.acme.example.com",
        "deleg.acme.example.com",
        "in.deleg.acme.example.com",
        "other.example.org",
    ];
    const ADDRS: &[&str] = &["192.0.2.1", "192.0.2.2", "2001:db8::1", "lb.example.net"];

    fn hosts(r: &mut Rng) -> Vec<&'static str> {
        (0..1 + r.index(2)).map(|_| *r.pick(NAMES)).collect()
    }

    fn dated(r: &mut Rng, v: Value) -> Value {
        match r.index(3) {
            0 => v,
            k => with_meta(
                v,
                "creationTimestamp",
                json!(format!("2026-01-0{k}T00:00:00Z")),
            ),
        }
    }

    fn random_object(r: &mut Rng) -> Value {
        let id = r.index(6);
        let v = match r.index(3) {
            0 => {
                let addrs: Vec<&str> = (0..1 + r.index(2)).map(|_| *r.pick(ADDRS)).collect();
                ingress(&format!("i{id}"), &hosts(r), &addrs)
            }
            1 => {
                let eps: Vec<Value> = (0..1 + r.index(3))
                    .map(|_| {
                        let (t, target) = match r.index(8) {
                            0..=2 => ("A", *r.pick(&["192.0.2.7", "192.0.2.8"])),
                            3..=4 => ("CNAME", *r.pick(&["t1.example.net", "t2.example.net"])),
                            5..=6 => ("TXT", *r.pick(&["v=1", "v=2"])),
                            _ => ("NS", "ns.example.net"),
                        };
                        json!({"dnsName": r.pick(NAMES), "recordType": t, "targets": [target],
                            "recordTTL": 60 + r.index(3) * 60})
                    })
                    .collect();
                dns_endpoint(&format!("e{id}"), Value::Array(eps))
            }
            _ => {
                let addrs = [*r.pick(ADDRS)];
                let s = lb_service("acme", &format!("s{id}"), &addrs);
                with_meta(
                    s,
                    "annotations",
                    json!({"external-dns.alpha.kubernetes.io/hostname": hosts(r).join(",")}),
                )
            }
        };
        dated(r, v)
    }

    fn random_zone(r: &mut Rng) -> crate::api::DNSZone {
        let mut records = vec![json!({"name": "www", "type": "A", "values": ["192.0.2.9"]})];
        if r.index(2) == 0 {
            records
                .push(json!({"name": "a", "type": "CNAME", "values": ["www.acme.example.com."]}));
        }
        let mut delegations = vec![json!({"name": "deleg", "nameservers": [
            {"hostname": "ns.deleg.acme.example.com", "addresses": ["192.0.2.53"]}]})];
        if r.index(2) == 0 {
            delegations.push(json!({"name": "kid", "zoneRef": {"name": "child"}}));
        }
        let z = zone(json!({"records": records, "delegations": delegations}));
        with_status(
            z,
            json!({"nameservers": [
                {"hostname": "ns1.acme.example.com", "addresses": ["192.0.2.10"]},
                {"hostname": "ns2.example.net", "addresses": ["192.0.2.11"]}]}),
        )
    }

    /// A pipeline with keys publishes signed: the same index again while nothing changes, a
    /// new signature after a change, new keys or none re-sign or unsign.
    #[test]
    fn signed_pipeline_signs_on_change_and_on_new_keys() {
        let keys = ed25519_keys;
        let opts = CompileOptions::default();
        let zone =
            zone(json!({"records": [{"name": "www", "type": "A", "values": ["192.0.2.1"]}]}));
        let store = ObjectStore::default();
        let mut p = ZonePipeline::default();
        p.compile(&zone, &store, &opts);
        let unsigned = p.publish(1);
        assert!(unsigned.dnssec().is_none());
        let k1 = keys();
        p.set_keys(Some(k1.clone()));
        let a = p.publish(1);
        let signed = a.dnssec().expect("signed");
        assert_eq!(
            crate::dnssec::keys::key_tag(&signed.apex[0].rdata),
            k1.active.key_tag()
        );
        assert!(
            Arc::ptr_eq(&a, &p.publish(1)),
            "nothing changed: the same index"
        );
        assert!(*a == *p.publish(1));
        // a change: patched and signed again with the new serial
        let zone2 = zone_with_www("192.0.2.2");
        p.compile(&zone2, &store, &opts);
        let b = p.publish(2);
        assert_ne!(a.dnssec(), b.dnssec());
        assert_eq!(b.serial(), 2);
        // new keys: re-signed at the same serial
        let k2 = keys();
        p.set_keys(Some(k2.clone()));
        let c = p.publish(2);
        assert_eq!(
            crate::dnssec::keys::key_tag(&c.dnssec().unwrap().apex[0].rdata),
            k2.active.key_tag()
        );
        p.set_keys(None);
        assert!(p.publish(2).dnssec().is_none());
    }

    /// A signed zone's serial follows its content, its keys and its signing generation: new
    /// signatures (a generation ends) and new keys come with a new serial that secondaries
    /// transfer, and every time inside one generation gives the same serial. Unsigned zones keep
    /// the content hash.
    #[test]
    fn signed_serial_follows_keys_and_signing_generation() {
        use crate::dnssec::sign::{generation, generation_start};
        let keys = ed25519_keys;
        let opts = CompileOptions::default();
        let store = ObjectStore::default();
        let mut p = ZonePipeline::default();
        let content = p.compile(&zone_with_www("192.0.2.1"), &store, &opts);
        let origin = p.data().origin.clone();
        let t0 = 1_800_000_000u32;
        let g = generation(&origin, t0);
        let start = generation_start(&origin, g);
        let next = generation_start(&origin, g + 1);
        assert_eq!(p.serial_basis(content, 77, t0), (content, 77), "unsigned");
        let k1 = keys();
        p.set_keys(Some(k1.clone()));
        let (h1, dated) = p.serial_basis(content, 77, t0);
        assert_ne!(h1, content);
        assert_eq!(dated, u64::from(start), "raised to the generation's start");
        assert_eq!(
            p.serial_basis(content, u64::from(next) + 5, t0).1,
            u64::from(next) + 5
        );
        for t in [start, t0, next - 1] {
            assert_eq!(
                p.serial_basis(content, 77, t).0,
                h1,
                "one generation, one hash"
            );
        }
        let (h2, dated2) = p.serial_basis(content, 77, next);
        assert_ne!(h2, h1, "a new generation");
        assert_eq!(dated2, u64::from(next));
        let k2 = keys();
        p.set_keys(Some(k2));
        assert_ne!(p.serial_basis(content, 77, t0).0, h1, "new keys");
        p.set_keys(Some(k1));
        assert_eq!(p.serial_basis(content, 77, t0).0, h1, "the same keys again");

        // through SerialKeeper and publish: the serial moves at the generation's end, the
        // signatures with it, and not before
        let mut keeper = SerialKeeper::new(None);
        let serial_at = |p: &mut ZonePipeline, keeper: &mut SerialKeeper, t: u32| {
            let (basis, dated) = p.serial_basis(content, 1_000, t);
            let serial = keeper.serial("acme.example.com.", basis, dated);
            (serial, p.publish_at(serial, t))
        };
        let (s1, z1) = serial_at(&mut p, &mut keeper, t0);
        assert_eq!(
            s1, start,
            "a new serial is no lower than the generation's start"
        );
        assert!(!p.resign_due_at(next - 1));
        let (s1b, z1b) = serial_at(&mut p, &mut keeper, next - 1);
        assert_eq!(s1b, s1);
        assert!(
            Arc::ptr_eq(&z1, &z1b),
            "nothing to do within the generation"
        );
        assert!(p.resign_due_at(next), "a new generation is due");
        let (s2, z2) = serial_at(&mut p, &mut keeper, next);
        assert_eq!(s2, next);
        let (sig1, sig2) = (z1.dnssec().unwrap(), z2.dnssec().unwrap());
        assert_eq!(sig2.inception, next - 3600);
        assert_eq!(
            sig2.expiration - sig1.expiration,
            crate::dnssec::sign::GENERATION
        );
        assert_eq!(z2.serial(), s2);
        assert!(!p.resign_due_at(next + 1));
    }

    fn zone_with_www(ip: &str) -> crate::api::DNSZone {
        zone(json!({"records": [{"name": "www", "type": "A", "values": [ip]}]}))
    }

    #[test]
    fn incremental_pipeline_equals_fresh_compile_and_build() {
        random_changes_match_fresh(1..=40, None);
    }

    /// The same with the zone signed (Ed25519, deterministic): after every publish the signed
    /// records equal a fresh `sign_zone` of the fresh content, and its signatures verify.
    #[test]
    fn signed_pipeline_equals_a_fresh_sign() {
        random_changes_match_fresh(1..=8, Some(ed25519_keys()));
    }

    /// A new Ed25519 key (deterministic signatures) as a zone's only key.
    fn ed25519_keys() -> Arc<ZoneKeys> {
        use crate::dnssec::keys::{ACTIVE_KEY, Algorithm, SigningKey};
        let pem = SigningKey::generate(Algorithm::Ed25519)
            .unwrap()
            .to_pkcs8_pem();
        Arc::new(
            ZoneKeys::from_entries("t", |k| (k == ACTIVE_KEY).then_some(pem.as_bytes())).unwrap(),
        )
    }

    /// Random object changes through one `ZonePipeline` (signed with `keys` if given), each
    /// compile and most publishes compared with the pure functions on the same store.
    fn random_changes_match_fresh(
        seeds: std::ops::RangeInclusive<u64>,
        keys: Option<Arc<ZoneKeys>>,
    ) {
        const NOW: u32 = 1_800_000_000;
        let opts = CompileOptions::default();
        let (mut fulls, mut partials) = (0, 0);
        for seed in seeds {
            let mut r = Rng(seed.wrapping_mul(0x9E3779B97F4A7C15));
            let mut zone = random_zone(&mut r);
            let mut store = ObjectStore::default();
            let mut pipeline = ZonePipeline::default();
            pipeline.set_keys(keys.clone());
            for step in 0..60u32 {
                match r.index(11) {
                    0..=4 => store.insert_object(obj(random_object(&mut r))),
                    5..=6 if !store.objects.is_empty() => {
                        let k = r.index(store.objects.len());
                        let key = store.objects.keys().nth(k).cloned().expect("key");
                        store.objects.remove(&key);
                    }
                    7 => {
                        // the same content again, in a new allocation: no change
                        if let Some((k, o)) = store.objects.iter().next() {
                            let (k, o) = (k.clone(), Arc::new((**o).clone()));
                            store.objects.insert(k, o);
                        }
                    }
                    8 => zone = random_zone(&mut r),
                    9 => {
                        // the child zone a delegation may reference comes, changes and goes
                        let key = ("acme".to_string(), "child".to_string());
                        if r.index(3) == 0 {
                            store.zones.remove(&key);
                        } else {
                            let child = zone_json(json!({"apiVersion": "zonegate.dev/v1alpha1",
                                "kind": "DNSZone", "metadata": {"name": "child", "namespace": "acme"},
                                "spec": {"domain": "kid.acme.example.com"}}));
                            let ip = format!("192.0.2.{}", 100 + r.index(3));
                            add_zone(
                                &mut store,
                                with_status(
                                    child,
                                    json!({"nameservers": [{"hostname": "ns1.kid.acme.example.com",
                                        "addresses": [ip]}]}),
                                ),
                            );
                        }
                    }
                    _ => {}
                }
                let hash = pipeline.compile(&zone, &store, &opts);
                let fresh = compile(&zone, &store, &opts);
                let ctx = format!("seed {seed} step {step}");
                assert_eq!(pipeline.data(), &fresh.data, "{ctx}: data");
                assert_eq!(
                    pipeline.problems(),
                    fresh.problems.as_slice(),
                    "{ctx}: problems"
                );
                assert_eq!(hash, content_hash(&fresh.data), "{ctx}: hash");
                // publish after most compiles, so that changes also pile up between publishes
                if r.index(4) != 0 {
                    let serial = 1000 + step;
                    let published = pipeline.publish_at(serial, NOW);
                    let built = CompiledZone::build(&fresh.data, serial);
                    let built = match &keys {
                        Some(k) => built.with_dnssec(Arc::new(crate::dnssec::sign::sign_zone(
                            &fresh.data,
                            serial,
                            k,
                            NOW,
                        ))),
                        None => built,
                    };
                    assert!(
                        *published == built,
                        "{ctx}: patched index differs from a fresh build"
                    );
                    if let Some(k) = &keys {
                        let want = crate::dnssec::sign::sign_zone(&fresh.data, serial, k, NOW);
                        let got = published.dnssec().expect("signed");
                        assert!(
                            **got == want,
                            "{ctx}: signed records differ from a fresh sign"
                        );
                        let soa =
                            crate::dnssec::sign::canonical_rdata(&fresh.data.soa_rdata(serial))
                                .unwrap();
                        let sig = got
                            .rrsigs_for(&fresh.data.origin, hickory_proto::rr::RecordType::SOA)
                            .next()
                            .expect("an RRSIG over the SOA");
                        assert!(
                            crate::dnssec::sign::verify_rrsig(
                                &k.active,
                                &sig.rdata,
                                &fresh.data.origin,
                                &[soa]
                            ),
                            "{ctx}: the SOA's RRSIG verifies"
                        );
                    }
                }
                if pipeline.last_full {
                    fulls += 1;
                } else {
                    partials += 1;
                }
            }
        }
        // both paths ran, the incremental one most
        assert!(
            fulls > 0 && partials > fulls,
            "{fulls} full, {partials} incremental"
        );
    }

    mod who_serves_a_domain {
        //! Files mode: the zone serving a domain keeps it when another DNSZone for the same
        //! domain appears (GitOps manifests have no creationTimestamp, so the name would decide).
        use super::super::*;
        use crate::feed::files::ManifestLoader;

        fn zone_yaml(ns: &str, name: &str, ip: &str) -> String {
            format!(
                "apiVersion: zonegate.dev/v1alpha1\nkind: DNSZone\nmetadata: {{namespace: {ns}, name: {name}}}\nspec:\n  domain: shop.example.com\n  records: [{{name: www, type: A, values: [\"{ip}\"]}}]\n"
            )
        }

        fn served(reports: &[ZoneReport]) -> Vec<(String, Option<String>)> {
            reports
                .iter()
                .map(|r| (r.zone.clone(), r.rejected.clone()))
                .collect()
        }

        #[test]
        fn a_zone_added_later_does_not_take_the_domain_of_the_zone_being_served() {
            let dir = std::env::temp_dir().join(format!("zg-tiebreak-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(
                dir.join("a.yaml"),
                zone_yaml("team", "zz-shop", "192.0.2.1"),
            )
            .unwrap();
            let mut loader = ManifestLoader::new(&dir);
            let mut publisher = Publisher::default();
            let reports = publisher.compile_all(&loader.load().store);
            assert_eq!(served(&reports), vec![("team/zz-shop".to_string(), None)]);

            // A second DNSZone for the domain, whose name sorts first.
            std::fs::write(
                dir.join("b.yaml"),
                zone_yaml("team", "aa-shop", "192.0.2.2"),
            )
            .unwrap();
            let reports = publisher.compile_all(&loader.load().store);
            assert_eq!(
                served(&reports),
                vec![
                    ("team/zz-shop".to_string(), None),
                    (
                        "team/aa-shop".to_string(),
                        Some("DomainConflict: domain shop.example.com is already claimed by DNSZone team/zz-shop, which serves it already and keeps it until it goes away; this zone is not served while it exists".to_string())
                    ),
                ]
            );
            let www: Name = "www.shop.example.com.".parse().unwrap();
            let a = |p: &Publisher| {
                p.data("team/zz-shop")
                    .and_then(|d| d.records.get(&www))
                    .is_some()
            };
            assert!(a(&publisher), "the zone being served still has its records");
            assert!(publisher.data("team/aa-shop").is_none());
            // Again, with nothing changed: still the same zone.
            let reports = publisher.compile_all(&loader.load().store);
            assert_eq!(reports[0].zone, "team/zz-shop");
            assert!(reports[0].rejected.is_none());

            // The holder goes: the newcomer takes over.
            std::fs::remove_file(dir.join("a.yaml")).unwrap();
            let reports = publisher.compile_all(&loader.load().store);
            assert_eq!(served(&reports), vec![("team/aa-shop".to_string(), None)]);

            // A fresh start (no zone served yet) decides by age, then name, as before.
            std::fs::write(
                dir.join("a.yaml"),
                zone_yaml("team", "zz-shop", "192.0.2.1"),
            )
            .unwrap();
            let reports = Publisher::default().compile_all(&loader.load().store);
            assert_eq!(reports[0].zone, "team/aa-shop");
            assert!(reports[0].rejected.is_none());
            assert!(
                reports[1]
                    .rejected
                    .as_deref()
                    .unwrap()
                    .contains("which comes first by namespace/name (neither is older)")
            );
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}
