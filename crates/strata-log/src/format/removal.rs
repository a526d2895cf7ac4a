//! How a scavenge removes events in place (see ADR 0017): a frame whose
//! events are all removable becomes a gap frame of the same length, and a
//! removable record inside a frame that keeps others becomes a removed
//! record of the same length. Offsets, so positions, never move.

#![deny(clippy::indexing_slicing)]

use crate::decode::{DecodeError, Reader};
use crate::format::frame::FrameHeader;
use crate::format::layout::{
    FrameCheck, FrameKind, FRAME_HEADER_BYTES, RECORD_CONTENT_CODE_AT, RECORD_HEADER_BYTES,
    REMOVED_CONTENT_CODE,
};

/// Zeros fed to the checksum at a time.
const ZERO_CHUNK: [u8; 4096] = [0; 4096];

/// The header of the gap frame that replaces a frame with header `h`: the
/// same length, sequence number and sync floor, kind [`FrameKind::Gap`], and
/// the checksum of a body of zeros. The body itself is `h.body_len` zeros.
pub fn gap_frame_header(
    original: &[u8; FRAME_HEADER_BYTES],
    h: &FrameHeader,
    check: FrameCheck,
) -> [u8; FRAME_HEADER_BYTES] {
    let mut out = *original;
    if let Some(kind) = out.get_mut(8) {
        *kind = FrameKind::Gap as u8;
    }
    let mut crc = check.crc(out.get(8..).unwrap_or_default());
    let mut left = h.body_len;
    while left > 0 {
        let n = left.min(ZERO_CHUNK.len());
        crc = crc32c::crc32c_append(crc, ZERO_CHUNK.get(..n).unwrap_or_default());
        left -= n;
    }
    if let Some(dst) = out.get_mut(4..8) {
        dst.copy_from_slice(&crc.to_le_bytes());
    }
    out
}

/// Rewrites the record at the start of `rec` (exactly its bytes) as
/// removed: its metadata and data become zeros, its content code
/// [`REMOVED_CONTENT_CODE`], its metadata flags 0, and its checksum is
/// recomputed. Stream, type, version, id and time stay.
pub fn remove_record(rec: &mut [u8]) -> Result<(), DecodeError> {
    let mut r = Reader::new(rec);
    let len = r.len_u32(rec.len(), "record length")?;
    if len != rec.len() || len < RECORD_HEADER_BYTES {
        return Err(DecodeError::invalid(
            "record",
            "record length does not match its bytes",
        ));
    }
    r.skip(36, "record header")?;
    let _data_len = r.u32("data length")?;
    let type_len = usize::from(r.u16("event type length")?);
    let stream_len = usize::from(r.u8("stream name length")?);
    let kept = RECORD_HEADER_BYTES + stream_len + type_len;
    match rec.get_mut(kept..) {
        Some(rest) => rest.fill(0),
        None => return Err(DecodeError::invalid("record", "record fields overrun it")),
    }
    if let Some(code) = rec.get_mut(RECORD_CONTENT_CODE_AT) {
        *code = REMOVED_CONTENT_CODE;
    }
    if let Some(flags) = rec.get_mut(RECORD_CONTENT_CODE_AT + 1) {
        *flags = 0;
    }
    let crc = crc32c::crc32c(rec.get(8..).unwrap_or_default());
    if let Some(dst) = rec.get_mut(4..8) {
        dst.copy_from_slice(&crc.to_le_bytes());
    }
    Ok(())
}

/// Recomputes the checksum of the whole frame `frame` (header and body).
pub fn reseal_frame(frame: &mut [u8], check: FrameCheck) {
    let crc = check.crc(frame.get(8..).unwrap_or_default());
    if let Some(dst) = frame.get_mut(4..8) {
        dst.copy_from_slice(&crc.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{parse_frame_header, verify_frame, FrameWriter, RecordView};
    use strata_core::{ContentType, EventId, Metadata};

    #[test]
    fn a_removed_record_keeps_its_place_and_loses_its_data() {
        let mut w = FrameWriter::new();
        w.begin(FrameKind::Append);
        w.put_u32(1);
        let meta = Metadata::default().with_correlation_id("c-1");
        let data = br#"{"secret":"marker-42"}"#;
        w.record(
            "s-1",
            3,
            EventId::new(),
            1_000,
            ContentType::Json,
            "Opened",
            &meta,
            &[],
            data,
        );
        w.finish();
        let mut frame = w.buf.clone();
        let h = parse_frame_header(&frame, 1 << 20, FrameCheck::V1).unwrap();
        let rec_at = FRAME_HEADER_BYTES + 4;
        let len = frame.len();
        let rec_len = RecordView::parse(frame.get(rec_at..len).unwrap())
            .unwrap()
            .len();
        remove_record(frame.get_mut(rec_at..rec_at + rec_len).unwrap()).unwrap();
        reseal_frame(
            frame.get_mut(..FRAME_HEADER_BYTES + h.body_len).unwrap(),
            FrameCheck::V1,
        );
        let resealed = parse_frame_header(&frame, 1 << 20, FrameCheck::V1).unwrap();
        assert!(verify_frame(&frame, &resealed, FrameCheck::V1).is_ok());
        let view = RecordView::parse(frame.get(rec_at..).unwrap()).unwrap();
        assert!(view.is_removed());
        assert_eq!((view.stream, view.version), ("s-1", 3));
        assert!(!frame.windows(9).any(|w| w == b"marker-42"));
    }

    #[test]
    fn a_gap_frame_checks_like_any_frame() {
        let check = FrameCheck::salted(7);
        let mut w = FrameWriter::for_segment(check, 1);
        w.begin(FrameKind::Delete);
        w.delete_body("s-1", 3);
        w.finish();
        let frame = w.buf.clone();
        let h = parse_frame_header(&frame, 1 << 20, check).unwrap();
        let head: [u8; FRAME_HEADER_BYTES] =
            frame.get(..FRAME_HEADER_BYTES).unwrap().try_into().unwrap();
        let gap = gap_frame_header(&head, &h, check);
        let mut bytes = gap.to_vec();
        bytes.resize(FRAME_HEADER_BYTES + h.body_len, 0);
        let g = parse_frame_header(&bytes, 1 << 20, check).unwrap();
        assert_eq!(g.kind, FrameKind::Gap);
        assert!(verify_frame(&bytes, &g, check).is_ok());
    }
}
