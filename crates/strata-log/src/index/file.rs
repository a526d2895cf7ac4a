//! Index files of sealed segments (`index/NNNNNNNN.idx`): encoding a frozen
//! index, and reading one on demand with every chunk checked.
//!
//! ```text
//! header (64 bytes)  magic "STRATAIX", version u32, segment u32,
//!                    5 × entry count u64, chunk entries u32,
//!                    id filter blocks u32 (version 2; zero in version 1)
//! sections           ids (id u128, position u64), then type, category and
//!                    correlation postings (key u64, position u64), then
//!                    frames (offset u64); each sorted
//! id filter          version 2: blocks × 32 bytes (see `filter`)
//! fences             per chunk of INDEX_CHUNK_ENTRIES entries of each
//!                    section: first key u128, crc32c of the chunk u32,
//!                    4 zero bytes; version 2 adds one for the id filter
//!                    (key zero, crc32c of the filter)
//! trailer (16 bytes) offset of the fences u64, crc32c of header and
//!                    fences u32, magic "SXIE"
//! ```
//!
//! Version-1 files (no id filter) still open; their id lookups read a chunk.

#![deny(clippy::indexing_slicing)]

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use super::filter::{id_hash, IdFilter, BLOCK_BYTES};
use crate::decode::{check_crc, DecodeError, Reader};
use crate::io::StorageFile;

/// Which posting list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Postings {
    /// By event type.
    Type = 0,
    /// By stream category.
    Category = 1,
    /// By correlation id.
    Correlation = 2,
}

/// A segment's index as sorted arrays: what a sealed index file holds.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Frozen {
    /// (id, position), sorted by id.
    pub ids: Vec<(u128, u64)>,
    /// (key hash, position), sorted, per posting kind.
    pub postings: [Vec<(u64, u64)>; 3],
    /// Offsets of every frame, ascending.
    pub frames: Vec<u64>,
}

const IDX_MAGIC: &[u8; 8] = b"STRATAIX";
const IDX_TRAILER_MAGIC: &[u8; 4] = b"SXIE";
/// The version written: with an id filter.
const IDX_VERSION: u32 = 2;
/// The first version, without an id filter; still read.
const IDX_VERSION_NO_FILTER: u32 = 1;
const IDX_HEADER_BYTES: usize = 64;
const IDX_TRAILER_BYTES: usize = 16;
const FENCE_BYTES: usize = 24;
/// Entries per checksummed chunk of a sealed index section; one chunk is
/// what a lookup reads.
pub const INDEX_CHUNK_ENTRIES: usize = 128;

/// Sections of an index file, in file order.
const SECTIONS: usize = 5;
const SECTION_IDS: usize = 0;
const SECTION_FRAMES: usize = 4;

/// Bytes of one entry of `section`.
fn entry_bytes(section: usize) -> usize {
    match section {
        SECTION_IDS => 24,
        SECTION_FRAMES => 8,
        _ => 16,
    }
}

fn section_of(kind: Postings) -> usize {
    kind as usize + 1
}

/// An entry of `section` as (key, value): ids are keyed by id, postings by
/// (hash, position), frames by offset.
fn entry(section: usize, e: &[u8]) -> Result<(u128, u64), DecodeError> {
    let mut r = Reader::new(e);
    match section {
        SECTION_IDS => {
            let id = u128::from_le_bytes(r.array("index id")?);
            Ok((id, r.u64("index position")?))
        }
        SECTION_FRAMES => {
            let f = r.u64("index frame offset")?;
            Ok((u128::from(f), f))
        }
        _ => {
            let h = r.u64("index key")?;
            let p = r.u64("index position")?;
            Ok(((u128::from(h) << 64) | u128::from(p), p))
        }
    }
}

impl Frozen {
    fn section_bytes(&self, section: usize) -> Vec<u8> {
        let mut b = Vec::new();
        match section {
            SECTION_IDS => {
                for (id, pos) in &self.ids {
                    b.extend_from_slice(&id.to_le_bytes());
                    b.extend_from_slice(&pos.to_le_bytes());
                }
            }
            SECTION_FRAMES => {
                for f in &self.frames {
                    b.extend_from_slice(&f.to_le_bytes());
                }
            }
            k => {
                for (h, pos) in self.postings.get(k - 1).into_iter().flatten() {
                    b.extend_from_slice(&h.to_le_bytes());
                    b.extend_from_slice(&pos.to_le_bytes());
                }
            }
        }
        b
    }

    /// Encodes the index file: header, the five sorted sections, the id
    /// filter, a table of fences (first key and checksum of every chunk, and
    /// the filter's checksum), and a trailer.
    pub fn encode(&self, segment: u32) -> Vec<u8> {
        self.encode_as(segment, IDX_VERSION)
    }

    /// Encodes as `version`: 2, or 1 (no id filter; only tests write it).
    fn encode_as(&self, segment: u32, version: u32) -> Vec<u8> {
        let sections: Vec<Vec<u8>> = (0..SECTIONS).map(|k| self.section_bytes(k)).collect();
        let filter = (version >= IDX_VERSION)
            .then(|| IdFilter::build(self.ids.iter().map(|(id, _)| *id)).to_bytes());
        let blocks = filter.as_ref().map_or(0, |f| f.len() / BLOCK_BYTES);
        let mut header = Vec::with_capacity(IDX_HEADER_BYTES);
        header.extend_from_slice(IDX_MAGIC);
        header.extend_from_slice(&version.to_le_bytes());
        header.extend_from_slice(&segment.to_le_bytes());
        for (k, sec) in sections.iter().enumerate() {
            header.extend_from_slice(&((sec.len() / entry_bytes(k)) as u64).to_le_bytes());
        }
        header.extend_from_slice(&(INDEX_CHUNK_ENTRIES as u32).to_le_bytes());
        header.extend_from_slice(&(blocks as u32).to_le_bytes());
        let mut b = Vec::with_capacity(
            IDX_HEADER_BYTES + sections.iter().map(Vec::len).sum::<usize>() + 4096,
        );
        b.extend_from_slice(&header);
        for sec in &sections {
            b.extend_from_slice(sec);
        }
        b.extend_from_slice(filter.as_deref().unwrap_or_default());
        let fence_at = b.len() as u64;
        let mut checked = header;
        let fence = |first_key: u128, bytes: &[u8]| {
            let mut f = Vec::with_capacity(FENCE_BYTES);
            f.extend_from_slice(&first_key.to_le_bytes());
            f.extend_from_slice(&crc32c::crc32c(bytes).to_le_bytes());
            f.resize(FENCE_BYTES, 0);
            f
        };
        for (k, sec) in sections.iter().enumerate() {
            for chunk in sec.chunks(INDEX_CHUNK_ENTRIES * entry_bytes(k)) {
                checked.extend_from_slice(&fence(entry(k, chunk).map_or(0, |(key, _)| key), chunk));
            }
        }
        if let Some(f) = &filter {
            checked.extend_from_slice(&fence(0, f));
        }
        b.extend_from_slice(checked.get(IDX_HEADER_BYTES..).unwrap_or_default());
        b.extend_from_slice(&fence_at.to_le_bytes());
        b.extend_from_slice(&crc32c::crc32c(&checked).to_le_bytes());
        b.extend_from_slice(IDX_TRAILER_MAGIC);
        b
    }
}

struct Section {
    offset: u64,
    count: u64,
    fences: Vec<u128>,
    crcs: Vec<u32>,
}

/// Why an index file could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum IndexFileError {
    /// Reading the file failed.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// Its header, fences or trailer are not what the format allows.
    #[error("{0}")]
    Decode(#[from] DecodeError),
}

/// Where a version-2 file keeps its id filter.
#[derive(Clone, Copy, Debug)]
struct FilterSection {
    offset: u64,
    blocks: u64,
    crc: u32,
}

/// The index of a sealed segment, read from its file on demand. Only the
/// fences (one key per [`INDEX_CHUNK_ENTRIES`] entries) and, once an id is
/// looked up, the id filter (2 bytes per event) stay in memory; a lookup
/// reads and checks one chunk, an id lookup only if the filter lets it.
pub struct SealedIndex {
    file: Arc<dyn StorageFile>,
    sections: Vec<Section>,
    /// Version 2: where the id filter is.
    filter_at: Option<FilterSection>,
    /// The id filter, loaded by the first id lookup. Set at most once and
    /// read without a lock; two first lookups at once may both read it.
    filter: OnceLock<IdFilter>,
    /// Chunks read so far (a statistic).
    chunk_reads: AtomicU64,
}

impl std::fmt::Debug for SealedIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedIndex")
            .field(
                "entries",
                &self.sections.iter().map(|s| s.count).collect::<Vec<_>>(),
            )
            .finish()
    }
}

fn bad(what: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.into())
}

/// What the header and trailer of an index file say.
struct Layout {
    counts: [u64; SECTIONS],
    /// Version 2: the id filter's offset and block count.
    filter: Option<(u64, u64)>,
    fence_at: u64,
    n_fences: usize,
    crc: u32,
}

/// What the header of an index file says.
struct Header {
    counts: [u64; SECTIONS],
    /// Version 2: the id filter's block count.
    filter_blocks: Option<u64>,
}

/// Decodes and checks the header of an index file for `segment`.
fn decode_header(header: &[u8], segment: u32) -> Result<Header, DecodeError> {
    let mut h = Reader::new(header);
    if h.array::<8>("index magic")? != *IDX_MAGIC {
        return Err(DecodeError::invalid("index magic", "bad index magic"));
    }
    let version = h.u32("index version")?;
    if version != IDX_VERSION && version != IDX_VERSION_NO_FILTER {
        return Err(DecodeError::invalid(
            "index version",
            format!("index version {version}, expected {IDX_VERSION_NO_FILTER} or {IDX_VERSION}"),
        ));
    }
    let named = h.u32("index segment")?;
    if named != segment {
        return Err(DecodeError::invalid(
            "index segment",
            format!("index names segment {named}, expected {segment}"),
        ));
    }
    let mut counts = [0u64; SECTIONS];
    for c in counts.iter_mut() {
        *c = h.u64("index entry count")?;
    }
    if h.u32("index chunk size")? as usize != INDEX_CHUNK_ENTRIES {
        return Err(DecodeError::invalid(
            "index chunk size",
            "index chunk size differs from this build's",
        ));
    }
    let blocks = u64::from(h.u32("index id filter blocks")?);
    let filter_blocks = (version == IDX_VERSION).then_some(blocks);
    if filter_blocks.is_none() && blocks != 0 {
        return Err(DecodeError::invalid(
            "index reserved",
            "version-1 index has a nonzero reserved field",
        ));
    }
    if filter_blocks == Some(0) && counts[SECTION_IDS] > 0 {
        return Err(DecodeError::invalid(
            "index id filter blocks",
            "index has ids but an empty id filter",
        ));
    }
    Ok(Header {
        counts,
        filter_blocks,
    })
}

/// Decodes and checks the header and trailer of an index file of `len` bytes.
fn decode_layout(
    header: &[u8],
    trailer: &[u8],
    segment: u32,
    len: u64,
) -> Result<Layout, DecodeError> {
    let mut t = Reader::new(trailer);
    let fence_at = t.u64("index fence offset")?;
    let crc = t.u32("index checksum")?;
    if t.array::<4>("index trailer magic")? != *IDX_TRAILER_MAGIC {
        return Err(DecodeError::invalid("index magic", "bad index magic"));
    }
    let Header {
        counts,
        filter_blocks,
    } = decode_header(header, segment)?;
    let overflow = || DecodeError::invalid("index entry count", "index counts overflow");
    let mut offset = IDX_HEADER_BYTES as u64;
    let mut n_fences = 0u64;
    for (k, c) in counts.iter().enumerate() {
        offset = c
            .checked_mul(entry_bytes(k) as u64)
            .and_then(|x| x.checked_add(offset))
            .ok_or_else(overflow)?;
        n_fences += c.div_ceil(INDEX_CHUNK_ENTRIES as u64);
    }
    let filter = filter_blocks.map(|blocks| (offset, blocks));
    if let Some(blocks) = filter_blocks {
        offset = blocks
            .checked_mul(BLOCK_BYTES as u64)
            .and_then(|x| x.checked_add(offset))
            .ok_or_else(overflow)?;
        n_fences += 1;
    }
    let expected_len = n_fences
        .checked_mul(FENCE_BYTES as u64)
        .and_then(|x| x.checked_add(fence_at))
        .and_then(|x| x.checked_add(IDX_TRAILER_BYTES as u64));
    if offset != fence_at || expected_len != Some(len) {
        return Err(DecodeError::invalid(
            "index layout",
            "index section sizes do not match the file",
        ));
    }
    Ok(Layout {
        counts,
        filter,
        fence_at,
        // Bounded by the file's length, checked just above.
        n_fences: n_fences as usize,
        crc,
    })
}

/// The sections of an index file, and where its id filter is, from its
/// checked layout and fence table.
fn decode_sections(
    layout: &Layout,
    fences: &[u8],
) -> Result<(Vec<Section>, Option<FilterSection>), DecodeError> {
    let mut sections = Vec::with_capacity(SECTIONS);
    let mut at = IDX_HEADER_BYTES as u64;
    let mut f = Reader::new(fences);
    for (k, &count) in layout.counts.iter().enumerate() {
        let chunks = count.div_ceil(INDEX_CHUNK_ENTRIES as u64) as usize;
        let mut keys = Vec::with_capacity(chunks);
        let mut crcs = Vec::with_capacity(chunks);
        for _ in 0..chunks {
            keys.push(u128::from_le_bytes(f.array("index fence key")?));
            crcs.push(f.u32("index fence checksum")?);
            f.skip(4, "index fence padding")?;
        }
        sections.push(Section {
            offset: at,
            count,
            fences: keys,
            crcs,
        });
        at += count * entry_bytes(k) as u64;
    }
    let filter = match layout.filter {
        Some((offset, blocks)) => {
            if f.array::<16>("index filter fence key")? != [0u8; 16] {
                return Err(DecodeError::invalid(
                    "index filter fence",
                    "the id filter's fence key is not zero",
                ));
            }
            let crc = f.u32("index filter checksum")?;
            f.skip(4, "index fence padding")?;
            Some(FilterSection {
                offset,
                blocks,
                crc,
            })
        }
        None => None,
    };
    Ok((sections, filter))
}

impl SealedIndex {
    /// Opens an index file for `segment`, checking its header and fences.
    pub fn open(file: Arc<dyn StorageFile>, segment: u32) -> Result<Self, IndexFileError> {
        let len = file.len()?;
        if len < (IDX_HEADER_BYTES + IDX_TRAILER_BYTES) as u64 {
            return Err(DecodeError::Truncated {
                what: "index file",
                need: IDX_HEADER_BYTES + IDX_TRAILER_BYTES,
                have: len as usize,
            }
            .into());
        }
        let mut header = [0u8; IDX_HEADER_BYTES];
        file.read_exact_at(&mut header, 0)?;
        let mut trailer = [0u8; IDX_TRAILER_BYTES];
        file.read_exact_at(&mut trailer, len - IDX_TRAILER_BYTES as u64)?;
        let layout = decode_layout(&header, &trailer, segment, len)?;
        let mut fences = vec![0u8; layout.n_fences * FENCE_BYTES];
        file.read_exact_at(&mut fences, layout.fence_at)?;
        let mut checked = header.to_vec();
        checked.extend_from_slice(&fences);
        check_crc(&checked, layout.crc, "index header and fence table")?;
        let (sections, filter_at) = decode_sections(&layout, &fences)?;
        Ok(SealedIndex {
            file,
            sections,
            filter_at,
            filter: OnceLock::new(),
            chunk_reads: AtomicU64::new(0),
        })
    }

    /// Whether the file has an id filter (format version 2).
    pub fn has_id_filter(&self) -> bool {
        self.filter_at.is_some()
    }

    /// Whether the id filter is in memory.
    pub fn id_filter_loaded(&self) -> bool {
        self.filter.get().is_some()
    }

    /// Index chunks read and checked since this index was opened.
    pub fn chunk_reads(&self) -> u64 {
        self.chunk_reads.load(Ordering::Relaxed)
    }

    /// The id filter, read and checked on first use; `None` for a
    /// version-1 file.
    pub fn id_filter(&self) -> io::Result<Option<&IdFilter>> {
        let Some(at) = self.filter_at else {
            return Ok(None);
        };
        if let Some(f) = self.filter.get() {
            return Ok(Some(f));
        }
        let len = usize::try_from(at.blocks * BLOCK_BYTES as u64)
            .map_err(|_| bad("index id filter too large"))?;
        let mut buf = vec![0u8; len];
        self.file.read_exact_at(&mut buf, at.offset)?;
        if crc32c::crc32c(&buf) != at.crc {
            return Err(bad(format!(
                "index id filter (offset {}) fails its checksum",
                at.offset
            )));
        }
        let filter = IdFilter::from_bytes(&buf).map_err(|e| bad(e.to_string()))?;
        // Another first lookup may have set it meanwhile: both are the same.
        let _ = self.filter.set(filter);
        Ok(self.filter.get())
    }

    fn section(&self, section: usize) -> io::Result<&Section> {
        self.sections
            .get(section)
            .ok_or_else(|| bad(format!("no index section {section}")))
    }

    /// Number of entries in each section (ids, types, categories, correlations, frames).
    pub fn counts(&self) -> [u64; 5] {
        [0, 1, 2, 3, 4].map(|k| self.sections.get(k).map_or(0, |s| s.count))
    }

    fn chunk(&self, section: usize, i: usize) -> io::Result<Vec<u8>> {
        let s = self.section(section)?;
        let eb = entry_bytes(section) as u64;
        let first = i as u64 * INDEX_CHUNK_ENTRIES as u64;
        let n = s
            .count
            .saturating_sub(first)
            .min(INDEX_CHUNK_ENTRIES as u64);
        let crc = s
            .crcs
            .get(i)
            .ok_or_else(|| bad(format!("index chunk {i} of section {section} out of range")))?;
        let mut buf = vec![0u8; (n * eb) as usize];
        self.chunk_reads.fetch_add(1, Ordering::Relaxed);
        self.file.read_exact_at(&mut buf, s.offset + first * eb)?;
        if crc32c::crc32c(&buf) != *crc {
            return Err(bad(format!(
                "index chunk {i} of section {section} (offset {}) fails its checksum",
                s.offset + first * eb
            )));
        }
        Ok(buf)
    }

    /// The chunk that would hold `key`.
    fn seek(&self, section: usize, key: u128) -> io::Result<Option<usize>> {
        let s = self.section(section)?;
        if s.fences.is_empty() {
            return Ok(None);
        }
        Ok(Some(
            s.fences.partition_point(|f| *f <= key).saturating_sub(1),
        ))
    }

    /// Position of an event id. With an id filter, an id the filter rules
    /// out costs no read.
    pub fn lookup_id(&self, id: u128) -> io::Result<Option<u64>> {
        self.lookup_id_hashed(id, id_hash(id))
    }

    /// [`lookup_id`](Self::lookup_id) for an id whose
    /// [`id_hash`](super::filter::id_hash) is `hash` (an id checked against
    /// many segments is hashed once).
    pub fn lookup_id_hashed(&self, id: u128, hash: u64) -> io::Result<Option<u64>> {
        if let Some(f) = self.id_filter()? {
            if !f.may_contain_hash(hash) {
                return Ok(None);
            }
        }
        let Some(i) = self.seek(SECTION_IDS, id)? else {
            return Ok(None);
        };
        let c = self.chunk(SECTION_IDS, i)?;
        let entries: Vec<&[u8]> = c.chunks_exact(entry_bytes(SECTION_IDS)).collect();
        let found = entries.binary_search_by(|e| match entry(SECTION_IDS, e) {
            Ok((k, _)) => k.cmp(&id),
            Err(_) => std::cmp::Ordering::Greater,
        });
        match found.ok().and_then(|at| entries.get(at)) {
            Some(e) => Ok(Some(
                entry(SECTION_IDS, e).map_err(|e| bad(e.to_string()))?.1,
            )),
            None => Ok(None),
        }
    }

    /// Positions `>= from` under `key` in posting list `kind`, ascending.
    pub fn postings_from(&self, kind: Postings, key: u64, from: u64) -> io::Result<Vec<u64>> {
        let section = section_of(kind);
        let lo = ((key as u128) << 64) | from as u128;
        let hi = ((key as u128) << 64) | u64::MAX as u128;
        let mut out = Vec::new();
        let Some(mut i) = self.seek(section, lo)? else {
            return Ok(out);
        };
        let fences = &self.section(section)?.fences;
        while let Some(&fence) = fences.get(i) {
            if fence > hi {
                break;
            }
            let c = self.chunk(section, i)?;
            for e in c.chunks_exact(entry_bytes(section)) {
                let (k, v) = entry(section, e).map_err(|e| bad(e.to_string()))?;
                if k > hi {
                    return Ok(out);
                }
                if k >= lo {
                    out.push(v);
                }
            }
            i += 1;
        }
        Ok(out)
    }

    /// The offset of the last frame that starts at or before `offset`.
    pub fn frame_at_or_before(&self, offset: u64) -> io::Result<Option<u64>> {
        let Some(i) = self.seek(SECTION_FRAMES, offset as u128)? else {
            return Ok(None);
        };
        let c = self.chunk(SECTION_FRAMES, i)?;
        let mut last = None;
        for e in c.chunks_exact(entry_bytes(SECTION_FRAMES)) {
            let (_, f) = entry(SECTION_FRAMES, e).map_err(|e| bad(e.to_string()))?;
            if f > offset {
                break;
            }
            last = Some(f);
        }
        Ok(last)
    }

    /// Every entry of a section as (key, value), reading and checking every
    /// chunk (for `verify`). Sections: 0 ids, 1 types, 2 categories,
    /// 3 correlations, 4 frames.
    pub fn entries(&self, section: usize) -> io::Result<Vec<(u128, u64)>> {
        let s = self.section(section)?;
        let mut out = Vec::with_capacity(s.count as usize);
        for i in 0..s.fences.len() {
            let c = self.chunk(section, i)?;
            for e in c.chunks_exact(entry_bytes(section)) {
                out.push(entry(section, e).map_err(|e| bad(e.to_string()))?);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::{active_postings_from, ActiveIndex, IndexEntry};
    use crate::io::{FsStorage, Storage};

    #[test]
    fn sealed_roundtrip_and_lookup() {
        let mut a = ActiveIndex::default();
        for i in 0..1000u64 {
            a.add(&IndexEntry {
                id: (i as u128) * 7919,
                position: 100 + i * 10,
                type_hash: i % 3,
                category_hash: 9,
                correlation_hash: if i % 2 == 0 { Some(5) } else { None },
                store_made: true,
            });
            a.add_frame(100 + i * 10);
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.idx");
        let enc = a.freeze().encode(4);
        let f = FsStorage.open(&path, true).unwrap();
        f.write_all_at(&enc, 0).unwrap();
        let d = SealedIndex::open(f.clone(), 4).unwrap();
        assert!(SealedIndex::open(f.clone(), 5).is_err());
        assert_eq!(d.counts(), [1000, 1000, 1000, 500, 1000]);
        assert_eq!(d.lookup_id(7919 * 420).unwrap(), Some(100 + 4200));
        assert_eq!(d.lookup_id(7919 * 999).unwrap(), Some(100 + 9990));
        assert_eq!(d.lookup_id(0).unwrap(), Some(100));
        assert_eq!(d.lookup_id(1).unwrap(), None);
        assert_eq!(d.lookup_id(u128::MAX).unwrap(), None);
        let p = d.postings_from(Postings::Type, 1, 5000).unwrap();
        let want: Vec<u64> = (0..1000u64)
            .filter(|i| i % 3 == 1)
            .map(|i| 100 + i * 10)
            .filter(|p| *p >= 5000)
            .collect();
        assert_eq!(p, want);
        assert_eq!(
            d.postings_from(Postings::Correlation, 5, 0).unwrap().len(),
            500
        );
        assert!(d
            .postings_from(Postings::Correlation, 6, 0)
            .unwrap()
            .is_empty());
        assert_eq!(d.frame_at_or_before(105).unwrap(), Some(100));
        assert_eq!(d.frame_at_or_before(99).unwrap(), None);
        assert_eq!(d.frame_at_or_before(5000).unwrap(), Some(5000));
        assert_eq!(d.entries(0).unwrap().len(), 1000);
        assert_eq!(active_postings_from(&a, Postings::Type, 2, 0).len(), 333);
        // A flipped bit in a chunk is an error on the lookup that reads it.
        let mut bad = enc.clone();
        if let Some(b) = bad.get_mut(IDX_HEADER_BYTES + 5) {
            *b ^= 1;
        }
        f.write_all_at(&bad, 0).unwrap();
        let d = SealedIndex::open(f.clone(), 4).unwrap();
        assert!(d.lookup_id(0).is_err());
        // A flipped bit in the fence table fails the open.
        let mut bad = enc.clone();
        let n = bad.len();
        if let Some(b) = bad.get_mut(n - IDX_TRAILER_BYTES - 3) {
            *b ^= 1;
        }
        f.write_all_at(&bad, 0).unwrap();
        assert!(SealedIndex::open(f, 4).is_err());
    }

    fn frozen_ids(n: u64) -> Frozen {
        let mut a = ActiveIndex::default();
        for i in 0..n {
            a.add(&IndexEntry {
                id: u128::from(i) * 0x1_0000_0001_0000_0001,
                position: i * 8,
                type_hash: 1,
                category_hash: 2,
                correlation_hash: None,
                store_made: true,
            });
            a.add_frame(i * 8);
        }
        a.freeze()
    }

    fn write(enc: &[u8]) -> (tempfile::TempDir, Arc<dyn StorageFile>) {
        let dir = tempfile::tempdir().unwrap();
        let f = FsStorage.open(&dir.path().join("z.idx"), true).unwrap();
        f.write_all_at(enc, 0).unwrap();
        (dir, f)
    }

    #[test]
    fn the_id_filter_is_loaded_on_first_lookup_and_spares_chunk_reads() {
        let frozen = frozen_ids(5000);
        let (_dir, f) = write(&frozen.encode(3));
        let d = SealedIndex::open(f, 3).unwrap();
        assert!(d.has_id_filter());
        assert!(!d.id_filter_loaded(), "loaded lazily");
        assert_eq!(d.lookup_id(5).unwrap(), None);
        assert!(d.id_filter_loaded());
        let before = d.chunk_reads();
        let absent = (0..10_000u128).filter(|i| d.lookup_id(i * 7 + 1).unwrap().is_some());
        assert_eq!(absent.count(), 0);
        let reads = d.chunk_reads() - before;
        assert!(reads < 100, "{reads} chunk reads for 10,000 absent ids");
        for (id, pos) in &frozen.ids {
            assert_eq!(d.lookup_id(*id).unwrap(), Some(*pos));
        }
    }

    #[test]
    fn a_version_1_file_opens_and_its_ids_are_read_from_chunks() {
        let frozen = frozen_ids(1000);
        let enc = frozen.encode_as(3, IDX_VERSION_NO_FILTER);
        assert_eq!(enc.get(8..12), Some(&1u32.to_le_bytes()[..]));
        let (_dir, f) = write(&enc);
        let d = SealedIndex::open(f, 3).unwrap();
        assert!(!d.has_id_filter());
        for (id, pos) in &frozen.ids {
            assert_eq!(d.lookup_id(*id).unwrap(), Some(*pos));
        }
        assert_eq!(d.lookup_id(3).unwrap(), None);
        assert_eq!(d.chunk_reads(), 1001);
        assert!(!d.id_filter_loaded());
        assert_eq!(d.entries(4).unwrap().len(), 1000);
    }

    #[test]
    fn a_damaged_id_filter_fails_the_lookup_that_loads_it() {
        let frozen = frozen_ids(1000);
        let mut enc = frozen.encode(3);
        let at = IDX_HEADER_BYTES + 1000 * (24 + 16 + 16 + 8) + 7;
        if let Some(b) = enc.get_mut(at) {
            *b ^= 4;
        }
        let (_dir, f) = write(&enc);
        let d = SealedIndex::open(f, 3).unwrap();
        let e = d.lookup_id(0).unwrap_err();
        assert!(e.to_string().contains("id filter"), "{e}");
        assert!(!d.id_filter_loaded());
    }

    #[test]
    fn an_index_without_ids_has_an_empty_filter() {
        let mut a = ActiveIndex::default();
        a.add_frame(64);
        let (_dir, f) = write(&a.freeze().encode(9));
        let d = SealedIndex::open(f, 9).unwrap();
        assert!(d.has_id_filter());
        assert_eq!(d.lookup_id(1).unwrap(), None);
        assert_eq!(d.chunk_reads(), 0);
        assert_eq!(d.frame_at_or_before(100).unwrap(), Some(64));
    }

    #[test]
    fn every_truncation_and_flip_of_an_index_file_is_a_typed_error() {
        let mut a = ActiveIndex::default();
        for i in 0..300u64 {
            a.add(&IndexEntry {
                id: u128::from(i),
                position: i * 8,
                type_hash: 1,
                category_hash: 2,
                correlation_hash: None,
                store_made: true,
            });
            a.add_frame(i * 8);
        }
        let enc = a.freeze().encode(1);
        let dir = tempfile::tempdir().unwrap();
        let f = FsStorage.open(&dir.path().join("y.idx"), true).unwrap();
        for n in [0, 1, 15, 16, 63, 64, 79, 80, enc.len() / 2, enc.len() - 1] {
            f.set_len(0).unwrap();
            f.write_all_at(enc.get(..n).unwrap(), 0).unwrap();
            assert!(SealedIndex::open(f.clone(), 1).is_err(), "{n} bytes");
        }
        // A huge entry count is refused before the fences are read.
        let mut huge = enc.clone();
        if let Some(c) = huge.get_mut(16..24) {
            c.copy_from_slice(&u64::MAX.to_le_bytes());
        }
        f.set_len(0).unwrap();
        f.write_all_at(&huge, 0).unwrap();
        assert!(matches!(
            SealedIndex::open(f.clone(), 1),
            Err(IndexFileError::Decode(_))
        ));
        // Every flipped byte of the header, fences and trailer fails the open.
        let fence_at = enc
            .get(enc.len() - IDX_TRAILER_BYTES..enc.len() - 8)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map(u64::from_le_bytes)
            .unwrap() as usize;
        for i in (0..IDX_HEADER_BYTES).chain(fence_at..enc.len()) {
            let mut b = enc.clone();
            if let Some(x) = b.get_mut(i) {
                *x ^= 0x20;
            }
            f.set_len(0).unwrap();
            f.write_all_at(&b, 0).unwrap();
            let opened = SealedIndex::open(f.clone(), 1);
            assert!(opened.is_err(), "flip at {i} went unnoticed");
        }
    }
}
