//! Tag files of sealed segments (`index/NNNNNNNN.tags`), beside their
//! index files: every event of a user stream the segment holds, with what
//! the tag index keeps of it (position, type, tags), so that opening a
//! store loads the tag index instead of reading every event.
//!
//! ```text
//! header (24 bytes)  magic "STRATATG", version u32, segment u32,
//!                    strings u32, events u32
//! strings            each: u16 length and its UTF-8 bytes (event types
//!                    and tags, each once)
//! events             each, positions ascending: its record's offset in
//!                    the segment less the previous event's (the first's
//!                    from 0), type (string number), tag count u8, tags
//!                    (string numbers); every number but the count as
//!                    unsigned LEB128
//! trailer (8 bytes)  crc32c of everything before it u32, magic "SXTG"
//! ```
//!
//! That is version 2, about 4 bytes an untagged event. Version 1 files,
//! still read, held each event's stream, version and time as well, in
//! fixed-width fields (33 bytes an untagged event, and every stream name):
//! `position u64, stream u32, version u64, recorded_at i64, type u32, tag
//! count u8, tags u32 each`.
//!
//! The file is read whole and checked once; a file that fails any check is
//! rebuilt from its segment.

#![deny(clippy::indexing_slicing)]

use std::collections::HashMap;

use strata_core::dcb::{Tag, MAX_TAGS_PER_EVENT};

use crate::decode::{check_crc, DecodeError, Reader};
use crate::format::{position_of, split_position, MAX_SEGMENT_BYTES_LIMIT};

const TAGS_MAGIC: &[u8; 8] = b"STRATATG";
const TAGS_TRAILER_MAGIC: &[u8; 4] = b"SXTG";
/// The version written.
const TAGS_VERSION: u32 = 2;
/// The first version, with streams, versions and times; still read.
const TAGS_VERSION_1: u32 = 1;
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

/// Appends `v` as unsigned LEB128.
fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Encodes the tag file of segment `segment` holding `entries` (positions
/// ascending, all inside the segment).
pub fn encode_tag_file(segment: u32, entries: &[TagEntry]) -> Vec<u8> {
    let mut strings = Strings::default();
    let mut events = Vec::with_capacity(entries.len() * 4);
    let mut previous = 0u64;
    for e in entries {
        let (_, offset) = split_position(strata_core::Position(e.position));
        put_uvarint(&mut events, offset.wrapping_sub(previous));
        previous = offset;
        put_uvarint(&mut events, u64::from(strings.number(&e.event_type)));
        events.push(e.tags.len() as u8);
        for t in &e.tags {
            put_uvarint(&mut events, u64::from(strings.number(t.as_str())));
        }
    }
    framed(TAGS_VERSION, segment, &strings, entries.len(), &events)
}

/// A whole tag file: header, `strings`, the `count` events already encoded
/// in `events`, trailer.
fn framed(
    version: u32,
    segment: u32,
    strings: &Strings<'_>,
    count: usize,
    events: &[u8],
) -> Vec<u8> {
    let mut b = Vec::with_capacity(
        TAGS_HEADER_BYTES + strings.bytes.len() + events.len() + TAGS_TRAILER_BYTES,
    );
    b.extend_from_slice(TAGS_MAGIC);
    b.extend_from_slice(&version.to_le_bytes());
    b.extend_from_slice(&segment.to_le_bytes());
    b.extend_from_slice(&strings.count.to_le_bytes());
    b.extend_from_slice(&(count as u32).to_le_bytes());
    b.extend_from_slice(&strings.bytes);
    b.extend_from_slice(events);
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
            event_type: e.event_type.to_owned(),
            tags: e.tags.to_vec(),
        })
    })?;
    Ok(out)
}

/// Checks the tag file of segment `segment` as [`decode_tag_file`] does,
/// handing each event to `each` in position order without allocating
/// anything per event (each distinct tag is built once). The checksum is
/// checked before the first event is handed over; a later check that fails
/// stops the walk with the events before it handed over. Returns how many
/// events there were.
pub fn walk_tag_file(
    segment: u32,
    b: &[u8],
    mut each: impl FnMut(TagEvent<'_>),
) -> Result<usize, DecodeError> {
    let (version, body) = checked_body(segment, b)?;
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
        tags: vec![None; string_count],
    };
    let first = position_of(segment, 0).0;
    let end = position_of(segment.saturating_add(1), 0).0;
    let mut last: Option<u64> = None;
    let mut set: Vec<Tag> = Vec::with_capacity(MAX_TAGS_PER_EVENT);
    for _ in 0..event_count {
        let position = if version == TAGS_VERSION_1 {
            let position = r.u64("tag file position")?;
            // Stream, version and time: no longer kept.
            table.string(r.u32("tag file stream")?)?;
            r.skip(16, "tag file version and time")?;
            position
        } else {
            let delta = r.uvarint("tag file offset")?;
            let offset = last.map_or(0, |l| l - first).checked_add(delta);
            offset.map_or(u64::MAX, |o| first.saturating_add(o))
        };
        if position < first || position >= end || last.is_some_and(|l| l >= position) {
            return Err(DecodeError::invalid(
                "tag file position",
                format!("{position} out of order or outside the segment"),
            ));
        }
        last = Some(position);
        let type_number = if version == TAGS_VERSION_1 {
            r.u32("tag file type")?
        } else {
            string_number(&mut r, "tag file type")?
        };
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
            let n = if version == TAGS_VERSION_1 {
                r.u32("tag file tag")?
            } else {
                string_number(&mut r, "tag file tag")?
            };
            let tag = table.tag(n)?;
            if set.last().is_some_and(|l| l >= tag) {
                return Err(DecodeError::invalid(
                    "tag file tag",
                    "tags out of order or repeated",
                ));
            }
            set.push(tag.clone());
        }
        each(TagEvent {
            position,
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

/// A string number of a version-2 file (LEB128, at most a u32).
fn string_number(r: &mut Reader<'_>, what: &'static str) -> Result<u32, DecodeError> {
    let n = r.uvarint(what)?;
    u32::try_from(n).map_err(|_| DecodeError::invalid(what, format!("{n} out of range")))
}

/// A tag file's strings, and the tags built from them so far.
struct StringTable<'a> {
    strings: Vec<&'a str>,
    tags: Vec<Option<Tag>>,
}

impl<'a> StringTable<'a> {
    fn string(&self, n: u32) -> Result<&'a str, DecodeError> {
        self.strings.get(n as usize).copied().ok_or_else(|| {
            DecodeError::invalid("tag file string number", format!("{n} out of range"))
        })
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

/// The version and body of a tag file (all but its trailer) once its size,
/// trailer, checksum, magic, version and segment are checked.
fn checked_body(segment: u32, b: &[u8]) -> Result<(u32, &[u8]), DecodeError> {
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
    if version != TAGS_VERSION && version != TAGS_VERSION_1 {
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
    Ok((version, body))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    fn entries(segment: u32) -> Vec<TagEntry> {
        (0..50u64)
            .map(|i| TagEntry {
                position: position_of(segment, 64 + i * 100).0,
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
            seen.push((ev.position, ev.tags.to_vec()));
        })
        .unwrap();
        assert_eq!(count, e.len());
        assert_eq!(numbers.len(), 2);
        let expected: Vec<_> = e.iter().map(|x| (x.position, x.tags.clone())).collect();
        assert_eq!(seen, expected);
    }

    /// A version-1 file of `entries`, as stores written before version 2
    /// hold: each event with a stream, version and time.
    fn encode_v1(segment: u32, entries: &[TagEntry]) -> Vec<u8> {
        let mut strings = Strings::default();
        let mut events = Vec::new();
        for (i, e) in entries.iter().enumerate() {
            events.extend_from_slice(&e.position.to_le_bytes());
            let stream = strings.number(["course-1", "course-2"][i % 2]);
            events.extend_from_slice(&stream.to_le_bytes());
            events.extend_from_slice(&(i as u64 + 1).to_le_bytes());
            events.extend_from_slice(&(1_000 + i as i64).to_le_bytes());
            events.extend_from_slice(&strings.number(&e.event_type).to_le_bytes());
            events.push(e.tags.len() as u8);
            for t in &e.tags {
                events.extend_from_slice(&strings.number(t.as_str()).to_le_bytes());
            }
        }
        framed(TAGS_VERSION_1, segment, &strings, entries.len(), &events)
    }

    #[test]
    fn version_1_files_still_read() {
        let e = entries(5);
        let v1 = encode_v1(5, &e);
        assert_eq!(decode_tag_file(5, &v1).unwrap(), e);
        let v2 = encode_tag_file(5, &e);
        assert!(v2.len() * 4 < v1.len(), "{} vs {}", v2.len(), v1.len());
    }

    #[test]
    fn an_untagged_event_takes_a_few_bytes() {
        let untagged: Vec<TagEntry> = (0..1_000u64)
            .map(|i| TagEntry {
                position: position_of(9, 64 + i * 300).0,
                event_type: "Deposited".into(),
                tags: Vec::new(),
            })
            .collect();
        let b = encode_tag_file(9, &untagged);
        // The type's string: its length and 9 bytes.
        let events = b.len() - TAGS_HEADER_BYTES - TAGS_TRAILER_BYTES - 11;
        assert_eq!(
            events,
            3 + 999 * 4,
            "the first 3 bytes, then offset delta 2, type 1, tag count 1 each"
        );
        assert_eq!(decode_tag_file(9, &b).unwrap(), untagged);
    }

    #[test]
    fn numbers_round_trip_and_overlong_ones_are_refused() {
        for v in [
            0u64,
            1,
            127,
            128,
            300,
            u32::MAX as u64,
            u64::MAX - 1,
            u64::MAX,
        ] {
            let mut b = Vec::new();
            put_uvarint(&mut b, v);
            let mut r = Reader::new(&b);
            assert_eq!(r.uvarint("n").unwrap(), v);
            assert!(r.is_empty());
        }
        let eleven = [0x80u8; 10].iter().copied().chain([1]).collect::<Vec<_>>();
        assert!(Reader::new(&eleven).uvarint("n").is_err());
        let too_big = [0xffu8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert!(Reader::new(&too_big).uvarint("n").is_err());
        assert!(Reader::new(&[0x80u8]).uvarint("n").is_err(), "cut short");
    }

    #[test]
    fn an_event_at_the_offset_of_the_one_before_is_refused() {
        let mut e = entries(3);
        e[1].position = e[0].position;
        let b = encode_tag_file(3, &e);
        assert!(decode_tag_file(3, &b).is_err());
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
