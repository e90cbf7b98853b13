//! IXFR history (RFC 1995): the differences between the last versions of a zone, computed when
//! a version is published, and the condensed difference from any kept serial to the current
//! one. Bounded: at most `MAX_VERSIONS` differences and `MAX_BYTES` (estimated) per zone; the
//! oldest go first, and a single difference larger than the bound empties the history (IXFR
//! from before it falls back to the full zone). Pure data; no sockets.

use super::compiled::CompiledZone;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

/// Differences kept per zone.
pub const MAX_VERSIONS: usize = 10;
/// Estimated bytes of differences kept per zone.
pub const MAX_BYTES: usize = 16 << 20;

/// The change from one version (serial) of a zone to the next. The SOA is not in the lists.
#[derive(Clone, Debug, PartialEq)]
pub struct Diff {
    pub from_soa: Record,
    pub to_soa: Record,
    pub removed: Vec<Record>,
    pub added: Vec<Record>,
}

impl Diff {
    pub fn from_serial(&self) -> u32 {
        soa_serial(&self.from_soa)
    }
    pub fn to_serial(&self) -> u32 {
        soa_serial(&self.to_soa)
    }
    /// Estimated memory: the records and their names (RDATA beyond the inline size is small
    /// for the record types a zone holds).
    pub fn bytes(&self) -> usize {
        self.removed
            .iter()
            .chain(&self.added)
            .map(|r| std::mem::size_of::<Record>() + r.name.len())
            .sum::<usize>()
            + 2 * std::mem::size_of::<Record>()
    }
}

fn soa_serial(r: &Record) -> u32 {
    match &r.data {
        RData::SOA(s) => s.serial,
        _ => 0,
    }
}

/// What identifies a record in a difference: owner, TTL, data (a TTL change is a deletion and
/// an addition, RFC 1995 §4).
type Key = (Name, u32, RData);

fn key(r: &Record) -> Key {
    (r.name.clone(), r.ttl, r.data.clone())
}

/// The records of `zone` at `name`, SOA excluded.
fn records_at<'z>(zone: &'z CompiledZone, name: &Name) -> Vec<&'z Record> {
    zone.node(name)
        .map(|n| {
            n.rrsets()
                .filter(|(t, _)| *t != RecordType::SOA)
                .flat_map(|(_, set)| set.iter())
                .collect()
        })
        .unwrap_or_default()
}

/// The difference between two versions, looking only at `names` when given (the names a
/// change touched), else at every name of either.
pub fn diff(old: &CompiledZone, new: &CompiledZone, names: Option<&[Name]>) -> Diff {
    let mut removed = Vec::new();
    let mut added = Vec::new();
    let mut at = |name: &Name| {
        let before = records_at(old, name);
        let after = records_at(new, name);
        if before.is_empty() && after.is_empty() {
            return;
        }
        let b: HashSet<Key> = before.iter().map(|r| key(r)).collect();
        let a: HashSet<Key> = after.iter().map(|r| key(r)).collect();
        removed.extend(
            before
                .iter()
                .filter(|r| !a.contains(&key(r)))
                .map(|r| (*r).clone()),
        );
        added.extend(
            after
                .iter()
                .filter(|r| !b.contains(&key(r)))
                .map(|r| (*r).clone()),
        );
    };
    match names {
        Some(names) => {
            let mut seen = HashSet::new();
            for n in names {
                let n = n.to_lowercase();
                if seen.insert(n.clone()) {
                    at(&n);
                }
            }
        }
        None => {
            let all: HashSet<&Name> = old.names().chain(new.names()).collect();
            for n in all {
                at(n);
            }
        }
    }
    Diff {
        from_soa: old.soa()[0].clone(),
        to_soa: new.soa()[0].clone(),
        removed,
        added,
    }
}

/// The differences of the last versions of one zone, oldest first; each one's `to` serial is
/// the next one's `from`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct History {
    diffs: VecDeque<Arc<Diff>>,
    bytes: usize,
}

/// A condensed IXFR answer: the client's SOA, what to delete, our SOA, what to add.
#[derive(Clone, Debug, PartialEq)]
pub struct Condensed {
    pub from_soa: Record,
    pub to_soa: Record,
    pub removed: Vec<Record>,
    pub added: Vec<Record>,
}

impl History {
    /// The history with `d` appended (a new version was published), trimmed to the bounds.
    /// A difference that does not continue the last one (a restart, a serial jump) starts
    /// over.
    pub fn with(&self, d: Diff) -> Self {
        let mut h = self.clone();
        if h.diffs
            .back()
            .is_some_and(|last| last.to_serial() != d.from_serial())
        {
            h = History::default();
        }
        if d.from_serial() == d.to_serial() {
            return h;
        }
        let bytes = d.bytes();
        if bytes > MAX_BYTES {
            return History::default();
        }
        h.bytes += bytes;
        h.diffs.push_back(Arc::new(d));
        while h.diffs.len() > MAX_VERSIONS || h.bytes > MAX_BYTES {
            if let Some(old) = h.diffs.pop_front() {
                h.bytes -= old.bytes();
            }
        }
        h
    }

    pub fn len(&self) -> usize {
        self.diffs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.diffs.is_empty()
    }

    /// Estimated bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The serials an IXFR can start from (oldest first).
    pub fn serials(&self) -> impl Iterator<Item = u32> + '_ {
        self.diffs.iter().map(|d| d.from_serial())
    }

    /// The net change from `serial` to the newest version, or `None` when `serial` is not kept.
    /// A record added and later removed (or the reverse) does not appear.
    pub fn since(&self, serial: u32) -> Option<Condensed> {
        let start = self.diffs.iter().position(|d| d.from_serial() == serial)?;
        let mut removed: HashMap<Key, Record> = HashMap::new();
        let mut added: HashMap<Key, Record> = HashMap::new();
        let mut order: Vec<(bool, Key)> = Vec::new();
        for d in self.diffs.iter().skip(start) {
            for r in &d.removed {
                let k = key(r);
                if added.remove(&k).is_none() {
                    removed.insert(k.clone(), r.clone());
                    order.push((false, k));
                }
            }
            for r in &d.added {
                let k = key(r);
                if removed.remove(&k).is_none() {
                    added.insert(k.clone(), r.clone());
                    order.push((true, k));
                }
            }
        }
        // stable output: in the order the changes happened
        let mut out_removed = Vec::with_capacity(removed.len());
        let mut out_added = Vec::with_capacity(added.len());
        for (is_add, k) in order {
            if is_add {
                if let Some(r) = added.remove(&k) {
                    out_added.push(r);
                }
            } else if let Some(r) = removed.remove(&k) {
                out_removed.push(r);
            }
        }
        Some(Condensed {
            from_soa: self.diffs[start].from_soa.clone(),
            to_soa: self.diffs.back()?.to_soa.clone(),
            removed: out_removed,
            added: out_added,
        })
    }
}

#[cfg(test)]
mod tests {
    //! Property test: after random sequences of changes, the condensed difference from every
    //! kept serial, applied to that version's records, gives exactly the current version's.
    use super::*;
    use crate::zone::ZoneData;
    use std::collections::BTreeSet;

    use crate::test_rng::Rng;

    fn n(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    /// Every record of a version, SOA excluded, as text (owner, TTL, type, data).
    fn records(z: &CompiledZone) -> BTreeSet<String> {
        z.names()
            .flat_map(|name| records_at(z, name))
            .map(|r| r.to_string())
            .collect()
    }

    fn apply(base: &BTreeSet<String>, c: &Condensed) -> BTreeSet<String> {
        let mut out = base.clone();
        for r in &c.removed {
            assert!(out.remove(&r.to_string()), "deleting a missing record {r}");
        }
        for r in &c.added {
            assert!(out.insert(r.to_string()), "adding a present record {r}");
        }
        out
    }

    fn mutate(r: &mut Rng, d: &mut ZoneData) -> Vec<Name> {
        let mut touched = Vec::new();
        for _ in 0..1 + r.below(5) {
            let name = n(&format!("h{}.acme.example.com.", r.below(30)));
            touched.push(name.clone());
            match r.below(4) {
                0 => {
                    d.records.remove(&name);
                }
                1 => d.add(
                    name,
                    [60, 300][r.below(2) as usize],
                    RData::A(std::net::Ipv4Addr::new(192, 0, 2, r.below(8) as u8).into()),
                ),
                2 => {
                    // a TTL change: the RRset again with another TTL
                    if let Some(sets) = d.records.get_mut(&name) {
                        for s in sets.values_mut() {
                            s.ttl = if s.ttl == 60 { 120 } else { 60 };
                        }
                    }
                }
                _ => d.add(
                    name,
                    60,
                    RData::TXT(hickory_proto::rr::rdata::TXT::new(vec![format!(
                        "t{}",
                        r.below(4)
                    )])),
                ),
            }
        }
        touched
    }

    #[test]
    fn condensed_ixfr_from_every_kept_serial_gives_the_current_zone() {
        let mut r = Rng(0x1234_5678_9abc_def1);
        for run in 0..40 {
            let mut data = ZoneData::acme_example();
            let mut serial = 1000 + run;
            let mut versions = vec![Arc::new(CompiledZone::build(&data, serial))];
            let mut history = History::default();
            for step in 0..(5 + r.below(20)) {
                let touched = mutate(&mut r, &mut data);
                serial += 1 + r.below(3) as u32;
                let old = versions.last().unwrap().clone();
                // patched along the pipeline's path, or rebuilt from scratch
                let new = if step % 3 == 0 {
                    Arc::new(CompiledZone::build(&data, serial))
                } else {
                    Arc::new(old.patch(&data, &touched, serial))
                };
                let d = if step % 2 == 0 {
                    diff(&old, &new, Some(&touched))
                } else {
                    diff(&old, &new, None)
                };
                let full = diff(&old, &new, None);
                let text = |v: &[Record]| v.iter().map(|r| r.to_string()).collect::<BTreeSet<_>>();
                assert_eq!(
                    text(&d.removed),
                    text(&full.removed),
                    "names-only diff == full diff"
                );
                assert_eq!(
                    text(&d.added),
                    text(&full.added),
                    "names-only diff == full diff"
                );
                history = history.with(d);
                versions.push(new);
            }
            let current = records(versions.last().unwrap());
            assert!(history.len() <= MAX_VERSIONS);
            let kept: Vec<u32> = history.serials().collect();
            for v in &versions {
                match history.since(v.serial()) {
                    Some(c) => {
                        assert!(kept.contains(&v.serial()));
                        assert_eq!(soa_serial(&c.from_soa), v.serial());
                        assert_eq!(soa_serial(&c.to_soa), versions.last().unwrap().serial());
                        assert_eq!(apply(&records(v), &c), current, "from {}", v.serial());
                    }
                    None => assert!(
                        !kept.contains(&v.serial()),
                        "kept serial {} not found",
                        v.serial()
                    ),
                }
            }
            // the newest MAX_VERSIONS versions (those with a successor) are all kept
            let expect = versions.len().saturating_sub(1).min(MAX_VERSIONS);
            assert_eq!(kept.len(), expect, "run {run}");
        }
    }

    #[test]
    fn a_gap_in_serials_starts_over_and_bounds_hold() {
        let data = ZoneData::acme_example();
        let a = CompiledZone::build(&data, 1);
        let b = CompiledZone::build(&data, 2);
        let c = CompiledZone::build(&data, 5);
        let d = CompiledZone::build(&data, 6);
        let h = History::default().with(diff(&a, &b, None));
        assert_eq!(h.len(), 1);
        // 5 -> 6 does not continue 1 -> 2
        let h = h.with(diff(&c, &d, None));
        assert_eq!(h.serials().collect::<Vec<_>>(), vec![5]);
        assert!(h.since(1).is_none());
        assert_eq!(h.since(5).unwrap().added.len(), 0);
    }
}
