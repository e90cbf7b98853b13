//! The query ACL (`serve --allow-query CIDR`): which client addresses are answered. One pure
//! type that every transport asks (the responder refuses for it, so UDP, TCP and the hickory
//! transports apply the same rule); an empty list allows everyone.

use std::net::IpAddr;
use std::str::FromStr;

/// An address prefix: `192.0.2.0/24`, `2001:db8::/32`, or a bare address (`/32`, `/128`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    len: u8,
}

impl Cidr {
    /// Whether `ip` is inside this prefix (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - self.len as u32).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - self.len as u32).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (addr, len) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("{s}: not an address prefix (192.0.2.0/24, 2001:db8::/32)"))?;
        let addr = addr.to_canonical();
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let len = match len {
            None => max,
            Some(l) => l
                .parse::<u8>()
                .ok()
                .filter(|l| *l <= max)
                .ok_or_else(|| format!("{s}: prefix length must be 0..={max}"))?,
        };
        Ok(Self { addr, len })
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// The prefixes allowed to query; empty = everyone.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueryAcl {
    allowed: Vec<Cidr>,
}

impl QueryAcl {
    pub fn new(allowed: Vec<Cidr>) -> Self {
        Self { allowed }
    }

    /// Whether a query from `peer` is answered. Without a known peer (a caller that has
    /// none) only an open ACL allows.
    pub fn allows(&self, peer: Option<IpAddr>) -> bool {
        if self.allowed.is_empty() {
            return true;
        }
        peer.is_some_and(|ip| self.allowed.iter().any(|c| c.contains(ip)))
    }

    pub fn is_open(&self) -> bool {
        self.allowed.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn parses_prefixes_and_rejects_nonsense() {
        assert_eq!(
            "10.1.2.3/8".parse::<Cidr>().unwrap().to_string(),
            "10.1.2.3/8"
        );
        assert_eq!(
            "192.0.2.7".parse::<Cidr>().unwrap().to_string(),
            "192.0.2.7/32"
        );
        assert_eq!(
            "2001:db8::/32".parse::<Cidr>().unwrap().to_string(),
            "2001:db8::/32"
        );
        assert_eq!(
            "::ffff:10.0.0.1".parse::<Cidr>().unwrap().to_string(),
            "10.0.0.1/32"
        );
        for bad in [
            "10.0.0.0/33",
            "2001:db8::/129",
            "10.0.0/8",
            "x",
            "10.0.0.0/",
            "/8",
            "",
        ] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn longest_and_shortest_prefixes_match_exactly_their_range() {
        let c: Cidr = "192.0.2.128/25".parse().unwrap();
        assert!(c.contains("192.0.2.128".parse().unwrap()));
        assert!(c.contains("192.0.2.255".parse().unwrap()));
        assert!(!c.contains("192.0.2.127".parse().unwrap()));
        assert!(!c.contains("::ffff:192.0.2.127".parse().unwrap()));
        assert!(c.contains("::ffff:192.0.2.200".parse().unwrap()));
        assert!(!c.contains("2001:db8::1".parse().unwrap()));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("203.0.113.9".parse().unwrap()));
        assert!(!all.contains("::1".parse().unwrap()));
        let v6: Cidr = "2001:db8:0:100::/56".parse().unwrap();
        assert!(v6.contains("2001:db8:0:1ff::1".parse().unwrap()));
        assert!(!v6.contains("2001:db8:0:200::1".parse().unwrap()));
        let host: Cidr = "::1".parse().unwrap();
        assert!(host.contains("::1".parse().unwrap()));
        assert!(!host.contains("::2".parse().unwrap()));
    }

    #[test]
    fn empty_allows_everyone_else_only_the_listed() {
        assert!(QueryAcl::default().allows(ip("203.0.113.1")));
        assert!(QueryAcl::default().allows(None));
        let acl = QueryAcl::new(vec![
            "127.0.0.0/30".parse().unwrap(),
            "::1".parse().unwrap(),
        ]);
        assert!(acl.allows(ip("127.0.0.3")));
        assert!(!acl.allows(ip("127.0.0.4")));
        assert!(acl.allows(ip("::1")));
        assert!(!acl.allows(ip("::2")));
        assert!(!acl.allows(None));
    }
}
