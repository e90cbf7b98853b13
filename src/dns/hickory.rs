//! The encrypted transports, started here with one certificate (reloaded when its files
//! change): DNS over QUIC (RFC 9250) served by `hickory_server::Server` with our own
//! `RequestHandler`, DNS over TLS with zone transfers (`dot.rs`) and DNS over HTTPS (`doh.rs`),
//! which are ours because hickory-server 0.26.3's cannot stream a large or TSIG-signed
//! transfer and refuses DoH GET. The handler gives the request bytes to the same responder the
//! UDP and TCP paths use (`responder::decide`) and sends the decided message through hickory's
//! encoder; nothing about answering differs by transport but the size limit (none below
//! 65 535 on these stream transports).

use super::policy::Policy;
use super::responder::{Answer, Client, Summary, Transport, decide_for};
use super::server::SharedZones;
use super::tls::{self, CertResolver};
use crate::metrics::ServerMetrics;
use hickory_proto::op::{Header, HeaderCounts, Message, MessageType, Metadata, ResponseCode};
use hickory_server::net::runtime::Time;
use hickory_server::net::xfer::Protocol;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::{MessageResponseBuilder, Queries};
use socket2::{Domain, Socket, Type};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A TLS handshake must finish within this, and a DoT/DoH/DoQ connection idle this long is
/// closed (hickory uses one timeout for both on DoT).
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// The `serve` flags of the encrypted listeners.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct EncryptedArgs {
    /// Address to answer DNS over TLS on (RFC 7858; port 853 by convention). Repeatable.
    #[arg(long, requires_all = ["tls_cert", "tls_key"])]
    pub tls_listen: Vec<SocketAddr>,
    /// Address to answer DNS over HTTPS on (RFC 8484, HTTP/2, path /dns-query; port 443 by
    /// convention). Repeatable.
    #[arg(long, requires_all = ["tls_cert", "tls_key"])]
    pub https_listen: Vec<SocketAddr>,
    /// Address to answer DNS over QUIC on (RFC 9250; UDP port 853 by convention). Repeatable.
    #[arg(long, requires_all = ["tls_cert", "tls_key"])]
    pub quic_listen: Vec<SocketAddr>,
    /// PEM certificate chain for --tls-listen, --https-listen and --quic-listen (leaf first).
    /// Re-read when it changes: a renewed certificate is served without a restart.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert (PKCS#8, PKCS#1 or SEC1).
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

impl EncryptedArgs {
    pub fn any(&self) -> bool {
        !(self.tls_listen.is_empty() && self.https_listen.is_empty() && self.quic_listen.is_empty())
    }
}

/// Loads the certificate, binds every encrypted listener and serves them until the process
/// exits. Returns the bound addresses (DoT, DoH, DoQ), useful with port 0.
pub async fn start(
    args: &EncryptedArgs,
    zones: SharedZones,
    metrics: Arc<ServerMetrics>,
    policy: Arc<Policy>,
) -> crate::error::Result<Vec<(&'static str, SocketAddr)>> {
    use crate::error::Error;
    if !args.any() {
        return Ok(Vec::new());
    }
    let (Some(cert), Some(key)) = (args.tls_cert.clone(), args.tls_key.clone()) else {
        return Err(Error::flag(
            "--tls-cert",
            "the encrypted listeners need --tls-cert and --tls-key",
        ));
    };
    let first = tls::load(&cert, &key).map_err(|e| Error::flag("--tls-cert", e))?;
    metrics.tls_not_after.set(first.not_after);
    tracing::info!(serial = %first.serial, not_after = first.not_after, "TLS certificate loaded");
    let resolver = Arc::new(CertResolver::new(first.key.clone()));
    let read = |p: &PathBuf| std::fs::read(p).unwrap_or_default();
    let gauge = metrics.tls_not_after.clone();
    tls::spawn_reloader(
        cert.clone(),
        key.clone(),
        (read(&cert), read(&key)),
        resolver.clone(),
        move |loaded| {
            gauge.set(loaded.not_after);
        },
    );

    let doh = Arc::new(super::doh::DohContext {
        zones: zones.clone(),
        metrics: metrics.clone(),
        policy: policy.clone(),
    });
    let mut server = hickory_server::Server::new(Handler {
        zones,
        metrics: metrics.clone(),
        policy,
    });
    let bind_err = |flag: &'static str, addr: SocketAddr| {
        move |source: std::io::Error| Error::Bind { flag, addr, source }
    };
    let mut bound = Vec::new();
    for addr in &args.tls_listen {
        let listener = tcp_listener(*addr).map_err(bind_err("--tls-listen", *addr))?;
        let local = listener
            .local_addr()
            .map_err(bind_err("--tls-listen", *addr))?;
        tokio::spawn(super::dot::serve(
            listener,
            tls_config(b"dot", resolver.clone()),
            TIMEOUT,
            doh.zones.clone(),
            metrics.clone(),
            doh.policy.clone(),
        ));
        bound.push(("tls", local));
    }
    for addr in &args.https_listen {
        let listener = tcp_listener(*addr).map_err(bind_err("--https-listen", *addr))?;
        let local = listener
            .local_addr()
            .map_err(bind_err("--https-listen", *addr))?;
        tokio::spawn(super::doh::serve(
            listener,
            tls_config(b"h2", resolver.clone()),
            TIMEOUT,
            doh.clone(),
        ));
        bound.push(("https", local));
    }
    for addr in &args.quic_listen {
        let socket = udp_socket(*addr).map_err(bind_err("--quic-listen", *addr))?;
        let local = socket
            .local_addr()
            .map_err(bind_err("--quic-listen", *addr))?;
        server
            .register_quic_listener(socket, TIMEOUT, resolver.clone())
            .map_err(bind_err("--quic-listen", *addr))?;
        bound.push(("quic", local));
    }
    // the Server owns the DoQ listeners' tasks: keep it for the life of the process (with
    // none, it has nothing to wait for and would say so in a warning)
    if !args.quic_listen.is_empty() {
        tokio::spawn(async move {
            if let Err(e) = server.block_until_done().await {
                tracing::error!(error = %e, "encrypted DNS listeners stopped");
            }
        });
    }
    Ok(bound)
}

/// TLS 1.2 and 1.3 (RFC 7858 and 8484 allow both), no client authentication, one ALPN.
fn tls_config(alpn: &[u8], resolver: Arc<CertResolver>) -> Arc<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![alpn.to_vec()];
    Arc::new(config)
}

/// A listening TCP socket for hickory-server. TCP_NODELAY is set on it because Linux copies it
/// to every accepted connection and hickory-server sets nothing: without it an HTTP/2 answer
/// written as two segments waits for the client's delayed ACK (40 ms a DoH query).
fn tcp_listener(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    sock.set_reuse_address(true)?;
    sock.set_tcp_nodelay(true)?;
    if addr.is_ipv6() {
        sock.set_only_v6(true)?;
    }
    sock.bind(&addr.into())?;
    sock.listen(1024)?;
    sock.set_nonblocking(true)?;
    tokio::net::TcpListener::from_std(sock.into())
}

fn udp_socket(addr: SocketAddr) -> std::io::Result<tokio::net::UdpSocket> {
    let sock = Socket::new(Domain::for_address(addr), Type::DGRAM, None)?;
    if addr.is_ipv6() {
        sock.set_only_v6(true)?;
    }
    sock.bind(&addr.into())?;
    sock.set_nonblocking(true)?;
    tokio::net::UdpSocket::from_std(sock.into())
}

/// The `RequestHandler` of every hickory listener: our responder against the current zones.
pub struct Handler {
    pub zones: SharedZones,
    pub metrics: Arc<ServerMetrics>,
    pub policy: Arc<Policy>,
}

fn transport_label(p: Protocol) -> &'static str {
    match p {
        Protocol::Tls => "tls",
        Protocol::Quic => "quic",
        Protocol::Udp => "udp",
        _ => "tcp",
    }
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let started = Instant::now();
        let snapshot = self.zones.load();
        // stream transports: no size limit below the 65 535 of the message length
        let client = Client {
            ip: Some(request.src().ip()),
            policy: &self.policy,
            now: crate::publish::unix_now(),
        };
        let Some(answer) = decide_for(&snapshot, request.as_slice(), Transport::Tcp, &client)
        else {
            return not_sent(request);
        };
        drop(snapshot);
        let (sent, summary) = send(request, answer, &mut response_handle).await;
        if let Some(summary) = summary {
            let transport = transport_label(request.protocol());
            super::server::record(&self.metrics, &summary, transport, started);
        }
        sent.unwrap_or_else(|| not_sent(request))
    }
}

/// Sends a decided answer through hickory's encoder: the message's sections go in as they are
/// (no encode and re-parse); the question is the request's own bytes, as our encoder copies it.
/// A TSIG-signed answer is already bytes (its MAC covers them): those are decoded into the same
/// pieces and re-encoded by hickory (not yet checked byte for byte against the MAC).
async fn send<R: ResponseHandler>(
    request: &Request,
    answer: Answer,
    handle: &mut R,
) -> (Option<ResponseInfo>, Option<Summary>) {
    let (message, summary) = match answer {
        Answer::Message {
            message,
            zone,
            qtype,
            rrl,
            cacheable,
            ..
        } => {
            let summary = Summary {
                zone,
                qtype,
                rcode: message.metadata.response_code,
                truncated: false,
                rrl,
                cacheable,
            };
            (message, summary)
        }
        Answer::Bytes(bytes, summary) => match Message::from_vec(&bytes) {
            Ok(m) => (m, summary),
            Err(_) => return (None, None),
        },
    };
    let empty = Queries::read(
        &mut hickory_proto::serialize::binary::BinDecoder::new(&[]),
        0,
    )
    .expect("zero queries decode");
    let queries = if message.queries.is_empty() {
        &empty
    } else {
        &request.queries
    };
    let mut response = MessageResponseBuilder::new(queries, message.edns.as_ref()).build(
        message.metadata,
        message.answers.iter(),
        message.authorities.iter(),
        std::iter::empty(),
        message.additionals.iter(),
    );
    if let Some(sig) = message.signature.clone() {
        response.set_signature(sig);
    }
    match handle.send_response(response).await {
        Ok(info) => (Some(info), Some(summary)),
        Err(e) => {
            tracing::trace!(error = %e, "encrypted DNS response not sent");
            (None, None)
        }
    }
}

/// What the handler returns when it sent nothing (hickory only reports it).
fn not_sent(request: &Request) -> ResponseInfo {
    let mut metadata = Metadata::new(
        request.metadata.id,
        MessageType::Response,
        request.metadata.op_code,
    );
    metadata.response_code = ResponseCode::ServFail;
    ResponseInfo::from(Header {
        metadata,
        counts: HeaderCounts::default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::compiled::{CompiledZone, ZoneSet};
    use crate::zone::ZoneData;
    use hickory_proto::op::{Edns, OpCode, Query};
    use hickory_proto::rr::{Name, RData, Record, RecordType};
    use hickory_proto::serialize::binary::BinEncoder;

    fn zones() -> ZoneSet {
        let n = |s: &str| Name::from_ascii(s).unwrap();
        let mut d = ZoneData::acme_example();
        d.add(
            n("www.acme.example.com."),
            300,
            RData::A("192.0.2.3".parse().unwrap()),
        );
        ZoneSet::new([Arc::new(CompiledZone::build(&d, 1))])
    }

    /// hickory's encoding of a decided answer carries the same message as our encoder's
    /// bytes, for answers, NXDOMAIN, REFUSED and FORMERR.
    #[test]
    fn hickory_encoding_matches_ours() {
        let z = zones();
        for (name, qtype, edns) in [
            ("www.acme.example.com.", RecordType::A, true),
            ("WWW.acme.example.com.", RecordType::A, false),
            ("nx.acme.example.com.", RecordType::A, true),
            ("acme.example.com.", RecordType::SOA, true),
            ("other.example.org.", RecordType::A, false),
        ] {
            let mut q = Message::new(77, MessageType::Query, OpCode::Query);
            q.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
            if edns {
                q.set_edns(Edns::new());
            }
            let req = q.to_vec().unwrap();
            let (ours, _) = crate::dns::respond(&z, &req, Transport::Tcp).unwrap();
            let request: Request = Request::from_bytes(
                req.clone(),
                "127.0.0.1:5000".parse().unwrap(),
                Protocol::Tls,
            )
            .unwrap();
            let Answer::Message { message, .. } =
                crate::dns::responder::decide(&z, &req, Transport::Tcp).unwrap()
            else {
                panic!("unsigned")
            };
            let mut buf = Vec::new();
            let mut enc = BinEncoder::new(&mut buf);
            MessageResponseBuilder::new(&request.queries, message.edns.as_ref())
                .build(
                    message.metadata,
                    message.answers.iter(),
                    message.authorities.iter(),
                    std::iter::empty::<&Record>(),
                    message.additionals.iter(),
                )
                .destructive_emit(&mut enc)
                .unwrap();
            let (a, b) = (
                Message::from_vec(&ours).unwrap(),
                Message::from_vec(&buf).unwrap(),
            );
            assert_eq!(a.to_vec().unwrap(), b.to_vec().unwrap(), "{name} {qtype}");
            assert_eq!(b.queries[0].name().to_string(), name, "question bytes kept");
        }
    }
}
