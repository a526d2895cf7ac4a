//! Frames: the checksummed unit of every write, and the bodies of append,
//! delete and tombstone frames.

#![deny(clippy::indexing_slicing)]

use crate::decode::{DecodeError, Reader};
use crate::format::layout::{
    align, FrameCheck, FrameKind, FRAME_HEADER_BYTES, FRAME_SEQ_BITS, RECORD_HEADER_BYTES,
};

/// The largest frame sequence number (and sync floor) format 2 can hold.
pub const MAX_FRAME_SEQ: u32 = (1 << FRAME_SEQ_BITS) - 1;

/// A decoded frame header.
#[derive(Clone, Copy, Debug)]
pub struct FrameHeader {
    /// Bytes of body after the header.
    pub body_len: usize,
    /// Its checksum.
    pub crc: u32,
    /// Its kind.
    pub kind: FrameKind,
    /// Its sequence number in its segment, from 1 (format 2; 0 in format 1).
    pub seq: u32,
    /// Its sync floor (format 2; 0 in format 1): every frame of the segment
    /// numbered below it had been made durable (`fdatasync`) before this
    /// frame was written.
    pub floor: u32,
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

/// Packs a format-2 frame's sequence number and sync floor into the 7 bytes
/// after its kind.
pub fn encode_seq_floor(seq: u32, floor: u32) -> [u8; 7] {
    let packed =
        u64::from(seq & MAX_FRAME_SEQ) | (u64::from(floor & MAX_FRAME_SEQ) << FRAME_SEQ_BITS);
    let b = packed.to_le_bytes();
    [b[0], b[1], b[2], b[3], b[4], b[5], b[6]]
}

/// Parses a frame header from the start of `b`. A body longer than
/// `max_body` is refused before anything reads or allocates it. `check`
/// says whether the header carries a sequence number (format 2) or zeros.
pub fn parse_frame_header(
    b: &[u8],
    max_body: usize,
    check: FrameCheck,
) -> Result<FrameHeader, FrameError> {
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
    let (seq, floor) = seq_and_floor(r.rest(), check)?;
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
        seq,
        floor,
    })
}

/// The sequence number and sync floor of a header's last 7 bytes: zeros in
/// format 1; in format 2 a sequence number from 1 and a floor from 1 to it.
fn seq_and_floor(rest: &[u8], check: FrameCheck) -> Result<(u32, u32), FrameError> {
    let invalid = |why: String| FrameError::Invalid(DecodeError::invalid("frame header", why));
    if !check.sequenced() {
        if rest.iter().any(|&x| x != 0) {
            return Err(invalid("non-zero reserved bytes in frame header".into()));
        }
        return Ok((0, 0));
    }
    let mut b = [0u8; 8];
    if let (Some(dst), true) = (b.get_mut(..rest.len()), rest.len() <= 8) {
        dst.copy_from_slice(rest);
    }
    let packed = u64::from_le_bytes(b);
    let seq = (packed & u64::from(MAX_FRAME_SEQ)) as u32;
    let floor = ((packed >> FRAME_SEQ_BITS) & u64::from(MAX_FRAME_SEQ)) as u32;
    if seq == 0 || floor == 0 || floor > seq {
        return Err(invalid(format!(
            "frame sequence {seq} with sync floor {floor}"
        )));
    }
    Ok((seq, floor))
}

/// Verifies a whole frame (`b` starts at the frame header and holds at least
/// the frame) against its segment's `check`; returns its body.
pub fn verify_frame<'a>(
    b: &'a [u8],
    h: &FrameHeader,
    check: FrameCheck,
) -> Result<&'a [u8], FrameError> {
    let mut r = Reader::new(b);
    r.skip(8, "frame header")
        .map_err(|_| FrameError::Truncated)?;
    let checked = r
        .bytes(FRAME_HEADER_BYTES - 8 + h.body_len, "frame")
        .map_err(|_| FrameError::Truncated)?;
    let computed = check.crc(checked);
    if computed != h.crc {
        return Err(FrameError::Invalid(DecodeError::Checksum {
            what: "frame",
            stored: h.crc,
            computed,
        }));
    }
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
    if !r.is_empty() {
        return Err(DecodeError::invalid(
            "delete body",
            "delete body has bytes after its version",
        ));
    }
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
    fn a_delete_body_with_trailing_bytes_is_refused() {
        let mut w = FrameWriter::new();
        w.delete_body("s-1", 3);
        assert!(decode_delete(&w.buf).is_ok());
        w.buf.push(0);
        assert!(matches!(
            decode_delete(&w.buf),
            Err(DecodeError::Invalid { .. })
        ));
    }

    #[test]
    fn every_truncation_of_a_frame_is_typed() {
        let f = one_frame();
        let h = parse_frame_header(&f, 1 << 20, FrameCheck::V1).unwrap();
        for n in 0..FRAME_HEADER_BYTES + h.body_len {
            let b = f.get(..n).unwrap_or_default();
            match parse_frame_header(b, 1 << 20, FrameCheck::V1) {
                Ok(h) => assert_eq!(
                    verify_frame(b, &h, FrameCheck::V1).err(),
                    Some(FrameError::Truncated)
                ),
                Err(e) => assert!(matches!(e, FrameError::Truncated | FrameError::Empty)),
            }
        }
        let body = verify_frame(&f, &h, FrameCheck::V1).unwrap();
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
            parse_frame_header(&f, 1 << 20, FrameCheck::V1),
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
