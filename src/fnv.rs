//! FNV-1a 64, the crate's one stable hash: a fixed function of the bytes fed to it, the same in
//! every process, build and platform (unlike `std`'s `Hash`, whose byte feed is unspecified).
//! Used where a hash leaves the process: SOA serial content hashes shared through a ConfigMap
//! (`serial.rs`) and the operator's applied-hash annotation (`operator/apply.rs`).

/// An FNV-1a 64 hasher over explicitly fed bytes.
#[derive(Clone, Copy, Debug)]
pub struct Fnv1a(u64);

impl Default for Fnv1a {
    fn default() -> Self {
        Self::new()
    }
}

impl Fnv1a {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0100_0000_01b3;

    pub fn new() -> Self {
        Fnv1a(Self::OFFSET)
    }

    /// Feeds `bytes`.
    pub fn bytes(&mut self, bytes: &[u8]) -> &mut Self {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(Self::PRIME);
        }
        self
    }

    /// Feeds `v` as 2 bytes, big-endian (network order).
    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.bytes(&v.to_be_bytes())
    }

    /// Feeds `v` as 4 bytes, big-endian.
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.bytes(&v.to_be_bytes())
    }

    /// Feeds `v` as 8 bytes, big-endian.
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.bytes(&v.to_be_bytes())
    }

    pub fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_test_vectors() {
        // from the FNV reference (draft-eastlake-fnv): FNV-1a 64 of "", "a" and "foobar"
        assert_eq!(Fnv1a::new().finish(), 0xcbf29ce484222325);
        assert_eq!(Fnv1a::new().bytes(b"a").finish(), 0xaf63dc4c8601ec8c);
        assert_eq!(Fnv1a::new().bytes(b"foobar").finish(), 0x85944171f73967e8);
        assert_eq!(
            Fnv1a::new().bytes(b"foo").bytes(b"bar").finish(),
            Fnv1a::new().bytes(b"foobar").finish(),
            "feeding in pieces is feeding the concatenation"
        );
        assert_eq!(
            Fnv1a::new().u16(0x0102).u32(0x03040506).finish(),
            Fnv1a::new().bytes(&[1, 2, 3, 4, 5, 6]).finish(),
            "integers are big-endian"
        );
    }
}
