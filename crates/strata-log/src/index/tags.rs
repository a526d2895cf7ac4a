//! Tag files of sealed segments (`index/NNNNNNNN.tags`), beside their
//! index files: every event of a user stream the segment holds, with what
//! the tag index keeps of it (stream, version, time, type, tags), so that
//! opening a store loads the tag index instead of reading every event.
//!
//! ```text
//! header (24 bytes)  magic "STRATATG", version u32, segment u32,
//!                    strings u32, events u32
//! strings            each: u16 length and its UTF-8 bytes (stream ids,
//!                    event types and tags, each once)
//! events             each, positions ascending: position u64, stream
//!                    (string number) u32, version u64, recorded_at i64,
//!                    type (string number) u32, tag count u8, tags
//!                    (string numbers) u32 each
//! trailer (8 bytes)  crc32c of everything before it u32, magic "SXTG"
//! ```
//!
//! The file is read whole and checked once; a file that fails any check is
//! rebuilt from its segment.

#![deny(clippy::indexing_slicing)]

use std::collections::HashMap;

use strata_core::dcb::{Tag, MAX_TAGS_PER_EVENT};
use strata_core::StreamId;

use crate::dcb::Placed;
use crate::decode::{check_crc, DecodeError, Reader};
use crate::format::{position_of, MAX_SEGMENT_BYTES_LIMIT};

const TAGS_MAGIC: &[u8; 8] = b"STRATATG";
const TAGS_TRAILER_MAGIC: &[u8; 4] = b"SXTG";
const TAGS_VERSION: u32 = 1;
const TAGS_HEADER_BYTES: usize = 24;
const TAGS_TRAILER_BYTES: usize = 8;

/// The largest tag file read: no larger than the largest segment, whose
/// records hold every string and number the file repeats.
pub const MAX_TAG_FILE_BYTES: u64 = MAX_SEGMENT_BYTES_LIMIT;

/// One event of a user stream as a tag file holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagEntry {
    /// Its position.
    pub position: u64,
    /// Its stream, version and time.
    pub placed: Placed,
    /// Its type.
    pub event_type: String,
    /// Its tag set (sorted, each once).
    pub tags: Vec<Tag>,
}

/// Interns strings into the file's string table.
#[derive(Default)]
struct Strings<'a> {
    numbers: HashMap<&'a str, u32>,
    bytes: Vec<u8>,
    count: u32,
}

impl<'a> Strings<'a> {
    fn number(&mut self, s: &'a str) -> u32 {
        if let Some(n) = self.numbers.get(s) {
            return *n;
        }
        let n = self.count;
        self.count += 1;
        self.bytes
            .extend_from_slice(&(s.len().min(u16::MAX as usize) as u16).to_le_bytes());
        self.bytes.extend_from_slice(
            s.as_bytes()
                .get(..s.len().min(u16::MAX as usize))
                .unwrap_or_default(),
        );
        self.numbers.insert(s, n);
        n
    }
}

/// Encodes the tag file of segment `segment` holding `entries` (positions
/// ascending).
pub fn encode_tag_file(segment: u32, entries: &[TagEntry]) -> Vec<u8> {
    let mut strings = Strings::default();
    let mut events = Vec::with_capacity(entries.len() * 48);
    for e in entries {
        events.extend_from_slice(&e.position.to_le_bytes());
        events.extend_from_slice(&strings.number(e.placed.stream.as_str()).to_le_bytes());
        events.extend_from_slice(&e.placed.version.to_le_bytes());
        events.extend_from_slice(&e.placed.recorded_at.to_le_bytes());
        events.extend_from_slice(&strings.number(&e.event_type).to_le_bytes());
        events.push(e.tags.len() as u8);
        for t in &e.tags {
            events.extend_from_slice(&strings.number(t.as_str()).to_le_bytes());
        }
    }
    let mut b = Vec::with_capacity(
        TAGS_HEADER_BYTES + strings.bytes.len() + events.len() + TAGS_TRAILER_BYTES,
    );
    b.extend_from_slice(TAGS_MAGIC);
    b.extend_from_slice(&TAGS_VERSION.to_le_bytes());
    b.extend_from_slice(&segment.to_le_bytes());
    b.extend_from_slice(&strings.count.to_le_bytes());
    b.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    b.extend_from_slice(&strings.bytes);
    b.extend_from_slice(&events);
    let crc = crc32c::crc32c(&b);
    b.extend_from_slice(&crc.to_le_bytes());
    b.extend_from_slice(TAGS_TRAILER_MAGIC);
    b
}

/// One event of a tag file, as [`walk_tag_file`] hands it over.
#[derive(Debug)]
pub struct TagEvent<'a> {
    /// Its position.
    pub position: u64,
    /// Its stream.
    pub stream: &'a StreamId,
    /// Its version.
    pub version: u64,
    /// When it was recorded, microseconds since the epoch.
    pub recorded_at: i64,
    /// Its type.
    pub event_type: &'a str,
    /// Its type's number in the file's string table: the same type has the
    /// same number throughout one file.
    pub type_number: u32,
    /// Its tag set (sorted, each once).
    pub tags: &'a [Tag],
}

/// Decodes the tag file of segment `segment`: every check passes (magic,
/// version, segment, checksum, string numbers, tags valid and sorted,
/// positions ascending inside the segment) or the file is refused.
pub fn decode_tag_file(segment: u32, b: &[u8]) -> Result<Vec<TagEntry>, DecodeError> {
    let mut out = Vec::new();
    walk_tag_file(segment, b, |e| {
        out.push(TagEntry {
            position: e.position,
            placed: Placed {
                stream: e.stream.clone(),
                version: e.version,
                recorded_at: e.recorded_at,
            },
            event_type: e.event_type.to_owned(),
            tags: e.tags.to_vec(),
        })
    })?;
    Ok(out)
}

/// Checks the tag file of segment `segment` as [`decode_tag_file`] does,
/// handing each event to `each` in position order without allocating
/// anything per event (each distinct stream and tag is built once). The
/// checksum is checked before the first event is handed over; a later
/// check that fails stops the walk with the events before it handed over.
/// Returns how many events there were.
pub fn walk_tag_file(
    segment: u32,
    b: &[u8],
    mut each: impl FnMut(TagEvent<'_>),
) -> Result<usize, DecodeError> {
    let body = checked_body(segment, b)?;
    let mut r = Reader::new(body);
    // The header was checked by `checked_body`.
    r.bytes(TAGS_HEADER_BYTES - 8, "tag file header")?;
    // Every string and event takes at least 2 bytes: counts beyond the
    // bytes present are refused before any allocation.
    let string_count = r.len_u32(body.len() / 2, "tag file strings")?;
    let event_count = r.len_u32(body.len() / 2, "tag file events")?;
    let mut strings: Vec<&str> = Vec::with_capacity(string_count);
    for _ in 0..string_count {
        strings.push(r.str16("tag file string")?);
    }
    let mut table = StringTable {
        strings,
        streams: vec![None; string_count],
        tags: vec![None; string_count],
    };
    let first = position_of(segment, 0).0;
    let end = position_of(segment.saturating_add(1), 0).0;
    let mut last: Option<u64> = None;
    let mut set: Vec<Tag> = Vec::with_capacity(MAX_TAGS_PER_EVENT);
    for _ in 0..event_count {
        let position = r.u64("tag file position")?;
        if position < first || position >= end || last.is_some_and(|l| l >= position) {
            return Err(DecodeError::invalid(
                "tag file position",
                format!("{position} out of order or outside the segment"),
            ));
        }
        last = Some(position);
        let sn = r.u32("tag file stream")?;
        table.stream(sn)?;
        let version = r.u64("tag file version")?;
        let recorded_at = r.i64("tag file recorded_at")?;
        let type_number = r.u32("tag file type")?;
        let event_type = table.string(type_number)?;
        let count = r.u8("tag file tag count")? as usize;
        if count > MAX_TAGS_PER_EVENT {
            return Err(DecodeError::TooLong {
                what: "tag file tag count",
                len: count as u64,
                max: MAX_TAGS_PER_EVENT as u64,
            });
        }
        set.clear();
        for _ in 0..count {
            let tag = table.tag(r.u32("tag file tag")?)?;
            if set.last().is_some_and(|l| l >= tag) {
                return Err(DecodeError::invalid(
                    "tag file tag",
                    "tags out of order or repeated",
                ));
            }
            set.push(tag.clone());
        }
        let Some(stream) = table.streams.get(sn as usize).and_then(Option::as_ref) else {
            return Err(DecodeError::invalid("tag file stream", "not decoded"));
        };
        each(TagEvent {
            position,
            stream,
            version,
            recorded_at,
            event_type,
            type_number,
            tags: &set,
        });
    }
    if !r.is_empty() {
        return Err(DecodeError::invalid(
            "tag file",
            format!("{} bytes after the last event", r.remaining()),
        ));
    }
    Ok(event_count)
}

/// A tag file's strings, and the streams and tags built from them so far.
struct StringTable<'a> {
    strings: Vec<&'a str>,
    streams: Vec<Option<StreamId>>,
    tags: Vec<Option<Tag>>,
}

impl<'a> StringTable<'a> {
    fn string(&self, n: u32) -> Result<&'a str, DecodeError> {
        self.strings.get(n as usize).copied().ok_or_else(|| {
            DecodeError::invalid("tag file string number", format!("{n} out of range"))
        })
    }

    /// Builds stream `n` once.
    fn stream(&mut self, n: u32) -> Result<(), DecodeError> {
        let name = self.string(n)?;
        if let Some(slot @ None) = self.streams.get_mut(n as usize) {
            *slot = Some(
                StreamId::new(name)
                    .map_err(|e| DecodeError::invalid("tag file stream", e.to_string()))?,
            );
        }
        Ok(())
    }

    /// Tag `n`, built once.
    fn tag(&mut self, n: u32) -> Result<&Tag, DecodeError> {
        let name = self.string(n)?;
        let slot = self
            .tags
            .get_mut(n as usize)
            .ok_or_else(|| DecodeError::invalid("tag file tag", "out of range"))?;
        if slot.is_none() {
            *slot = Some(
                Tag::new(name).map_err(|e| DecodeError::invalid("tag file tag", e.to_string()))?,
            );
        }
        slot.as_ref()
            .ok_or_else(|| DecodeError::invalid("tag file tag", "not decoded"))
    }
}

/// The body of a tag file (all but its trailer) once its size, trailer,
/// checksum, magic, version and segment are checked.
fn checked_body(segment: u32, b: &[u8]) -> Result<&[u8], DecodeError> {
    if b.len() as u64 > MAX_TAG_FILE_BYTES {
        return Err(DecodeError::TooLong {
            what: "tag file",
            len: b.len() as u64,
            max: MAX_TAG_FILE_BYTES,
        });
    }
    let body_len = b
        .len()
        .checked_sub(TAGS_TRAILER_BYTES)
        .filter(|n| *n >= TAGS_HEADER_BYTES)
        .ok_or(DecodeError::Truncated {
            what: "tag file",
            need: TAGS_HEADER_BYTES + TAGS_TRAILER_BYTES,
            have: b.len(),
        })?;
    let (body, trailer) = b.split_at(body_len);
    let mut t = Reader::new(trailer);
    let stored = t.u32("tag file checksum")?;
    if t.array::<4>("tag file trailer")? != *TAGS_TRAILER_MAGIC {
        return Err(DecodeError::invalid("tag file trailer", "bad magic"));
    }
    check_crc(body, stored, "tag file")?;
    let mut r = Reader::new(body);
    if r.array::<8>("tag file magic")? != *TAGS_MAGIC {
        return Err(DecodeError::invalid("tag file magic", "bad magic"));
    }
    let version = r.u32("tag file version")?;
    if version != TAGS_VERSION {
        return Err(DecodeError::invalid(
            "tag file version",
            format!("version {version} is not known"),
        ));
    }
    let seg = r.u32("tag file segment")?;
    if seg != segment {
        return Err(DecodeError::invalid(
            "tag file segment",
            format!("names segment {seg}, expected {segment}"),
        ));
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    fn entries(segment: u32) -> Vec<TagEntry> {
        (0..50u64)
            .map(|i| TagEntry {
                position: position_of(segment, 64 + i * 100).0,
                placed: Placed {
                    stream: StreamId::new(format!("course-{}", i % 7)).unwrap(),
                    version: i / 7,
                    recorded_at: 1_000 + i as i64,
                },
                event_type: if i % 2 == 0 { "Opened" } else { "Subscribed" }.into(),
                tags: (0..(i % 3))
                    .map(|k| Tag::new(format!("t:{k}")).unwrap())
                    .collect(),
            })
            .collect()
    }

    #[test]
    fn round_trips() {
        let e = entries(3);
        let b = encode_tag_file(3, &e);
        assert_eq!(decode_tag_file(3, &b).unwrap(), e);
        assert_eq!(
            decode_tag_file(3, &encode_tag_file(3, &[])).unwrap(),
            vec![]
        );
    }

    #[test]
    fn the_walk_hands_over_every_event_with_one_number_per_type() {
        let e = entries(3);
        let b = encode_tag_file(3, &e);
        let mut seen = Vec::new();
        let mut numbers: HashMap<String, u32> = HashMap::new();
        let count = walk_tag_file(3, &b, |ev| {
            let n = *numbers
                .entry(ev.event_type.to_owned())
                .or_insert(ev.type_number);
            assert_eq!(n, ev.type_number, "{}", ev.event_type);
            seen.push((ev.position, ev.stream.clone(), ev.tags.to_vec()));
        })
        .unwrap();
        assert_eq!(count, e.len());
        assert_eq!(numbers.len(), 2);
        let expected: Vec<_> = e
            .iter()
            .map(|x| (x.position, x.placed.stream.clone(), x.tags.clone()))
            .collect();
        assert_eq!(seen, expected);
    }

    #[test]
    fn refuses_damage_and_the_wrong_segment() {
        let b = encode_tag_file(3, &entries(3));
        assert!(decode_tag_file(4, &b).is_err());
        for at in [
            0,
            10,
            TAGS_HEADER_BYTES + 3,
            b.len() / 2,
            b.len() - 6,
            b.len() - 1,
        ] {
            let mut bad = b.clone();
            bad[at] ^= 0x40;
            assert!(decode_tag_file(3, &bad).is_err(), "flip at {at} accepted");
        }
        for len in [0, 5, TAGS_HEADER_BYTES, b.len() - 1] {
            assert!(
                decode_tag_file(3, &b[..len]).is_err(),
                "cut at {len} accepted"
            );
        }
    }
}
