//! DNS over HTTPS (RFC 8484): our own HTTP/2 listener on hyper, answering `/dns-query` by GET
//! (`?dns=` base64url) and POST (`application/dns-message`) with the same responder as every
//! other transport. hickory-server 0.26.3's DoH handler refuses GET ("GET unimplemented"),
//! which RFC 8484 §4.1 says a server MUST implement, so this transport is not hickory's (see
//! docs/architecture.md). The HTTP side is pure ([`answer_http`]); [`serve`] is the I/O.

use super::policy::Policy;
use super::responder::{Answer, Client, Transport, decide_for, encode};
use super::server::{ConnSlot, MAX_TCP_CONNECTIONS, SharedZones, TcpConnections};
use crate::metrics::ServerMetrics;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{ALLOW, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The path RFC 8484 §6 suggests and clients default to.
pub const PATH: &str = "/dns-query";
/// The media type of DNS messages (RFC 8484 §6).
pub const MEDIA_TYPE: &str = "application/dns-message";
/// Concurrent HTTP/2 streams per connection (what clients such as dnsperf and browsers keep).
pub const MAX_STREAMS: u32 = 256;
/// A DNS message is at most 65 535 bytes (RFC 8484 §6: the same limit as over TCP).
const MAX_MESSAGE: usize = 65_535;

/// What the listener needs to answer.
pub struct DohContext {
    pub zones: SharedZones,
    pub metrics: Arc<ServerMetrics>,
    pub policy: Arc<Policy>,
}

/// The request as HTTP gave it, before any DNS: method, path and query string, the
/// Content-Type, and the body (empty for GET).
pub struct HttpRequest<'a> {
    pub method: &'a Method,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub content_type: Option<&'a [u8]>,
    pub body: &'a [u8],
}

/// The DNS message of a DoH request, or the HTTP status (and reason) to answer instead.
pub fn dns_message(req: &HttpRequest<'_>) -> Result<Vec<u8>, (StatusCode, &'static str)> {
    if req.path != PATH {
        return Err((
            StatusCode::NOT_FOUND,
            "not found: DNS queries go to /dns-query",
        ));
    }
    let message = match *req.method {
        Method::GET => {
            let value = req
                .query
                .unwrap_or("")
                .split('&')
                .find_map(|kv| kv.strip_prefix("dns="))
                .ok_or((StatusCode::BAD_REQUEST, "GET needs the dns= parameter"))?;
            // base64url without padding (RFC 8484 §4.1); padding is tolerated
            URL_SAFE_NO_PAD
                .decode(value.trim_end_matches("%3D").trim_end_matches('='))
                .map_err(|_| (StatusCode::BAD_REQUEST, "dns= is not base64url"))?
        }
        Method::POST => {
            let media = req.content_type.unwrap_or(b"");
            let media = media.split(|b| *b == b';').next().unwrap_or(b"");
            if !media
                .trim_ascii()
                .eq_ignore_ascii_case(MEDIA_TYPE.as_bytes())
            {
                return Err((
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "POST needs Content-Type: application/dns-message",
                ));
            }
            req.body.to_vec()
        }
        _ => return Err((StatusCode::METHOD_NOT_ALLOWED, "only GET and POST")),
    };
    if message.len() > MAX_MESSAGE {
        return Err((
            StatusCode::PAYLOAD_TOO_LARGE,
            "a DNS message is at most 65535 bytes",
        ));
    }
    Ok(message)
}

/// The HTTP response to a DoH request from `client`: 200 with the DNS answer (and Cache-Control
/// `max-age` of its smallest TTL, RFC 8484 §5.1), or a 4xx without a DNS message when there is
/// no request to answer (a message the responder drops, as it does over TCP).
pub fn answer_http(
    zones: &super::ZoneSet,
    req: &HttpRequest<'_>,
    client: &Client<'_>,
) -> (Response<Full<Bytes>>, Option<super::Summary>) {
    let message = match dns_message(req) {
        Ok(m) => m,
        Err((status, why)) => return (error(status, why), None),
    };
    let Some(answer) = decide_for(zones, &message, Transport::Tcp, client) else {
        return (error(StatusCode::BAD_REQUEST, "not a DNS query"), None);
    };
    let max_age = match &answer {
        Answer::Message { message, .. } => message
            .answers
            .iter()
            .chain(message.authorities.iter())
            .map(|r| r.ttl)
            .min(),
        Answer::Bytes(..) => None,
    };
    let Some((bytes, summary)) = encode(answer) else {
        return (error(StatusCode::BAD_REQUEST, "not a DNS query"), None);
    };
    let mut resp = Response::builder()
        .status(StatusCode::OK)
        .header(CONTENT_TYPE, MEDIA_TYPE)
        .header(CONTENT_LENGTH, bytes.len());
    if let Some(ttl) = max_age {
        resp = resp.header(CACHE_CONTROL, format!("max-age={ttl}"));
    }
    let resp = resp
        .body(Full::new(Bytes::from(bytes)))
        .expect("valid response parts");
    (resp, Some(summary))
}

fn error(status: StatusCode, why: &'static str) -> Response<Full<Bytes>> {
    let mut b = Response::builder()
        .status(status)
        .header(CONTENT_TYPE, "text/plain");
    if status == StatusCode::METHOD_NOT_ALLOWED {
        b = b.header(ALLOW, "GET, POST");
    }
    b.body(Full::new(Bytes::from_static(why.as_bytes())))
        .expect("valid response parts")
}

/// One HTTP request off the wire: its body read up to the message limit, then answered.
async fn handle(
    req: Request<Incoming>,
    peer: SocketAddr,
    ctx: Arc<DohContext>,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    let body = if parts.method == Method::POST {
        match Limited::new(body, MAX_MESSAGE).collect().await {
            Ok(b) => b.to_bytes(),
            Err(_) => {
                return Ok(error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "a DNS message is at most 65535 bytes",
                ));
            }
        }
    } else {
        Bytes::new()
    };
    let http = HttpRequest {
        method: &parts.method,
        path: parts.uri.path(),
        query: parts.uri.query(),
        content_type: parts.headers.get(CONTENT_TYPE).map(|v| v.as_bytes()),
        body: &body,
    };
    let client = Client {
        ip: Some(peer.ip()),
        policy: &ctx.policy,
        now: crate::publish::unix_now(),
    };
    let (resp, summary) = answer_http(&ctx.zones.load(), &http, &client);
    if let Some(summary) = summary {
        super::server::record(&ctx.metrics, &summary, "https", started);
    }
    Ok(resp)
}

/// Accepts DoH connections on `listener` until the process exits: the TLS handshake within
/// `timeout`, then HTTP/2 (ALPN `h2`), many streams at once; a connection with no request for
/// `timeout` is closed (HTTP/2 GOAWAY). Handshake and HTTP/2 failures are network log events
/// (counted, summarised). At most 1 024 connections: a new one closes the one idle longest
/// (the same table as plain TCP and DoT).
pub async fn serve(
    listener: tokio::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    timeout: Duration,
    ctx: Arc<DohContext>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let conns = Arc::new(TcpConnections::new());
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // EMFILE and the like: wait rather than spin
                tracing::warn!(error = %e, "accepting a DoH connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let (id, slot, evicted) = conns.open(MAX_TCP_CONNECTIONS);
        if evicted {
            ctx.metrics.tls_evicted.inc();
        }
        let (acceptor, ctx, conns) = (acceptor.clone(), ctx.clone(), conns.clone());
        tokio::spawn(async move {
            tokio::select! {
                _ = connection(tcp, peer, acceptor, timeout, ctx, &conns, &slot) => {}
                _ = slot.close.notified() => {}
            }
            conns.close(id);
        });
    }
}

/// One DoH connection: the TLS handshake, then HTTP/2 until it ends or is idle for `timeout`
/// (its slot in the connection table is touched while requests come).
async fn connection(
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    acceptor: tokio_rustls::TlsAcceptor,
    timeout: Duration,
    ctx: Arc<DohContext>,
    conns: &TcpConnections,
    slot: &ConnSlot,
) {
    let stream = match tokio::time::timeout(timeout, acceptor.accept(tcp)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::warn!(%peer, error = %e, "DoH TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::warn!(%peer, "DoH TLS handshake timed out");
            return;
        }
    };
    // milliseconds since `t0` of the last request
    let last = Arc::new(AtomicU64::new(0));
    let t0 = Instant::now();
    let seen = last.clone();
    let service = hyper::service::service_fn(move |req| {
        seen.store(t0.elapsed().as_millis() as u64, Ordering::Relaxed);
        handle(req, peer, ctx.clone())
    });
    let conn = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_STREAMS)
        .keep_alive_interval(Some(timeout))
        .keep_alive_timeout(timeout)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    let mut tick = tokio::time::interval(timeout / 4);
    let mut closing = false;
    loop {
        tokio::select! {
            done = conn.as_mut() => {
                if let Err(e) = done {
                    tracing::warn!(%peer, error = %e, "DoH connection failed");
                }
                return;
            }
            _ = tick.tick(), if !closing => {
                let idle = (t0.elapsed().as_millis() as u64)
                    .saturating_sub(last.load(Ordering::Relaxed));
                if idle >= timeout.as_millis() as u64 {
                    conn.as_mut().graceful_shutdown();
                    closing = true;
                } else if idle < (timeout / 4).as_millis() as u64 {
                    conns.touch(slot);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::compiled::{CompiledZone, ZoneSet};
    use crate::zone::ZoneData;
    use hickory_proto::op::{Message, MessageType, OpCode, Query};
    use hickory_proto::rr::{Name, RData, RecordType};

    fn zones() -> ZoneSet {
        let mut d = ZoneData::acme_example();
        d.add(
            Name::from_ascii("www.acme.example.com.").unwrap(),
            300,
            RData::A("192.0.2.3".parse().unwrap()),
        );
        ZoneSet::new([Arc::new(CompiledZone::build(&d, 1))])
    }

    fn query(name: &str) -> Vec<u8> {
        let mut q = Message::new(0, MessageType::Query, OpCode::Query);
        q.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
        q.to_vec().unwrap()
    }

    fn ask(
        method: Method,
        path: &str,
        query: Option<&str>,
        ctype: Option<&str>,
        body: &[u8],
    ) -> (StatusCode, Option<Message>, Option<String>) {
        let policy = Policy::default();
        let client = Client {
            ip: Some("192.0.2.1".parse().unwrap()),
            policy: &policy,
            now: 0,
        };
        let req = HttpRequest {
            method: &method,
            path,
            query,
            content_type: ctype.map(str::as_bytes),
            body,
        };
        let (resp, _) = answer_http(&zones(), &req, &client);
        let status = resp.status();
        let cache = resp
            .headers()
            .get(CACHE_CONTROL)
            .map(|v| v.to_str().unwrap().to_string());
        let is_dns =
            resp.headers().get(CONTENT_TYPE).map(|v| v.as_bytes()) == Some(MEDIA_TYPE.as_bytes());
        let body = futures::executor::block_on(resp.into_body().collect())
            .unwrap()
            .to_bytes();
        let msg = is_dns.then(|| Message::from_vec(&body).expect("the answer parses"));
        (status, msg, cache)
    }

    /// GET (base64url, with or without padding) and POST give the same answer, with
    /// Cache-Control of the answer's TTL; NXDOMAIN is a 200 too (RFC 8484 §4.2.1).
    #[test]
    fn get_and_post_answer_alike() {
        let q = query("www.acme.example.com.");
        let b64 = URL_SAFE_NO_PAD.encode(&q);
        let padded = base64::engine::general_purpose::URL_SAFE.encode(&q);
        let (s1, get, cache) = ask(
            Method::GET,
            PATH,
            Some(&format!("ct=x&dns={b64}")),
            None,
            b"",
        );
        let (s2, post, _) = ask(Method::POST, PATH, None, Some(MEDIA_TYPE), &q);
        let (s3, padded, _) = ask(Method::GET, PATH, Some(&format!("dns={padded}")), None, b"");
        assert_eq!(
            (s1, s2, s3),
            (StatusCode::OK, StatusCode::OK, StatusCode::OK)
        );
        let (get, post, padded) = (get.unwrap(), post.unwrap(), padded.unwrap());
        assert_eq!(get.answers.len(), 1);
        assert_eq!(get.to_vec().unwrap(), post.to_vec().unwrap());
        assert_eq!(get.to_vec().unwrap(), padded.to_vec().unwrap());
        assert_eq!(cache.as_deref(), Some("max-age=300"));
        let nx = query("nx.acme.example.com.");
        let (s, m, _) = ask(Method::POST, PATH, None, Some(MEDIA_TYPE), &nx);
        assert_eq!(s, StatusCode::OK);
        assert_eq!(
            m.unwrap().metadata.response_code,
            hickory_proto::op::ResponseCode::NXDomain
        );
    }

    /// Everything that is not a DoH query gets its HTTP status and no DNS message.
    #[test]
    fn http_errors() {
        let q = query("www.acme.example.com.");
        let b64 = URL_SAFE_NO_PAD.encode(&q);
        for (method, path, qs, ctype, body, want) in [
            (
                Method::GET,
                "/other",
                Some(format!("dns={b64}")),
                None,
                &b""[..],
                StatusCode::NOT_FOUND,
            ),
            (Method::GET, PATH, None, None, b"", StatusCode::BAD_REQUEST),
            (
                Method::GET,
                PATH,
                Some("dns=%%%".to_string()),
                None,
                b"",
                StatusCode::BAD_REQUEST,
            ),
            (
                Method::POST,
                PATH,
                None,
                Some("text/plain"),
                &q[..],
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ),
            (
                Method::POST,
                PATH,
                None,
                None,
                &q[..],
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ),
            (
                Method::PUT,
                PATH,
                None,
                Some(MEDIA_TYPE),
                &q[..],
                StatusCode::METHOD_NOT_ALLOWED,
            ),
            // too short to be a DNS message: dropped over TCP, a 400 here
            (
                Method::POST,
                PATH,
                None,
                Some(MEDIA_TYPE),
                &[0x12; 11][..],
                StatusCode::BAD_REQUEST,
            ),
        ] {
            let (status, msg, _) = ask(method.clone(), path, qs.as_deref(), ctype, body);
            assert_eq!(status, want, "{method} {path} {qs:?} {ctype:?}");
            assert!(msg.is_none(), "{method} {path}: no DNS message");
        }
        // parameters on the media type are allowed
        let (s, m, _) = ask(
            Method::POST,
            PATH,
            None,
            Some("application/dns-message; charset=binary"),
            &q,
        );
        assert_eq!(s, StatusCode::OK);
        assert!(m.is_some());
    }
}
