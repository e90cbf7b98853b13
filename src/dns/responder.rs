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
/// answer at all).
pub fn respond(
    zones: &ZoneSet,
    request: &[u8],
    transport: Transport,
) -> Option<(Vec<u8>, Summary)> {
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

    // EDNS (RFC 6891): echo an OPT when the client sent one; refuse versions above 0.
    let client_edns = msg.edns.as_ref();
    let mut edns = client_edns.map(|_| {
        let mut e = Edns::new();
        e.set_max_payload(MAX_UDP_PAYLOAD);
        e.set_version(0);
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
    if msg.queries.len() != 1 || !msg.answers.is_empty() || !msg.authorities.is_empty() {
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
        RecordType::AXFR | RecordType::IXFR => {
            // Zone transfers are not offered.
            resp.metadata.response_code = ResponseCode::Refused;
            return finish_limited(resp, edns, udp_limit, zone_label, qtype);
        }
        RecordType::OPT | RecordType::Unknown(0) => {
            resp.metadata.response_code = ResponseCode::FormErr;
            return finish_limited(resp, edns, udp_limit, zone_label, qtype);
        }
        _ => {}
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
) -> Option<(Vec<u8>, Summary)> {
    let limit = match (transport, client_edns) {
        (Transport::Tcp, _) => None,
        (Transport::Udp, Some(e)) => Some(e.max_payload().clamp(512, MAX_UDP_PAYLOAD) as usize),
        (Transport::Udp, None) => Some(PLAIN_UDP_LIMIT),
    };
    finish_limited(resp, edns, limit, None, qtype)
}

/// Encodes, truncating for UDP: a response that does not fit is sent with TC set and no records,
/// so the client retries over TCP and gets the whole answer there.
fn finish_limited(
    mut resp: Message,
    edns: Option<Edns>,
    udp_limit: Option<usize>,
    zone: Option<std::sync::Arc<str>>,
    qtype: RecordType,
) -> Option<(Vec<u8>, Summary)> {
    if let Some(e) = edns {
        resp.set_edns(e);
    }
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
