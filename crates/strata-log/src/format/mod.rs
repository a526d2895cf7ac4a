//! The on-disk encoding of segments, frames and event records.
//!
//! `docs/log-format.md` describes every field; this module is its code. All
//! integers are little-endian. Decoding ([`header`], [`frame`], [`record`])
//! never trusts a length field without checking it against the bytes
//! actually present, and fails with a typed [`DecodeError`](crate::decode::DecodeError).

mod encode;
pub mod frame;
pub mod header;
mod layout;
pub mod record;
pub mod removal;

pub(crate) use encode::tags_len;
pub use encode::FrameWriter;
pub use frame::{
    decode_delete, parse_frame_header, record_offsets, verify_frame, DeleteBody, FrameError,
    FrameHeader, MAX_FRAME_SEQ,
};
pub use header::{
    decode_segment_header, encode_segment_header, encode_segment_header_v1, new_salt, SegmentHeader,
};
pub use layout::{
    align, position_of, split_position, FrameCheck, FrameKind, FORMAT_VERSION, FORMAT_VERSION_1,
    FRAME_ALIGN, FRAME_HEADER_BYTES, MAX_METADATA_FIELD_BYTES, MAX_SEGMENT_BYTES_LIMIT,
    RECORD_HEADER_BYTES, REMOVED_CONTENT_CODE, SEGMENT_HEADER_BYTES, SEGMENT_MAGIC,
};
pub use record::RecordView;

#[cfg(test)]
mod tests {
    use strata_core::{ContentType, EventId, Metadata};

    use super::*;
    use crate::decode::{DecodeError, Reader};

    fn body_len(frame: &[u8]) -> usize {
        Reader::new(frame).u32("frame length").unwrap() as usize
    }

    fn one_record(meta: &Metadata) -> (FrameWriter, usize) {
        let mut w = FrameWriter::new();
        w.begin(FrameKind::Append);
        w.put_u32(1);
        let at = w.record(
            "s-1",
            7,
            EventId::new(),
            123,
            ContentType::Json,
            "T",
            meta,
            &[],
            b"{}",
        );
        w.finish();
        (w, at)
    }

    #[test]
    fn record_roundtrip() {
        let mut w = FrameWriter::new();
        w.begin(FrameKind::Append);
        w.put_u32(1);
        let meta = Metadata::default()
            .with_correlation_id("c")
            .with_user_id("u")
            .with("k", "v");
        let id = EventId::new();
        let at = w.record("s-1", 7, id, 123, ContentType::Json, "T", &meta, &[], b"{}");
        w.finish();
        assert_eq!(w.buf.len() % FRAME_ALIGN, 0);
        let h = parse_frame_header(&w.buf, 1 << 20, FrameCheck::V1).unwrap();
        let body = verify_frame(&w.buf, &h, FrameCheck::V1).unwrap();
        assert_eq!(Reader::new(body).u32("count").unwrap(), 1);
        assert_eq!(record_offsets(body, 0).unwrap().len(), 1);
        let r = RecordView::parse(&w.buf[at..]).unwrap();
        assert_eq!(r.version, 7);
        assert_eq!(r.stream, "s-1");
        assert_eq!(r.event_type, "T");
        assert_eq!(r.id(), id);
        assert_eq!(r.correlation_id(), Some("c"));
        assert_eq!(r.metadata().unwrap(), meta);
        assert_eq!(r.data(), b"{}");
        assert_eq!(r.recorded_at_micros(), 123);
    }

    #[test]
    fn detects_flipped_bits() {
        let mut w = FrameWriter::new();
        w.begin(FrameKind::Append);
        w.put_u32(1);
        let at = w.record(
            "s",
            1,
            EventId::new(),
            0,
            ContentType::Binary,
            "T",
            &Metadata::default(),
            &[],
            b"abc",
        );
        w.finish();
        for bit in 0..(w.buf.len() * 8) {
            let mut b = w.buf.clone();
            b[bit / 8] ^= 1 << (bit % 8);
            let frame_ok = parse_frame_header(&b, 1 << 20, FrameCheck::V1)
                .ok()
                .and_then(|h| verify_frame(&b, &h, FrameCheck::V1).ok().map(|_| ()))
                .is_some();
            let record_ok = RecordView::parse(&b[at..]).is_ok();
            // Padding bytes are not covered by any checksum.
            let body_end = FRAME_HEADER_BYTES + body_len(&w.buf);
            let in_padding = bit / 8 >= body_end;
            if !in_padding {
                assert!(!(frame_ok && record_ok), "flip of bit {bit} went unnoticed");
            }
        }
    }

    #[test]
    fn every_truncation_of_a_record_is_a_typed_error() {
        let meta = Metadata::default().with_correlation_id("c").with("k", "v");
        let (w, at) = one_record(&meta);
        let rec = &w.buf[at..FRAME_HEADER_BYTES + body_len(&w.buf)];
        assert!(RecordView::parse(rec).is_ok());
        for n in 0..rec.len() {
            let e = RecordView::parse(&rec[..n]).unwrap_err();
            assert!(
                matches!(
                    e,
                    DecodeError::Truncated { .. } | DecodeError::TooLong { .. }
                ),
                "{n}: {e}"
            );
        }
    }

    /// A record whose metadata and reserved bytes are rewritten, with its
    /// checksum recomputed.
    fn patched(meta: &Metadata, patch: impl Fn(&mut Vec<u8>)) -> Vec<u8> {
        let (w, at) = one_record(meta);
        let mut rec = w.buf[at..FRAME_HEADER_BYTES + body_len(&w.buf)].to_vec();
        patch(&mut rec);
        let crc = crc32c::crc32c(&rec[8..]);
        rec[4..8].copy_from_slice(&crc.to_le_bytes());
        rec
    }

    #[test]
    fn reserved_bytes_and_unknown_flags_are_refused() {
        let meta = Metadata::default();
        assert!(RecordView::parse(&patched(&meta, |_| ())).is_ok());
        for (at, value) in [(49, 1), (51, 0x80), (48, 0x40), (48, 0x80)] {
            let rec = patched(&meta, |r| r[at] = value);
            let e = RecordView::parse(&rec).unwrap_err();
            assert!(matches!(e, DecodeError::Invalid { .. }), "{at}: {e}");
        }
    }

    #[test]
    fn extra_pairs_must_be_ascending_unique_and_present() {
        let meta = Metadata::default().with("a", "1").with("b", "2");
        let good = patched(&meta, |_| ());
        assert_eq!(RecordView::parse(&good).unwrap().metadata().unwrap(), meta);
        // The metadata section starts after the 1-byte stream and type names.
        let m = RECORD_HEADER_BYTES + "s-1".len() + "T".len();
        // Keys "a" and "b" swapped: out of order.
        let swapped = patched(&meta, |r| {
            r[m + 6] = b'b';
            r[m + 6 + 1 + 4 + 1 + 2] = b'a';
        });
        let v = RecordView::parse(&swapped).unwrap();
        assert!(matches!(v.metadata(), Err(DecodeError::Invalid { .. })));
        // Both keys "a": repeated.
        let repeated = patched(&meta, |r| r[m + 6 + 1 + 4 + 1 + 2] = b'a');
        let v = RecordView::parse(&repeated).unwrap();
        assert!(matches!(v.metadata(), Err(DecodeError::Invalid { .. })));
    }

    #[test]
    fn a_huge_record_length_is_refused_before_use() {
        let (mut w, at) = one_record(&Metadata::default());
        w.buf[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        let e = RecordView::parse(&w.buf[at..]).unwrap_err();
        assert!(matches!(e, DecodeError::TooLong { .. }), "{e}");
        let e = RecordView::parse_in_verified_frame(&w.buf[at..]).unwrap_err();
        assert!(matches!(e, DecodeError::TooLong { .. }), "{e}");
    }

    #[test]
    fn damaged_metadata_is_a_typed_error_without_the_checksum() {
        let meta = Metadata::default().with_correlation_id("c").with("k", "v");
        let (w, at) = one_record(&meta);
        let end = FRAME_HEADER_BYTES + body_len(&w.buf);
        // Every flipped byte of a record, parsed as if its frame were verified
        // (so no checksum stops it): an error or a value, never a panic.
        for i in at..end {
            let mut b = w.buf.clone();
            b[i] ^= 0xff;
            if let Ok(v) = RecordView::parse_in_verified_frame(&b[at..end]) {
                let _ = v.metadata();
                let _ = v.content_type();
                let _ = v.correlation_id();
            }
            assert!(
                RecordView::parse(&b[at..end]).is_err(),
                "flip at {i} went unnoticed"
            );
        }
    }

    fn tag(t: &str) -> strata_core::dcb::Tag {
        strata_core::dcb::Tag::new(t).unwrap()
    }

    fn tagged_record(meta: &Metadata, tags: &[strata_core::dcb::Tag]) -> Vec<u8> {
        let mut w = FrameWriter::new();
        w.begin(FrameKind::Append);
        w.put_u32(1);
        let at = w.record(
            "s-1",
            7,
            EventId::new(),
            123,
            ContentType::Json,
            "T",
            meta,
            tags,
            b"{}",
        );
        w.finish();
        w.buf[at..FRAME_HEADER_BYTES + body_len(&w.buf)].to_vec()
    }

    #[test]
    fn tags_roundtrip_after_the_metadata() {
        let tags = vec![tag("course:c1"), tag("student:s1")];
        for meta in [
            Metadata::default(),
            Metadata::default().with_correlation_id("c").with("k", "v"),
        ] {
            let rec = tagged_record(&meta, &tags);
            let v = RecordView::parse(&rec).unwrap();
            assert!(v.has_tags());
            assert_eq!(v.metadata().unwrap(), meta);
            assert_eq!(v.tags().unwrap(), tags);
            assert_eq!(v.correlation_id(), meta.correlation_id.as_deref());
        }
        let v_rec = tagged_record(&Metadata::default(), &[]);
        let v = RecordView::parse(&v_rec).unwrap();
        assert!(!v.has_tags());
        assert_eq!(v.tags().unwrap(), Vec::new());
    }

    /// A record as written before tags existed, laid out by hand: it
    /// decodes with no tags.
    #[test]
    fn a_record_written_before_tags_decodes_with_none() {
        let mut rec = Vec::new();
        rec.extend_from_slice(&[0u8; 8]);
        rec.extend_from_slice(&3u64.to_le_bytes());
        rec.extend_from_slice(&[0x11; 16]);
        rec.extend_from_slice(&1_000i64.to_le_bytes());
        rec.extend_from_slice(&2u32.to_le_bytes()); // data length
        rec.extend_from_slice(&1u16.to_le_bytes()); // type length
        rec.push(3); // stream length
        rec.push(0); // JSON
        rec.push(1); // correlation id only
        rec.extend_from_slice(&[0; 3]);
        rec.extend_from_slice(&3u32.to_le_bytes()); // metadata length
        rec.extend_from_slice(b"s-1");
        rec.extend_from_slice(b"T");
        rec.extend_from_slice(&1u16.to_le_bytes());
        rec.extend_from_slice(b"c");
        rec.extend_from_slice(b"{}");
        let len = rec.len() as u32;
        rec[0..4].copy_from_slice(&len.to_le_bytes());
        let crc = crc32c::crc32c(&rec[8..]);
        rec[4..8].copy_from_slice(&crc.to_le_bytes());
        let v = RecordView::parse(&rec).unwrap();
        assert!(!v.has_tags());
        assert_eq!(v.tags().unwrap(), Vec::new());
        assert_eq!(
            v.metadata().unwrap(),
            Metadata::default().with_correlation_id("c")
        );
        let e = v
            .to_event(
                strata_core::StreamId::new("s-1").unwrap(),
                strata_core::Position(1),
                &bytes::Bytes::from(rec.clone()),
                0,
            )
            .unwrap();
        assert!(e.tags.is_empty());
        assert_eq!(&e.data[..], b"{}");
    }

    #[test]
    fn damaged_tag_sections_are_refused() {
        let meta = Metadata::default();
        let tags = [tag("a:1"), tag("b:2")];
        // The tag section starts after the 1-byte stream and type names.
        let t = RECORD_HEADER_BYTES + "s-1".len() + "T".len();
        let good = patched_tags(&meta, &tags, |_| ());
        assert_eq!(RecordView::parse(&good).unwrap().tags().unwrap(), tags);
        type Patch = Box<dyn Fn(&mut Vec<u8>)>;
        let cases: [(&str, Patch); 4] = [
            ("count 0", Box::new(move |r| r[t] = 0)),
            (
                "swapped",
                Box::new(move |r| {
                    r[t + 2] = b'b';
                    r[t + 2 + 3 + 1] = b'a';
                }),
            ),
            (
                "repeated",
                Box::new(move |r| {
                    r[t + 2 + 3 + 1] = b'a';
                    r[t + 2 + 3 + 3] = b'1';
                }),
            ),
            ("whitespace", Box::new(move |r| r[t + 3] = b' ')),
        ];
        for (name, patch) in cases {
            let rec = patched_tags(&meta, &tags, patch);
            let v = RecordView::parse(&rec).unwrap();
            assert!(
                matches!(v.tags(), Err(DecodeError::Invalid { .. })),
                "{name}"
            );
        }
        // The tag flag without a section.
        let flagged = patched(&meta, |r| r[48] = 0x20);
        let v = RecordView::parse(&flagged).unwrap();
        assert!(v.metadata().is_err());
    }

    fn patched_tags(
        meta: &Metadata,
        tags: &[strata_core::dcb::Tag],
        patch: impl Fn(&mut Vec<u8>),
    ) -> Vec<u8> {
        let mut rec = tagged_record(meta, tags);
        patch(&mut rec);
        let crc = crc32c::crc32c(&rec[8..]);
        rec[4..8].copy_from_slice(&crc.to_le_bytes());
        rec
    }
}
