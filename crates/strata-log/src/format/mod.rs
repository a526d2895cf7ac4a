//! The on-disk encoding of segments, frames and event records.
//!
//! `docs/log-format.md` describes every field; this module is its code. All
//! integers are little-endian. Encoding and decoding never trust a length
//! field without checking it against the bytes actually present.

use std::collections::BTreeMap;

use bytes::Bytes;
use strata_core::clock::from_micros;
use strata_core::{ContentType, EventId, Metadata, Position, RecordedEvent, StreamId};
use uuid::Uuid;

/// First 8 bytes of every segment file.
pub const SEGMENT_MAGIC: &[u8; 8] = b"STRATALG";
/// Version of the segment format this code writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// Size of the segment header; the first frame starts here.
pub const SEGMENT_HEADER_BYTES: usize = 32;
/// Size of a frame header.
pub const FRAME_HEADER_BYTES: usize = 16;
/// Frames start at multiples of this.
pub const FRAME_ALIGN: usize = 8;
/// Size of an event record's fixed header.
pub const RECORD_HEADER_BYTES: usize = 56;
/// A segment can never be larger than this: positions keep the in-segment
/// offset in their low 32 bits.
pub const MAX_SEGMENT_BYTES_LIMIT: u64 = 1 << 32;

/// Frame kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum FrameKind {
    /// One append (single- or multi-stream): a list of event records.
    Append = 1,
    /// A soft delete of one stream.
    Delete = 2,
    /// A tombstone (hard delete) of one stream.
    Tombstone = 3,
}

impl FrameKind {
    fn from_u8(v: u8) -> Option<Self> {
        match v {
            1 => Some(FrameKind::Append),
            2 => Some(FrameKind::Delete),
            3 => Some(FrameKind::Tombstone),
            _ => None,
        }
    }
}

/// Builds the global position of the byte at `offset` in segment `segment`.
pub fn position_of(segment: u32, offset: u64) -> Position {
    Position(((segment as u64) << 32) | offset)
}

/// Splits a position into (segment, offset).
pub fn split_position(p: Position) -> (u32, u64) {
    ((p.0 >> 32) as u32, p.0 & 0xffff_ffff)
}

/// Rounds `n` up to the frame alignment.
pub const fn align(n: usize) -> usize {
    (n + FRAME_ALIGN - 1) & !(FRAME_ALIGN - 1)
}

/// Encodes a segment header.
pub fn encode_segment_header(segment: u32) -> [u8; SEGMENT_HEADER_BYTES] {
    let mut h = [0u8; SEGMENT_HEADER_BYTES];
    h[0..8].copy_from_slice(SEGMENT_MAGIC);
    h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h[12..16].copy_from_slice(&segment.to_le_bytes());
    let crc = crc32c::crc32c(&h[0..28]);
    h[28..32].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Checks a segment header; returns the segment number it names.
pub fn decode_segment_header(h: &[u8]) -> Result<u32, String> {
    if h.len() < SEGMENT_HEADER_BYTES {
        return Err(format!(
            "segment header is {} bytes, expected {SEGMENT_HEADER_BYTES}",
            h.len()
        ));
    }
    if &h[0..8] != SEGMENT_MAGIC {
        return Err("bad segment magic".into());
    }
    let crc = u32_at(h, 28);
    if crc != crc32c::crc32c(&h[0..28]) {
        return Err("segment header checksum mismatch".into());
    }
    let version = u32_at(h, 8);
    if version != FORMAT_VERSION {
        return Err(format!(
            "segment format version {version}, this build reads {FORMAT_VERSION}"
        ));
    }
    Ok(u32_at(h, 12))
}

/// Reads a little-endian u16 at `at` (caller checked bounds).
pub fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

/// Reads a little-endian u32 at `at` (caller checked bounds).
pub fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Reads a little-endian u64 at `at` (caller checked bounds).
pub fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// Appends frames to a buffer, patching each frame's header when it is finished.
#[derive(Default)]
pub struct FrameWriter {
    /// The encoded bytes.
    pub buf: Vec<u8>,
    frame_start: usize,
}

impl FrameWriter {
    /// An empty writer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Clears the buffer for reuse.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.frame_start = 0;
    }

    /// Starts a frame of `kind`; returns the offset of the frame inside `buf`.
    pub fn begin(&mut self, kind: FrameKind) -> usize {
        self.frame_start = self.buf.len();
        self.buf.extend_from_slice(&[0u8; FRAME_HEADER_BYTES]);
        self.buf[self.frame_start + 8] = kind as u8;
        self.frame_start
    }

    /// Offset inside `buf` where the next byte goes.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Finishes the current frame: fills its length and checksum and pads it.
    pub fn finish(&mut self) {
        let start = self.frame_start;
        let body_len = self.buf.len() - start - FRAME_HEADER_BYTES;
        self.buf[start..start + 4].copy_from_slice(&(body_len as u32).to_le_bytes());
        let crc = crc32c::crc32c(&self.buf[start + 8..]);
        self.buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
        let padded = align(self.buf.len() - start) + start;
        self.buf.resize(padded, 0);
    }

    /// Drops the frame being built.
    pub fn abort(&mut self) {
        self.buf.truncate(self.frame_start);
    }

    /// Appends an event record; returns its offset inside `buf`.
    #[allow(clippy::too_many_arguments)]
    pub fn record(
        &mut self,
        stream: &str,
        version: u64,
        id: EventId,
        recorded_at_micros: i64,
        content_type: ContentType,
        event_type: &str,
        metadata: &Metadata,
        data: &[u8],
    ) -> usize {
        let start = self.buf.len();
        let b = &mut self.buf;
        b.extend_from_slice(&[0u8; 8]); // length + crc, patched below
        b.extend_from_slice(&version.to_le_bytes());
        b.extend_from_slice(id.0.as_bytes());
        b.extend_from_slice(&recorded_at_micros.to_le_bytes());
        b.extend_from_slice(&(data.len() as u32).to_le_bytes());
        b.extend_from_slice(&(event_type.len() as u16).to_le_bytes());
        b.push(stream.len() as u8);
        b.push(content_type.code());
        let flags = meta_flags(metadata);
        b.push(flags);
        b.extend_from_slice(&[0u8; 3]);
        let meta_len_at = b.len();
        b.extend_from_slice(&[0u8; 4]);
        b.extend_from_slice(stream.as_bytes());
        b.extend_from_slice(event_type.as_bytes());
        let meta_start = b.len();
        encode_metadata(b, metadata);
        let meta_len = (b.len() - meta_start) as u32;
        b[meta_len_at..meta_len_at + 4].copy_from_slice(&meta_len.to_le_bytes());
        b.extend_from_slice(data);
        let len = (b.len() - start) as u32;
        b[start..start + 4].copy_from_slice(&len.to_le_bytes());
        let crc = crc32c::crc32c(&b[start + 8..]);
        b[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
        start
    }

    /// Appends the body of a delete or tombstone frame.
    pub fn delete_body(&mut self, stream: &str, deleted_through: u64) {
        self.buf.push(stream.len() as u8);
        self.buf.extend_from_slice(stream.as_bytes());
        self.buf.extend_from_slice(&deleted_through.to_le_bytes());
    }

    /// Appends a u32 (used for an append frame's event count).
    pub fn put_u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
}

const META_CORRELATION: u8 = 1;
const META_CAUSATION: u8 = 2;
const META_USER: u8 = 4;
const META_SOURCE: u8 = 8;
const META_EXTRA: u8 = 16;

fn meta_flags(m: &Metadata) -> u8 {
    let mut f = 0;
    if m.correlation_id.is_some() {
        f |= META_CORRELATION;
    }
    if m.causation_id.is_some() {
        f |= META_CAUSATION;
    }
    if m.user_id.is_some() {
        f |= META_USER;
    }
    if m.source.is_some() {
        f |= META_SOURCE;
    }
    if !m.extra.is_empty() {
        f |= META_EXTRA;
    }
    f
}

fn put_str16(b: &mut Vec<u8>, s: &str) {
    b.extend_from_slice(&(s.len() as u16).to_le_bytes());
    b.extend_from_slice(s.as_bytes());
}

fn encode_metadata(b: &mut Vec<u8>, m: &Metadata) {
    for s in [&m.correlation_id, &m.causation_id, &m.user_id, &m.source]
        .into_iter()
        .flatten()
    {
        put_str16(b, s);
    }
    if !m.extra.is_empty() {
        b.extend_from_slice(&(m.extra.len() as u32).to_le_bytes());
        for (k, v) in &m.extra {
            put_str16(b, k);
            b.extend_from_slice(&(v.len() as u32).to_le_bytes());
            b.extend_from_slice(v.as_bytes());
        }
    }
}

/// Largest metadata string the format can hold in a u16-length field.
pub const MAX_METADATA_FIELD_BYTES: usize = u16::MAX as usize;

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
    Invalid(String),
}

/// Parses a frame header from the start of `b`.
pub fn parse_frame_header(b: &[u8], max_body: usize) -> Result<FrameHeader, FrameError> {
    if b.len() < FRAME_HEADER_BYTES {
        if b.iter().all(|&x| x == 0) {
            return Err(FrameError::Empty);
        }
        return Err(FrameError::Truncated);
    }
    let body_len = u32_at(b, 0) as usize;
    let crc = u32_at(b, 4);
    if body_len == 0 && crc == 0 && b[8..16].iter().all(|&x| x == 0) {
        return Err(FrameError::Empty);
    }
    let kind = FrameKind::from_u8(b[8])
        .ok_or_else(|| FrameError::Invalid(format!("unknown frame kind {}", b[8])))?;
    if b[9..16].iter().any(|&x| x != 0) {
        return Err(FrameError::Invalid(
            "non-zero reserved bytes in frame header".into(),
        ));
    }
    if body_len > max_body {
        return Err(FrameError::Invalid(format!(
            "frame claims {body_len} bytes, more than the segment can hold"
        )));
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
    let end = FRAME_HEADER_BYTES + h.body_len;
    if b.len() < end {
        return Err(FrameError::Truncated);
    }
    if crc32c::crc32c(&b[8..end]) != h.crc {
        return Err(FrameError::Invalid("frame checksum mismatch".into()));
    }
    Ok(&b[FRAME_HEADER_BYTES..end])
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
pub fn decode_delete(body: &[u8]) -> Result<DeleteBody, String> {
    let n = *body.first().ok_or("empty delete body")? as usize;
    if body.len() < 1 + n + 8 {
        return Err("delete body too short".into());
    }
    let stream = std::str::from_utf8(&body[1..1 + n])
        .map_err(|_| "delete body stream name is not UTF-8")?
        .to_owned();
    Ok(DeleteBody {
        stream,
        deleted_through: u64_at(body, 1 + n),
    })
}

/// The fixed part of an event record plus where its variable parts are.
#[derive(Debug, Clone, Copy)]
pub struct RecordView<'a> {
    /// The record's bytes (`record_len` of them).
    pub bytes: &'a [u8],
    /// The event's version.
    pub version: u64,
    /// Stream name.
    pub stream: &'a str,
    /// Event type.
    pub event_type: &'a str,
    meta_flags: u8,
    meta: &'a [u8],
    data_start: usize,
}

impl<'a> RecordView<'a> {
    /// Parses and checks the record starting at `b[0]`.
    pub fn parse(b: &'a [u8]) -> Result<Self, String> {
        Self::parse_inner(b, true)
    }

    /// Parses a record inside a frame whose checksum was just verified (the
    /// frame's checksum covers the record): lengths are still checked, the
    /// record's own checksum is not recomputed.
    pub fn parse_in_verified_frame(b: &'a [u8]) -> Result<Self, String> {
        Self::parse_inner(b, false)
    }

    fn parse_inner(b: &'a [u8], check_crc: bool) -> Result<Self, String> {
        if b.len() < RECORD_HEADER_BYTES {
            return Err("record shorter than its header".into());
        }
        let len = u32_at(b, 0) as usize;
        if len < RECORD_HEADER_BYTES || len > b.len() {
            return Err(format!(
                "record length {len} out of bounds ({} available)",
                b.len()
            ));
        }
        let b = &b[..len];
        if check_crc && crc32c::crc32c(&b[8..]) != u32_at(b, 4) {
            return Err("record checksum mismatch".into());
        }
        let data_len = u32_at(b, 40) as usize;
        let type_len = u16_at(b, 44) as usize;
        let stream_len = b[46] as usize;
        let meta_flags = b[48];
        let meta_len = u32_at(b, 52) as usize;
        let s0 = RECORD_HEADER_BYTES;
        let t0 = s0 + stream_len;
        let m0 = t0 + type_len;
        let d0 = m0 + meta_len;
        if d0 + data_len != len {
            return Err("record field lengths do not add up".into());
        }
        let stream = std::str::from_utf8(&b[s0..t0]).map_err(|_| "stream name is not UTF-8")?;
        let event_type = std::str::from_utf8(&b[t0..m0]).map_err(|_| "event type is not UTF-8")?;
        Ok(RecordView {
            bytes: b,
            version: u64_at(b, 8),
            stream,
            event_type,
            meta_flags,
            meta: &b[m0..d0],
            data_start: d0,
        })
    }

    /// The record's length in bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether the record is empty (never: a record has a header).
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The event id.
    pub fn id(&self) -> EventId {
        let mut a = [0u8; 16];
        a.copy_from_slice(&self.bytes[16..32]);
        EventId(Uuid::from_bytes(a))
    }

    /// `recorded_at` in microseconds since the epoch.
    pub fn recorded_at_micros(&self) -> i64 {
        u64_at(self.bytes, 32) as i64
    }

    /// The content type code.
    pub fn content_type(&self) -> Result<ContentType, String> {
        ContentType::from_code(self.bytes[47])
            .ok_or_else(|| format!("unknown content type {}", self.bytes[47]))
    }

    /// The data bytes.
    pub fn data(&self) -> &'a [u8] {
        &self.bytes[self.data_start..]
    }

    /// The correlation id, without decoding the rest of the metadata.
    pub fn correlation_id(&self) -> Option<&'a str> {
        if self.meta_flags & META_CORRELATION == 0 {
            return None;
        }
        let n = u16_at(self.meta, 0) as usize;
        self.meta
            .get(2..2 + n)
            .and_then(|s| std::str::from_utf8(s).ok())
    }

    /// Decodes the metadata.
    pub fn metadata(&self) -> Result<Metadata, String> {
        let mut m = Metadata::default();
        let mut at = 0usize;
        let meta = self.meta;
        let take_str16 = |at: &mut usize| -> Result<String, String> {
            let n = u16_at(meta.get(*at..*at + 2).ok_or("metadata truncated")?, 0) as usize;
            let s = meta.get(*at + 2..*at + 2 + n).ok_or("metadata truncated")?;
            *at += 2 + n;
            String::from_utf8(s.to_vec()).map_err(|_| "metadata is not UTF-8".to_string())
        };
        if self.meta_flags & META_CORRELATION != 0 {
            m.correlation_id = Some(take_str16(&mut at)?);
        }
        if self.meta_flags & META_CAUSATION != 0 {
            m.causation_id = Some(take_str16(&mut at)?);
        }
        if self.meta_flags & META_USER != 0 {
            m.user_id = Some(take_str16(&mut at)?);
        }
        if self.meta_flags & META_SOURCE != 0 {
            m.source = Some(take_str16(&mut at)?);
        }
        if self.meta_flags & META_EXTRA != 0 {
            let count = u32_at(meta.get(at..at + 4).ok_or("metadata truncated")?, 0) as usize;
            at += 4;
            let mut extra = BTreeMap::new();
            for _ in 0..count {
                let k = take_str16(&mut at)?;
                let n = u32_at(meta.get(at..at + 4).ok_or("metadata truncated")?, 0) as usize;
                let v = meta.get(at + 4..at + 4 + n).ok_or("metadata truncated")?;
                at += 4 + n;
                extra.insert(
                    k,
                    String::from_utf8(v.to_vec()).map_err(|_| "metadata is not UTF-8")?,
                );
            }
            m.extra = extra;
        }
        if at != meta.len() {
            return Err("metadata has trailing bytes".into());
        }
        Ok(m)
    }

    /// Builds the `RecordedEvent`. `data` must be the shared buffer this
    /// record was parsed from and `offset` the record's offset inside it, so
    /// the payload is a zero-copy slice.
    pub fn to_event(
        &self,
        stream: StreamId,
        position: Position,
        shared: &Bytes,
        offset_in_shared: usize,
    ) -> Result<RecordedEvent, String> {
        let start = offset_in_shared + self.data_start;
        let data = shared.slice(start..offset_in_shared + self.bytes.len());
        Ok(RecordedEvent {
            id: self.id(),
            stream_id: stream,
            version: self.version,
            position,
            event_type: self.event_type.to_owned(),
            data,
            content_type: self.content_type()?,
            metadata: self.metadata()?,
            recorded_at: from_micros(self.recorded_at_micros()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let at = w.record("s-1", 7, id, 123, ContentType::Json, "T", &meta, b"{}");
        w.finish();
        assert_eq!(w.buf.len() % FRAME_ALIGN, 0);
        let h = parse_frame_header(&w.buf, 1 << 20).unwrap();
        let body = verify_frame(&w.buf, &h).unwrap();
        assert_eq!(u32_at(body, 0), 1);
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
            b"abc",
        );
        w.finish();
        for bit in 0..(w.buf.len() * 8) {
            let mut b = w.buf.clone();
            b[bit / 8] ^= 1 << (bit % 8);
            let frame_ok = parse_frame_header(&b, 1 << 20)
                .ok()
                .and_then(|h| verify_frame(&b, &h).ok().map(|_| ()))
                .is_some();
            let record_ok = RecordView::parse(&b[at..]).is_ok();
            // Padding bytes are not covered by any checksum.
            let body_end = FRAME_HEADER_BYTES + u32_at(&w.buf, 0) as usize;
            let in_padding = bit / 8 >= body_end;
            if !in_padding {
                assert!(!(frame_ok && record_ok), "flip of bit {bit} went unnoticed");
            }
        }
    }
}
