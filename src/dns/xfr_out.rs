//! Writes a zone transfer's messages to a TCP stream (RFC 7766 framing), each within the write
//! timeout, and counts and logs the outcome. Refusals are logged at most a few times a second:
//! the network must not make the log grow without bound.

use super::xfr::{Kind, Outcome, Transfer};
use crate::metrics::{ServerMetrics, TransferLabels};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// Log lines about transfers per second at most (the rest are only counted).
const LOG_PER_SECOND: u64 = 5;
static LOG_WINDOW: AtomicU64 = AtomicU64::new(0);

/// Whether one more log line fits in this second's budget.
pub(crate) fn log_allowed() -> bool {
    let now = crate::publish::unix_now();
    let w = LOG_WINDOW.load(Ordering::Relaxed);
    let (sec, n) = (w >> 16, w & 0xffff);
    let next = if sec == now {
        (now << 16) | (n + 1)
    } else {
        (now << 16) | 1
    };
    if sec == now && n >= LOG_PER_SECOND {
        return false;
    }
    LOG_WINDOW
        .compare_exchange(w, next, Ordering::Relaxed, Ordering::Relaxed)
        .is_ok()
}

fn kind_label(k: Kind) -> &'static str {
    match k {
        Kind::Axfr => "axfr",
        Kind::IxfrFull => "ixfr_full",
        Kind::IxfrIncremental => "ixfr",
        Kind::IxfrCurrent => "ixfr_current",
        Kind::Error => "error",
    }
}

/// Sends every message of `transfer`; an error ends the connection.
pub async fn send<S: AsyncWriteExt + Unpin>(
    stream: &mut S,
    mut transfer: Transfer,
    peer: SocketAddr,
    metrics: &ServerMetrics,
    write_timeout: Duration,
) -> std::io::Result<()> {
    let started = std::time::Instant::now();
    let zone = transfer.zone.as_deref().unwrap_or("none").to_string();
    metrics
        .transfers
        .get_or_create(&TransferLabels {
            zone: zone.clone(),
            kind: kind_label(transfer.kind),
            outcome: transfer.outcome.as_str(),
        })
        .inc();
    let mut bytes = 0usize;
    while let Some(msg) = transfer.next_message(crate::publish::unix_now()) {
        let mut out = Vec::with_capacity(msg.len() + 2);
        out.extend_from_slice(&(msg.len() as u16).to_be_bytes());
        out.extend_from_slice(&msg);
        bytes += out.len();
        match tokio::time::timeout(write_timeout, stream.write_all(&out)).await {
            Ok(r) => r?,
            Err(_) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "transfer write timed out",
                ));
            }
        }
        metrics.transfer_messages.inc();
    }
    if log_allowed() {
        if transfer.outcome == Outcome::Sent {
            tracing::info!(%zone, %peer, kind = kind_label(transfer.kind), messages = transfer.messages, bytes, ms = started.elapsed().as_millis() as u64, "zone transfer sent");
        } else {
            tracing::info!(%zone, %peer, qtype = %transfer.qtype, outcome = transfer.outcome.as_str(), "zone transfer refused");
        }
    }
    Ok(())
}
