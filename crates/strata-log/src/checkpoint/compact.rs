//! Compaction of the checkpoint file: once it has grown well past what the
//! live checkpoints need, it is rewritten with one record per name.

use std::sync::atomic::Ordering;

use strata_core::{Error, Position, Result};

use super::file::{CheckpointFile, Writer};
use super::layout::{write_new_file, TMP_FILE_NAME};
use super::options::CHECKPOINT_COMPACT_GROWTH_FACTOR;
use super::record::{encode_file_header, encode_record, live_bytes_of};

impl CheckpointFile {
    /// Rewrites the file with one record per name when it has grown past
    /// the limit. A failure before the rename only delays the next attempt;
    /// a failure to make the rename durable poisons the store.
    pub(super) fn maybe_compact(&self, w: &mut Writer) -> Result<()> {
        if w.len < self.options.compact_at_bytes || w.len < w.compact_retry_at_bytes {
            return Ok(());
        }
        let Some(bytes) = self.compacted_bytes(w.len) else {
            return Ok(());
        };
        let before = w.len;
        let tmp = self.dir.join(TMP_FILE_NAME);
        let file = match write_new_file(self.storage.as_ref(), &tmp, &self.path, &bytes) {
            Ok(f) => f,
            Err(error) => {
                tracing::warn!(file = %self.path.display(), %error, "checkpoint compaction failed; will retry later");
                w.compact_retry_at_bytes = w.len + self.options.compact_at_bytes;
                return Ok(());
            }
        };
        w.file = file;
        w.len = bytes.len() as u64;
        self.file_bytes.store(w.len, Ordering::Relaxed);
        if let Err(e) = self.storage.sync_dir(&self.dir) {
            // Saves now go to the new file; were its rename lost, so would they.
            let err = Error::io(format!("syncing {}", self.dir.display()), e);
            w.poison(&err);
            return Err(err);
        }
        self.compactions.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(file = %self.path.display(), before_bytes = before, after_bytes = w.len, "compacted the checkpoint file");
        Ok(())
    }

    /// The compacted file (one save record per name, sorted by name), or
    /// `None` if a file of `len` bytes is not yet worth rewriting.
    fn compacted_bytes(&self, len: u64) -> Option<Vec<u8>> {
        let map = self.map.lock();
        if len < CHECKPOINT_COMPACT_GROWTH_FACTOR * live_bytes_of(&map) {
            return None;
        }
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&encode_file_header());
        let mut names: Vec<(&String, &Position)> = map.iter().collect();
        names.sort();
        for (name, &position) in names {
            encode_record(&mut bytes, name, Some(position));
        }
        Some(bytes)
    }
}
