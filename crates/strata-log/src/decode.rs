//! Total decoding of on-disk bytes: every read checks the bytes present
//! before it slices or allocates, and every failure is a typed
//! [`DecodeError`] naming what was being read. Every decoder of segment
//! frames, records, index chunks, compressed blocks, snapshot, checkpoint
//! and stream-checkpoint records reads through a [`Reader`].

#![deny(clippy::indexing_slicing)]

use std::fmt;

/// Why bytes read from disk could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// Fewer bytes than the field needs.
    Truncated {
        /// The field being read.
        what: &'static str,
        /// Bytes the field needs from where it starts.
        need: usize,
        /// Bytes present from there.
        have: usize,
    },
    /// A length field beyond what the format allows, refused before any
    /// allocation.
    TooLong {
        /// The field being read.
        what: &'static str,
        /// The length found.
        len: u64,
        /// The most the format allows.
        max: u64,
    },
    /// A checksum that does not match the bytes it covers.
    Checksum {
        /// What the checksum covers.
        what: &'static str,
        /// The stored checksum.
        stored: u32,
        /// The checksum of the bytes present.
        computed: u32,
    },
    /// A well-sized field with a value the format does not allow.
    Invalid {
        /// The field being read.
        what: &'static str,
        /// Why its value is refused.
        reason: String,
    },
}

impl DecodeError {
    /// A field with a value the format does not allow.
    pub fn invalid(what: &'static str, reason: impl Into<String>) -> Self {
        DecodeError::Invalid {
            what,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Truncated { what, need, have } => {
                write!(f, "{what}: needs {need} bytes, {have} present")
            }
            DecodeError::TooLong { what, len, max } => {
                write!(f, "{what}: length {len} is over the limit of {max}")
            }
            DecodeError::Checksum {
                what,
                stored,
                computed,
            } => write!(
                f,
                "{what}: checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"
            ),
            DecodeError::Invalid { what, reason } => write!(f, "{what}: {reason}"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// A cursor over bytes read from disk. Integers are little-endian.
///
/// Its methods are `inline(always)`: they run for every field of every
/// record a scan reads, and a call per field cost a read of `$all` about 8%.
#[derive(Clone, Copy, Debug)]
pub struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    #[inline(always)]
    /// A reader at the start of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, at: 0 }
    }

    #[inline(always)]
    /// Offset of the next byte to read, from the start.
    pub fn offset(&self) -> usize {
        self.at
    }

    #[inline(always)]
    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.at)
    }

    #[inline(always)]
    /// Whether every byte has been read.
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    #[inline(always)]
    /// The next `n` bytes, without copying.
    pub fn bytes(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let end = self.at.checked_add(n);
        match end.and_then(|end| self.bytes.get(self.at..end)) {
            Some(b) => {
                self.at += n;
                Ok(b)
            }
            None => Err(truncated(what, n, self.remaining())),
        }
    }

    #[inline(always)]
    /// The next `N` bytes as an array.
    pub fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], DecodeError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.bytes(N, what)?);
        Ok(a)
    }

    #[inline(always)]
    /// Skips `n` bytes.
    pub fn skip(&mut self, n: usize, what: &'static str) -> Result<(), DecodeError> {
        self.bytes(n, what).map(|_| ())
    }

    #[inline(always)]
    /// The next byte.
    pub fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(u8::from_le_bytes(self.array(what)?))
    }

    #[inline(always)]
    /// The next little-endian u16.
    pub fn u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }

    #[inline(always)]
    /// The next little-endian u32.
    pub fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    #[inline(always)]
    /// The next little-endian u64.
    pub fn u64(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    #[inline(always)]
    /// The next little-endian i64.
    pub fn i64(&mut self, what: &'static str) -> Result<i64, DecodeError> {
        Ok(i64::from_le_bytes(self.array(what)?))
    }

    #[inline(always)]
    /// The next unsigned LEB128 number (7 bits a byte, low first, at most
    /// 10 bytes; one that does not fit a u64 is refused).
    pub fn uvarint(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.u8(what)?;
            let low = u64::from(b & 0x7f);
            if shift == 63 && low > 1 {
                break;
            }
            v |= low << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(DecodeError::invalid(what, "a number longer than 64 bits"))
    }

    #[inline(always)]
    /// A length field (u32) checked against `max` before anything uses it.
    pub fn len_u32(&mut self, max: usize, what: &'static str) -> Result<usize, DecodeError> {
        let len = self.u32(what)?;
        checked_len(u64::from(len), max, what)
    }

    #[inline(always)]
    /// A length field (u64) checked against `max` before anything uses it.
    pub fn len_u64(&mut self, max: usize, what: &'static str) -> Result<usize, DecodeError> {
        let len = self.u64(what)?;
        checked_len(len, max, what)
    }

    #[inline(always)]
    /// A UTF-8 string of `n` bytes.
    pub fn str(&mut self, n: usize, what: &'static str) -> Result<&'a str, DecodeError> {
        let b = self.bytes(n, what)?;
        std::str::from_utf8(b).map_err(|e| not_utf8(what, e))
    }

    #[inline(always)]
    /// A UTF-8 string prefixed by its u16 length.
    pub fn str16(&mut self, what: &'static str) -> Result<&'a str, DecodeError> {
        let n = self.u16(what)?;
        self.str(usize::from(n), what)
    }

    #[inline(always)]
    /// The rest of the bytes.
    pub fn rest(&mut self) -> &'a [u8] {
        let rest = self.bytes.get(self.at..).unwrap_or_default();
        self.at = self.bytes.len();
        rest
    }
}

// The error paths are out of line: the readers sit in the scan of every
// record, where only the success path should cost anything.

#[cold]
#[inline(never)]
fn truncated(what: &'static str, need: usize, have: usize) -> DecodeError {
    DecodeError::Truncated { what, need, have }
}

#[cold]
#[inline(never)]
fn not_utf8(what: &'static str, e: std::str::Utf8Error) -> DecodeError {
    DecodeError::invalid(what, format!("not UTF-8: {e}"))
}

#[inline]
fn checked_len(len: u64, max: usize, what: &'static str) -> Result<usize, DecodeError> {
    match usize::try_from(len) {
        Ok(n) if n <= max => Ok(n),
        _ => Err(DecodeError::TooLong {
            what,
            len,
            max: max as u64,
        }),
    }
}

#[inline]
/// The CRC-32C of `bytes` checked against `stored`.
pub fn check_crc(bytes: &[u8], stored: u32, what: &'static str) -> Result<(), DecodeError> {
    let computed = crc32c::crc32c(bytes);
    if computed == stored {
        Ok(())
    } else {
        Err(DecodeError::Checksum {
            what,
            stored,
            computed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fields_in_order() {
        let mut b = vec![7u8];
        b.extend_from_slice(&513u16.to_le_bytes());
        b.extend_from_slice(&70_000u32.to_le_bytes());
        b.extend_from_slice(&u64::MAX.to_le_bytes());
        b.extend_from_slice(&3u16.to_le_bytes());
        b.extend_from_slice(b"abc");
        let mut r = Reader::new(&b);
        assert_eq!(r.u8("a").unwrap(), 7);
        assert_eq!(r.u16("b").unwrap(), 513);
        assert_eq!(r.u32("c").unwrap(), 70_000);
        assert_eq!(r.u64("d").unwrap(), u64::MAX);
        assert_eq!(r.str16("e").unwrap(), "abc");
        assert!(r.is_empty());
    }

    #[test]
    fn short_input_is_truncated_not_a_panic() {
        let mut r = Reader::new(&[1, 2, 3]);
        assert_eq!(
            r.u32("len"),
            Err(DecodeError::Truncated {
                what: "len",
                need: 4,
                have: 3
            })
        );
        assert_eq!(r.offset(), 0);
        assert!(r.bytes(usize::MAX, "huge").is_err());
    }

    #[test]
    fn a_length_over_the_limit_is_refused_before_use() {
        let b = u32::MAX.to_le_bytes();
        let e = Reader::new(&b)
            .len_u32(1 << 20, "record length")
            .unwrap_err();
        assert!(matches!(e, DecodeError::TooLong { len, .. } if len == u64::from(u32::MAX)));
    }

    #[test]
    fn bad_utf8_and_bad_crc_are_typed() {
        let b = [1u8, 0, 0xFF];
        assert!(matches!(
            Reader::new(&b).str16("name"),
            Err(DecodeError::Invalid { .. })
        ));
        assert!(matches!(
            check_crc(b"abc", 0, "frame"),
            Err(DecodeError::Checksum { .. })
        ));
    }
}
