//! One DNS query over UDP, shared by the operator's checkers (`delegated.rs` asks parent
//! nameservers for NS, `secondaries.rs` asks secondaries for SOA): the query built with a random
//! id (RFC 5452), a socket connected to the server, and a wait bounded by a deadline that keeps
//! only the reply that answers our question (same id, exactly our question).

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};
use std::net::SocketAddr;
use std::time::Duration;

/// A query id from the operating system's random source, so that an off-path attacker cannot
/// predict it (RFC 5452).
pub(super) fn query_id() -> u16 {
    let mut b = [0u8; 2];
    crate::random::fill(&mut b);
    u16::from_be_bytes(b)
}

/// Whether `m` is the response to our query: the same id, and exactly our question (name
/// compared without ASCII case, type and class), as RFC 5452 asks of a resolver.
pub(super) fn answers(m: &Message, id: u16, question: &Query) -> bool {
    m.metadata.id == id
        && m.metadata.message_type == MessageType::Response
        // Name's equality ignores ASCII case.
        && matches!(m.queries.as_slice(), [q] if q == question)
}

/// A query for `qname`/`rtype` with a fresh random id and RD set to `recursion`: the id, the
/// question (to match replies with [`answers`]) and the message.
pub(super) fn new_query(qname: Name, rtype: RecordType, recursion: bool) -> (u16, Query, Message) {
    let id = query_id();
    let question = Query::query(qname, rtype);
    let mut msg = Message::new(id, MessageType::Query, OpCode::Query);
    msg.metadata.recursion_desired = recursion;
    msg.add_query(question.clone());
    (id, question, msg)
}

/// Why a UDP exchange gave no answer.
#[derive(Debug)]
pub(super) enum UdpFailure {
    /// Sending the query failed.
    Send(std::io::Error),
    /// Receiving failed (on a connected socket, also an ICMP "port unreachable").
    Recv(std::io::Error),
    /// No reply answering the question within the timeout.
    Timeout,
}

/// A UDP socket on an ephemeral port of the server's address family, connected to the server.
pub(super) struct UdpExchange {
    sock: tokio::net::UdpSocket,
}

impl UdpExchange {
    pub(super) async fn connect(server: SocketAddr) -> std::io::Result<Self> {
        let bind: SocketAddr = if server.is_ipv4() {
            "0.0.0.0:0".parse().expect("address")
        } else {
            "[::]:0".parse().expect("address")
        };
        let sock = tokio::net::UdpSocket::bind(bind).await?;
        sock.connect(server).await?;
        Ok(UdpExchange { sock })
    }

    /// Sends `bytes` once and waits up to `timeout` for the reply that [`answers`] the query
    /// (`id`, `question`); datagrams that do not (spoofed, late, malformed) are skipped.
    pub(super) async fn ask(
        &self,
        bytes: &[u8],
        id: u16,
        question: &Query,
        timeout: Duration,
    ) -> Result<Message, UdpFailure> {
        self.sock.send(bytes).await.map_err(UdpFailure::Send)?;
        let mut buf = vec![0u8; 4096];
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let n = tokio::time::timeout_at(deadline, self.sock.recv(&mut buf))
                .await
                .map_err(|_| UdpFailure::Timeout)?
                .map_err(UdpFailure::Recv)?;
            match Message::from_vec(&buf[..n]) {
                Ok(m) if answers(&m, id, question) => return Ok(m),
                _ => continue, // not ours: keep waiting
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn query_ids_are_not_a_sequence() {
        let ids: Vec<u16> = (0..64).map(|_| query_id()).collect();
        let distinct: BTreeSet<u16> = ids.iter().copied().collect();
        // 64 random 16-bit values: a repeat is possible, many are not (p < 1e-6 for > 3).
        assert!(distinct.len() >= 61, "{ids:?}");
        let steps: BTreeSet<u16> = ids.windows(2).map(|w| w[1].wrapping_sub(w[0])).collect();
        assert!(
            steps.len() > 32,
            "ids advance by a few fixed steps: {ids:?}"
        );
    }
}
