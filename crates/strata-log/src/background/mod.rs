//! Background work on sealed segments, off the writer thread: writing a
//! sealed segment's index file (and rebuilding a damaged one) and its tag
//! file, then compressing the segment.

pub(crate) mod compression;
pub(crate) mod indexing;
pub(crate) mod tagging;

use std::sync::Arc;

use tracing::{error, warn};

use crate::background::indexing::write_sealed_index;
use crate::state::OpenStore;

impl OpenStore {
    /// Finishes sealing segment `n` in the background: writes its index file
    /// (then serves lookups from it), then compresses it if configured.
    pub(crate) fn spawn_sealing(self: &Arc<Self>, n: u32) {
        let store = self.clone();
        self.spawn_background(format!("strata-seal-{n}"), move || {
            let idx = store.state.read().sealing.get(&n).cloned();
            if let Some(idx) = idx {
                match write_sealed_index(
                    store.config.storage.as_ref(),
                    &store.config.dir.join("index"),
                    n,
                    &idx,
                ) {
                    Ok(sealed) => {
                        let mut state = store.state.write();
                        state.sealing.remove(&n);
                        state.sealed.insert(n, Arc::new(sealed));
                    }
                    Err(e) => {
                        // Lookups keep using the in-memory index; the next open rebuilds the file.
                        error!(segment = n, error = %e, "writing a sealed segment's index failed");
                        return;
                    }
                }
            }
            if let Err(e) = store.write_segment_tags(n) {
                // The tag index in memory has every event; the next open rebuilds the file.
                error!(segment = n, error = %e, "writing a sealed segment's tag file failed");
                return;
            }
            if let Some(cfg) = store.config.compression {
                if let Err(e) = store.compress_segment(n, cfg) {
                    warn!(segment = n, error = %e, "compressing a sealed segment failed; it stays uncompressed");
                }
            }
        });
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

    fn spawn_background(&self, name: String, work: impl FnOnce() + Send + 'static) {
        let spawned = std::thread::Builder::new().name(name.clone()).spawn(work);
        match spawned {
            Ok(h) => {
                let mut handles = self.background.lock();
                handles.retain(|h| !h.is_finished());
                handles.push(h);
            }
            Err(e) => warn!(thread = %name, error = %e, "cannot start a background thread"),
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
