//! The segment header: the first 32 bytes of every segment file.

#![deny(clippy::indexing_slicing)]

use crate::decode::{check_crc, DecodeError, Reader};
use crate::format::layout::{FORMAT_VERSION, SEGMENT_HEADER_BYTES, SEGMENT_MAGIC};

/// Bytes of the header its checksum covers.
const HEADER_CHECKED_BYTES: usize = 28;

/// Encodes a segment header.
pub fn encode_segment_header(segment: u32) -> [u8; SEGMENT_HEADER_BYTES] {
    let mut h = Vec::with_capacity(SEGMENT_HEADER_BYTES);
    h.extend_from_slice(SEGMENT_MAGIC);
    h.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    h.extend_from_slice(&segment.to_le_bytes());
    h.resize(HEADER_CHECKED_BYTES, 0);
    let crc = crc32c::crc32c(&h);
    h.extend_from_slice(&crc.to_le_bytes());
    let mut out = [0u8; SEGMENT_HEADER_BYTES];
    out.copy_from_slice(&h);
    out
}

/// Checks a segment header; returns the segment number it names.
pub fn decode_segment_header(h: &[u8]) -> Result<u32, DecodeError> {
    let mut r = Reader::new(h);
    let checked = r.bytes(HEADER_CHECKED_BYTES, "segment header")?;
    let stored = r.u32("segment header checksum")?;
    let mut r = Reader::new(checked);
    if r.array::<8>("segment magic")? != *SEGMENT_MAGIC {
        return Err(DecodeError::invalid("segment magic", "bad segment magic"));
    }
    check_crc(checked, stored, "segment header")?;
    let version = r.u32("segment format version")?;
    if version != FORMAT_VERSION {
        return Err(DecodeError::invalid(
            "segment format version",
            format!("segment format version {version}, this build reads {FORMAT_VERSION}"),
        ));
    }
    r.u32("segment number")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip() {
        assert_eq!(decode_segment_header(&encode_segment_header(42)), Ok(42));
    }

    #[test]
    fn every_truncation_is_a_typed_error() {
        let h = encode_segment_header(7);
        for n in 0..h.len() {
            let e = decode_segment_header(h.get(..n).unwrap_or_default()).unwrap_err();
            assert!(matches!(e, DecodeError::Truncated { .. }), "{n}: {e}");
        }
    }

    #[test]
    fn every_flipped_byte_is_caught() {
        let h = encode_segment_header(7);
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
