//! Zone transfers out (RFC 5936 AXFR, RFC 1995 IXFR) and TSIG-signed answers: who may
//! transfer which zone (its own `allowFrom` networks and key, never another zone's), and the
//! response stream, packed into as few messages as fit 64 KiB, each signed in a TSIG chain
//! when the request was signed. The transport (server.rs) only writes the messages out.

use super::compiled::{CompiledZone, ZoneSet};
use super::pack::Packer;
use super::responder::{Summary, Transport};
use super::tsig::{self, ResponseSigner, TsigRecord, Verified};
use crate::dnssec::sign::SignedZone;
use crate::zone::transfer::{KeyRequirement, TransferPolicy, TsigKey};
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::NULL;
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
use hickory_proto::rr::{RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
use std::net::IpAddr;
use std::sync::Arc;

/// EDNS EXPIRE (RFC 7314).
pub const EDNS_EXPIRE: u16 = 9;
/// Largest DNS message over TCP.
const MAX_MESSAGE: usize = 65535;

/// Whether `request` asks for a zone transfer (opcode QUERY, one question of type AXFR or
/// IXFR): such requests go to `Transfer::start` on TCP. Cheap; reads the header and question.
pub fn is_transfer(request: &[u8]) -> bool {
    if request.len() < 12 || request[2] & 0x80 != 0 || (request[2] >> 3) & 0x0f != 0 {
        return false;
    }
    if u16::from_be_bytes([request[4], request[5]]) != 1 {
        return false;
    }
    let mut i = 12;
    while let Some(&l) = request.get(i) {
        if l == 0 {
            return request
                .get(i + 1..i + 3)
                .is_some_and(|t| matches!(u16::from_be_bytes([t[0], t[1]]), 251 | 252));
        }
        if l & 0xc0 != 0 {
            return false;
        }
        i += 1 + l as usize;
    }
    false
}

/// The zone's key, if it has a usable one.
fn zone_key(policy: Option<&TransferPolicy>) -> Option<&TsigKey> {
    match policy.map(|p| &p.key) {
        Some(KeyRequirement::Key(k)) => Some(k),
        _ => None,
    }
}

/// A NOTAUTH reply to a request whose TSIG failed (RFC 8945 §5.2): the question, the TSIG
/// error, signed only where the RFC says so.
fn tsig_error_reply(
    msg: &Message,
    request: &TsigRecord,
    error: u16,
    key: Option<&TsigKey>,
    signed_reply: Option<Vec<u8>>,
    now: u64,
) -> Vec<u8> {
    let mut resp = Message::new(msg.metadata.id, MessageType::Response, msg.metadata.op_code);
    resp.metadata.recursion_desired = msg.metadata.recursion_desired;
    resp.metadata.response_code = ResponseCode::NotAuth;
    resp.queries = msg.queries.clone();
    let mut bytes = resp.to_vec().unwrap_or_default();
    if bytes.len() >= 12 {
        tsig::error_reply(&mut bytes, request, error, key, signed_reply, now);
    }
    bytes
}

/// A short reply (error or SOA alone) as a one-message stream.
fn reply(msg: &Message, rcode: ResponseCode) -> Vec<u8> {
    let mut resp = Message::new(msg.metadata.id, MessageType::Response, msg.metadata.op_code);
    resp.metadata.recursion_desired = msg.metadata.recursion_desired;
    resp.metadata.response_code = rcode;
    resp.queries = msg.queries.clone();
    resp.to_vec().unwrap_or_default()
}

/// Answers a request that carries a TSIG record and is not a transfer over TCP: verifies it
/// against the key of the zone it asks about and signs `respond`'s answer. `None` when the
/// request is unsigned (the caller answers as usual). Over UDP too: secondaries sign their
/// SOA queries.
pub fn respond_signed(
    zones: &ZoneSet,
    request: &[u8],
    transport: Transport,
    now: u64,
) -> Option<Option<(Vec<u8>, Summary)>> {
    let t = match tsig::find(request) {
        Ok(Some(t)) => t,
        Ok(None) => return None,
        // a TSIG that is not last, or a broken record: the plain path answers FORMERR
        Err(_) => return None,
    };
    let msg = Message::read(&mut BinDecoder::new(request)).ok()?;
    let qtype = msg
        .queries
        .first()
        .map(|q| q.query_type())
        .unwrap_or(RecordType::Unknown(0));
    let zone = msg
        .queries
        .first()
        .and_then(|q| zones.find(&q.name().to_lowercase()));
    let label = zone.map(|z| z.label().clone());
    let policy = zone.and_then(|z| zones.transfer(z.origin()));
    let key = zone_key(policy.map(|p| p.as_ref()));
    // signed responses carry the time: never cached, never rate limited (the key proves the
    // client)
    let summary = |rcode| Summary {
        zone: label.clone(),
        qtype,
        rcode,
        truncated: false,
        rrl: None,
        cacheable: false,
    };
    match tsig::verify_request(request, &t, key, now) {
        Verified::Error {
            error,
            request: r,
            signed_reply,
        } => {
            let bytes = tsig_error_reply(&msg, &r, error, key, signed_reply, now);
            Some(Some((bytes, summary(ResponseCode::NotAuth))))
        }
        Verified::Ok { request_mac, .. } => {
            let key = key.expect("verified against a key");
            // the request without its TSIG, answered as any other
            let mut unsigned = request[..t.start].to_vec();
            let ar = u16::from_be_bytes([unsigned[10], unsigned[11]]) - 1;
            unsigned[10..12].copy_from_slice(&ar.to_be_bytes());
            let (mut bytes, s) = super::responder::respond(zones, &unsigned, transport)?;
            ResponseSigner::new(key.clone(), request_mac).sign(&mut bytes, now);
            Some(Some((bytes, s)))
        }
    }
}

/// Why a transfer was refused, for metrics and logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Sent (full zone, increments, or the SOA alone).
    Sent,
    /// Not a zone we serve, or no `spec.transfer`.
    NoZone,
    /// Peer outside `allowFrom`.
    Address,
    /// Unsigned where the zone requires a key, or the zone's key is unusable.
    KeyRequired,
    /// TSIG failed (BADKEY, BADSIG, BADTIME, BADTRUNC).
    Tsig(u16),
    /// Not a well-formed transfer request.
    FormErr,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Sent => "sent",
            Outcome::NoZone => "refused_no_zone",
            Outcome::Address => "refused_address",
            Outcome::KeyRequired => "refused_key_required",
            Outcome::Tsig(tsig::BADKEY) => "notauth_badkey",
            Outcome::Tsig(tsig::BADTIME) => "notauth_badtime",
            Outcome::Tsig(tsig::BADTRUNC) => "notauth_badtrunc",
            Outcome::Tsig(_) => "notauth_badsig",
            Outcome::FormErr => "formerr",
        }
    }
}

/// What a transfer sends: AXFR-style full zone, the SOA alone, or IXFR increments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Axfr,
    /// IXFR answered with the full zone (no history from the client's serial).
    IxfrFull,
    /// IXFR answered with the condensed differences from the client's serial.
    IxfrIncremental,
    /// IXFR from a client that is current: the SOA alone.
    IxfrCurrent,
    /// Refused or an error: one message.
    Error,
}

/// One transfer's response stream: call `next_message` until it returns `None`.
pub struct Transfer {
    pub zone: Option<Arc<str>>,
    pub qtype: RecordType,
    pub outcome: Outcome,
    pub kind: Kind,
    id: u16,
    rd: bool,
    query: Option<Query>,
    /// The OPT record for the first message.
    edns: Option<Edns>,
    /// The records to send next, in order (RRsets, shared with the zone).
    items: Vec<Arc<[Record]>>,
    pos: (usize, usize),
    signer: Option<ResponseSigner>,
    /// A ready single message (errors), sent instead of `items`.
    single: Option<Vec<u8>>,
    started: bool,
    pub messages: usize,
}

impl Transfer {
    fn one(
        msg: Option<&Message>,
        bytes: Vec<u8>,
        outcome: Outcome,
        zone: Option<Arc<str>>,
    ) -> Self {
        Self {
            zone,
            qtype: msg
                .and_then(|m| m.queries.first())
                .map(|q| q.query_type())
                .unwrap_or(RecordType::AXFR),
            outcome,
            kind: Kind::Error,
            id: 0,
            rd: false,
            query: None,
            edns: None,
            items: Vec::new(),
            pos: (0, 0),
            signer: None,
            single: Some(bytes),
            started: false,
            messages: 0,
        }
    }

    /// Starts answering a transfer request from `peer` at Unix time `now`.
    pub fn start(zones: &ZoneSet, request: &[u8], peer: IpAddr, now: u64) -> Self {
        let msg = match Message::read(&mut BinDecoder::new(request)) {
            Ok(m) => m,
            Err(_) => {
                let mut r = Message::new(
                    u16::from_be_bytes([request[0], request[1]]),
                    MessageType::Response,
                    OpCode::Query,
                );
                r.metadata.response_code = ResponseCode::FormErr;
                let bytes = r.to_vec().unwrap_or_default();
                return Self::one(None, bytes, Outcome::FormErr, None);
            }
        };
        let Some(query) = msg.queries.first().cloned() else {
            let bytes = reply(&msg, ResponseCode::FormErr);
            return Self::one(Some(&msg), bytes, Outcome::FormErr, None);
        };
        let qname = query.name().to_lowercase();
        // only the apex of a zone we serve, and only a zone with a transfer policy
        let zone = zones.find(&qname).filter(|z| *z.origin() == qname);
        let label = zone.map(|z| z.label().clone());
        let policy = zone.and_then(|z| zones.transfer(z.origin()));
        let (Some(zone), Some(policy)) = (zone, policy) else {
            let bytes = reply(&msg, ResponseCode::Refused);
            return Self::one(Some(&msg), bytes, Outcome::NoZone, label);
        };
        // the address first: a foreign peer learns nothing about keys
        if !policy.allows_address(peer) {
            let bytes = reply(&msg, ResponseCode::Refused);
            return Self::one(Some(&msg), bytes, Outcome::Address, label);
        }
        let key = zone_key(Some(policy));
        let tsig = match tsig::find(request) {
            Ok(t) => t,
            Err(_) => {
                let bytes = reply(&msg, ResponseCode::FormErr);
                return Self::one(Some(&msg), bytes, Outcome::FormErr, label);
            }
        };
        let signer = match &tsig {
            Some(t) => match tsig::verify_request(request, t, key, now) {
                Verified::Ok { request_mac, .. } => Some(ResponseSigner::new(
                    key.expect("verified against a key").clone(),
                    request_mac,
                )),
                Verified::Error {
                    error,
                    request: r,
                    signed_reply,
                } => {
                    let bytes = tsig_error_reply(&msg, &r, error, key, signed_reply, now);
                    return Self::one(Some(&msg), bytes, Outcome::Tsig(error), label);
                }
            },
            None => None,
        };
        if signer.is_none() && !matches!(policy.key, KeyRequirement::None) {
            let bytes = reply(&msg, ResponseCode::Refused);
            return Self::one(Some(&msg), bytes, Outcome::KeyRequired, label);
        }
        let edns = msg.edns.as_ref().map(|ce| response_edns(ce, zone));
        let soa = zone.soa().clone();
        let full = || whole_zone(zone);
        let (kind, items) = match query.query_type() {
            RecordType::IXFR => match client_serial(&msg) {
                Some(s) if !serial_lt(s, zone.serial()) => (Kind::IxfrCurrent, vec![soa]),
                // a signed zone: the journal keeps only unsigned differences (no RRSIG or
                // NSEC3 changes), so the whole signed zone, AXFR-style (RFC 1995 §4)
                Some(_) if zone.dnssec().is_some() => (Kind::IxfrFull, full()),
                Some(s) => match zones
                    .history(zone.origin())
                    .and_then(|h| h.since(s))
                    .filter(|c| c.to_soa == soa[0] && c.to_soa.ttl == soa[0].ttl)
                {
                    // RFC 1995 §4: our SOA, the client's SOA, deletions, our SOA, additions,
                    // our SOA (one condensed step)
                    Some(c) => (
                        Kind::IxfrIncremental,
                        vec![
                            soa.clone(),
                            Arc::from(vec![c.from_soa]),
                            Arc::from(c.removed),
                            soa.clone(),
                            Arc::from(c.added),
                            soa,
                        ],
                    ),
                    // no history from there: the whole zone, AXFR-style
                    None => (Kind::IxfrFull, full()),
                },
                None => (Kind::IxfrFull, full()),
            },
            _ => (Kind::Axfr, full()),
        };
        Self {
            zone: label,
            qtype: query.query_type(),
            outcome: Outcome::Sent,
            kind,
            id: msg.metadata.id,
            rd: msg.metadata.recursion_desired,
            query: Some(query),
            edns,
            items,
            pos: (0, 0),
            signer,
            single: None,
            started: false,
            messages: 0,
        }
    }

    /// The next message of the stream, `None` after the last.
    pub fn next_message(&mut self, now: u64) -> Option<Vec<u8>> {
        if let Some(b) = self.single.take() {
            self.started = true;
            self.messages += 1;
            return Some(b);
        }
        if self.started && self.pos.0 >= self.items.len() {
            return None;
        }
        let first = !self.started;
        self.started = true;
        let mut buf = Vec::with_capacity(if self.items.len() > 8 { 65535 } else { 512 });
        let edns = if first { self.edns.take() } else { None };
        let mut budget = MAX_MESSAGE - 11 - 64; // room for the OPT record with options
        if let Some(s) = &self.signer {
            budget -= tsig_reserve(s);
        }
        let mut flags: u16 = 0x8000 | 0x0400; // QR, AA
        if self.rd {
            flags |= 0x0100;
        }
        for h in [
            self.id,
            flags,
            u16::from(first),
            0,
            0,
            u16::from(edns.is_some()),
        ] {
            buf.extend_from_slice(&h.to_be_bytes());
        }
        let mut pack = Packer::new(buf, budget);
        if first && let Some(q) = &self.query {
            pack.question(q);
        }
        let mut answers = 0u16;
        'fill: while let Some(set) = self.items.get(self.pos.0) {
            while let Some(rec) = set.get(self.pos.1) {
                if pack.record(rec) {
                    answers += 1;
                    self.pos.1 += 1;
                } else if answers > 0 {
                    break 'fill;
                } else {
                    // one record larger than a message: cannot be sent; skip it
                    tracing::warn!(record = %rec.name, "record too large to transfer");
                    self.pos.1 += 1;
                }
            }
            self.pos = (self.pos.0 + 1, 0);
        }
        let mut buf = pack.into_inner();
        buf[6..8].copy_from_slice(&answers.to_be_bytes());
        if let Some(e) = edns {
            let mut m = Message::new(0, MessageType::Response, OpCode::Query);
            m.set_edns(e);
            // the OPT record alone, from an otherwise empty message
            if let Ok(b) = m.to_vec() {
                buf.extend_from_slice(&b[12..]);
            }
        }
        if let Some(s) = &mut self.signer {
            s.sign(&mut buf, now);
        }
        self.messages += 1;
        Some(buf)
    }
}

fn tsig_reserve(_s: &ResponseSigner) -> usize {
    // the largest key name (255) and MAC (64) we use
    255 + 10 + 13 + 10 + 64 + 12
}

/// The response OPT to a client's OPT: our payload size, EXPIRE when asked (RFC 7314: a
/// primary answers with the SOA expire field).
pub fn response_edns(client: &Edns, zone: &CompiledZone) -> Edns {
    let mut e = Edns::new();
    e.set_max_payload(super::responder::MAX_UDP_PAYLOAD);
    e.set_version(0);
    if client.option(EdnsCode::Expire).is_some()
        && let Some(expire) = soa_expire(zone)
    {
        e.options_mut().insert(EdnsOption::Unknown(
            EDNS_EXPIRE,
            expire.to_be_bytes().to_vec(),
        ));
    }
    e
}

fn soa_expire(zone: &CompiledZone) -> Option<u32> {
    match zone.soa().first().map(|r| &r.data) {
        Some(RData::SOA(s)) => Some(s.expire as u32),
        _ => None,
    }
}

/// The serial in the authority-section SOA of an IXFR request.
fn client_serial(msg: &Message) -> Option<u32> {
    msg.authorities.iter().find_map(|r| match &r.data {
        RData::SOA(s) => Some(s.serial),
        _ => None,
    })
}

/// RFC 1982: whether serial `a` is before `b`.
pub fn serial_lt(a: u32, b: u32) -> bool {
    a != b && b.wrapping_sub(a) < 0x8000_0000
}

/// A whole zone as RFC 5936 §2.2 sends it: the SOA, every other RRset, for a signed zone
/// what signing added (see [`signed_records`]), the SOA again; the names in canonical order. Any order is correct, but a secondary builds its tree far faster
/// from sorted names: a fresh Knot secondary went on for 0.37 s after our last message of a
/// 100 000-name zone in hash order, for 0.09 s after one in canonical order. The list holds
/// the zone's RRsets (shared, not copied) and lives as long as the transfer.
fn whole_zone(zone: &CompiledZone) -> Vec<Arc<[Record]>> {
    let mut items = Vec::with_capacity(zone.record_count() + 2);
    items.push(zone.soa().clone());
    for node in zone.canonical_nodes() {
        for (rtype, set) in node.rrsets() {
            if *rtype != RecordType::SOA {
                items.push(set.clone());
            }
        }
    }
    if let Some(signed) = zone.dnssec() {
        items.extend(signed_records(signed));
    }
    items.push(zone.soa().clone());
    items
}

/// What signing added to a zone, as records to send, in groups of at most 1024: the apex
/// DNSKEY, CDNSKEY, CDS and NSEC3PARAM, the NSEC3 chain, then every RRSIG (the SOA's among
/// them, once). Made for each transfer of a signed zone and dropped with it.
fn signed_records(signed: &SignedZone) -> Vec<Arc<[Record]>> {
    let records: Vec<Record> = signed
        .records()
        .map(|r| {
            Record::from_rdata(
                r.name.clone(),
                r.ttl,
                RData::Unknown {
                    code: r.rtype,
                    rdata: NULL::with(r.rdata.clone()),
                },
            )
        })
        .collect();
    records.chunks(1024).map(Arc::from).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::tsig::{ResponseVerifier, sign_request};
    use crate::zone::ZoneData;
    use crate::zone::transfer::{TsigAlgorithm, parse_network};
    use hickory_proto::rr::{DNSClass, Name};
    use std::collections::BTreeSet;

    fn n(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    fn key() -> TsigKey {
        TsigKey {
            name: n("xfr.zonegate."),
            algorithm: TsigAlgorithm::HmacSha256,
            secret: vec![7; 32],
        }
    }

    fn zone_data(names: usize) -> ZoneData {
        let mut d = ZoneData::acme_example();
        for i in 0..names {
            d.add(
                n(&format!("host-{i}.acme.example.com.")),
                300,
                RData::A(std::net::Ipv4Addr::from(0x0a00_0000 + i as u32).into()),
            );
        }
        d
    }

    fn zones(names: usize, policy: Option<TransferPolicy>) -> ZoneSet {
        let d = zone_data(names);
        let mut other = ZoneData::acme_example();
        other.origin = n("other.example.");
        let mut set = ZoneSet::new([
            Arc::new(CompiledZone::build(&d, 42)),
            Arc::new(CompiledZone::build(&other, 7)),
        ]);
        if let Some(p) = policy {
            set.set_transfer(&n("acme.example.com."), Arc::new(p));
        }
        set
    }

    fn policy(key: KeyRequirement) -> TransferPolicy {
        TransferPolicy {
            allow_from: vec![parse_network("127.0.0.0/8").unwrap()],
            notify: vec![],
            key,
        }
    }

    fn request(zone: &str, qtype: RecordType) -> Vec<u8> {
        let mut m = Message::new(0x4242, MessageType::Query, OpCode::Query);
        m.add_query(Query::query(n(zone), qtype));
        m.to_vec().unwrap()
    }

    fn ixfr(serial: u32) -> Vec<u8> {
        let mut m = Message::new(0x4343, MessageType::Query, OpCode::Query);
        m.add_query(Query::query(n("acme.example.com."), RecordType::IXFR));
        let soa = hickory_proto::rr::rdata::SOA::new(
            n("ns1.acme.example.com."),
            n("hostmaster.acme.example.com."),
            serial,
            1,
            1,
            1,
            1,
        );
        m.add_authority(Record::from_rdata(
            n("acme.example.com."),
            0,
            RData::SOA(soa),
        ));
        m.to_vec().unwrap()
    }

    fn run(t: &mut Transfer) -> Vec<Vec<u8>> {
        std::iter::from_fn(|| t.next_message(1000)).collect()
    }

    const LOCAL: &str = "127.0.0.1";
    const FOREIGN: &str = "192.0.2.1";

    fn rcode(b: &[u8]) -> ResponseCode {
        Message::from_vec(b).unwrap().metadata.response_code
    }

    #[test]
    fn detects_transfers() {
        assert!(is_transfer(&request("acme.example.com.", RecordType::AXFR)));
        assert!(is_transfer(&ixfr(1)));
        assert!(!is_transfer(&request("acme.example.com.", RecordType::SOA)));
        assert!(!is_transfer(&[0; 11]));
    }

    /// The whole zone, SOA first and last and nowhere else, every record once, in canonical
    /// name order, in messages of at most 64 KiB, the question only in the first.
    #[test]
    fn axfr_sends_every_record_once_in_canonical_order() {
        for names in [0, 1, 2, 700, 3000] {
            let zones = zones(names, Some(policy(KeyRequirement::None)));
            let zone = zones.get(&n("acme.example.com.")).unwrap();
            let req = request("acme.example.com.", RecordType::AXFR);
            let mut t = Transfer::start(&zones, &req, LOCAL.parse().unwrap(), 1000);
            let records: Vec<Record> = run(&mut t)
                .iter()
                .flat_map(|b| Message::from_vec(b).unwrap().answers)
                .collect();
            assert_eq!(records.len(), zone.record_count() + 1, "{names} names");
            assert_eq!(records.first().unwrap().record_type(), RecordType::SOA);
            assert_eq!(records.last().unwrap().record_type(), RecordType::SOA);
            let unique: BTreeSet<String> = records.iter().map(|r| r.to_string()).collect();
            assert_eq!(unique.len(), records.len() - 1, "{names} names");
            let owners: Vec<&Name> = records[..records.len() - 1]
                .iter()
                .map(|r| &r.name)
                .collect();
            assert!(
                owners.windows(2).all(|w| w[0] <= w[1]),
                "{names} names: owners out of canonical order"
            );
        }
    }

    #[test]
    fn axfr_sends_the_whole_zone_in_few_messages() {
        let zones = zones(5000, Some(policy(KeyRequirement::None)));
        let mut t = Transfer::start(
            &zones,
            &request("acme.example.com.", RecordType::AXFR),
            LOCAL.parse().unwrap(),
            1000,
        );
        assert_eq!(t.outcome, Outcome::Sent);
        let msgs = run(&mut t);
        assert!(
            msgs.len() >= 2 && msgs.len() <= 4,
            "{} messages",
            msgs.len()
        );
        let mut records = Vec::new();
        for (i, b) in msgs.iter().enumerate() {
            assert!(b.len() <= 65535);
            let m = Message::from_vec(b).unwrap();
            assert_eq!(m.metadata.id, 0x4242);
            assert!(m.metadata.authoritative);
            assert_eq!(m.queries.len(), usize::from(i == 0));
            records.extend(m.answers);
        }
        assert_eq!(records.first().unwrap().record_type(), RecordType::SOA);
        assert_eq!(records.last().unwrap().record_type(), RecordType::SOA);
        let soas = records
            .iter()
            .filter(|r| r.record_type() == RecordType::SOA)
            .count();
        assert_eq!(soas, 2);
        let zone = zones.get(&n("acme.example.com.")).unwrap();
        assert_eq!(records.len(), zone.record_count() + 1);
        let unique: BTreeSet<String> = records[1..records.len() - 1]
            .iter()
            .map(|r| r.to_string())
            .collect();
        assert_eq!(unique.len(), records.len() - 2);
    }

    #[test]
    fn access_is_per_zone_and_by_address_then_key() {
        let req = request("acme.example.com.", RecordType::AXFR);
        let local = LOCAL.parse().unwrap();
        // no policy: refused
        let mut t = Transfer::start(&zones(3, None), &req, local, 1000);
        assert_eq!(t.outcome, Outcome::NoZone);
        assert_eq!(rcode(&run(&mut t)[0]), ResponseCode::Refused);
        // foreign address
        let z = zones(3, Some(policy(KeyRequirement::Key(key()))));
        let mut t = Transfer::start(&z, &req, FOREIGN.parse().unwrap(), 1000);
        assert_eq!(t.outcome, Outcome::Address);
        assert_eq!(rcode(&run(&mut t)[0]), ResponseCode::Refused);
        // unsigned where a key is required
        let mut t = Transfer::start(&z, &req, local, 1000);
        assert_eq!(t.outcome, Outcome::KeyRequired);
        assert_eq!(rcode(&run(&mut t)[0]), ResponseCode::Refused);
        // an unusable key refuses even signed requests
        let bad = zones(3, Some(policy(KeyRequirement::Unusable("missing".into()))));
        let mut signed = req.clone();
        sign_request(&mut signed, &key(), 1000);
        let t = Transfer::start(&bad, &signed, local, 1000);
        assert_eq!(t.outcome, Outcome::Tsig(tsig::BADKEY));
        // another zone's policy never opens this one: other.example has none
        let mut other = request("other.example.", RecordType::AXFR);
        sign_request(&mut other, &key(), 1000);
        let t = Transfer::start(&z, &other, local, 1000);
        assert_eq!(t.outcome, Outcome::NoZone);
        // not the apex
        let t = Transfer::start(
            &zones(3, Some(policy(KeyRequirement::None))),
            &request("host-1.acme.example.com.", RecordType::AXFR),
            local,
            1000,
        );
        assert_eq!(t.outcome, Outcome::NoZone);
    }

    #[test]
    fn tsig_errors_are_notauth_with_the_error() {
        let z = zones(3, Some(policy(KeyRequirement::Key(key()))));
        let local = LOCAL.parse().unwrap();
        let req = request("acme.example.com.", RecordType::AXFR);
        let mut wrong = key();
        wrong.secret[0] ^= 1;
        let mut renamed = key();
        renamed.name = n("other-key.");
        for (k, at, error) in [
            (wrong, 1000, tsig::BADSIG),
            (renamed, 1000, tsig::BADKEY),
            (key(), 1000 - 301, tsig::BADTIME),
        ] {
            let mut signed = req.clone();
            sign_request(&mut signed, &k, at);
            let mut t = Transfer::start(&z, &signed, local, 1000);
            assert_eq!(t.outcome, Outcome::Tsig(error));
            let msgs = run(&mut t);
            assert_eq!(msgs.len(), 1);
            assert_eq!(rcode(&msgs[0]), ResponseCode::NotAuth);
            let rec = tsig::find(&msgs[0]).unwrap().unwrap();
            assert_eq!(rec.error, error);
            assert_eq!(rec.mac.is_empty(), error != tsig::BADTIME);
            if error == tsig::BADTIME {
                assert_eq!(rec.other, 1000u64.to_be_bytes()[2..].to_vec());
            }
        }
    }

    /// A signed AXFR of a zone that needs several messages: every message signed, the chain
    /// verifies on the client side.
    #[test]
    fn signed_axfr_chain_verifies() {
        let z = zones(6000, Some(policy(KeyRequirement::Key(key()))));
        let mut req = request("acme.example.com.", RecordType::AXFR);
        let mac = sign_request(&mut req, &key(), 1000);
        let mut t = Transfer::start(&z, &req, LOCAL.parse().unwrap(), 1000);
        assert_eq!(t.outcome, Outcome::Sent);
        let msgs = run(&mut t);
        assert!(msgs.len() >= 3, "{}", msgs.len());
        let mut v = ResponseVerifier::new(key(), mac);
        for m in &msgs {
            assert!(m.len() <= 65535);
            assert_eq!(v.verify(m, 1000), Ok(true));
        }
    }

    #[test]
    fn ixfr_from_current_serial_is_the_soa_alone_and_older_is_full() {
        let z = zones(10, Some(policy(KeyRequirement::None)));
        let local = LOCAL.parse().unwrap();
        let mut t = Transfer::start(&z, &ixfr(42), local, 1000);
        assert_eq!(t.kind, Kind::IxfrCurrent);
        let msgs = run(&mut t);
        let m = Message::from_vec(&msgs[0]).unwrap();
        assert_eq!(m.answers.len(), 1);
        assert_eq!(m.answers[0].record_type(), RecordType::SOA);
        let mut t = Transfer::start(&z, &ixfr(41), local, 1000);
        assert_eq!(t.kind, Kind::IxfrFull);
        let m = Message::from_vec(&run(&mut t)[0]).unwrap();
        assert!(m.answers.len() > 10);
        assert_ne!(m.answers[1].record_type(), RecordType::SOA);
    }

    #[test]
    fn expire_option_is_answered() {
        let z = zones(1, Some(policy(KeyRequirement::None)));
        let mut m = Message::new(1, MessageType::Query, OpCode::Query);
        m.add_query(Query::query(n("acme.example.com."), RecordType::AXFR));
        let mut e = Edns::new();
        e.options_mut()
            .insert(EdnsOption::Unknown(EDNS_EXPIRE, vec![]));
        m.set_edns(e);
        let mut t = Transfer::start(&z, &m.to_vec().unwrap(), LOCAL.parse().unwrap(), 1);
        let first = Message::from_vec(&run(&mut t)[0]).unwrap();
        let opt = first.edns.expect("OPT in the first message");
        let Some(EdnsOption::Unknown(9, v)) = opt.option(EdnsCode::Expire) else {
            panic!("{opt:?}")
        };
        assert_eq!(v.len(), 4);
        let _ = DNSClass::IN;
    }

    #[test]
    fn signed_queries_get_signed_answers() {
        let z = zones(1, Some(policy(KeyRequirement::Key(key()))));
        let mut req = request("acme.example.com.", RecordType::SOA);
        let now = crate::publish::unix_now();
        let mac = sign_request(&mut req, &key(), now);
        let (bytes, s) = respond_signed(&z, &req, Transport::Udp, now)
            .unwrap()
            .unwrap();
        assert_eq!(s.rcode, ResponseCode::NoError);
        assert_eq!(Message::from_vec(&bytes).unwrap().answers.len(), 1);
        assert_eq!(
            ResponseVerifier::new(key(), mac).verify(&bytes, now),
            Ok(true)
        );
        // through the responder, as the transports call it
        let (bytes2, _) = super::super::respond(&z, &req, Transport::Udp).unwrap();
        assert!(tsig::find(&bytes2).unwrap().is_some());
        // unsigned: not this path
        assert!(
            respond_signed(
                &z,
                &request("acme.example.com.", RecordType::SOA),
                Transport::Udp,
                now
            )
            .is_none()
        );
    }

    /// IXFR from a kept serial: one condensed step on the wire (new SOA, old SOA, deletions,
    /// new SOA, additions, new SOA), which applied to the old version gives the new one.
    #[test]
    fn ixfr_from_a_kept_serial_is_incremental_and_applies() {
        use crate::dns::journal::{History, diff};
        let mut d = zone_data(20);
        let v1 = Arc::new(CompiledZone::build(&d, 42));
        d.records.remove(&n("host-3.acme.example.com."));
        d.add(
            n("new.acme.example.com."),
            60,
            RData::A(std::net::Ipv4Addr::new(192, 0, 2, 9).into()),
        );
        let v2 = Arc::new(CompiledZone::build(&d, 43));
        d.add(
            n("newer.acme.example.com."),
            60,
            RData::A(std::net::Ipv4Addr::new(192, 0, 2, 10).into()),
        );
        let v3 = Arc::new(CompiledZone::build(&d, 44));
        let h = History::default()
            .with(diff(&v1, &v2, None))
            .with(diff(&v2, &v3, None));
        let mut set = ZoneSet::new([v3.clone()]);
        set.set_transfer(
            &n("acme.example.com."),
            Arc::new(policy(KeyRequirement::None)),
        );
        set.set_history(&n("acme.example.com."), Arc::new(h));
        let text = |z: &CompiledZone| -> BTreeSet<String> {
            z.names()
                .flat_map(|name| z.node(name).unwrap().rrsets())
                .filter(|(t, _)| *t != RecordType::SOA)
                .flat_map(|(_, s)| s.iter().map(|r| r.to_string()))
                .collect()
        };
        for (from, base) in [(42, &v1), (43, &v2)] {
            let mut t = Transfer::start(&set, &ixfr(from), LOCAL.parse().unwrap(), 1);
            assert_eq!(t.kind, Kind::IxfrIncremental);
            let answers: Vec<Record> = run(&mut t)
                .iter()
                .flat_map(|b| Message::from_vec(b).unwrap().answers)
                .collect();
            let serial = |r: &Record| match &r.data {
                RData::SOA(s) => Some(s.serial),
                _ => None,
            };
            assert_eq!(serial(&answers[0]), Some(44));
            assert_eq!(serial(&answers[1]), Some(from));
            assert_eq!(serial(answers.last().unwrap()), Some(44));
            let mid = answers
                .iter()
                .skip(2)
                .position(|r| serial(r).is_some())
                .unwrap()
                + 2;
            let mut records = text(base);
            for r in &answers[2..mid] {
                assert!(records.remove(&r.to_string()), "{r}");
            }
            for r in &answers[mid + 1..answers.len() - 1] {
                assert!(records.insert(r.to_string()), "{r}");
            }
            assert_eq!(records, text(&v3));
        }
        // a serial not kept: the whole zone
        let t = Transfer::start(&set, &ixfr(30), LOCAL.parse().unwrap(), 1);
        assert_eq!(t.kind, Kind::IxfrFull);
    }

    /// A signed zone of `names` hosts, a delegation with glue and the given history.
    fn signed_zones(
        names: usize,
        key: KeyRequirement,
    ) -> (ZoneSet, crate::dnssec::keys::ZoneKeys, ZoneData) {
        use crate::dnssec::keys::{ACTIVE_KEY, Algorithm, SigningKey, ZoneKeys};
        let mut d = zone_data(names);
        d.add(
            n("acme.example.com."),
            3600,
            RData::NS(hickory_proto::rr::rdata::NS(n("ns1.acme.example.com."))),
        );
        d.add(
            n("ns1.acme.example.com."),
            300,
            RData::A(std::net::Ipv4Addr::new(192, 0, 2, 53).into()),
        );
        d.add(
            n("child.acme.example.com."),
            3600,
            RData::NS(hickory_proto::rr::rdata::NS(n(
                "ns.child.acme.example.com.",
            ))),
        );
        d.add(
            n("ns.child.acme.example.com."),
            3600,
            RData::A(std::net::Ipv4Addr::new(192, 0, 2, 77).into()),
        );
        let pem = SigningKey::generate(Algorithm::EcdsaP256Sha256)
            .unwrap()
            .to_pkcs8_pem();
        let keys =
            ZoneKeys::from_entries("t", |k| (k == ACTIVE_KEY).then_some(pem.as_bytes())).unwrap();
        let v1 = Arc::new(CompiledZone::build(&d, 41));
        let signed = crate::dnssec::sign::sign_zone(&d, 42, &keys, 1_800_000_000);
        let v2 = Arc::new(CompiledZone::build(&d, 42).with_dnssec(Arc::new(signed)));
        let mut set = ZoneSet::new([v2.clone()]);
        set.set_transfer(&n("acme.example.com."), Arc::new(policy(key)));
        // a kept difference from 41: a signed zone must not answer from it
        let h =
            crate::dns::journal::History::default().with(crate::dns::journal::diff(&v1, &v2, None));
        set.set_history(&n("acme.example.com."), Arc::new(h));
        (set, keys, d)
    }

    fn raw_rdata(r: &Record) -> Vec<u8> {
        match &r.data {
            RData::Unknown { rdata, .. } => rdata.anything.clone(),
            d => crate::dnssec::sign::canonical_rdata(d).unwrap(),
        }
    }

    /// Checks a signed zone's full transfer: SOA first and last and exactly twice; the apex
    /// DNSKEY, CDS, CDNSKEY, NSEC3PARAM; an RRSIG that verifies over every authoritative
    /// RRset as sent (the SOA's once, over the SOA with the serial sent); the whole NSEC3
    /// chain, each signed; every record once.
    fn check_signed_full(set: &ZoneSet, keys: &crate::dnssec::keys::ZoneKeys, msgs: &[Vec<u8>]) {
        use crate::dnssec::sign::verify_rrsig;
        use std::collections::BTreeMap;
        let zone = set.get(&n("acme.example.com.")).unwrap();
        let signed = zone.dnssec().unwrap();
        assert!(msgs.iter().all(|m| m.len() <= 65535));
        let records: Vec<Record> = msgs
            .iter()
            .flat_map(|b| Message::from_vec(b).unwrap().answers)
            .collect();
        let soa = |r: &Record| r.record_type() == RecordType::SOA;
        assert!(soa(records.first().unwrap()) && soa(records.last().unwrap()));
        assert_eq!(records.iter().filter(|r| soa(r)).count(), 2);
        assert_eq!(records[0], zone.soa()[0]);
        let unique: BTreeSet<String> = records[1..].iter().map(|r| r.to_string()).collect();
        assert_eq!(unique.len(), records.len() - 1, "a record sent twice");
        // the RRsets sent, by owner and type (the SOA once)
        let mut sets: BTreeMap<(Name, RecordType), Vec<Vec<u8>>> = BTreeMap::new();
        let mut sigs = Vec::new();
        for r in &records[1..] {
            if r.record_type() == RecordType::RRSIG {
                sigs.push(r.clone());
            } else {
                sets.entry((r.name.clone(), r.record_type()))
                    .or_default()
                    .push(raw_rdata(r));
            }
        }
        let origin = n("acme.example.com.");
        let cut = n("child.acme.example.com.");
        for t in [
            RecordType::DNSKEY,
            RecordType::CDS,
            RecordType::CDNSKEY,
            RecordType::NSEC3PARAM,
        ] {
            assert!(sets.contains_key(&(origin.clone(), t)), "apex {t}");
        }
        let nsec3 = sets.keys().filter(|(_, t)| *t == RecordType::NSEC3).count();
        assert_eq!(nsec3, signed.nsec3.len());
        assert!(nsec3 >= zone.node_count() - 1, "{nsec3} NSEC3s");
        // every RRSIG verifies over the RRset sent; every authoritative RRset has one
        let mut covered = BTreeSet::new();
        for sig in &sigs {
            let rd = raw_rdata(sig);
            let t = RecordType::from(u16::from_be_bytes([rd[0], rd[1]]));
            let set = &sets[&(sig.name.clone(), t)];
            assert!(
                verify_rrsig(&keys.active, &rd, &sig.name, set),
                "RRSIG {t} at {} does not verify",
                sig.name
            );
            assert!(covered.insert((sig.name.clone(), t)), "{t} signed twice");
        }
        for (owner, t) in sets.keys() {
            let delegation = *owner == cut && *t == RecordType::NS;
            let glue = *owner != cut && cut.zone_of(owner);
            assert_eq!(
                covered.contains(&(owner.clone(), *t)),
                !delegation && !glue,
                "{owner} {t}"
            );
        }
        assert!(covered.contains(&(origin.clone(), RecordType::SOA)));
    }

    #[test]
    fn signed_axfr_carries_keys_rrsigs_and_the_nsec3_chain() {
        for names in [0, 3, 3000] {
            let (set, keys, _) = signed_zones(names, KeyRequirement::None);
            let req = request("acme.example.com.", RecordType::AXFR);
            let mut t = Transfer::start(&set, &req, LOCAL.parse().unwrap(), 1000);
            assert_eq!((t.outcome, t.kind), (Outcome::Sent, Kind::Axfr));
            let msgs = run(&mut t);
            check_signed_full(&set, &keys, &msgs);
            if names == 3000 {
                assert!(msgs.len() >= 2, "{} messages", msgs.len());
            }
        }
    }

    /// The journal holds unsigned differences only: IXFR of a signed zone from a kept serial
    /// is the whole signed zone; from the current serial the SOA alone.
    #[test]
    fn signed_ixfr_is_full_unless_current() {
        let (set, keys, _) = signed_zones(10, KeyRequirement::None);
        let local = LOCAL.parse().unwrap();
        let mut t = Transfer::start(&set, &ixfr(41), local, 1000);
        assert_eq!(t.kind, Kind::IxfrFull);
        check_signed_full(&set, &keys, &run(&mut t));
        let mut t = Transfer::start(&set, &ixfr(42), local, 1000);
        assert_eq!(t.kind, Kind::IxfrCurrent);
        let msgs = run(&mut t);
        let m = Message::from_vec(&msgs[0]).unwrap();
        assert_eq!(m.answers.len(), 1);
        assert_eq!(m.answers[0].record_type(), RecordType::SOA);
    }

    /// A signed zone's TSIG-signed AXFR over several messages: the chain verifies.
    #[test]
    fn signed_zone_tsig_chain_verifies() {
        let (set, keys, _) = signed_zones(3000, KeyRequirement::Key(key()));
        let mut req = request("acme.example.com.", RecordType::AXFR);
        let mac = sign_request(&mut req, &key(), 1000);
        let mut t = Transfer::start(&set, &req, LOCAL.parse().unwrap(), 1000);
        assert_eq!(t.outcome, Outcome::Sent);
        let msgs = run(&mut t);
        assert!(msgs.len() >= 3, "{}", msgs.len());
        let mut v = ResponseVerifier::new(key(), mac);
        for m in &msgs {
            assert_eq!(v.verify(m, 1000), Ok(true));
        }
        check_signed_full(&set, &keys, &msgs);
    }
}
