//! A tiny HTTP/1.1 endpoint for probes and Prometheus: `/healthz`, `/readyz`, `/metrics`.
//! Only GET, one request per connection; nothing else is exposed. Shared by `serve` and the
//! operator through [`Endpoint`].

use crate::metrics::ServerMetrics;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What a process exposes on its HTTP endpoint.
pub trait Endpoint: Send + Sync + 'static {
    /// Whether `/readyz` answers 200.
    fn ready(&self) -> bool;
    /// The `/readyz` body while not ready.
    fn not_ready_reason(&self) -> &'static str;
    /// The Prometheus text of `/metrics`.
    fn metrics(&self) -> String;
}

/// Shared health state of the DNS server.
#[derive(Debug, Default)]
pub struct Health {
    /// Set once the first complete data set is being served.
    pub ready: AtomicBool,
}

/// The DNS server's endpoint: its health and its metrics.
pub struct ServerEndpoint {
    pub health: Arc<Health>,
    pub metrics: Arc<ServerMetrics>,
}

impl Endpoint for ServerEndpoint {
    fn ready(&self) -> bool {
        self.health.ready.load(Ordering::Acquire)
    }
    fn not_ready_reason(&self) -> &'static str {
        "not ready: zones not loaded yet\n"
    }
    fn metrics(&self) -> String {
        self.metrics.encode()
    }
}

/// Binds `addr` and serves until the process exits. Returns the bound address.
pub async fn serve(addr: SocketAddr, endpoint: Arc<dyn Endpoint>) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            let endpoint = endpoint.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut len = 0;
                let read = tokio::time::timeout(Duration::from_secs(5), async {
                    while len < buf.len() {
                        let n = stream.read(&mut buf[len..]).await?;
                        if n == 0 {
                            break;
                        }
                        len += n;
                        if buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
                            break;
                        }
                    }
                    Ok::<_, std::io::Error>(())
                })
                .await;
                if !matches!(read, Ok(Ok(()))) {
                    return;
                }
                let head = String::from_utf8_lossy(&buf[..len]);
                let mut parts = head.split_whitespace();
                let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
                let path = path.split('?').next().unwrap_or("");
                let (status, ctype, body) = match (method, path) {
                    ("GET", "/healthz") => ("200 OK", "text/plain", "ok\n".to_string()),
                    ("GET", "/readyz") if endpoint.ready() => {
                        ("200 OK", "text/plain", "ready\n".to_string())
                    }
                    ("GET", "/readyz") => (
                        "503 Service Unavailable",
                        "text/plain",
                        endpoint.not_ready_reason().to_string(),
                    ),
                    ("GET", "/metrics") => (
                        "200 OK",
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        endpoint.metrics(),
                    ),
                    ("GET", _) => ("404 Not Found", "text/plain", "not found\n".to_string()),
                    _ => (
                        "405 Method Not Allowed",
                        "text/plain",
                        "method not allowed\n".to_string(),
                    ),
                };
                let resp = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(resp.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    Ok(bound)
}
