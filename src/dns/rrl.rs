//! Response Rate Limiting for UDP, as BIND defines it (`rate-limit { responses-per-second;
//! window; slip; }`), in a fixed-size lock-free table that every UDP thread shares.
//!
//! An account is kept per (client prefix, kind of response, name): /24 for IPv4 and /56 for
//! IPv6 by default; answers are counted by query name and type, NODATA by name, NXDOMAIN and
//! wildcard answers by zone, referrals by the delegation, and every error of a prefix in one
//! account. An account earns `rate` credits a second, up to `rate`, pays one per response and
//! goes at most `window × rate` into debt; while it is in debt its responses are limited: each
//! `slip`-th one is sent truncated (TC=1, or BADCOOKIE when the query had a client cookie) so
//! that a real client retries over TCP, the others are dropped (slip 0: drop all; 1: truncate
//! all). A client that keeps sending faster than the rate stays limited; one that slows down
//! is answered again once its average over the window is under the rate.
//!
//! Time is continuous rather than BIND's whole seconds: an account is one word, the time at
//! which its debt would be paid off (the "theoretical arrival time" of the generic cell rate
//! algorithm), which is exactly BIND's balance: debt `d` seconds = balance `rate × (1 − d)`.

use hickory_proto::rr::{Name, RecordType};
use siphasher::sip::SipHasher13;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Accounts in the table (a power of two): 8 bytes each, 2 MiB. A new account takes the slot of
/// whatever account hashed there (a table under a flood of distinct keys forgets, it does not
/// grow).
const SLOTS: usize = 1 << 18;

/// The `serve` settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RrlConfig {
    /// Responses per second per account (> 0).
    pub rate: u32,
    /// Every `slip`-th limited response is truncated, the others dropped (0..=10).
    pub slip: u8,
    /// Seconds of debt at most (1..=3600).
    pub window: u32,
    /// Prefix lengths that make one client.
    pub ipv4_prefix: u8,
    pub ipv6_prefix: u8,
}

impl RrlConfig {
    /// BIND's and Knot's defaults except the rate, which has none.
    pub fn new(rate: u32) -> Self {
        Self {
            rate,
            slip: 2,
            window: 15,
            ipv4_prefix: 24,
            ipv6_prefix: 56,
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.rate == 0 {
            return Err("the rate must be above 0".into());
        }
        if self.slip > 10 {
            return Err(format!("slip {} must be 0..=10", self.slip));
        }
        if !(1..=3600).contains(&self.window) {
            return Err(format!("window {} must be 1..=3600 seconds", self.window));
        }
        if self.ipv4_prefix > 32 || self.ipv6_prefix > 128 {
            return Err("prefix lengths must be 0..=32 (IPv4) and 0..=128 (IPv6)".into());
        }
        Ok(())
    }
}

/// What a response counts as.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Answer,
    NoData,
    NxDomain,
    Referral,
    Wildcard,
    Error,
}

/// The account a response is charged to, less the client: a kind and a hash of the name that
/// identifies "the same response" (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Key {
    pub kind: Kind,
    pub name: u64,
}

/// Process-wide random key of the name hashes: a client cannot choose names that share an
/// account with another's.
static NAME_KEY: LazyLock<[u8; 16]> = LazyLock::new(|| {
    let mut k = [0u8; 16];
    crate::random::fill(&mut k);
    k
});

impl Key {
    /// `name` (lower-cased by the caller) and, for answers, the type.
    pub fn new(kind: Kind, name: &Name, qtype: Option<RecordType>) -> Self {
        let mut h = SipHasher13::new_with_key(&NAME_KEY);
        name.hash(&mut h);
        if let Some(t) = qtype {
            u16::from(t).hash(&mut h);
        }
        Self {
            kind,
            name: h.finish(),
        }
    }

    /// By zone apex (label), for NXDOMAIN and wildcards.
    pub fn zone(kind: Kind, label: &str) -> Self {
        let mut h = SipHasher13::new_with_key(&NAME_KEY);
        label.hash(&mut h);
        Self {
            kind,
            name: h.finish(),
        }
    }

    /// The one error account of a prefix.
    pub fn error() -> Self {
        Self {
            kind: Kind::Error,
            name: 0,
        }
    }
}

/// What to do with one response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Send,
    /// Send a truncated response instead.
    Slip,
    Drop,
}

// An account word: tag (12 bits) | slip counter (4) | paid-off time (48, ns since `start`,
// modulo 2^48 ≈ 78 h).
const TIME_BITS: u32 = 48;
const TIME_MASK: u64 = (1 << TIME_BITS) - 1;
const NS: u64 = 1_000_000_000;

/// The shared table.
pub struct RateLimiter {
    cfg: RrlConfig,
    /// Cost of one response in ns of debt.
    cost: u64,
    /// Most debt, ns: one second of credit plus the window.
    cap: u64,
    seed: (u64, u64),
    start: Instant,
    table: Box<[AtomicU64]>,
}

impl RateLimiter {
    pub fn new(cfg: RrlConfig) -> Self {
        let mut s = [0u8; 16];
        crate::random::fill(&mut s);
        let seed = (
            u64::from_le_bytes(s[..8].try_into().expect("8 bytes")),
            u64::from_le_bytes(s[8..].try_into().expect("8 bytes")),
        );
        Self {
            cfg,
            cost: (NS / cfg.rate.max(1) as u64).max(1),
            cap: NS * (cfg.window as u64 + 1),
            seed,
            start: Instant::now(),
            table: (0..SLOTS).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    pub fn config(&self) -> &RrlConfig {
        &self.cfg
    }

    /// The client's prefix, as one number (IPv4 and IPv6 never equal).
    fn prefix(&self, ip: IpAddr) -> u128 {
        match ip.to_canonical() {
            IpAddr::V4(a) => {
                let mask = u32::MAX
                    .checked_shl(32 - self.cfg.ipv4_prefix as u32)
                    .unwrap_or(0);
                (1u128 << 64) | (u32::from(a) & mask) as u128
            }
            IpAddr::V6(a) => {
                let mask = u128::MAX
                    .checked_shl(128 - self.cfg.ipv6_prefix as u32)
                    .unwrap_or(0);
                // IPv6 prefixes are at most 128 bits; fold the flag into the low bit the mask
                // leaves (a /128 loses one bit of distinction, which only merges two addresses)
                (u128::from(a) & mask) | 1
            }
        }
    }

    fn slot(&self, ip: IpAddr, key: Key) -> (usize, u64) {
        let p = self.prefix(ip);
        let kind = key.kind as u64;
        let h = mix(
            mix((p >> 64) as u64 ^ self.seed.0, p as u64 ^ self.seed.1),
            key.name ^ kind.wrapping_mul(0x9e37_79b9_7f4a_7c15),
        );
        ((h as usize) & (SLOTS - 1), h >> 52)
    }

    /// Charges one response to its account at time `now` and says what to do with it.
    pub fn check(&self, ip: IpAddr, key: Key, now: Instant) -> Action {
        let (i, tag) = self.slot(ip, key);
        let now = (now.saturating_duration_since(self.start).as_nanos() as u64) & TIME_MASK;
        let cell = &self.table[i];
        let mut old = cell.load(Ordering::Relaxed);
        loop {
            let (debt, slips) = if old >> 52 == tag && old != 0 {
                let due = old & TIME_MASK;
                let d = due.wrapping_sub(now) & TIME_MASK;
                // past due, or not a debt this limiter can have made (a slot left alone for
                // longer than the clock wraps): nothing owed
                let d = if d > self.cap { 0 } else { d };
                (d, (old >> TIME_BITS) & 0xf)
            } else {
                (0, 0) // a new account: full credit
            };
            let owed = debt + self.cost;
            let (action, slips) = if owed <= NS {
                (Action::Send, 0)
            } else if self.cfg.slip == 0 {
                (Action::Drop, 0)
            } else {
                let action = if slips == 0 {
                    Action::Slip
                } else {
                    Action::Drop
                };
                (action, (slips + 1) % self.cfg.slip as u64)
            };
            let due = (now + owed.min(self.cap)) & TIME_MASK;
            let new = (tag << 52) | (slips << TIME_BITS) | due;
            match cell.compare_exchange_weak(old, new.max(1), Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return action,
                Err(cur) => old = cur,
            }
        }
    }
}

fn mix(a: u64, b: u64) -> u64 {
    let m = (a ^ 0xa076_1d64_78bd_642f) as u128 * (b ^ 0xe703_7ed1_a0b4_28db) as u128;
    (m as u64) ^ ((m >> 64) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn n(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn limiter(rate: u32, slip: u8, window: u32) -> RateLimiter {
        RateLimiter::new(RrlConfig {
            slip,
            window,
            ..RrlConfig::new(rate)
        })
    }

    /// Sends `count` responses evenly over `secs` from `t0`; returns (sent, slipped, dropped).
    fn flood(
        l: &RateLimiter,
        who: &str,
        key: Key,
        t0: Instant,
        secs: f64,
        count: u32,
    ) -> (u32, u32, u32) {
        let mut r = (0, 0, 0);
        for k in 0..count {
            let t = t0 + Duration::from_secs_f64(secs * k as f64 / count as f64);
            match l.check(ip(who), key, t) {
                Action::Send => r.0 += 1,
                Action::Slip => r.1 += 1,
                Action::Drop => r.2 += 1,
            }
        }
        r
    }

    /// A fresh account answers `rate` at once (BIND's balance starts at the rate), then none
    /// while the flood goes on faster than the rate; every second limited one slips.
    #[test]
    fn burst_then_limited_with_slip_two() {
        let l = limiter(100, 2, 15);
        let key = Key::new(Kind::Answer, &n("www.example.com."), Some(RecordType::A));
        let t0 = Instant::now();
        let (sent, slipped, dropped) = flood(&l, "192.0.2.1", key, t0, 0.0, 2000);
        assert_eq!(sent, 100);
        assert_eq!(slipped, 950);
        assert_eq!(dropped, 950);
    }

    /// A client sending at exactly half the rate is never limited; one at twice the rate over
    /// a long window is limited after its first second of credit.
    #[test]
    fn under_the_rate_is_never_limited() {
        let l = limiter(50, 1, 5);
        let key = Key::new(Kind::Answer, &n("a.example."), Some(RecordType::A));
        let (sent, _, _) = flood(&l, "192.0.2.1", key, Instant::now(), 20.0, 500);
        assert_eq!(sent, 500);
    }

    /// After a flood, the debt (at most the window) is paid off by time alone: a client that
    /// stops for window + 1 seconds starts again with full credit, and not earlier.
    #[test]
    fn recovers_after_the_window() {
        let l = limiter(10, 0, 3);
        let key = Key::new(Kind::Answer, &n("a.example."), Some(RecordType::A));
        let t0 = Instant::now();
        let (sent, slipped, dropped) = flood(&l, "192.0.2.1", key, t0, 1.0, 1000);
        assert_eq!((sent, slipped, dropped), (10, 0, 990), "slip 0 drops all");
        // 4 s of debt at most (1 s of credit + window 3 s): paid down to a zero balance after
        // 3 s, so 2.8 s after the flood still limited, half a second later half the credit
        let (s, _, _) = flood(
            &l,
            "192.0.2.1",
            key,
            t0 + Duration::from_millis(3800),
            0.001,
            1,
        );
        assert_eq!(s, 0);
        let (s, _, _) = flood(
            &l,
            "192.0.2.1",
            key,
            t0 + Duration::from_millis(4500),
            0.001,
            10,
        );
        assert!((4..=5).contains(&s), "{s}");
        let (s, _, _) = flood(
            &l,
            "192.0.2.1",
            key,
            t0 + Duration::from_millis(8000),
            0.1,
            10,
        );
        assert_eq!(s, 10);
    }

    /// Slip 1 truncates every limited response.
    #[test]
    fn slip_one_truncates_all() {
        let l = limiter(20, 1, 15);
        let key = Key::error();
        let (sent, slipped, dropped) = flood(&l, "192.0.2.1", key, Instant::now(), 0.0, 220);
        assert_eq!((sent, slipped, dropped), (20, 200, 0));
    }

    /// Accounts are per prefix and per response: the same /24 shares, another /24 does not,
    /// another name does not, IPv6 /56 shares; the prefix lengths are settings.
    #[test]
    fn accounts_are_per_prefix_and_response() {
        let l = limiter(5, 0, 15);
        let t = Instant::now();
        let a = Key::new(Kind::Answer, &n("a.example."), Some(RecordType::A));
        let aaaa = Key::new(Kind::Answer, &n("a.example."), Some(RecordType::AAAA));
        assert_eq!(flood(&l, "192.0.2.1", a, t, 0.01, 5).0, 5);
        assert_eq!(flood(&l, "192.0.2.200", a, t, 0.01, 5).0, 0, "same /24");
        assert_eq!(flood(&l, "192.0.3.1", a, t, 0.01, 5).0, 5, "other /24");
        assert_eq!(flood(&l, "192.0.2.1", aaaa, t, 0.01, 5).0, 5, "other type");
        assert_eq!(flood(&l, "2001:db8:0:1::1", a, t, 0.01, 5).0, 5);
        assert_eq!(
            flood(&l, "2001:db8:0:ff::2", a, t, 0.01, 5).0,
            0,
            "same /56"
        );
        assert_eq!(
            flood(&l, "2001:db8:0:100::1", a, t, 0.01, 5).0,
            5,
            "other /56"
        );
        assert_eq!(
            flood(&l, "::ffff:192.0.2.9", a, t, 0.01, 5).0,
            0,
            "mapped = IPv4"
        );
        let host = RateLimiter::new(RrlConfig {
            ipv4_prefix: 32,
            ..RrlConfig::new(5)
        });
        assert_eq!(flood(&host, "127.0.0.10", a, t, 0.01, 5).0, 5);
        assert_eq!(
            flood(&host, "127.0.0.20", a, t, 0.01, 5).0,
            5,
            "/32: own account"
        );
    }

    /// The kinds keep separate accounts; NXDOMAIN of any name in a zone is one account.
    #[test]
    fn keys_follow_bind_identity_rules() {
        let nx1 = Key::zone(Kind::NxDomain, "example.com");
        let nx2 = Key::zone(Kind::NxDomain, "example.com");
        assert_eq!(nx1, nx2);
        assert_ne!(nx1, Key::zone(Kind::NxDomain, "example.org"));
        assert_ne!(nx1, Key::zone(Kind::Wildcard, "example.com"));
        assert_eq!(
            Key::new(Kind::Answer, &n("www.example.com."), Some(RecordType::A)),
            Key::new(Kind::Answer, &n("www.example.com."), Some(RecordType::A))
        );
        assert_ne!(
            Key::new(Kind::Answer, &n("www.example.com."), None),
            Key::new(Kind::Answer, &n("x.example.com."), None)
        );
        assert_ne!(
            Key::new(Kind::Answer, &n("www.example.com."), Some(RecordType::A)),
            Key::new(Kind::Answer, &n("www.example.com."), Some(RecordType::MX))
        );
        let l = limiter(3, 0, 15);
        let t = Instant::now();
        assert_eq!(flood(&l, "192.0.2.1", nx1, t, 0.01, 5).0, 3);
        assert_eq!(
            flood(
                &l,
                "192.0.2.1",
                Key::zone(Kind::Wildcard, "example.com"),
                t,
                0.01,
                5
            )
            .0,
            3
        );
        assert_eq!(flood(&l, "192.0.2.1", Key::error(), t, 0.01, 5).0, 3);
    }

    /// Many threads charging one account: exactly `rate` responses pass in total.
    #[test]
    fn concurrent_threads_share_an_account_exactly() {
        let l = std::sync::Arc::new(limiter(1000, 0, 15));
        let key = Key::new(Kind::Answer, &n("a.example."), Some(RecordType::A));
        let t = Instant::now();
        let sent: u32 = (0..4)
            .map(|_| {
                let l = l.clone();
                std::thread::spawn(move || {
                    (0..2000)
                        .filter(|_| l.check(ip("192.0.2.1"), key, t) == Action::Send)
                        .count() as u32
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .sum();
        assert_eq!(sent, 1000);
    }

    #[test]
    fn settings_are_checked() {
        assert!(RrlConfig::new(0).validate().is_err());
        assert!(RrlConfig::new(5).validate().is_ok());
        assert!(
            RrlConfig {
                slip: 11,
                ..RrlConfig::new(5)
            }
            .validate()
            .is_err()
        );
        assert!(
            RrlConfig {
                window: 0,
                ..RrlConfig::new(5)
            }
            .validate()
            .is_err()
        );
        assert!(
            RrlConfig {
                window: 3601,
                ..RrlConfig::new(5)
            }
            .validate()
            .is_err()
        );
        assert!(
            RrlConfig {
                ipv4_prefix: 33,
                ..RrlConfig::new(5)
            }
            .validate()
            .is_err()
        );
    }
}
