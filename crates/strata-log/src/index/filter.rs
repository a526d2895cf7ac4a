//! The event-id filter of a sealed segment: a split-block Bloom filter that
//! answers "certainly not in this segment" for most absent ids, so checking
//! an append's ids against old segments reads no index chunk for them.
//!
//! The filter is an array of 256-bit blocks, each eight 32-bit words. An id
//! is hashed to 64 bits ([`id_hash`]); the high 32 bits pick the block, the
//! low 32 bits set (or test) one bit in each of the block's eight words, the
//! bit of word `i` being the top five bits of `low × SALT[i]` (mod 2³²).
//! [`BITS_PER_ID`] bits per id give a false-positive rate near 0.15 %; an id
//! that was added is always found.
//!
//! The hash, the block choice and the salts are persisted in index files
//! (format version 2): never change them.

#![deny(clippy::indexing_slicing)]

use crate::decode::{DecodeError, Reader};

/// Bits of filter per id the writer allocates (rounded up to whole blocks).
pub const BITS_PER_ID: usize = 16;
/// Bytes of one block: eight little-endian u32 words.
pub const BLOCK_BYTES: usize = 32;
const BLOCK_BITS: usize = BLOCK_BYTES * 8;

/// The odd multipliers that pick one bit per word (persisted).
const SALT: [u32; 8] = [
    0x47b6_137b,
    0x4497_4d91,
    0x8824_ad5b,
    0xa2b7_289d,
    0x7054_95c7,
    0x2df1_424b,
    0x9efc_4947,
    0x5c6b_fb31,
];

/// Stable 64-bit hash of an event id (persisted: never change it).
///
/// With `lo` and `hi` the low and high 64 bits of the id and `mix` the
/// finalizer `z ^= z >> 30; z *= 0xbf58476d1ce4e5b9; z ^= z >> 27;
/// z *= 0x94d049bb133111eb; z ^= z >> 31` (wrapping arithmetic on u64):
/// `mix(mix(lo + 0x9e3779b97f4a7c15) ^ hi)`. Every bit of the id reaches
/// every bit of the hash, so time-ordered ids (whose high bits barely
/// change) spread as well as random ones.
pub fn id_hash(id: u128) -> u64 {
    let lo = id as u64;
    let hi = (id >> 64) as u64;
    mix(mix(lo.wrapping_add(0x9e37_79b9_7f4a_7c15)) ^ hi)
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The eight one-bit masks of a block for the low half of a hash.
fn masks(low: u32) -> [u32; 8] {
    SALT.map(|s| 1u32 << (low.wrapping_mul(s) >> 27))
}

/// One block, aligned so that a probe touches one cache line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C, align(32))]
struct Block([u32; 8]);

/// A split-block Bloom filter over event ids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdFilter {
    blocks: Vec<Block>,
}

impl IdFilter {
    /// Number of blocks the writer gives a filter of `ids` ids.
    pub fn blocks_for(ids: usize) -> usize {
        (ids * BITS_PER_ID).div_ceil(BLOCK_BITS)
    }

    /// A filter holding `ids`, sized at [`BITS_PER_ID`] bits per id.
    pub fn build(ids: impl ExactSizeIterator<Item = u128>) -> Self {
        let mut f = IdFilter {
            blocks: vec![Block::default(); Self::blocks_for(ids.len())],
        };
        for id in ids {
            f.insert(id);
        }
        f
    }

    /// The block of `hash`: the high 32 bits scaled to the block count.
    fn block_of(&self, hash: u64) -> usize {
        (((hash >> 32) * self.blocks.len() as u64) >> 32) as usize
    }

    fn insert(&mut self, id: u128) {
        let h = id_hash(id);
        let b = self.block_of(h);
        if let Some(block) = self.blocks.get_mut(b) {
            for (w, m) in block.0.iter_mut().zip(masks(h as u32)) {
                *w |= m;
            }
        }
    }

    /// Whether `id` may have been added: `false` is certain, `true` may be
    /// a false positive.
    pub fn may_contain(&self, id: u128) -> bool {
        self.may_contain_hash(id_hash(id))
    }

    /// [`may_contain`](Self::may_contain) for an id whose [`id_hash`] is
    /// `hash` (hashed once for many filters).
    pub fn may_contain_hash(&self, hash: u64) -> bool {
        match self.blocks.get(self.block_of(hash)) {
            Some(block) => block
                .0
                .iter()
                .zip(masks(hash as u32))
                .all(|(w, m)| w & m != 0),
            None => false,
        }
    }

    /// Number of 32-byte blocks.
    pub fn block_count(&self) -> usize {
        self.blocks.len()
    }

    /// Bytes held in memory (and on disk).
    pub fn byte_len(&self) -> usize {
        self.blocks.len() * BLOCK_BYTES
    }

    /// The filter as stored: each block's eight words, little-endian.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(self.byte_len());
        for block in &self.blocks {
            for w in &block.0 {
                b.extend_from_slice(&w.to_le_bytes());
            }
        }
        b
    }

    /// Decodes a stored filter (a whole number of blocks).
    pub fn from_bytes(b: &[u8]) -> Result<Self, DecodeError> {
        if !b.len().is_multiple_of(BLOCK_BYTES) {
            return Err(DecodeError::invalid(
                "index id filter",
                format!("{} bytes is not a whole number of blocks", b.len()),
            ));
        }
        let mut r = Reader::new(b);
        let mut blocks = Vec::with_capacity(b.len() / BLOCK_BYTES);
        for _ in 0..b.len() / BLOCK_BYTES {
            let mut block = Block::default();
            for w in block.0.iter_mut() {
                *w = r.u32("index id filter word")?;
            }
            blocks.push(block);
        }
        Ok(IdFilter { blocks })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ids like the store's: random, and time-ordered (v7-shaped).
    fn ids(n: u64, seed: u64) -> Vec<u128> {
        (0..n)
            .map(|i| {
                let r = mix(i ^ (seed << 40));
                if i % 2 == 0 {
                    (u128::from(r) << 64) | u128::from(mix(r))
                } else {
                    // 48-bit millisecond clock, then random bits.
                    (u128::from(0x0191_0000_0000 + i / 8 + seed) << 80) | u128::from(r)
                }
            })
            .collect()
    }

    #[test]
    fn no_false_negatives() {
        let present = ids(100_000, 1);
        let f = IdFilter::build(present.iter().copied());
        assert_eq!(f.byte_len(), 100_000 * BITS_PER_ID / 8);
        for id in &present {
            assert!(f.may_contain(*id), "id {id:x} lost");
        }
    }

    #[test]
    fn false_positive_rate_is_under_half_a_percent() {
        let present = ids(100_000, 1);
        let f = IdFilter::build(present.iter().copied());
        let absent = ids(1_000_000, 2);
        let set: std::collections::HashSet<u128> = present.into_iter().collect();
        let probes = absent.iter().filter(|id| !set.contains(id)).count();
        let fp = absent
            .iter()
            .filter(|id| !set.contains(id) && f.may_contain(**id))
            .count();
        let rate = fp as f64 / probes as f64;
        eprintln!("false positives: {fp} of {probes} absent ids ({rate:.5})");
        assert!(rate < 0.005, "false-positive rate {rate}");
        assert!(rate > 0.0, "a filter with no false positive is oversized");
    }

    #[test]
    fn bytes_roundtrip_and_empty_filter() {
        let f = IdFilter::build(ids(1000, 3).into_iter());
        let g = IdFilter::from_bytes(&f.to_bytes()).unwrap();
        assert_eq!(f, g);
        assert!(IdFilter::from_bytes(&[0u8; 33]).is_err());
        let empty = IdFilter::build(std::iter::empty());
        assert_eq!(empty.block_count(), 0);
        assert!(!empty.may_contain(7));
    }

    #[test]
    fn the_hash_and_the_bits_are_stable() {
        // Persisted in index files: these values must never change.
        assert_eq!(id_hash(0), 0x4821_8226_ff3c_d4bf);
        assert_eq!(id_hash(1), 0xdce4_23fc_82c0_d5b8);
        assert_eq!(
            id_hash(0x0191_2345_6789_7abc_8def_0123_4567_89ab),
            0xcb18_5f41_f1ec_2522
        );
        assert_eq!(id_hash(u128::MAX), 0x4650_bc0e_b331_2e23);
        let bits = [3, 31, 19, 17, 16, 17, 6, 17].map(|b| 1u32 << b);
        assert_eq!(masks(id_hash(1) as u32), bits);
        let f = IdFilter::build([1u128].into_iter());
        assert_eq!(f.blocks, vec![Block(bits)]);
    }
}
