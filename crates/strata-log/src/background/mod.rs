//! Background work on sealed segments, off the writer thread: writing a
//! sealed segment's index file (and rebuilding a damaged one) and its tag
//! file, the stream checkpoint when one is due, then compressing the
//! segment.

pub(crate) mod compression;
pub(crate) mod indexing;
pub(crate) mod stream_checkpoint;
pub(crate) mod tagging;

use std::sync::Arc;

use tracing::{error, warn};

use crate::background::indexing::write_sealed_index;
use crate::state::OpenStore;

impl OpenStore {
    /// Finishes sealing segment `n` in the background: writes its index file
    /// (then serves lookups from it) and its tag file, writes the stream
    /// checkpoint when `checkpoint` (claimed with
    /// [`claim_stream_checkpoint`](Self::claim_stream_checkpoint)), then
    /// compresses the segment if configured. One thread does it all, in
    /// that order, so the store's background writes keep one order.
    pub(crate) fn spawn_sealing(self: &Arc<Self>, n: u32, checkpoint: bool) {
        let store = self.clone();
        let started = self.spawn_background(format!("strata-seal-{n}"), move || {
            let sealed = store.write_sealed_files(n);
            if checkpoint {
                store.write_claimed_stream_checkpoint();
            }
            if !sealed {
                return;
            }
            if let Some(cfg) = store.config.compression {
                if let Err(e) = store.compress_segment(n, cfg) {
                    warn!(segment = n, error = %e, "compressing a sealed segment failed; it stays uncompressed");
                }
            }
        });
        if !started && checkpoint {
            self.release_stream_checkpoint();
        }
    }

    /// Writes sealed segment `n`'s index file, then serves lookups from it,
    /// and its tag file; false when either failed (the in-memory indexes
    /// keep serving, and the next open rebuilds the files).
    fn write_sealed_files(&self, n: u32) -> bool {
        let idx = self.state.read().sealing.get(&n).cloned();
        if let Some(idx) = idx {
            match write_sealed_index(
                self.config.storage.as_ref(),
                &self.config.dir.join("index"),
                n,
                &idx,
            ) {
                Ok(sealed) => {
                    let mut state = self.state.write();
                    state.sealing.remove(&n);
                    state.sealed.insert(n, Arc::new(sealed));
                }
                Err(e) => {
                    error!(segment = n, error = %e, "writing a sealed segment's index failed");
                    return false;
                }
            }
        }
        if let Err(e) = self.write_segment_tags(n) {
            error!(segment = n, error = %e, "writing a sealed segment's tag file failed");
            return false;
        }
        true
    }

    /// Compresses sealed segment `n` in the background, if compression is on.
    pub(crate) fn spawn_compression(self: &Arc<Self>, n: u32) {
        let Some(cfg) = self.config.compression else {
            return;
        };
        let store = self.clone();
        self.spawn_background(format!("strata-compress-{n}"), move || {
            if let Err(e) = store.compress_segment(n, cfg) {
                warn!(segment = n, error = %e, "compressing a sealed segment failed; it stays uncompressed");
            }
        });
    }

    /// Rebuilds sealed segment `n`'s damaged index on a thread of its own.
    pub(crate) fn spawn_index_repair(self: &Arc<Self>, n: u32) {
        let store = self.clone();
        let _ = std::thread::Builder::new()
            .name(format!("strata-reindex-{n}"))
            .spawn(move || {
                if let Err(e) = store.repair_index(n) {
                    error!(segment = n, error = %e, "rebuilding a damaged segment index failed");
                }
            });
    }

    /// Runs `work` on a thread of its own, joined by
    /// [`join_background`](Self::join_background); false when the thread
    /// could not be started.
    fn spawn_background(&self, name: String, work: impl FnOnce() + Send + 'static) -> bool {
        let spawned = std::thread::Builder::new().name(name.clone()).spawn(work);
        match spawned {
            Ok(h) => {
                let mut handles = self.background.lock();
                handles.retain(|h| !h.is_finished());
                handles.push(h);
                true
            }
            Err(e) => {
                warn!(thread = %name, error = %e, "cannot start a background thread");
                false
            }
        }
    }

    /// Waits for sealing and compression threads to finish.
    pub(crate) fn join_background(&self) {
        let handles: Vec<_> = self.background.lock().drain(..).collect();
        for h in handles {
            let _ = h.join();
        }
    }
}
