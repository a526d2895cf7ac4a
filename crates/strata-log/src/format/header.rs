//! The segment header: the first 32 bytes of every segment file.

#![deny(clippy::indexing_slicing)]

use crate::decode::{check_crc, DecodeError, Reader};
use crate::format::layout::{
    FrameCheck, FORMAT_VERSION, FORMAT_VERSION_1, SEGMENT_HEADER_BYTES, SEGMENT_MAGIC,
};

/// Bytes of the header its checksum covers.
const HEADER_CHECKED_BYTES: usize = 28;

/// What a segment header says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentHeader {
    /// The segment number it names.
    pub number: u32,
    /// How its frames are checked (format version and salt).
    pub check: FrameCheck,
}

/// Encodes the header of a new segment (the current format) with `salt`,
/// the random value every frame checksum of the segment starts from.
pub fn encode_segment_header(segment: u32, salt: u64) -> [u8; SEGMENT_HEADER_BYTES] {
    encode(segment, FORMAT_VERSION, salt)
}

/// Encodes a format-1 header (no salt), as older stores hold.
pub fn encode_segment_header_v1(segment: u32) -> [u8; SEGMENT_HEADER_BYTES] {
    encode(segment, FORMAT_VERSION_1, 0)
}

fn encode(segment: u32, version: u32, salt: u64) -> [u8; SEGMENT_HEADER_BYTES] {
    let mut h = Vec::with_capacity(SEGMENT_HEADER_BYTES);
    h.extend_from_slice(SEGMENT_MAGIC);
    h.extend_from_slice(&version.to_le_bytes());
    h.extend_from_slice(&segment.to_le_bytes());
    if version != FORMAT_VERSION_1 {
        h.extend_from_slice(&salt.to_le_bytes());
    }
    h.resize(HEADER_CHECKED_BYTES, 0);
    let crc = crc32c::crc32c(&h);
    h.extend_from_slice(&crc.to_le_bytes());
    let mut out = [0u8; SEGMENT_HEADER_BYTES];
    out.copy_from_slice(&h);
    out
}

/// A fresh random salt for a new segment.
pub fn new_salt() -> u64 {
    rand::random()
}

/// Checks a segment header; returns the segment number it names and how
/// its frames are checked.
pub fn decode_segment_header(h: &[u8]) -> Result<SegmentHeader, DecodeError> {
    let mut r = Reader::new(h);
    let checked = r.bytes(HEADER_CHECKED_BYTES, "segment header")?;
    let stored = r.u32("segment header checksum")?;
    let mut r = Reader::new(checked);
    if r.array::<8>("segment magic")? != *SEGMENT_MAGIC {
        return Err(DecodeError::invalid("segment magic", "bad segment magic"));
    }
    check_crc(checked, stored, "segment header")?;
    let version = r.u32("segment format version")?;
    let number = r.u32("segment number")?;
    let check = match version {
        FORMAT_VERSION_1 => FrameCheck::V1,
        FORMAT_VERSION => FrameCheck::salted(r.u64("segment salt")?),
        _ => {
            return Err(DecodeError::invalid(
                "segment format version",
                format!(
                    "segment format version {version}, this build reads {FORMAT_VERSION_1} and {FORMAT_VERSION}"
                ),
            ))
        }
    };
    Ok(SegmentHeader { number, check })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip() {
        let h = decode_segment_header(&encode_segment_header(42, 7)).unwrap();
        assert_eq!(h.number, 42);
        assert_eq!(h.check, FrameCheck::salted(7));
        let v1 = decode_segment_header(&encode_segment_header_v1(3)).unwrap();
        assert_eq!(
            v1,
            SegmentHeader {
                number: 3,
                check: FrameCheck::V1
            }
        );
    }

    #[test]
    fn salts_differ() {
        assert_ne!(new_salt(), new_salt());
        assert_ne!(
            FrameCheck::salted(1).crc(b"x"),
            FrameCheck::salted(2).crc(b"x")
        );
    }

    #[test]
    fn every_truncation_is_a_typed_error() {
        let h = encode_segment_header(7, 9);
        for n in 0..h.len() {
            let e = decode_segment_header(h.get(..n).unwrap_or_default()).unwrap_err();
            assert!(matches!(e, DecodeError::Truncated { .. }), "{n}: {e}");
        }
    }

    #[test]
    fn every_flipped_byte_is_caught() {
        let h = encode_segment_header(7, 9);
        for i in 0..h.len() {
            let mut b = h;
            if let Some(x) = b.get_mut(i) {
                *x ^= 0x40;
            }
            assert!(
                decode_segment_header(&b).is_err(),
                "flip at {i} went unnoticed"
            );
        }
    }
}
