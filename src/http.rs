//! The HTTP endpoint for probes and Prometheus: `/healthz`, `/readyz` and `/metrics`, GET and
//! HEAD, HTTP/1.1 with keep-alive (hyper). Nothing else is exposed: other paths are 404, other
//! methods 405. Shared by `serve` and the operator through [`Endpoint`]; started by
//! `process::serve_http`.
//!
//! It may face untrusted networks, so every connection is bounded: headers must arrive within
//! [`Limits::header_read_timeout`], a connection lives at most [`Limits::max_connection_age`]
//! (then closes after its current response), at most [`Limits::max_connections`] are open
//! (further ones are closed on accept), and request heads are capped at 16 KiB.

use crate::metrics::ServerMetrics;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{ALLOW, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::{JoinHandle, JoinSet};

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

/// Bounds on the endpoint's connections.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// A request's head must arrive within this time, or the connection is closed.
    pub header_read_timeout: Duration,
    /// After this time a connection closes once its current response is written; an idle
    /// keep-alive connection closes then too.
    pub max_connection_age: Duration,
    /// Open connections at most; more are closed as they are accepted.
    pub max_connections: usize,
    /// On shutdown, how long open connections get to finish before they are dropped.
    pub drain_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(5),
            max_connection_age: Duration::from_secs(60),
            max_connections: 256,
            drain_timeout: Duration::from_secs(5),
        }
    }
}

/// The largest request head (start line and headers) read, in bytes.
const MAX_HEAD: usize = 16 * 1024;

/// A running endpoint.
pub struct Server {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Server {
    /// Binds `addr` and serves in the background until [`Server::shutdown`].
    pub async fn bind(
        addr: SocketAddr,
        endpoint: Arc<dyn Endpoint>,
        limits: Limits,
    ) -> std::io::Result<Server> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(accept_loop(listener, endpoint, limits, stopped));
        Ok(Server { addr, stop, task })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, lets open connections finish their current request (up to
    /// [`Limits::drain_timeout`]) and returns when all are closed.
    pub async fn shutdown(self) {
        self.stop.send_replace(true);
        let _ = self.task.await;
    }
}

async fn accept_loop(
    listener: TcpListener,
    endpoint: Arc<dyn Endpoint>,
    limits: Limits,
    stopped: watch::Receiver<bool>,
) {
    let mut stop = stopped.clone();
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = until_true(&mut stop) => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        // out of file descriptors and the like: back off instead of spinning
                        tracing::debug!(error = %e, "HTTP accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    drop(stream);
                    continue;
                };
                let endpoint = endpoint.clone();
                let stopped = stopped.clone();
                conns.spawn(async move {
                    connection(stream, endpoint, limits, stopped).await;
                    drop(slot);
                });
            }
        }
    }
    drop(listener);
    let drained = async { while conns.join_next().await.is_some() {} };
    if tokio::time::timeout(limits.drain_timeout, drained)
        .await
        .is_err()
    {
        conns.abort_all();
    }
}

/// Resolves once `rx` holds `true` (or its sender is gone).
async fn until_true(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|v| *v).await;
}

async fn connection(
    stream: tokio::net::TcpStream,
    endpoint: Arc<dyn Endpoint>,
    limits: Limits,
    mut stopped: watch::Receiver<bool>,
) {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(MAX_HEAD)
        .max_headers(64)
        .keep_alive(true);
    let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
        let response = respond(endpoint.as_ref(), req.method(), req.uri().path());
        async move { Ok::<_, std::convert::Infallible>(response) }
    });
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    let age = tokio::time::sleep(limits.max_connection_age);
    tokio::pin!(age);
    // armed once the connection is asked to close: a client that stalls then is dropped
    let deadline = tokio::time::sleep(Duration::MAX);
    tokio::pin!(deadline);
    let mut closing = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "HTTP connection ended with an error");
                }
                return;
            }
            _ = &mut age, if !closing => {}
            _ = until_true(&mut stopped), if !closing => {}
            _ = &mut deadline, if closing => return,
        }
        // the age or shutdown fired: finish the current response, then close
        closing = true;
        conn.as_mut().graceful_shutdown();
        deadline
            .as_mut()
            .reset(tokio::time::Instant::now() + limits.drain_timeout);
    }
}

/// The response to `method path` (the path without its query). HEAD gets GET's headers;
/// hyper leaves out the body.
fn respond(endpoint: &dyn Endpoint, method: &Method, path: &str) -> Response<Full<Bytes>> {
    const TEXT: &str = "text/plain; charset=utf-8";
    const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    let (status, ctype, body) = if method != Method::GET && method != Method::HEAD {
        (
            StatusCode::METHOD_NOT_ALLOWED,
            TEXT,
            "method not allowed\n".to_string(),
        )
    } else {
        match path {
            "/healthz" => (StatusCode::OK, TEXT, "ok\n".to_string()),
            "/readyz" if endpoint.ready() => (StatusCode::OK, TEXT, "ready\n".to_string()),
            "/readyz" => (
                StatusCode::SERVICE_UNAVAILABLE,
                TEXT,
                endpoint.not_ready_reason().to_string(),
            ),
            "/metrics" => (StatusCode::OK, OPENMETRICS, endpoint.metrics()),
            _ => (StatusCode::NOT_FOUND, TEXT, "not found\n".to_string()),
        }
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(ctype));
    if status == StatusCode::METHOD_NOT_ALLOWED {
        headers.insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::time::Instant;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    struct Fake {
        ready: AtomicBool,
    }
    impl Endpoint for Fake {
        fn ready(&self) -> bool {
            self.ready.load(Ordering::Acquire)
        }
        fn not_ready_reason(&self) -> &'static str {
            "not ready: testing\n"
        }
        fn metrics(&self) -> String {
            "# TYPE up gauge\nup 1\n# EOF\n".into()
        }
    }

    async fn start(limits: Limits) -> (Server, Arc<Fake>) {
        let fake = Arc::new(Fake {
            ready: AtomicBool::new(false),
        });
        let server = Server::bind("127.0.0.1:0".parse().unwrap(), fake.clone(), limits)
            .await
            .unwrap();
        (server, fake)
    }

    /// One response read off a keep-alive stream: (status, headers lowercased, body).
    async fn read_response(
        s: &mut TcpStream,
        buf: &mut Vec<u8>,
        head_only: bool,
    ) -> (u16, Vec<(String, String)>, String) {
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 4096];
            let n = s.read(&mut chunk).await.unwrap();
            assert!(n > 0, "connection closed mid-response: {buf:?}");
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8(buf[..head_end].to_vec()).unwrap();
        let mut lines = head.split("\r\n");
        let status: u16 = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(": "))
            .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
            .collect();
        let len: usize = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .map(|(_, v)| v.parse().unwrap())
            .expect("content-length");
        let body_len = if head_only { 0 } else { len };
        while buf.len() < head_end + body_len {
            let mut chunk = [0u8; 4096];
            let n = s.read(&mut chunk).await.unwrap();
            assert!(n > 0, "connection closed mid-body");
            buf.extend_from_slice(&chunk[..n]);
        }
        let body = String::from_utf8(buf[head_end..head_end + body_len].to_vec()).unwrap();
        buf.drain(..head_end + body_len);
        (status, headers, body)
    }

    fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether the peer closed the connection within `within` (reads EOF or a reset).
    async fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
        let mut b = [0u8; 64];
        matches!(
            tokio::time::timeout(within, s.read(&mut b)).await,
            Ok(Ok(0)) | Ok(Err(_))
        )
    }

    #[tokio::test]
    async fn endpoints_keep_alive_and_head_on_one_connection() {
        let (server, fake) = start(Limits::default()).await;
        let mut s = TcpStream::connect(server.local_addr()).await.unwrap();
        let mut buf = Vec::new();
        // several requests, one connection, each answered in order
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let (status, _, body) = read_response(&mut s, &mut buf, false).await;
        assert_eq!((status, body.as_str()), (200, "ok\n"));
        s.write_all(b"GET /readyz?verbose=1 HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let (status, _, body) = read_response(&mut s, &mut buf, false).await;
        assert_eq!((status, body.as_str()), (503, "not ready: testing\n"));
        fake.ready.store(true, Ordering::Release);
        // HEAD: the headers of GET (same Content-Length), no body; the next response on the
        // connection parses only if no body bytes were sent
        s.write_all(b"HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let (status, headers, _) = read_response(&mut s, &mut buf, true).await;
        assert_eq!(status, 200);
        assert_eq!(
            header(&headers, "content-length"),
            Some("# TYPE up gauge\nup 1\n# EOF\n".len().to_string().as_str())
        );
        assert!(
            header(&headers, "content-type")
                .unwrap()
                .starts_with("application/openmetrics-text")
        );
        s.write_all(b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let (status, _, body) = read_response(&mut s, &mut buf, false).await;
        assert_eq!((status, body.as_str()), (200, "ready\n"));
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let (status, _, body) = read_response(&mut s, &mut buf, false).await;
        assert_eq!(
            (status, body.as_str()),
            (200, "# TYPE up gauge\nup 1\n# EOF\n")
        );
        assert!(buf.is_empty(), "nothing after the last response: {buf:?}");
        server.shutdown().await;
    }

    #[tokio::test]
    async fn unknown_paths_are_404_and_other_methods_405() {
        let (server, _) = start(Limits::default()).await;
        let mut s = TcpStream::connect(server.local_addr()).await.unwrap();
        let mut buf = Vec::new();
        s.write_all(b"GET /debug/pprof HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let (status, _, body) = read_response(&mut s, &mut buf, false).await;
        assert_eq!((status, body.as_str()), (404, "not found\n"));
        s.write_all(b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
            .await
            .unwrap();
        let (status, headers, _) = read_response(&mut s, &mut buf, false).await;
        assert_eq!(status, 405);
        assert_eq!(header(&headers, "allow"), Some("GET, HEAD"));
        server.shutdown().await;
    }

    #[tokio::test]
    async fn a_client_that_never_finishes_its_headers_is_cut_off() {
        let limits = Limits {
            header_read_timeout: Duration::from_millis(300),
            ..Limits::default()
        };
        let (server, _) = start(limits).await;
        let mut slow = TcpStream::connect(server.local_addr()).await.unwrap();
        slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        let t0 = Instant::now();
        assert!(
            closed_within(&mut slow, Duration::from_secs(5)).await,
            "the slow client was not cut off"
        );
        assert!(
            t0.elapsed() >= Duration::from_millis(250),
            "{:?}",
            t0.elapsed()
        );
        // while a well-behaved client is answered
        let mut s = TcpStream::connect(server.local_addr()).await.unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        assert_eq!(read_response(&mut s, &mut Vec::new(), false).await.0, 200);
        server.shutdown().await;
    }

    #[tokio::test]
    async fn idle_connections_age_out_and_the_limit_holds() {
        let limits = Limits {
            max_connection_age: Duration::from_millis(300),
            max_connections: 2,
            ..Limits::default()
        };
        let (server, _) = start(limits).await;
        let mut a = TcpStream::connect(server.local_addr()).await.unwrap();
        let mut b = TcpStream::connect(server.local_addr()).await.unwrap();
        // both slots taken: a third connection is closed at once, without an answer
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut c = TcpStream::connect(server.local_addr()).await.unwrap();
        let _ = c
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await;
        assert!(closed_within(&mut c, Duration::from_millis(250)).await);
        // idle keep-alive connections close at their age, freeing the slots
        assert!(closed_within(&mut a, Duration::from_secs(5)).await);
        assert!(closed_within(&mut b, Duration::from_secs(5)).await);
        let mut d = TcpStream::connect(server.local_addr()).await.unwrap();
        d.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        assert_eq!(read_response(&mut d, &mut Vec::new(), false).await.0, 200);
        server.shutdown().await;
    }

    #[tokio::test]
    async fn shutdown_finishes_open_connections_and_stops_accepting() {
        let (server, _) = start(Limits::default()).await;
        let addr = server.local_addr();
        let mut s = TcpStream::connect(addr).await.unwrap();
        let mut buf = Vec::new();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        assert_eq!(read_response(&mut s, &mut buf, false).await.0, 200);
        let t0 = Instant::now();
        server.shutdown().await;
        assert!(
            t0.elapsed() < Duration::from_secs(2),
            "an idle keep-alive connection delayed shutdown: {:?}",
            t0.elapsed()
        );
        assert!(closed_within(&mut s, Duration::from_secs(1)).await);
        assert!(TcpStream::connect(addr).await.is_err(), "still accepting");
    }
}
