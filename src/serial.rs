//! SOA serials. A zone's serial changes only when its content changes and then increases
//! (Unix-time based, far from RFC 1982 wrap-around): the new serial is
//! `max(previous + 1, content_time)`.
//!
//! `content_time` is a timestamp of the inputs that every server reading the same inputs sees
//! identically: in files mode the newest mtime of the manifest files and directories (a
//! directory's mtime moves when a file is added or removed). So two servers fed the same tree
//! publish the same serial, and a restart over unchanged files recomputes the same serial. With
//! `--state-dir` the last (content hash, serial) pair per zone is also persisted, which keeps
//! the `previous + 1` bumps (two changes within one second) across restarts too.

use crate::fnv::Fnv1a;
use crate::zone::{RRsets, ZoneData};
use hickory_proto::rr::Name;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// A stable 64-bit fingerprint of a zone's content, shared between the servers of a zone (the
/// serial ConfigMap): FNV-1a over explicit bytes, so every build on every platform computes the
/// same value. What is fed, all integers big-endian:
///
/// - the origin as a canonical wire-form name (lowercase labels, uncompressed, root label);
/// - the SOA's MNAME and RNAME the same way, then REFRESH, RETRY, EXPIRE, MINIMUM and its TTL
///   as 4 bytes each;
/// - the sum (mod 2^64) of [`name_hash`] over the owner names, as 8 bytes.
pub fn content_hash(data: &ZoneData) -> u64 {
    content_hash_from(data, names_sum(data))
}

/// The sum of `name_hash` over the zone's names (on every core for a large zone).
pub fn names_sum(data: &ZoneData) -> u64 {
    let names: Vec<(&Name, &RRsets)> = data.records.iter().collect();
    crate::parallel::map_chunks(&names, 4096, |chunk| {
        vec![
            chunk
                .iter()
                .fold(0u64, |s, (n, sets)| s.wrapping_add(name_hash(n, sets))),
        ]
    })
    .into_iter()
    .fold(0u64, u64::wrapping_add)
}

/// `content_hash` from the sum of `name_hash` over the zone's names, which a caller that knows
/// which names changed can keep up to date: subtract a name's old hash, add its new one.
pub fn content_hash_from(data: &ZoneData, names_sum: u64) -> u64 {
    let mut h = Fnv1a::new();
    wire_name(&mut h, &data.origin);
    let s = &data.soa;
    wire_name(&mut h, &s.mname);
    wire_name(&mut h, &s.rname);
    h.u32(s.refresh)
        .u32(s.retry)
        .u32(s.expire)
        .u32(s.minimum)
        .u32(s.ttl)
        .u64(names_sum);
    h.finish()
}

/// The share of one owner name's RRsets in `content_hash`: order-independent (records is a hash
/// map), a sum of mixed per-RRset hashes. Each RRset feeds the owner (canonical wire form),
/// TYPE, CLASS (IN) and TTL, then each RDATA in the set's order as a 2-byte length and its
/// canonical wire bytes (RFC 4034 section 6.2: names uncompressed, lowercase where the type says).
pub fn name_hash(name: &Name, sets: &RRsets) -> u64 {
    let mut owner = Fnv1a::new();
    wire_name(&mut owner, name);
    let mut sum: u64 = 0;
    let mut buf = Vec::new();
    for (t, set) in sets {
        let mut r = owner;
        r.u16(u16::from(*t))
            .u16(u16::from(hickory_proto::rr::DNSClass::IN))
            .u32(set.ttl);
        for rd in &set.rdata {
            buf.clear();
            let mut enc = hickory_proto::serialize::binary::BinEncoder::new(&mut buf);
            enc.set_canonical_form(true);
            match hickory_proto::serialize::binary::BinEncodable::emit(rd, &mut enc) {
                Ok(()) => {
                    r.u16(buf.len() as u16).bytes(&buf);
                }
                // not encodable (the compiler never publishes such data): its text stands in,
                // after a length no wire RDATA has
                Err(_) => {
                    r.u16(u16::MAX).bytes(rd.to_string().as_bytes());
                }
            }
        }
        // mix before summing: FNV's last step is nearly linear, and two RRsets changing the
        // same way (one Ingress, two names) could cancel out in a plain sum
        sum = sum.wrapping_add(mix(r.finish()));
    }
    sum
}

/// Feeds `name` in canonical wire form: each label as its length and lowercase bytes, then the
/// root label.
fn wire_name(h: &mut Fnv1a, name: &Name) {
    for label in name.iter() {
        h.bytes(&[label.len() as u8]);
        for b in label {
            h.bytes(&[b.to_ascii_lowercase()]);
        }
    }
    h.bytes(&[0]);
}

/// The splitmix64 finalizer: a bijective, strongly mixing step.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
    z ^ (z >> 31)
}

/// Assigns serials per zone (keyed by apex).
#[derive(Debug, Default)]
pub struct SerialKeeper {
    state: BTreeMap<String, (u64, u32)>,
    file: Option<PathBuf>,
}

impl SerialKeeper {
    /// With a state directory, serials survive restarts exactly.
    pub fn new(state_dir: Option<PathBuf>) -> Self {
        let file = state_dir.map(|d| d.join("serials.json"));
        let state = file
            .as_ref()
            .and_then(|f| std::fs::read_to_string(f).ok())
            .and_then(|t| serde_json::from_str::<BTreeMap<String, (u64, u32)>>(&t).ok())
            .unwrap_or_default();
        Self { state, file }
    }

    /// The serial for `zone` with content `hash` whose inputs are dated `now` (Unix seconds).
    pub fn serial(&mut self, zone: &str, hash: u64, now: u64) -> u32 {
        let now = now.min(u32::MAX as u64) as u32;
        let serial = match self.state.get(zone) {
            Some((h, s)) if *h == hash => return *s,
            Some((_, s)) => now.max(s.wrapping_add(1)),
            None => now,
        };
        self.state.insert(zone.to_string(), (hash, serial));
        serial
    }

    /// Records a serial decided elsewhere (e.g. shared by the zone's other servers), so that a
    /// later fallback to this keeper continues from it instead of starting over.
    pub fn remember(&mut self, zone: &str, hash: u64, serial: u32) {
        self.state.insert(zone.to_string(), (hash, serial));
    }

    /// Writes the state file (atomically: write then rename). Errors are returned for logging.
    pub fn persist(&self) -> std::io::Result<()> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        if let Some(dir) = file.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = file.with_extension("json.tmp");
        std::fs::write(
            &tmp,
            serde_json::to_vec(&self.state).map_err(std::io::Error::other)?,
        )?;
        std::fs::rename(tmp, file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unchanged_content_keeps_serial_and_changes_increase_it() {
        let mut k = SerialKeeper::new(None);
        assert_eq!(k.serial("a.", 1, 1000), 1000);
        assert_eq!(k.serial("a.", 1, 2000), 1000, "same content, same serial");
        assert_eq!(k.serial("a.", 2, 2000), 2000);
        assert_eq!(
            k.serial("a.", 3, 2000),
            2001,
            "two changes in one second still increase"
        );
        assert_eq!(
            k.serial("a.", 4, 1500),
            2002,
            "a clock step backwards never lowers it"
        );
        assert_eq!(k.serial("b.", 4, 1500), 1500, "zones are independent");
    }

    #[test]
    fn state_survives_restart() {
        let dir = std::env::temp_dir().join(format!("zg-serial-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut k = SerialKeeper::new(Some(dir.clone()));
        k.serial("a.", 7, 1000);
        k.serial("a.", 8, 1000);
        k.persist().unwrap();
        let mut k2 = SerialKeeper::new(Some(dir.clone()));
        assert_eq!(
            k2.serial("a.", 8, 5),
            1001,
            "restart with same content keeps serial"
        );
        assert_eq!(k2.serial("a.", 9, 5), 1002, "restart never goes backwards");
    }
}

#[cfg(test)]
mod hash_tests {
    use super::*;
    use crate::zone::{SoaData, ZoneData};
    use hickory_proto::rr::rdata::A;
    use hickory_proto::rr::{Name, RData};

    fn zone(ip: [u8; 4]) -> ZoneData {
        let o = Name::from_ascii("a.example.").unwrap();
        let soa = SoaData {
            mname: o.clone(),
            rname: o.clone(),
            refresh: 1,
            retry: 1,
            expire: 1,
            minimum: 1,
            ttl: 1,
        };
        let mut z = ZoneData::new(o.clone(), soa);
        z.add(
            Name::from_ascii("www.a.example.").unwrap(),
            60,
            RData::A(A::from(std::net::Ipv4Addr::from(ip))),
        );
        z.add(
            Name::from_ascii("b.a.example.").unwrap(),
            60,
            RData::A(A::from(std::net::Ipv4Addr::new(192, 0, 2, 9))),
        );
        z
    }

    #[test]
    fn content_hash_sees_every_change_and_ignores_order() {
        assert_eq!(
            content_hash(&zone([192, 0, 2, 1])),
            content_hash(&zone([192, 0, 2, 1]))
        );
        assert_ne!(
            content_hash(&zone([192, 0, 2, 1])),
            content_hash(&zone([192, 0, 2, 2]))
        );
        let mut z = zone([192, 0, 2, 1]);
        z.records
            .get_mut(&Name::from_ascii("www.a.example.").unwrap())
            .unwrap()
            .values_mut()
            .next()
            .unwrap()
            .ttl = 61;
        assert_ne!(
            content_hash(&z),
            content_hash(&zone([192, 0, 2, 1])),
            "TTL counts"
        );
        // two names changing the same way must not cancel out
        let two = |last: u8| {
            let mut z = zone([192, 0, 2, 1]);
            for n in ["x.a.example.", "y.a.example."] {
                z.add(
                    Name::from_ascii(n).unwrap(),
                    60,
                    RData::A(A::from(std::net::Ipv4Addr::new(198, 51, 100, last))),
                );
            }
            content_hash(&z)
        };
        for last in 0..50u8 {
            assert_ne!(two(last), two(last + 1), "{last}");
        }
    }

    #[test]
    fn content_hash_is_pinned() {
        // These values are shared between replicas of different builds through the serial
        // ConfigMap: a change here changes every published serial once. Change them only
        // on purpose, and say so in the release notes.
        let z = zone([192, 0, 2, 1]);
        let www = Name::from_ascii("www.a.example.").unwrap();
        // (computed independently from the byte layout documented on `content_hash`)
        assert_eq!(name_hash(&www, &z.records[&www]), 0x028e1f6784210206);
        assert_eq!(content_hash(&z), 0xc2798e686d04c9ee);
        // RDATA names in canonical form: lowercase, uncompressed
        let mail = Name::from_ascii("mail.a.example.").unwrap();
        let mut sets = RRsets::new();
        sets.entry(hickory_proto::rr::RecordType::CNAME, 300).push(
            300,
            RData::CNAME(hickory_proto::rr::rdata::CNAME(
                Name::from_ascii("WWW.A.example.").unwrap(),
            )),
        );
        assert_eq!(name_hash(&mail, &sets), 0xe646a27430d4fefe);
        // case does not count: names are fed in canonical (lowercase) form
        let upper = Name::from_ascii("WWW.A.Example.").unwrap();
        assert_eq!(
            name_hash(&upper, &z.records[&www]),
            name_hash(&www, &z.records[&www])
        );
    }
}
