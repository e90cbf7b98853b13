//! From an object store to the zones being served: settle domain claims, compile every zone,
//! assign serials and build the immutable `ZoneSet` that is swapped in atomically.

use crate::compile::{CompileOptions, Problem, compile};
use crate::dns::{CompiledZone, ZoneSet};
use crate::objects::store::ObjectStore;
use crate::serial::{SerialKeeper, content_hash};
use crate::zone::ZoneData;
use std::collections::BTreeMap;
use std::sync::Arc;

type Claimant<'a> = (&'a (String, String), &'a crate::objects::store::ZoneEntry);

/// The outcome for one DNSZone object.
#[derive(Debug)]
pub struct ZoneReport {
    /// `namespace/name`.
    pub zone: String,
    pub domain: String,
    /// Where the DNSZone came from (file location or `apiserver`).
    pub origin: String,
    /// Compiled content, when the zone is served.
    pub data: Option<ZoneData>,
    pub serial: Option<u32>,
    /// Why the zone is not served (domain conflict), if it is not.
    pub rejected: Option<String>,
    pub problems: Vec<Problem>,
}

/// Compiles every zone in `store`. Two DNSZones claiming the same domain: the older one
/// (creationTimestamp, then namespace/name) keeps it; the other is reported and not served.
pub fn compile_all(store: &ObjectStore) -> Vec<ZoneReport> {
    let mut claims: BTreeMap<String, Vec<Claimant>> = BTreeMap::new();
    for (key, entry) in &store.zones {
        claims
            .entry(entry.zone.spec.domain.clone())
            .or_default()
            .push((key, entry));
    }
    let mut reports = Vec::new();
    for (domain, mut claimants) in claims {
        claimants.sort_by(|a, b| {
            let ta = a.1.zone.metadata.creation_timestamp.as_ref().map(|t| t.0);
            let tb = b.1.zone.metadata.creation_timestamp.as_ref().map(|t| t.0);
            // Objects without a timestamp (fresh manifests) sort after dated ones.
            (ta.is_none(), ta, a.0).cmp(&(tb.is_none(), tb, b.0))
        });
        let winner = format!("{}/{}", claimants[0].0.0, claimants[0].0.1);
        for (i, (key, entry)) in claimants.into_iter().enumerate() {
            let zone = format!("{}/{}", key.0, key.1);
            if i > 0 {
                reports.push(ZoneReport {
                    zone,
                    domain: domain.clone(),
                    origin: entry.origin.clone(),
                    data: None,
                    serial: None,
                    rejected: Some(format!(
                        "DomainConflict: domain {domain} is already claimed by DNSZone {winner}"
                    )),
                    problems: Vec::new(),
                });
                continue;
            }
            let compiled = compile(&entry.zone, store, &CompileOptions::default());
            // An invalid domain compiles to an empty zone at the root: never serve that.
            let servable = !compiled.data.origin.is_root();
            reports.push(ZoneReport {
                zone,
                domain: domain.clone(),
                origin: entry.origin.clone(),
                data: servable.then_some(compiled.data),
                serial: None,
                rejected: None,
                problems: compiled.problems,
            });
        }
    }
    reports
}

/// Assigns serials and builds the serving snapshot.
pub fn build_zone_set(reports: &mut [ZoneReport], keeper: &mut SerialKeeper, now: u64) -> ZoneSet {
    let mut zones = Vec::new();
    for r in reports.iter_mut() {
        if let Some(data) = &r.data {
            let serial = keeper.serial(&data.origin.to_ascii(), content_hash(data), now);
            r.serial = Some(serial);
            zones.push(Arc::new(CompiledZone::build(data, serial)));
        }
    }
    ZoneSet::new(zones)
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
