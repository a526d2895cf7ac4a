//! Encoding frames and event records into a batch buffer.

use strata_core::dcb::Tag;
use strata_core::{ContentType, EventId, Metadata};

use crate::format::frame::encode_seq_floor;
use crate::format::layout::{
    align, FrameCheck, FrameKind, FRAME_HEADER_BYTES, META_CAUSATION, META_CORRELATION, META_EXTRA,
    META_SOURCE, META_TAGS, META_USER,
};

/// Appends frames to a buffer, patching each frame's header when it is
/// finished. It numbers the frames of its segment (format 2) and stamps each
/// with the sync floor: the first sequence number not yet made durable.
pub struct FrameWriter {
    /// The encoded bytes.
    pub buf: Vec<u8>,
    frame_start: usize,
    check: FrameCheck,
    /// Sequence number of the next frame.
    next_seq: u32,
    /// Frames numbered below this are durable.
    floor: u32,
}

impl Default for FrameWriter {
    fn default() -> Self {
        Self::for_segment(FrameCheck::V1, 0)
    }
}

impl FrameWriter {
    /// An empty writer of format-1 frames.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty writer for a segment checked by `check` whose next frame is
    /// numbered `next_seq` (1 in a new segment), every earlier frame durable.
    pub fn for_segment(check: FrameCheck, next_seq: u32) -> Self {
        FrameWriter {
            buf: Vec::new(),
            frame_start: 0,
            check,
            next_seq,
            floor: next_seq,
        }
    }

    /// Starts numbering the frames of a new segment.
    pub fn start_segment(&mut self, check: FrameCheck) {
        self.check = check;
        self.next_seq = 1;
        self.floor = 1;
    }

    /// Every frame before sequence number `seq` is durable: later frames
    /// say so (never less than they already do).
    pub fn mark_synced_before(&mut self, seq: u32) {
        self.floor = self.floor.max(seq.min(self.next_seq));
    }

    /// Sequence number of the next frame.
    pub fn next_seq(&self) -> u32 {
        self.next_seq
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
        if self.check.sequenced() {
            self.buf[start + 9..start + 16]
                .copy_from_slice(&encode_seq_floor(self.next_seq, self.floor));
            self.next_seq += 1;
        }
        let crc = self.check.crc(&self.buf[start + 8..]);
        self.buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
        let padded = align(self.buf.len() - start) + start;
        self.buf.resize(padded, 0);
    }

    /// Drops the frame being built.
    pub fn abort(&mut self) {
        self.buf.truncate(self.frame_start);
    }

    /// Appends an event record; returns its offset inside `buf`. `tags`
    /// must be a tag set (sorted, each once, as `strata_core::dcb::tag_set`
    /// makes it).
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
        tags: &[Tag],
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
        let mut flags = meta_flags(metadata);
        if !tags.is_empty() {
            flags |= META_TAGS;
        }
        b.push(flags);
        b.extend_from_slice(&[0u8; 3]);
        let meta_len_at = b.len();
        b.extend_from_slice(&[0u8; 4]);
        b.extend_from_slice(stream.as_bytes());
        b.extend_from_slice(event_type.as_bytes());
        let meta_start = b.len();
        encode_metadata(b, metadata);
        encode_tags(b, tags);
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

/// The tag section: `u8 count` (1 to 16) then, for each tag in ascending
/// order, `u8 length` and its bytes. Nothing when there are no tags.
fn encode_tags(b: &mut Vec<u8>, tags: &[Tag]) {
    if tags.is_empty() {
        return;
    }
    b.push(tags.len() as u8);
    for t in tags {
        b.push(t.as_str().len() as u8);
        b.extend_from_slice(t.as_str().as_bytes());
    }
}

/// Bytes the tag section of `tags` takes.
pub(crate) fn tags_len(tags: &[Tag]) -> usize {
    if tags.is_empty() {
        return 0;
    }
    1 + tags.iter().map(|t| 1 + t.as_str().len()).sum::<usize>()
}
