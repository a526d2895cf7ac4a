//! Frames: the checksummed unit of every write, and the bodies of append,
//! delete and tombstone frames.

#![deny(clippy::indexing_slicing)]

use crate::decode::{check_crc, DecodeError, Reader};
use crate::format::layout::{align, FrameKind, FRAME_HEADER_BYTES, RECORD_HEADER_BYTES};

/// A decoded frame header.
#[derive(Clone, Copy, Debug)]
pub struct FrameHeader {
    /// Bytes of body after the header.
    pub body_len: usize,
    /// Its checksum.
    pub crc: u32,
    /// Its kind.
    pub kind: FrameKind,
}

impl FrameHeader {
    /// The frame's total size on disk including padding.
    pub fn total_len(&self) -> usize {
        align(FRAME_HEADER_BYTES + self.body_len)
    }
}

/// Why a frame could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// All zero: nothing was ever written here (end of data).
    Empty,
    /// Fewer bytes than the frame claims (a torn write at the tail).
    Truncated,
    /// Header or checksum wrong.
    Invalid(DecodeError),
}

/// Parses a frame header from the start of `b`. A body longer than
/// `max_body` is refused before anything reads or allocates it.
pub fn parse_frame_header(b: &[u8], max_body: usize) -> Result<FrameHeader, FrameError> {
    let mut r = Reader::new(b);
    let Ok(header) = r.array::<FRAME_HEADER_BYTES>("frame header") else {
        if b.iter().all(|&x| x == 0) {
            return Err(FrameError::Empty);
        }
        return Err(FrameError::Truncated);
    };
    if header.iter().all(|&x| x == 0) {
        return Err(FrameError::Empty);
    }
    let mut r = Reader::new(&header);
    let invalid = FrameError::Invalid;
    let body_len = r.u32("frame length").map_err(invalid)? as usize;
    let crc = r.u32("frame checksum").map_err(invalid)?;
    let kind_code = r.u8("frame kind").map_err(invalid)?;
    let kind = FrameKind::from_u8(kind_code).ok_or_else(|| {
        FrameError::Invalid(DecodeError::invalid(
            "frame kind",
            format!("unknown frame kind {kind_code}"),
        ))
    })?;
    if r.rest().iter().any(|&x| x != 0) {
        return Err(FrameError::Invalid(DecodeError::invalid(
            "frame header",
            "non-zero reserved bytes in frame header",
        )));
    }
    if body_len > max_body {
        return Err(FrameError::Invalid(DecodeError::TooLong {
            what: "frame length (more than the segment can hold)",
            len: body_len as u64,
            max: max_body as u64,
        }));
    }
    Ok(FrameHeader {
        body_len,
        crc,
        kind,
    })
}

/// Verifies a whole frame (`b` starts at the frame header and holds at least
/// the frame); returns its body.
pub fn verify_frame<'a>(b: &'a [u8], h: &FrameHeader) -> Result<&'a [u8], FrameError> {
    let mut r = Reader::new(b);
    r.skip(8, "frame header")
        .map_err(|_| FrameError::Truncated)?;
    let checked = r
        .bytes(FRAME_HEADER_BYTES - 8 + h.body_len, "frame")
        .map_err(|_| FrameError::Truncated)?;
    check_crc(checked, h.crc, "frame").map_err(FrameError::Invalid)?;
    Ok(checked.get(FRAME_HEADER_BYTES - 8..).unwrap_or_default())
}

/// A decoded delete or tombstone frame body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteBody {
    /// The stream.
    pub stream: String,
    /// Versions up to and including this are deleted.
    pub deleted_through: u64,
}

/// Decodes a delete or tombstone frame body.
pub fn decode_delete(body: &[u8]) -> Result<DeleteBody, DecodeError> {
    let mut r = Reader::new(body);
    let n = r.u8("delete body stream name length")?;
    let stream = r.str(usize::from(n), "delete body stream name")?.to_owned();
    let deleted_through = r.u64("delete body version")?;
    Ok(DeleteBody {
        stream,
        deleted_through,
    })
}

/// Offsets of each event record inside an append frame body: (offset in the
/// segment, offset in `body`); `body_start` is the body's offset inside the
/// segment. Every record length is checked against the bytes of the body.
pub fn record_offsets(body: &[u8], body_start: u64) -> Result<Vec<(u64, usize)>, DecodeError> {
    let mut r = Reader::new(body);
    let count = r.u32("append frame event count")? as usize;
    // A count cannot reserve more slots than the body has records' headers.
    let mut out = Vec::with_capacity(count.min(body.len() / RECORD_HEADER_BYTES + 1));
    for _ in 0..count {
        let at = r.offset();
        // Read the length without consuming it: it counts itself.
        let mut peek = r;
        let len = peek.len_u32(r.remaining(), "record length")?;
        if len < RECORD_HEADER_BYTES {
            return Err(DecodeError::invalid(
                "record length",
                format!("record length {len} is shorter than a record header"),
            ));
        }
        r.skip(len, "record")?;
        out.push((body_start + at as u64, at));
    }
    if !r.is_empty() {
        return Err(DecodeError::invalid(
            "append frame",
            "append frame has bytes after its last record",
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::encode::FrameWriter;

    fn one_frame() -> Vec<u8> {
        let mut w = FrameWriter::new();
        w.begin(FrameKind::Delete);
        w.delete_body("s-1", 3);
        w.finish();
        w.buf
    }

    #[test]
    fn every_truncation_of_a_frame_is_typed() {
        let f = one_frame();
        let h = parse_frame_header(&f, 1 << 20).unwrap();
        for n in 0..FRAME_HEADER_BYTES + h.body_len {
            let b = f.get(..n).unwrap_or_default();
            match parse_frame_header(b, 1 << 20) {
                Ok(h) => assert_eq!(verify_frame(b, &h).err(), Some(FrameError::Truncated)),
                Err(e) => assert!(matches!(e, FrameError::Truncated | FrameError::Empty)),
            }
        }
        let body = verify_frame(&f, &h).unwrap();
        for n in 0..body.len() {
            assert!(matches!(
                decode_delete(body.get(..n).unwrap_or_default()),
                Err(DecodeError::Truncated { .. })
            ));
        }
        assert_eq!(decode_delete(body).unwrap().deleted_through, 3);
    }

    #[test]
    fn a_huge_frame_length_is_refused() {
        let mut f = one_frame();
        if let Some(len) = f.get_mut(0..4) {
            len.copy_from_slice(&u32::MAX.to_le_bytes());
        }
        assert!(matches!(
            parse_frame_header(&f, 1 << 20),
            Err(FrameError::Invalid(DecodeError::TooLong { .. }))
        ));
    }

    #[test]
    fn record_offsets_check_every_length() {
        let mut body = 2u32.to_le_bytes().to_vec();
        body.extend_from_slice(&(u32::MAX).to_le_bytes());
        body.resize(200, 0);
        assert!(matches!(
            record_offsets(&body, 0),
            Err(DecodeError::TooLong { .. })
        ));
        for n in 0..4 {
            assert!(matches!(
                record_offsets(body.get(..n).unwrap_or_default(), 0),
                Err(DecodeError::Truncated { .. })
            ));
        }
        // A count far beyond the body reserves nothing huge and fails cleanly.
        let body = u32::MAX.to_le_bytes();
        assert!(record_offsets(&body, 0).is_err());
    }
}
