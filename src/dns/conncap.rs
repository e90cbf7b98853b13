//! A connection cap for listeners whose accept loop is not ours (hickory-server's DoT and DoH
//! listeners have none). Twice a second the process's own descriptor table is read, the
//! connected TCP sockets whose local address is the listener's are counted, and beyond the cap
//! the ones open longest are shut down (`shutdown(2)`: the owning task then sees end of file
//! and closes its descriptor; nothing is closed under it). Linux only; elsewhere a no-op.

use prometheus_client::metrics::counter::Counter;
use std::net::SocketAddr;
#[cfg(target_os = "linux")]
use std::time::Duration;

/// How often the descriptor table is swept.
#[cfg(target_os = "linux")]
pub const SWEEP: Duration = Duration::from_millis(500);

/// Enforces `cap` open connections on the listener at `local`, counting each shut down.
pub fn spawn(local: SocketAddr, cap: usize, evicted: Counter) {
    #[cfg(target_os = "linux")]
    tokio::spawn(async move {
        let mut first_seen: std::collections::HashMap<(i32, SocketAddr), std::time::Instant> =
            Default::default();
        let mut shut: std::collections::HashSet<(i32, SocketAddr)> = Default::default();
        let mut tick = tokio::time::interval(SWEEP);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let mut open = linux::connections(local);
            // shut down but not yet closed by their owner: no longer counted
            shut.retain(|k| open.contains(k));
            open.retain(|k| !shut.contains(k));
            if open.is_empty() && first_seen.is_empty() {
                continue;
            }
            let now = std::time::Instant::now();
            first_seen.retain(|k, _| open.contains(k));
            for k in &open {
                first_seen.entry(*k).or_insert(now);
            }
            if open.len() <= cap {
                continue;
            }
            let mut by_age: Vec<_> = first_seen.iter().map(|(k, t)| (*t, *k)).collect();
            by_age.sort();
            for (_, (fd, peer)) in by_age.into_iter().take(open.len() - cap) {
                if linux::shutdown_if(fd, local, peer) {
                    evicted.inc();
                    shut.insert((fd, peer));
                }
                first_seen.remove(&(fd, peer));
            }
        }
    });
    #[cfg(not(target_os = "linux"))]
    let _ = (local, cap, evicted);
}

#[cfg(target_os = "linux")]
mod linux {
    use std::net::{IpAddr, SocketAddr};

    fn addr_of(storage: &libc::sockaddr_storage) -> Option<SocketAddr> {
        match storage.ss_family as i32 {
            libc::AF_INET => {
                // SAFETY: the family says this is a sockaddr_in
                let a = unsafe { &*(storage as *const _ as *const libc::sockaddr_in) };
                Some(SocketAddr::new(
                    IpAddr::from(u32::from_be(a.sin_addr.s_addr).to_be_bytes()),
                    u16::from_be(a.sin_port),
                ))
            }
            libc::AF_INET6 => {
                // SAFETY: the family says this is a sockaddr_in6
                let a = unsafe { &*(storage as *const _ as *const libc::sockaddr_in6) };
                Some(SocketAddr::new(
                    IpAddr::from(a.sin6_addr.s6_addr),
                    u16::from_be(a.sin6_port),
                ))
            }
            _ => None,
        }
    }

    fn name(fd: i32, peer: bool) -> Option<SocketAddr> {
        // SAFETY: a zeroed sockaddr_storage and its size, filled by the kernel
        let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        let p = &mut storage as *mut _ as *mut libc::sockaddr;
        let r = unsafe {
            if peer {
                libc::getpeername(fd, p, &mut len)
            } else {
                libc::getsockname(fd, p, &mut len)
            }
        };
        if r != 0 {
            return None;
        }
        addr_of(&storage)
    }

    fn int_opt(fd: i32, opt: i32) -> Option<i32> {
        let mut v: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: an int and its size
        let r = unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_SOCKET,
                opt,
                &mut v as *mut _ as *mut libc::c_void,
                &mut len,
            )
        };
        (r == 0).then_some(v)
    }

    fn matches(fd: i32, local: SocketAddr) -> Option<SocketAddr> {
        if int_opt(fd, libc::SO_TYPE)? != libc::SOCK_STREAM
            || int_opt(fd, libc::SO_ACCEPTCONN)? != 0
        {
            return None;
        }
        let me = name(fd, false)?;
        let same = me.port() == local.port()
            && (local.ip().is_unspecified() || me.ip() == local.ip())
            && me.is_ipv4() == local.is_ipv4();
        if !same {
            return None;
        }
        name(fd, true)
    }

    /// The (descriptor, peer) of every connection accepted on `local`.
    pub(super) fn connections(local: SocketAddr) -> Vec<(i32, SocketAddr)> {
        let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for entry in dir.flatten() {
            let Some(fd) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<i32>().ok())
            else {
                continue;
            };
            match std::fs::read_link(entry.path()) {
                Ok(target)
                    if target
                        .as_os_str()
                        .as_encoded_bytes()
                        .starts_with(b"socket:") => {}
                _ => continue,
            }
            if let Some(peer) = matches(fd, local) {
                out.push((fd, peer));
            }
        }
        out
    }

    /// Shuts the connection down if `fd` is still that connection.
    pub(super) fn shutdown_if(fd: i32, local: SocketAddr, peer: SocketAddr) -> bool {
        if matches(fd, local) != Some(peer) {
            return false;
        }
        // SAFETY: shutdown(2) on a descriptor we just checked; it is not closed here
        unsafe { libc::shutdown(fd, libc::SHUT_RDWR) == 0 }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::io::Read;

    /// Beyond the cap the connections open longest are shut down: their clients read end of
    /// file, the newest stay open.
    #[tokio::test]
    async fn oldest_connections_beyond_the_cap_are_shut_down() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let local = listener.local_addr().unwrap();
        let mut clients = Vec::new();
        let mut accepted = Vec::new();
        for _ in 0..5 {
            clients.push(std::net::TcpStream::connect(local).unwrap());
            accepted.push(listener.accept().unwrap().0);
            tokio::time::sleep(Duration::from_millis(600)).await;
            if clients.len() == 1 {
                spawn(local, 3, Counter::default());
            }
        }
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let eof = |c: &mut std::net::TcpStream| {
            c.set_read_timeout(Some(Duration::from_millis(100)))
                .unwrap();
            matches!(c.read(&mut [0u8; 1]), Ok(0))
        };
        let closed: Vec<bool> = clients.iter_mut().map(eof).collect();
        assert_eq!(closed, [true, true, false, false, false]);
    }
}
