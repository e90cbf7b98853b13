//! NOTIFY (RFC 1996) to each zone's secondaries when its serial changes: one UDP NOTIFY per
//! `spec.transfer.notify` target, TSIG-signed when the zone has a key, retransmitted with
//! doubling waits (1 s, 2 s, 4 s, 8 s, 16 s: RFC 1996 §3.6's five retransmissions, sooner)
//! until the secondary answers or we give up. A newer serial replaces a pending NOTIFY.
//! Counted in `zonegate_notifies_total`; logged at most a few lines a second.

use crate::dns::ZoneSet;
use crate::dns::tsig::{self, ResponseVerifier};
use crate::metrics::{NotifyLabels, ServerMetrics};
use crate::zone::transfer::{KeyRequirement, TsigKey};
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, Record, RecordType};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

/// Retransmissions after the first NOTIFY (RFC 1996 §3.6 suggests 5).
const RETRIES: u32 = 5;
/// Wait for an answer to the first NOTIFY; doubled after each retransmission.
const FIRST_WAIT: Duration = Duration::from_secs(1);

/// One zone version to announce.
#[derive(Clone, Debug)]
struct Announcement {
    zone: Name,
    serial: u32,
    soa: Record,
    targets: Vec<SocketAddr>,
    key: Option<TsigKey>,
}

/// Sends NOTIFY for every zone whose serial changes. Cheap to clone.
#[derive(Clone)]
pub struct Notifier {
    tx: mpsc::UnboundedSender<Vec<Announcement>>,
}

impl Notifier {
    /// Starts the notifier task (on the current tokio runtime).
    pub fn spawn(metrics: Arc<ServerMetrics>) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(rx, metrics));
        Self { tx }
    }

    /// Called with each new snapshot: announces the zones whose serial (or targets or key)
    /// changed since the last call.
    pub fn published(&self, set: &ZoneSet) {
        let mut out = Vec::new();
        for zone in set.zones() {
            let Some(policy) = set.transfer(zone.origin()) else {
                continue;
            };
            if policy.notify.is_empty() {
                continue;
            }
            let key = match &policy.key {
                KeyRequirement::None => None,
                KeyRequirement::Key(k) => Some(k.clone()),
                // the secondaries expect signed NOTIFY: sending unsigned ones would be refused
                KeyRequirement::Unusable(_) => continue,
            };
            let Some(soa) = zone.soa().first().cloned() else {
                continue;
            };
            out.push(Announcement {
                zone: zone.origin().clone(),
                serial: zone.serial(),
                soa,
                targets: policy.notify.clone(),
                key,
            });
        }
        let _ = self.tx.send(out);
    }
}

/// A NOTIFY under way: the serial, the key's secret it was signed with, its task.
type Pending = (u32, Option<Vec<u8>>, tokio::task::JoinHandle<()>);

async fn run(mut rx: mpsc::UnboundedReceiver<Vec<Announcement>>, metrics: Arc<ServerMetrics>) {
    // per (zone, target): the serial announced and its task
    let mut sent: HashMap<(Name, SocketAddr), Pending> = HashMap::new();
    while let Some(batch) = rx.recv().await {
        let mut live = std::collections::HashSet::new();
        for a in batch {
            for target in &a.targets {
                let k = (a.zone.clone(), *target);
                live.insert(k.clone());
                let key_id = a.key.as_ref().map(|k| k.secret.clone());
                if let Some((serial, kid, _)) = sent.get(&k)
                    && *serial == a.serial
                    && *kid == key_id
                {
                    continue;
                }
                if let Some((_, _, h)) = sent.remove(&k) {
                    h.abort(); // a newer serial replaces a pending NOTIFY
                }
                let h = tokio::spawn(notify_one(a.clone(), *target, metrics.clone()));
                sent.insert(k, (a.serial, key_id, h));
            }
        }
        sent.retain(|k, (_, _, h)| {
            let keep = live.contains(k);
            if !keep {
                h.abort();
            }
            keep
        });
    }
}

fn count(metrics: &ServerMetrics, zone: &Name, result: &'static str) {
    metrics
        .notifies
        .get_or_create(&NotifyLabels {
            zone: zone.to_ascii(),
            result,
        })
        .inc();
}

fn random_id() -> u16 {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 2];
    let _ = ring::rand::SystemRandom::new().fill(&mut b);
    u16::from_be_bytes(b)
}

/// The NOTIFY message for `a` with `id`.
fn message(a: &Announcement, id: u16) -> Vec<u8> {
    let mut m = Message::new(id, MessageType::Query, OpCode::Notify);
    m.metadata.authoritative = true;
    m.add_query(Query::query(a.zone.clone(), RecordType::SOA));
    // the SOA as a hint of the new serial (RFC 1996 §3.7)
    m.add_answer(a.soa.clone());
    m.to_vec().unwrap_or_default()
}

async fn notify_one(a: Announcement, target: SocketAddr, metrics: Arc<ServerMetrics>) {
    let bind: SocketAddr = if target.is_ipv4() {
        "0.0.0.0:0".parse().expect("constant")
    } else {
        "[::]:0".parse().expect("constant")
    };
    let sock = match UdpSocket::bind(bind).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(zone = %a.zone, %target, error = %e, "cannot open a socket for NOTIFY");
            count(&metrics, &a.zone, "given_up");
            return;
        }
    };
    let mut wait = FIRST_WAIT;
    let mut buf = vec![0u8; 4096];
    for attempt in 0..=RETRIES {
        let id = random_id();
        let mut msg = message(&a, id);
        let mut verifier = a.key.as_ref().map(|k| {
            let mac = tsig::sign_request(&mut msg, k, crate::publish::unix_now());
            ResponseVerifier::new(k.clone(), mac)
        });
        if attempt > 0 {
            count(&metrics, &a.zone, "retried");
        }
        if let Err(e) = sock.send_to(&msg, target).await
            && crate::dns::xfr_out::log_allowed()
        {
            tracing::info!(zone = %a.zone, %target, error = %e, "NOTIFY send failed");
        }
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let r = tokio::time::timeout_at(deadline, sock.recv_from(&mut buf)).await;
            let Ok(Ok((len, from))) = r else { break };
            let reply = &buf[..len];
            if from != target
                || len < 12
                || u16::from_be_bytes([reply[0], reply[1]]) != id
                || reply[2] & 0x80 == 0
            {
                continue; // not the answer: keep waiting
            }
            let rcode = ResponseCode::from_low(reply[3] & 0x0f);
            if let Some(v) = &mut verifier
                && rcode == ResponseCode::NoError
                && let Err(e) = v.verify(reply, crate::publish::unix_now())
            {
                if crate::dns::xfr_out::log_allowed() {
                    tracing::warn!(zone = %a.zone, %target, error = ?e, "NOTIFY answer failed TSIG verification; ignored");
                }
                continue;
            }
            if rcode == ResponseCode::NoError {
                count(&metrics, &a.zone, "acknowledged");
                tracing::debug!(zone = %a.zone, %target, serial = a.serial, "NOTIFY acknowledged");
            } else {
                count(&metrics, &a.zone, "error_reply");
                if crate::dns::xfr_out::log_allowed() {
                    tracing::warn!(zone = %a.zone, %target, serial = a.serial, rcode = %rcode, "secondary refused NOTIFY; check its ACL and key");
                }
            }
            return;
        }
        wait *= 2;
    }
    count(&metrics, &a.zone, "given_up");
    if crate::dns::xfr_out::log_allowed() {
        tracing::warn!(zone = %a.zone, %target, serial = a.serial, "NOTIFY not answered after {} tries; giving up (the secondary will find the serial at its next refresh)", RETRIES + 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::CompiledZone;
    use crate::zone::ZoneData;
    use crate::zone::transfer::{TransferPolicy, TsigAlgorithm};

    fn key() -> TsigKey {
        TsigKey {
            name: Name::from_ascii("xfr.zonegate.").unwrap(),
            algorithm: TsigAlgorithm::HmacSha256,
            secret: vec![3; 32],
        }
    }

    /// A fake secondary on a loopback socket: answers the second NOTIFY only (so one
    /// retransmission happens), checks the TSIG and the question, and reports the serials.
    #[tokio::test]
    async fn notify_is_signed_retried_and_acknowledged() {
        let secondary = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let target = secondary.local_addr().unwrap();
        let metrics = Arc::new(ServerMetrics::new());
        let notifier = Notifier::spawn(metrics.clone());
        let mut set = ZoneSet::new([Arc::new(CompiledZone::build(
            &ZoneData::acme_example(),
            2026120201,
        ))]);
        set.set_transfer(
            &Name::from_ascii("acme.example.com.").unwrap(),
            Arc::new(TransferPolicy {
                allow_from: vec![],
                notify: vec![target],
                key: KeyRequirement::Key(key()),
            }),
        );
        notifier.published(&set);
        let mut buf = vec![0u8; 4096];
        let mut seen = 0;
        loop {
            let (len, from) =
                tokio::time::timeout(Duration::from_secs(5), secondary.recv_from(&mut buf))
                    .await
                    .expect("a NOTIFY within 5 s")
                    .unwrap();
            let req = buf[..len].to_vec();
            let t = tsig::find(&req).unwrap().expect("signed");
            let tsig::Verified::Ok { request_mac, .. } =
                tsig::verify_request(&req, &t, Some(&key()), crate::publish::unix_now())
            else {
                panic!("bad signature")
            };
            let m = Message::from_vec(&req).unwrap();
            assert_eq!(m.metadata.op_code, OpCode::Notify);
            assert!(m.metadata.authoritative);
            assert_eq!(m.queries[0].query_type(), RecordType::SOA);
            assert_eq!(m.queries[0].name().to_ascii(), "acme.example.com.");
            seen += 1;
            if seen == 1 {
                continue; // drop the first: the notifier must retransmit
            }
            let mut resp = Message::new(m.metadata.id, MessageType::Response, OpCode::Notify);
            resp.metadata.authoritative = true;
            resp.queries = m.queries.clone();
            let mut bytes = resp.to_vec().unwrap();
            tsig::ResponseSigner::new(key(), request_mac)
                .sign(&mut bytes, crate::publish::unix_now());
            secondary.send_to(&bytes, from).await.unwrap();
            break;
        }
        // acknowledged, after one retry
        for _ in 0..50 {
            let text = metrics.encode();
            if text.contains(r#"result="acknowledged""#) {
                assert!(text.contains(r#"result="retried""#), "{text}");
                // the same serial again: nothing new is sent
                notifier.published(&set);
                let r = tokio::time::timeout(
                    Duration::from_millis(1500),
                    secondary.recv_from(&mut buf),
                )
                .await;
                assert!(r.is_err(), "NOTIFY repeated for an unchanged serial");
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("not acknowledged: {}", metrics.encode());
    }
}
