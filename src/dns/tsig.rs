//! TSIG (RFC 8945) on the wire: finding the TSIG record of a message, verifying requests and
//! responses, and signing responses, including the MAC chaining of multi-message responses
//! (§5.3.1: each later message's MAC covers the prior MAC, the unsigned message and the timers
//! only). HMAC-SHA256 and HMAC-SHA512. Pure functions of bytes, key and clock.

use crate::zone::transfer::{TsigAlgorithm, TsigKey};
use hickory_proto::rr::Name;
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
use ring::hmac;

/// RR type of TSIG.
pub const TSIG_TYPE: u16 = 250;
/// Class ANY, the class of every TSIG record.
const CLASS_ANY: u16 = 255;
/// Seconds of clock difference we accept (RFC 8945 §10 recommends 300).
pub const FUDGE: u16 = 300;

/// TSIG error codes (RFC 8945 §3, IANA DNS RCODEs).
pub const BADSIG: u16 = 16;
pub const BADKEY: u16 = 17;
pub const BADTIME: u16 = 18;
pub const BADTRUNC: u16 = 22;

/// A TSIG record as found in a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TsigRecord {
    /// Offset of the TSIG RR: the message without it is `bytes[..start]` (with ARCOUNT - 1).
    pub start: usize,
    pub key_name: Name,
    pub algorithm: Name,
    pub time: u64,
    pub fudge: u16,
    pub mac: Vec<u8>,
    pub original_id: u16,
    pub error: u16,
    pub other: Vec<u8>,
}

/// Why a message's TSIG cannot be used at all: not a well-formed message, or a TSIG record
/// that is not the last one (RFC 8945 §5.1: FORMERR).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Malformed;

fn u16_at(b: &[u8], i: usize) -> Result<u16, Malformed> {
    b.get(i..i + 2)
        .map(|s| u16::from_be_bytes([s[0], s[1]]))
        .ok_or(Malformed)
}

/// Offset just past the (possibly compressed) name at `i`.
fn skip_name(b: &[u8], mut i: usize) -> Result<usize, Malformed> {
    loop {
        let len = *b.get(i).ok_or(Malformed)? as usize;
        match len {
            0 => return Ok(i + 1),
            l if l & 0xc0 == 0xc0 => return b.get(i + 1).map(|_| i + 2).ok_or(Malformed),
            l if l & 0xc0 != 0 => return Err(Malformed),
            l => i += 1 + l,
        }
    }
}

/// The TSIG record of `msg`, if it has one (it must be the last additional record). `Ok(None)`
/// when unsigned; never reads past the buffer.
pub fn find(msg: &[u8]) -> Result<Option<TsigRecord>, Malformed> {
    if msg.len() < 12 {
        return Err(Malformed);
    }
    let ar = u16_at(msg, 10)? as usize;
    if ar == 0 {
        return Ok(None);
    }
    let qd = u16_at(msg, 4)? as usize;
    let rrs = u16_at(msg, 6)? as usize + u16_at(msg, 8)? as usize + ar;
    let mut i = 12;
    for _ in 0..qd {
        i = skip_name(msg, i)? + 4;
    }
    let mut last = None;
    for n in 0..rrs {
        let start = i;
        i = skip_name(msg, i)?;
        let rtype = u16_at(msg, i)?;
        let rdlen = u16_at(msg, i + 8)? as usize;
        i += 10 + rdlen;
        if i > msg.len() {
            return Err(Malformed);
        }
        if rtype == TSIG_TYPE {
            if n + 1 != rrs {
                return Err(Malformed);
            }
            last = Some((start, i - rdlen));
        }
    }
    let Some((start, rdata)) = last else {
        return Ok(None);
    };
    let mut d = BinDecoder::new(msg);
    let key_name = {
        d.read_slice(start).map_err(|_| Malformed)?;
        Name::read(&mut d).map_err(|_| Malformed)?
    };
    let mut d = BinDecoder::new(msg);
    d.read_slice(rdata).map_err(|_| Malformed)?;
    let algorithm = Name::read(&mut d).map_err(|_| Malformed)?;
    let mut j = rdata + (d.index() - rdata);
    let time_hi = u16_at(msg, j)? as u64;
    let time_lo = u16_at(msg, j + 2)? as u64;
    let time_lo2 = u16_at(msg, j + 4)? as u64;
    let time = (time_hi << 32) | (time_lo << 16) | time_lo2;
    let fudge = u16_at(msg, j + 6)?;
    let mac_len = u16_at(msg, j + 8)? as usize;
    j += 10;
    let mac = msg.get(j..j + mac_len).ok_or(Malformed)?.to_vec();
    j += mac_len;
    let original_id = u16_at(msg, j)?;
    let error = u16_at(msg, j + 2)?;
    let other_len = u16_at(msg, j + 4)? as usize;
    j += 6;
    let other = msg.get(j..j + other_len).ok_or(Malformed)?.to_vec();
    if j + other_len != i {
        return Err(Malformed);
    }
    Ok(Some(TsigRecord {
        start,
        key_name,
        algorithm,
        time,
        fudge,
        mac,
        original_id,
        error,
        other,
    }))
}

/// A name in canonical wire form: lowercase, uncompressed.
fn push_name(out: &mut Vec<u8>, name: &Name) {
    for label in name.iter() {
        out.push(label.len() as u8);
        out.extend(label.iter().map(u8::to_ascii_lowercase));
    }
    out.push(0);
}

/// Equality in time independent of where the slices differ.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn push_time(out: &mut Vec<u8>, time: u64) {
    out.extend_from_slice(&time.to_be_bytes()[2..]);
}

fn hmac_key(key: &TsigKey) -> hmac::Key {
    let alg = match key.algorithm {
        TsigAlgorithm::HmacSha256 => hmac::HMAC_SHA256,
        TsigAlgorithm::HmacSha512 => hmac::HMAC_SHA512,
    };
    hmac::Key::new(alg, &key.secret)
}

/// What goes into one MAC, apart from the message.
enum Covers<'a> {
    /// A request: the message and all TSIG variables.
    Request,
    /// The first (or only) response to a signed request: the request's MAC first.
    FirstResponse(&'a [u8]),
    /// A later message of a multi-message response: the prior MAC, and only the timers.
    Next(&'a [u8]),
}

/// The MAC of `unsigned` (the message without its TSIG RR, ARCOUNT not counting it, the
/// original id in place).
fn mac(
    key: &TsigKey,
    covers: &Covers,
    unsigned: &[u8],
    time: u64,
    fudge: u16,
    error: u16,
    other: &[u8],
) -> Vec<u8> {
    let mut ctx = hmac::Context::with_key(&hmac_key(key));
    if let Covers::FirstResponse(prior) | Covers::Next(prior) = covers {
        ctx.update(&(prior.len() as u16).to_be_bytes());
        ctx.update(prior);
    }
    ctx.update(unsigned);
    let mut vars = Vec::with_capacity(64);
    match covers {
        Covers::Next(_) => {
            push_time(&mut vars, time);
            vars.extend_from_slice(&fudge.to_be_bytes());
        }
        _ => {
            push_name(&mut vars, &key.name);
            vars.extend_from_slice(&CLASS_ANY.to_be_bytes());
            vars.extend_from_slice(&0u32.to_be_bytes());
            push_name(&mut vars, &key.algorithm.name());
            push_time(&mut vars, time);
            vars.extend_from_slice(&fudge.to_be_bytes());
            vars.extend_from_slice(&error.to_be_bytes());
            vars.extend_from_slice(&(other.len() as u16).to_be_bytes());
            vars.extend_from_slice(other);
        }
    }
    ctx.update(&vars);
    ctx.sign().as_ref().to_vec()
}

/// The message as the MAC saw it: without the TSIG RR, ARCOUNT - 1, the original id.
fn unsigned_form(msg: &[u8], t: &TsigRecord) -> Vec<u8> {
    let mut u = msg[..t.start].to_vec();
    u[0..2].copy_from_slice(&t.original_id.to_be_bytes());
    let ar = u16::from_be_bytes([u[10], u[11]]).saturating_sub(1);
    u[10..12].copy_from_slice(&ar.to_be_bytes());
    u
}

/// Appends a TSIG RR to `msg` and counts it in ARCOUNT.
fn append_tsig(msg: &mut Vec<u8>, key_name: &Name, algorithm: &Name, f: &TsigFields) {
    push_name(msg, key_name);
    msg.extend_from_slice(&TSIG_TYPE.to_be_bytes());
    msg.extend_from_slice(&CLASS_ANY.to_be_bytes());
    msg.extend_from_slice(&0u32.to_be_bytes());
    let mut rdata = Vec::with_capacity(32 + f.mac.len());
    push_name(&mut rdata, algorithm);
    push_time(&mut rdata, f.time);
    rdata.extend_from_slice(&f.fudge.to_be_bytes());
    rdata.extend_from_slice(&(f.mac.len() as u16).to_be_bytes());
    rdata.extend_from_slice(&f.mac);
    rdata.extend_from_slice(&f.original_id.to_be_bytes());
    rdata.extend_from_slice(&f.error.to_be_bytes());
    rdata.extend_from_slice(&(f.other.len() as u16).to_be_bytes());
    rdata.extend_from_slice(&f.other);
    msg.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    msg.extend_from_slice(&rdata);
    let ar = u16::from_be_bytes([msg[10], msg[11]]).wrapping_add(1);
    msg[10..12].copy_from_slice(&ar.to_be_bytes());
}

struct TsigFields {
    time: u64,
    fudge: u16,
    mac: Vec<u8>,
    original_id: u16,
    error: u16,
    other: Vec<u8>,
}

/// Bytes a TSIG RR with `key` adds to a message at most (for message size budgets).
pub fn reserve(key: &TsigKey) -> usize {
    // owner + type/class/ttl/rdlen + algorithm + time/fudge/maclen + mac + id/error/otherlen + other
    (key.name.len() + 2) + 10 + 13 + 10 + key.algorithm.mac_len() + 6 + 6
}

/// The outcome of verifying a signed request against the one key allowed for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verified {
    /// Good: its MAC, to sign the response with.
    Ok { request_mac: Vec<u8>, time: u64 },
    /// The request is refused with NOTAUTH and this TSIG error; `signed_reply` holds the
    /// request MAC when the error reply must be signed (BADTIME).
    Error {
        error: u16,
        request: Box<TsigRecord>,
        signed_reply: Option<Vec<u8>>,
    },
}

/// Verifies a request's TSIG against `key` (`None`: no key is configured, so any key is
/// unknown) at Unix time `now`. Checks in RFC 8945 §5.2 order: key, MAC, time.
pub fn verify_request(msg: &[u8], t: &TsigRecord, key: Option<&TsigKey>, now: u64) -> Verified {
    let err = |error, signed_reply| Verified::Error {
        error,
        request: Box::new(t.clone()),
        signed_reply,
    };
    let Some(key) = key.filter(|k| {
        k.name == t.key_name.to_lowercase()
            && TsigAlgorithm::from_text(&t.algorithm.to_ascii()) == Some(k.algorithm)
    }) else {
        return err(BADKEY, None);
    };
    let full = key.algorithm.mac_len();
    if t.mac.len() > full || t.mac.len() < 10.max(full / 2) {
        return err(BADSIG, None);
    }
    let expect = mac(
        key,
        &Covers::Request,
        &unsigned_form(msg, t),
        t.time,
        t.fudge,
        t.error,
        &t.other,
    );
    if !ct_eq(&expect[..t.mac.len()], &t.mac) {
        return err(BADSIG, None);
    }
    if t.mac.len() < full {
        // valid but truncated: we do not accept truncated MACs (RFC 8945 §5.2.2.1)
        return err(BADTRUNC, Some(t.mac.clone()));
    }
    if now.abs_diff(t.time) > t.fudge as u64 {
        return err(BADTIME, Some(t.mac.clone()));
    }
    Verified::Ok {
        request_mac: t.mac.clone(),
        time: t.time,
    }
}

/// Signs the messages of one response stream (one message, or the messages of an AXFR/IXFR)
/// to a request signed with `key`.
pub struct ResponseSigner {
    key: TsigKey,
    /// The request's MAC before the first message; then the MAC of the last message signed.
    prior: Vec<u8>,
    first: bool,
}

impl ResponseSigner {
    pub fn new(key: TsigKey, request_mac: Vec<u8>) -> Self {
        Self {
            key,
            prior: request_mac,
            first: true,
        }
    }

    /// Signs `msg` (a complete unsigned message with its final id) at `now`.
    pub fn sign(&mut self, msg: &mut Vec<u8>, now: u64) {
        self.sign_with(msg, now, 0, Vec::new());
    }

    fn sign_with(&mut self, msg: &mut Vec<u8>, now: u64, error: u16, other: Vec<u8>) {
        let covers = if self.first {
            Covers::FirstResponse(&self.prior)
        } else {
            Covers::Next(&self.prior)
        };
        let m = mac(&self.key, &covers, msg, now, FUDGE, error, &other);
        let original_id = u16::from_be_bytes([msg[0], msg[1]]);
        append_tsig(
            msg,
            &self.key.name,
            &self.key.algorithm.name(),
            &TsigFields {
                time: now,
                fudge: FUDGE,
                mac: m.clone(),
                original_id,
                error,
                other,
            },
        );
        self.prior = m;
        self.first = false;
    }
}

/// Turns `msg` (an unsigned NOTAUTH reply) into the error reply to a request whose TSIG failed
/// with `error`: unsigned (empty MAC) for BADKEY/BADSIG, signed with the server time in
/// "other data" for BADTIME/BADTRUNC.
pub fn error_reply(
    msg: &mut Vec<u8>,
    request: &TsigRecord,
    error: u16,
    key: Option<&TsigKey>,
    signed_reply: Option<Vec<u8>>,
    now: u64,
) {
    match (signed_reply, key) {
        (Some(request_mac), Some(key)) => {
            let other = if error == BADTIME {
                now.to_be_bytes()[2..].to_vec()
            } else {
                Vec::new()
            };
            // the time signed is the request's, so the client can verify (RFC 8945 §5.2.3)
            ResponseSigner::new(key.clone(), request_mac).sign_with(
                msg,
                request.time,
                error,
                other,
            );
        }
        _ => append_tsig(
            msg,
            &request.key_name,
            &request.algorithm,
            &TsigFields {
                time: request.time,
                fudge: request.fudge,
                mac: Vec::new(),
                original_id: request.original_id,
                error,
                other: Vec::new(),
            },
        ),
    }
}

/// Signs a request (a NOTIFY we send) at `now`; returns its MAC, which the reply's MAC covers.
pub fn sign_request(msg: &mut Vec<u8>, key: &TsigKey, now: u64) -> Vec<u8> {
    let m = mac(key, &Covers::Request, msg, now, FUDGE, 0, &[]);
    let original_id = u16::from_be_bytes([msg[0], msg[1]]);
    append_tsig(
        msg,
        &key.name,
        &key.algorithm.name(),
        &TsigFields {
            time: now,
            fudge: FUDGE,
            mac: m.clone(),
            original_id,
            error: 0,
            other: Vec::new(),
        },
    );
    m
}

/// Why a signed response did not verify.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResponseError {
    Malformed,
    /// Unsigned, where a signature was due.
    Unsigned,
    /// Signed with another key, or a wrong MAC.
    BadSignature,
    /// The responder reported this TSIG error.
    Error(u16),
    /// Signed too far from `now`.
    BadTime,
}

/// Verifies the messages of a response stream to a request we signed (`prior` = its MAC).
/// Messages without TSIG are allowed between signed ones (at most 99, RFC 8945 §5.3.1) and
/// covered by the next signed message's MAC.
pub struct ResponseVerifier {
    key: TsigKey,
    prior: Vec<u8>,
    first: bool,
    /// Unsigned messages since the last signed one.
    pending: Vec<u8>,
    unsigned_run: usize,
}

impl ResponseVerifier {
    pub fn new(key: TsigKey, request_mac: Vec<u8>) -> Self {
        Self {
            key,
            prior: request_mac,
            first: true,
            pending: Vec::new(),
            unsigned_run: 0,
        }
    }

    /// Checks the next message; `Ok(true)` when it was signed (and good), `Ok(false)` when it
    /// was an allowed unsigned one.
    pub fn verify(&mut self, msg: &[u8], now: u64) -> Result<bool, ResponseError> {
        let t = find(msg).map_err(|_| ResponseError::Malformed)?;
        let Some(t) = t else {
            if self.first || self.unsigned_run >= 99 {
                return Err(ResponseError::Unsigned);
            }
            self.pending.extend_from_slice(msg);
            self.unsigned_run += 1;
            return Ok(false);
        };
        if t.error != 0 {
            return Err(ResponseError::Error(t.error));
        }
        if t.key_name.to_lowercase() != self.key.name
            || TsigAlgorithm::from_text(&t.algorithm.to_ascii()) != Some(self.key.algorithm)
        {
            return Err(ResponseError::BadSignature);
        }
        let mut covered = std::mem::take(&mut self.pending);
        covered.extend_from_slice(&unsigned_form(msg, &t));
        let covers = if self.first {
            Covers::FirstResponse(&self.prior)
        } else {
            Covers::Next(&self.prior)
        };
        let expect = mac(
            &self.key, &covers, &covered, t.time, t.fudge, t.error, &t.other,
        );
        if t.mac.len() != expect.len() || !ct_eq(&expect, &t.mac) {
            return Err(ResponseError::BadSignature);
        }
        if now.abs_diff(t.time) > t.fudge as u64 {
            return Err(ResponseError::BadTime);
        }
        self.prior = t.mac;
        self.first = false;
        self.unsigned_run = 0;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use hickory_proto::op::{Message, MessageType, OpCode, Query};
    use hickory_proto::rr::RecordType;

    fn key(alg: TsigAlgorithm) -> TsigKey {
        TsigKey {
            name: Name::from_ascii("xfr.zonegate.").unwrap(),
            algorithm: alg,
            secret: base64::engine::general_purpose::STANDARD
                .decode("pRGNUvDz1tJ6cNW7rXn1o6cE2b5nlN8W9bWk8jxjq4M=")
                .unwrap(),
        }
    }

    fn query(id: u16, qtype: RecordType) -> Vec<u8> {
        let mut m = Message::new(id, MessageType::Query, OpCode::Query);
        m.add_query(Query::query(
            Name::from_ascii("acme.example.com.").unwrap(),
            qtype,
        ));
        m.to_vec().unwrap()
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// A request signed by dnspython 2.3 (`dns.message.make_query('acme.example.com.', 'AXFR')`,
    /// `use_tsig(keyring, 'xfr.zonegate.', algorithm=hmac-sha256)`, time 1764633600, id 4660)
    /// verifies, and our own signature of the same message at the same time is byte-identical.
    #[test]
    fn known_vector_from_dnspython() {
        let signed = hex(DNSPYTHON_AXFR_SHA256);
        let t = find(&signed).unwrap().unwrap();
        assert_eq!(t.key_name.to_ascii(), "xfr.zonegate.");
        assert_eq!(t.time, 1764633600);
        let k = key(TsigAlgorithm::HmacSha256);
        assert!(matches!(
            verify_request(&signed, &t, Some(&k), 1764633600 + 10),
            Verified::Ok { .. }
        ));
        let mut ours = unsigned_form(&signed, &t);
        let m = mac(&k, &Covers::Request, &ours, t.time, t.fudge, 0, &[]);
        assert_eq!(m, t.mac);
        append_tsig(
            &mut ours,
            &k.name,
            &k.algorithm.name(),
            &TsigFields {
                time: t.time,
                fudge: t.fudge,
                mac: m,
                original_id: t.original_id,
                error: 0,
                other: vec![],
            },
        );
        assert_eq!(ours, signed);
    }

    const DNSPYTHON_AXFR_SHA256: &str = include_str!("testdata/tsig_axfr_sha256.hex");

    #[test]
    fn request_checks_key_mac_and_time_in_order() {
        for alg in [TsigAlgorithm::HmacSha256, TsigAlgorithm::HmacSha512] {
            let k = key(alg);
            let mut q = query(7, RecordType::AXFR);
            sign_request(&mut q, &k, 1_000_000);
            let t = find(&q).unwrap().unwrap();
            assert!(matches!(
                verify_request(&q, &t, Some(&k), 1_000_100),
                Verified::Ok { .. }
            ));
            // clock skew beyond the fudge
            let Verified::Error { error, .. } = verify_request(&q, &t, Some(&k), 1_000_301) else {
                panic!()
            };
            assert_eq!(error, BADTIME);
            // another key of the same name
            let mut other = k.clone();
            other.secret[0] ^= 1;
            let Verified::Error { error, .. } = verify_request(&q, &t, Some(&other), 1_000_000)
            else {
                panic!()
            };
            assert_eq!(error, BADSIG);
            // unknown key name, and no key at all
            let mut renamed = k.clone();
            renamed.name = Name::from_ascii("other.").unwrap();
            for key in [Some(&renamed), None] {
                let Verified::Error { error, .. } = verify_request(&q, &t, key, 1_000_000) else {
                    panic!()
                };
                assert_eq!(error, BADKEY);
            }
            // a flipped bit anywhere in the signed part (the id is not: the MAC covers the
            // original id, which the TSIG record carries)
            for i in [2usize, 3, 13, 20] {
                let mut bad = q.clone();
                bad[i] ^= 0x20;
                if let Ok(Some(t)) = find(&bad) {
                    assert!(matches!(
                        verify_request(&bad, &t, Some(&k), 1_000_000),
                        Verified::Error { .. }
                    ));
                }
            }
        }
    }

    #[test]
    fn tsig_must_be_last_and_well_formed() {
        let k = key(TsigAlgorithm::HmacSha256);
        let mut q = query(7, RecordType::SOA);
        sign_request(&mut q, &k, 5);
        // truncations never panic and never verify
        for len in 0..q.len() {
            let _ = find(&q[..len]);
        }
        // a TSIG followed by another record
        let mut two = q.clone();
        let tsig = q[find(&q).unwrap().unwrap().start..].to_vec();
        two.extend_from_slice(&tsig);
        let ar = u16::from_be_bytes([two[10], two[11]]) + 1;
        two[10..12].copy_from_slice(&ar.to_be_bytes());
        assert_eq!(find(&two), Err(Malformed));
        assert_eq!(find(&query(1, RecordType::A)), Ok(None));
    }

    /// A multi-message response: each message signed in a chain, verified by the client side;
    /// reordering, dropping, or changing one message breaks the chain.
    #[test]
    fn multi_message_chain() {
        let k = key(TsigAlgorithm::HmacSha256);
        let mut q = query(9, RecordType::AXFR);
        let request_mac = sign_request(&mut q, &k, 100);
        let msgs: Vec<Vec<u8>> = (0..5u16)
            .map(|i| {
                let mut m = Message::new(9, MessageType::Response, OpCode::Query);
                m.metadata.authoritative = true;
                m.add_query(Query::query(
                    Name::from_ascii(format!("n{i}.acme.example.com.")).unwrap(),
                    RecordType::A,
                ));
                m.to_vec().unwrap()
            })
            .collect();
        let mut s = ResponseSigner::new(k.clone(), request_mac.clone());
        let good: Vec<Vec<u8>> = msgs
            .iter()
            .map(|m| {
                let mut m = m.clone();
                s.sign(&mut m, 101);
                m
            })
            .collect();
        let mut v = ResponseVerifier::new(k.clone(), request_mac.clone());
        for m in &good {
            assert_eq!(v.verify(m, 150), Ok(true));
        }
        // swapped order fails
        let mut v = ResponseVerifier::new(k.clone(), request_mac.clone());
        assert_eq!(v.verify(&good[0], 150), Ok(true));
        assert_eq!(v.verify(&good[2], 150), Err(ResponseError::BadSignature));
        // a changed byte fails
        let mut v = ResponseVerifier::new(k.clone(), request_mac.clone());
        let mut bad = good[0].clone();
        bad[13] ^= 1;
        assert_eq!(v.verify(&bad, 150), Err(ResponseError::BadSignature));
        // a chain bound to another request fails
        let mut v = ResponseVerifier::new(k.clone(), vec![0; 32]);
        assert_eq!(v.verify(&good[0], 150), Err(ResponseError::BadSignature));
    }
}
