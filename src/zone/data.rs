//! `ZoneData`: the output of the zone compiler and the input of the DNS engine. Pure DNS data,
//! no Kubernetes types: owner names, types, TTLs and RDATA.

use hickory_proto::rr::{Name, RData, RecordType};
use std::collections::HashMap;

/// One RRset: every record of one owner name and type share the TTL (RFC 2181 §5.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordSet {
    pub ttl: u32,
    /// Distinct RDATA, in insertion order.
    pub rdata: Vec<RData>,
}

impl RecordSet {
    pub fn new(ttl: u32) -> Self {
        Self {
            ttl,
            // most RRsets hold one record, and an `RData` is 184 bytes: a vector's first
            // growth to four slots would carry 100 MiB of slack in a large zone
            rdata: Vec::with_capacity(1),
        }
    }

    /// Adds `rdata` unless present; the RRset keeps the lowest TTL it was given.
    pub fn push(&mut self, ttl: u32, rdata: RData) {
        self.ttl = self.ttl.min(ttl);
        if !self.rdata.contains(&rdata) {
            self.rdata.push(rdata);
        }
    }
}

/// The RRsets of one owner name, ordered by type: a small sorted vector (most names hold one
/// or two RRsets; a map per name cost a large zone a 400-byte node each).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RRsets(Vec<(RecordType, RecordSet)>);

impl RRsets {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn get(&self, rtype: &RecordType) -> Option<&RecordSet> {
        self.0
            .binary_search_by(|(t, _)| t.cmp(rtype))
            .ok()
            .map(|i| &self.0[i].1)
    }

    /// The RRset of `rtype`, created with `ttl` if absent.
    pub fn entry(&mut self, rtype: RecordType, ttl: u32) -> &mut RecordSet {
        let i = match self.0.binary_search_by(|(t, _)| t.cmp(&rtype)) {
            Ok(i) => i,
            Err(i) => {
                // most names hold one RRset: no room for four (a vector's first growth)
                self.0.reserve_exact(1);
                self.0.insert(i, (rtype, RecordSet::new(ttl)));
                i
            }
        };
        &mut self.0[i].1
    }

    pub fn iter(&self) -> impl Iterator<Item = (&RecordType, &RecordSet)> {
        self.0.iter().map(|(t, s)| (t, s))
    }

    pub fn keys(&self) -> impl Iterator<Item = &RecordType> {
        self.0.iter().map(|(t, _)| t)
    }

    pub fn values(&self) -> impl Iterator<Item = &RecordSet> {
        self.0.iter().map(|(_, s)| s)
    }

    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut RecordSet> {
        self.0.iter_mut().map(|(_, s)| s)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'a> IntoIterator for &'a RRsets {
    type Item = (&'a RecordType, &'a RecordSet);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (RecordType, RecordSet)>,
        fn(&'a (RecordType, RecordSet)) -> (&'a RecordType, &'a RecordSet),
    >;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(t, s)| (t, s))
    }
}

/// The SOA fields; the serial is assigned when the zone is published, not by the compiler.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SoaData {
    /// MNAME: the first nameserver.
    pub mname: Name,
    /// RNAME: the administrator's mailbox in DNS form.
    pub rname: Name,
    pub refresh: u32,
    pub retry: u32,
    pub expire: u32,
    /// SOA MINIMUM: the negative-caching TTL (RFC 2308).
    pub minimum: u32,
    /// TTL of the SOA record itself.
    pub ttl: u32,
}

/// A compiled zone's content. Names are lowercase and fully qualified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZoneData {
    /// The apex, fully qualified (`acme.example.com.`).
    pub origin: Name,
    pub soa: SoaData,
    /// Every RRset except the SOA, by owner name and type: apex NS and glue, source-derived
    /// records, static records, and delegation NS and glue at and below the cut points.
    /// A hash map (a `BTreeMap<Name, _>` spent most of a 100 000-name compile comparing
    /// names); `names_sorted` gives the canonical order where one is needed.
    pub records: HashMap<Name, RRsets>,
}

impl ZoneData {
    /// The SOA RDATA as published with `serial` (the one place it is built: the compiled zone
    /// and the DNSSEC signer both use it).
    pub fn soa_rdata(&self, serial: u32) -> RData {
        let s = &self.soa;
        RData::SOA(hickory_proto::rr::rdata::SOA::new(
            s.mname.clone(),
            s.rname.clone(),
            serial,
            s.refresh as i32,
            s.retry as i32,
            s.expire as i32,
            s.minimum,
        ))
    }

    pub fn new(origin: Name, soa: SoaData) -> Self {
        Self {
            origin,
            soa,
            records: HashMap::new(),
        }
    }

    /// Adds one record, merging into the RRset of its name and type.
    pub fn add(&mut self, name: Name, ttl: u32, rdata: RData) {
        let rtype = rdata.record_type();
        self.records
            .entry(name)
            .or_default()
            .entry(rtype, ttl)
            .push(ttl, rdata);
    }

    /// Owner names in DNSSEC canonical order (RFC 4034 §6.1).
    pub fn names_sorted(&self) -> Vec<&Name> {
        let mut v: Vec<&Name> = self.records.keys().collect();
        v.sort();
        v
    }

    pub fn rrset(&self, name: &Name, rtype: RecordType) -> Option<&RecordSet> {
        self.records.get(name).and_then(|m| m.get(&rtype))
    }

    /// Number of records (not RRsets), SOA included.
    pub fn record_count(&self) -> usize {
        1 + self
            .records
            .values()
            .flat_map(|m| m.values())
            .map(|s| s.rdata.len())
            .sum::<usize>()
    }
}

#[cfg(test)]
impl ZoneData {
    /// An empty `acme.example.com.` zone (ns1 and hostmaster there; refresh 3600, retry 600,
    /// expire 86400, negative TTL 300, SOA TTL 3600), for tests.
    pub(crate) fn acme_example() -> Self {
        let n = |s: &str| Name::from_ascii(s).expect("test name");
        let soa = SoaData {
            mname: n("ns1.acme.example.com."),
            rname: n("hostmaster.acme.example.com."),
            refresh: 3600,
            retry: 600,
            expire: 86400,
            minimum: 300,
            ttl: 3600,
        };
        Self::new(n("acme.example.com."), soa)
    }
}
