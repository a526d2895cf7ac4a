//! Copying the snapshot and checkpoint stores kept beside the log
//! (`DIR/snapshots/`, `DIR/checkpoints/`), consistently while they are in
//! use, without their locks.
//!
//! They are copied before the log is looked at: a snapshot names a stream
//! version, and a checkpoint a position, that were readable when it was
//! saved, so the log copied after them holds whatever they refer to.
//!
//! Snapshot files are copied newest first. A file stops being appended to
//! once the next one exists, so every file older than the newest copied is
//! whole, and the copy is a prefix of the records written (a compaction in
//! between rewrites a file into one that replays the same, or drops only
//! snapshots, which is always safe). The newest file, and the checkpoint
//! file, may be copied while a record is being written: a torn last record
//! is cut as opening the store would cut it. A copy that shows bytes that
//! are no record before a valid one is read again (it may have caught a
//! record half written); if it still does, the store's file is damaged and
//! is copied as it is, to be judged on open as the original would be.

use std::fs;
use std::path::Path;

use super::error::BackupError;
use super::files::{copy_to, crc_of, create_dir, link_or_copy, remove_if_present, write_to};
use super::log::{entry, placed_entry, read_if_present, stamp_of};
use super::manifest::FileKind;
use super::run::Run;
use crate::checkpoint::{valid_end, CHECKPOINTS_DIR, CHECKPOINT_FILE_NAME};
use crate::segment::parse_file_number;
use crate::snapshot::{torn_tail, SNAPSHOTS_DIR};

/// Reads of a file being written before bytes that are no record, followed
/// by a valid record, are taken for damage in the store's file.
const MAX_READ_ATTEMPTS: usize = 3;

impl Run {
    /// Copies `snapshots/` and `checkpoints/`, where the store has them.
    pub(crate) fn copy_side_stores(&mut self) -> Result<(), BackupError> {
        self.copy_snapshots()?;
        self.copy_checkpoints()
    }

    fn copy_snapshots(&mut self) -> Result<(), BackupError> {
        let src_dir = self.dir.join(SNAPSHOTS_DIR);
        let Ok(entries) = fs::read_dir(&src_dir) else {
            return Ok(());
        };
        let mut numbers: Vec<u32> = entries
            .filter_map(|e| parse_file_number(e.ok()?.file_name().to_str()?, "snap"))
            .collect();
        numbers.sort_unstable_by(|a, b| b.cmp(a));
        create_dir(&self.dest.join(SNAPSHOTS_DIR))?;
        for (i, n) in numbers.into_iter().enumerate() {
            let name = format!("{n:08}.snap");
            if i == 0 {
                self.copy_newest_snapshot_file(&src_dir.join(&name), &name)?;
            } else {
                self.copy_whole_snapshot_file(&src_dir.join(&name), &name)?;
            }
        }
        Ok(())
    }

    /// A snapshot file no longer appended to: kept, linked or copied whole.
    /// One that a compaction removed meanwhile held nothing live.
    fn copy_whole_snapshot_file(&mut self, src: &Path, name: &str) -> Result<(), BackupError> {
        let rel = format!("{SNAPSHOTS_DIR}/{name}");
        let Some(stamp) = stamp_of(src)? else {
            return Ok(());
        };
        if let Some(e) = self.unchanged(&rel, FileKind::Snapshots, &stamp) {
            self.keep(e);
        } else if let Some(p) = link_or_copy(src, &self.dest.join(&rel))? {
            self.placed(placed_entry(&rel, FileKind::Snapshots, &p), p.copied);
        }
        Ok(())
    }

    /// The snapshot file being appended to: copied, then its torn tail cut.
    fn copy_newest_snapshot_file(&mut self, src: &Path, name: &str) -> Result<(), BackupError> {
        let rel = format!("{SNAPSHOTS_DIR}/{name}");
        let dst = self.dest.join(&rel);
        // Copied beside its place, cut, then renamed into it.
        let scratch = self.dest.join(SNAPSHOTS_DIR).join(format!("{name}.copy"));
        let mut copied = None;
        for _ in 0..MAX_READ_ATTEMPTS {
            let f = match fs::File::open(src) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(BackupError::io("opening", src)(e)),
            };
            let len = f
                .metadata()
                .map_err(BackupError::io("reading the metadata of", src))?
                .len();
            copy_to(&f, src, len, &scratch)?;
            let file = crate::io::Storage::open(&crate::io::FsStorage, &scratch, false)
                .map_err(BackupError::io("opening", &scratch))?;
            let (end, damaged) =
                torn_tail(file.as_ref(), len).map_err(BackupError::io("reading", &scratch))?;
            copied = Some(end);
            if !damaged {
                break;
            }
        }
        let Some(end) = copied else {
            return Ok(());
        };
        let cut = fs::OpenOptions::new()
            .write(true)
            .open(&scratch)
            .map_err(BackupError::io("opening", &scratch))?;
        cut.set_len(end)
            .map_err(BackupError::io("cutting", &scratch))?;
        cut.sync_data()
            .map_err(BackupError::io("syncing", &scratch))?;
        let crc = crc_of(&cut_reader(&scratch)?, &scratch, end)?;
        if let Some(e) = self.same_content(&rel, FileKind::Snapshots, end, crc) {
            remove_if_present(&scratch)?;
            self.keep(e);
            return Ok(());
        }
        fs::rename(&scratch, &dst).map_err(BackupError::io("renaming", &scratch))?;
        self.placed(entry(&rel, FileKind::Snapshots, end, crc, None), end);
        Ok(())
    }

    /// The checkpoint file: read, its torn tail cut, kept or written.
    fn copy_checkpoints(&mut self) -> Result<(), BackupError> {
        let src = self.dir.join(CHECKPOINTS_DIR).join(CHECKPOINT_FILE_NAME);
        let mut bytes = None;
        for _ in 0..MAX_READ_ATTEMPTS {
            let Some(mut b) = read_if_present(&src)? else {
                return Ok(());
            };
            match valid_end(&b) {
                Some(end) => {
                    b.truncate(end);
                    bytes = Some(b);
                    break;
                }
                None => bytes = Some(b),
            }
        }
        let Some(bytes) = bytes else {
            return Ok(());
        };
        create_dir(&self.dest.join(CHECKPOINTS_DIR))?;
        let rel = format!("{CHECKPOINTS_DIR}/{CHECKPOINT_FILE_NAME}");
        let (len, crc) = (bytes.len() as u64, crc32c::crc32c(&bytes));
        if let Some(e) = self.same_content(&rel, FileKind::Checkpoints, len, crc) {
            self.keep(e);
            return Ok(());
        }
        write_to(&bytes, &self.dest.join(&rel))?;
        self.placed(entry(&rel, FileKind::Checkpoints, len, crc, None), len);
        Ok(())
    }
}

/// `path` opened for reading.
fn cut_reader(path: &Path) -> Result<fs::File, BackupError> {
    fs::File::open(path).map_err(BackupError::io("opening", path))
}
