//! The `SecondariesInSync` check: each `spec.transfer.notify` target is asked for the zone's
//! SOA (UDP, RD=0, a random id; the answer must be authoritative and match the question), and
//! its serial compared with the serial the zone's nameservers agreed on (the serial ConfigMap).
//! A secondary that is behind is asked once more after a short pause, since it may be in the
//! middle of the transfer a NOTIFY started. Bounded: a timeout per query, the targets of a zone
//! asked one after another, a few zones at once; never on the DNS path.

use super::dns_query::{UdpExchange, UdpFailure, new_query};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use std::net::SocketAddr;
use std::time::Duration;

/// The checker's settings.
#[derive(Clone, Debug)]
pub struct SecondaryChecker {
    /// Per query.
    pub timeout: Duration,
    /// Pause before asking a secondary that is behind once more.
    pub settle: Duration,
}

/// What one secondary said: the serial it serves, or why there is none.
pub type SecondaryAnswer = Result<u32, String>;

/// RFC 1982: whether serial `a` is `b` or later.
pub fn serial_at_least(a: u32, b: u32) -> bool {
    a == b || (a.wrapping_sub(b) as i32) > 0
}

impl SecondaryChecker {
    /// Asks every target for `domain`'s SOA; `serial` is the zone's.
    pub async fn check(
        &self,
        domain: &str,
        targets: &[SocketAddr],
        serial: u32,
    ) -> Vec<(SocketAddr, SecondaryAnswer)> {
        let mut out = Vec::new();
        for t in targets {
            let mut answer = self.soa_serial(*t, domain).await;
            if matches!(answer, Ok(s) if !serial_at_least(s, serial)) {
                tokio::time::sleep(self.settle).await;
                answer = self.soa_serial(*t, domain).await;
            }
            out.push((*t, answer));
        }
        out
    }

    /// The serial `server` serves for `domain` (lowercase, no trailing dot).
    pub async fn soa_serial(&self, server: SocketAddr, domain: &str) -> SecondaryAnswer {
        let qname = Name::from_ascii(format!("{domain}."))
            .map_err(|e| format!("invalid name {domain}: {e}"))?;
        let (id, question, msg) = new_query(qname.clone(), RecordType::SOA, false);
        let bytes = msg.to_vec().map_err(|e| format!("encoding: {e}"))?;
        let ex = UdpExchange::connect(server)
            .await
            .map_err(|e| e.to_string())?;
        let mut last = String::new();
        // one retransmission, each with the full timeout
        for _ in 0..2 {
            match ex.ask(&bytes, id, &question, self.timeout).await {
                Err(UdpFailure::Timeout) => last = format!("no answer within {:?}", self.timeout),
                Err(UdpFailure::Recv(e)) => last = e.to_string(),
                Err(UdpFailure::Send(e)) => return Err(e.to_string()),
                Ok(m) => return serial_of(&m, &qname),
            }
        }
        Err(last)
    }
}

/// The serial of an authoritative SOA answer for `apex`.
fn serial_of(m: &Message, apex: &Name) -> SecondaryAnswer {
    if m.metadata.response_code != ResponseCode::NoError {
        return Err(format!(
            "answers {} (does it have the zone?)",
            m.metadata.response_code
        ));
    }
    if !m.metadata.authoritative {
        return Err("answers without authority (it does not serve the zone)".into());
    }
    m.answers
        .iter()
        .find_map(|r| match &r.data {
            RData::SOA(soa) if r.name == *apex => Some(soa.serial),
            _ => None,
        })
        .ok_or_else(|| "answers without the zone's SOA".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{MessageType, OpCode};
    use hickory_proto::rr::Record;
    use hickory_proto::rr::rdata::SOA;

    /// A UDP server on loopback answering each query with `reply(query)`.
    async fn server(reply: fn(Message) -> Option<Message>) -> SocketAddr {
        let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = sock.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            while let Ok((n, peer)) = sock.recv_from(&mut buf).await {
                let q = Message::from_vec(&buf[..n]).unwrap();
                if let Some(r) = reply(q) {
                    let _ = sock.send_to(&r.to_vec().unwrap(), peer).await;
                }
            }
        });
        addr
    }

    fn soa_reply(q: Message, serial: u32, aa: bool) -> Message {
        let mut r = Message::new(q.metadata.id, MessageType::Response, OpCode::Query);
        r.metadata.authoritative = aa;
        r.add_query(q.queries[0].clone());
        let apex = q.queries[0].name().clone();
        let soa = SOA::new(
            Name::from_ascii("ns1.acme.example.").unwrap(),
            Name::from_ascii("hostmaster.acme.example.").unwrap(),
            serial,
            3600,
            600,
            86400,
            60,
        );
        r.add_answer(Record::from_rdata(apex, 300, RData::SOA(soa)));
        r
    }

    fn checker() -> SecondaryChecker {
        SecondaryChecker {
            timeout: Duration::from_millis(300),
            settle: Duration::from_millis(10),
        }
    }

    #[tokio::test]
    async fn serials_and_failures_of_secondaries() {
        let current = server(|q| Some(soa_reply(q, 7, true))).await;
        let behind = server(|q| Some(soa_reply(q, 5, true))).await;
        let lame = server(|q| Some(soa_reply(q, 7, false))).await;
        let refused = server(|q| {
            let mut r = Message::new(q.metadata.id, MessageType::Response, OpCode::Query);
            r.add_query(q.queries[0].clone());
            r.metadata.response_code = ResponseCode::Refused;
            Some(r)
        })
        .await;
        // answers with another id first (ignored), never with ours
        let spoofed = server(|q| {
            let mut r = soa_reply(q, 7, true);
            r.metadata.id = r.metadata.id.wrapping_add(1);
            Some(r)
        })
        .await;
        let silent = server(|_| None).await;
        let got = checker()
            .check(
                "acme.example",
                &[current, behind, lame, refused, spoofed, silent],
                7,
            )
            .await;
        assert_eq!(got[0], (current, Ok(7)));
        assert_eq!(got[1], (behind, Ok(5)));
        assert!(got[2].1.as_ref().unwrap_err().contains("without authority"));
        assert!(
            got[3].1.as_ref().unwrap_err().contains("Refused"),
            "{got:?}"
        );
        assert!(got[4].1.as_ref().unwrap_err().contains("no answer"));
        assert!(got[5].1.as_ref().unwrap_err().contains("no answer"));
    }

    #[test]
    fn serial_arithmetic() {
        assert!(serial_at_least(7, 7));
        assert!(serial_at_least(8, 7));
        assert!(!serial_at_least(6, 7));
        assert!(serial_at_least(1, u32::MAX), "wraps around");
        assert!(!serial_at_least(u32::MAX, 1));
    }
}
