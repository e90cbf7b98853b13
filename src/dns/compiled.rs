//! The immutable compiled zone the DNS handler answers from, and the lookup algorithm of
//! RFC 1034 §4.3.2 with wildcards (RFC 4592), empty non-terminals (RFC 8020) and referrals.
//! Pure data and pure functions: no sockets, no Kubernetes.

use super::journal::History;
use crate::zone::transfer::TransferPolicy;
use crate::zone::{RRsets, ZoneData};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Appends to `out` a key whose byte order is the canonical order of names (RFC 4034 §6.1):
/// the labels from the root down, each lowercased (ASCII), its zero octets written as `0 1`
/// and its end as `0 0`, so a missing octet sorts before a zero octet and a name before the
/// names below it.
pub fn canonical_key(name: &Name, out: &mut Vec<u8>) {
    for label in name.iter().rev() {
        for &b in label {
            match b {
                0 => out.extend_from_slice(&[0, 1]),
                b => out.push(b.to_ascii_lowercase()),
            }
        }
        out.extend_from_slice(&[0, 0]);
    }
}

/// The RRsets at one owner name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Node {
    /// RRsets by type; each a ready-to-send list of records. Shared, so that copying a zone's
    /// node map to patch it (`CompiledZone::patch`) allocates nothing per name, nor frees
    /// anything per name when the old version goes.
    rrsets: Arc<[(RecordType, Arc<[Record]>)]>,
}

impl Node {
    pub fn get(&self, rtype: RecordType) -> Option<&Arc<[Record]>> {
        self.rrsets
            .iter()
            .find(|(t, _)| *t == rtype)
            .map(|(_, r)| r)
    }
    pub fn rrsets(&self) -> impl Iterator<Item = &(RecordType, Arc<[Record]>)> {
        self.rrsets.iter()
    }
}

/// One zone, ready to answer. Equality compares everything an answer depends on (tests check a
/// patched index against a fresh build with it).
#[derive(Debug, PartialEq)]
pub struct CompiledZone {
    origin: Name,
    /// The apex as text, shared by every response's metrics label.
    label: Arc<str>,
    serial: u32,
    soa: Arc<[Record]>,
    /// The SOA record with the negative-caching TTL, for the authority section of negative
    /// answers: TTL = min(SOA TTL, SOA MINIMUM) (RFC 2308 §3).
    negative_soa: Arc<[Record]>,
    nodes: HashMap<Name, Node>,
    /// For every name strictly between the apex and a node, how many nodes are below it: the
    /// names that exist only because something exists below them are those that are not
    /// nodes themselves (RFC 8020).
    below: HashMap<Name, u32>,
    /// Delegation points (NS below the apex).
    cuts: HashSet<Name>,
    record_count: usize,
    /// What signing added (`spec.dnssec`): answered with DO (see `signed.rs`); None for an
    /// unsigned zone, whose answers are exactly those of [`Self::lookup`].
    dnssec: Option<Arc<crate::dnssec::sign::SignedZone>>,
}

mod signed;

/// The SOA record as published, and with the negative-caching TTL for the authority section
/// of negative answers: TTL = min(SOA TTL, SOA MINIMUM) (RFC 2308 §3).
fn soa_records(origin: &Name, data: &ZoneData, serial: u32) -> (Arc<[Record]>, Arc<[Record]>) {
    let s = &data.soa;
    let rdata = data.soa_rdata(serial);
    let soa = Arc::from(vec![Record::from_rdata(
        origin.clone(),
        s.ttl,
        rdata.clone(),
    )]);
    let negative = Arc::from(vec![Record::from_rdata(
        origin.clone(),
        s.ttl.min(s.minimum),
        rdata,
    )]);
    (soa, negative)
}

/// The ready-to-send RRsets of a node at `name` (lowercase) from its compiled RRsets (`None`
/// when the zone has no such name). The SOA is the index's own, never taken from `sets`.
fn node_rrsets(name: &Name, sets: Option<&RRsets>) -> Option<Vec<(RecordType, Arc<[Record]>)>> {
    let sets = sets?;
    let mut rrsets = Vec::with_capacity(sets.len());
    for (rtype, set) in sets {
        if *rtype == RecordType::SOA || set.rdata.is_empty() {
            continue;
        }
        let records: Vec<Record> = set
            .rdata
            .iter()
            .map(|rd| Record::from_rdata(name.clone(), set.ttl, rd.clone()))
            .collect();
        rrsets.push((*rtype, Arc::from(records)));
    }
    Some(rrsets)
}

/// What a lookup found, before it is turned into a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Authoritative data (possibly after following CNAMEs inside the zone).
    Answer,
    /// The name exists but has no data of that type.
    NoData,
    /// The name does not exist.
    NxDomain,
    /// The name is at or below a delegation point: a referral, not authoritative.
    Referral,
}

/// A lookup's result: the sections of the response.
#[derive(Debug, Clone)]
pub struct Lookup {
    pub outcome: Outcome,
    pub answers: Vec<Record>,
    pub authorities: Vec<Record>,
    pub additionals: Vec<Record>,
}

/// Longest CNAME chain followed inside a zone.
const MAX_CNAME_CHAIN: usize = 8;

impl CompiledZone {
    /// Builds the index from compiled zone content and the serial to publish.
    pub fn build(data: &ZoneData, serial: u32) -> Self {
        let origin = data.origin.to_lowercase();
        let (soa, negative_soa) = soa_records(&origin, data, serial);
        let mut zone = Self {
            label: Arc::from(origin.to_ascii()),
            origin: origin.clone(),
            serial,
            soa: soa.clone(),
            negative_soa,
            nodes: HashMap::with_capacity(data.records.len() + 1),
            below: HashMap::new(),
            cuts: HashSet::new(),
            record_count: 1,
            dnssec: None,
        };
        zone.nodes.insert(
            origin.clone(),
            Node {
                rrsets: Arc::from([(RecordType::SOA, soa)]),
            },
        );
        // Building the records is most of the work: on every core for a large zone; the
        // index itself is then filled in one pass.
        let entries: Vec<(&Name, &RRsets)> = data.records.iter().collect();
        let built = crate::parallel::map_chunks(&entries, 4096, |chunk| {
            chunk
                .iter()
                .map(|(name, sets)| {
                    let name = name.to_lowercase();
                    let rrsets = node_rrsets(&name, Some(sets));
                    (name, rrsets)
                })
                .collect()
        });
        for (name, rrsets) in built {
            zone.put(name, rrsets);
        }
        zone
    }

    /// A new index for `data` that differs from this one's only at the names in `changed` (and
    /// in the SOA and serial): only those are rebuilt; the rest is shared. `data` must be the
    /// content this index was built from with just those names changed; the result is then
    /// equal to `build(data, serial)`.
    pub fn patch<'n>(
        &self,
        data: &ZoneData,
        changed: impl IntoIterator<Item = &'n Name>,
        serial: u32,
    ) -> Self {
        let (soa, negative_soa) = soa_records(&self.origin, data, serial);
        let mut zone = Self {
            origin: self.origin.clone(),
            label: self.label.clone(),
            serial,
            soa: soa.clone(),
            negative_soa,
            nodes: self.nodes.clone(),
            below: self.below.clone(),
            cuts: self.cuts.clone(),
            record_count: self.record_count,
            dnssec: None,
        };
        if let Some(apex) = zone.nodes.get_mut(&zone.origin) {
            let mut rrsets = apex.rrsets.to_vec();
            rrsets[0] = (RecordType::SOA, soa);
            apex.rrsets = rrsets.into();
        }
        for name in changed {
            zone.apply(data, name);
        }
        zone
    }

    /// Makes the node at `name` what `data` holds there (nothing, when `data` has no records
    /// there), keeping cuts, empty non-terminals and the record count in step.
    fn apply(&mut self, data: &ZoneData, name: &Name) {
        let name = name.to_lowercase();
        let rrsets = node_rrsets(&name, data.records.get(&name));
        self.put(name, rrsets);
    }

    /// Sets the node at `name` (lowercase) to `rrsets` (`None`: no node).
    fn put(&mut self, name: Name, rrsets: Option<Vec<(RecordType, Arc<[Record]>)>>) {
        if !self.origin.zone_of(&name) {
            return; // the compiler never emits these; never serve them
        }
        let count = |rrsets: &[(RecordType, Arc<[Record]>)]| -> usize {
            rrsets.iter().map(|(_, r)| r.len()).sum()
        };
        if name == self.origin {
            // The apex always exists and keeps its SOA first.
            let node = self.nodes.get_mut(&name).expect("the apex node");
            self.record_count -= count(&node.rrsets[1..]);
            let rrsets = rrsets.unwrap_or_default();
            self.record_count += count(&rrsets);
            node.rrsets = std::iter::once(node.rrsets[0].clone())
                .chain(rrsets)
                .collect();
            return;
        }
        let old = self.nodes.remove(&name);
        if let Some(old) = &old {
            self.record_count -= count(&old.rrsets);
        }
        self.cuts.remove(&name);
        let existed = old.is_some();
        let exists = rrsets.is_some();
        if let Some(rrsets) = rrsets {
            self.record_count += count(&rrsets);
            if rrsets.iter().any(|(t, _)| *t == RecordType::NS) {
                self.cuts.insert(name.clone());
            }
            self.nodes.insert(
                name.clone(),
                Node {
                    rrsets: rrsets.into(),
                },
            );
        }
        // Empty non-terminals: count the nodes below every name between the apex and `name`.
        if existed != exists {
            let mut n = name.base_name();
            while n.num_labels() > self.origin.num_labels() {
                if exists {
                    *self.below.entry(n.clone()).or_default() += 1;
                } else if let Some(count) = self.below.get_mut(&n) {
                    *count -= 1;
                    if *count == 0 {
                        self.below.remove(&n);
                    }
                }
                n = n.base_name();
            }
        }
    }

    pub fn origin(&self) -> &Name {
        &self.origin
    }
    /// This index answering with the DNSSEC records of `signed` (made from the same content
    /// and serial).
    pub fn with_dnssec(mut self, signed: Arc<crate::dnssec::sign::SignedZone>) -> Self {
        self.dnssec = Some(signed);
        self
    }
    /// What signing added, for a signed zone.
    pub fn dnssec(&self) -> Option<&Arc<crate::dnssec::sign::SignedZone>> {
        self.dnssec.as_ref()
    }
    /// The apex as text (`acme.example.com.`).
    pub fn label(&self) -> &Arc<str> {
        &self.label
    }
    pub fn serial(&self) -> u32 {
        self.serial
    }
    pub fn record_count(&self) -> usize {
        self.record_count
    }
    pub fn soa(&self) -> &Arc<[Record]> {
        &self.soa
    }
    /// Number of owner names (nodes), the apex included.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Every owner name, in no particular order.
    pub fn names(&self) -> impl Iterator<Item = &Name> {
        self.nodes.keys()
    }

    /// Every node in canonical name order (RFC 4034 §6.1), made on each call: a zone keeps no
    /// sorted index beside its hash map. Sorted by [`canonical_key`] (one buffer for all keys,
    /// compared as bytes), a third of the time `Name`'s own ordering takes at 100 000 names.
    pub fn canonical_nodes(&self) -> Vec<&Node> {
        let mut keys = Vec::with_capacity(self.nodes.len() * 32);
        let mut spans = Vec::with_capacity(self.nodes.len());
        for (name, node) in &self.nodes {
            let start = keys.len();
            canonical_key(name, &mut keys);
            spans.push((start as u32..keys.len() as u32, node));
        }
        spans.sort_unstable_by(|a, b| {
            keys[a.0.start as usize..a.0.end as usize]
                .cmp(&keys[b.0.start as usize..b.0.end as usize])
        });
        spans.into_iter().map(|(_, node)| node).collect()
    }

    pub fn node(&self, name: &Name) -> Option<&Node> {
        self.nodes.get(name)
    }

    fn exists(&self, name: &Name) -> bool {
        self.nodes.contains_key(name) || self.below.contains_key(name)
    }

    /// The delegation point at or above `name` (strictly below the apex), if any.
    fn cut_above(&self, name: &Name) -> Option<&Name> {
        if self.cuts.is_empty() {
            return None;
        }
        // Walk from just below the apex down to `name`: the highest cut wins.
        let depth = self.origin.num_labels();
        let total = name.num_labels();
        for keep in (depth + 1)..=total {
            let ancestor = name.trim_to(keep as usize);
            if let Some(c) = self.cuts.get(&ancestor) {
                return Some(c);
            }
        }
        None
    }

    /// Answers `qname`/`qtype` (which must be inside this zone).
    pub fn lookup(&self, qname: &Name, qtype: RecordType) -> Lookup {
        let mut answers = Vec::new();
        let mut target = qname.clone();
        let mut chain = 0;
        // the names looked up so far (at most MAX_CNAME_CHAIN + 1)
        let mut seen: Vec<Name> = vec![qname.clone()];
        loop {
            let step = self.lookup_one(&target, qtype);
            match step {
                Step::Data(records) => {
                    answers.extend(records);
                    let additionals = self.additional_for(&answers);
                    return Lookup {
                        outcome: Outcome::Answer,
                        answers,
                        authorities: Vec::new(),
                        additionals,
                    };
                }
                Step::Cname(record, next) => {
                    answers.push(*record);
                    chain += 1;
                    // A loop (`a -> b -> a`) ends where it comes back: each CNAME once.
                    let looped = seen.contains(&next);
                    if looped || chain > MAX_CNAME_CHAIN || !self.origin.zone_of(&next) {
                        // Out of zone, too long or a loop: the resolver follows it (or not).
                        return Lookup {
                            outcome: Outcome::Answer,
                            answers,
                            authorities: Vec::new(),
                            additionals: Vec::new(),
                        };
                    }
                    seen.push(next.clone());
                    target = next;
                }
                Step::Referral(cut) => {
                    if chain > 0 {
                        // A CNAME into a delegated child: give the chain; the resolver follows.
                        return Lookup {
                            outcome: Outcome::Answer,
                            answers,
                            authorities: Vec::new(),
                            additionals: Vec::new(),
                        };
                    }
                    let ns: Vec<Record> = self.nodes[&cut]
                        .get(RecordType::NS)
                        .map(|r| r.to_vec())
                        .unwrap_or_default();
                    let additionals = self.glue_for(&ns);
                    return Lookup {
                        outcome: Outcome::Referral,
                        answers,
                        authorities: ns,
                        additionals,
                    };
                }
                Step::NoData => {
                    let outcome = if answers.is_empty() {
                        Outcome::NoData
                    } else {
                        Outcome::Answer
                    };
                    return Lookup {
                        outcome,
                        answers,
                        authorities: self.negative_soa.to_vec(),
                        additionals: Vec::new(),
                    };
                }
                Step::NxDomain => {
                    // RFC 6604: after a CNAME the rcode describes the last name in the chain.
                    return Lookup {
                        outcome: Outcome::NxDomain,
                        answers,
                        authorities: self.negative_soa.to_vec(),
                        additionals: Vec::new(),
                    };
                }
            }
        }
    }

    fn lookup_one(&self, name: &Name, qtype: RecordType) -> Step {
        if let Some(cut) = self.cut_above(name) {
            // DS at the cut itself belongs to the parent side: answered from the cut's own
            // records (`spec.delegations[].ds`), NODATA without.
            let at_cut_ds = cut == name && qtype == RecordType::DS;
            if !at_cut_ds {
                return Step::Referral(cut.clone());
            }
        }
        if let Some(node) = self.nodes.get(name) {
            return self.answer_from_node(node, name, qtype);
        }
        if self.below.contains_key(name) {
            return Step::NoData;
        }
        // RFC 4592: the closest encloser is the longest existing ancestor; a wildcard child of it
        // is the source of synthesis.
        let mut encloser = name.base_name();
        while encloser.num_labels() >= self.origin.num_labels() {
            if self.exists(&encloser) {
                break;
            }
            encloser = encloser.base_name();
        }
        if let Ok(wild) = encloser.prepend_label("*")
            && let Some(node) = self.nodes.get(&wild)
        {
            return self.answer_from_node(node, name, qtype);
        }
        Step::NxDomain
    }

    /// Answers from a node; `owner` is the name records are given (differs for wildcards).
    fn answer_from_node(&self, node: &Node, owner: &Name, qtype: RecordType) -> Step {
        let rename = |records: &[Record]| -> Vec<Record> {
            records
                .iter()
                .map(|r| {
                    if r.name == *owner {
                        r.clone()
                    } else {
                        let mut r = r.clone();
                        r.name = owner.clone();
                        r
                    }
                })
                .collect()
        };
        if qtype == RecordType::ANY {
            // RFC 8482: answer ANY with one RRset, not everything.
            return match node.rrsets.first() {
                Some((_, records)) => Step::Data(rename(records)),
                None => Step::NoData,
            };
        }
        if let Some(records) = node.get(qtype) {
            return Step::Data(rename(records));
        }
        if let Some(cname) = node.get(RecordType::CNAME)
            && let Some(first) = cname.first()
            && let RData::CNAME(target) = &first.data
        {
            let mut record = first.clone();
            record.name = owner.clone();
            return Step::Cname(Box::new(record), target.0.to_lowercase());
        }
        Step::NoData
    }

    /// Address records in this zone for the names that answer records point at (MX, SRV, NS).
    fn additional_for(&self, answers: &[Record]) -> Vec<Record> {
        let mut out = Vec::new();
        for r in answers {
            let target = match &r.data {
                RData::MX(mx) => mx.exchange.clone(),
                RData::SRV(srv) => srv.target.clone(),
                RData::NS(ns) => ns.0.clone(),
                _ => continue,
            };
            self.push_addresses(&target, &mut out);
        }
        out
    }

    /// Glue: address records (possibly below a cut) for the nameservers of a referral.
    fn glue_for(&self, ns: &[Record]) -> Vec<Record> {
        let mut out = Vec::new();
        for r in ns {
            if let RData::NS(target) = &r.data {
                self.push_addresses(&target.0, &mut out);
            }
        }
        out
    }

    fn push_addresses(&self, target: &Name, out: &mut Vec<Record>) {
        if !self.origin.zone_of(target) {
            return;
        }
        if let Some(node) = self.nodes.get(target) {
            for t in [RecordType::A, RecordType::AAAA] {
                if let Some(records) = node.get(t) {
                    for rec in records.iter() {
                        if !out.contains(rec) {
                            out.push(rec.clone());
                        }
                    }
                }
            }
        }
    }
}

enum Step {
    Data(Vec<Record>),
    Cname(Box<Record>, Name),
    Referral(Name),
    NoData,
    NxDomain,
}

/// Every zone served, by apex. Immutable; replaced as a whole on every change.
#[derive(Debug, Default)]
pub struct ZoneSet {
    zones: HashMap<Name, Arc<CompiledZone>>,
    /// Label counts of the apexes present, longest first (for longest-match search).
    depths: Vec<u8>,
    /// Unique per `ZoneSet::new` in this process (0: the empty default set). Caches keyed on a
    /// snapshot compare this, never its address: a new snapshot can be allocated where a freed
    /// one was.
    generation: u64,
    /// Transfer policies of the zones that have one, by apex (zones without one refuse every
    /// transfer).
    transfers: HashMap<Name, Arc<TransferPolicy>>,
    /// IXFR histories of the zones that keep one (those with a transfer policy).
    histories: HashMap<Name, Arc<History>>,
}

static GENERATION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

impl ZoneSet {
    pub fn new(zones: impl IntoIterator<Item = Arc<CompiledZone>>) -> Self {
        let zones: HashMap<Name, Arc<CompiledZone>> =
            zones.into_iter().map(|z| (z.origin().clone(), z)).collect();
        let mut depths: Vec<u8> = zones.keys().map(|n| n.num_labels()).collect();
        depths.sort_unstable_by(|a, b| b.cmp(a));
        depths.dedup();
        let generation = GENERATION.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Self {
            zones,
            depths,
            generation,
            transfers: HashMap::new(),
            histories: HashMap::new(),
        }
    }

    /// Sets the transfer policy of the zone at `origin`.
    pub fn set_transfer(&mut self, origin: &Name, policy: Arc<TransferPolicy>) {
        self.transfers.insert(origin.clone(), policy);
    }

    /// Sets the IXFR history of the zone at `origin`.
    pub fn set_history(&mut self, origin: &Name, history: Arc<History>) {
        self.histories.insert(origin.clone(), history);
    }

    /// The IXFR history of the zone at `origin`, if it keeps one.
    pub fn history(&self, origin: &Name) -> Option<&Arc<History>> {
        self.histories.get(origin)
    }

    /// The transfer policy of the zone at `origin`, if it has one.
    pub fn transfer(&self, origin: &Name) -> Option<&Arc<TransferPolicy>> {
        self.transfers.get(origin)
    }

    /// This snapshot's identity (see the field).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The zone with the longest apex that contains `name`.
    pub fn find(&self, name: &Name) -> Option<&Arc<CompiledZone>> {
        let labels = name.num_labels();
        for &d in &self.depths {
            if d > labels {
                continue;
            }
            let candidate = name.trim_to(d as usize);
            if let Some(z) = self.zones.get(&candidate) {
                return Some(z);
            }
        }
        None
    }

    /// The zone that answers `qtype` at `name`: [`find`](Self::find), except that a DS query
    /// at the apex of a zone whose parent zone is served too goes to the parent, which holds
    /// the DS (RFC 4035 §3.1.4.1: a server authoritative for both sides answers DS from the
    /// parent side).
    pub fn find_for(&self, name: &Name, qtype: RecordType) -> Option<&Arc<CompiledZone>> {
        let zone = self.find(name)?;
        if qtype == RecordType::DS && zone.origin() == name && !name.is_root() {
            return self.find(&name.base_name()).or(Some(zone));
        }
        Some(zone)
    }

    pub fn zones(&self) -> impl Iterator<Item = &Arc<CompiledZone>> {
        self.zones.values()
    }

    pub fn get(&self, origin: &Name) -> Option<&Arc<CompiledZone>> {
        self.zones.get(origin)
    }

    pub fn len(&self) -> usize {
        self.zones.len()
    }

    pub fn is_empty(&self) -> bool {
        self.zones.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::rdata::CNAME;

    fn n(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    /// The byte order of `canonical_key` is `Name`'s canonical order, for random names with
    /// upper case, zero octets, labels that are prefixes of each other and shared suffixes.
    #[test]
    fn canonical_key_orders_as_names_do() {
        let mut rng = crate::test_rng::Rng(0x5eed_cafe);
        let octets = [0u8, 1, b'-', b'a', b'A', b'b', b'Z', b'z', 0x7f, 0xff];
        let mut names = Vec::new();
        for _ in 0..3000 {
            let mut labels: Vec<Vec<u8>> = vec![b"example".to_vec()];
            for _ in 0..rng.below(4) {
                let len = 1 + rng.below(4) as usize;
                labels.insert(0, (0..len).map(|_| *rng.pick(&octets)).collect());
            }
            let name = Name::from_labels(labels).unwrap();
            names.push(name);
        }
        let key = |n: &Name| {
            let mut k = Vec::new();
            canonical_key(n, &mut k);
            k
        };
        for pair in names.windows(2) {
            let (a, b) = (&pair[0], &pair[1]);
            assert_eq!(key(a).cmp(&key(b)), a.cmp(b), "{a:?} vs {b:?}");
        }
        let mut zone = ZoneData::acme_example();
        for (i, name) in names.iter().enumerate() {
            let owner = Name::from_labels(name.iter().take(name.num_labels() as usize - 1))
                .unwrap()
                .append_domain(&n("acme.example.com."))
                .unwrap();
            zone.add(
                owner,
                300,
                RData::A(std::net::Ipv4Addr::from(i as u32).into()),
            );
        }
        let compiled = CompiledZone::build(&zone, 1);
        let owners: Vec<Name> = compiled
            .canonical_nodes()
            .iter()
            .map(|node| node.rrsets().next().unwrap().1[0].name.clone())
            .collect();
        assert_eq!(owners.len(), compiled.node_count());
        assert!(owners.windows(2).all(|w| w[0] < w[1]));
    }

    /// A DS query at a served child's apex goes to the served parent; every other question at
    /// the child's apex, and DS where no parent is served, to the child.
    #[test]
    fn ds_at_a_child_apex_is_answered_by_the_parent() {
        let parent = ZoneData::acme_example();
        let mut child = ZoneData::new(n("sub.acme.example.com."), parent.soa.clone());
        child.add(
            n("sub.acme.example.com."),
            300,
            RData::A(std::net::Ipv4Addr::LOCALHOST.into()),
        );
        let both = ZoneSet::new([
            Arc::new(CompiledZone::build(&parent, 1)),
            Arc::new(CompiledZone::build(&child, 1)),
        ]);
        let origin_for = |set: &ZoneSet, name: &str, t: RecordType| {
            set.find_for(&n(name), t).map(|z| z.origin().to_ascii())
        };
        let (apex, sub) = ("acme.example.com.", "sub.acme.example.com.");
        assert_eq!(
            origin_for(&both, sub, RecordType::DS).as_deref(),
            Some(apex)
        );
        for t in [
            RecordType::A,
            RecordType::DNSKEY,
            RecordType::SOA,
            RecordType::NS,
        ] {
            assert_eq!(origin_for(&both, sub, t).as_deref(), Some(sub), "{t}");
        }
        assert_eq!(
            origin_for(&both, "www.sub.acme.example.com.", RecordType::DS).as_deref(),
            Some(sub),
            "below the apex: the child's"
        );
        assert_eq!(
            origin_for(&both, apex, RecordType::DS).as_deref(),
            Some(apex)
        );
        let alone = ZoneSet::new([Arc::new(CompiledZone::build(&child, 1))]);
        assert_eq!(
            origin_for(&alone, sub, RecordType::DS).as_deref(),
            Some(sub)
        );
    }

    fn zone(cnames: &[(&str, &str)]) -> CompiledZone {
        let mut d = ZoneData::acme_example();
        for (from, to) in cnames {
            d.add(n(from), 300, RData::CNAME(CNAME(n(to))));
        }
        CompiledZone::build(&d, 1)
    }

    /// A loop once gave 9 CNAMEs for two names (the chain limit, walked round and round).
    #[test]
    fn cname_loop_gives_each_cname_once() {
        let z = zone(&[
            ("a.acme.example.com.", "b.acme.example.com."),
            ("b.acme.example.com.", "a.acme.example.com."),
            ("self.acme.example.com.", "self.acme.example.com."),
            ("x.acme.example.com.", "y.acme.example.com."),
            ("y.acme.example.com.", "z.acme.example.com."),
            ("z.acme.example.com.", "y.acme.example.com."),
        ]);
        for (q, want) in [
            ("a.acme.example.com.", vec!["a", "b"]),
            ("b.acme.example.com.", vec!["b", "a"]),
            ("self.acme.example.com.", vec!["self"]),
            ("x.acme.example.com.", vec!["x", "y", "z"]),
        ] {
            let l = z.lookup(&n(q), RecordType::A);
            let owners: Vec<String> = l
                .answers
                .iter()
                .map(|r| r.name.to_ascii().split('.').next().unwrap().to_string())
                .collect();
            assert_eq!(owners, want, "{q}");
            assert_eq!(l.outcome, Outcome::Answer);
        }
    }

    #[test]
    fn long_chain_stops_at_the_limit() {
        let names: Vec<String> = (0..12).map(|i| format!("c{i}.acme.example.com.")).collect();
        let pairs: Vec<(&str, &str)> = names
            .windows(2)
            .map(|w| (w[0].as_str(), w[1].as_str()))
            .collect();
        let z = zone(&pairs);
        let l = z.lookup(&n("c0.acme.example.com."), RecordType::A);
        assert_eq!(l.answers.len(), MAX_CNAME_CHAIN + 1);
    }
}
