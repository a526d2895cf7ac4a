//! Segments, frames and event records.

use strata_core::{ContentType, EventId, Metadata};

use super::{put_u32, u32_at};
use crate::decode::DecodeError;
use crate::format::{
    decode_delete, decode_segment_header, encode_segment_header, encode_segment_header_v1,
    parse_frame_header, record_offsets, verify_frame, FrameCheck, FrameError, FrameKind,
    FrameWriter, RecordView, FRAME_HEADER_BYTES, SEGMENT_HEADER_BYTES,
};

/// The largest frame body a fuzzed segment may declare.
const MAX_BODY: usize = 1 << 20;
/// Frames walked per input at most.
const MAX_FRAMES: usize = 256;

/// A segment file: its header (when it decodes; else frames from byte 0 in
/// format 1), then its frames in order until one does not parse. Every frame
/// body is decoded; a frame that fails its checksum is decoded again with
/// the checksum recomputed. Returns whether every byte was a valid frame or
/// the zeros after the last one.
pub fn segment(data: &[u8]) -> bool {
    let (check, mut at) = match decode_segment_header(data) {
        Ok(h) => (h.check, SEGMENT_HEADER_BYTES),
        Err(_) => (FrameCheck::V1, 0),
    };
    let mut whole = at > 0;
    for _ in 0..MAX_FRAMES {
        let Some(rest) = data.get(at..).filter(|r| !r.is_empty()) else {
            return whole;
        };
        let h = match parse_frame_header(rest, MAX_BODY, check) {
            Ok(h) => h,
            Err(FrameError::Empty) => return whole,
            Err(_) => return false,
        };
        let end = FRAME_HEADER_BYTES + h.body_len;
        match verify_frame(rest, &h, check) {
            Ok(body) => whole &= frame_body(h.kind, body),
            Err(FrameError::Truncated) => {
                assert!(rest.len() < end, "a whole frame was called truncated");
                return false;
            }
            Err(e) => {
                assert!(matches!(
                    e,
                    FrameError::Invalid(DecodeError::Checksum { .. })
                ));
                let mut fixed = rest[..end].to_vec();
                let crc = check.crc(&fixed[8..]);
                put_u32(&mut fixed, 4, crc);
                let h = parse_frame_header(&fixed, MAX_BODY, check).expect("the same header");
                let body = verify_frame(&fixed, &h, check).expect("a recomputed checksum holds");
                frame_body(h.kind, body);
                whole = false;
            }
        }
        at += h.total_len();
    }
    whole
}

/// Decodes a verified frame body of `kind`; whether it decoded.
fn frame_body(kind: FrameKind, body: &[u8]) -> bool {
    match kind {
        FrameKind::Append => match record_offsets(body, 0) {
            Ok(offsets) => offsets.iter().all(|&(_, at)| {
                let r = RecordView::parse_in_verified_frame(&body[at..]);
                r.is_ok_and(|v| record_fields(&v))
            }),
            Err(_) => false,
        },
        FrameKind::Gap => body.iter().all(|&b| b == 0),
        FrameKind::Delete | FrameKind::Tombstone | FrameKind::Erase => match decode_delete(body) {
            Ok(d) => {
                let mut w = FrameWriter::new();
                w.delete_body(&d.stream, d.deleted_through);
                assert_eq!(w.buf, body, "a delete body re-encodes to itself");
                true
            }
            Err(_) => false,
        },
    }
}

/// An event record: parsed with its checksum, without it, and with the
/// checksum recomputed; whatever parses must re-encode to its own bytes.
/// Returns whether the record parsed with its own checksum.
pub fn record(data: &[u8]) -> bool {
    let checked = RecordView::parse(data);
    let unchecked = RecordView::parse_in_verified_frame(data);
    if let (Ok(a), Err(e)) = (&checked, &unchecked) {
        panic!("a checked record {a:?} fails unchecked: {e}");
    }
    if let Ok(v) = &unchecked {
        record_fields(v);
        let mut fixed = v.bytes.to_vec();
        let crc = crc32c::crc32c(&fixed[8..]);
        put_u32(&mut fixed, 4, crc);
        let again = RecordView::parse(&fixed).expect("a recomputed record checksum holds");
        assert_eq!(again.bytes, fixed.as_slice());
    }
    checked.is_ok_and(|v| record_fields(&v))
}

/// Decodes every field of a parsed record; when they all decode, the record
/// re-encodes to its own bytes. Returns whether they all decoded.
fn record_fields(v: &RecordView<'_>) -> bool {
    let fields = v.metadata_and_tags();
    if let Ok((m, tags)) = &fields {
        assert_eq!(v.correlation_id(), m.correlation_id.as_deref());
        assert_eq!(v.has_tags(), !tags.is_empty());
    }
    let (Ok((meta, tags)), Ok(content)) = (fields, v.content_type()) else {
        return false;
    };
    let mut w = FrameWriter::new();
    let at = w.record(
        v.stream,
        v.version,
        v.id(),
        v.recorded_at_micros(),
        content,
        v.event_type,
        &meta,
        &tags,
        v.data(),
    );
    // The checksum is not compared: a record parsed without it may hold any.
    let (mut mine, mut theirs) = (w.buf[at..].to_vec(), v.bytes.to_vec());
    put_u32(&mut mine, 4, 0);
    put_u32(&mut theirs, 4, 0);
    assert_eq!(mine, theirs, "a decoded record re-encodes to its own bytes");
    true
}

/// Valid segments and records.
pub(super) fn seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    let meta = Metadata::default()
        .with_correlation_id("corr-1")
        .with_user_id("user-1")
        .with("tenant", "t-1");
    let mut out = Vec::new();
    for (name, check, header) in [
        ("v2", FrameCheck::salted(7), encode_segment_header(3, 7)),
        ("v1", FrameCheck::V1, encode_segment_header_v1(3)),
    ] {
        let mut w = FrameWriter::for_segment(check, 1);
        w.begin(FrameKind::Append);
        w.put_u32(2);
        let first = w.record(
            "order-1",
            1,
            fixed_id(1),
            1_000,
            ContentType::Json,
            "Placed",
            &meta,
            &[],
            br#"{"n":1}"#,
        );
        w.record(
            "order-1",
            2,
            fixed_id(2),
            2_000,
            ContentType::Binary,
            "Paid",
            &Metadata::default(),
            &[],
            &[0, 1, 2],
        );
        w.finish();
        let record_bytes = record_at(&w.buf, first);
        w.begin(FrameKind::Delete);
        w.delete_body("order-1", 1);
        w.finish();
        w.begin(FrameKind::Tombstone);
        w.delete_body("order-1", 2);
        w.finish();
        let mut seg = header.to_vec();
        seg.extend_from_slice(&w.buf);
        out.push((
            "segment",
            format!("{name}-append-delete-tombstone"),
            seg.clone(),
        ));
        seg.extend_from_slice(&[0u8; 64]);
        out.push(("segment", format!("{name}-zero-tail"), seg));
        out.push(("record", format!("{name}-with-metadata"), record_bytes));
    }
    out
}

/// A fixed event id, so the seeds are the same on every run.
fn fixed_id(n: u128) -> EventId {
    EventId::from(uuid::Uuid::from_u128(
        0x0190_a3c4_1f2e_7000_8000_0000_0000_0000 | n,
    ))
}

/// The record at `at` of an encoded buffer, by its length field.
fn record_at(buf: &[u8], at: usize) -> Vec<u8> {
    let len = u32_at(buf, at) as usize;
    buf[at..at + len].to_vec()
}
