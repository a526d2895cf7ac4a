//! Event records: the fixed header, the variable fields and the metadata,
//! decoded without trusting any length field.

#![deny(clippy::indexing_slicing)]

use std::collections::BTreeMap;

use bytes::Bytes;
use strata_core::clock::from_micros;
use strata_core::dcb::{Tag, MAX_TAGS_PER_EVENT};
use strata_core::{ContentType, EventId, Metadata, Position, RecordedEvent, StreamId};
use uuid::Uuid;

use crate::decode::{check_crc, DecodeError, Reader};
use crate::format::layout::{
    META_ALL, META_CAUSATION, META_CORRELATION, META_EXTRA, META_SOURCE, META_TAGS, META_USER,
    RECORD_HEADER_BYTES,
};

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
    id: [u8; 16],
    recorded_at: i64,
    content_code: u8,
    meta_flags: u8,
    meta: &'a [u8],
    data: &'a [u8],
}

impl<'a> RecordView<'a> {
    /// Parses and checks the record starting at `b[0]`.
    pub fn parse(b: &'a [u8]) -> Result<Self, DecodeError> {
        Self::parse_inner(b, true)
    }

    /// Parses a record inside a frame whose checksum was just verified (the
    /// frame's checksum covers the record): lengths are still checked, the
    /// record's own checksum is not recomputed.
    pub fn parse_in_verified_frame(b: &'a [u8]) -> Result<Self, DecodeError> {
        Self::parse_inner(b, false)
    }

    fn parse_inner(b: &'a [u8], check: bool) -> Result<Self, DecodeError> {
        if b.len() < RECORD_HEADER_BYTES {
            return Err(DecodeError::Truncated {
                what: "record header",
                need: RECORD_HEADER_BYTES,
                have: b.len(),
            });
        }
        let len = Reader::new(b).len_u32(b.len(), "record length")?;
        if len < RECORD_HEADER_BYTES {
            return Err(DecodeError::invalid(
                "record length",
                format!("record length {len} is shorter than a record header"),
            ));
        }
        let bytes = Reader::new(b).bytes(len, "record")?;
        let mut r = Reader::new(bytes);
        r.skip(4, "record length")?;
        let crc = r.u32("record checksum")?;
        if check {
            let covered = Reader::new(bytes).rest().get(8..).unwrap_or_default();
            check_crc(covered, crc, "record")?;
        }
        let version = r.u64("record version")?;
        let id = r.array::<16>("event id")?;
        let recorded_at = r.i64("recorded at")?;
        let data_len = r.u32("data length")? as usize;
        let type_len = usize::from(r.u16("event type length")?);
        let stream_len = usize::from(r.u8("stream name length")?);
        let content_code = r.u8("content type")?;
        let meta_flags = r.u8("metadata flags")?;
        if meta_flags & !META_ALL != 0 {
            return Err(DecodeError::invalid(
                "metadata flags",
                format!("unknown metadata flags {meta_flags:#04x}"),
            ));
        }
        if r.array::<3>("record reserved bytes")? != [0; 3] {
            return Err(DecodeError::invalid(
                "record reserved bytes",
                "non-zero reserved bytes",
            ));
        }
        let meta_len = r.u32("metadata length")? as usize;
        let declared = [stream_len, type_len, meta_len, data_len]
            .iter()
            .try_fold(RECORD_HEADER_BYTES, |acc, n| acc.checked_add(*n));
        if declared != Some(len) {
            return Err(DecodeError::invalid(
                "record",
                "record field lengths do not add up",
            ));
        }
        let stream = r.str(stream_len, "stream name")?;
        let event_type = r.str(type_len, "event type")?;
        let meta = r.bytes(meta_len, "metadata")?;
        let data = r.bytes(data_len, "data")?;
        Ok(RecordView {
            bytes,
            version,
            stream,
            event_type,
            id,
            recorded_at,
            content_code,
            meta_flags,
            meta,
            data,
        })
    }

    /// Whether a scavenge removed this record (its metadata and data are
    /// zeros; see [`crate::format::removal`]).
    pub fn is_removed(&self) -> bool {
        self.content_code == crate::format::REMOVED_CONTENT_CODE
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
        EventId(Uuid::from_bytes(self.id))
    }

    /// `recorded_at` in microseconds since the epoch.
    pub fn recorded_at_micros(&self) -> i64 {
        self.recorded_at
    }

    /// The content type code.
    pub fn content_type(&self) -> Result<ContentType, DecodeError> {
        ContentType::from_code(self.content_code).ok_or_else(|| {
            DecodeError::invalid(
                "content type",
                format!("unknown content type {}", self.content_code),
            )
        })
    }

    /// The data bytes.
    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    /// The correlation id, without decoding the rest of the metadata.
    pub fn correlation_id(&self) -> Option<&'a str> {
        if self.meta_flags & META_CORRELATION == 0 {
            return None;
        }
        Reader::new(self.meta).str16("correlation id").ok()
    }

    /// Decodes the metadata.
    pub fn metadata(&self) -> Result<Metadata, DecodeError> {
        Ok(self.metadata_and_tags()?.0)
    }

    /// Decodes the tags: a sorted set, empty for a record without any (as
    /// every record written before tags existed).
    pub fn tags(&self) -> Result<Vec<Tag>, DecodeError> {
        Ok(self.metadata_and_tags()?.1)
    }

    /// Whether the record carries tags, without decoding them.
    pub fn has_tags(&self) -> bool {
        self.meta_flags & META_TAGS != 0
    }

    /// Decodes the metadata section: the metadata fields, then the tags.
    pub fn metadata_and_tags(&self) -> Result<(Metadata, Vec<Tag>), DecodeError> {
        let mut m = Metadata::default();
        let mut r = Reader::new(self.meta);
        let flags = self.meta_flags;
        m.correlation_id = optional_str16(&mut r, flags, META_CORRELATION, "correlation id")?;
        m.causation_id = optional_str16(&mut r, flags, META_CAUSATION, "causation id")?;
        m.user_id = optional_str16(&mut r, flags, META_USER, "user id")?;
        m.source = optional_str16(&mut r, flags, META_SOURCE, "source")?;
        if flags & META_EXTRA != 0 {
            // Each entry takes at least 6 bytes: the count cannot outrun them.
            m.extra = extra_pairs(&mut r)?;
        }
        let tags = if flags & META_TAGS != 0 {
            tag_section(&mut r)?
        } else {
            Vec::new()
        };
        if !r.is_empty() {
            return Err(DecodeError::invalid(
                "metadata",
                "metadata has trailing bytes",
            ));
        }
        Ok((m, tags))
    }

    /// Builds the `RecordedEvent`. `shared` must be the buffer this record
    /// was parsed from and `offset_in_shared` the record's offset inside it,
    /// so the payload is a zero-copy slice.
    pub fn to_event(
        &self,
        stream: StreamId,
        position: Position,
        shared: &Bytes,
        offset_in_shared: usize,
    ) -> Result<RecordedEvent, DecodeError> {
        let end = offset_in_shared.checked_add(self.bytes.len());
        let start = end.and_then(|e| e.checked_sub(self.data.len()));
        let data = match (start, end) {
            (Some(start), Some(end)) if end <= shared.len() => shared.slice(start..end),
            _ => {
                return Err(DecodeError::Truncated {
                    what: "event data",
                    need: self.bytes.len(),
                    have: shared.len().saturating_sub(offset_in_shared),
                })
            }
        };
        let (metadata, tags) = self.metadata_and_tags()?;
        Ok(RecordedEvent {
            id: self.id(),
            stream_id: stream,
            version: self.version,
            position,
            event_type: self.event_type.to_owned(),
            data,
            content_type: self.content_type()?,
            metadata,
            recorded_at: from_micros(self.recorded_at_micros()),
            tags,
        })
    }
}

/// The extra pairs of a metadata section: at least one, keys strictly
/// ascending (as they are written), so no pair is dropped or reordered.
fn extra_pairs(r: &mut Reader<'_>) -> Result<BTreeMap<String, String>, DecodeError> {
    // Each entry takes at least 6 bytes: the count cannot outrun them.
    let count = r.len_u32(r.remaining() / 6, "metadata entry count")?;
    if count == 0 {
        return Err(DecodeError::invalid(
            "metadata entry count",
            "extra metadata flagged but no pair present",
        ));
    }
    let mut extra = BTreeMap::new();
    let mut last: Option<&str> = None;
    for _ in 0..count {
        let k = r.str16("metadata key")?;
        if last.is_some_and(|l| l >= k) {
            return Err(DecodeError::invalid(
                "metadata key",
                "metadata keys out of order or repeated",
            ));
        }
        last = Some(k);
        let n = r.len_u32(r.remaining(), "metadata value length")?;
        let v = r.str(n, "metadata value")?.to_owned();
        extra.insert(k.to_owned(), v);
    }
    Ok(extra)
}

/// A tag section: 1 to [`MAX_TAGS_PER_EVENT`] valid tags in strictly
/// ascending order (as they are written), so a record decodes to exactly
/// the tag set its bytes hold.
fn tag_section(r: &mut Reader<'_>) -> Result<Vec<Tag>, DecodeError> {
    let count = usize::from(r.u8("tag count")?);
    if count == 0 || count > MAX_TAGS_PER_EVENT {
        return Err(DecodeError::invalid(
            "tag count",
            format!("tags flagged with a count of {count}, not 1 to {MAX_TAGS_PER_EVENT}"),
        ));
    }
    let mut tags: Vec<Tag> = Vec::with_capacity(count);
    for _ in 0..count {
        let n = usize::from(r.u8("tag length")?);
        let text = r.str(n, "tag")?;
        let tag = Tag::new(text).map_err(|e| DecodeError::invalid("tag", e.to_string()))?;
        if tags.last().is_some_and(|last| *last >= tag) {
            return Err(DecodeError::invalid("tag", "tags out of order or repeated"));
        }
        tags.push(tag);
    }
    Ok(tags)
}

/// The next length-prefixed string if `flags` has `bit`, else `None`.
/// Inlined: it runs four times per record a read decodes.
#[inline(always)]
fn optional_str16(
    r: &mut Reader<'_>,
    flags: u8,
    bit: u8,
    what: &'static str,
) -> Result<Option<String>, DecodeError> {
    if flags & bit == 0 {
        return Ok(None);
    }
    Ok(Some(r.str16(what)?.to_owned()))
}
