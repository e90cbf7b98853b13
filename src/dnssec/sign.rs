//! The zone signer: from a compiled zone's RRsets, its keys and the time, every record DNSSEC
//! adds to it. Pure (no I/O, no Kubernetes types); the time is an argument.
//!
//! - At the apex: DNSKEY (every key), CDS and CDNSKEY (RFC 7344, 8078: the same keys, so a
//!   registrar that scans picks the DS up), NSEC3PARAM (flags 0).
//! - An RRSIG by every key over every authoritative RRset: not over the NS RRset of a
//!   delegation nor over glue or anything else below a cut (RFC 4035 §2.2); a DS at a
//!   delegation is signed.
//! - NSEC3 (RFC 5155) with the RFC 9276 parameters: SHA-1, 0 extra iterations, empty salt, no
//!   opt-out. One per authoritative name, delegation point and empty non-terminal, chained in
//!   hash order; TTL min(SOA TTL, SOA MINIMUM) (RFC 9077).
//! - Signatures are made per *generation* ([`signature_window`]): time is cut into 7-day
//!   periods, shifted per zone by a hash of its name so a server's zones do not all re-sign at
//!   once. A zone signed in a generation gets inception one hour before the generation's start
//!   (clock skew) and expiration 14 days after it, whenever in the generation it is signed; so
//!   every server of a zone signs with the same window, and [`needs_resign`] is true exactly
//!   when a new generation begins (7 days left). The generation is part of a signed zone's
//!   serial (`serial::signed_hash`): renewed signatures come with a new serial, which
//!   secondaries transfer.
//!
//! The signed data is the canonical form of RFC 4034 §3.1.8.1 and §6: owner names lowercase
//! and uncompressed, RDATA in hickory's canonical encoding (names lowercased in the types RFC
//! 4034 §6.2 / RFC 6840 §5.1 list), records sorted by their canonical RDATA, duplicates once.

use super::keys::{SigningKey, ZoneKeys};
use crate::zone::ZoneData;
use hickory_proto::rr::{Name, RData, RecordType};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

/// Signatures start this long before their generation's start (resolver clock skew).
pub const INCEPTION_BACKDATE: u32 = 3600;
/// Signatures end this long after their generation's start.
pub const VALIDITY: u32 = 14 * 86400;
/// A zone is re-signed when its signatures have this much left: a new generation starts.
pub const REFRESH_BEFORE: u32 = 7 * 86400;
/// The length of a signing generation.
pub const GENERATION: u32 = VALIDITY - REFRESH_BEFORE;

/// NSEC3 hash algorithm 1 (SHA-1), the only one defined.
pub const NSEC3_SHA1: u8 = 1;
/// RFC 9276 §3.1: 0 extra iterations.
pub const NSEC3_ITERATIONS: u16 = 0;

/// DNS class IN.
const IN: u16 = 1;

/// One record the signer adds, RDATA in wire (canonical) form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnssecRecord {
    pub name: Name,
    pub ttl: u32,
    pub rtype: RecordType,
    pub rdata: Vec<u8>,
}

/// One link of the NSEC3 chain: its record, and what the signer needs to update the chain
/// name by name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Nsec3Link {
    pub record: DnssecRecord,
    /// The types the NSEC3 lists (empty for an empty non-terminal).
    types: BTreeSet<u16>,
    /// How many names with types are in the chain strictly below this one (not counted at the
    /// apex): a name without types is in the chain while this is above 0.
    below: u32,
}

/// What signing a zone adds to it. Persistent maps (`imbl`): a copy shares everything with the
/// original, so [`sign_zone_reusing`] makes the next version from the last at the cost of the
/// names that changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedZone {
    pub origin: Name,
    /// DNSKEY, CDS, CDNSKEY and NSEC3PARAM at the apex.
    pub apex: Vec<DnssecRecord>,
    /// RRSIGs by owner name (lowercase; an NSEC3's under its hashed owner), sorted by the type
    /// they cover, then in key order.
    rrsigs: imbl::HashMap<Name, Arc<[DnssecRecord]>>,
    /// The NSEC3 chain by raw hash: the key to find the link that covers or matches a hash.
    pub nsec3: imbl::OrdMap<[u8; 20], Arc<Nsec3Link>>,
    /// The delegation points (lowercase) the chain was made with.
    cuts: Arc<HashSet<Name>>,
    /// The signatures' inception and expiration (seconds since the epoch).
    pub inception: u32,
    pub expiration: u32,
}

impl SignedZone {
    /// Every added record: apex records, NSEC3s in hash order, then RRSIGs by owner in
    /// canonical order.
    pub fn records(&self) -> impl Iterator<Item = &DnssecRecord> {
        let mut owners: Vec<(&Name, &Arc<[DnssecRecord]>)> = self.rrsigs.iter().collect();
        owners.sort_unstable_by(|a, b| a.0.cmp(b.0));
        self.apex
            .iter()
            .chain(self.nsec3_chain().map(|(_, r)| r))
            .chain(owners.into_iter().flat_map(|(_, sigs)| sigs.iter()))
    }

    /// The NSEC3 records with their raw hashes, in hash order.
    pub fn nsec3_chain(&self) -> impl Iterator<Item = (&[u8; 20], &DnssecRecord)> {
        self.nsec3.iter().map(|(h, l)| (h, &l.record))
    }

    /// The NSEC3 whose owner is the hash of `name`.
    pub fn nsec3_matching(&self, name: &Name) -> Option<&DnssecRecord> {
        let h = nsec3_hash(name, &[], NSEC3_ITERATIONS);
        self.nsec3.get(&h).map(|l| &l.record)
    }

    /// The NSEC3 whose interval covers the hash of `name` (for a name that does not exist:
    /// the one with the greatest hash below it, the last one below the first hash).
    pub fn nsec3_covering(&self, name: &Name) -> Option<&DnssecRecord> {
        let h = nsec3_hash(name, &[], NSEC3_ITERATIONS);
        self.nsec3
            .get_prev(&h)
            .or_else(|| self.nsec3.get_max().map(|(k, v)| (k, v)))
            .map(|(_, l)| &l.record)
    }

    /// The RRSIGs at `name` (all of them).
    pub fn rrsigs_at(&self, name: &Name) -> &[DnssecRecord] {
        self.rrsigs.get(name).map_or(&[], |s| s)
    }

    /// The RRSIGs at `name` that cover `rtype`.
    pub fn rrsigs_for<'a>(
        &'a self,
        name: &Name,
        rtype: RecordType,
    ) -> impl Iterator<Item = &'a DnssecRecord> + 'a {
        let covered = u16::from(rtype).to_be_bytes();
        self.rrsigs_at(name)
            .iter()
            .filter(move |r| r.rdata[..2] == covered)
    }
}

/// Where the zone `origin`'s generations start within [`GENERATION`]: a stable hash of its
/// name, so that the zones of one server spread their re-signing over the week.
fn generation_offset(origin: &Name) -> u64 {
    crate::fnv::Fnv1a::new().bytes(&name_wire(origin)).finish() % u64::from(GENERATION)
}

/// The signing generation of the zone `origin` at `now`: a number that grows by one every
/// [`GENERATION`] seconds, at a moment of the week that depends on the zone's name.
pub fn generation(origin: &Name, now: u32) -> u32 {
    ((u64::from(now) + generation_offset(origin)) / u64::from(GENERATION)) as u32
}

/// When generation `generation` of the zone `origin` started (seconds since the epoch; 0 for
/// the generations before the epoch's first boundary).
pub fn generation_start(origin: &Name, generation: u32) -> u32 {
    (u64::from(generation) * u64::from(GENERATION))
        .saturating_sub(generation_offset(origin))
        .min(u64::from(u32::MAX)) as u32
}

/// The (inception, expiration) of signatures made at `now` for the zone `origin`: one hour
/// before its generation's start and [`VALIDITY`] after it. The same for the whole generation.
pub fn signature_window(origin: &Name, now: u32) -> (u32, u32) {
    let start = generation_start(origin, generation(origin, now));
    (
        start.saturating_sub(INCEPTION_BACKDATE),
        start.saturating_add(VALIDITY),
    )
}

/// Whether `signed` must be signed again at `now`: a new generation has begun since (its
/// signatures have [`REFRESH_BEFORE`] or less left).
pub fn needs_resign(signed: &SignedZone, now: u32) -> bool {
    signature_window(&signed.origin, now) != (signed.inception, signed.expiration)
}

/// A name in canonical wire form: labels lowercase, uncompressed, the root label last.
pub fn name_wire(name: &Name) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.len() + 1);
    for label in name.iter() {
        out.push(label.len() as u8);
        out.extend(label.iter().map(u8::to_ascii_lowercase));
    }
    out.push(0);
    out
}

/// RDATA in canonical wire form (RFC 4034 §6.2), or `None` when hickory cannot encode it.
pub fn canonical_rdata(rd: &RData) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    let mut enc = BinEncoder::new(&mut buf);
    enc.set_canonical_form(true);
    rd.emit(&mut enc).ok()?;
    Some(buf)
}

/// The NSEC3 hash of `name` (RFC 5155 §5): SHA-1 over the canonical wire name and the salt,
/// then `iterations` more times over the digest and the salt.
pub fn nsec3_hash(name: &Name, salt: &[u8], iterations: u16) -> [u8; 20] {
    let sha1 = |data: &[u8]| -> [u8; 20] {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY);
        ctx.update(data);
        ctx.update(salt);
        ctx.finish().as_ref().try_into().expect("SHA-1 is 20 bytes")
    };
    let mut h = sha1(&name_wire(name));
    for _ in 0..iterations {
        h = sha1(&h);
    }
    h
}

/// Base32 with the extended hex alphabet (RFC 4648 §7), lowercase, no padding: the form of an
/// NSEC3 owner label and of the next hashed owner name in presentation.
pub fn base32hex(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"0123456789abcdefghijklmnopqrstuv";
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let mut acc: u64 = 0;
    let mut bits = 0;
    for b in bytes {
        acc = (acc << 8) | u64::from(*b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((acc >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((acc << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// The type bit maps field of NSEC and NSEC3 (RFC 4034 §4.1.2): one window per high byte in
/// use, each as short as its highest type allows.
pub fn type_bitmap(types: &BTreeSet<u16>) -> Vec<u8> {
    let mut out = Vec::new();
    let mut window: Option<(u8, [u8; 32], usize)> = None;
    let flush = |out: &mut Vec<u8>, w: &(u8, [u8; 32], usize)| {
        out.push(w.0);
        out.push(w.2 as u8);
        out.extend_from_slice(&w.1[..w.2]);
    };
    for t in types {
        let (hi, lo) = ((t >> 8) as u8, (t & 0xff) as usize);
        if window.as_ref().is_some_and(|w| w.0 != hi) {
            flush(&mut out, window.as_ref().expect("checked"));
            window = None;
        }
        let w = window.get_or_insert((hi, [0u8; 32], 0));
        w.1[lo / 8] |= 0x80 >> (lo % 8);
        w.2 = w.2.max(lo / 8 + 1);
    }
    if let Some(w) = &window {
        flush(&mut out, w);
    }
    out
}

/// NSEC3 RDATA with the RFC 9276 parameters.
fn nsec3_rdata(next: &[u8; 20], types: &BTreeSet<u16>) -> Vec<u8> {
    let mut out = vec![NSEC3_SHA1, 0];
    out.extend_from_slice(&NSEC3_ITERATIONS.to_be_bytes());
    out.push(0); // salt length
    out.push(20);
    out.extend_from_slice(next);
    out.extend_from_slice(&type_bitmap(types));
    out
}

/// NSEC3PARAM RDATA: SHA-1, flags 0, 0 iterations, no salt.
pub fn nsec3param_rdata() -> Vec<u8> {
    let mut out = vec![NSEC3_SHA1, 0];
    out.extend_from_slice(&NSEC3_ITERATIONS.to_be_bytes());
    out.push(0);
    out
}

/// The fields of an RRSIG before its signature.
pub struct SigFields<'a> {
    pub covered: RecordType,
    /// Labels of the owner, not counting a leading `*` (RFC 4034 §3.1.3).
    pub labels: u8,
    pub original_ttl: u32,
    pub expiration: u32,
    pub inception: u32,
    pub signer: &'a Name,
}

/// RRSIG RDATA over one RRset by `key`: the RRset's records are `rdatas` (canonical wire
/// RDATA, any order, duplicates allowed) at `owner`.
pub fn rrsig_rdata(
    key: &SigningKey,
    f: &SigFields<'_>,
    owner: &Name,
    rdatas: &[Vec<u8>],
) -> Vec<u8> {
    let mut rdata = rrsig_head(key, f);
    let data = signed_data(&rdata, owner, f, rdatas);
    rdata.extend_from_slice(&key.sign(&data));
    rdata
}

/// RRSIG RDATA up to the signature (RFC 4034 §3.1).
fn rrsig_head(key: &SigningKey, f: &SigFields<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(18 + f.signer.len() + 1 + 64);
    out.extend_from_slice(&u16::from(f.covered).to_be_bytes());
    out.push(key.algorithm().number());
    out.push(f.labels);
    out.extend_from_slice(&f.original_ttl.to_be_bytes());
    out.extend_from_slice(&f.expiration.to_be_bytes());
    out.extend_from_slice(&f.inception.to_be_bytes());
    out.extend_from_slice(&key.key_tag().to_be_bytes());
    out.extend_from_slice(&name_wire(f.signer));
    out
}

/// The data an RRSIG signs (RFC 4034 §3.1.8.1): its RDATA up to the signature, then every RR
/// of the set in canonical form and order, with the original TTL.
pub fn signed_data(head: &[u8], owner: &Name, f: &SigFields<'_>, rdatas: &[Vec<u8>]) -> Vec<u8> {
    let mut sorted: Vec<&Vec<u8>> = rdatas.iter().collect();
    sorted.sort();
    sorted.dedup();
    let owner = name_wire(owner);
    let mut data = head.to_vec();
    for rd in sorted {
        data.extend_from_slice(&owner);
        data.extend_from_slice(&u16::from(f.covered).to_be_bytes());
        data.extend_from_slice(&IN.to_be_bytes());
        data.extend_from_slice(&f.original_ttl.to_be_bytes());
        data.extend_from_slice(&(rd.len() as u16).to_be_bytes());
        data.extend_from_slice(rd);
    }
    data
}

/// Verifies an RRSIG (RDATA as [`rrsig_rdata`] makes it) over `rdatas` at `owner` with `key`'s
/// public half: for tests and self-checks.
pub fn verify_rrsig(key: &SigningKey, rrsig: &[u8], owner: &Name, rdatas: &[Vec<u8>]) -> bool {
    let sig_len = key.algorithm().signature_len();
    if rrsig.len() < 18 + 1 + sig_len {
        return false;
    }
    let (head, sig) = rrsig.split_at(rrsig.len() - sig_len);
    let f = SigFields {
        covered: RecordType::from(u16::from_be_bytes([head[0], head[1]])),
        labels: head[3],
        original_ttl: u32::from_be_bytes(head[4..8].try_into().expect("4 bytes")),
        expiration: 0,
        inception: 0,
        signer: owner,
    };
    let data = signed_data(head, owner, &f, rdatas);
    super::keys::verify(key.algorithm(), key.public_key(), &data, sig)
}

/// One RRset to sign.
struct ToSign {
    name: Name,
    rtype: RecordType,
    ttl: u32,
    rdatas: Vec<Vec<u8>>,
}

impl ToSign {
    fn new(name: &Name, rtype: RecordType, set: &crate::zone::RecordSet) -> Self {
        Self {
            name: name.clone(),
            rtype,
            ttl: set.ttl,
            rdatas: set.rdata.iter().filter_map(canonical_rdata).collect(),
        }
    }
}

/// What one signing of a zone shares: origin, window, TTLs, keys and the apex additions.
struct Params<'a> {
    origin: Name,
    depth: u8,
    inception: u32,
    expiration: u32,
    nsec3_ttl: u32,
    keys: &'a ZoneKeys,
    /// DNSKEY, CDNSKEY, CDS and NSEC3PARAM, and the same as RRsets to sign.
    apex: Vec<DnssecRecord>,
    apex_sets: Vec<ToSign>,
}

/// The types signing adds at the apex.
const APEX_TYPES: [RecordType; 4] = [
    RecordType::DNSKEY,
    RecordType::CDNSKEY,
    RecordType::CDS,
    RecordType::NSEC3PARAM,
];

impl<'a> Params<'a> {
    fn new(data: &ZoneData, keys: &'a ZoneKeys, now: u32) -> Self {
        let origin = data.origin.to_lowercase();
        let (inception, expiration) = signature_window(&origin, now);
        let soa_ttl = data.soa.ttl;
        let nsec3_ttl = data.soa.ttl.min(data.soa.minimum);
        let dnskeys: Vec<Vec<u8>> = keys.all().map(SigningKey::dnskey_rdata).collect();
        let cds: Vec<Vec<u8>> = keys.all().map(|k| k.ds_rdata(&origin.to_ascii())).collect();
        let param = vec![nsec3param_rdata()];
        let mut apex = Vec::new();
        let mut apex_sets = Vec::new();
        for (rtype, ttl, rdatas) in [
            (RecordType::DNSKEY, soa_ttl, &dnskeys),
            (RecordType::CDNSKEY, soa_ttl, &dnskeys),
            (RecordType::CDS, soa_ttl, &cds),
            (RecordType::NSEC3PARAM, nsec3_ttl, &param),
        ] {
            for rd in rdatas {
                apex.push(DnssecRecord {
                    name: origin.clone(),
                    ttl,
                    rtype,
                    rdata: rd.clone(),
                });
            }
            apex_sets.push(ToSign {
                name: origin.clone(),
                rtype,
                ttl,
                rdatas: rdatas.clone(),
            });
        }
        Self {
            depth: origin.num_labels(),
            origin,
            inception,
            expiration,
            nsec3_ttl,
            keys,
            apex,
            apex_sets,
        }
    }

    /// The SOA published with `serial`, to sign.
    fn soa(&self, data: &ZoneData, serial: u32) -> ToSign {
        ToSign {
            name: self.origin.clone(),
            rtype: RecordType::SOA,
            ttl: data.soa.ttl,
            rdatas: vec![canonical_rdata(&data.soa_rdata(serial)).expect("an SOA encodes")],
        }
    }

    /// The types the apex's NSEC3 lists beyond its data: what signing adds, SOA and RRSIG.
    fn apex_types(&self) -> impl Iterator<Item = u16> {
        APEX_TYPES
            .into_iter()
            .chain([RecordType::SOA, RecordType::RRSIG])
            .map(u16::from)
    }

    /// Whether `name` (lowercase) is a delegation point of `data`: below the apex, with NS.
    fn is_cut(&self, data: &ZoneData, name: &Name) -> bool {
        *name != self.origin
            && data
                .records
                .get(name)
                .and_then(|sets| sets.get(&RecordType::NS))
                .is_some_and(|s| !s.rdata.is_empty())
    }

    /// Whether `name` is strictly below one of `cuts`: glue or other data a cut occludes, not
    /// ours to sign or deny.
    fn below_cut(&self, cuts: &HashSet<Name>, name: &Name) -> bool {
        if cuts.is_empty() {
            return false;
        }
        let mut n = name.base_name();
        while n.num_labels() > self.depth {
            if cuts.contains(&n) {
                return true;
            }
            n = n.base_name();
        }
        false
    }

    /// The ancestors of `name` strictly between it and the apex.
    fn ancestors(&self, name: &Name) -> impl Iterator<Item = Name> {
        let depth = self.depth;
        std::iter::successors(Some(name.base_name()), |n| Some(n.base_name()))
            .take_while(move |n| n.num_labels() > depth)
    }

    /// The NSEC3 owner of `hash`.
    fn nsec3_owner(&self, hash: &[u8; 20]) -> Name {
        self.origin
            .prepend_label(base32hex(hash).as_bytes())
            .expect("a 32-character label below a valid apex")
    }

    /// Every RRSIG over `to_sign`, on every core for a large zone.
    fn sign(&self, to_sign: &[ToSign]) -> Vec<DnssecRecord> {
        crate::parallel::map_chunks(to_sign, 1024, |chunk| {
            let mut out = Vec::with_capacity(chunk.len() * 2);
            for s in chunk {
                let f = SigFields {
                    covered: s.rtype,
                    labels: s.name.num_labels(),
                    original_ttl: s.ttl,
                    expiration: self.expiration,
                    inception: self.inception,
                    signer: &self.origin,
                };
                for key in self.keys.all() {
                    out.push(DnssecRecord {
                        name: s.name.clone(),
                        ttl: s.ttl,
                        rtype: RecordType::RRSIG,
                        rdata: rrsig_rdata(key, &f, &s.name, &s.rdatas),
                    });
                }
            }
            out
        })
    }
}

/// The type an RRSIG covers.
fn covered(r: &DnssecRecord) -> u16 {
    u16::from_be_bytes([r.rdata[0], r.rdata[1]])
}

/// What the NSEC3 of a name (at or below the apex, not below a cut) lists from its RRsets
/// `rrsets`, and those to sign: every type with records but the SOA (the apex's own
/// additions are the caller's); at a delegation point (`cut`) only NS and DS, and only the DS
/// signed (the NS is the child's); RRSIG when something is signed.
fn owner_sets(
    rrsets: Option<&crate::zone::RRsets>,
    cut: bool,
) -> (BTreeSet<u16>, Vec<(RecordType, &crate::zone::RecordSet)>) {
    let mut types = BTreeSet::new();
    let mut sets = Vec::new();
    for (rtype, set) in rrsets.into_iter().flat_map(|s| s.iter()) {
        if *rtype == RecordType::SOA || set.rdata.is_empty() {
            continue;
        }
        if cut && !matches!(rtype, RecordType::NS | RecordType::DS) {
            continue; // the child's data (glue at the cut): not the parent's
        }
        types.insert(u16::from(*rtype));
        if cut && *rtype == RecordType::NS {
            continue;
        }
        types.insert(u16::from(RecordType::RRSIG));
        sets.push((*rtype, set));
    }
    (types, sets)
}

/// Signs `data` published with `serial` with `keys` at `now` (seconds since the epoch), with
/// the [`signature_window`] of `now`.
pub fn sign_zone(data: &ZoneData, serial: u32, keys: &ZoneKeys, now: u32) -> SignedZone {
    sign_zone_reusing(data, serial, keys, now, None)
}

/// The zone signed before and the owner names whose RRsets changed since (lowercase): what
/// [`sign_zone_reusing`] may start from.
pub struct Reuse<'a> {
    pub prev: &'a SignedZone,
    pub changed: &'a HashSet<Name>,
}

/// [`sign_zone`], starting from `reuse` when it has the same origin, signature window and apex
/// records (hence keys and SOA TTL). When no name in `reuse.changed` became or stopped being a
/// delegation point, the previous zone is updated at those names ([`update`]): their RRsets
/// and the SOA are signed again, and the NSEC3 chain is changed where they enter or leave it
/// or change types, with the links before them; the rest is shared with the previous zone.
/// Otherwise the zone is signed whole, keeping the previous RRSIGs of what did not change
/// (RRsets at names outside `changed`, the apex additions, NSEC3 records with the same TTL and
/// RDATA). Either way the result equals `sign_zone`'s (exactly so for a deterministic
/// algorithm; property-tested here and in `publish.rs`), for the cost of what changed.
pub fn sign_zone_reusing(
    data: &ZoneData,
    serial: u32,
    keys: &ZoneKeys,
    now: u32,
    reuse: Option<Reuse<'_>>,
) -> SignedZone {
    let p = Params::new(data, keys, now);
    let reuse = reuse.filter(|r| {
        r.prev.origin == p.origin
            && r.prev.inception == p.inception
            && r.prev.expiration == p.expiration
            && r.prev.apex == p.apex
    });
    match &reuse {
        Some(r) => update(data, serial, &p, r).unwrap_or_else(|| full(data, serial, &p, reuse)),
        None => full(data, serial, &p, None),
    }
}

/// Signs the whole zone, taking from `reuse` the signatures of what did not change.
fn full(data: &ZoneData, serial: u32, p: &Params<'_>, reuse: Option<Reuse<'_>>) -> SignedZone {
    let origin = &p.origin;
    let key_count = p.keys.all().count();
    let cuts: HashSet<Name> = data
        .records
        .keys()
        .map(Name::to_lowercase)
        .filter(|n| p.is_cut(data, n))
        .collect();

    let mut to_sign: Vec<ToSign> = Vec::new();
    let mut reused: Vec<DnssecRecord> = Vec::new();
    // the previous signatures over `rtype` at `name`, if there is one per key
    let previous = |name: &Name, rtype: RecordType| -> Option<Vec<DnssecRecord>> {
        let r = reuse.as_ref()?;
        let old: Vec<DnssecRecord> = r.prev.rrsigs_for(name, rtype).cloned().collect();
        (old.len() == key_count).then_some(old)
    };
    // the apex additions: unchanged when there is something to reuse (compared by the caller)
    for set in &p.apex_sets {
        match previous(origin, set.rtype) {
            Some(old) => reused.extend(old),
            None => to_sign.push(ToSign {
                name: set.name.clone(),
                rtype: set.rtype,
                ttl: set.ttl,
                rdatas: set.rdatas.clone(),
            }),
        }
    }
    to_sign.push(p.soa(data, serial));

    // name -> the types its NSEC3 lists (empty for an empty non-terminal), and the names with
    // types below it
    let mut chain: HashMap<Name, (BTreeSet<u16>, u32)> = HashMap::new();
    chain
        .entry(origin.clone())
        .or_default()
        .0
        .extend(p.apex_types());
    for (name, rrsets) in &data.records {
        let name = name.to_lowercase();
        if !origin.zone_of(&name) || p.below_cut(&cuts, &name) {
            continue;
        }
        let (types, sets) = owner_sets(Some(rrsets), cuts.contains(&name));
        for (rtype, set) in sets {
            if reuse.as_ref().is_some_and(|r| !r.changed.contains(&name))
                && let Some(old) = previous(&name, rtype)
            {
                reused.extend(old);
            } else {
                to_sign.push(ToSign::new(&name, rtype, set));
            }
        }
        if types.is_empty() {
            continue;
        }
        if name != *origin {
            for a in p.ancestors(&name) {
                chain.entry(a).or_default().1 += 1;
            }
        }
        chain.entry(name).or_default().0.extend(types);
    }

    // The NSEC3 chain, in hash order.
    let mut hashed: Vec<([u8; 20], BTreeSet<u16>, u32)> = chain
        .into_iter()
        .map(|(name, (types, below))| (nsec3_hash(&name, &[], NSEC3_ITERATIONS), types, below))
        .collect();
    hashed.sort_unstable_by_key(|h| h.0);
    let mut nsec3 = Vec::with_capacity(hashed.len());
    for (i, (hash, types, below)) in hashed.iter().enumerate() {
        let next = &hashed[(i + 1) % hashed.len()].0;
        let owner = p.nsec3_owner(hash);
        let rdata = nsec3_rdata(next, types);
        let same = reuse.as_ref().is_some_and(|r| {
            r.prev
                .nsec3
                .get(hash)
                .is_some_and(|l| l.record.ttl == p.nsec3_ttl && l.record.rdata == rdata)
        });
        match same.then(|| previous(&owner, RecordType::NSEC3)).flatten() {
            Some(old) => reused.extend(old),
            None => to_sign.push(ToSign {
                name: owner.clone(),
                rtype: RecordType::NSEC3,
                ttl: p.nsec3_ttl,
                rdatas: vec![rdata.clone()],
            }),
        }
        let record = DnssecRecord {
            name: owner,
            ttl: p.nsec3_ttl,
            rtype: RecordType::NSEC3,
            rdata,
        };
        nsec3.push((
            *hash,
            Arc::new(Nsec3Link {
                record,
                types: types.clone(),
                below: *below,
            }),
        ));
    }

    let mut by_owner: HashMap<Name, Vec<DnssecRecord>> = HashMap::new();
    for r in reused.into_iter().chain(p.sign(&to_sign)) {
        by_owner.entry(r.name.clone()).or_default().push(r);
    }
    // one order per owner whichever way a signature came: by covered type, then key
    let rrsigs = by_owner
        .into_iter()
        .map(|(owner, mut sigs)| {
            sigs.sort_by_key(covered);
            (owner, Arc::from(sigs))
        })
        .collect();
    SignedZone {
        origin: origin.clone(),
        apex: p.apex.clone(),
        rrsigs,
        nsec3: nsec3.into_iter().collect(),
        cuts: Arc::new(cuts),
        inception: p.inception,
        expiration: p.expiration,
    }
}

/// Removes from the RRSIGs at `owner` those whose covered type `drop` selects.
fn strip(
    rrsigs: &mut imbl::HashMap<Name, Arc<[DnssecRecord]>>,
    owner: &Name,
    drop: impl Fn(u16) -> bool,
) {
    let Some(old) = rrsigs.get(owner) else {
        return;
    };
    if !old.iter().any(|r| drop(covered(r))) {
        return;
    }
    let kept: Vec<DnssecRecord> = old.iter().filter(|r| !drop(covered(r))).cloned().collect();
    if kept.is_empty() {
        rrsigs.remove(owner);
    } else {
        rrsigs.insert(owner.clone(), Arc::from(kept));
    }
}

/// The previous signed zone `r.prev` made current at the names in `r.changed` and the SOA of
/// `serial`; `None` when a changed name became or stopped being a delegation point (which
/// changes what is signed below it: the caller signs the whole zone then), or when most of
/// the zone changed.
fn update(data: &ZoneData, serial: u32, p: &Params<'_>, r: &Reuse<'_>) -> Option<SignedZone> {
    let prev = r.prev;
    let origin = &p.origin;
    if r.changed.len() > 256 && r.changed.len() * 2 > prev.nsec3.len() {
        return None;
    }
    if r.changed
        .iter()
        .any(|n| prev.cuts.contains(n) != p.is_cut(data, n))
    {
        return None;
    }
    let names = r
        .changed
        .iter()
        .filter(|n| origin.zone_of(n) && !p.below_cut(&prev.cuts, n));
    let mut z = prev.clone();
    let mut to_sign = vec![p.soa(data, serial)];
    strip(&mut z.rrsigs, origin, |t| t == u16::from(RecordType::SOA));
    let apex_type = |t: u16| APEX_TYPES.iter().any(|a| u16::from(*a) == t);
    let nsec3_type = u16::from(RecordType::NSEC3);
    // links whose record must be made again; hashes that entered or left the chain
    let mut dirty: BTreeSet<[u8; 20]> = BTreeSet::new();
    let mut moved: BTreeSet<[u8; 20]> = BTreeSet::new();
    let empty_link = |below: u32| Nsec3Link {
        record: DnssecRecord {
            name: Name::root(),
            ttl: p.nsec3_ttl,
            rtype: RecordType::NSEC3,
            rdata: Vec::new(),
        },
        types: BTreeSet::new(),
        below,
    };
    for name in names {
        let apex = name == origin;
        let (mut types, sets) = owner_sets(data.records.get(name), prev.cuts.contains(name));
        // every RRset here is signed again (at the apex: but what signing adds)
        strip(&mut z.rrsigs, name, |t| {
            t != nsec3_type && !(apex && apex_type(t))
        });
        to_sign.extend(sets.into_iter().map(|(t, set)| ToSign::new(name, t, set)));
        if apex {
            types.extend(p.apex_types());
        }

        let h = nsec3_hash(name, &[], NSEC3_ITERATIONS);
        let old = z.nsec3.get(&h).cloned();
        let was = old.as_ref().is_some_and(|l| !l.types.is_empty());
        let is = !types.is_empty();
        let below = old.as_ref().map_or(0, |l| l.below);
        if old.as_ref().is_none_or(|l| l.types != types) {
            if is || below > 0 {
                let mut link = old.as_deref().cloned().unwrap_or_else(|| empty_link(below));
                link.types = types;
                z.nsec3.insert(h, Arc::new(link));
                dirty.insert(h);
                if old.is_none() {
                    moved.insert(h);
                }
            } else if old.is_some() {
                z.nsec3.remove(&h);
                moved.insert(h);
            }
        }
        if was != is && !apex {
            // the empty non-terminals above: counted, made or removed
            for a in p.ancestors(name) {
                let ha = nsec3_hash(&a, &[], NSEC3_ITERATIONS);
                let mut link = z
                    .nsec3
                    .get(&ha)
                    .map(|l| Nsec3Link::clone(l))
                    .unwrap_or_else(|| {
                        dirty.insert(ha);
                        moved.insert(ha);
                        empty_link(0)
                    });
                link.below = match (is, link.below.checked_sub(1)) {
                    (true, _) => link.below + 1,
                    (false, Some(b)) => b,
                    (false, None) => return None, // not the chain `full` made: start again
                };
                if link.below == 0 && link.types.is_empty() {
                    z.nsec3.remove(&ha);
                    moved.insert(ha);
                } else {
                    z.nsec3.insert(ha, Arc::new(link));
                }
            }
        }
    }
    // a link that entered or left the chain changes the next hash of the one before it
    for h in &moved {
        let before = z
            .nsec3
            .range(..*h)
            .next_back()
            .or_else(|| z.nsec3.get_max().map(|(k, v)| (k, v)))
            .map(|(k, _)| *k);
        dirty.extend(before);
        if !z.nsec3.contains_key(h) {
            strip(&mut z.rrsigs, &p.nsec3_owner(h), |t| t == nsec3_type);
        }
    }
    for h in &dirty {
        let Some(link) = z.nsec3.get(h) else {
            continue;
        };
        let next = z
            .nsec3
            .range((std::ops::Bound::Excluded(*h), std::ops::Bound::Unbounded))
            .next()
            .or_else(|| z.nsec3.get_min().map(|(k, v)| (k, v)))
            .map(|(k, _)| *k)
            .expect("the link itself");
        let rdata = nsec3_rdata(&next, &link.types);
        if link.record.rdata == rdata {
            continue;
        }
        let owner = p.nsec3_owner(h);
        let mut link = Nsec3Link::clone(link);
        link.record = DnssecRecord {
            name: owner.clone(),
            ttl: p.nsec3_ttl,
            rtype: RecordType::NSEC3,
            rdata: rdata.clone(),
        };
        z.nsec3.insert(*h, Arc::new(link));
        strip(&mut z.rrsigs, &owner, |t| t == nsec3_type);
        to_sign.push(ToSign {
            name: owner,
            rtype: RecordType::NSEC3,
            ttl: p.nsec3_ttl,
            rdatas: vec![rdata],
        });
    }

    let mut by_owner: HashMap<Name, Vec<DnssecRecord>> = HashMap::new();
    for s in p.sign(&to_sign) {
        by_owner.entry(s.name.clone()).or_default().push(s);
    }
    for (owner, new) in by_owner {
        let mut sigs: Vec<DnssecRecord> = z.rrsigs_at(&owner).to_vec();
        sigs.extend(new);
        sigs.sort_by_key(covered);
        z.rrsigs.insert(owner, Arc::from(sigs));
    }
    Some(z)
}

/// `YYYYMMDDHHmmSS` (UTC) of a time in seconds since the epoch, as RRSIG presentation writes
/// inception and expiration (RFC 4034 §3.2).
pub fn rrsig_time(t: u32) -> String {
    let secs = u64::from(t);
    let (days, rem) = (secs / 86400, secs % 86400);
    // Howard Hinnant's civil_from_days
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}{:02}{:02}{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// A type's mnemonic, or `TYPEnnn` (RFC 3597) for one hickory does not name.
fn type_name(t: u16) -> String {
    match RecordType::from(t) {
        RecordType::Unknown(n) => format!("TYPE{n}"),
        known => known.to_string(),
    }
}

/// The type bit maps field as a list of mnemonics (`A RRSIG`), after a leading space each.
fn bitmap_text(mut b: &[u8]) -> String {
    let mut out = String::new();
    while b.len() >= 2 {
        let (window, len) = (u16::from(b[0]), b[1] as usize);
        let bits = &b[2..(2 + len).min(b.len())];
        for (i, byte) in bits.iter().enumerate() {
            for bit in 0..8 {
                if byte & (0x80 >> bit) != 0 {
                    out.push(' ');
                    out.push_str(&type_name((window << 8) | (i * 8 + bit) as u16));
                }
            }
        }
        b = &b[(2 + len).min(b.len())..];
    }
    out
}

/// A name from its wire form at the start of `b` (uncompressed): the name and its length.
fn read_name(b: &[u8]) -> (Name, usize) {
    let mut labels: Vec<&[u8]> = Vec::new();
    let mut i = 0;
    while i < b.len() && b[i] != 0 {
        let len = b[i] as usize;
        labels.push(&b[i + 1..i + 1 + len]);
        i += 1 + len;
    }
    let name = Name::from_labels(labels).unwrap_or_else(|_| Name::root());
    (name, i + 1)
}

/// The salt of NSEC3 or NSEC3PARAM RDATA (`d`: hash algorithm, flags, iterations, salt length,
/// salt): its length and its presentation form (hex, `-` when empty).
fn salt_text(d: &[u8]) -> (usize, String) {
    let len = d[4] as usize;
    let text = if len == 0 {
        "-".into()
    } else {
        d[5..5 + len].iter().map(|b| format!("{b:02X}")).collect()
    };
    (len, text)
}

/// The presentation form of a record's RDATA (RFC 4034 §2.2, 3.2, 5.3; RFC 5155 §3.3, 4.3).
pub fn rdata_presentation(r: &DnssecRecord) -> String {
    use base64::Engine as _;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let d = &r.rdata;
    match r.rtype {
        RecordType::DNSKEY | RecordType::CDNSKEY => format!(
            "{} {} {} {}",
            u16::from_be_bytes([d[0], d[1]]),
            d[2],
            d[3],
            b64(&d[4..])
        ),
        RecordType::CDS | RecordType::DS => {
            let hex: String = d[4..].iter().map(|b| format!("{b:02X}")).collect();
            format!(
                "{} {} {} {hex}",
                u16::from_be_bytes([d[0], d[1]]),
                d[2],
                d[3]
            )
        }
        RecordType::NSEC3PARAM => {
            let (_, salt) = salt_text(d);
            format!(
                "{} {} {} {salt}",
                d[0],
                d[1],
                u16::from_be_bytes([d[2], d[3]])
            )
        }
        RecordType::NSEC3 => {
            let (salt_len, salt) = salt_text(d);
            let at = 5 + salt_len;
            let hash_len = d[at] as usize;
            let next = base32hex(&d[at + 1..at + 1 + hash_len]);
            format!(
                "{} {} {} {salt} {next}{}",
                d[0],
                d[1],
                u16::from_be_bytes([d[2], d[3]]),
                bitmap_text(&d[at + 1 + hash_len..])
            )
        }
        RecordType::RRSIG => {
            let u32_at = |i: usize| u32::from_be_bytes(d[i..i + 4].try_into().expect("4 bytes"));
            let (signer, len) = read_name(&d[18..]);
            format!(
                "{} {} {} {} {} {} {} {} {}",
                type_name(u16::from_be_bytes([d[0], d[1]])),
                d[2],
                d[3],
                u32_at(4),
                rrsig_time(u32_at(8)),
                rrsig_time(u32_at(12)),
                u16::from_be_bytes([d[16], d[17]]),
                signer.to_ascii(),
                b64(&d[18 + len..])
            )
        }
        _ => {
            let hex: String = d.iter().map(|b| format!("{b:02X}")).collect();
            format!("\\# {} {hex}", d.len())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dnssec::keys::{ACTIVE_KEY, Algorithm};
    use hickory_proto::rr::rdata::{A, CNAME, NS, TXT};

    fn n(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    fn keys(alg: Algorithm) -> ZoneKeys {
        let pem = SigningKey::generate(alg).unwrap().to_pkcs8_pem();
        ZoneKeys::from_entries("test", |k| (k == ACTIVE_KEY).then_some(pem.as_bytes())).unwrap()
    }

    /// RFC 5155 Appendix A: `example` with salt aabbccdd and 12 iterations, and a few of its
    /// names.
    #[test]
    fn nsec3_hash_matches_rfc5155_appendix_a() {
        let salt = [0xaa, 0xbb, 0xcc, 0xdd];
        for (name, hash) in [
            ("example.", "0p9mhaveqvm6t7vbl5lop2u3t2rp3tom"),
            ("a.example.", "35mthgpgcu1qg68fab165klnsnk3dpvl"),
            ("ai.example.", "gjeqe526plbf1g8mklp59enfd789njgi"),
            ("ns1.example.", "2t7b4g4vsa5smi47k61mv5bv1a22bojr"),
            ("*.w.example.", "r53bq7cc2uvmubfu5ocmm6pers9tk9en"),
            ("x.w.example.", "b4um86eghhds6nea196smvmlo4ors995"),
        ] {
            assert_eq!(base32hex(&nsec3_hash(&n(name), &salt, 12)), hash, "{name}");
        }
        // case does not matter: the canonical form is lowercase
        assert_eq!(
            nsec3_hash(&n("A.Example."), &salt, 12),
            nsec3_hash(&n("a.example."), &salt, 12)
        );
    }

    #[test]
    fn base32hex_rfc4648_vectors_without_padding() {
        for (input, out) in [
            ("", ""),
            ("f", "co"),
            ("fo", "cpng"),
            ("foo", "cpnmu"),
            ("foob", "cpnmuog"),
            ("fooba", "cpnmuoj1"),
            ("foobar", "cpnmuoj1e8"),
        ] {
            assert_eq!(base32hex(input.as_bytes()), out, "{input:?}");
        }
        assert_eq!(base32hex(&[0u8; 20]).len(), 32);
    }

    /// RFC 4034 §4.3: "A MX RRSIG NSEC TYPE1234".
    #[test]
    fn type_bitmap_matches_rfc4034_example() {
        let types: BTreeSet<u16> = [1, 15, 46, 47, 1234].into();
        let mut want = vec![0x00, 0x06, 0x40, 0x01, 0x00, 0x00, 0x00, 0x03];
        want.extend([0x04, 0x1b]);
        want.extend([0u8; 26]);
        want.push(0x20);
        assert_eq!(type_bitmap(&types), want);
        assert_eq!(bitmap_text(&want), " A MX RRSIG NSEC TYPE1234");
        assert!(type_bitmap(&BTreeSet::new()).is_empty());
        assert_eq!(bitmap_text(&[]), "");
    }

    #[test]
    fn rrsig_times_are_utc_calendar_dates() {
        assert_eq!(rrsig_time(0), "19700101000000");
        assert_eq!(rrsig_time(1284026679), "20100909100439"); // RFC 6605 §6.1
        assert_eq!(rrsig_time(1281607479), "20100812100439");
        assert_eq!(rrsig_time(951782400), "20000229000000");
        assert_eq!(rrsig_time(u32::MAX), "21060207062815");
    }

    /// A zone with what a test needs: A/AAAA/TXT/CNAME at names, a wildcard, an empty
    /// non-terminal (`b.deep` exists only through `a.b.deep`), and a delegation `child` with
    /// glue at `ns.child`.
    fn zone() -> ZoneData {
        let mut d = ZoneData::acme_example();
        let a = |s: &str| RData::A(A(s.parse().unwrap()));
        d.add(
            n("acme.example.com."),
            3600,
            RData::NS(NS(n("ns1.acme.example.com."))),
        );
        d.add(n("ns1.acme.example.com."), 300, a("192.0.2.53"));
        d.add(n("www.acme.example.com."), 60, a("192.0.2.1"));
        d.add(n("www.acme.example.com."), 60, a("192.0.2.2"));
        d.add(
            n("www.acme.example.com."),
            60,
            RData::TXT(TXT::new(vec!["hello".into()])),
        );
        d.add(
            n("alias.acme.example.com."),
            60,
            RData::CNAME(CNAME(n("www.acme.example.com."))),
        );
        d.add(n("*.wild.acme.example.com."), 60, a("192.0.2.9"));
        d.add(n("a.b.deep.acme.example.com."), 60, a("192.0.2.3"));
        d.add(
            n("child.acme.example.com."),
            3600,
            RData::NS(NS(n("ns.child.acme.example.com."))),
        );
        d.add(n("ns.child.acme.example.com."), 3600, a("192.0.2.77"));
        d
    }

    fn rdatas(d: &ZoneData, name: &Name, t: RecordType) -> Vec<Vec<u8>> {
        d.rrset(name, t)
            .unwrap()
            .rdata
            .iter()
            .map(|rd| canonical_rdata(rd).unwrap())
            .collect()
    }

    fn types_of(r: &DnssecRecord) -> String {
        let d = &r.rdata;
        bitmap_text(&d[6 + d[5] as usize..])
    }

    #[test]
    fn signs_authoritative_rrsets_and_not_delegation_ns_or_glue() {
        for alg in [Algorithm::EcdsaP256Sha256, Algorithm::Ed25519] {
            let k = keys(alg);
            let d = zone();
            let now = 1_800_000_000;
            let s = sign_zone(&d, 7, &k, now);
            let start = generation_start(&d.origin, generation(&d.origin, now));
            assert!(start <= now && now < start + 7 * 86400, "{start} {now}");
            assert_eq!(s.inception, start - 3600);
            assert_eq!(s.expiration, start + 14 * 86400);
            let covered = |name: &str| -> BTreeSet<String> {
                s.rrsigs_at(&n(name))
                    .iter()
                    .map(|r| type_name(u16::from_be_bytes([r.rdata[0], r.rdata[1]])))
                    .collect()
            };
            let set =
                |v: &[&str]| -> BTreeSet<String> { v.iter().map(|s| s.to_string()).collect() };
            assert_eq!(
                covered("acme.example.com."),
                set(&["SOA", "NS", "DNSKEY", "CDS", "CDNSKEY", "NSEC3PARAM"])
            );
            assert_eq!(covered("www.acme.example.com."), set(&["A", "TXT"]));
            assert_eq!(covered("alias.acme.example.com."), set(&["CNAME"]));
            assert_eq!(covered("*.wild.acme.example.com."), set(&["A"]));
            assert!(
                covered("child.acme.example.com.").is_empty(),
                "delegation NS"
            );
            assert!(covered("ns.child.acme.example.com.").is_empty(), "glue");
            assert!(covered("b.deep.acme.example.com.").is_empty(), "ENT");

            // each RRSIG verifies over its RRset; a changed record does not
            let www = n("www.acme.example.com.");
            let a_rdatas: Vec<Vec<u8>> = rdatas(&d, &www, RecordType::A);
            let sig = s.rrsigs_for(&www, RecordType::A).next().unwrap();
            assert!(verify_rrsig(&k.active, &sig.rdata, &www, &a_rdatas));
            let mut reversed = a_rdatas.clone();
            reversed.reverse();
            assert!(
                verify_rrsig(&k.active, &sig.rdata, &www, &reversed),
                "order-free"
            );
            assert!(!verify_rrsig(&k.active, &sig.rdata, &www, &a_rdatas[..1]));
            assert!(!verify_rrsig(
                &k.active,
                &sig.rdata,
                &n("x.acme.example.com."),
                &a_rdatas
            ));
            let p = rdata_presentation(sig);
            assert!(
                p.starts_with(&format!(
                    "A {} 4 60 {} {} {} acme.example.com. ",
                    alg.number(),
                    rrsig_time(start + 14 * 86400),
                    rrsig_time(start - 3600),
                    k.active.key_tag()
                )),
                "{p}"
            );
            // the wildcard's labels field does not count the `*`
            let w = s
                .rrsigs_for(&n("*.wild.acme.example.com."), RecordType::A)
                .next()
                .unwrap();
            assert_eq!(w.rdata[3], 4);
            // SOA signed with the serial it is published with
            let soa = canonical_rdata(&d.soa_rdata(7)).unwrap();
            let sig = s
                .rrsigs_for(&n("acme.example.com."), RecordType::SOA)
                .next()
                .unwrap();
            let apex = n("acme.example.com.");
            assert!(verify_rrsig(
                &k.active,
                &sig.rdata,
                &apex,
                std::slice::from_ref(&soa)
            ));
            let soa8 = canonical_rdata(&d.soa_rdata(8)).unwrap();
            assert!(!verify_rrsig(&k.active, &sig.rdata, &apex, &[soa8]));
            // the DNSKEY RRset
            let sig = s.rrsigs_for(&apex, RecordType::DNSKEY).next().unwrap();
            assert!(verify_rrsig(
                &k.active,
                &sig.rdata,
                &apex,
                &[k.active.dnskey_rdata()]
            ));
        }
    }

    #[test]
    fn nsec3_chain_covers_names_ents_and_delegations_not_glue() {
        let k = keys(Algorithm::Ed25519);
        let s = sign_zone(&zone(), 1, &k, 1_800_000_000);
        let by_name = |name: &str| -> &DnssecRecord {
            let h = base32hex(&nsec3_hash(&n(name), &[], 0));
            s.nsec3_chain()
                .find(|(_, r)| r.name.to_ascii().starts_with(&h))
                .unwrap_or_else(|| panic!("no NSEC3 for {name}"))
                .1
        };
        assert_eq!(
            types_of(by_name("acme.example.com.")),
            " NS SOA RRSIG DNSKEY NSEC3PARAM CDS CDNSKEY"
        );
        assert_eq!(types_of(by_name("www.acme.example.com.")), " A TXT RRSIG");
        assert_eq!(
            types_of(by_name("child.acme.example.com.")),
            " NS",
            "no RRSIG bit"
        );
        assert_eq!(types_of(by_name("b.deep.acme.example.com.")), "", "ENT");
        assert_eq!(types_of(by_name("deep.acme.example.com.")), "", "ENT");
        assert_eq!(types_of(by_name("wild.acme.example.com.")), "", "ENT");
        assert_eq!(types_of(by_name("*.wild.acme.example.com.")), " A RRSIG");
        let glue = base32hex(&nsec3_hash(&n("ns.child.acme.example.com."), &[], 0));
        assert!(
            !s.nsec3_chain()
                .any(|(_, r)| r.name.to_ascii().starts_with(&glue))
        );
        // apex, ns1, www, alias, wild ENT, *.wild, deep, b.deep, a.b.deep, child
        let chain: Vec<_> = s.nsec3_chain().collect();
        assert_eq!(chain.len(), 10);
        // a ring in hash order; every NSEC3 signed; RFC 9276 parameters; TTL min(SOA, MINIMUM)
        for (i, (h, r)) in chain.iter().enumerate() {
            let next = chain[(i + 1) % chain.len()].0;
            assert!(i + 1 == chain.len() || *h < next);
            assert_eq!(&r.rdata[..6], &[1, 0, 0, 0, 0, 20]);
            assert_eq!(&r.rdata[6..26], next);
            assert_eq!(r.ttl, 300);
            assert_eq!(
                r.name.to_ascii(),
                format!("{}.acme.example.com.", base32hex(*h))
            );
            let sig = s.rrsigs_for(&r.name, RecordType::NSEC3).next().unwrap();
            assert!(verify_rrsig(
                &k.active,
                &sig.rdata,
                &r.name,
                std::slice::from_ref(&r.rdata)
            ));
        }
        let param = s
            .apex
            .iter()
            .find(|r| r.rtype == RecordType::NSEC3PARAM)
            .unwrap();
        assert_eq!(rdata_presentation(param), "1 0 0 -");
        let p = rdata_presentation(chain[0].1);
        assert!(p.starts_with("1 0 0 - "), "{p}");
        assert_eq!(p.split(' ').nth(4).unwrap(), base32hex(chain[1].0));
    }

    #[test]
    fn apex_publishes_every_key_in_dnskey_cds_and_cdnskey() {
        let a = SigningKey::generate(Algorithm::EcdsaP256Sha256)
            .unwrap()
            .to_pkcs8_pem();
        let b = SigningKey::generate(Algorithm::EcdsaP256Sha256)
            .unwrap()
            .to_pkcs8_pem();
        let k = ZoneKeys::from_entries("test", |name| match name {
            "key.pem" => Some(a.as_bytes()),
            "next.pem" => Some(b.as_bytes()),
            _ => None,
        })
        .unwrap();
        let s = sign_zone(&zone(), 1, &k, 1_800_000_000);
        let of = |t: RecordType| s.apex.iter().filter(|r| r.rtype == t).count();
        assert_eq!(of(RecordType::DNSKEY), 2);
        assert_eq!(of(RecordType::CDNSKEY), 2);
        assert_eq!(of(RecordType::CDS), 2);
        assert_eq!(of(RecordType::NSEC3PARAM), 1);
        let cds = s.apex.iter().find(|r| r.rtype == RecordType::CDS).unwrap();
        assert_eq!(
            rdata_presentation(cds),
            k.active.ds_text("acme.example.com")
        );
        let dnskey = s
            .apex
            .iter()
            .find(|r| r.rtype == RecordType::DNSKEY)
            .unwrap();
        assert_eq!(
            format!(
                "acme.example.com. 3600 IN DNSKEY {}",
                rdata_presentation(dnskey)
            ),
            k.active.dnskey_presentation("acme.example.com", 3600)
        );
        // both keys sign every RRset
        let www = n("www.acme.example.com.");
        let sigs: Vec<_> = s.rrsigs_for(&www, RecordType::A).collect();
        assert_eq!(sigs.len(), 2);
        let rdatas = rdatas(&zone(), &www, RecordType::A);
        assert!(verify_rrsig(&k.active, &sigs[0].rdata, &www, &rdatas));
        assert!(verify_rrsig(
            k.next.as_ref().unwrap(),
            &sigs[1].rdata,
            &www,
            &rdatas
        ));
    }

    /// A DS at a delegation is the parent's: signed, and in the delegation's NSEC3.
    #[test]
    fn ds_at_a_delegation_is_signed() {
        let mut d = zone();
        let ds = RData::Unknown {
            code: RecordType::DS,
            rdata: hickory_proto::rr::rdata::NULL::with(vec![0x30, 0x39, 13, 2, 0xab, 0xcd]),
        };
        d.add(n("child.acme.example.com."), 3600, ds);
        let k = keys(Algorithm::Ed25519);
        let s = sign_zone(&d, 1, &k, 1_800_000_000);
        let child = n("child.acme.example.com.");
        assert_eq!(s.rrsigs_for(&child, RecordType::DS).count(), 1);
        assert_eq!(s.rrsigs_for(&child, RecordType::NS).count(), 0);
        let h = base32hex(&nsec3_hash(&child, &[], 0));
        let r = s
            .nsec3_chain()
            .find(|(_, r)| r.name.to_ascii().starts_with(&h))
            .unwrap()
            .1;
        assert_eq!(types_of(r), " NS DS RRSIG");
    }

    #[test]
    fn resign_when_a_generation_begins_with_seven_days_left() {
        let d = zone();
        let g = generation(&d.origin, 1_800_000_000);
        let start = generation_start(&d.origin, g);
        let end = generation_start(&d.origin, g + 1);
        assert_eq!(end - start, 7 * 86400);
        // signed anywhere in the generation: the same window, hence the same signatures' times
        for t in [start, start + 1, start + 3 * 86400, end - 1] {
            let s = sign_zone(&d, 1, &keys(Algorithm::Ed25519), t);
            assert_eq!(
                (s.inception, s.expiration),
                (start - 3600, start + 14 * 86400)
            );
            assert!(!needs_resign(&s, t));
            assert!(!needs_resign(&s, end - 1));
            assert!(needs_resign(&s, end), "7 days left at the next generation");
            assert_eq!(s.expiration - end, REFRESH_BEFORE);
            assert!(needs_resign(&s, end + 30 * 86400));
            // a clock that goes back to before the generation re-signs too
            assert!(needs_resign(&s, start - 1));
        }
    }

    #[test]
    fn generations_are_shifted_by_zone_and_stable() {
        let names = [
            "acme.example.com.",
            "example.org.",
            "a.b.c.example.net.",
            "tenant-42.example.",
        ];
        let offsets: BTreeSet<u32> = names
            .iter()
            .map(|z| generation_start(&n(z), generation(&n(z), 1_800_000_000)) % GENERATION)
            .collect();
        assert_eq!(offsets.len(), names.len(), "{offsets:?}");
        // the offset is a function of the name alone, case-insensitive, and fixed in code
        let z = n("acme.example.com.");
        assert_eq!(
            generation(&n("ACME.Example.com."), 1_800_000_000),
            generation(&z, 1_800_000_000)
        );
        assert_eq!(generation_offset(&z), generation_offset(&z.to_lowercase()));
        let expected = crate::fnv::Fnv1a::new()
            .bytes(b"\x04acme\x07example\x03com\x00")
            .finish()
            % u64::from(GENERATION);
        assert_eq!(generation_offset(&z), expected);
        // generations count up one by one
        let g = generation(&z, 1_800_000_000);
        assert_eq!(generation(&z, 1_800_000_000 + GENERATION), g + 1);
        assert_eq!(generation_start(&z, 0), 0);
    }

    /// Ed25519 is deterministic: signing the same content at the same time twice gives the same
    /// records (the property the incremental pipeline will be checked against).
    #[test]
    fn ed25519_signing_is_reproducible() {
        let k = keys(Algorithm::Ed25519);
        assert_eq!(
            sign_zone(&zone(), 3, &k, 1_800_000_000),
            sign_zone(&zone(), 3, &k, 1_800_000_000)
        );
    }

    /// Random changes to a zone's names, each signed from the version before with
    /// `sign_zone_reusing`, equal a fresh `sign_zone` of the same data (Ed25519: signatures
    /// too); the update path (not the whole zone again) gives that result whenever no
    /// delegation point came or went, and is the one that ran.
    #[test]
    fn updating_a_signed_zone_equals_signing_it_whole() {
        let k = keys(Algorithm::Ed25519);
        let now = 1_800_000_000;
        let pool = [
            "acme.example.com.",
            "www.acme.example.com.",
            "a.b.deep.acme.example.com.",
            "b.deep.acme.example.com.",
            "deep.acme.example.com.",
            "*.wild.acme.example.com.",
            "x.y.z.acme.example.com.",
            "y.z.acme.example.com.",
            "mail.acme.example.com.",
            "child.acme.example.com.",
            "ns.child.acme.example.com.",
            "deeper.ns.child.acme.example.com.",
            "kid.acme.example.com.",
        ];
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut rnd = |m: usize| -> usize {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % m as u64) as usize
        };
        let (mut updates, mut fulls) = (0, 0);
        for round in 0..30 {
            let mut d = zone();
            let mut s = sign_zone(&d, 1, &k, now);
            for step in 0..25u32 {
                let mut changed = HashSet::new();
                for _ in 0..1 + rnd(3) {
                    let name = n(pool[rnd(pool.len())]);
                    match rnd(6) {
                        0 if name != d.origin => {
                            d.records.remove(&name);
                        }
                        1 => d.add(
                            name.clone(),
                            60,
                            RData::TXT(TXT::new(vec![format!("{step}")])),
                        ),
                        2 if name != d.origin => d.add(
                            name.clone(),
                            3600,
                            RData::NS(NS(n("ns.elsewhere.example."))),
                        ),
                        3 => d.add(
                            name.clone(),
                            3600,
                            RData::Unknown {
                                code: RecordType::DS,
                                rdata: hickory_proto::rr::rdata::NULL::with(vec![
                                    0x30, 0x39, 13, 2, step as u8,
                                ]),
                            },
                        ),
                        _ => d.add(
                            name.clone(),
                            60,
                            RData::A(A::new(192, 0, 2, (step % 250) as u8)),
                        ),
                    }
                    changed.insert(name);
                }
                let serial = step + 2;
                let ctx = format!("round {round} step {step} changed {changed:?}");
                let want = sign_zone(&d, serial, &k, now);
                let reuse = Reuse {
                    prev: &s,
                    changed: &changed,
                };
                let cut_moved = changed
                    .iter()
                    .any(|c| s.cuts.contains(c) != Params::new(&d, &k, now).is_cut(&d, c));
                let updated = update(&d, serial, &Params::new(&d, &k, now), &reuse);
                assert_eq!(updated.is_some(), !cut_moved, "{ctx}");
                if let Some(u) = &updated {
                    assert!(*u == want, "{ctx}: updated zone differs from a fresh sign");
                    updates += 1;
                } else {
                    fulls += 1;
                }
                let got = sign_zone_reusing(&d, serial, &k, now, Some(reuse));
                assert!(
                    got == want,
                    "{ctx}: re-signed zone differs from a fresh sign"
                );
                s = got;
            }
        }
        assert!(
            updates > 2 * fulls && fulls > 0,
            "{updates} updates, {fulls} whole"
        );
    }
}
