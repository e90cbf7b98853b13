//! Shared helpers for tests that run the real `zonegate` binary and talk to it over real
//! sockets (UDP and TCP on loopback).
#![allow(dead_code)]

use hickory_net::client::{Client, ClientHandle};
use hickory_net::runtime::TokioRuntimeProvider;
use hickory_net::tcp::TcpClientStream;
use hickory_net::udp::UdpClientStream;
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::{DNSClass, Name, RecordType};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free loopback port for both UDP and TCP.
pub fn free_port() -> u16 {
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);
impl TempDir {
    pub fn new(tag: &str) -> Self {
        let d = std::env::temp_dir().join(format!(
            "zg-{tag}-{}-{:?}",
            std::process::id(),
            Instant::now()
        ));
        let d = PathBuf::from(d.to_string_lossy().replace([' ', '{', '}', ':', ','], ""));
        std::fs::create_dir_all(&d).unwrap();
        Self(d)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
    pub fn write(&self, name: &str, text: &str) {
        let p = self.0.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        // write-then-rename so a watcher never sees half a file
        let tmp = self.0.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(tmp, p).unwrap();
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running `zonegate serve --manifests`, killed on drop.
pub struct Server {
    pub child: Child,
    pub dns: SocketAddr,
    pub http: SocketAddr,
}

impl Server {
    pub fn start(manifests: &Path) -> Self {
        Self::start_with(manifests, &[])
    }

    pub fn start_with(manifests: &Path, extra: &[&str]) -> Self {
        Self::start_env(manifests, extra, &[])
    }

    /// `start_with` with extra environment variables for the server.
    pub fn start_env(manifests: &Path, extra: &[&str], env: &[(String, String)]) -> Self {
        let dns: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let http: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_zonegate"))
            .args(["serve", "--manifests"])
            .arg(manifests)
            .args(["--listen", &dns.to_string(), "--http", &http.to_string()])
            .args(extra)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("zonegate binary starts");
        let s = Self { child, dns, http };
        s.wait_ready();
        s
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if http_get(self.http, "/readyz")
                .map(|(code, _)| code == 200)
                .unwrap_or(false)
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("zonegate serve did not become ready on {}", self.http);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A plain HTTP GET on a connection of its own (`Connection: close`, so the body ends where
/// the server closes); returns (status, body).
pub fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    let code = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((code, body))
}

/// A query message as a stub resolver would send it.
pub fn query_msg(name: &str, rtype: RecordType, edns: Option<u16>) -> Message {
    let mut m = Message::new(rand_id(), MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), rtype));
    if let Some(size) = edns {
        let mut e = Edns::new();
        e.set_max_payload(size);
        m.set_edns(e);
    }
    m
}

pub fn rand_id() -> u16 {
    (Instant::now().elapsed().subsec_nanos() as u16) ^ (std::process::id() as u16).wrapping_mul(31)
}

/// Sends raw bytes over UDP and returns the raw reply, if any within the timeout.
pub fn udp_raw(server: SocketAddr, bytes: &[u8], timeout: Duration) -> Option<Vec<u8>> {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(timeout)).unwrap();
    s.send_to(bytes, server).unwrap();
    let mut buf = vec![0u8; 65535];
    match s.recv_from(&mut buf) {
        Ok((n, _)) => Some(buf[..n].to_vec()),
        Err(_) => None,
    }
}

/// Sends one message over UDP and parses the reply.
pub fn udp(server: SocketAddr, msg: &Message) -> Message {
    let reply = udp_raw(server, &msg.to_vec().unwrap(), Duration::from_secs(3)).expect("UDP reply");
    Message::from_vec(&reply).expect("reply parses")
}

/// Sends raw bytes over TCP (with the 2-byte length prefix) and returns the raw reply.
pub fn tcp_raw(server: SocketAddr, bytes: &[u8]) -> Option<Vec<u8>> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(&server, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(bytes);
    s.write_all(&framed).ok()?;
    let mut len = [0u8; 2];
    s.read_exact(&mut len).ok()?;
    let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
    s.read_exact(&mut buf).ok()?;
    Some(buf)
}

pub fn tcp(server: SocketAddr, msg: &Message) -> Message {
    let reply = tcp_raw(server, &msg.to_vec().unwrap()).expect("TCP reply");
    Message::from_vec(&reply).expect("reply parses")
}

/// hickory's own client over UDP.
pub async fn hickory_udp(server: SocketAddr) -> Client<TokioRuntimeProvider> {
    let conn = UdpClientStream::builder(server, TokioRuntimeProvider::default()).build();
    let (client, bg) = Client::<TokioRuntimeProvider>::from_sender(conn);
    tokio::spawn(bg);
    client
}

/// hickory's own client over TCP.
pub async fn hickory_tcp(server: SocketAddr) -> Client<TokioRuntimeProvider> {
    let (stream, sender) = TcpClientStream::new(
        server,
        None,
        Some(Duration::from_secs(5)),
        TokioRuntimeProvider::default(),
    );
    let (client, bg) =
        Client::<TokioRuntimeProvider>::new(stream.await.expect("tcp connect"), sender);
    tokio::spawn(bg);
    client
}

/// Query through a hickory client and return the message.
pub async fn ask(
    client: &mut Client<TokioRuntimeProvider>,
    name: &str,
    rtype: RecordType,
) -> Message {
    let resp = client
        .query(Name::from_ascii(name).unwrap(), DNSClass::IN, rtype)
        .await
        .expect("response");
    resp.into_message()
}

/// Copies the quickstart sample into a fresh temp dir.
pub fn quickstart() -> TempDir {
    let dir = TempDir::new("qs");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/samples/quickstart");
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dir.path().join(e.file_name())).unwrap();
    }
    dir
}

/// A self-signed P-256 certificate for `cn` with subjectAltName `san` (e.g.
/// `DNS:ns1.example.com,IP:127.0.0.1`), valid two days, made with the openssl CLI. It is an
/// end-entity certificate (`CA:FALSE`): rustls clients refuse a CA certificate as a server's.
pub fn self_signed_cert(cn: &str, san: &str, key_out: &Path, cert_out: &Path) {
    let ok = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-days", "2", "-subj", &format!("/CN={cn}")])
        .args(["-addext", &format!("subjectAltName={san}")])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(key_out)
        .arg("-out")
        .arg(cert_out)
        .stderr(Stdio::null())
        .status()
        .expect("openssl runs")
        .success();
    assert!(ok, "openssl made the certificate for {cn}");
}
