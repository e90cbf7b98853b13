//! A zone's transfer policy as the DNS engine uses it: the networks allowed to transfer it,
//! the secondaries to NOTIFY and the TSIG key, as plain values (no Kubernetes types). The
//! parsing rules of `spec.transfer` entries live here, shared by validation and compilation.

use hickory_proto::rr::Name;
use std::net::{IpAddr, SocketAddr};

/// A network in CIDR form; a single address is a /32 or /128.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Network {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Network {
    /// Whether `ip` is inside. IPv4-mapped IPv6 peers (`::ffff:192.0.2.1`) match IPv4 networks.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - self.prefix as u32).unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX.checked_shl(128 - self.prefix as u32).unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

impl std::fmt::Display for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Parses `192.0.2.0/24`, `2001:db8::/64` or a single address.
pub fn parse_network(s: &str) -> Result<Network, String> {
    let (addr, prefix) = match s.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (s, None),
    };
    let addr: IpAddr = addr
        .parse()
        .map_err(|_| format!("{s:?} is not a CIDR or an IP address"))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        None => max,
        Some(p) => match p.parse::<u8>() {
            Ok(n) if n <= max && !p.starts_with('+') => n,
            _ => return Err(format!("{s:?}: prefix length must be 0..{max}")),
        },
    };
    Ok(Network { addr, prefix })
}

/// Parses a NOTIFY target: `192.0.2.10`, `192.0.2.10:5300`, `2001:db8::7` or
/// `[2001:db8::7]:5300`. Default port 53; port 0 is refused.
pub fn parse_notify_target(s: &str) -> Result<SocketAddr, String> {
    let addr = if let Ok(ip) = s.parse::<IpAddr>() {
        SocketAddr::new(ip, 53)
    } else {
        s.parse::<SocketAddr>()
            .map_err(|_| format!("{s:?} is not an IP address, IPv4:port or [IPv6]:port"))?
    };
    if addr.port() == 0 {
        return Err(format!("{s:?}: port 0 is not a port"));
    }
    Ok(addr)
}

/// TSIG algorithms we sign and verify with (RFC 8945 §6: hmac-sha256 is mandatory).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TsigAlgorithm {
    HmacSha256,
    HmacSha512,
}

impl TsigAlgorithm {
    /// From the Secret's `algorithm` value (`hmac-sha256`, `hmac-sha512`; case-insensitive, a
    /// trailing dot allowed, as in the algorithm's domain-name form).
    pub fn from_text(s: &str) -> Option<Self> {
        match s.trim_end_matches('.').to_ascii_lowercase().as_str() {
            "hmac-sha256" => Some(Self::HmacSha256),
            "hmac-sha512" => Some(Self::HmacSha512),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::HmacSha256 => "hmac-sha256",
            Self::HmacSha512 => "hmac-sha512",
        }
    }

    /// The algorithm's name in the TSIG record.
    pub fn name(self) -> Name {
        Name::from_ascii(format!("{}.", self.as_str())).expect("valid constant name")
    }

    /// Length of a full MAC in bytes.
    pub fn mac_len(self) -> usize {
        match self {
            Self::HmacSha256 => 32,
            Self::HmacSha512 => 64,
        }
    }
}

/// A TSIG key: its name (lowercase, fully qualified), algorithm and secret bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct TsigKey {
    pub name: Name,
    pub algorithm: TsigAlgorithm,
    pub secret: Vec<u8>,
}

impl std::fmt::Debug for TsigKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // never the secret, not even in debug output
        f.debug_struct("TsigKey")
            .field("name", &self.name.to_ascii())
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

/// What the policy says about the key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyRequirement {
    /// No key configured: the address alone decides.
    None,
    /// Transfers must be signed with this key; NOTIFY is signed with it.
    Key(TsigKey),
    /// A key is configured but unusable (Secret missing or invalid): every transfer is
    /// refused and NOTIFY is not sent, rather than falling open.
    Unusable(String),
}

/// One zone's transfer policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransferPolicy {
    pub allow_from: Vec<Network>,
    pub notify: Vec<SocketAddr>,
    pub key: KeyRequirement,
}

impl TransferPolicy {
    pub fn allows_address(&self, ip: IpAddr) -> bool {
        self.allow_from.iter().any(|n| n.contains(ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_parse_and_contain() {
        let n = parse_network("192.0.2.0/24").unwrap();
        assert!(n.contains("192.0.2.77".parse().unwrap()));
        assert!(!n.contains("192.0.3.1".parse().unwrap()));
        assert!(n.contains("::ffff:192.0.2.9".parse().unwrap()));
        assert!(!n.contains("2001:db8::1".parse().unwrap()));
        let one = parse_network("127.0.0.1").unwrap();
        assert_eq!(one.prefix, 32);
        assert!(one.contains("127.0.0.1".parse().unwrap()));
        assert!(!one.contains("127.0.0.2".parse().unwrap()));
        let v6 = parse_network("2001:db8::/64").unwrap();
        assert!(v6.contains("2001:db8::ff".parse().unwrap()));
        assert!(!v6.contains("2001:db8:1::ff".parse().unwrap()));
        let all = parse_network("0.0.0.0/0").unwrap();
        assert!(all.contains("203.0.113.5".parse().unwrap()));
        for bad in [
            "192.0.2.0/33",
            "2001:db8::/129",
            "x/8",
            "192.0.2.0/",
            "10.0.0.0/+8",
            "",
        ] {
            assert!(parse_network(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn notify_targets_parse() {
        assert_eq!(
            parse_notify_target("192.0.2.10").unwrap(),
            "192.0.2.10:53".parse().unwrap()
        );
        assert_eq!(
            parse_notify_target("198.51.100.7:5300").unwrap(),
            "198.51.100.7:5300".parse().unwrap()
        );
        assert_eq!(
            parse_notify_target("2001:db8::7").unwrap(),
            "[2001:db8::7]:53".parse().unwrap()
        );
        assert_eq!(
            parse_notify_target("[2001:db8::7]:5300").unwrap(),
            "[2001:db8::7]:5300".parse().unwrap()
        );
        for bad in [
            "host.example",
            "192.0.2.10:0",
            "192.0.2.10:70000",
            "2001:db8::7:53:x",
        ] {
            assert!(parse_notify_target(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn algorithms_from_text() {
        assert_eq!(
            TsigAlgorithm::from_text("HMAC-SHA256."),
            Some(TsigAlgorithm::HmacSha256)
        );
        assert_eq!(
            TsigAlgorithm::from_text("hmac-sha512"),
            Some(TsigAlgorithm::HmacSha512)
        );
        assert_eq!(TsigAlgorithm::from_text("hmac-md5"), None);
        let k = TsigKey {
            name: Name::from_ascii("k.").unwrap(),
            algorithm: TsigAlgorithm::HmacSha256,
            secret: b"very secret".to_vec(),
        };
        assert!(!format!("{k:?}").contains("secret: "));
    }
}
