//! The webhook provider's HTTP server (hyper, HTTP/1.1 with keep-alive): routes, media types,
//! body limits and the status codes ExternalDNS acts on (`provider/webhook/webhook.go`):
//! - `GET /` 200 with the exact media type and the domain filter (ExternalDNS exits if the
//!   Content-Type differs);
//! - `GET /records` 200, `POST /records` 204, `POST /adjustendpoints` 200: any other status is
//!   fatal to ExternalDNS except 500-510, which it retries next interval, so storage trouble is
//!   500 and only malformed input is 4xx: 400 bad JSON, 413 body over the cap, 415 a
//!   Content-Type that is not the webhook media type (or JSON), 406 an Accept that excludes it;
//! - `GET /healthz` 200 (the chart's probes); other paths 404, other methods 405.
//!
//! Requests are handled one at a time against the store (ExternalDNS sends one at a time), so
//! a read-modify-write never interleaves with another.

use super::protocol::{Changes, Endpoint, MEDIA_TYPE, Refusal, ZoneScope};
use super::store::Store;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{ACCEPT, ALLOW, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{Mutex, Semaphore};

/// ExternalDNS's own default cap (`--webhook-provider-max-body-size`).
pub const DEFAULT_MAX_BODY: usize = 32 << 20;
/// Refusals logged per request at most (the rest are counted in one line).
const LOG_PER_REQUEST: usize = 20;
/// Distinct refusals remembered, so a record refused every interval is logged once.
const REMEMBERED: usize = 10_000;

/// The webhook's shared state.
pub struct Webhook {
    pub scope: ZoneScope,
    pub store: Store,
    pub max_body: usize,
    /// Held for each request that reads or writes the store.
    lock: Mutex<()>,
    seen: std::sync::Mutex<HashSet<String>>,
}

impl Webhook {
    pub fn new(scope: ZoneScope, store: Store, max_body: usize) -> Self {
        Self {
            scope,
            store,
            max_body,
            lock: Mutex::new(()),
            seen: Default::default(),
        }
    }

    /// Logs refusals: new ones as warnings (at most `LOG_PER_REQUEST` per request), repeats of
    /// ones already logged at debug level.
    fn log_refusals(&self, refused: &[Refusal]) {
        let mut seen = self.seen.lock().expect("not poisoned");
        if seen.len() > REMEMBERED {
            seen.clear();
        }
        let mut logged = 0;
        let mut more = 0;
        for r in refused {
            let line = r.to_string();
            if !seen.insert(line.clone()) {
                tracing::debug!(refused = %line, "record refused again");
            } else if logged < LOG_PER_REQUEST {
                tracing::warn!(op = r.op, record = %r.record, reason = %r.reason, "record refused; the rest of the batch is applied");
                logged += 1;
            } else {
                more += 1;
            }
        }
        if more > 0 {
            tracing::warn!(more, "more records refused in this request");
        }
    }
}

fn reply(status: StatusCode, ctype: &'static str, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(ctype));
    r
}

fn text(status: StatusCode, msg: impl Into<String>) -> Response<Full<Bytes>> {
    let mut m = msg.into();
    m.push('\n');
    reply(status, "text/plain; charset=utf-8", m)
}

fn json<T: serde::Serialize>(value: &T) -> Response<Full<Bytes>> {
    match serde_json::to_vec(value) {
        Ok(body) => reply(StatusCode::OK, MEDIA_TYPE, body),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("encoding: {e}")),
    }
}

/// One media range of an Accept or Content-Type header: type/subtype and its parameters.
fn media(range: &str) -> (String, Vec<(String, String)>) {
    let mut parts = range.split(';');
    let essence = parts.next().unwrap_or("").trim().to_ascii_lowercase();
    let params = parts
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| {
            (
                k.trim().to_ascii_lowercase(),
                v.trim().trim_matches('"').to_string(),
            )
        })
        .collect();
    (essence, params)
}

/// Whether a media type is the webhook's (version 1; a missing version is taken as 1) or
/// plain JSON.
fn is_ours(essence: &str, params: &[(String, String)]) -> bool {
    match essence {
        "application/external.dns.webhook+json" => params
            .iter()
            .find(|(k, _)| k == "version")
            .is_none_or(|(_, v)| v == "1"),
        "application/json" => true,
        _ => false,
    }
}

/// A Content-Type the provider reads: absent, the webhook media type or JSON.
pub fn content_type_ok(value: Option<&str>) -> bool {
    value.is_none_or(|v| {
        let (essence, params) = media(v);
        is_ours(&essence, &params)
    })
}

/// An Accept header that admits the webhook media type: absent, or any range naming it (or
/// JSON, `application/*`, `*/*`) without `q=0`.
pub fn accept_ok(value: Option<&str>) -> bool {
    value.is_none_or(|v| {
        v.split(',').any(|range| {
            let (essence, params) = media(range);
            let q0 = params
                .iter()
                .any(|(k, v)| k == "q" && v.parse::<f32>().is_ok_and(|q| q == 0.0));
            !q0 && (is_ours(&essence, &params) || essence == "application/*" || essence == "*/*")
        })
    })
}

fn header(req: &Request<Incoming>, name: hyper::header::HeaderName) -> Option<&str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// Reads a JSON body of at most `max` bytes: 413 past the cap, 400 when it does not parse.
async fn read_json<T: serde::de::DeserializeOwned>(
    req: Request<Incoming>,
    max: usize,
) -> Result<T, Response<Full<Bytes>>> {
    let declared = header(&req, CONTENT_LENGTH).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(text(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body over {max} bytes"),
        ));
    }
    let body = Limited::new(req.into_body(), max);
    let collected = tokio::time::timeout(Duration::from_secs(30), body.collect()).await;
    let bytes = match collected {
        Err(_) => {
            return Err(text(
                StatusCode::REQUEST_TIMEOUT,
                "request body not received within 30 s",
            ));
        }
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => {
            return Err(text(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body over {max} bytes"),
            ));
        }
        Ok(Err(e)) => return Err(text(StatusCode::BAD_REQUEST, format!("reading body: {e}"))),
        Ok(Ok(c)) => c.to_bytes(),
    };
    serde_json::from_slice(&bytes)
        .map_err(|e| text(StatusCode::BAD_REQUEST, format!("invalid JSON: {e}")))
}

/// Routes one request.
pub async fn handle(hook: Arc<Webhook>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    let allow = |methods: &'static str| {
        let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static(methods));
        r
    };
    let route = match path.as_str() {
        "/" | "/records" | "/adjustendpoints" | "/healthz" => path.as_str(),
        _ => return text(StatusCode::NOT_FOUND, "not found"),
    };
    match (route, &method) {
        ("/healthz", &Method::GET) => return text(StatusCode::OK, "ok"),
        ("/healthz", _) => return allow("GET"),
        ("/" | "/records", m)
            if m != Method::GET && !(route == "/records" && m == Method::POST) =>
        {
            return allow(if route == "/" { "GET" } else { "GET, POST" });
        }
        ("/adjustendpoints", m) if m != Method::POST => return allow("POST"),
        _ => {}
    }
    if !accept_ok(header(&req, ACCEPT)) {
        return text(
            StatusCode::NOT_ACCEPTABLE,
            format!("this provider answers {MEDIA_TYPE}"),
        );
    }
    if method == Method::POST && !content_type_ok(header(&req, CONTENT_TYPE)) {
        return text(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("send {MEDIA_TYPE}"),
        );
    }
    match (route, method) {
        ("/", _) => json(&hook.scope.filter()),
        ("/records", Method::GET) => {
            let _guard = hook.lock.lock().await;
            match hook.store.load().await {
                Ok(records) => json(&records.values().collect::<Vec<&Endpoint>>()),
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the records");
                    text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
                }
            }
        }
        ("/records", _) => {
            let changes: Changes = match read_json(req, hook.max_body).await {
                Ok(c) => c,
                Err(r) => return r,
            };
            let _guard = hook.lock.lock().await;
            let before = match hook.store.load().await {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the records; changes not applied");
                    return text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
                }
            };
            let counts = (
                changes.create.len(),
                changes.update_new.len(),
                changes.delete.len(),
            );
            let mut records = before.clone();
            let (refused, notes) = hook.scope.apply(&mut records, changes);
            hook.log_refusals(&refused);
            for n in notes {
                tracing::warn!(note = %n, "record stored");
            }
            if records == before {
                return reply(StatusCode::NO_CONTENT, MEDIA_TYPE, Bytes::new());
            }
            match hook.store.save(&before, &records).await {
                Ok(()) => {
                    tracing::info!(
                        create = counts.0,
                        update = counts.1,
                        delete = counts.2,
                        refused = refused.len(),
                        records = records.len(),
                        "changes applied"
                    );
                    reply(StatusCode::NO_CONTENT, MEDIA_TYPE, Bytes::new())
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot store the records; ExternalDNS retries next interval");
                    text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
                }
            }
        }
        (_, _) => {
            let desired: Option<Vec<Endpoint>> = match read_json(req, hook.max_body).await {
                Ok(d) => d,
                Err(r) => return r,
            };
            let (keep, refused) = hook.scope.adjust(desired.unwrap_or_default());
            hook.log_refusals(&refused);
            json(&keep)
        }
    }
}

/// Serves the webhook on `listener` until the process exits; with `health_only`, only
/// `/healthz` (everything else is 404).
pub async fn run(listener: TcpListener, hook: Arc<Webhook>, health_only: bool) {
    // localhost sidecar: a handful of connections is plenty; more are closed on accept
    let slots = Arc::new(Semaphore::new(64));
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            drop(stream);
            continue;
        };
        let hook = hook.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let hook = hook.clone();
                async move {
                    if health_only && req.uri().path() != "/healthz" {
                        return Ok(text(StatusCode::NOT_FOUND, "not found"));
                    }
                    Ok::<_, std::convert::Infallible>(handle(hook, req).await)
                }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(30))
                .max_buf_size(64 * 1024)
                .serve_connection(TokioIo::new(stream), service);
            let _ = conn.await;
            drop(permit);
        });
    }
}

/// Binds `addr`; returns the listener and its bound address.
pub async fn bind(addr: SocketAddr) -> std::io::Result<(TcpListener, SocketAddr)> {
    let l = TcpListener::bind(addr).await?;
    let a = l.local_addr()?;
    Ok((l, a))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        assert!(content_type_ok(None));
        assert!(content_type_ok(Some(MEDIA_TYPE)));
        assert!(content_type_ok(Some(
            "application/external.dns.webhook+json; version=1"
        )));
        assert!(content_type_ok(Some("application/json; charset=utf-8")));
        assert!(!content_type_ok(Some(
            "application/external.dns.webhook+json;version=2"
        )));
        assert!(!content_type_ok(Some("text/plain")));
        assert!(!content_type_ok(Some("application/x-www-form-urlencoded")));
    }

    #[test]
    fn accept_headers() {
        assert!(accept_ok(None));
        assert!(accept_ok(Some(MEDIA_TYPE)));
        assert!(accept_ok(Some("*/*")));
        assert!(accept_ok(Some("text/html, application/*;q=0.5")));
        assert!(!accept_ok(Some("text/html")));
        assert!(!accept_ok(Some(
            "application/external.dns.webhook+json;version=2"
        )));
        assert!(!accept_ok(Some("application/json;q=0")));
    }
}
