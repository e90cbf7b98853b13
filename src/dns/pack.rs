//! Packing resource records into one large DNS message (zone transfers) with every name
//! compressed (RFC 1035 §4.1.4) against all the names written before it in the message: owner
//! names, the question, and the names inside NS, CNAME, PTR, MX and SOA data (the RFC 1035
//! types whose data may be compressed; RFC 3597 §4 forbids it for the others, which are written
//! by hickory-proto uncompressed; an SRV target is written whole but later names may point
//! into it).
//!
//! Why not hickory-proto's encoder: it stops compressing after 120 names in a message (a limit
//! meant for messages it parses from strangers) and compares each suffix with every stored
//! candidate, so a 64 KiB AXFR message of some 2 000 records went out with most owner names
//! written whole. Here a hash of the suffixes already written finds the longest match in one
//! lookup per label. Pure; no sockets.

use hickory_proto::op::Query;
use hickory_proto::rr::{Name, RData, Record};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder, NameEncoding};
use std::collections::HashMap;

/// Offsets a compression pointer can reach (14 bits).
const POINTER_LIMIT: usize = 0x3FFF;

/// A message being filled: the bytes so far (the caller writes the header) and where each name
/// suffix in them starts.
pub struct Packer {
    buf: Vec<u8>,
    max: usize,
    /// Uncompressed wire form of a name suffix -> its offset in `buf`.
    suffixes: HashMap<Box<[u8]>, u16>,
    /// The wire form of the name being written, and where its labels start.
    scratch: Vec<u8>,
    starts: Vec<usize>,
    /// RDATA written by hickory-proto (types without compressible names).
    rdata: Vec<u8>,
}

impl Packer {
    /// A packer appending to `buf` (holding at least the 12-byte header) up to `max` bytes.
    pub fn new(buf: Vec<u8>, max: usize) -> Self {
        Self {
            buf,
            max,
            suffixes: HashMap::new(),
            scratch: Vec::with_capacity(256),
            starts: Vec::with_capacity(128),
            rdata: Vec::new(),
        }
    }

    /// The bytes written.
    pub fn into_inner(self) -> Vec<u8> {
        self.buf
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether nothing at all has been written (not even a header).
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Writes the question. Returns false, writing nothing, when it does not fit.
    pub fn question(&mut self, q: &Query) -> bool {
        let start = self.buf.len();
        self.name(q.name());
        self.u16(u16::from(q.query_type()));
        self.u16(u16::from(q.query_class()));
        self.fits_or_undo(start)
    }

    /// Writes one record. Returns false, writing nothing, when it does not fit in `max` or its
    /// data cannot be encoded.
    pub fn record(&mut self, r: &Record) -> bool {
        let start = self.buf.len();
        self.name(&r.name);
        self.u16(u16::from(r.record_type()));
        self.u16(u16::from(r.dns_class));
        self.buf.extend_from_slice(&r.ttl.to_be_bytes());
        let len_at = self.buf.len();
        self.u16(0);
        let encoded = match &r.data {
            RData::A(a) => {
                self.buf.extend_from_slice(&a.0.octets());
                true
            }
            RData::AAAA(a) => {
                self.buf.extend_from_slice(&a.0.octets());
                true
            }
            RData::NS(n) => {
                self.name(&n.0);
                true
            }
            RData::CNAME(n) => {
                self.name(&n.0);
                true
            }
            RData::PTR(n) => {
                self.name(&n.0);
                true
            }
            RData::MX(mx) => {
                self.u16(mx.preference);
                self.name(&mx.exchange);
                true
            }
            RData::SRV(srv) => {
                // RFC 2782: the target is not compressed, but later names may point into it
                for v in [srv.priority, srv.weight, srv.port] {
                    self.u16(v);
                }
                self.write_name(&srv.target, false);
                true
            }
            RData::SOA(soa) => {
                self.name(&soa.mname);
                self.name(&soa.rname);
                for v in [
                    soa.serial,
                    soa.refresh as u32,
                    soa.retry as u32,
                    soa.expire as u32,
                    soa.minimum,
                ] {
                    self.buf.extend_from_slice(&v.to_be_bytes());
                }
                true
            }
            other => {
                self.rdata.clear();
                let mut enc = BinEncoder::new(&mut self.rdata);
                enc.set_name_encoding(NameEncoding::Uncompressed);
                let ok = other.emit(&mut enc).is_ok();
                self.buf.extend_from_slice(&self.rdata);
                ok
            }
        };
        let rdlength = self.buf.len() - len_at - 2;
        if !encoded || rdlength > usize::from(u16::MAX) {
            self.undo(start);
            return false;
        }
        self.buf[len_at..len_at + 2].copy_from_slice(&(rdlength as u16).to_be_bytes());
        self.fits_or_undo(start)
    }

    fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    fn fits_or_undo(&mut self, start: usize) -> bool {
        if self.buf.len() <= self.max {
            return true;
        }
        self.undo(start);
        false
    }

    /// Forgets everything from `start` on (a record that did not fit).
    fn undo(&mut self, start: usize) {
        self.buf.truncate(start);
        self.suffixes.retain(|_, at| usize::from(*at) < start);
    }

    /// Writes `name`: its labels up to the longest suffix already in the message, then a
    /// pointer to it (or the root label when there is none). Each new suffix within pointer
    /// reach is remembered.
    fn name(&mut self, name: &Name) {
        self.write_name(name, true);
    }

    /// Writes `name`, compressed or whole, remembering its new suffixes.
    fn write_name(&mut self, name: &Name, compress: bool) {
        self.scratch.clear();
        self.starts.clear();
        for label in name.iter() {
            self.starts.push(self.scratch.len());
            self.scratch.push(label.len() as u8);
            self.scratch.extend_from_slice(label);
        }
        self.scratch.push(0);
        let base = self.buf.len();
        let mut pointer = None;
        let mut literal = self.starts.len();
        for (i, &s) in self.starts.iter().enumerate().filter(|_| compress) {
            if let Some(&at) = self.suffixes.get(&self.scratch[s..]) {
                pointer = Some(at);
                literal = i;
                break;
            }
        }
        let end = self
            .starts
            .get(literal)
            .copied()
            .unwrap_or(self.scratch.len() - 1);
        self.buf.extend_from_slice(&self.scratch[..end]);
        match pointer {
            Some(at) => self.u16(0xC000 | at),
            None => self.buf.push(0),
        }
        for &s in &self.starts[..literal] {
            let at = base + s;
            if at > POINTER_LIMIT {
                break;
            }
            self.suffixes
                .insert(Box::from(&self.scratch[s..]), at as u16);
        }
    }
}

#[cfg(test)]
mod tests {
    //! The packer against hickory-proto's decoder (what it writes parses back to the same
    //! records) and against hickory-proto's encoder (never larger).
    use super::*;
    use crate::test_rng::Rng;
    use hickory_proto::op::Message;
    use hickory_proto::rr::rdata::{CAA, MX, SOA, SRV, TXT};
    use hickory_proto::rr::{DNSClass, RecordType};
    use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};

    fn n(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    const HEADER: [u8; 12] = [0x12, 0x34, 0x84, 0, 0, 1, 0, 0, 0, 0, 0, 0];

    /// Packs `records` after a question into messages of at most `max` bytes.
    fn pack(q: &Query, records: &[Record], max: usize) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut i = 0;
        let mut first = true;
        while i < records.len() || first {
            let mut header = HEADER.to_vec();
            header[5] = u8::from(first);
            let mut p = Packer::new(header, max);
            if first {
                assert!(p.question(q));
            }
            let mut count = 0u16;
            while i < records.len() && p.record(&records[i]) {
                count += 1;
                i += 1;
            }
            assert!(
                count > 0 || (first && records.is_empty()),
                "record {i} fits nowhere: {:?}",
                records[i]
            );
            let mut b = p.into_inner();
            b[6..8].copy_from_slice(&count.to_be_bytes());
            out.push(b);
            first = false;
        }
        out
    }

    /// How many of `records` hickory-proto's encoder fits in one message of `max` bytes after
    /// the question (as xfr.rs did before this module), and the size of the sizeable ones.
    fn hickory_fit(q: &Query, records: &[Record], max: u16) -> (usize, usize) {
        let mut buf = HEADER.to_vec();
        let mut enc = BinEncoder::with_offset(&mut buf, 12);
        enc.set_max_size(max);
        q.emit(&mut enc).unwrap();
        let mut n = 0;
        for r in records {
            let at = enc.offset();
            if r.emit(&mut enc).is_err() {
                enc.set_offset(at);
                break;
            }
            n += 1;
        }
        enc.trim();
        (n, buf.len())
    }

    fn decoded(messages: &[Vec<u8>]) -> Vec<Record> {
        messages
            .iter()
            .flat_map(|b| {
                assert!(b.len() <= 65535);
                Message::from_vec(b).unwrap().answers
            })
            .collect()
    }

    fn random_name(rng: &mut Rng, labels: &[&str]) -> Name {
        let mut s = String::new();
        for _ in 0..1 + rng.index(4) {
            let label: &str = labels[rng.index(labels.len())];
            s.push_str(label);
            s.push('.');
        }
        match *rng.pick(&[
            "acme.example.com.",
            "Acme.Example.com.",
            "other.example.",
            "",
        ]) {
            "" => n(&s),
            apex => n(&format!("{s}{apex}")),
        }
    }

    fn random_record(rng: &mut Rng) -> Record {
        let labels = ["www", "a", "mail", "_tcp", "host-1", "HOST-1", "x-y", "b"];
        let owner = random_name(rng, &labels);
        let target = random_name(rng, &labels);
        let data = match rng.below(9) {
            0 => RData::A(std::net::Ipv4Addr::from(rng.next() as u32).into()),
            1 => RData::AAAA(std::net::Ipv6Addr::from(u128::from(rng.next())).into()),
            2 => RData::CNAME(hickory_proto::rr::rdata::CNAME(target)),
            3 => RData::NS(hickory_proto::rr::rdata::NS(target)),
            4 => RData::MX(MX::new(rng.below(100) as u16, target)),
            5 => RData::SOA(SOA::new(
                target,
                owner.clone(),
                rng.next() as u32,
                3600,
                600,
                86400,
                300,
            )),
            6 => RData::SRV(SRV::new(1, 2, 443, target)),
            7 => RData::TXT(TXT::new(vec![
                "v=spf1 -all".into(),
                "x".repeat(rng.index(256)),
            ])),
            _ => RData::CAA(CAA::new_issue(false, Some(n("letsencrypt.org.")), vec![])),
        };
        let mut r = Record::from_rdata(owner, rng.below(86400) as u32, data);
        r.dns_class = DNSClass::IN;
        r
    }

    #[test]
    fn random_records_decode_back_and_are_never_larger_than_hickorys() {
        let mut rng = Rng(0x5eed_1234);
        let q = Query::query(n("acme.example.com."), RecordType::AXFR);
        for round in 0..300 {
            let count = rng.index(60);
            let records: Vec<Record> = (0..count).map(|_| random_record(&mut rng)).collect();
            let one = pack(&q, &records, 65535);
            assert_eq!(one.len(), 1, "round {round}");
            assert_eq!(decoded(&one), records, "round {round}");
            assert!(
                one[0].len() <= hickory_fit(&q, &records, 65535).1,
                "round {round}: {} > {} {records:?}",
                one[0].len(),
                hickory_fit(&q, &records, 65535).1
            );
            // small messages: split at record boundaries, nothing lost or reordered
            let max = 600 + rng.index(2000);
            let many = pack(&q, &records, max);
            assert!(many.iter().all(|m| m.len() <= max), "round {round}");
            assert_eq!(decoded(&many), records, "round {round}");
        }
    }

    #[test]
    fn every_owner_name_of_a_full_message_is_compressed() {
        let q = Query::query(n("acme.example.com."), RecordType::AXFR);
        let records: Vec<Record> = (0..3000)
            .map(|i| {
                Record::from_rdata(
                    n(&format!("host-{i}.acme.example.com.")),
                    300,
                    RData::A(std::net::Ipv4Addr::from(0x0a00_0000 + i as u32).into()),
                )
            })
            .collect();
        let messages = pack(&q, &records, 65535);
        assert_eq!(decoded(&messages), records);
        // question 22 bytes; each record: label (<= 11 bytes) + pointer 2 + 10 + 4 data
        let first = &messages[0];
        let count = u16::from_be_bytes([first[6], first[7]]) as usize;
        let per_record = (first.len() - 12 - 22) as f64 / count as f64;
        assert!(per_record <= 27.0, "{per_record} bytes per record");
        // hickory-proto writes names whole after its 120th: far fewer records per message
        let (theirs, _) = hickory_fit(&q, &records, 65535);
        assert!(count * 10 > theirs * 13, "{count} records against {theirs}");
    }

    #[test]
    fn pointers_only_reach_the_first_16_kib() {
        // names past offset 0x3FFF are written but never pointed at
        let q = Query::query(n("acme.example.com."), RecordType::AXFR);
        let records: Vec<Record> = (0..2000)
            .map(|i| {
                Record::from_rdata(
                    n(&format!("l{i}.shared-{}.acme.example.com.", i % 3)),
                    300,
                    RData::A(std::net::Ipv4Addr::LOCALHOST.into()),
                )
            })
            .collect();
        let m = pack(&q, &records, 65535);
        assert_eq!(m.len(), 1);
        let mut d = BinDecoder::new(&m[0]);
        let msg = Message::read(&mut d).unwrap();
        assert_eq!(msg.answers, records);
    }

    #[test]
    fn a_record_that_does_not_fit_leaves_no_trace() {
        let q = Query::query(n("acme.example.com."), RecordType::AXFR);
        let big = Record::from_rdata(
            n("big.new-suffix.acme.example.com."),
            1,
            RData::TXT(TXT::new(vec!["x".repeat(255); 4])),
        );
        let small = Record::from_rdata(
            n("small.new-suffix.acme.example.com."),
            1,
            RData::A(std::net::Ipv4Addr::LOCALHOST.into()),
        );
        let mut p = Packer::new(HEADER.to_vec(), 200);
        assert!(p.question(&q));
        let before = p.len();
        assert!(!p.record(&big));
        assert_eq!(p.len(), before);
        // the rolled-back record's suffixes must not be pointed at
        assert!(p.record(&small));
        let mut b = p.into_inner();
        b[7] = 1;
        assert_eq!(Message::from_vec(&b).unwrap().answers, vec![small]);
    }
}
