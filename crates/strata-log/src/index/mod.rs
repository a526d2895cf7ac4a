//! Per-segment indexes: event id → position, and event type, category and
//! correlation id → positions, plus every frame's offset.
//!
//! The active segment's index lives in hash maps ([`ActiveIndex`]). When a
//! segment is sealed its index is frozen into sorted arrays ([`SealedIndex`])
//! and written to `index/NNNNNNNN.idx`, so opening a store never re-reads
//! sealed segments. Keys are 64-bit FNV-1a hashes of the strings; a hash
//! collision only costs an extra read, because every candidate event is read
//! and matched against the real filter.

use std::collections::HashMap;
use std::io;
use std::sync::Arc;

use crate::format::{u32_at, u64_at};
use crate::io::StorageFile;

/// Hash maps of the hot path: foldhash is several times faster than SipHash
/// on these short keys, and still seeded per map.
pub type FastMap<K, V> = HashMap<K, V, foldhash::quality::RandomState>;

/// Stable 64-bit FNV-1a hash of a key (persisted: never change it).
pub fn key_hash(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.as_bytes() {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

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

/// What one event contributes to the indexes.
#[derive(Clone, Copy, Debug)]
pub struct IndexEntry {
    /// Event id as a u128.
    pub id: u128,
    /// Its position.
    pub position: u64,
    /// Hash of its type.
    pub type_hash: u64,
    /// Hash of its stream's category.
    pub category_hash: u64,
    /// Hash of its correlation id, if it has one.
    pub correlation_hash: Option<u64>,
}

/// The index of the segment being written.
#[derive(Default, Debug)]
pub struct ActiveIndex {
    /// Event id → position.
    pub ids: FastMap<u128, u64>,
    /// Posting lists by kind, then key hash; positions ascending.
    pub postings: [FastMap<u64, Vec<u64>>; 3],
    /// Offsets (inside the segment) of every frame, ascending.
    pub frames: Vec<u64>,
    /// Number of events.
    pub events: u64,
}

impl ActiveIndex {
    /// Records one event.
    pub fn add(&mut self, e: &IndexEntry) {
        self.ids.insert(e.id, e.position);
        self.postings[Postings::Type as usize]
            .entry(e.type_hash)
            .or_default()
            .push(e.position);
        self.postings[Postings::Category as usize]
            .entry(e.category_hash)
            .or_default()
            .push(e.position);
        if let Some(c) = e.correlation_hash {
            self.postings[Postings::Correlation as usize]
                .entry(c)
                .or_default()
                .push(e.position);
        }
        self.events += 1;
    }

    /// Records a frame start.
    pub fn add_frame(&mut self, offset: u64) {
        self.frames.push(offset);
    }

    /// Freezes into sorted arrays, ready to be written as an index file.
    pub fn freeze(&self) -> Frozen {
        let mut ids: Vec<(u128, u64)> = self.ids.iter().map(|(k, v)| (*k, *v)).collect();
        ids.sort_unstable();
        let postings = [0, 1, 2].map(|k| {
            let mut v: Vec<(u64, u64)> = self.postings[k]
                .iter()
                .flat_map(|(h, ps)| ps.iter().map(move |p| (*h, *p)))
                .collect();
            v.sort_unstable();
            v
        });
        Frozen {
            ids,
            postings,
            frames: self.frames.clone(),
        }
    }
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
const IDX_VERSION: u32 = 1;
const IDX_HEADER_BYTES: usize = 64;
const IDX_TRAILER_BYTES: usize = 16;
const FENCE_BYTES: usize = 24;
/// Entries per checksummed chunk of a sealed index section; one chunk is
/// what a lookup reads.
pub const INDEX_CHUNK_ENTRIES: usize = 128;

/// Sections of an index file, in file order.
const SECTION_IDS: usize = 0;
const SECTION_FRAMES: usize = 4;
const ENTRY_BYTES: [usize; 5] = [24, 16, 16, 16, 8];

fn section_of(kind: Postings) -> usize {
    kind as usize + 1
}

fn entry_key(section: usize, e: &[u8]) -> u128 {
    match section {
        SECTION_IDS => {
            let mut a = [0u8; 16];
            a.copy_from_slice(&e[..16]);
            u128::from_le_bytes(a)
        }
        SECTION_FRAMES => u64_at(e, 0) as u128,
        _ => ((u64_at(e, 0) as u128) << 64) | u64_at(e, 8) as u128,
    }
}

fn entry_value(section: usize, e: &[u8]) -> u64 {
    match section {
        SECTION_IDS => u64_at(e, 16),
        SECTION_FRAMES => u64_at(e, 0),
        _ => u64_at(e, 8),
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
                for (h, pos) in &self.postings[k - 1] {
                    b.extend_from_slice(&h.to_le_bytes());
                    b.extend_from_slice(&pos.to_le_bytes());
                }
            }
        }
        b
    }

    /// Encodes the index file: header, the five sorted sections, a table of
    /// fences (first key and checksum of every chunk), and a trailer.
    pub fn encode(&self, segment: u32) -> Vec<u8> {
        let sections: Vec<Vec<u8>> = (0..5).map(|k| self.section_bytes(k)).collect();
        let mut b = Vec::with_capacity(
            IDX_HEADER_BYTES + sections.iter().map(Vec::len).sum::<usize>() + 4096,
        );
        b.extend_from_slice(IDX_MAGIC);
        b.extend_from_slice(&IDX_VERSION.to_le_bytes());
        b.extend_from_slice(&segment.to_le_bytes());
        for (k, sec) in sections.iter().enumerate() {
            b.extend_from_slice(&((sec.len() / ENTRY_BYTES[k]) as u64).to_le_bytes());
        }
        b.extend_from_slice(&(INDEX_CHUNK_ENTRIES as u32).to_le_bytes());
        b.resize(IDX_HEADER_BYTES, 0);
        for sec in &sections {
            b.extend_from_slice(sec);
        }
        let fence_at = b.len() as u64;
        let mut checked = b[..IDX_HEADER_BYTES].to_vec();
        for (k, sec) in sections.iter().enumerate() {
            for chunk in sec.chunks(INDEX_CHUNK_ENTRIES * ENTRY_BYTES[k]) {
                let mut f = [0u8; FENCE_BYTES];
                f[..16].copy_from_slice(&entry_key(k, chunk).to_le_bytes());
                f[16..20].copy_from_slice(&crc32c::crc32c(chunk).to_le_bytes());
                b.extend_from_slice(&f);
                checked.extend_from_slice(&f);
            }
        }
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

/// The index of a sealed segment, read from its file on demand. Only the
/// fences (one key per [`INDEX_CHUNK_ENTRIES`] entries) stay in memory; a
/// lookup reads and checks one chunk.
pub struct SealedIndex {
    file: Arc<dyn StorageFile>,
    sections: Vec<Section>,
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

impl SealedIndex {
    /// Opens an index file for `segment`, checking its header and fences.
    pub fn open(file: Arc<dyn StorageFile>, segment: u32) -> Result<Self, String> {
        let len = file.len().map_err(|e| e.to_string())?;
        if len < (IDX_HEADER_BYTES + IDX_TRAILER_BYTES) as u64 {
            return Err("index file too short".into());
        }
        let mut header = [0u8; IDX_HEADER_BYTES];
        file.read_exact_at(&mut header, 0)
            .map_err(|e| e.to_string())?;
        let mut trailer = [0u8; IDX_TRAILER_BYTES];
        file.read_exact_at(&mut trailer, len - IDX_TRAILER_BYTES as u64)
            .map_err(|e| e.to_string())?;
        if &header[0..8] != IDX_MAGIC || &trailer[12..16] != IDX_TRAILER_MAGIC {
            return Err("bad index magic".into());
        }
        if u32_at(&header, 8) != IDX_VERSION {
            return Err(format!(
                "index version {}, expected {IDX_VERSION}",
                u32_at(&header, 8)
            ));
        }
        if u32_at(&header, 12) != segment {
            return Err(format!(
                "index names segment {}, expected {segment}",
                u32_at(&header, 12)
            ));
        }
        if u32_at(&header, 56) as usize != INDEX_CHUNK_ENTRIES {
            return Err("index chunk size differs from this build's".into());
        }
        let counts: Vec<u64> = (0..5).map(|k| u64_at(&header, 16 + 8 * k)).collect();
        let fence_at = u64_at(&trailer, 0);
        let mut offset = IDX_HEADER_BYTES as u64;
        let mut n_fences = 0u64;
        for (k, c) in counts.iter().enumerate() {
            offset = c
                .checked_mul(ENTRY_BYTES[k] as u64)
                .and_then(|x| x.checked_add(offset))
                .ok_or("index counts overflow")?;
            n_fences += c.div_ceil(INDEX_CHUNK_ENTRIES as u64);
        }
        if offset != fence_at
            || fence_at + n_fences * FENCE_BYTES as u64 + IDX_TRAILER_BYTES as u64 != len
        {
            return Err("index section sizes do not match the file".into());
        }
        let mut fences = vec![0u8; (n_fences as usize) * FENCE_BYTES];
        file.read_exact_at(&mut fences, fence_at)
            .map_err(|e| e.to_string())?;
        let mut checked = header.to_vec();
        checked.extend_from_slice(&fences);
        if crc32c::crc32c(&checked) != u32_at(&trailer, 8) {
            return Err("index header or fence table checksum mismatch".into());
        }
        let mut sections = Vec::with_capacity(5);
        let mut at = IDX_HEADER_BYTES as u64;
        let mut f = fences.chunks_exact(FENCE_BYTES);
        for (k, &count) in counts.iter().enumerate() {
            let chunks = count.div_ceil(INDEX_CHUNK_ENTRIES as u64) as usize;
            let mut keys = Vec::with_capacity(chunks);
            let mut crcs = Vec::with_capacity(chunks);
            for _ in 0..chunks {
                let fe = f.next().ok_or("fence table truncated")?;
                let mut a = [0u8; 16];
                a.copy_from_slice(&fe[..16]);
                keys.push(u128::from_le_bytes(a));
                crcs.push(u32_at(fe, 16));
            }
            sections.push(Section {
                offset: at,
                count,
                fences: keys,
                crcs,
            });
            at += count * ENTRY_BYTES[k] as u64;
        }
        Ok(SealedIndex { file, sections })
    }

    /// Number of entries in each section (ids, types, categories, correlations, frames).
    pub fn counts(&self) -> [u64; 5] {
        [0, 1, 2, 3, 4].map(|k| self.sections[k].count)
    }

    fn chunk(&self, section: usize, i: usize) -> io::Result<Vec<u8>> {
        let s = &self.sections[section];
        let eb = ENTRY_BYTES[section] as u64;
        let first = i as u64 * INDEX_CHUNK_ENTRIES as u64;
        let n = (s.count - first).min(INDEX_CHUNK_ENTRIES as u64);
        let mut buf = vec![0u8; (n * eb) as usize];
        self.file.read_exact_at(&mut buf, s.offset + first * eb)?;
        if crc32c::crc32c(&buf) != s.crcs[i] {
            return Err(bad(format!(
                "index chunk {i} of section {section} (offset {}) fails its checksum",
                s.offset + first * eb
            )));
        }
        Ok(buf)
    }

    /// The chunk that would hold `key`.
    fn seek(&self, section: usize, key: u128) -> Option<usize> {
        let s = &self.sections[section];
        if s.fences.is_empty() {
            return None;
        }
        Some(s.fences.partition_point(|f| *f <= key).saturating_sub(1))
    }

    /// Position of an event id.
    pub fn lookup_id(&self, id: u128) -> io::Result<Option<u64>> {
        let Some(i) = self.seek(SECTION_IDS, id) else {
            return Ok(None);
        };
        let c = self.chunk(SECTION_IDS, i)?;
        let eb = ENTRY_BYTES[SECTION_IDS];
        let n = c.len() / eb;
        let (mut lo, mut hi) = (0usize, n);
        while lo < hi {
            let mid = (lo + hi) / 2;
            let k = entry_key(SECTION_IDS, &c[mid * eb..]);
            match k.cmp(&id) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => {
                    return Ok(Some(entry_value(SECTION_IDS, &c[mid * eb..])))
                }
            }
        }
        Ok(None)
    }

    /// Positions `>= from` under `key` in posting list `kind`, ascending.
    pub fn postings_from(&self, kind: Postings, key: u64, from: u64) -> io::Result<Vec<u64>> {
        let section = section_of(kind);
        let lo = ((key as u128) << 64) | from as u128;
        let hi = ((key as u128) << 64) | u64::MAX as u128;
        let mut out = Vec::new();
        let Some(mut i) = self.seek(section, lo) else {
            return Ok(out);
        };
        let eb = ENTRY_BYTES[section];
        while i < self.sections[section].fences.len() {
            if self.sections[section].fences[i] > hi {
                break;
            }
            let c = self.chunk(section, i)?;
            for e in c.chunks_exact(eb) {
                let k = entry_key(section, e);
                if k > hi {
                    return Ok(out);
                }
                if k >= lo {
                    out.push(entry_value(section, e));
                }
            }
            i += 1;
        }
        Ok(out)
    }

    /// The offset of the last frame that starts at or before `offset`.
    pub fn frame_at_or_before(&self, offset: u64) -> io::Result<Option<u64>> {
        let Some(i) = self.seek(SECTION_FRAMES, offset as u128) else {
            return Ok(None);
        };
        let c = self.chunk(SECTION_FRAMES, i)?;
        Ok(c.chunks_exact(8)
            .map(|e| u64_at(e, 0))
            .take_while(|f| *f <= offset)
            .last())
    }

    /// Every entry of a section as (key, value), reading and checking every
    /// chunk (for `verify`). Sections: 0 ids, 1 types, 2 categories,
    /// 3 correlations, 4 frames.
    pub fn entries(&self, section: usize) -> io::Result<Vec<(u128, u64)>> {
        let eb = ENTRY_BYTES[section];
        let mut out = Vec::with_capacity(self.sections[section].count as usize);
        for i in 0..self.sections[section].fences.len() {
            let c = self.chunk(section, i)?;
            for e in c.chunks_exact(eb) {
                out.push((entry_key(section, e), entry_value(section, e)));
            }
        }
        Ok(out)
    }
}

/// Positions `>= from` under `key` from an active posting list.
pub fn active_postings_from(idx: &ActiveIndex, kind: Postings, key: u64, from: u64) -> &[u64] {
    match idx.postings[kind as usize].get(&key) {
        Some(v) => {
            let lo = v.partition_point(|p| *p < from);
            &v[lo..]
        }
        None => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
        bad[IDX_HEADER_BYTES + 5] ^= 1;
        f.write_all_at(&bad, 0).unwrap();
        let d = SealedIndex::open(f.clone(), 4).unwrap();
        assert!(d.lookup_id(0).is_err());
        // A flipped bit in the fence table fails the open.
        let mut bad = enc.clone();
        let n = bad.len();
        bad[n - IDX_TRAILER_BYTES - 3] ^= 1;
        f.write_all_at(&bad, 0).unwrap();
        assert!(SealedIndex::open(f, 4).is_err());
    }
}
