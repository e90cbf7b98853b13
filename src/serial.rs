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
use std::future::Future;
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

/// The serial hash of a signed zone: its `content_hash`, its keys' DNSKEY RDATA (each as a
/// 2-byte length and the bytes, in the keys' order) and its signing generation
/// (`dnssec::sign::generation`, 4 bytes), FNV-1a as above. So renewed signatures and a key
/// change give a new serial as a content change does, and secondaries transfer them (a
/// secondary that is current never asks again). Unsigned zones keep `content_hash`.
pub fn signed_hash<'a>(
    content: u64,
    dnskeys: impl IntoIterator<Item = &'a [u8]>,
    generation: u32,
) -> u64 {
    let mut h = Fnv1a::new();
    h.bytes(b"signed").u64(content);
    for k in dnskeys {
        h.u16(k.len() as u16).bytes(k);
    }
    h.u32(generation);
    h.finish()
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

/// Where a zone's servers share their last published (content hash, serial), with the record
/// count and the time that serial was first served (which the operator copies into the
/// DNSZone's status): in cluster mode the ConfigMap `<zone>-serial`
/// (`feed::kube::ConfigMapSerials`). `Version` is what a read returns and a replace hands back,
/// so a replace fails with [`StoreError::Conflict`] when somebody else wrote in between
/// (optimistic concurrency).
pub trait SerialStore: Send {
    type Version: Send;
    /// The stored record, if it exists.
    fn read(
        &self,
    ) -> impl Future<Output = Result<Option<Stored<Self::Version>>, StoreError>> + Send;
    /// Creates the record; `Conflict` if it exists already.
    fn create(&self, record: &Record) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Replaces the record read as `version`; `Conflict` if it changed since.
    fn replace(
        &self,
        version: Self::Version,
        record: &Record,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The record's name for log lines (`NAMESPACE/NAME`).
    fn describe(&self) -> String;
}

/// What a server writes to a [`SerialStore`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// The content hash, 16 hex digits.
    pub hash: String,
    pub serial: u32,
    /// What was first served with this serial: its record count and when (Unix seconds).
    pub served: Served,
}

/// The record count of a serial and the time it was first served. Written once per serial (by
/// the server that published it first), so it never causes a write while nothing changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Served {
    /// The serial this describes: a record written by a server that does not know these fields
    /// leaves them describing an older serial, and then they do not count.
    pub serial: u32,
    /// Records served, SOA included (`ZoneData::record_count`).
    pub records: u64,
    /// When the first server published the serial, Unix seconds.
    pub since: u64,
}

/// A [`SerialStore`]'s record.
#[derive(Clone, Debug)]
pub struct Stored<V> {
    /// The content hash, 16 hex digits (absent if somebody emptied the record).
    pub hash: Option<String>,
    /// The serial (0 if absent or not a number).
    pub serial: u32,
    /// Record count and first-served time, when present and about `serial`.
    pub served: Option<Served>,
    /// What a replace hands back.
    pub version: V,
}

/// Why a [`SerialStore`] call failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("written concurrently")]
    Conflict,
    #[error("{0}")]
    Unavailable(String),
}

/// Something that hands out serials for (zone, content hash) pairs; `records` is the content's
/// record count, for sources that publish it.
pub trait SerialSource: Send {
    fn serial(&mut self, zone: &str, hash: u64, records: u64) -> impl Future<Output = u32> + Send;
}

/// Serials of this process alone, from the clock.
impl SerialSource for SerialKeeper {
    async fn serial(&mut self, zone: &str, hash: u64, _records: u64) -> u32 {
        SerialKeeper::serial(self, zone, hash, crate::publish::unix_now())
    }
}

/// SOA serials shared by every server of a zone through a [`SerialStore`]. A server whose
/// content hash matches the stored one uses the stored serial; one with new content writes
/// `max(serial + 1, now)` with an optimistic-concurrency replace, so all servers with the same
/// content publish the same serial and it only ever grows, across restarts and pod replacement.
/// The server that writes a serial also writes its record count and the time (its [`Served`]);
/// one that finds the stored serial without them (written by an older version) fills them in,
/// once. Falls back to a local [`SerialKeeper`] (serial from the clock, never decreasing while the
/// process lives) when the store cannot be read or written, and says so once.
pub struct SharedSerial<S> {
    pub store: S,
    pub local: SerialKeeper,
    warned: bool,
    /// The clock, in Unix seconds (a test sets its own).
    pub now: fn() -> u64,
}

impl<S: SerialStore> SharedSerial<S> {
    pub fn new(store: S, local: SerialKeeper) -> Self {
        Self {
            store,
            local,
            warned: false,
            now: crate::publish::unix_now,
        }
    }

    /// Whether the last call fell back to the local keeper.
    pub fn degraded(&self) -> bool {
        self.warned
    }

    async fn shared(&mut self, hash: u64, records: u64, now: u64) -> Result<u32, StoreError> {
        let hash_s = format!("{hash:016x}");
        let clock = now;
        let now = now.min(u32::MAX as u64) as u32;
        let record = |serial: u32| Record {
            hash: hash_s.clone(),
            serial,
            served: Served {
                serial,
                records,
                since: clock,
            },
        };
        for _ in 0..8 {
            let Some(Stored {
                hash: stored_hash,
                serial: stored,
                served,
                version,
            }) = self.store.read().await?
            else {
                match self.store.create(&record(now)).await {
                    Ok(()) => return Ok(now),
                    Err(StoreError::Conflict) => continue,
                    Err(e) => return Err(e),
                }
            };
            if stored_hash.as_deref() == Some(hash_s.as_str()) {
                if served.is_none() {
                    // written by a server that does not record these: fill them in once (a
                    // failure only leaves them out of the DNSZone's status)
                    if let Err(StoreError::Conflict) =
                        self.store.replace(version, &record(stored)).await
                    {
                        continue;
                    }
                }
                return Ok(stored);
            }
            let serial = now.max(stored.wrapping_add(1));
            match self.store.replace(version, &record(serial)).await {
                Ok(()) => return Ok(serial),
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Unavailable(
            "too many concurrent serial updates".into(),
        ))
    }
}

impl<S: SerialStore> SerialSource for SharedSerial<S> {
    async fn serial(&mut self, zone: &str, hash: u64, records: u64) -> u32 {
        let now = (self.now)();
        match self.shared(hash, records, now).await {
            Ok(s) => {
                self.local.remember(zone, hash, s);
                if self.warned {
                    tracing::info!(configmap = %self.store.describe(), "sharing the SOA serial through the ConfigMap again");
                    self.warned = false;
                }
                s
            }
            Err(e) => {
                if !self.warned {
                    tracing::warn!(configmap = %self.store.describe(), error = %e, "cannot share the SOA serial through the ConfigMap; keeping the last serial, and new content gets a local clock-based one");
                    self.warned = true;
                }
                // same content: the serial last agreed; new content: max(last + 1, now)
                self.local.serial(zone, hash, now)
            }
        }
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

#[cfg(test)]
mod shared_tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// An in-memory serial record that can be made unreachable; the version is a counter, and
    /// `writes` counts creates and replaces. The record keeps a `Served` only while it is about
    /// the stored serial, as `ConfigMapSerials::read` does.
    #[derive(Clone, Default)]
    struct Memory {
        record: Arc<Mutex<Option<(Record, u64)>>>,
        down: Arc<std::sync::atomic::AtomicBool>,
        writes: Arc<std::sync::atomic::AtomicUsize>,
    }

    impl Memory {
        fn check(&self) -> Result<(), StoreError> {
            if self.down.load(std::sync::atomic::Ordering::Relaxed) {
                Err(StoreError::Unavailable("connection refused".into()))
            } else {
                Ok(())
            }
        }
    }

    impl SerialStore for Memory {
        type Version = u64;
        async fn read(&self) -> Result<Option<Stored<u64>>, StoreError> {
            self.check()?;
            Ok(self
                .record
                .lock()
                .unwrap()
                .clone()
                .map(|(r, version)| Stored {
                    hash: Some(r.hash),
                    serial: r.serial,
                    served: Some(r.served).filter(|s| s.serial == r.serial),
                    version,
                }))
        }
        async fn create(&self, record: &Record) -> Result<(), StoreError> {
            self.check()?;
            let mut r = self.record.lock().unwrap();
            if r.is_some() {
                return Err(StoreError::Conflict);
            }
            *r = Some((record.clone(), 1));
            self.writes
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Ok(())
        }
        async fn replace(&self, version: u64, record: &Record) -> Result<(), StoreError> {
            self.check()?;
            let mut r = self.record.lock().unwrap();
            match &*r {
                Some((_, v)) if *v == version => {
                    *r = Some((record.clone(), version + 1));
                    self.writes
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    Ok(())
                }
                _ => Err(StoreError::Conflict),
            }
        }
        fn describe(&self) -> String {
            "ns/z-serial".into()
        }
    }

    fn shared(store: &Memory, now: fn() -> u64) -> SharedSerial<Memory> {
        let mut s = SharedSerial::new(store.clone(), SerialKeeper::new(None));
        s.now = now;
        s
    }

    #[tokio::test]
    async fn replicas_agree_through_the_store_and_fall_back_when_it_is_unreachable() {
        let store = Memory::default();
        let mut a = shared(&store, || 1000);
        let mut b = shared(&store, || 1000);
        assert_eq!(a.serial("z.", 1, 5).await, 1000);
        assert_eq!(
            b.serial("z.", 1, 5).await,
            1000,
            "same content, same serial"
        );
        assert_eq!(b.serial("z.", 2, 5).await, 1001, "new content: one more");
        assert_eq!(
            a.serial("z.", 2, 5).await,
            1001,
            "the other replica adopts it"
        );

        // the store goes away: the last agreed serial stays, new content gets a local one
        store.down.store(true, std::sync::atomic::Ordering::Relaxed);
        assert_eq!(a.serial("z.", 2, 5).await, 1001);
        assert!(a.degraded());
        assert_eq!(a.serial("z.", 3, 5).await, 1002, "local: last + 1");
        assert_eq!(a.serial("z.", 3, 5).await, 1002);

        // back: the store's record wins again, and new content moves past both
        store
            .down
            .store(false, std::sync::atomic::Ordering::Relaxed);
        assert_eq!(
            a.serial("z.", 3, 5).await,
            1002,
            "written to the store: 1001 + 1"
        );
        assert!(!a.degraded());
        assert_eq!(b.serial("z.", 3, 5).await, 1002);
    }

    #[tokio::test]
    async fn new_content_moves_past_a_stored_serial_ahead_of_the_clock() {
        let store = Memory::default();
        *store.record.lock().unwrap() = Some((stored(7, 5000, None), 9));
        let mut a = shared(&store, || 10);
        // stored serial 5000 is ahead of the clock: new content gets 5001
        assert_eq!(a.serial("z.", 8, 5).await, 5001);
        assert_eq!(
            store.record.lock().unwrap().as_ref().unwrap().0.serial,
            5001
        );
    }

    /// A stored record of content `hash` with `serial`; `served` describes serial 1 (stale)
    /// unless given.
    fn stored(hash: u64, serial: u32, served: Option<Served>) -> Record {
        Record {
            hash: format!("{hash:016x}"),
            serial,
            served: served.unwrap_or(Served {
                serial: 1,
                records: 0,
                since: 0,
            }),
        }
    }

    fn writes(store: &Memory) -> usize {
        store.writes.load(std::sync::atomic::Ordering::Relaxed)
    }

    #[tokio::test]
    async fn the_first_server_of_a_serial_records_its_count_and_time_once() {
        let store = Memory::default();
        let mut a = shared(&store, || 1_800_000_000);
        let mut b = shared(&store, || 1_800_000_100);
        assert_eq!(a.serial("z.", 1, 42).await, 1_800_000_000);
        let first = Served {
            serial: 1_800_000_000,
            records: 42,
            since: 1_800_000_000,
        };
        assert_eq!(
            store.record.lock().unwrap().as_ref().unwrap().0.served,
            first
        );
        // the same content, on the other server and again on the first: nothing written
        assert_eq!(b.serial("z.", 1, 42).await, 1_800_000_000);
        assert_eq!(a.serial("z.", 1, 42).await, 1_800_000_000);
        assert_eq!(writes(&store), 1, "one write per serial");
        assert_eq!(
            store.record.lock().unwrap().as_ref().unwrap().0.served,
            first
        );
        // new content: the server that publishes it writes its count and time
        assert_eq!(b.serial("z.", 2, 43).await, 1_800_000_100);
        assert_eq!(
            store.record.lock().unwrap().as_ref().unwrap().0.served,
            Served {
                serial: 1_800_000_100,
                records: 43,
                since: 1_800_000_100
            }
        );
        assert_eq!(a.serial("z.", 2, 43).await, 1_800_000_100);
        assert_eq!(writes(&store), 2);
    }

    #[tokio::test]
    async fn a_serial_written_without_count_and_time_gets_them_once() {
        // an older server wrote hash and serial and left the fields of an earlier serial
        let store = Memory::default();
        *store.record.lock().unwrap() = Some((stored(7, 5000, None), 9));
        let mut a = shared(&store, || 6000);
        assert_eq!(a.serial("z.", 7, 12).await, 5000, "the stored serial stays");
        assert_eq!(
            store.record.lock().unwrap().as_ref().unwrap().0,
            stored(
                7,
                5000,
                Some(Served {
                    serial: 5000,
                    records: 12,
                    since: 6000
                })
            )
        );
        assert_eq!(a.serial("z.", 7, 12).await, 5000);
        assert_eq!(writes(&store), 1, "filled in once");
    }
}
