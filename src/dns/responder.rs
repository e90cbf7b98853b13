//! Request bytes in, response bytes out: the whole DNS protocol behaviour of the server,
//! independent of transport. Never panics on any input; never recurses or forwards.

use super::compiled::{Outcome, ZoneSet};
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};

/// UDP payload we advertise and honour at most (DNS Flag Day 2020: avoids IP fragmentation).
pub const MAX_UDP_PAYLOAD: u16 = 1232;
/// Classic DNS limit without EDNS.
const PLAIN_UDP_LIMIT: usize = 512;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// What a response was, for metrics and logs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    /// The zone apex, if the question was inside a served zone.
    pub zone: Option<std::sync::Arc<str>>,
    pub qtype: RecordType,
    pub rcode: ResponseCode,
    pub truncated: bool,
}

/// Builds the response to one request. `None`: send nothing (not a query, or too short to
/// answer at all). `decide` then `encode`.
pub fn respond(
    zones: &ZoneSet,
    request: &[u8],
    transport: Transport,
) -> Option<(Vec<u8>, Summary)> {
    decide(zones, request, transport).and_then(encode)
}

/// A response decided but not yet encoded, so that a transport with its own encoder (the
/// hickory-server listeners, `dns::hickory`) sends the same answer without re-parsing bytes.
#[derive(Debug)]
pub enum Answer {
    /// The response message; `udp_limit` is the size it must fit (UDP only), else it is sent
    /// with TC set and no records.
    Message {
        message: Message,
        udp_limit: Option<usize>,
        zone: Option<std::sync::Arc<str>>,
        qtype: RecordType,
    },
    /// Already encoded: a TSIG-signed response, whose MAC covers exactly these bytes.
    Bytes(Vec<u8>, Summary),
}

/// Encodes an [`Answer`], truncating for UDP: a response that does not fit is sent with TC set
/// and no records, so the client retries over TCP and gets the whole answer there.
pub fn encode(answer: Answer) -> Option<(Vec<u8>, Summary)> {
    let (mut resp, udp_limit, zone, qtype) = match answer {
        Answer::Bytes(bytes, summary) => return Some((bytes, summary)),
        Answer::Message {
            message,
            udp_limit,
            zone,
            qtype,
        } => (message, udp_limit, zone, qtype),
    };
    let mut bytes = resp.to_vec().ok()?;
    let mut truncated = false;
    if let Some(limit) = udp_limit
        && bytes.len() > limit
    {
        resp.answers.clear();
        resp.authorities.clear();
        resp.additionals.clear();
        resp.metadata.truncation = true;
        truncated = true;
        bytes = resp.to_vec().ok()?;
    }
    let summary = Summary {
        zone,
        qtype,
        rcode: resp.metadata.response_code,
        truncated,
    };
    Some((bytes, summary))
}

/// Decides the response to one request (see [`respond`]).
pub fn decide(zones: &ZoneSet, request: &[u8], transport: Transport) -> Option<Answer> {
    if request.len() < 12 {
        return None;
    }
    // Header first: an unparsable body still gets FORMERR with the request's id.
    let id = u16::from_be_bytes([request[0], request[1]]);
    let flags = request[2];
    let is_response = flags & 0x80 != 0;
    if is_response {
        return None; // never answer answers (reflection loops)
    }
    let op_code = OpCode::from_u8((flags >> 3) & 0x0f);
    let rd = flags & 0x01 != 0;
    // signed (TSIG) requests are verified against their zone's key and answered signed
    if let Some(signed) =
        super::xfr::respond_signed(zones, request, transport, crate::publish::unix_now())
    {
        return signed.map(|(bytes, summary)| Answer::Bytes(bytes, summary));
    }

    let msg = match Message::read(&mut BinDecoder::new(request)) {
        Ok(m) => m,
        Err(_) => {
            let mut resp = Message::new(id, MessageType::Response, op_code);
            resp.metadata.recursion_desired = rd;
            resp.metadata.response_code = ResponseCode::FormErr;
            return finish(resp, None, transport, None, RecordType::Unknown(0));
        }
    };

    let mut resp = Message::new(id, MessageType::Response, msg.metadata.op_code);
    resp.metadata.recursion_desired = msg.metadata.recursion_desired;
    resp.metadata.checking_disabled = msg.metadata.checking_disabled;
    resp.queries = msg.queries.clone();
    let qtype = msg
        .queries
        .first()
        .map(|q| q.query_type())
        .unwrap_or(RecordType::Unknown(0));

    // EDNS (RFC 6891): echo an OPT when the client sent one; refuse versions above 0. The DO
    // bit is copied from the query (RFC 3225 §3).
    let client_edns = msg.edns.as_ref();
    let mut edns = client_edns.map(|ce| {
        let mut e = Edns::new();
        e.set_max_payload(MAX_UDP_PAYLOAD);
        e.set_version(0);
        e.set_dnssec_ok(ce.flags().dnssec_ok);
        e
    });
    if let Some(ce) = client_edns
        && ce.version() > 0
    {
        resp.metadata.response_code = ResponseCode::BADVERS;
        return finish(resp, edns.take(), transport, client_edns, qtype);
    }
    let udp_limit = match client_edns {
        Some(e) => e.max_payload().clamp(512, MAX_UDP_PAYLOAD) as usize,
        None => PLAIN_UDP_LIMIT,
    };
    let udp_limit = if transport == Transport::Udp {
        Some(udp_limit)
    } else {
        None
    };

    if msg.metadata.op_code != OpCode::Query {
        resp.metadata.response_code = ResponseCode::NotImp;
        return finish_limited(resp, edns, udp_limit, None, qtype);
    }
    // an IXFR carries the client's SOA in the authority section (RFC 1995 §3)
    let ixfr = qtype == RecordType::IXFR;
    if msg.queries.len() != 1 || !msg.answers.is_empty() || (!ixfr && !msg.authorities.is_empty()) {
        resp.metadata.response_code = ResponseCode::FormErr;
        return finish_limited(resp, edns, udp_limit, None, qtype);
    }
    let query: &Query = &msg.queries[0];
    let qname = query.name().to_lowercase();

    let Some(zone) = zones.find(&qname) else {
        // Not ours: never recurse, never forward.
        resp.metadata.response_code = ResponseCode::Refused;
        return finish_limited(resp, edns, udp_limit, None, qtype);
    };
    let zone_label = Some(zone.label().clone());
    if query.query_class() != DNSClass::IN && query.query_class() != DNSClass::ANY {
        resp.metadata.response_code = ResponseCode::Refused;
        return finish_limited(resp, edns, udp_limit, zone_label, qtype);
    }
    match qtype {
        RecordType::IXFR
            if transport == Transport::Udp && zones.transfer(zone.origin()).is_some() =>
        {
            // RFC 1995 §2: over UDP, the SOA alone (the client then transfers over TCP, where
            // address and key are checked: src/dns/xfr.rs)
            resp.metadata.authoritative = true;
            resp.answers = zone.soa().to_vec();
            return finish_limited(resp, edns, udp_limit, zone_label, qtype);
        }
        RecordType::AXFR | RecordType::IXFR => {
            // Transfers only over TCP (src/dns/xfr.rs), and only of zones with spec.transfer.
            resp.metadata.response_code = ResponseCode::Refused;
            return finish_limited(resp, edns, udp_limit, zone_label, qtype);
        }
        // qtype 0 is reserved (RFC 6895 §3.1) and OPT is a pseudo-type: not questions
        RecordType::OPT | RecordType::ZERO | RecordType::Unknown(0) => {
            resp.metadata.response_code = ResponseCode::FormErr;
            return finish_limited(resp, edns, udp_limit, zone_label, qtype);
        }
        _ => {}
    }

    if qtype == RecordType::SOA
        && *zone.origin() == qname
        && let Some(ce) = client_edns
    {
        // EDNS EXPIRE (RFC 7314) when asked
        edns = Some(super::xfr::response_edns(ce, zone));
    }
    let lookup = zone.lookup(&qname, qtype);
    resp.metadata.authoritative = lookup.outcome != Outcome::Referral;
    resp.metadata.response_code = match lookup.outcome {
        Outcome::NxDomain => ResponseCode::NXDomain,
        _ => ResponseCode::NoError,
    };
    resp.answers = lookup.answers;
    resp.authorities = lookup.authorities;
    resp.additionals = lookup.additionals;
    finish_limited(resp, edns, udp_limit, zone_label, qtype)
}

fn finish(
    resp: Message,
    edns: Option<Edns>,
    transport: Transport,
    client_edns: Option<&Edns>,
    qtype: RecordType,
) -> Option<Answer> {
    let limit = match (transport, client_edns) {
        (Transport::Tcp, _) => None,
        (Transport::Udp, Some(e)) => Some(e.max_payload().clamp(512, MAX_UDP_PAYLOAD) as usize),
        (Transport::Udp, None) => Some(PLAIN_UDP_LIMIT),
    };
    finish_limited(resp, edns, limit, None, qtype)
}

/// The decided response with its OPT record, to be encoded by [`encode`] or a transport.
fn finish_limited(
    mut resp: Message,
    edns: Option<Edns>,
    udp_limit: Option<usize>,
    zone: Option<std::sync::Arc<str>>,
    qtype: RecordType,
) -> Option<Answer> {
    if let Some(e) = edns {
        resp.set_edns(e);
    }
    Some(Answer::Message {
        message: resp,
        udp_limit,
        zone,
        qtype,
    })
}

#[cfg(test)]
mod fuzz {
    //! A property test over arbitrary bytes: valid queries of every kind, mutated (bit flips,
    //! byte changes, truncation, insertion, extension) and pure random bytes, through the
    //! request path for UDP and TCP. Whatever the input, `respond` does not panic, answers
    //! only queries, echoes the id, never sets RA, keeps UDP answers within the limit, and sets
    //! AA on every answer from the zone.
    use super::*;
    use crate::dns::compiled::CompiledZone;
    use crate::zone::ZoneData;
    use hickory_proto::op::{Message, MessageType, Query};
    use hickory_proto::rr::rdata::{CNAME, MX, NS, TXT};
    use hickory_proto::rr::{Name, RData};
    use std::sync::Arc;

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545F4914F6CDD1D)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() >> 33) as usize % n
        }
    }

    fn n(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    fn zones() -> ZoneSet {
        let origin = n("acme.example.com.");
        let mut d = ZoneData::acme_example();
        let a = |s: &str| RData::A(s.parse().unwrap());
        d.add(
            origin.clone(),
            3600,
            RData::NS(NS(n("ns1.acme.example.com."))),
        );
        d.add(n("ns1.acme.example.com."), 300, a("192.0.2.1"));
        d.add(
            origin.clone(),
            300,
            RData::MX(MX::new(10, n("mail.acme.example.com."))),
        );
        d.add(n("mail.acme.example.com."), 300, a("192.0.2.2"));
        d.add(n("www.acme.example.com."), 300, a("192.0.2.3"));
        d.add(
            n("www.acme.example.com."),
            300,
            RData::AAAA("2001:db8::3".parse().unwrap()),
        );
        d.add(
            n("alias.acme.example.com."),
            300,
            RData::CNAME(CNAME(n("www.acme.example.com."))),
        );
        d.add(n("*.apps.acme.example.com."), 300, a("192.0.2.4"));
        d.add(n("deep.x.acme.example.com."), 300, a("192.0.2.5"));
        d.add(
            n("sub.acme.example.com."),
            300,
            RData::NS(NS(n("ns.sub.acme.example.com."))),
        );
        d.add(n("ns.sub.acme.example.com."), 300, a("192.0.2.53"));
        for i in 0..40 {
            let text = format!("v=spf1 include:_spf{i}.example.net ~all padding padding padding");
            d.add(
                n("txt.acme.example.com."),
                300,
                RData::TXT(TXT::new(vec![text])),
            );
        }
        ZoneSet::new([Arc::new(CompiledZone::build(&d, 2026113001))])
    }

    fn seeds() -> Vec<Vec<u8>> {
        let names = [
            "acme.example.com.",
            "WWW.Acme.Example.Com.",
            "alias.acme.example.com.",
            "a.b.apps.acme.example.com.",
            "x.acme.example.com.",
            "nx.acme.example.com.",
            "host.sub.acme.example.com.",
            "txt.acme.example.com.",
            "other.example.org.",
        ];
        let types = [
            RecordType::A,
            RecordType::AAAA,
            RecordType::MX,
            RecordType::NS,
            RecordType::TXT,
            RecordType::ANY,
            RecordType::SOA,
            RecordType::CNAME,
            RecordType::AXFR,
        ];
        let mut out = Vec::new();
        for (i, name) in names.iter().enumerate() {
            for (j, t) in types.iter().enumerate() {
                let mut m = Message::new((i * 16 + j) as u16, MessageType::Query, OpCode::Query);
                m.add_query(Query::query(n(name), *t));
                if (i + j) % 2 == 0 {
                    let mut e = Edns::new();
                    e.set_max_payload(if j % 3 == 0 { 4096 } else { 1232 });
                    e.set_version(if i == 3 && j == 3 { 1 } else { 0 });
                    m.set_edns(e);
                }
                out.push(m.to_vec().unwrap());
            }
        }
        out
    }

    fn mutate(r: &mut Rng, seed: &[u8]) -> Vec<u8> {
        if r.below(10) == 0 {
            return seed.to_vec();
        }
        if r.below(8) == 0 {
            return (0..r.below(600)).map(|_| r.next() as u8).collect();
        }
        let mut b = seed.to_vec();
        for _ in 0..1 + r.below(4) {
            match r.below(6) {
                0 if !b.is_empty() => {
                    let i = r.below(b.len());
                    b[i] ^= 1 << r.below(8);
                }
                1 if !b.is_empty() => {
                    let i = r.below(b.len());
                    b[i] = r.next() as u8;
                }
                2 => b.truncate(r.below(b.len() + 1)),
                3 => {
                    let i = r.below(b.len() + 1);
                    b.insert(i, r.next() as u8);
                }
                4 => b.extend((0..r.below(64)).map(|_| r.next() as u8)),
                _ => {
                    // a header count or a label length set to an extreme
                    if b.len() > 12 {
                        let i = r.below(b.len());
                        b[i] = [0x00, 0x3f, 0x40, 0xc0, 0xff][r.below(5)];
                    }
                }
            }
        }
        b
    }

    #[test]
    fn any_bytes_get_a_well_formed_answer_or_silence() {
        let zones = zones();
        let seeds = seeds();
        let mut r = Rng(0x5eed_f00d_dead_beef);
        let (mut answered, mut with_records) = (0usize, 0usize);
        let total = 40_000;
        for k in 0..total {
            let req = mutate(&mut r, &seeds[k % seeds.len()]);
            for transport in [Transport::Udp, Transport::Tcp] {
                let out = respond(&zones, &req, transport);
                if req.len() < 12 || req[2] & 0x80 != 0 {
                    assert!(out.is_none(), "answered a non-query: {req:02x?}");
                    continue;
                }
                let Some((bytes, _summary)) = out else {
                    continue;
                };
                let resp = Message::from_vec(&bytes)
                    .unwrap_or_else(|e| panic!("unparsable response {e} to {req:02x?}"));
                assert_eq!(resp.metadata.id, u16::from_be_bytes([req[0], req[1]]));
                assert_eq!(resp.metadata.message_type, MessageType::Response);
                assert!(!resp.metadata.recursion_available, "RA set for {req:02x?}");
                if transport == Transport::Udp {
                    let limit = if resp.edns.is_some() { 1232 } else { 512 };
                    assert!(bytes.len() <= limit, "{} bytes over UDP", bytes.len());
                }
                if !resp.answers.is_empty() {
                    assert!(resp.metadata.authoritative, "answer without AA: {req:02x?}");
                    with_records += 1;
                }
                if resp.metadata.response_code == ResponseCode::Refused {
                    assert!(resp.answers.is_empty());
                }
                answered += 1;
            }
        }
        // not vacuous: most inputs were answered, and many with records
        assert!(
            answered > total,
            "{answered} answers for {total} inputs x 2"
        );
        assert!(
            with_records > total / 20,
            "{with_records} answers with records"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::compiled::CompiledZone;
    use crate::zone::ZoneData;
    use hickory_proto::rr::{Name, RData};
    use std::sync::Arc;

    fn zones() -> ZoneSet {
        let mut d = ZoneData::acme_example();
        d.add(
            Name::from_ascii("www.acme.example.com.").unwrap(),
            300,
            RData::A("192.0.2.3".parse().unwrap()),
        );
        ZoneSet::new([Arc::new(CompiledZone::build(&d, 1))])
    }

    fn query(name: &str, class: DNSClass, edns: Option<Edns>) -> Vec<u8> {
        let mut m = Message::new(42, MessageType::Query, OpCode::Query);
        let mut q = Query::query(Name::from_ascii(name).unwrap(), RecordType::A);
        q.set_query_class(class);
        m.add_query(q);
        if let Some(e) = edns {
            m.set_edns(e);
        }
        m.to_vec().unwrap()
    }

    fn answer(req: &[u8]) -> Message {
        let (bytes, _) = respond(&zones(), req, Transport::Udp).expect("an answer");
        Message::from_vec(&bytes).unwrap()
    }

    /// RFC 3225 §3: the DO bit of the query is copied into the response.
    #[test]
    fn do_bit_is_copied() {
        for dnssec_ok in [true, false] {
            let mut e = Edns::new();
            e.set_max_payload(1232);
            e.set_dnssec_ok(dnssec_ok);
            let m = answer(&query("www.acme.example.com.", DNSClass::IN, Some(e)));
            assert_eq!(m.metadata.response_code, ResponseCode::NoError);
            let edns = m.edns.expect("OPT echoed");
            assert_eq!(edns.flags().dnssec_ok, dnssec_ok);
        }
        // with BADVERS too
        let mut e = Edns::new();
        e.set_version(1);
        e.set_dnssec_ok(true);
        let m = answer(&query("www.acme.example.com.", DNSClass::IN, Some(e)));
        // BADVERS and BADSIG share the value 16
        assert_eq!(u16::from(m.metadata.response_code), 16);
        assert!(m.edns.unwrap().flags().dnssec_ok);
    }

    /// QCLASS * (255) matches the IN data (RFC 1035 §3.2.5, as Knot does); other classes are
    /// REFUSED.
    #[test]
    fn class_any_answers_in_data_and_chaos_is_refused() {
        let m = answer(&query("www.acme.example.com.", DNSClass::ANY, None));
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert_eq!(m.answers.len(), 1);
        assert_eq!(m.answers[0].data.to_string(), "192.0.2.3");
        for class in [DNSClass::CH, DNSClass::HS, DNSClass::NONE] {
            let m = answer(&query("www.acme.example.com.", class, None));
            assert_eq!(m.metadata.response_code, ResponseCode::Refused, "{class:?}");
            assert!(m.answers.is_empty());
        }
    }
}
