//! Sealing the active segment, the stream checkpoint, and closing.

use std::sync::Arc;

use strata_core::{Error, Result};
use tracing::{info, warn};

use crate::format::{encode_segment_header, new_salt, FrameCheck};
use crate::segment::{segment_file_name, Segment, FIRST_FRAME_OFFSET};
use crate::writer::Writer;

impl Writer {
    /// Seals the active segment: syncs it, creates the next one (header
    /// synced, directory synced), hands the sealed one's index and
    /// compression to background work, and maybe starts a stream checkpoint
    /// there too.
    pub(super) fn rotate(&mut self) -> std::io::Result<()> {
        let store = self.store.clone();
        let storage = store.config.storage.as_ref();
        if self.dirty {
            self.segment.file.sync_data()?;
            self.dirty = false;
        }
        let old = self.segment.number;
        let next = old + 1;
        let seg_dir = store.config.dir.join("segments");
        let path = seg_dir.join(segment_file_name(next));
        let file = storage.open(&path, true)?;
        file.set_len(0)?;
        let salt = new_salt();
        file.write_all_at(&encode_segment_header(next, salt), 0)?;
        file.sync_data()?;
        storage.sync_dir(&seg_dir)?;
        let check = FrameCheck::salted(salt);
        let segment = Arc::new(Segment {
            number: next,
            path,
            file,
            check,
            damage: Vec::new(),
        });
        self.frames.start_segment(check);
        {
            let mut state = store.state.write();
            let sealing = Arc::new(std::mem::take(&mut state.active));
            state.sealing.insert(old, sealing);
            state.active_segment = next;
            state.segments.insert(next, segment.clone());
            state.visible_end = FIRST_FRAME_OFFSET;
        }
        self.segment = segment;
        self.tail = FIRST_FRAME_OFFSET;
        info!(sealed = old, next, "sealed segment");
        // Writing the index file, the stream checkpoint (when due) and
        // compressing happen off the writer thread.
        self.sealed_since_checkpoint += 1;
        let checkpoint = self.sealed_since_checkpoint
            >= store.config.stream_checkpoint_every_segments
            && store.claim_stream_checkpoint();
        if checkpoint {
            self.sealed_since_checkpoint = 0;
        }
        store.spawn_sealing(old, checkpoint);
        Ok(())
    }

    /// Syncs and checkpoints; after this the store reopens without replay.
    pub(super) fn close(&mut self) -> Result<()> {
        // Every turn handed to the sync stage is published and answered
        // before the checkpoint is taken.
        self.drain_stage();
        if let Some(reason) = &self.poisoned {
            warn!(reason = %reason, "closing a store that stopped accepting writes; no checkpoint written");
            self.store.close_head();
            return Ok(());
        }
        let r = (|| -> std::io::Result<()> {
            if self.dirty {
                self.segment.file.sync_data()?;
                self.dirty = false;
            }
            self.store.write_stream_checkpoint().map(|_| ())
        })();
        self.store.close_head();
        r.map_err(|e| Error::io("closing the log store", e))
    }
}
