//! Finding and opening the segment files a store directory holds.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use strata_core::{Error, Result};
use tracing::warn;

use crate::compress::compressed_file_name;
use crate::format::{encode_segment_header, new_salt, FrameCheck, SEGMENT_HEADER_BYTES};
use crate::io::{read_chunk, Storage, StorageFile};
use crate::segment::{
    list_segment_numbers, open_segment, read_header, segment_file_name, DamagedBytes, Segment,
    SCAN_CHUNK_BYTES,
};
use crate::state::location;

/// The segment numbers of `seg_dir`, contiguous and never empty: leftovers
/// of an unfinished compression are removed, a gap is corruption, and an
/// empty directory gets segment 0. `read_only` (a store opened over
/// damage) removes nothing.
pub(super) fn segment_numbers(
    storage: &dyn Storage,
    seg_dir: &Path,
    read_only: bool,
) -> Result<Vec<u32>> {
    let listing = |e| Error::io(format!("listing {}", seg_dir.display()), e);
    let mut numbers = list_segment_numbers(storage, seg_dir).map_err(listing)?;
    for name in storage.list(seg_dir).map_err(listing)? {
        if name.ends_with(".tmp") && !read_only {
            // An unfinished compression: the plain segment is still there.
            let _ = storage.remove(&seg_dir.join(name));
        }
    }
    for w in numbers.windows(2) {
        if w[1] != w[0] + 1 {
            return Err(Error::Corrupt {
                location: seg_dir.display().to_string(),
                reason: format!(
                    "segment {} is missing (found {} then {})",
                    w[0] + 1,
                    w[0],
                    w[1]
                ),
            });
        }
    }
    if numbers.is_empty() {
        let path = seg_dir.join(segment_file_name(0));
        let f = storage
            .open(&path, true)
            .map_err(|e| Error::io(format!("creating {}", path.display()), e))?;
        f.write_all_at(&encode_segment_header(0, new_salt()), 0)
            .and_then(|_| f.sync_data())
            .and_then(|_| storage.sync_dir(seg_dir))
            .map_err(|e| Error::io(format!("initialising {}", path.display()), e))?;
        numbers.push(0);
    }
    Ok(numbers)
}

/// Opens every segment in `numbers` and checks its header. The last one may
/// have been cut short by a crash while it was being created. `read_only`
/// (a store opened over damage) changes no file, and a segment that cannot
/// be opened is kept as wholly damaged rather than an error.
pub(super) fn open_segments(
    storage: &dyn Storage,
    seg_dir: &Path,
    numbers: &[u32],
    read_only: bool,
) -> Result<BTreeMap<u32, Arc<Segment>>> {
    let mut segments = BTreeMap::new();
    for &n in numbers {
        let is_last = Some(&n) == numbers.last();
        let seg = match open_checked(storage, seg_dir, n, is_last, read_only) {
            Err(Error::Corrupt { location, reason }) if read_only => {
                unreadable(storage, seg_dir, n, format!("{location}: {reason}"))?
            }
            other => other?,
        };
        segments.insert(n, Arc::new(seg));
    }
    Ok(segments)
}

/// Segment `n`, which cannot be opened, as one run of damage: its file is
/// held but never read.
fn unreadable(storage: &dyn Storage, seg_dir: &Path, n: u32, reason: String) -> Result<Segment> {
    let plain = seg_dir.join(segment_file_name(n));
    let path = if storage.exists(&plain) {
        plain
    } else {
        seg_dir.join(compressed_file_name(n))
    };
    let file = storage
        .open(&path, false)
        .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
    Ok(Segment {
        number: n,
        path,
        file,
        check: FrameCheck::V1,
        damage: vec![DamagedBytes::whole_segment(reason)],
    })
}

fn open_checked(
    storage: &dyn Storage,
    seg_dir: &Path,
    n: u32,
    is_last: bool,
    read_only: bool,
) -> Result<Segment> {
    if is_last && !read_only {
        reinitialise_if_short(storage, &seg_dir.join(segment_file_name(n)), n)?;
    }
    let seg = open_segment(storage, seg_dir, n, !read_only).map_err(|reason| Error::Corrupt {
        location: location(&seg_dir.join(segment_file_name(n)), 0),
        reason: reason.to_string(),
    })?;
    let named = read_header(seg.file.as_ref(), &seg.path)
        .map_err(|reason| Error::Corrupt {
            location: location(&seg.path, 0),
            reason: reason.to_string(),
        })?
        .number;
    if named != n {
        return Err(Error::Corrupt {
            location: location(&seg.path, 0),
            reason: format!("header names segment {named}"),
        });
    }
    Ok(seg)
}

/// A crash while the last segment was being created can leave it shorter
/// than its header, or as long as it should be but holding only zeros (its
/// new size reached the disk, its header did not): write the header again.
/// Nothing was ever in it: frames are written only after the header is
/// synced, and a frame is never all zeros.
fn reinitialise_if_short(storage: &dyn Storage, path: &Path, n: u32) -> Result<()> {
    if !storage.exists(path) {
        return Ok(());
    }
    let io = |what: &str, e| Error::io(format!("{what} {}", path.display()), e);
    let file = storage.open(path, false).map_err(|e| io("opening", e))?;
    let len = file.len().map_err(|e| io("sizing", e))?;
    let never_written = len < SEGMENT_HEADER_BYTES as u64
        || (read_header(file.as_ref(), path).is_err()
            && all_zeros(file.as_ref(), len).map_err(|e| io("reading", e))?);
    if never_written {
        warn!(segment = %path.display(), bytes = len, "the last segment's header never reached the disk; writing it again");
        file.set_len(0)
            .and_then(|_| file.write_all_at(&encode_segment_header(n, new_salt()), 0))
            .and_then(|_| file.sync_data())
            .map_err(|e| io("re-initialising", e))?;
    }
    Ok(())
}

/// Whether the first `len` bytes of `file` are all zeros.
fn all_zeros(file: &dyn StorageFile, len: u64) -> std::io::Result<bool> {
    let mut at = 0u64;
    while at < len {
        let want = ((len - at) as usize).min(SCAN_CHUNK_BYTES);
        let chunk = read_chunk(file, at, want)?;
        if chunk.is_empty() {
            break;
        }
        if chunk.iter().any(|b| *b != 0) {
            return Ok(false);
        }
        at += chunk.len() as u64;
    }
    Ok(true)
}
