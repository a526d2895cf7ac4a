//! Writing the stream checkpoint (`streams.ckpt`) off the writer thread:
//! the thread that finishes sealing a segment writes it when one is due.
//!
//! The table is encoded one shard at a time, each under a short read lock
//! of the state, so the sync stage's publishes wait for one shard at most,
//! never for the whole table: the checkpoint is fuzzy (see
//! `streams::checkpoint`). The file is then written atomically.

use std::sync::atomic::Ordering;

use tracing::{debug, warn};

use crate::io::write_file_atomic;
use crate::state::OpenStore;
use crate::streams::{CheckpointEncoder, STREAM_CHECKPOINT_FILE};

impl OpenStore {
    /// Claims the next background stream checkpoint; false when one is
    /// scheduled or running already. The claimant writes it with
    /// [`write_claimed_stream_checkpoint`](Self::write_claimed_stream_checkpoint)
    /// or gives it up with
    /// [`release_stream_checkpoint`](Self::release_stream_checkpoint).
    pub(crate) fn claim_stream_checkpoint(&self) -> bool {
        !self.checkpoint_running.swap(true, Ordering::AcqRel)
    }

    /// Gives up a claimed checkpoint.
    pub(crate) fn release_stream_checkpoint(&self) {
        self.checkpoint_running.store(false, Ordering::Release);
    }

    /// Writes a claimed checkpoint (on a background thread), then releases
    /// the claim. A failure is logged: the log holds everything, the next
    /// checkpoint tries again, and an open meanwhile replays from the
    /// previous one.
    pub(crate) fn write_claimed_stream_checkpoint(&self) {
        if let Err(e) = self.write_stream_checkpoint() {
            warn!(error = %e, "writing the stream checkpoint failed");
        }
        self.release_stream_checkpoint();
    }

    /// Writes the stream checkpoint as of the published log: it covers
    /// the published end when it starts, and each stream holds at least
    /// what the log up to there holds, and perhaps events published while
    /// it was encoded. Those are made durable before the file is written
    /// (see [`sync_published_tail`](Self::sync_published_tail)). Returns its
    /// size in bytes.
    pub(crate) fn write_stream_checkpoint(&self) -> std::io::Result<usize> {
        let _one_writer = self.checkpointing.lock();
        let mut enc = {
            let state = self.state.read();
            let mut enc = CheckpointEncoder::new((state.active_segment, state.visible_end));
            enc.add_next_shard(&state.streams);
            enc
        };
        while enc.next_shard().is_some() {
            let state = self.state.read();
            enc.add_next_shard(&state.streams);
        }
        self.sync_published_tail()?;
        let bytes = enc.finish();
        write_file_atomic(
            self.config.storage.as_ref(),
            &self.config.dir.join(STREAM_CHECKPOINT_FILE),
            &bytes,
        )?;
        self.metrics
            .stream_checkpoints
            .fetch_add(1, Ordering::Relaxed);
        debug!(bytes = bytes.len(), "wrote stream checkpoint");
        Ok(bytes.len())
    }

    /// Syncs the active segment, so that every event published so far is
    /// durable. In the `Always` mode it already is; in the others the
    /// writer publishes before it syncs, and a checkpoint holding an event
    /// a power cut then takes from the log would describe a stream the log
    /// no longer holds. Sealed segments were synced when they were sealed,
    /// before the next one became active.
    fn sync_published_tail(&self) -> std::io::Result<()> {
        let active = {
            let state = self.state.read();
            state.segments.get(&state.active_segment).cloned()
        };
        match active {
            Some(seg) => seg.file.sync_data(),
            None => Ok(()),
        }
    }
}
