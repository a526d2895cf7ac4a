//! `verify --repair`: cuts a damaged store back to its last good frame,
//! keeping every byte it cuts in a side directory, so nothing is discarded
//! silently and an operator can still recover what the cut bytes held.
//!
//! The plan comes from a [`VerifyReport`]: the first damaged frame of the
//! log. Applying it, with the store closed (its `LOCK` taken):
//! 1. later segments move whole into the side directory, the highest
//!    first, so a crash midway leaves a contiguous log;
//! 2. the damaged segment is copied whole into the side directory, its
//!    bytes up to the damage are written to a new file, synced, and renamed
//!    over it (a compressed form is removed after);
//! 3. the index files from the damaged segment on and the stream checkpoint
//!    are removed: opening the store rebuilds them from the log.
//!
//! A crash at any step leaves either the old files or the new ones, and
//! every cut byte is already in the side directory before its file changes.

use std::io;
use std::path::{Path, PathBuf};

use crate::compress::compressed_file_name;
use crate::io::{read_chunk, try_lock_file, Storage, StorageFile};
use crate::segment::{
    index_file_name, list_segment_numbers, open_segment, segment_file_name, tag_file_name,
    SCAN_CHUNK_BYTES,
};
use crate::store::LOCK_FILE;
use crate::streams::STREAM_CHECKPOINT_FILE;
use crate::verify::{DamagedFrame, VerifyReport};

/// What a repair will do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepairPlan {
    /// The store directory.
    pub dir: PathBuf,
    /// The first damaged frame: the log is cut there.
    pub damage: DamagedFrame,
    /// Bytes of the damaged segment from the damage on.
    pub cut_bytes: u64,
    /// Later segments, moved aside whole.
    pub later_segments: Vec<u32>,
    /// Where the cut bytes are kept.
    pub side_dir: PathBuf,
}

/// What a repair did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepairDone {
    /// The side directory.
    pub side_dir: PathBuf,
    /// The files now in it.
    pub kept: Vec<PathBuf>,
}

/// The repair `report` calls for in the store at `dir`, if the log is
/// damaged. `stamp` names the side directory (`repair-STAMP`).
pub fn plan_repair(
    dir: &Path,
    storage: &dyn Storage,
    report: &VerifyReport,
    stamp: &str,
) -> io::Result<Option<RepairPlan>> {
    let Some(damage) = report.first_damage.clone() else {
        return Ok(None);
    };
    let seg_dir = dir.join("segments");
    let seg = open_segment(storage, &seg_dir, damage.segment, false)
        .map_err(|e| io::Error::other(e.to_string()))?;
    let len = seg.file.len()?;
    let later_segments = list_segment_numbers(storage, &seg_dir)?
        .into_iter()
        .filter(|n| *n > damage.segment)
        .collect();
    Ok(Some(RepairPlan {
        dir: dir.to_path_buf(),
        cut_bytes: len.saturating_sub(damage.offset),
        damage,
        later_segments,
        side_dir: dir.join(format!("repair-{stamp}")),
    }))
}

impl RepairPlan {
    /// Applies the plan to the closed store.
    pub fn apply(&self, storage: &dyn Storage) -> io::Result<RepairDone> {
        let _lock = try_lock_file(&self.dir.join(LOCK_FILE))?.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::WouldBlock,
                format!(
                    "{} is open (LOCK is held): close it first",
                    self.dir.display()
                ),
            )
        })?;
        let seg_dir = self.dir.join("segments");
        storage.create_dir_all(&self.side_dir)?;
        let mut kept = Vec::new();
        for &n in self.later_segments.iter().rev() {
            for name in [segment_file_name(n), compressed_file_name(n)] {
                let from = seg_dir.join(&name);
                if storage.exists(&from) {
                    let to = self.side_dir.join(&name);
                    storage.rename(&from, &to)?;
                    kept.push(to);
                }
            }
            storage.sync_dir(&self.side_dir)?;
            storage.sync_dir(&seg_dir)?;
        }
        kept.push(self.cut_damaged_segment(storage, &seg_dir)?);
        self.remove_derived_files(storage)?;
        Ok(RepairDone {
            side_dir: self.side_dir.clone(),
            kept,
        })
    }

    /// Copies the damaged segment aside, then replaces it by its bytes up to
    /// the damage. Returns the copy's path.
    fn cut_damaged_segment(&self, storage: &dyn Storage, seg_dir: &Path) -> io::Result<PathBuf> {
        let n = self.damage.segment;
        let seg = open_segment(storage, seg_dir, n, false)
            .map_err(|e| io::Error::other(e.to_string()))?;
        let len = seg.file.len()?;
        let copy = self.side_dir.join(segment_file_name(n));
        copy_range(storage, seg.file.as_ref(), &copy, len)?;
        storage.sync_dir(&self.side_dir)?;
        let plain = seg_dir.join(segment_file_name(n));
        let fresh = seg_dir.join(format!("{}.repair", segment_file_name(n)));
        copy_range(storage, seg.file.as_ref(), &fresh, self.damage.offset)?;
        drop(seg);
        storage.rename(&fresh, &plain)?;
        storage.sync_dir(seg_dir)?;
        let packed = seg_dir.join(compressed_file_name(n));
        if storage.exists(&packed) {
            storage.remove(&packed)?;
            storage.sync_dir(seg_dir)?;
        }
        Ok(copy)
    }

    /// Removes what opening the store rebuilds from the cut log.
    fn remove_derived_files(&self, storage: &dyn Storage) -> io::Result<()> {
        let idx_dir = self.dir.join("index");
        let first = self.damage.segment;
        for n in std::iter::once(first).chain(self.later_segments.iter().copied()) {
            for path in [
                idx_dir.join(index_file_name(n)),
                idx_dir.join(tag_file_name(n)),
            ] {
                if storage.exists(&path) {
                    storage.remove(&path)?;
                }
            }
        }
        if storage.exists(&idx_dir) {
            storage.sync_dir(&idx_dir)?;
        }
        let ckpt = self.dir.join(STREAM_CHECKPOINT_FILE);
        if storage.exists(&ckpt) {
            storage.remove(&ckpt)?;
        }
        storage.sync_dir(&self.dir)
    }
}

/// Writes the first `len` bytes of `from` to a new file `to`, synced.
fn copy_range(
    storage: &dyn Storage,
    from: &dyn StorageFile,
    to: &Path,
    len: u64,
) -> io::Result<()> {
    let out = storage.open(to, true)?;
    out.set_len(0)?;
    let mut at = 0u64;
    while at < len {
        let want = ((len - at) as usize).min(SCAN_CHUNK_BYTES);
        let chunk = read_chunk(from, at, want)?;
        if chunk.is_empty() {
            break;
        }
        out.write_all_at(&chunk, at)?;
        at += chunk.len() as u64;
    }
    out.sync_data()
}
