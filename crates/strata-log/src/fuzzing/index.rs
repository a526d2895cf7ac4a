//! Index files of sealed segments.

use std::sync::Arc;

use super::mem::MemFile;
use super::u32_at;
use crate::index::{Frozen, Postings, SealedIndex};

/// Lookups tried per opened index at most.
const MAX_LOOKUPS: usize = 64;

/// An index file: opened (header, fences and trailer checked), then every
/// section read and a few lookups made; errors are fine, panics are not.
/// The same bytes are also read as a list of entries, encoded as an index
/// file, and every lookup of the result must answer what was encoded.
/// Returns whether the bytes opened as an index file whose every chunk
/// checks out.
pub fn index_file(data: &[u8]) -> bool {
    let segment = u32_at(data, 12);
    let opened = SealedIndex::open(MemFile::with(data), segment).ok();
    let whole = opened.as_ref().is_some_and(read_everything);
    roundtrip(&frozen_from(data), segment);
    whole
}

/// Reads every section and looks up some of what it holds.
fn read_everything(idx: &SealedIndex) -> bool {
    let _ = idx.counts();
    let mut whole = true;
    for section in 0..6 {
        match idx.entries(section) {
            Ok(entries) => {
                for &(key, value) in entries.iter().take(MAX_LOOKUPS) {
                    let _ = idx.lookup_id(key);
                    let _ = idx.postings_from(Postings::Type, (key >> 64) as u64, value);
                    let _ = idx.frame_at_or_before(value);
                }
            }
            Err(_) => whole &= section == 5,
        }
    }
    let _ = idx.lookup_id(0);
    let _ = idx.lookup_id(u128::MAX);
    let _ = idx.postings_from(Postings::Correlation, u64::MAX, 0);
    let _ = idx.frame_at_or_before(u64::MAX);
    whole
}

/// Sorted index arrays made of the input's bytes, eight at a time.
fn frozen_from(data: &[u8]) -> Frozen {
    let mut words = data.chunks(8).map(|c| {
        c.iter()
            .rev()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
    });
    let mut f = Frozen::default();
    let mut turn = 0usize;
    while let (Some(a), Some(b)) = (words.next(), words.next()) {
        match turn % 5 {
            0 => f.ids.push(((u128::from(a) << 64) | u128::from(b), a ^ b)),
            4 => f.frames.push(a),
            k => f.postings[k - 1].push((a % 4, b)),
        }
        turn += 1;
    }
    f.ids.sort_unstable();
    f.ids.dedup_by_key(|e| e.0);
    // A segment indexes each event once: no (key, position) pair repeats.
    for p in &mut f.postings {
        p.sort_unstable();
        p.dedup();
    }
    f.frames.sort_unstable();
    f.frames.dedup();
    f
}

/// Encodes `f`, opens it, and checks every lookup against `f`.
fn roundtrip(f: &Frozen, segment: u32) {
    let file = MemFile::with(&f.encode(segment));
    let idx = SealedIndex::open(Arc::clone(&file) as _, segment).expect("an encoded index opens");
    let ids = idx.entries(0).expect("ids read back");
    let want: Vec<(u128, u64)> = f.ids.clone();
    assert_eq!(ids, want, "ids read back as encoded");
    for &(id, pos) in f.ids.iter().take(MAX_LOOKUPS) {
        assert_eq!(idx.lookup_id(id).expect("lookup"), Some(pos));
    }
    for (k, kind) in [Postings::Type, Postings::Category, Postings::Correlation]
        .into_iter()
        .enumerate()
    {
        for key in 0..4u64 {
            let want: Vec<u64> = f.postings[k]
                .iter()
                .filter(|(h, _)| *h == key)
                .map(|(_, p)| *p)
                .collect();
            assert_eq!(idx.postings_from(kind, key, 0).expect("postings"), want);
        }
    }
    for &frame in f.frames.iter().take(MAX_LOOKUPS) {
        assert_eq!(idx.frame_at_or_before(frame).expect("frame"), Some(frame));
    }
}

/// Valid index files.
pub(super) fn seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    let empty = Frozen::default();
    let mut f = Frozen::default();
    for i in 0..300u64 {
        f.ids.push((u128::from(i) * 7919, 32 + i * 64));
        f.postings[(i % 3) as usize].push((i % 5, 32 + i * 64));
        f.frames.push(32 + i * 64);
    }
    f.ids.sort_unstable();
    for p in &mut f.postings {
        p.sort_unstable();
    }
    vec![
        ("index", "empty".to_string(), empty.encode(0)),
        ("index", "three-chunks".to_string(), f.encode(5)),
    ]
}
