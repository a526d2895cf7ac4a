//! Erasing a stream's snapshots: a tombstone hides them at once, then every
//! file holding any record of the stream (live or dead snapshots, earlier
//! tombstones) is rewritten without them, oldest file first, each
//! atomically (new file, fsync, rename, directory fsync); a file left with
//! nothing is removed.
//!
//! # Why a crash at any point is safe
//!
//! The tombstone is appended (and fsynced) to the active file before any
//! rewrite, so from then on replay drops every snapshot of the stream
//! whatever the rewrites did. Files are rewritten in ascending order: when
//! file `n` loses the stream's tombstones, every older file has already lost
//! the stream's snapshots, so those tombstones hide nothing any more. The
//! active file, which holds the new tombstone, is the last rewritten.

use std::time::Instant;

use strata_core::{Result, StreamId};

use super::dir::SnapshotDir;

impl SnapshotDir {
    /// Removes every byte of every snapshot of `stream` from the directory.
    /// Returns how many files were rewritten or removed.
    pub(super) fn erase(&self, stream: &StreamId) -> Result<usize> {
        let started = Instant::now();
        let mut w = self.writer.lock();
        w.check_writable()?;
        self.delete_locked(&mut w, stream)?;
        let numbers: Vec<u32> = self.index.lock().files.keys().copied().collect();
        let mut rewritten = 0usize;
        for n in numbers {
            let target = self.target(n)?;
            let plan = self.plan(&target, Some(stream.as_str()))?;
            if plan.erased_records == 0 {
                continue;
            }
            self.apply(&mut w, target, plan)?;
            rewritten += 1;
        }
        tracing::info!(
            %stream,
            files = rewritten,
            took_ms = started.elapsed().as_millis() as u64,
            "erased the snapshots of a stream"
        );
        Ok(rewritten)
    }
}
