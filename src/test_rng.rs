//! The unit tests' random numbers: a seeded xorshift64 generator (Marsaglia's 13/7/17), so the
//! property tests and in-process fuzzers are deterministic and need no dependency. Test-only.

/// A deterministic generator; the seed must not be 0 (xorshift would stay at 0).
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    /// The next 64 random bits.
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `0..n` (`n` > 0).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// An index into a collection of `len` items (0 when it is empty).
    pub(crate) fn index(&mut self, len: usize) -> usize {
        (self.next() % len.max(1) as u64) as usize
    }

    /// One of `items` (not empty).
    pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.index(items.len())]
    }
}

#[cfg(test)]
mod tests {
    use super::Rng;

    #[test]
    fn deterministic_and_in_range() {
        let (mut a, mut b) = (Rng(7), Rng(7));
        let xs: Vec<u64> = (0..100).map(|_| a.next()).collect();
        let ys: Vec<u64> = (0..100).map(|_| b.next()).collect();
        assert_eq!(xs, ys);
        // Marsaglia's xorshift64 from 7: the first value pins the shifts (13, 7, 17).
        assert_eq!(Rng(7).next(), 7_575_888_327);
        let mut r = Rng(0x1234);
        let mut seen = [false; 5];
        for _ in 0..200 {
            let i = r.index(5);
            seen[i] = true;
            assert!(r.below(3) < 3);
        }
        assert!(seen.iter().all(|s| *s), "every index comes up: {seen:?}");
        assert_eq!(r.index(0), 0);
        assert!(["a", "b"].contains(r.pick(&["a", "b"])));
    }
}
