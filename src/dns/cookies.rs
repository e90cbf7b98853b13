//! DNS Cookies (RFC 7873) with server cookies in the interoperable format of RFC 9018: version
//! 1, three reserved bytes, a 4-byte timestamp and SipHash-2-4 over (client cookie, version,
//! reserved, timestamp, client address) under a 128-bit secret. Servers that share the secret
//! (the pods of one zone) recognise each other's cookies, so a client moving between them keeps
//! a valid one. Pure: the caller gives the time and the client address.

use siphasher::sip::SipHasher24;
use std::hash::Hasher;
use std::net::IpAddr;

/// EDNS option code of COOKIE (RFC 7873 §4).
pub const OPTION_CODE: u16 = 10;
/// Client cookie length.
pub const CLIENT_LEN: usize = 8;
/// A server cookie older than this is no longer valid (RFC 9018 §4.3: one hour) ...
const MAX_AGE: u32 = 3600;
/// ... nor one from further in the future than this (clock skew between servers).
const MAX_AHEAD: u32 = 300;
/// A valid cookie older than this is replaced by a fresh one in the answer (RFC 9018 §4.3).
const RENEW_AGE: u32 = 1800;

/// The COOKIE option of a query (RFC 7873 §4): the client cookie and the server cookie, if
/// any (empty when absent).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cookie<'a> {
    pub client: [u8; CLIENT_LEN],
    pub server: &'a [u8],
}

/// A COOKIE option of a length RFC 7873 §5.2.2 calls malformed (answered FORMERR).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Malformed;

/// Splits the option data: 8 bytes, or 8 + 8..=32.
pub fn parse(data: &[u8]) -> Result<Cookie<'_>, Malformed> {
    if !(data.len() == CLIENT_LEN || (16..=40).contains(&data.len())) {
        return Err(Malformed);
    }
    let mut client = [0u8; CLIENT_LEN];
    client.copy_from_slice(&data[..CLIENT_LEN]);
    Ok(Cookie {
        client,
        server: &data[CLIENT_LEN..],
    })
}

/// What the query's cookie was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// A client cookie alone (RFC 7873 §5.2.3).
    ClientOnly,
    /// A server cookie that is not ours, for another address, or expired (§5.2.4).
    Bad,
    /// A server cookie we issued to this address within the hour (§5.2.5).
    Valid,
}

/// The servers' cookie secrets: the first makes new cookies; all of them (the first and any
/// being rotated out) are accepted.
#[derive(Clone, PartialEq, Eq)]
pub struct CookieSecrets {
    keys: Vec<[u8; 16]>,
}

impl std::fmt::Debug for CookieSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CookieSecrets({} keys)", self.keys.len())
    }
}

impl CookieSecrets {
    /// A fresh random secret (a server whose cookies no other server needs to accept).
    pub fn random() -> Self {
        let mut k = [0u8; 16];
        crate::random::fill(&mut k);
        Self { keys: vec![k] }
    }

    /// From the text of a secret file: one secret per line, 32 hex digits each (128 bits);
    /// the first line signs, the others are still accepted (rotation). Blank lines and `#`
    /// comments are ignored.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut keys = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bytes = line.as_bytes();
            if bytes.len() != 32 || !bytes.iter().all(u8::is_ascii_hexdigit) {
                return Err(format!(
                    "line {}: a cookie secret is 32 hex digits (128 bits), e.g. from `openssl rand -hex 16`",
                    i + 1
                ));
            }
            let mut k = [0u8; 16];
            for (j, b) in k.iter_mut().enumerate() {
                *b = u8::from_str_radix(&line[2 * j..2 * j + 2], 16).expect("hex checked");
            }
            keys.push(k);
        }
        if keys.is_empty() {
            return Err("no secret in the file".into());
        }
        Ok(Self { keys })
    }

    /// A new server cookie for `client` at `ip`, stamped `now` (Unix seconds).
    pub fn server_cookie(&self, client: &[u8; CLIENT_LEN], ip: IpAddr, now: u64) -> [u8; 16] {
        let mut out = [0u8; 16];
        out[0] = 1; // version; reserved stay zero
        out[4..8].copy_from_slice(&(now as u32).to_be_bytes());
        let hash = mac(&self.keys[0], client, &out[..8], ip);
        out[8..].copy_from_slice(&hash);
        out
    }

    /// Checks the query's cookie from `ip` at `now`.
    pub fn check(&self, cookie: &Cookie<'_>, ip: IpAddr, now: u64) -> Verdict {
        let s = cookie.server;
        if s.is_empty() {
            return Verdict::ClientOnly;
        }
        if s.len() != 16 || s[0] != 1 {
            return Verdict::Bad;
        }
        let stamp = u32::from_be_bytes([s[4], s[5], s[6], s[7]]);
        if !fresh_enough(stamp, now as u32) {
            return Verdict::Bad;
        }
        let ours = self
            .keys
            .iter()
            .any(|k| mac(k, &cookie.client, &s[..8], ip) == s[8..16]);
        if ours { Verdict::Valid } else { Verdict::Bad }
    }

    /// The COOKIE option data of the answer: the client cookie and either the server cookie
    /// the client sent (valid and not yet half an hour old) or a fresh one.
    pub fn answer(&self, cookie: &Cookie<'_>, verdict: Verdict, ip: IpAddr, now: u64) -> Vec<u8> {
        let mut out = Vec::with_capacity(CLIENT_LEN + 16);
        out.extend_from_slice(&cookie.client);
        let keep = verdict == Verdict::Valid && {
            let s = cookie.server;
            let stamp = u32::from_be_bytes([s[4], s[5], s[6], s[7]]);
            age(stamp, now as u32) < RENEW_AGE as i64
        };
        if keep {
            out.extend_from_slice(cookie.server);
        } else {
            out.extend_from_slice(&self.server_cookie(&cookie.client, ip, now));
        }
        out
    }
}

/// Seconds since `stamp` (negative: in the future), across the 32-bit wrap (RFC 1982 style).
fn age(stamp: u32, now: u32) -> i64 {
    now.wrapping_sub(stamp) as i32 as i64
}

fn fresh_enough(stamp: u32, now: u32) -> bool {
    let a = age(stamp, now);
    (-(MAX_AHEAD as i64)..=MAX_AGE as i64).contains(&a)
}

/// SipHash-2-4 of client cookie | version, reserved, timestamp | address (RFC 9018 §4.4),
/// as the 8 bytes of the cookie.
fn mac(key: &[u8; 16], client: &[u8; CLIENT_LEN], head: &[u8], ip: IpAddr) -> [u8; 8] {
    let mut h = SipHasher24::new_with_key(key);
    h.write(client);
    h.write(head);
    match ip.to_canonical() {
        IpAddr::V4(a) => h.write(&a.octets()),
        IpAddr::V6(a) => h.write(&a.octets()),
    }
    // the RFC's vectors give the hash in SipHash's little-endian output order
    h.finish().to_le_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn secrets(lines: &[&str]) -> CookieSecrets {
        CookieSecrets::parse(&lines.join("\n")).unwrap()
    }

    fn client(s: &str) -> [u8; 8] {
        hex(s).try_into().unwrap()
    }

    /// RFC 9018 Appendix A, every vector: new cookies, renewals, an IPv6 client.
    #[test]
    fn rfc9018_appendix_vectors() {
        let s = secrets(&["e5e973e5a6b2a43f48e7dc849e37bfcf"]);
        let ip: IpAddr = "198.51.100.100".parse().unwrap();
        let c = client("2464c4abcf10c957");
        assert_eq!(
            s.server_cookie(&c, ip, 1559731985).to_vec(),
            hex("010000005cf79f111f8130c3eee29480")
        );
        assert_eq!(
            s.server_cookie(&c, ip, 1559734385).to_vec(),
            hex("010000005cf7a871d4a564a1442aca77")
        );
        let ip3: IpAddr = "203.0.113.203".parse().unwrap();
        assert_eq!(
            s.server_cookie(&client("fc93fc62807ddb86"), ip3, 1559734700)
                .to_vec(),
            hex("010000005cf7a9acf73a7810aca2381e")
        );
        let s4 = secrets(&["445536bcd2513298075a5d379663c962"]);
        let ip4: IpAddr = "2001:db8:220:1:59de:d0f4:8769:82b8".parse().unwrap();
        assert_eq!(
            s4.server_cookie(&client("22681ab97d52c298"), ip4, 1559741961)
                .to_vec(),
            hex("010000005cf7c609a6bb79d16625507a")
        );
    }

    /// A.3: the reserved bytes the client sent back are part of the hash; A.4: a cookie of
    /// the old secret is accepted while it is still listed (rotation), not after.
    #[test]
    fn verification_covers_reserved_bytes_rotation_and_address() {
        let s = secrets(&["e5e973e5a6b2a43f48e7dc849e37bfcf"]);
        let data = hex("fc93fc62807ddb8601abcdef5cf78f71a314227b6679ebf5");
        let cookie = parse(&data).unwrap();
        let ip: IpAddr = "203.0.113.203".parse().unwrap();
        let at = 0x5cf78f71 + 10;
        assert_eq!(s.check(&cookie, ip, at), Verdict::Valid);
        assert_eq!(
            s.check(&cookie, "203.0.113.204".parse().unwrap(), at),
            Verdict::Bad
        );
        let data = hex("22681ab97d52c298010000005cf7c57926556bd0934c72f8");
        let cookie = parse(&data).unwrap();
        let ip: IpAddr = "2001:db8:220:1:59de:d0f4:8769:82b8".parse().unwrap();
        let at = 0x5cf7c579 + 60;
        let old = "dd3bdf9344b678b185a6f5cb60fca715";
        let new = "445536bcd2513298075a5d379663c962";
        assert_eq!(secrets(&[old]).check(&cookie, ip, at), Verdict::Valid);
        assert_eq!(secrets(&[new, old]).check(&cookie, ip, at), Verdict::Valid);
        assert_eq!(secrets(&[new]).check(&cookie, ip, at), Verdict::Bad);
    }

    #[test]
    fn lengths_of_rfc7873_section_5_2_2() {
        for n in 0..=48 {
            let ok = n == 8 || (16..=40).contains(&n);
            let data = vec![7u8; n];
            assert_eq!(parse(&data).is_ok(), ok, "{n} bytes");
            if let Ok(c) = parse(&data) {
                assert_eq!(c.server.len(), n - 8);
            }
        }
    }

    #[test]
    fn age_window_renewal_and_wrap() {
        let s = CookieSecrets::random();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let c = [1, 2, 3, 4, 5, 6, 7, 8];
        let now = 1_800_000_000u64;
        let at = |t: u64, when: u64| {
            let sc = s.server_cookie(&c, ip, t);
            let mut data = c.to_vec();
            data.extend_from_slice(&sc);
            let v = s.check(&parse(&data).unwrap(), ip, when);
            let answer = s.answer(&parse(&data).unwrap(), v, ip, when);
            (v, answer[8..] == sc[..])
        };
        assert_eq!(at(now, now), (Verdict::Valid, true));
        assert_eq!(at(now - 1799, now), (Verdict::Valid, true));
        assert_eq!(at(now - 1800, now), (Verdict::Valid, false), "renewed");
        assert_eq!(at(now - 3600, now), (Verdict::Valid, false));
        assert_eq!(at(now - 3601, now), (Verdict::Bad, false));
        assert_eq!(at(now + 300, now), (Verdict::Valid, true));
        assert_eq!(at(now + 301, now), (Verdict::Bad, false));
        // stamped just before the 32-bit wrap, checked just after
        assert_eq!(
            at(u32::MAX as u64 - 100, (1u64 << 32) + 100),
            (Verdict::Valid, true)
        );
        // client cookie alone: a fresh cookie for exactly this client, address and time
        let v = s.check(&parse(&c).unwrap(), ip, now);
        assert_eq!(v, Verdict::ClientOnly);
        let a = s.answer(&parse(&c).unwrap(), v, ip, now);
        assert_eq!(a.len(), 24);
        assert_eq!(s.check(&parse(&a).unwrap(), ip, now + 5), Verdict::Valid);
        // a server cookie that is not of our format
        let mut odd = c.to_vec();
        odd.extend_from_slice(&[9u8; 8]);
        assert_eq!(s.check(&parse(&odd).unwrap(), ip, now), Verdict::Bad);
        // tampered hash
        let mut t = a.clone();
        t[23] ^= 1;
        assert_eq!(s.check(&parse(&t).unwrap(), ip, now), Verdict::Bad);
    }

    #[test]
    fn secret_files() {
        assert!(CookieSecrets::parse("").is_err());
        assert!(CookieSecrets::parse("# only a comment\n").is_err());
        assert!(CookieSecrets::parse("abc").is_err());
        assert!(CookieSecrets::parse("zz5e973e5a6b2a43f48e7dc849e37bfcf").is_err());
        let s = CookieSecrets::parse(
            "# current\n e5e973e5a6b2a43f48e7dc849e37bfcf \n\nDD3BDF9344B678B185A6F5CB60FCA715\n",
        )
        .unwrap();
        assert_eq!(s.keys.len(), 2);
        assert_eq!(s.keys[1][0], 0xdd);
        assert_eq!(format!("{s:?}"), "CookieSecrets(2 keys)", "no key in Debug");
    }
}
