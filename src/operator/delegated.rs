//! The `Delegated` check: do the parent zone's nameservers return our NS set?
//!
//! Two ways to find the parent's nameservers:
//!
//! - **resolver** (`--delegation-resolver ADDR`, default: the first `nameserver` of
//!   `/etc/resolv.conf`): a recursive resolver finds the closest enclosing zone above the domain
//!   (the parent's NS RRset, or the SOA owner of a negative answer) and the addresses of its
//!   nameservers, which are then asked directly on port 53, without recursion;
//! - **parent** (`--delegation-parent ADDR`): that one server is asked directly, as the parent's
//!   nameserver.
//!
//! Each parent nameserver is asked `<domain> NS` with RD=0. A referral (or an authoritative
//! answer) with NS records owned by the domain gives its NS set, plus glue when it sends any; an
//! NXDOMAIN, or a NODATA with the parent's SOA, means no delegation. Timeouts, SERVFAIL, REFUSED
//! and referrals elsewhere (a server that is not authoritative for the parent) make that server
//! unusable. The outcome:
//!
//! - some server returns another NS set, or glue with other addresses: `Mismatch`;
//! - else some server has no delegation: `NotDelegated`;
//! - else some server returns our NS set: `Delegated`;
//! - else nobody answered usefully: `Unreachable` (the condition is `Unknown`).
//!
//! A signed zone (`Expected::ds` not empty) is then asked for its DS at each parent server that
//! delegates it (`<domain> DS`, RD=0; DS records are the parent's, RFC 4034 §5). Compared are
//! key tag, algorithm, digest type and digest, so a DS of ours means a SHA-256 one (`zonegate`
//! publishes those); the parent may hold others besides (a rollover's):
//!
//! - some server has DS records and none of ours: `DsMismatch` (validating resolvers fail);
//! - else some server has no DS: `DsMissing` (resolvers treat the zone as unsigned);
//! - else some server has one of ours: `Delegated`, secure;
//! - else nobody answered the DS query usefully: `Unreachable`.
//!
//! Only this module knows DNS wire format (hickory-proto messages over tokio sockets).

use super::dns_query::{UdpExchange, UdpFailure, answers, new_query};
use super::status::DelegationCheck;
use hickory_proto::op::{Edns, Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Where the parent's nameservers are found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckMode {
    Resolver(SocketAddr),
    Parent(SocketAddr),
}

/// The checker's settings.
#[derive(Clone, Debug)]
pub struct Checker {
    pub mode: CheckMode,
    /// Per query and attempt.
    pub timeout: Duration,
    /// Port the parent's nameservers are asked on in resolver mode (53).
    pub port: u16,
}

/// What the zone expects the parent to say.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Expected {
    /// Lowercase, no trailing dot.
    pub domain: String,
    pub nameservers: BTreeSet<String>,
    /// Addresses of the in-zone nameservers (glue), by hostname.
    pub glue: BTreeMap<String, BTreeSet<IpAddr>>,
    /// A signed zone's DS records (`dnssec::ds::text` form); empty: not signed, no DS check.
    pub ds: BTreeSet<String>,
}

/// One parent server's view.
#[derive(Clone, Debug, PartialEq, Eq)]
enum ServerView {
    Delegates {
        ns: BTreeSet<String>,
        glue: BTreeMap<String, BTreeSet<IpAddr>>,
    },
    NoDelegation(String),
}

/// The first `nameserver` of a resolv.conf text, on port 53.
pub fn resolv_conf_nameserver(text: &str) -> Option<SocketAddr> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter_map(|l| l.strip_prefix("nameserver"))
        .filter_map(|rest| rest.trim().split('%').next()?.parse::<IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .next()
}

fn lower(n: &Name) -> String {
    crate::domain::normalize(&n.to_ascii())
}

fn parent_of(domain: &str) -> String {
    domain
        .split_once('.')
        .map(|(_, p)| p.to_string())
        .unwrap_or_default()
}

impl Checker {
    /// Asks the parent about `expected.domain`.
    pub async fn check(&self, expected: &Expected) -> DelegationCheck {
        let (parent, servers) = match &self.mode {
            CheckMode::Parent(addr) => (parent_of(&expected.domain), vec![*addr]),
            CheckMode::Resolver(resolver) => {
                match self.find_parent(*resolver, &expected.domain).await {
                    Ok(found) => found,
                    Err(detail) => return DelegationCheck::Unreachable { detail },
                }
            }
        };
        let mut views = Vec::new();
        for s in &servers {
            views.push((*s, self.ask_server(*s, &expected.domain).await));
        }
        let ns = judge(&parent, expected, &views);
        if expected.ds.is_empty() || !matches!(ns, DelegationCheck::Delegated { .. }) {
            return ns;
        }
        let mut ds_views = Vec::new();
        for (s, v) in &views {
            if let Ok(ServerView::Delegates { .. }) = v {
                ds_views.push((*s, self.ask_ds(*s, &expected.domain).await));
            }
        }
        judge_ds(ns, expected, &ds_views)
    }

    /// One parent server's DS records for `domain` (`dnssec::ds::text` form; empty: none).
    async fn ask_ds(&self, server: SocketAddr, domain: &str) -> Result<BTreeSet<String>, String> {
        let resp = self.query(server, domain, RecordType::DS, false).await?;
        interpret_ds(&resp, domain)
    }

    /// Resolver mode: the parent zone's apex and its nameservers' addresses.
    async fn find_parent(
        &self,
        resolver: SocketAddr,
        domain: &str,
    ) -> Result<(String, Vec<SocketAddr>), String> {
        let at = |e: String| format!("resolver {resolver}: {e}");
        let mut candidate = parent_of(domain);
        if candidate.is_empty() {
            return Err(format!("{domain} has no parent zone to ask"));
        }
        // The closest enclosing zone: the candidate's own NS RRset, or the SOA owner a negative
        // answer names.
        let (apex, resp) = loop {
            let resp = self
                .query(resolver, &candidate, RecordType::NS, true)
                .await
                .map_err(at)?;
            if resp
                .answers
                .iter()
                .any(|r| matches!(r.data, RData::NS(_)) && lower(&r.name) == candidate)
            {
                break (candidate.clone(), resp);
            }
            let soa_owner = resp
                .authorities
                .iter()
                .find(|r| matches!(r.data, RData::SOA(_)))
                .map(|r| lower(&r.name));
            match soa_owner {
                Some(owner)
                    if owner != candidate && crate::domain::is_at_or_below(&candidate, &owner) =>
                {
                    candidate = owner;
                }
                _ => {
                    let up = parent_of(&candidate);
                    if up.is_empty() {
                        return Err(at(format!("found no zone above {domain}")));
                    }
                    candidate = up;
                }
            }
        };
        let ns_names: Vec<String> = resp
            .answers
            .iter()
            .filter_map(|r| match &r.data {
                RData::NS(ns) if lower(&r.name) == apex => Some(lower(&ns.0)),
                _ => None,
            })
            .collect();
        let mut addrs: Vec<SocketAddr> = Vec::new();
        for host in &ns_names {
            let mut ips: Vec<IpAddr> = resp
                .additionals
                .iter()
                .filter(|r| lower(&r.name) == *host)
                .filter_map(|r| match r.data {
                    RData::A(a) => Some(IpAddr::V4(a.0)),
                    RData::AAAA(a) => Some(IpAddr::V6(a.0)),
                    _ => None,
                })
                .collect();
            if ips.is_empty() {
                for t in [RecordType::A, RecordType::AAAA] {
                    if let Ok(r) = self.query(resolver, host, t, true).await {
                        ips.extend(r.answers.iter().filter_map(|r| match r.data {
                            RData::A(a) => Some(IpAddr::V4(a.0)),
                            RData::AAAA(a) => Some(IpAddr::V6(a.0)),
                            _ => None,
                        }));
                    }
                }
            }
            for ip in ips {
                let sa = SocketAddr::new(ip, self.port);
                if !addrs.contains(&sa) {
                    addrs.push(sa);
                }
            }
        }
        if addrs.is_empty() {
            return Err(at(format!(
                "no addresses for the nameservers of the parent zone {apex} ({})",
                ns_names.join(", ")
            )));
        }
        Ok((apex, addrs))
    }

    /// One parent server's answer about `domain`.
    async fn ask_server(&self, server: SocketAddr, domain: &str) -> Result<ServerView, String> {
        let resp = self.query(server, domain, RecordType::NS, false).await?;
        interpret(&resp, domain)
    }

    /// One query, UDP with EDNS (retried once), then TCP when truncated.
    async fn query(
        &self,
        server: SocketAddr,
        name: &str,
        rtype: RecordType,
        recursion: bool,
    ) -> Result<Message, String> {
        let qname = Name::from_ascii(format!("{name}."))
            .map_err(|e| format!("invalid name {name}: {e}"))?;
        let (id, question, mut msg) = new_query(qname, rtype, recursion);
        let mut edns = Edns::new();
        edns.set_max_payload(1232);
        msg.set_edns(edns);
        let bytes = msg
            .to_vec()
            .map_err(|e| format!("encoding the query: {e}"))?;
        let mut last = String::new();
        for _ in 0..2 {
            match self.udp(server, &bytes, id, &question).await {
                Ok(resp) if resp.metadata.truncation => {
                    return self
                        .tcp(server, &bytes, id, &question)
                        .await
                        .and_then(|r| check_rcode(server, r));
                }
                Ok(resp) => return check_rcode(server, resp),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    async fn udp(
        &self,
        server: SocketAddr,
        bytes: &[u8],
        id: u16,
        question: &Query,
    ) -> Result<Message, String> {
        let ex = UdpExchange::connect(server)
            .await
            .map_err(|e| format!("{server}: {e}"))?;
        ex.ask(bytes, id, question, self.timeout)
            .await
            .map_err(|e| match e {
                UdpFailure::Send(e) | UdpFailure::Recv(e) => format!("{server}: {e}"),
                UdpFailure::Timeout => format!("{server}: no answer within {:?}", self.timeout),
            })
    }

    async fn tcp(
        &self,
        server: SocketAddr,
        bytes: &[u8],
        id: u16,
        question: &Query,
    ) -> Result<Message, String> {
        let io = async {
            let mut s = tokio::net::TcpStream::connect(server).await?;
            let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
            framed.extend_from_slice(bytes);
            s.write_all(&framed).await?;
            let mut len = [0u8; 2];
            s.read_exact(&mut len).await?;
            let mut body = vec![0u8; u16::from_be_bytes(len) as usize];
            s.read_exact(&mut body).await?;
            Ok::<_, std::io::Error>(body)
        };
        let body = tokio::time::timeout(self.timeout, io)
            .await
            .map_err(|_| format!("{server}: no answer over TCP within {:?}", self.timeout))?
            .map_err(|e| format!("{server} (TCP): {e}"))?;
        let m = Message::from_vec(&body).map_err(|e| format!("{server}: bad response: {e}"))?;
        if !answers(&m, id, question) {
            return Err(format!(
                "{server}: a response that does not answer the query (id or question differ)"
            ));
        }
        Ok(m)
    }
}

fn check_rcode(server: SocketAddr, m: Message) -> Result<Message, String> {
    match m.metadata.response_code {
        ResponseCode::NoError | ResponseCode::NXDomain => Ok(m),
        other => Err(format!("{server} answers {other}")),
    }
}

/// A parent server's response to `<domain> NS` (RD=0).
fn interpret(resp: &Message, domain: &str) -> Result<ServerView, String> {
    if resp.metadata.response_code == ResponseCode::NXDomain {
        return Ok(ServerView::NoDelegation(format!(
            "answers NXDOMAIN for {domain}"
        )));
    }
    let ns_of = |records: &[hickory_proto::rr::Record]| -> BTreeSet<String> {
        records
            .iter()
            .filter_map(|r| match &r.data {
                RData::NS(ns) if lower(&r.name) == domain => Some(lower(&ns.0)),
                _ => None,
            })
            .collect()
    };
    let mut ns = ns_of(&resp.authorities);
    if ns.is_empty() {
        ns = ns_of(&resp.answers);
    }
    if !ns.is_empty() {
        let mut glue: BTreeMap<String, BTreeSet<IpAddr>> = BTreeMap::new();
        for r in &resp.additionals {
            let ip = match r.data {
                RData::A(a) => IpAddr::V4(a.0),
                RData::AAAA(a) => IpAddr::V6(a.0),
                _ => continue,
            };
            glue.entry(lower(&r.name)).or_default().insert(ip);
        }
        return Ok(ServerView::Delegates { ns, glue });
    }
    if resp
        .authorities
        .iter()
        .any(|r| matches!(r.data, RData::SOA(_)))
        || resp.metadata.authoritative
    {
        return Ok(ServerView::NoDelegation(format!(
            "has no NS records for {domain}"
        )));
    }
    let elsewhere: Vec<String> = resp
        .authorities
        .iter()
        .filter(|r| matches!(r.data, RData::NS(_)))
        .map(|r| lower(&r.name))
        .collect();
    Err(match elsewhere.first() {
        Some(z) => format!("is not authoritative for the parent zone (refers to {z})"),
        None => "gives neither a delegation nor a negative answer".into(),
    })
}

/// A parent server's response to `<domain> DS` (RD=0): the DS set, empty for NXDOMAIN or
/// NODATA (the parent's SOA, or an authoritative empty answer).
fn interpret_ds(resp: &Message, domain: &str) -> Result<BTreeSet<String>, String> {
    let ds: BTreeSet<String> = resp
        .answers
        .iter()
        .filter(|r| r.record_type() == RecordType::DS && lower(&r.name) == domain)
        .filter_map(|r| crate::dnssec::ds::text(&crate::dnssec::sign::canonical_rdata(&r.data)?))
        .collect();
    if !ds.is_empty()
        || resp.metadata.response_code == ResponseCode::NXDomain
        || resp.metadata.authoritative
        || resp
            .authorities
            .iter()
            .any(|r| matches!(r.data, RData::SOA(_)))
    {
        return Ok(ds);
    }
    Err(format!(
        "gives neither DS records for {domain} nor a negative answer"
    ))
}

/// The outcome of a delegation with the right NS set (`ns`, `Delegated`) once the parent
/// servers' DS sets (`views`) are known.
fn judge_ds(
    ns: DelegationCheck,
    expected: &Expected,
    views: &[(SocketAddr, Result<BTreeSet<String>, String>)],
) -> DelegationCheck {
    let DelegationCheck::Delegated {
        parent, servers, ..
    } = ns
    else {
        return ns;
    };
    let tags = |s: &BTreeSet<String>| {
        s.iter()
            .map(|d| d.split(' ').take(3).collect::<Vec<_>>().join(" "))
            .collect::<Vec<_>>()
            .join(", ")
    };
    for (server, v) in views {
        if let Ok(ds) = v
            && !ds.is_empty()
            && ds.is_disjoint(&expected.ds)
        {
            return DelegationCheck::DsMismatch {
                parent,
                detail: format!(
                    "parent nameserver {server} has DS {} for {}, none of which is this zone's key (DS {}): validating resolvers reject the zone",
                    tags(ds),
                    expected.domain,
                    tags(&expected.ds)
                ),
            };
        }
    }
    if let Some((server, _)) = views
        .iter()
        .find(|(_, v)| v.as_ref().is_ok_and(BTreeSet::is_empty))
    {
        return DelegationCheck::DsMissing {
            parent,
            detail: format!(
                "the NS delegation is right, but parent nameserver {server} has no DS for {}: validating resolvers treat the zone as unsigned",
                expected.domain
            ),
        };
    }
    if views.iter().any(|(_, v)| v.is_ok()) {
        return DelegationCheck::Delegated {
            parent,
            servers,
            secure: true,
            parent_ds: views
                .iter()
                .filter_map(|(_, v)| v.as_ref().ok())
                .flatten()
                .cloned()
                .collect(),
        };
    }
    let errors: Vec<String> = views
        .iter()
        .filter_map(|(s, v)| v.as_ref().err().map(|e| format!("{s}: {e}")))
        .collect();
    DelegationCheck::Unreachable {
        detail: format!(
            "the NS delegation in {parent} is right, but its DS could not be asked: {}",
            errors.join("; ")
        ),
    }
}

/// The overall outcome from every server's view.
fn judge(
    parent: &str,
    expected: &Expected,
    views: &[(SocketAddr, Result<ServerView, String>)],
) -> DelegationCheck {
    let list = |s: &BTreeSet<String>| s.iter().cloned().collect::<Vec<_>>().join(", ");
    for (server, v) in views {
        if let Ok(ServerView::Delegates { ns, glue }) = v {
            if *ns != expected.nameservers {
                return DelegationCheck::Mismatch {
                    parent: parent.into(),
                    detail: format!(
                        "parent nameserver {server} delegates {} to {} instead of {}",
                        expected.domain,
                        list(ns),
                        list(&expected.nameservers)
                    ),
                };
            }
            for (host, ours) in &expected.glue {
                if let Some(theirs) = glue.get(host)
                    && theirs != ours
                {
                    let show = |s: &BTreeSet<IpAddr>| {
                        s.iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    };
                    return DelegationCheck::Mismatch {
                        parent: parent.into(),
                        detail: format!(
                            "parent nameserver {server} has glue {} for {host} instead of {}",
                            show(theirs),
                            show(ours)
                        ),
                    };
                }
            }
        }
    }
    if let Some((server, Ok(ServerView::NoDelegation(why)))) = views
        .iter()
        .find(|(_, v)| matches!(v, Ok(ServerView::NoDelegation(_))))
    {
        return DelegationCheck::NotDelegated {
            parent: parent.into(),
            detail: format!("parent nameserver {server} {why}"),
        };
    }
    let good: Vec<String> = views
        .iter()
        .filter(|(_, v)| v.is_ok())
        .map(|(s, _)| s.to_string())
        .collect();
    if !good.is_empty() {
        return DelegationCheck::Delegated {
            parent: parent.into(),
            servers: good,
            secure: false,
            parent_ds: BTreeSet::new(),
        };
    }
    let errors: Vec<String> = views
        .iter()
        .filter_map(|(s, v)| v.as_ref().err().map(|e| format!("{s}: {e}")))
        .collect();
    DelegationCheck::Unreachable {
        detail: format!(
            "could not ask the nameservers of the parent zone {parent}: {}",
            errors.join("; ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{MessageType, OpCode};
    use hickory_proto::rr::Record;
    use hickory_proto::rr::rdata::{A, NS, SOA};

    fn name(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    fn expected() -> Expected {
        Expected {
            domain: "acme.example.com".into(),
            nameservers: ["ns1.acme.example.com", "ns2.acme.example.com"]
                .map(String::from)
                .into(),
            glue: BTreeMap::from([(
                "ns1.acme.example.com".to_string(),
                BTreeSet::from(["192.0.2.1".parse().unwrap()]),
            )]),
            ds: BTreeSet::new(),
        }
    }

    fn referral(ns: &[&str], glue: &[(&str, &str)]) -> Message {
        let mut m = Message::new(1, MessageType::Response, OpCode::Query);
        for n in ns {
            m.authorities.push(Record::from_rdata(
                name("acme.example.com."),
                3600,
                RData::NS(NS(name(n))),
            ));
        }
        for (h, ip) in glue {
            m.additionals.push(Record::from_rdata(
                name(h),
                3600,
                RData::A(A(ip.parse().unwrap())),
            ));
        }
        m
    }

    fn nodata() -> Message {
        let mut m = Message::new(1, MessageType::Response, OpCode::Query);
        m.metadata.authoritative = true;
        m.authorities.push(Record::from_rdata(
            name("example.com."),
            3600,
            RData::SOA(SOA::new(
                name("ns.example.com."),
                name("hostmaster.example.com."),
                1,
                3600,
                600,
                86400,
                60,
            )),
        ));
        m
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn referral_with_our_ns_set_is_delegated() {
        let e = expected();
        let v = interpret(
            &referral(
                &["NS1.acme.example.com.", "ns2.acme.example.com."],
                &[("ns1.acme.example.com.", "192.0.2.1")],
            ),
            "acme.example.com",
        );
        let out = judge("example.com", &e, &[(addr("127.0.0.1:53"), v)]);
        assert_eq!(
            out,
            DelegationCheck::Delegated {
                parent: "example.com".into(),
                servers: vec!["127.0.0.1:53".into()],
                secure: false,
                parent_ds: BTreeSet::new(),
            }
        );
    }

    #[test]
    fn other_ns_set_or_glue_is_a_mismatch() {
        let e = expected();
        let v = interpret(
            &referral(&["ns1.acme.example.com.", "old.example.net."], &[]),
            "acme.example.com",
        );
        match judge("example.com", &e, &[(addr("127.0.0.1:53"), v)]) {
            DelegationCheck::Mismatch { detail, .. } => assert_eq!(
                detail,
                "parent nameserver 127.0.0.1:53 delegates acme.example.com to ns1.acme.example.com, old.example.net instead of ns1.acme.example.com, ns2.acme.example.com"
            ),
            other => panic!("{other:?}"),
        }
        let v = interpret(
            &referral(
                &["ns1.acme.example.com.", "ns2.acme.example.com."],
                &[("ns1.acme.example.com.", "192.0.2.99")],
            ),
            "acme.example.com",
        );
        match judge("example.com", &e, &[(addr("127.0.0.1:53"), v)]) {
            DelegationCheck::Mismatch { detail, .. } => assert_eq!(
                detail,
                "parent nameserver 127.0.0.1:53 has glue 192.0.2.99 for ns1.acme.example.com instead of 192.0.2.1"
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn negative_answers_are_not_delegated() {
        let e = expected();
        let v = interpret(&nodata(), "acme.example.com");
        assert_eq!(
            v,
            Ok(ServerView::NoDelegation(
                "has no NS records for acme.example.com".into()
            ))
        );
        let mut nx = nodata();
        nx.metadata.response_code = ResponseCode::NXDomain;
        let v2 = interpret(&nx, "acme.example.com");
        match judge(
            "example.com",
            &e,
            &[(addr("127.0.0.1:53"), v2), (addr("127.0.0.2:53"), v)],
        ) {
            DelegationCheck::NotDelegated { parent, detail } => {
                assert_eq!(parent, "example.com");
                assert_eq!(
                    detail,
                    "parent nameserver 127.0.0.1:53 answers NXDOMAIN for acme.example.com"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn nobody_answering_is_unreachable_and_lame_servers_do_not_count() {
        let e = expected();
        let mut lame = Message::new(1, MessageType::Response, OpCode::Query);
        lame.authorities.push(Record::from_rdata(
            name("com."),
            3600,
            RData::NS(NS(name("a.gtld.example."))),
        ));
        let v = interpret(&lame, "acme.example.com");
        assert_eq!(
            v,
            Err("is not authoritative for the parent zone (refers to com)".into())
        );
        match judge(
            "example.com",
            &e,
            &[
                (addr("127.0.0.1:53"), v),
                (addr("127.0.0.2:53"), Err("no answer".into())),
            ],
        ) {
            DelegationCheck::Unreachable { detail } => assert_eq!(
                detail,
                "could not ask the nameservers of the parent zone example.com: 127.0.0.1:53: is not authoritative for the parent zone (refers to com); 127.0.0.2:53: no answer"
            ),
            other => panic!("{other:?}"),
        }
        // One good server is enough when the others fail.
        let ok = interpret(
            &referral(&["ns1.acme.example.com.", "ns2.acme.example.com."], &[]),
            "acme.example.com",
        );
        assert!(matches!(
            judge(
                "example.com",
                &e,
                &[
                    (addr("127.0.0.2:53"), Err("timeout".into())),
                    (addr("127.0.0.1:53"), ok)
                ]
            ),
            DelegationCheck::Delegated { .. }
        ));
    }

    #[test]
    fn resolv_conf() {
        assert_eq!(
            resolv_conf_nameserver(
                "# x\nsearch svc.cluster.local\nnameserver 10.96.0.10\nnameserver 8.8.8.8\n"
            ),
            Some(addr("10.96.0.10:53"))
        );
        assert_eq!(
            resolv_conf_nameserver("nameserver fe80::1%eth0\n"),
            Some(addr("[fe80::1]:53"))
        );
        assert_eq!(resolv_conf_nameserver("search x\n"), None);
    }

    #[tokio::test]
    async fn silent_server_times_out() {
        // A bound socket that never answers.
        let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let checker = Checker {
            mode: CheckMode::Parent(silent.local_addr().unwrap()),
            timeout: Duration::from_millis(100),
            port: 53,
        };
        match checker.check(&expected()).await {
            DelegationCheck::Unreachable { detail } => {
                assert!(detail.contains("no answer within"), "{detail}")
            }
            other => panic!("{other:?}"),
        }
    }

    /// A UDP server that answers each query with the responses `reply` makes of it.
    fn fake_server(reply: impl Fn(&Message) -> Vec<Message> + Send + 'static) -> SocketAddr {
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = sock.local_addr().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok((n, peer)) = sock.recv_from(&mut buf) {
                let q = Message::from_vec(&buf[..n]).unwrap();
                for m in reply(&q) {
                    let _ = sock.send_to(&m.to_vec().unwrap(), peer);
                }
            }
        });
        addr
    }

    fn response_to(q: &Message, qname: &str) -> Message {
        let mut m = referral(&["ns1.acme.example.com."], &[]);
        m.metadata.id = q.metadata.id;
        m.add_query(Query::query(name(qname), RecordType::NS));
        m
    }

    fn checker(server: SocketAddr) -> Checker {
        Checker {
            mode: CheckMode::Parent(server),
            timeout: Duration::from_millis(300),
            port: 53,
        }
    }

    /// DS RDATA (key tag, algorithm 13, digest type 2, digest) as a record of the parent's.
    fn ds_record(tag: u16, digest: &[u8]) -> Record {
        let mut rdata = tag.to_be_bytes().to_vec();
        rdata.extend_from_slice(&[13, 2]);
        rdata.extend_from_slice(digest);
        Record::from_rdata(
            name("acme.example.com."),
            3600,
            RData::Unknown {
                code: RecordType::DS,
                rdata: hickory_proto::rr::rdata::NULL::with(rdata),
            },
        )
    }

    fn signed_expected() -> Expected {
        Expected {
            ds: BTreeSet::from(["12345 13 2 AB01".to_string()]),
            ..expected()
        }
    }

    #[test]
    fn parent_ds_answers() {
        let mut answer = Message::new(1, MessageType::Response, OpCode::Query);
        answer.metadata.authoritative = true;
        answer.answers.push(ds_record(12345, &[0xab, 0x01]));
        answer.answers.push(ds_record(999, &[0x01]));
        assert_eq!(
            interpret_ds(&answer, "acme.example.com").unwrap(),
            BTreeSet::from(["12345 13 2 AB01".to_string(), "999 13 2 01".to_string()])
        );
        assert!(
            interpret_ds(&nodata(), "acme.example.com")
                .unwrap()
                .is_empty()
        );
        // a referral to the child (a server that is not the parent's) is no answer
        let err = interpret_ds(
            &referral(&["ns1.acme.example.com."], &[]),
            "acme.example.com",
        )
        .unwrap_err();
        assert!(err.contains("neither DS records"), "{err}");
    }

    #[test]
    fn ds_judgement() {
        let e = signed_expected();
        let ns = || DelegationCheck::Delegated {
            parent: "example.com".into(),
            servers: vec!["127.0.0.1:53".into()],
            secure: false,
            parent_ds: BTreeSet::new(),
        };
        let a = addr("127.0.0.1:53");
        let b = addr("127.0.0.2:53");
        let set = |v: &[&str]| Ok(v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>());
        // ours among others (a rollover's old DS): secure
        assert_eq!(
            judge_ds(ns(), &e, &[(a, set(&["12345 13 2 AB01", "7 13 2 FF"]))]),
            DelegationCheck::Delegated {
                parent: "example.com".into(),
                servers: vec!["127.0.0.1:53".into()],
                secure: true,
                parent_ds: ["12345 13 2 AB01", "7 13 2 FF"].map(String::from).into(),
            }
        );
        // only others, or another digest of our tag: a mismatch, named with the tags
        match judge_ds(ns(), &e, &[(a, set(&["12345 13 2 AB02"]))]) {
            DelegationCheck::DsMismatch { parent, detail } => {
                assert_eq!(parent, "example.com");
                assert!(
                    detail.contains("has DS 12345 13 2 for acme.example.com"),
                    "{detail}"
                );
                assert!(detail.contains("127.0.0.1:53"), "{detail}");
            }
            other => panic!("{other:?}"),
        }
        // none: missing, also when another server has ours (they must all agree)
        for views in [
            vec![(a, set(&[]))],
            vec![(a, set(&["12345 13 2 AB01"])), (b, set(&[]))],
        ] {
            match judge_ds(ns(), &e, &views) {
                DelegationCheck::DsMissing { detail, .. } => {
                    assert!(detail.contains("no DS for acme.example.com"), "{detail}")
                }
                other => panic!("{other:?}"),
            }
        }
        // a mismatch anywhere wins over missing elsewhere
        assert!(matches!(
            judge_ds(ns(), &e, &[(a, set(&[])), (b, set(&["1 13 2 00"]))]),
            DelegationCheck::DsMismatch { .. }
        ));
        // a server that fails does not count while another answers
        assert!(matches!(
            judge_ds(
                ns(),
                &e,
                &[(a, Err("timeout".into())), (b, set(&["12345 13 2 AB01"]))]
            ),
            DelegationCheck::Delegated { secure: true, .. }
        ));
        match judge_ds(ns(), &e, &[(a, Err("timeout".into()))]) {
            DelegationCheck::Unreachable { detail } => {
                assert!(
                    detail.contains("NS delegation in example.com is right"),
                    "{detail}"
                );
                assert!(detail.contains("timeout"), "{detail}");
            }
            other => panic!("{other:?}"),
        }
        // anything but a right NS delegation passes through untouched
        let not = DelegationCheck::NotDelegated {
            parent: "example.com".into(),
            detail: "x".into(),
        };
        assert_eq!(judge_ds(not.clone(), &e, &[(a, set(&[]))]), not);
    }

    /// The whole check against a parent server that answers NS with a referral and DS from
    /// `ds` (NODATA when empty): an unsigned zone is never asked for DS, a signed one is.
    #[tokio::test]
    async fn check_asks_the_parent_for_ds_of_signed_zones_only() {
        let asked_ds = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let parent = |ds: Vec<Record>, asked: std::sync::Arc<std::sync::atomic::AtomicUsize>| {
            fake_server(move |q| {
                let question = q.queries[0].clone();
                let mut m = if question.query_type == RecordType::DS {
                    asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let mut m = nodata();
                    if !ds.is_empty() {
                        m.authorities.clear();
                        m.answers = ds.clone();
                    }
                    m
                } else {
                    referral(
                        &["ns1.acme.example.com.", "ns2.acme.example.com."],
                        &[("ns1.acme.example.com.", "192.0.2.1")],
                    )
                };
                m.metadata.id = q.metadata.id;
                m.add_query(question);
                vec![m]
            })
        };
        let server = parent(vec![ds_record(12345, &[0xab, 0x01])], asked_ds.clone());
        assert!(matches!(
            checker(server).check(&expected()).await,
            DelegationCheck::Delegated { secure: false, .. }
        ));
        assert_eq!(asked_ds.load(std::sync::atomic::Ordering::SeqCst), 0);
        assert!(matches!(
            checker(server).check(&signed_expected()).await,
            DelegationCheck::Delegated { secure: true, .. }
        ));
        assert_eq!(asked_ds.load(std::sync::atomic::Ordering::SeqCst), 1);
        let server = parent(Vec::new(), asked_ds.clone());
        assert!(matches!(
            checker(server).check(&signed_expected()).await,
            DelegationCheck::DsMissing { .. }
        ));
        let server = parent(vec![ds_record(4242, &[0x00])], asked_ds.clone());
        assert!(matches!(
            checker(server).check(&signed_expected()).await,
            DelegationCheck::DsMismatch { .. }
        ));
    }

    #[tokio::test]
    async fn a_reply_with_our_id_but_another_question_is_ignored() {
        // A spoofed reply (right id, other name) first, then the real one.
        let server = fake_server(|q| {
            vec![
                response_to(q, "evil.example.com."),
                response_to(q, "ACME.example.com."),
            ]
        });
        let m = checker(server)
            .query(server, "acme.example.com", RecordType::NS, false)
            .await
            .expect("the real answer");
        assert_eq!(m.queries[0].name, name("acme.example.com."));

        // Only replies that answer something else (another name, another type, two
        // questions, another id): none is taken.
        let server = fake_server(|q| {
            let mut other_type = response_to(q, "acme.example.com.");
            other_type.queries[0].query_type = RecordType::A;
            let mut two = response_to(q, "acme.example.com.");
            two.add_query(Query::query(name("x.example.com."), RecordType::NS));
            let mut other_id = response_to(q, "acme.example.com.");
            other_id.metadata.id = q.metadata.id.wrapping_add(1);
            vec![
                response_to(q, "evil.example.com."),
                other_type,
                two,
                other_id,
            ]
        });
        let err = checker(server)
            .query(server, "acme.example.com", RecordType::NS, false)
            .await
            .unwrap_err();
        assert!(err.contains("no answer within"), "{err}");
    }
}
