//! DNS over TLS (RFC 7858) and zone transfers over TLS (XoT, RFC 9103): our own accept loop
//! and TLS handshake (tokio-rustls, the shared certificate resolver), then the same stream
//! connection as plain TCP (`server::Connection`): RFC 7766 framing, the responder, AXFR and
//! IXFR streamed message by message with their TSIG MACs intact, idle and write-stall
//! timeouts, and at most 1 024 connections with the one idle longest closed for a new client.
//! hickory-server's DoT listener is not used: it queues at most 32 messages per request and
//! has no raw-bytes send, so a transfer of more than about 2 MiB or a TSIG-signed one cannot
//! go through it (see docs/architecture.md).

use super::policy::Policy;
use super::server::{Connection, MAX_TCP_CONNECTIONS, SharedZones, TcpConnections};
use crate::metrics::ServerMetrics;
use std::sync::Arc;
use std::time::Duration;

/// Accepts DoT connections on `listener` until the process exits.
pub async fn serve(
    listener: tokio::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    handshake_timeout: Duration,
    zones: SharedZones,
    metrics: Arc<ServerMetrics>,
    policy: Arc<Policy>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let conns = Arc::new(TcpConnections::new());
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // e.g. out of file descriptors under a flood: say so at most once a minute
                super::netlog::warn_limited(format_args!("DoT accept failed: {e}"));
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let (id, slot, evicted) = conns.open(MAX_TCP_CONNECTIONS);
        if evicted {
            metrics.tls_evicted.inc();
        }
        let (acceptor, zones, metrics, policy, conns) = (
            acceptor.clone(),
            zones.clone(),
            metrics.clone(),
            policy.clone(),
            conns.clone(),
        );
        tokio::spawn(async move {
            let _ = tcp.set_nodelay(true);
            let session = async {
                let stream =
                    match tokio::time::timeout(handshake_timeout, acceptor.accept(tcp)).await {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            tracing::warn!(%peer, error = %e, "DoT TLS handshake failed");
                            return Ok(());
                        }
                        Err(_) => {
                            tracing::warn!(%peer, "DoT TLS handshake timed out");
                            return Ok(());
                        }
                    };
                // RFC 9103 §9: zone transfers over TLS only with TLS 1.3
                let tls13 =
                    stream.get_ref().1.protocol_version() == Some(rustls::ProtocolVersion::TLSv1_3);
                Connection {
                    peer,
                    transport: "tls",
                    transfers: tls13,
                    zones: &zones,
                    metrics: &metrics,
                    policy: &policy,
                    conns: &conns,
                    slot: &slot,
                }
                .serve(stream)
                .await
            };
            let result = tokio::select! {
                r = session => r,
                _ = slot.close.notified() => Ok(()),
            };
            conns.close(id);
            if let Err(e) = result {
                tracing::trace!(error = %e, %peer, "DoT connection ended");
            }
        });
    }
}
