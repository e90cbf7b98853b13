//! Request bytes in, response bytes out: the whole DNS protocol behaviour of the server,
//! independent of transport. Never panics on any input; never recurses or forwards. The
//! server's policy for the client ([`Client`]: query ACL, DNS cookies, NSID and CHAOS
//! identity) is applied here, so every transport has it; the UDP server applies response rate
//! limiting afterwards, charging the account [`Summary::rrl`] names.

use super::compiled::{Outcome, ZoneSet};
use super::identity::Chaos;
use super::policy::{PLAIN, Policy};
use super::{cookies, rrl};
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption, NSIDPayload};
use hickory_proto::rr::{DNSClass, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
use std::net::IpAddr;

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
    /// The rate-limiting account the response is charged to (UDP); None when the policy has
    /// no RRL, or the client proved its address with a valid server cookie.
    pub rrl: Option<rrl::Key>,
    /// Whether the same request bytes get the same response from any client (no cookie, no
    /// ACL refusal), so the UDP answer cache may keep it.
    pub cacheable: bool,
}

/// Who asked, and the server's policy for them.
#[derive(Clone, Copy, Debug)]
pub struct Client<'a> {
    /// The client's address; None where the caller has none (only an open ACL answers).
    pub ip: Option<IpAddr>,
    pub policy: &'a Policy,
    /// Unix seconds, for server cookies' timestamps.
    pub now: u64,
}

impl Client<'static> {
    /// No address and no policy: no ACL, no cookies, no identity, no RRL.
    pub fn plain() -> Self {
        Self {
            ip: None,
            policy: &PLAIN,
            now: 0,
        }
    }
}

/// Builds the response to one request. `None`: send nothing (not a query, or too short to
/// answer at all). `decide` then `encode`.
pub fn respond(
    zones: &ZoneSet,
    request: &[u8],
    transport: Transport,
) -> Option<(Vec<u8>, Summary)> {
    respond_to(zones, request, transport, &Client::plain())
}

/// [`respond`] for a client under a policy.
pub fn respond_to(
    zones: &ZoneSet,
    request: &[u8],
    transport: Transport,
    client: &Client<'_>,
) -> Option<(Vec<u8>, Summary)> {
    decide_for(zones, request, transport, client).and_then(encode)
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
        /// See [`Summary::rrl`] and [`Summary::cacheable`].
        rrl: Option<rrl::Key>,
        cacheable: bool,
    },
    /// Already encoded: a TSIG-signed response, whose MAC covers exactly these bytes.
    Bytes(Vec<u8>, Summary),
}

/// Encodes an [`Answer`], truncating for UDP: a response that does not fit is sent with TC set
/// and no records, so the client retries over TCP and gets the whole answer there.
pub fn encode(answer: Answer) -> Option<(Vec<u8>, Summary)> {
    let (mut resp, udp_limit, zone, qtype, rrl, cacheable) = match answer {
        Answer::Bytes(bytes, summary) => return Some((bytes, summary)),
        Answer::Message {
            message,
            udp_limit,
            zone,
            qtype,
            rrl,
            cacheable,
        } => (message, udp_limit, zone, qtype, rrl, cacheable),
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
        // still too large: the echoed question section itself (a FORMERR to many questions)
        if bytes.len() > limit {
            resp.queries.clear();
            bytes = resp.to_vec().ok()?;
        }
    }
    let summary = Summary {
        zone,
        qtype,
        rcode: resp.metadata.response_code,
        truncated,
        rrl,
        cacheable,
    };
    Some((bytes, summary))
}

/// Decides the response to one request (see [`respond`]).
pub fn decide(zones: &ZoneSet, request: &[u8], transport: Transport) -> Option<Answer> {
    decide_for(zones, request, transport, &Client::plain())
}

/// Decides the response to one request from `client`: the query ACL first (REFUSED for a
/// client outside it, transfers included), then the answer, then the EDNS options the policy
/// adds (NSID, COOKIE) and the rate-limiting account.
pub fn decide_for(
    zones: &ZoneSet,
    request: &[u8],
    transport: Transport,
    client: &Client<'_>,
) -> Option<Answer> {
    let policy = client.policy;
    if !policy.acl.allows(client.ip) {
        return refused_by_acl(request, transport);
    }
    // the query's OPT, kept by decide_plain when the policy adds options (no second parse)
    let mut request_edns = None;
    let mut answer = decide_plain(zones, request, transport, client, &mut request_edns)?;
    if let Answer::Message {
        message,
        rrl,
        cacheable,
        ..
    } = &mut answer
    {
        let cookie = add_options(message, request_edns.as_ref(), client);
        *cacheable = cookie == CookieSeen::None;
        *rrl = match (&policy.rrl, cookie) {
            (None, _) | (_, CookieSeen::Valid) => None,
            _ => Some(rrl_key(message)),
        };
    }
    Some(answer)
}

/// REFUSED, with the question, to a client outside `--allow-query`; nothing to one whose
/// request does not parse.
fn refused_by_acl(request: &[u8], transport: Transport) -> Option<Answer> {
    let msg = Message::read(&mut BinDecoder::new(request)).ok()?;
    if msg.metadata.message_type != MessageType::Query {
        return None;
    }
    let mut resp = Message::new(msg.metadata.id, MessageType::Response, msg.metadata.op_code);
    resp.metadata.recursion_desired = msg.metadata.recursion_desired;
    resp.metadata.response_code = ResponseCode::Refused;
    resp.queries = msg.queries;
    let qtype = resp
        .queries
        .first()
        .map(|q| q.query_type())
        .unwrap_or(RecordType::Unknown(0));
    let edns = msg.edns.as_ref().map(|_| {
        let mut e = Edns::new();
        e.set_max_payload(MAX_UDP_PAYLOAD);
        e
    });
    let mut answer = finish(resp, edns, transport, msg.edns.as_ref(), qtype)?;
    if let Answer::Message { cacheable, .. } = &mut answer {
        *cacheable = false;
    }
    Some(answer)
}

/// What the query's COOKIE option was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CookieSeen {
    /// None, or cookies are off.
    None,
    /// A client cookie, alone or with a server cookie that is not valid.
    Other,
    /// A valid server cookie of ours: the client's address is proven (no rate limit).
    Valid,
}

/// Adds NSID (RFC 5001) and COOKIE (RFC 7873) to the response's OPT when the query asked and
/// the policy has them; a malformed COOKIE makes the response FORMERR (RFC 7873 §5.2.2).
fn add_options(resp: &mut Message, req_edns: Option<&Edns>, client: &Client<'_>) -> CookieSeen {
    let policy = client.policy;
    // only requests with an OPT record can carry options, and only responses with an OPT of
    // their own answer them
    let Some(req_edns) = req_edns.filter(|_| resp.edns.is_some()) else {
        return CookieSeen::None;
    };
    let mut seen = CookieSeen::None;
    let mut options = Vec::new();
    if let Some(nsid) = policy.identity.nsid()
        && req_edns.option(EdnsCode::NSID).is_some()
        && let Ok(payload) = NSIDPayload::new(nsid)
    {
        options.push(EdnsOption::NSID(payload));
    }
    if let Some(secrets) = &policy.cookies
        && let Some(EdnsOption::Unknown(_, data)) = req_edns.option(EdnsCode::Cookie)
    {
        let ip = client
            .ip
            .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
        match cookies::parse(data) {
            Err(cookies::Malformed) => {
                resp.answers.clear();
                resp.authorities.clear();
                resp.additionals.clear();
                resp.metadata.authoritative = false;
                resp.metadata.response_code = ResponseCode::FormErr;
                return CookieSeen::Other;
            }
            Ok(cookie) => {
                let verdict = secrets.check(&cookie, ip, client.now);
                seen = if verdict == cookies::Verdict::Valid {
                    CookieSeen::Valid
                } else {
                    CookieSeen::Other
                };
                let data = secrets.answer(&cookie, verdict, ip, client.now);
                options.push(EdnsOption::Unknown(cookies::OPTION_CODE, data));
            }
        }
    }
    if let Some(edns) = resp.edns.as_mut() {
        for o in options {
            edns.options_mut().insert(o);
        }
    }
    seen
}

/// The rate-limiting account of a response (see `rrl`): answers by name and type, NODATA by
/// name, NXDOMAIN by zone, referrals by the delegation, everything else one error account.
fn rrl_key(resp: &Message) -> rrl::Key {
    let qname = resp.queries.first().map(|q| q.name().to_lowercase());
    let qtype = resp.queries.first().map(|q| q.query_type());
    match (resp.metadata.response_code, qname) {
        (ResponseCode::NoError, Some(name)) if !resp.answers.is_empty() => {
            rrl::Key::new(rrl::Kind::Answer, &name, qtype)
        }
        (ResponseCode::NoError, Some(name)) if !resp.metadata.authoritative => {
            match resp.authorities.first() {
                Some(ns) => rrl::Key::new(rrl::Kind::Referral, &ns.name.to_lowercase(), None),
                None => rrl::Key::new(rrl::Kind::NoData, &name, None),
            }
        }
        (ResponseCode::NoError, Some(name)) => rrl::Key::new(rrl::Kind::NoData, &name, None),
        (ResponseCode::NXDomain, Some(_)) => match resp.authorities.first() {
            Some(soa) => rrl::Key::zone(rrl::Kind::NxDomain, &soa.name.to_lowercase().to_ascii()),
            None => rrl::Key::error(),
        },
        _ => rrl::Key::error(),
    }
}

/// The response without the policy's options and accounting.
fn decide_plain(
    zones: &ZoneSet,
    request: &[u8],
    transport: Transport,
    client: &Client<'_>,
    request_edns: &mut Option<Edns>,
) -> Option<Answer> {
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
    if client.policy.identity.nsid().is_some() || client.policy.cookies.is_some() {
        request_edns.clone_from(&msg.edns);
    }
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

    if query.query_class() == DNSClass::CH {
        // RFC 4892 identity names; everything else in CHAOS is REFUSED
        match client.policy.identity.chaos(&qname, qtype) {
            Chaos::Answer(records) => {
                resp.metadata.authoritative = true;
                resp.answers = records;
            }
            Chaos::Refused => resp.metadata.response_code = ResponseCode::Refused,
        }
        return finish_limited(resp, edns, udp_limit, None, qtype);
    }
    let Some(zone) = zones.find_for(&qname, qtype) else {
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
    // DO (RFC 3225): RRSIGs and NSEC3 proofs from a signed zone
    let dnssec_ok = client_edns.is_some_and(|e| e.flags().dnssec_ok);
    let lookup = zone.lookup_for(&qname, qtype, dnssec_ok);
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
        rrl: None,
        cacheable: true,
    })
}

#[cfg(test)]
mod udp_limit {
    use super::*;

    /// Found by the cargo-fuzz target `responder`: a query with 17 questions got an answer
    /// echoing them all, 1264 bytes over UDP with TC set, over the 512 a client without EDNS
    /// accepts. The questions go too when the TC response alone does not fit.
    #[test]
    fn formerr_to_many_questions_fits_the_udp_limit() {
        // 1361 bytes, QDCOUNT 17, no EDNS: the fuzzer's input, kept as a seed
        let bytes = include_bytes!("../../e2e/fuzz/corpus/responder/udp-over-limit-qdcount-17");
        let zones = ZoneSet::new([]);
        let (resp, summary) = respond(&zones, bytes, Transport::Udp).expect("an answer");
        assert!(resp.len() <= PLAIN_UDP_LIMIT, "{} bytes", resp.len());
        let m = Message::from_vec(&resp).unwrap();
        assert_eq!(m.metadata.id, 0x1234);
        assert!(m.metadata.truncation && summary.truncated);
    }
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

    mod policy {
        //! The server's policy applied by the responder: ACL, CHAOS identity, NSID, cookies,
        //! and the rate-limiting account and cacheability it reports.
        use super::*;
        use crate::dns::acl::QueryAcl;
        use crate::dns::cookies::CookieSecrets;
        use crate::dns::identity::Identity;
        use crate::dns::rrl::{Key, Kind, RrlConfig};

        fn policy() -> Policy {
            Policy {
                acl: QueryAcl::default(),
                cookies: Some(CookieSecrets::parse("000102030405060708090a0b0c0d0e0f\n").unwrap()),
                identity: Identity::new(Some("ns-a".into()), Some("zonegate-test".into())).unwrap(),
                rrl: Some(RrlConfig::new(10)),
            }
        }

        fn ask(p: &Policy, ip: &str, req: &[u8], t: Transport) -> (Message, Summary) {
            let client = Client {
                ip: Some(ip.parse().unwrap()),
                policy: p,
                now: 1_800_000_000,
            };
            let (bytes, s) = respond_to(&zones(), req, t, &client).expect("an answer");
            (Message::from_vec(&bytes).unwrap(), s)
        }

        fn edns_with(options: Vec<EdnsOption>) -> Edns {
            let mut e = Edns::new();
            e.set_max_payload(1232);
            for o in options {
                e.options_mut().insert(o);
            }
            e
        }

        fn txt_query(name: &str, class: DNSClass) -> Vec<u8> {
            let mut m = Message::new(9, MessageType::Query, OpCode::Query);
            let mut q = Query::query(Name::from_ascii(name).unwrap(), RecordType::TXT);
            q.set_query_class(class);
            m.add_query(q);
            m.to_vec().unwrap()
        }

        #[test]
        fn acl_refuses_outsiders_on_every_transport_and_is_never_cacheable() {
            let mut p = policy();
            p.acl = QueryAcl::new(vec!["192.0.2.0/24".parse().unwrap()]);
            let req = query("www.acme.example.com.", DNSClass::IN, None);
            for t in [Transport::Udp, Transport::Tcp] {
                let (m, s) = ask(&p, "192.0.2.77", &req, t);
                assert_eq!(m.answers.len(), 1, "inside the prefix: answered");
                assert!(s.cacheable);
                let (m, s) = ask(&p, "198.51.100.1", &req, t);
                assert_eq!(m.metadata.response_code, ResponseCode::Refused);
                assert!(m.answers.is_empty() && !m.metadata.authoritative);
                assert_eq!(m.queries.len(), 1, "the question is echoed");
                assert!(
                    !s.cacheable,
                    "a refusal for one client must not be served to another"
                );
            }
            // no address known: only an open ACL answers
            let client = Client {
                ip: None,
                policy: &p,
                now: 0,
            };
            let (bytes, _) = respond_to(&zones(), &req, Transport::Udp, &client).unwrap();
            let m = Message::from_vec(&bytes).unwrap();
            assert_eq!(m.metadata.response_code, ResponseCode::Refused);
            // an AXFR from outside is refused too
            let mut ax = Message::new(3, MessageType::Query, OpCode::Query);
            ax.add_query(Query::query(
                Name::from_ascii("acme.example.com.").unwrap(),
                RecordType::AXFR,
            ));
            let (m, _) = ask(&p, "198.51.100.1", &ax.to_vec().unwrap(), Transport::Tcp);
            assert_eq!(m.metadata.response_code, ResponseCode::Refused);
        }

        #[test]
        fn chaos_identity_and_nsid() {
            let p = policy();
            let (m, _) = ask(
                &p,
                "192.0.2.1",
                &txt_query("id.server.", DNSClass::CH),
                Transport::Udp,
            );
            assert_eq!(m.metadata.response_code, ResponseCode::NoError);
            assert_eq!(m.answers[0].data.to_string(), "ns-a");
            assert_eq!(m.answers[0].dns_class, DNSClass::CH);
            let (m, _) = ask(
                &p,
                "192.0.2.1",
                &txt_query("version.bind.", DNSClass::CH),
                Transport::Tcp,
            );
            assert_eq!(m.answers[0].data.to_string(), "zonegate-test");
            let (m, _) = ask(
                &p,
                "192.0.2.1",
                &txt_query("authors.bind.", DNSClass::CH),
                Transport::Udp,
            );
            assert_eq!(m.metadata.response_code, ResponseCode::Refused);
            // without identity, id.server is refused
            let plain = Policy::default();
            let (m, _) = ask(
                &plain,
                "192.0.2.1",
                &txt_query("id.server.", DNSClass::CH),
                Transport::Udp,
            );
            assert_eq!(m.metadata.response_code, ResponseCode::Refused);
            // NSID only when asked
            let asked = edns_with(vec![EdnsOption::NSID(
                NSIDPayload::new(Vec::new()).unwrap(),
            )]);
            let req = query("www.acme.example.com.", DNSClass::IN, Some(asked));
            let (m, s) = ask(&p, "192.0.2.1", &req, Transport::Udp);
            match m.edns.unwrap().option(EdnsCode::NSID) {
                Some(EdnsOption::NSID(v)) => assert_eq!(v.as_ref(), b"ns-a"),
                other => panic!("no NSID: {other:?}"),
            }
            assert!(s.cacheable, "NSID is the same for every client");
            let req = query(
                "www.acme.example.com.",
                DNSClass::IN,
                Some(edns_with(vec![])),
            );
            let (m, _) = ask(&p, "192.0.2.1", &req, Transport::Udp);
            assert!(m.edns.unwrap().option(EdnsCode::NSID).is_none());
        }

        fn cookie_of(m: &Message) -> Vec<u8> {
            match m.edns.as_ref().unwrap().option(EdnsCode::Cookie) {
                Some(EdnsOption::Unknown(10, v)) => v.clone(),
                other => panic!("no COOKIE: {other:?}"),
            }
        }

        #[test]
        fn cookies_are_answered_and_a_valid_one_lifts_the_rate_limit() {
            let p = policy();
            let client_cookie = vec![1, 2, 3, 4, 5, 6, 7, 8];
            let with = |data: Vec<u8>| {
                query(
                    "www.acme.example.com.",
                    DNSClass::IN,
                    Some(edns_with(vec![EdnsOption::Unknown(10, data)])),
                )
            };
            let (m, s) = ask(
                &p,
                "192.0.2.1",
                &with(client_cookie.clone()),
                Transport::Udp,
            );
            assert_eq!(m.answers.len(), 1);
            let full = cookie_of(&m);
            assert_eq!(full.len(), 24, "client cookie + 16-byte server cookie");
            assert_eq!(full[..8], client_cookie[..]);
            assert!(!s.cacheable, "a server cookie is for one address");
            assert!(s.rrl.is_some(), "a client cookie alone proves nothing");
            // the server cookie back from the same address: valid, not rate limited
            let (m, s) = ask(&p, "192.0.2.1", &with(full.clone()), Transport::Udp);
            assert_eq!(m.answers.len(), 1);
            assert_eq!(cookie_of(&m), full, "a fresh cookie is kept");
            assert_eq!(s.rrl, None);
            // from another address it is not ours: answered, with a new cookie, rate limited
            let (m, s) = ask(&p, "192.0.2.2", &with(full.clone()), Transport::Udp);
            assert_eq!(m.answers.len(), 1);
            assert_ne!(cookie_of(&m), full);
            assert!(s.rrl.is_some());
            // malformed (RFC 7873 §5.2.2): FORMERR
            let (m, _) = ask(&p, "192.0.2.1", &with(vec![1, 2, 3]), Transport::Udp);
            assert_eq!(m.metadata.response_code, ResponseCode::FormErr);
            assert!(m.answers.is_empty());
        }

        #[test]
        fn rrl_accounts_follow_the_kind_of_response() {
            let p = policy();
            let key = |name: &str, qtype: RecordType| {
                let mut m = Message::new(1, MessageType::Query, OpCode::Query);
                m.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
                ask(&p, "192.0.2.1", &m.to_vec().unwrap(), Transport::Udp)
                    .1
                    .rrl
                    .unwrap()
            };
            let www = Name::from_ascii("www.acme.example.com.").unwrap();
            assert_eq!(
                key("WWW.acme.example.com.", RecordType::A),
                Key::new(Kind::Answer, &www, Some(RecordType::A))
            );
            assert_eq!(
                key("www.acme.example.com.", RecordType::MX),
                Key::new(Kind::NoData, &www, None)
            );
            // every NXDOMAIN of a zone is one account: random names share it
            let nx = key("a1.acme.example.com.", RecordType::A);
            assert_eq!(nx, key("b2.acme.example.com.", RecordType::A));
            assert_eq!(nx.kind, Kind::NxDomain);
            assert_eq!(key("other.example.org.", RecordType::A), Key::error());
            // no RRL configured: no account
            let plain = Policy::default();
            let req = query("www.acme.example.com.", DNSClass::IN, None);
            assert_eq!(ask(&plain, "192.0.2.1", &req, Transport::Udp).1.rrl, None);
        }
    }
}
