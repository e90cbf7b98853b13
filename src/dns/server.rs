//! Transports: UDP (one socket per core with SO_REUSEPORT, each drained by its own thread) and
//! TCP (RFC 7766 framing, idle and write-stall timeouts, at most `MAX_TCP_CONNECTIONS`, the one
//! idle longest closed for a new client). Every request goes through the
//! same responder against the current zone snapshot, swapped atomically on change, under the
//! server's policy (query ACL, cookies, identity); UDP responses are then rate limited (RRL:
//! `super::rrl`), after the answer cache, so a cached answer is charged like any other.

use super::compiled::ZoneSet;
use super::policy::Policy;
use super::responder::{Client, Summary, Transport, respond_to};
use super::rrl::{Action, RateLimiter};
use crate::metrics::{QueryLabels, ServerMetrics};
use arc_swap::ArcSwap;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use prometheus_client::metrics::counter::Counter;
use socket2::{Domain, Protocol, Socket, Type};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The zones being served; readers never block writers.
pub type SharedZones = Arc<ArcSwap<ZoneSet>>;

/// Open TCP connections at most; a new client past this closes the one idle longest.
pub(super) const MAX_TCP_CONNECTIONS: usize = 1024;
/// A TCP connection idle this long is closed (RFC 7766 §6.2.3 suggests seconds, not minutes).
const TCP_IDLE: Duration = Duration::from_secs(10);
/// A write that makes no progress for this long closes the connection.
const TCP_WRITE_STALL: Duration = Duration::from_secs(5);

/// Counts one answered query (its zone, type, rcode and transport) and its latency.
pub(super) fn record(
    metrics: &ServerMetrics,
    s: &Summary,
    transport: &'static str,
    started: Instant,
) {
    metrics.latency.observe(started.elapsed().as_secs_f64());
    metrics
        .queries
        .get_or_create(&labels(s.zone.as_ref(), s.qtype, s.rcode, transport))
        .inc();
}

/// The query counter's labels; `transport` is `udp`, `tcp` or `tls`.
fn labels(
    zone: Option<&Arc<str>>,
    qtype: RecordType,
    rcode: ResponseCode,
    transport: &'static str,
) -> QueryLabels {
    QueryLabels {
        zone: zone.map(|z| z.to_string()).unwrap_or_else(|| "none".into()),
        qtype: qtype.to_string(),
        rcode: rcode.to_str().to_string(),
        transport,
    }
}

/// Query counters of one UDP thread, added to the shared metrics every 250 ms, so that the
/// answering loop touches no shared lock and allocates no label strings per query. The latency
/// histogram samples one query in 16.
struct LocalStats {
    counts: HashMap<(Option<Arc<str>>, RecordType, ResponseCode), u64>,
    last_flush: Instant,
    n: u32,
}

impl LocalStats {
    fn new() -> Self {
        Self {
            counts: HashMap::new(),
            last_flush: Instant::now(),
            n: 0,
        }
    }

    fn count(&mut self, s: &Summary, metrics: &ServerMetrics, started: Instant) {
        *self
            .counts
            .entry((s.zone.clone(), s.qtype, s.rcode))
            .or_default() += 1;
        self.n = self.n.wrapping_add(1);
        if self.n.is_multiple_of(16) {
            metrics.latency.observe(started.elapsed().as_secs_f64());
        }
        if self.n.is_multiple_of(256) && self.last_flush.elapsed() > Duration::from_millis(250) {
            self.flush(metrics);
        }
    }

    fn flush(&mut self, metrics: &ServerMetrics) {
        for ((zone, qtype, rcode), n) in self.counts.drain() {
            metrics
                .queries
                .get_or_create(&labels(zone.as_ref(), qtype, rcode, "udp"))
                .inc_by(n);
        }
        self.last_flush = Instant::now();
    }
}

/// Responses of one UDP thread, by request bytes after the id: the responder is a pure function
/// of (zone snapshot, request bytes), so a repeated question is answered by copying its bytes
/// and patching the id. Emptied whenever the zone snapshot changes, and when it is full.
struct AnswerCache {
    /// The generation of the snapshot the entries were built from (`ZoneSet::generation`; not
    /// its address, which a later snapshot may reuse).
    generation: Option<u64>,
    map: HashMap<Box<[u8]>, CachedAnswer>,
}

/// A response without its id, and what it was.
type CachedAnswer = (Box<[u8]>, Summary);

const ANSWER_CACHE_ENTRIES: usize = 16 * 1024;
/// Longer requests (large EDNS options) are answered without the cache.
const ANSWER_CACHE_MAX_REQUEST: usize = 300;

impl AnswerCache {
    fn new() -> Self {
        Self {
            generation: None,
            map: HashMap::new(),
        }
    }
}

fn udp_socket(addr: SocketAddr) -> std::io::Result<std::net::UdpSocket> {
    let sock = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    sock.set_reuse_address(true)?;
    #[cfg(unix)]
    sock.set_reuse_port(true)?;
    if addr.is_ipv6() {
        sock.set_only_v6(true)?;
    }
    sock.bind(&addr.into())?;
    Ok(sock.into())
}

/// Binds UDP and TCP on `addr` and serves until the process exits. Returns the bound addresses
/// (useful with port 0).
pub async fn serve(
    addr: SocketAddr,
    zones: SharedZones,
    metrics: Arc<ServerMetrics>,
    policy: Arc<Policy>,
) -> std::io::Result<SocketAddr> {
    // one table for every UDP thread of this address: a client is one client whichever
    // socket the kernel gives its datagrams to
    let limiter = policy.rrl.map(|cfg| Arc::new(RateLimiter::new(cfg)));
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let (sockets, tcp, bound) = bind_udp_and_tcp(addr, threads)?;
    for (i, sock) in sockets.into_iter().enumerate() {
        let worker = UdpWorker::new(
            zones.clone(),
            metrics.clone(),
            policy.clone(),
            limiter.clone(),
        );
        std::thread::Builder::new()
            .name(format!("dns-udp-{i}"))
            .spawn(move || udp_loop(sock, worker))?;
    }
    tokio::spawn(tcp_accept_loop(tcp, zones, metrics, policy));
    Ok(bound)
}

/// `threads` UDP sockets and a TCP listener on one address. The first UDP socket fixes the port
/// when 0 was asked for; the other sockets join it. The kernel picks that port free for UDP
/// only: when TCP cannot have it (another process's listener or connection holds it), the
/// sockets are dropped and a new port is picked, a few times.
fn bind_udp_and_tcp(
    addr: SocketAddr,
    threads: usize,
) -> std::io::Result<(
    Vec<std::net::UdpSocket>,
    tokio::net::TcpListener,
    SocketAddr,
)> {
    let attempts = if addr.port() == 0 { 32 } else { 1 };
    let mut last = None;
    for _ in 0..attempts {
        let attempt = || -> std::io::Result<_> {
            let first = udp_socket(addr)?;
            let bound = first.local_addr()?;
            let mut sockets = vec![first];
            for _ in 1..threads {
                sockets.push(udp_socket(bound)?);
            }
            let tcp = tokio_tcp_listener(bound)?;
            Ok((sockets, tcp, bound))
        };
        match attempt() {
            Ok(bound) => return Ok(bound),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.expect("at least one attempt"))
}

fn tokio_tcp_listener(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    sock.set_reuse_address(true)?;
    if addr.is_ipv6() {
        sock.set_only_v6(true)?;
    }
    sock.bind(&addr.into())?;
    sock.listen(1024)?;
    sock.set_nonblocking(true)?;
    tokio::net::TcpListener::from_std(sock.into())
}

/// One UDP thread's state: its counters, its answer cache and the shared rate limiter.
struct UdpWorker {
    zones: SharedZones,
    metrics: Arc<ServerMetrics>,
    stats: LocalStats,
    cache: AnswerCache,
    policy: Arc<Policy>,
    limiter: Option<Arc<RateLimiter>>,
    /// `zonegate_rrl_actions_total{action="dropped"}` and `{action="slipped"}`.
    dropped: Counter,
    slipped: Counter,
}

impl UdpWorker {
    fn new(
        zones: SharedZones,
        metrics: Arc<ServerMetrics>,
        policy: Arc<Policy>,
        limiter: Option<Arc<RateLimiter>>,
    ) -> Self {
        let action = |a: &'static str| {
            metrics
                .rrl_actions
                .get_or_create(&crate::metrics::RrlLabels { action: a })
                .clone()
        };
        let (dropped, slipped) = (action("dropped"), action("slipped"));
        Self {
            zones,
            metrics,
            stats: LocalStats::new(),
            cache: AnswerCache::new(),
            policy,
            limiter,
            dropped,
            slipped,
        }
    }

    /// Builds the response to `request` from `peer` into `out`; false when nothing is to be
    /// sent (no answer, or dropped by the rate limit).
    fn answer(&mut self, request: &[u8], peer: IpAddr, out: &mut Vec<u8>) -> bool {
        let started = Instant::now();
        let snapshot = self.zones.load();
        if self.cache.generation != Some(snapshot.generation()) {
            self.cache.map.clear();
            self.cache.generation = Some(snapshot.generation());
        }
        out.clear();
        // a client outside the ACL is answered (REFUSED) by the responder, never from the cache
        let cacheable = (12..=ANSWER_CACHE_MAX_REQUEST).contains(&request.len())
            && self.policy.acl.allows(Some(peer));
        let rrl = if cacheable && let Some((resp, summary)) = self.cache.map.get(&request[2..]) {
            out.extend_from_slice(&request[..2]);
            out.extend_from_slice(resp);
            self.stats.count(summary, &self.metrics, started);
            summary.rrl
        } else {
            let client = Client {
                ip: Some(peer),
                policy: &self.policy,
                now: crate::publish::unix_now(),
            };
            let Some((resp, summary)) = respond_to(&snapshot, request, Transport::Udp, &client)
            else {
                return false;
            };
            out.extend_from_slice(&resp);
            self.stats.count(&summary, &self.metrics, started);
            let rrl = summary.rrl;
            if cacheable && summary.cacheable && resp.len() >= 2 {
                if self.cache.map.len() >= ANSWER_CACHE_ENTRIES {
                    self.cache.map.clear();
                }
                self.cache
                    .map
                    .insert(request[2..].into(), (resp[2..].into(), summary));
            }
            rrl
        };
        if let (Some(limiter), Some(key)) = (&self.limiter, rrl) {
            match limiter.check(peer, key, started) {
                Action::Send => {}
                Action::Slip => {
                    self.slipped.inc();
                    truncate(out);
                }
                Action::Drop => {
                    self.dropped.inc();
                    return false;
                }
            }
        }
        true
    }

    fn idle(&mut self) {
        if !self.stats.counts.is_empty() {
            self.stats.flush(&self.metrics);
        }
    }
}

/// Makes `resp` the truncated form of itself, as rate limiting's "slip" sends it: the header
/// with TC set and the question, no records (the client retries over TCP, which is not rate
/// limited). Left as it is if the question cannot be walked (never the case for our own).
fn truncate(resp: &mut Vec<u8>) {
    if resp.len() < 12 {
        return;
    }
    let qdcount = u16::from_be_bytes([resp[4], resp[5]]);
    let mut end = 12;
    if qdcount == 1 {
        // the first name of a message is never compressed
        loop {
            let Some(&len) = resp.get(end) else { return };
            if len == 0 {
                end += 1;
                break;
            }
            if len & 0xc0 != 0 {
                return;
            }
            end += 1 + len as usize;
        }
        end += 4;
        if end > resp.len() {
            return;
        }
    } else if qdcount != 0 {
        return;
    }
    resp.truncate(end);
    resp[2] |= 0x02; // TC
    resp[6..12].fill(0); // no answer, authority or additional records
}

fn udp_loop(sock: std::net::UdpSocket, mut worker: UdpWorker) {
    // wake up now and then to flush counters even when idle
    let _ = sock.set_read_timeout(Some(Duration::from_millis(500)));
    #[cfg(target_os = "linux")]
    {
        mmsg::udp_loop_batched(&sock, &mut worker)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let mut buf = [0u8; 4096];
        let mut out: Vec<u8> = Vec::with_capacity(1232);
        loop {
            match sock.recv_from(&mut buf) {
                Ok((len, peer)) => {
                    if worker.answer(&buf[..len], peer.ip(), &mut out)
                        && let Err(e) = sock.send_to(&out, peer)
                    {
                        tracing::debug!(error = %e, %peer, "udp send failed");
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    worker.idle()
                }
                Err(e) => {
                    tracing::warn!(error = %e, "udp receive failed");
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        }
    }
}

/// Linux: up to 32 datagrams per `recvmmsg` and their answers in one `sendmmsg`, as Knot and
/// NSD do; under load this halves the system calls per query.
#[cfg(target_os = "linux")]
mod mmsg {
    use super::UdpWorker;
    use std::net::IpAddr;
    use std::os::fd::AsRawFd;
    use std::time::Duration;

    const BATCH: usize = 32;
    const BUF: usize = 4096;

    /// The address of a datagram's sender, as recvmmsg wrote it.
    fn sockaddr_ip(a: &libc::sockaddr_storage) -> Option<IpAddr> {
        match a.ss_family as libc::c_int {
            libc::AF_INET => {
                // SAFETY: ss_family says the storage holds a sockaddr_in
                let v4 =
                    unsafe { &*(a as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
                Some(IpAddr::from(u32::from_be(v4.sin_addr.s_addr).to_be_bytes()))
            }
            libc::AF_INET6 => {
                // SAFETY: ss_family says the storage holds a sockaddr_in6
                let v6 =
                    unsafe { &*(a as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
                Some(IpAddr::from(v6.sin6_addr.s6_addr))
            }
            _ => None,
        }
    }

    pub(super) fn udp_loop_batched(sock: &std::net::UdpSocket, worker: &mut UdpWorker) -> ! {
        let fd = sock.as_raw_fd();
        let mut bufs = vec![[0u8; BUF]; BATCH];
        let mut outs: Vec<Vec<u8>> = (0..BATCH).map(|_| Vec::with_capacity(1232)).collect();
        // SAFETY: plain C structs; all-zero is a valid initial value for each.
        let mut addrs: [libc::sockaddr_storage; BATCH] = unsafe { std::mem::zeroed() };
        let mut iovs: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
        let mut msgs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        let mut out_iovs: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
        let mut out_msgs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        loop {
            for i in 0..BATCH {
                iovs[i] = libc::iovec {
                    iov_base: bufs[i].as_mut_ptr().cast(),
                    iov_len: BUF,
                };
                msgs[i].msg_hdr.msg_name = (&mut addrs[i] as *mut libc::sockaddr_storage).cast();
                msgs[i].msg_hdr.msg_namelen =
                    std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
                msgs[i].msg_hdr.msg_iov = &mut iovs[i];
                msgs[i].msg_hdr.msg_iovlen = 1;
                msgs[i].msg_hdr.msg_control = std::ptr::null_mut();
                msgs[i].msg_hdr.msg_controllen = 0;
                msgs[i].msg_hdr.msg_flags = 0;
                msgs[i].msg_len = 0;
            }
            // SAFETY: every msghdr points at live buffers of the sizes given, for this call only.
            let n = unsafe {
                libc::recvmmsg(
                    fd,
                    msgs.as_mut_ptr(),
                    BATCH as libc::c_uint,
                    libc::MSG_WAITFORONE,
                    std::ptr::null_mut(),
                )
            };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                match e.kind() {
                    std::io::ErrorKind::WouldBlock
                    | std::io::ErrorKind::TimedOut
                    | std::io::ErrorKind::Interrupted => worker.idle(),
                    _ => {
                        tracing::warn!(error = %e, "udp receive failed");
                        std::thread::sleep(Duration::from_millis(10));
                    }
                }
                continue;
            }
            let mut count = 0;
            for i in 0..n as usize {
                let len = (msgs[i].msg_len as usize).min(BUF);
                let Some(peer) = sockaddr_ip(&addrs[i]) else {
                    continue;
                };
                if !worker.answer(&bufs[i][..len], peer, &mut outs[count]) {
                    continue;
                }
                out_iovs[count] = libc::iovec {
                    iov_base: outs[count].as_mut_ptr().cast(),
                    iov_len: outs[count].len(),
                };
                out_msgs[count].msg_hdr = unsafe { std::mem::zeroed() };
                out_msgs[count].msg_hdr.msg_name =
                    (&mut addrs[i] as *mut libc::sockaddr_storage).cast();
                out_msgs[count].msg_hdr.msg_namelen = msgs[i].msg_hdr.msg_namelen;
                out_msgs[count].msg_hdr.msg_iov = &mut out_iovs[count];
                out_msgs[count].msg_hdr.msg_iovlen = 1;
                out_msgs[count].msg_len = 0;
                count += 1;
            }
            let mut sent = 0;
            while sent < count {
                // SAFETY: as above, for the `count - sent` prepared messages.
                let r = unsafe {
                    libc::sendmmsg(
                        fd,
                        out_msgs[sent..].as_mut_ptr(),
                        (count - sent) as libc::c_uint,
                        0,
                    )
                };
                if r <= 0 {
                    let e = std::io::Error::last_os_error();
                    if e.kind() == std::io::ErrorKind::Interrupted {
                        continue;
                    }
                    // skip the datagram that failed (e.g. an unreachable peer) and go on
                    tracing::debug!(error = %e, "udp send failed");
                    sent += 1;
                } else {
                    sent += r as usize;
                }
            }
        }
    }
}

/// The open TCP connections, each with the time it was last active, so that a new client can
/// always get in: at the limit the connection idle longest is closed (as Knot does).
#[derive(Default)]
pub(super) struct TcpConnections {
    inner: std::sync::Mutex<ConnTable>,
    started: Option<Instant>,
}

#[derive(Default)]
struct ConnTable {
    next_id: u64,
    open: HashMap<u64, Arc<ConnSlot>>,
}

/// One connection's shared state.
pub(super) struct ConnSlot {
    /// Milliseconds since the table's start when the connection last read a request or
    /// finished a write.
    last_active: std::sync::atomic::AtomicU64,
    /// Signalled when the connection is to close (evicted for a new client).
    pub(super) close: tokio::sync::Notify,
}

impl TcpConnections {
    pub(super) fn new() -> Self {
        Self {
            inner: Default::default(),
            started: Some(Instant::now()),
        }
    }

    fn now_ms(&self) -> u64 {
        self.started
            .map(|s| s.elapsed().as_millis() as u64)
            .unwrap_or(0)
    }

    /// Registers a new connection, first closing the one idle longest when `limit` are open.
    /// Returns its id, its slot, and whether another was evicted for it.
    pub(super) fn open(&self, limit: usize) -> (u64, Arc<ConnSlot>, bool) {
        let mut t = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let mut evicted = false;
        while t.open.len() >= limit {
            let oldest = t
                .open
                .iter()
                .min_by_key(|(id, s)| {
                    (
                        s.last_active.load(std::sync::atomic::Ordering::Relaxed),
                        **id,
                    )
                })
                .map(|(id, _)| *id);
            let Some(id) = oldest else { break };
            if let Some(slot) = t.open.remove(&id) {
                slot.close.notify_one();
                evicted = true;
            }
        }
        let id = t.next_id;
        t.next_id += 1;
        let slot = Arc::new(ConnSlot {
            last_active: self.now_ms().into(),
            close: tokio::sync::Notify::new(),
        });
        t.open.insert(id, slot.clone());
        (id, slot, evicted)
    }

    pub(super) fn touch(&self, slot: &ConnSlot) {
        slot.last_active
            .store(self.now_ms(), std::sync::atomic::Ordering::Relaxed);
    }

    pub(super) fn close(&self, id: u64) {
        let mut t = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        t.open.remove(&id);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.inner.lock().unwrap().open.len()
    }
}

async fn tcp_accept_loop(
    listener: tokio::net::TcpListener,
    zones: SharedZones,
    metrics: Arc<ServerMetrics>,
    policy: Arc<Policy>,
) {
    let conns = Arc::new(TcpConnections::new());
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                // e.g. out of file descriptors under a flood: say so at most once a minute
                super::netlog::warn_limited(format_args!("tcp accept failed: {e}"));
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let (id, slot, evicted) = conns.open(MAX_TCP_CONNECTIONS);
        if evicted {
            metrics.tcp_evicted.inc();
        }
        let zones = zones.clone();
        let metrics = metrics.clone();
        let conns = conns.clone();
        let policy = policy.clone();
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            let conn = Connection {
                peer,
                transport: "tcp",
                transfers: true,
                zones: &zones,
                metrics: &metrics,
                policy: &policy,
                conns: &conns,
                slot: &slot,
            };
            let result = tokio::select! {
                r = conn.serve(stream) => r,
                _ = slot.close.notified() => Ok(()),
            };
            conns.close(id);
            if let Err(e) = result {
                tracing::trace!(error = %e, %peer, "tcp connection ended");
            }
        });
    }
}

/// Writes all of `buf`, failing when one write makes no progress for `TCP_WRITE_STALL` (a
/// client that does not read must not hold its connection forever).
async fn write_all_progressing<S: AsyncWriteExt + Unpin>(
    stream: &mut S,
    mut buf: &[u8],
) -> std::io::Result<()> {
    while !buf.is_empty() {
        match tokio::time::timeout(TCP_WRITE_STALL, stream.write(buf)).await {
            Ok(Ok(0)) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(Ok(n)) => buf = &buf[n..],
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(std::io::ErrorKind::TimedOut.into()),
        }
    }
    Ok(())
}

/// One stream connection (plain TCP, or DoT once its TLS handshake is done): RFC 7766 framing,
/// one request at a time, zone transfers streamed when `transfers`, closed when idle.
pub(super) struct Connection<'a> {
    pub(super) peer: SocketAddr,
    /// The query counter's transport label.
    pub(super) transport: &'static str,
    /// Whether AXFR/IXFR may be answered here (not over TLS below 1.3: RFC 9103 §9).
    pub(super) transfers: bool,
    pub(super) zones: &'a SharedZones,
    pub(super) metrics: &'a Arc<ServerMetrics>,
    pub(super) policy: &'a Policy,
    pub(super) conns: &'a TcpConnections,
    pub(super) slot: &'a ConnSlot,
}

impl Connection<'_> {
    pub(super) async fn serve<S>(&self, mut stream: S) -> std::io::Result<()>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        let peer = self.peer;
        let mut buf = Vec::with_capacity(512);
        loop {
            let mut len = [0u8; 2];
            match tokio::time::timeout(TCP_IDLE, stream.read_exact(&mut len)).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(()), // idle
            }
            let len = u16::from_be_bytes(len) as usize;
            buf.resize(len, 0);
            match tokio::time::timeout(TCP_IDLE, stream.read_exact(&mut buf)).await {
                Ok(r) => r?,
                Err(_) => return Ok(()),
            };
            self.conns.touch(self.slot);
            let started = Instant::now();
            let snapshot = self.zones.load();
            // a client outside the ACL gets REFUSED from the responder, transfers included
            let allowed = self.policy.acl.allows(Some(peer.ip()));
            if allowed && self.transfers && super::xfr::is_transfer(&buf) {
                let transfer = super::xfr::Transfer::start(
                    &snapshot,
                    &buf,
                    peer.ip(),
                    crate::publish::unix_now(),
                );
                drop(snapshot);
                super::xfr_out::send(&mut stream, transfer, peer, self.metrics, TCP_IDLE).await?;
                stream.flush().await?;
                self.conns.touch(self.slot);
                continue;
            }
            let client = Client {
                ip: Some(peer.ip()),
                policy: self.policy,
                now: crate::publish::unix_now(),
            };
            let Some((resp, summary)) = respond_to(&snapshot, &buf, Transport::Tcp, &client) else {
                return Ok(()); // nothing sensible to say: close
            };
            let mut out = Vec::with_capacity(resp.len() + 2);
            out.extend_from_slice(&(resp.len() as u16).to_be_bytes());
            out.extend_from_slice(&resp);
            write_all_progressing(&mut stream, &out).await?;
            stream.flush().await?;
            self.conns.touch(self.slot);
            record(self.metrics, &summary, self.transport, started);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::compiled::CompiledZone;
    use crate::zone::ZoneData;
    use hickory_proto::op::{Message, MessageType, OpCode, Query};
    use hickory_proto::rr::{Name, RData, RecordType};

    /// Port 0: UDP and TCP always end up on one port; a fixed port whose TCP side is taken
    /// fails with AddrInUse (no other port is tried for an address the user chose).
    #[tokio::test]
    async fn udp_and_tcp_share_the_port_picked_for_port_zero() {
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        // hold many TCP ports, so that the kernel's UDP pick collides now and then
        let held: Vec<std::net::TcpListener> = (0..200)
            .map(|_| std::net::TcpListener::bind(any).unwrap())
            .collect();
        for _ in 0..100 {
            let (udp, tcp, bound) = bind_udp_and_tcp(any, 2).unwrap();
            assert_eq!(udp.len(), 2);
            assert!(udp.iter().all(|u| u.local_addr().unwrap() == bound));
            assert_eq!(tcp.local_addr().unwrap(), bound);
        }
        let taken = held[0].local_addr().unwrap();
        let e = bind_udp_and_tcp(taken, 1).expect_err("TCP port taken");
        assert_eq!(e.kind(), std::io::ErrorKind::AddrInUse);
    }

    fn zone_with(ip: &str) -> ZoneSet {
        let n = |s: &str| Name::from_ascii(s).unwrap();
        let mut d = ZoneData::acme_example();
        d.add(
            n("web.acme.example.com."),
            300,
            RData::A(ip.parse().unwrap()),
        );
        ZoneSet::new([Arc::new(CompiledZone::build(&d, 1))])
    }

    fn ask(worker: &mut UdpWorker) -> String {
        let mut q = Message::new(7, MessageType::Query, OpCode::Query);
        q.add_query(Query::query(
            Name::from_ascii("web.acme.example.com.").unwrap(),
            RecordType::A,
        ));
        let mut out = Vec::new();
        assert!(worker.answer(&q.to_vec().unwrap(), [127, 0, 0, 1].into(), &mut out));
        let m = Message::from_vec(&out).unwrap();
        m.answers
            .first()
            .map(|r| r.data.to_string())
            .unwrap_or_default()
    }

    /// At the limit a new connection closes the one idle longest (a client that keeps its
    /// connection busy keeps it).
    #[tokio::test]
    async fn at_the_limit_the_connection_idle_longest_is_closed() {
        let conns = TcpConnections::new();
        let slots: Vec<_> = (0..3).map(|_| conns.open(3)).collect();
        assert!(slots.iter().all(|(_, _, evicted)| !evicted));
        let set = |i: usize, ms: u64| {
            slots[i]
                .1
                .last_active
                .store(ms, std::sync::atomic::Ordering::Relaxed)
        };
        set(0, 50);
        set(1, 10);
        set(2, 30);
        let (_, _, evicted) = conns.open(3);
        assert!(evicted);
        assert_eq!(conns.len(), 3);
        // connection 1 was told to close, the others were not
        let closed = |i: usize| {
            let slot = slots[i].1.clone();
            async move {
                tokio::time::timeout(Duration::from_millis(20), slot.close.notified())
                    .await
                    .is_ok()
            }
        };
        assert!(closed(1).await);
        assert!(!closed(0).await);
        assert!(!closed(2).await);
        conns.close(slots[0].0);
        assert_eq!(conns.len(), 2);
        let (_, _, evicted) = conns.open(3);
        assert!(!evicted, "room again after a close");
    }

    /// The answer cache must follow every new snapshot, even one allocated where a freed
    /// snapshot was (the allocator reuses a just-freed block of the same size: the cache once
    /// compared addresses and then served the old answers).
    #[test]
    fn answer_cache_never_outlives_its_snapshot() {
        let zones: SharedZones = Arc::new(ArcSwap::from_pointee(zone_with("192.0.2.1")));
        let mut worker = UdpWorker::new(
            zones.clone(),
            Arc::new(ServerMetrics::new()),
            Arc::new(Policy::default()),
            None,
        );
        assert_eq!(ask(&mut worker), "192.0.2.1");
        for i in 2..50 {
            // built first, so that storing it allocates only the snapshot's own block
            let (b, c) = (zone_with("192.0.2.250"), zone_with(&format!("192.0.2.{i}")));
            zones.store(Arc::new(b));
            zones.store(Arc::new(c));
            assert_eq!(ask(&mut worker), format!("192.0.2.{i}"), "round {i}");
        }
    }

    /// RRL on the UDP path, cached answers included: past the rate a client's responses are
    /// dropped or, every `slip`-th, sent truncated (TC, the question, no records, parseable);
    /// another client is untouched; every action is counted.
    #[test]
    fn rate_limit_drops_and_slips_after_the_cache() {
        let zones: SharedZones = Arc::new(ArcSwap::from_pointee(zone_with("192.0.2.1")));
        let policy = Policy {
            rrl: Some(crate::dns::rrl::RrlConfig::new(5)),
            ..Default::default()
        };
        let limiter = policy.rrl.map(|c| Arc::new(RateLimiter::new(c)));
        let metrics = Arc::new(ServerMetrics::new());
        let mut worker = UdpWorker::new(zones, metrics.clone(), Arc::new(policy), limiter);
        let mut q = Message::new(7, MessageType::Query, OpCode::Query);
        q.add_query(Query::query(
            Name::from_ascii("web.acme.example.com.").unwrap(),
            RecordType::A,
        ));
        let req = q.to_vec().unwrap();
        let flooder: IpAddr = [203, 0, 113, 9].into();
        let (mut full, mut truncated, mut dropped) = (0, 0, 0);
        let mut out = Vec::new();
        for _ in 0..100 {
            if !worker.answer(&req, flooder, &mut out) {
                dropped += 1;
                continue;
            }
            let m = Message::from_vec(&out).expect("a parseable response");
            assert_eq!(m.metadata.id, 7);
            assert_eq!(m.queries.len(), 1);
            if m.metadata.truncation {
                assert!(m.answers.is_empty() && m.additionals.is_empty());
                truncated += 1;
            } else {
                assert_eq!(m.answers.len(), 1);
                full += 1;
            }
        }
        // 100 queries within far less than a second at 5 a second: a burst of about the rate,
        // then half slipped and half dropped (slip 2)
        assert!((5..=7).contains(&full), "{full} full answers");
        assert!(
            truncated >= 40 && dropped >= 40,
            "{truncated} slipped, {dropped} dropped"
        );
        assert!(worker.answer(&req, [198, 51, 100, 1].into(), &mut out));
        assert!(
            !Message::from_vec(&out).unwrap().metadata.truncation,
            "another client"
        );
        let text = metrics.encode();
        assert!(
            text.contains(&format!(
                "zonegate_rrl_actions_total{{action=\"dropped\"}} {dropped}"
            )),
            "{text}"
        );
        assert!(text.contains(&format!(
            "zonegate_rrl_actions_total{{action=\"slipped\"}} {truncated}"
        )));
    }

    #[test]
    fn truncate_keeps_header_and_question_only() {
        let z = zone_with("192.0.2.1");
        let mut q = Message::new(11, MessageType::Query, OpCode::Query);
        q.add_query(Query::query(
            Name::from_ascii("web.acme.example.com.").unwrap(),
            RecordType::A,
        ));
        q.set_edns(hickory_proto::op::Edns::new());
        let (mut resp, _) = crate::dns::respond(&z, &q.to_vec().unwrap(), Transport::Udp).unwrap();
        truncate(&mut resp);
        let m = Message::from_vec(&resp).unwrap();
        assert!(m.metadata.truncation && m.metadata.authoritative);
        assert_eq!(
            (m.queries.len(), m.answers.len(), m.additionals.len()),
            (1, 0, 0)
        );
        assert!(m.edns.is_none());
        // garbage is left alone rather than cut anywhere
        let mut junk = vec![0u8, 1, 0x81, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 0x0c];
        let before = junk.clone();
        truncate(&mut junk);
        assert_eq!(junk, before);
    }
}
