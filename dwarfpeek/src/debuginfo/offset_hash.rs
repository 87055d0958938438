//! A hasher for maps keyed by `.debug_info` offsets ([`super::TypeRef`]): one rotation and
//! one multiplication per word. The value decoder looks types up millions of times per
//! read, and std's SipHash (whose resistance to chosen keys buys nothing for offsets of the
//! file's own entries: a file crafted to collide only slows the probe down) was the largest
//! cost of a lookup.
//!
//! Hashing only: it knows nothing of what the keys mean.

use std::hash::{BuildHasherDefault, Hasher};

/// A map keyed by offsets.
pub(crate) type OffsetMap<K, V> = std::collections::HashMap<K, V, BuildHasherDefault<OffsetHasher>>;

/// The multiplier of FxHash (rustc's own hasher for integer keys).
const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct OffsetHasher(u64);

impl Hasher for OffsetHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.write_u64(u64::from(byte));
        }
    }

    fn write_u64(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(SEED);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neighbouring_offsets_spread() {
        let mut map = OffsetMap::default();
        for offset in 0..10_000u64 {
            map.insert(offset * 7, offset);
        }
        assert_eq!(map.get(&(42 * 7)), Some(&42));
        assert_eq!(map.len(), 10_000);
    }
}
