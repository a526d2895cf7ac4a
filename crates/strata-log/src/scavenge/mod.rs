//! Scavenging: reclaiming the space of events no read can return (of
//! deleted and tombstoned streams, and those retention cuts), online.
//!
//! Each sealed segment that holds such events is rewritten in place of
//! itself: the same offsets, removed frames as gap frames of zeros, removed
//! records zeroed (see [`crate::format::removal`]), and the image stored
//! compressed, so the zeros cost almost nothing on disk. The new file is
//! written under a temporary name, synced, renamed over the old form and
//! the directory synced: a crash leaves the old segment or the new one.
//! The segment's index file is then rebuilt from the new image. See ADR
//! 0017 and `docs/log-format.md`.

mod cuts;
mod patched;
mod rewrite;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use strata_core::{Error, Result, ScavengeOptions, ScavengeReport};
use tracing::info;

use crate::background::indexing::{index_segment, write_sealed_index};
use crate::background::tagging::{remove_tag_file, tag_entries_of_segment, write_tag_file};
use crate::compress::{compressed_file_name, CompressedFile};
use crate::scavenge::cuts::Cuts;
use crate::scavenge::patched::PatchedFile;
use crate::scavenge::rewrite::{plan, Rewrite};
use crate::segment::{index_file_name, Segment};
use crate::state::OpenStore;

/// A scavenge's progress, for `/metrics` and progress bars.
#[derive(Debug, Default)]
pub struct ScavengeProgress {
    /// Whether a scavenge is running.
    pub running: AtomicBool,
    /// Sealed segments the running (or last) scavenge looks at.
    pub segments_total: AtomicU64,
    /// Of those, how many it has looked at.
    pub segments_done: AtomicU64,
    /// Segments rewritten, over every scavenge since the store opened.
    pub segments_rewritten: AtomicU64,
    /// Events removed, over every scavenge since the store opened.
    pub events_removed: AtomicU64,
    /// Bytes on disk given back, over every scavenge since the store opened.
    pub bytes_reclaimed: AtomicU64,
}

impl OpenStore {
    /// Scavenges every sealed segment, one at a time, reading at most
    /// `LogConfig::scavenge_bytes_per_second`. One scavenge runs at a time.
    pub(crate) fn scavenge(&self, options: &ScavengeOptions) -> Result<ScavengeReport> {
        let Some(_one) = self.scavenging.try_lock() else {
            return Err(Error::invalid("a scavenge is already running"));
        };
        self.check_writable()?;
        let started = Instant::now();
        let (cuts, segments) = {
            let state = self.state.read();
            let cuts = Cuts::snapshot(&state, chrono::Utc::now(), options.erased_only);
            let sealed: Vec<u32> = state.sealed.keys().copied().collect();
            (cuts, sealed)
        };
        let progress = &self.scavenge_progress;
        progress
            .segments_total
            .store(segments.len() as u64, Ordering::Relaxed);
        progress.segments_done.store(0, Ordering::Relaxed);
        progress.running.store(true, Ordering::Relaxed);
        let mut report = ScavengeReport::default();
        let result = self.scavenge_segments(&cuts, &segments, &mut report);
        progress.running.store(false, Ordering::Relaxed);
        result?;
        report.millis = started.elapsed().as_millis() as u64;
        info!(
            segments = report.segments_rewritten,
            events = report.events_removed,
            before = report.bytes_before,
            after = report.bytes_after,
            millis = report.millis,
            "scavenge finished"
        );
        Ok(report)
    }

    /// Whether an erased stream has events in a segment not yet sealed
    /// (active, or having its index written), which a scavenge skips.
    pub(crate) fn unsealed_erased_events(&self) -> bool {
        let state = self.state.read();
        if state.streams.erased == 0 {
            return false;
        }
        let unsealed = state.streams.streams.values().any(|e| {
            e.erased
                && e.head.last_position.is_some_and(|p| {
                    let (n, _) = crate::format::split_position(p);
                    !state.sealed.contains_key(&n)
                })
        });
        unsealed
    }

    fn scavenge_segments(
        &self,
        cuts: &Cuts,
        segments: &[u32],
        report: &mut ScavengeReport,
    ) -> Result<()> {
        let progress = &self.scavenge_progress;
        for &n in segments {
            let seg = self.state.read().segments.get(&n).cloned();
            report.segments_scanned += 1;
            if let (Some(seg), false) = (seg, cuts.is_empty()) {
                let began = Instant::now();
                let rewrite = plan(&seg, cuts, self.config.max_segment_bytes)?;
                if !rewrite.patches.is_empty() {
                    self.rewrite_segment(&seg, rewrite, report)?;
                }
                self.throttle(&seg, began);
            }
            progress.segments_done.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Replaces segment `seg` by its scavenged, compressed form, then
    /// rebuilds its index.
    fn rewrite_segment(
        &self,
        seg: &Arc<Segment>,
        rewrite: Rewrite,
        report: &mut ScavengeReport,
    ) -> Result<()> {
        let n = seg.number;
        let io = |what: &str, e: std::io::Error| Error::io(format!("{what} segment {n}"), e);
        let before = self.disk_bytes(seg).map_err(|e| io("sizing", e))?;
        let _exclusive = self.maintenance.lock();
        if !self
            .state
            .read()
            .segments
            .get(&n)
            .is_some_and(|s| Arc::ptr_eq(s, seg))
        {
            // Compressed meanwhile: the next scavenge sees the new form.
            return Ok(());
        }
        // The index and tag files describe the old image: gone first, so a crash
        // from here on leaves none and opening rebuilds it from whichever
        // image survived. Readers keep the one they hold.
        self.remove_index_file(n)
            .map_err(|e| io("removing the index of", e))?;
        let new = self
            .write_scavenged(seg, rewrite.patches)
            .map_err(|e| io("rewriting", e))?;
        let after = self.disk_bytes(&new).map_err(|e| io("sizing", e))?;
        let idx = index_segment(&new, self.config.max_segment_bytes)?;
        let sealed = write_sealed_index(
            self.config.storage.as_ref(),
            &self.config.dir.join("index"),
            n,
            &idx,
        )?;
        self.state.write().sealed.insert(n, Arc::new(sealed));
        let new_len = new.file.len().map_err(|e| io("sizing", e))?;
        let tags = tag_entries_of_segment(&new, new_len, self.config.max_segment_bytes)?;
        write_tag_file(
            self.config.storage.as_ref(),
            &self.config.dir.join("index"),
            n,
            &tags,
        )?;
        report.segments_rewritten += 1;
        report.bytes_before += before;
        report.bytes_after += after;
        report.events_removed += rewrite.events_removed;
        let p = &self.scavenge_progress;
        p.segments_rewritten.fetch_add(1, Ordering::Relaxed);
        p.events_removed
            .fetch_add(rewrite.events_removed, Ordering::Relaxed);
        p.bytes_reclaimed
            .fetch_add(before.saturating_sub(after), Ordering::Relaxed);
        Ok(())
    }

    /// Writes the scavenged image of `seg` compressed, swaps it in for
    /// readers, and removes the plain file it replaces.
    fn write_scavenged(
        &self,
        seg: &Arc<Segment>,
        patches: Vec<patched::Patch>,
    ) -> std::io::Result<Arc<Segment>> {
        let n = seg.number;
        let storage = self.config.storage.as_ref();
        let seg_dir = self.config.dir.join("segments");
        let len = seg.file.len()?;
        let view = PatchedFile::new(seg.file.clone(), patches);
        let packed = seg_dir.join(compressed_file_name(n));
        let tmp = packed.with_extension("zseg.tmp");
        let out = storage.open(&tmp, true)?;
        let cfg = self.config.compression.unwrap_or_default();
        crate::compress::compress_segment(&view, len, out.as_ref(), n, cfg)?;
        drop(out);
        storage.rename(&tmp, &packed)?;
        storage.sync_dir(&seg_dir)?;
        let file = storage.open(&packed, false)?;
        let c = CompressedFile::open(file, n)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))?;
        let new = Arc::new(Segment {
            number: n,
            path: packed.clone(),
            file: Arc::new(c),
            check: seg.check,
            damage: Vec::new(),
        });
        self.state.write().segments.insert(n, new.clone());
        if seg.path != packed {
            // Readers that still hold the plain file keep reading it.
            storage.remove(&seg.path)?;
            storage.sync_dir(&seg_dir)?;
        }
        Ok(new)
    }

    /// Removes segment `n`'s index and tag files, if it has them, durably.
    fn remove_index_file(&self, n: u32) -> std::io::Result<()> {
        let storage = self.config.storage.as_ref();
        let idx_dir = self.config.dir.join("index");
        remove_tag_file(storage, &idx_dir, n)?;
        let path = idx_dir.join(index_file_name(n));
        if !storage.exists(&path) {
            return Ok(());
        }
        storage.remove(&path)?;
        storage.sync_dir(&idx_dir)
    }

    /// Bytes segment `seg` takes on disk.
    fn disk_bytes(&self, seg: &Segment) -> std::io::Result<u64> {
        self.config.storage.open(&seg.path, false)?.len()
    }

    /// Sleeps so that reading `seg` took at least its share of
    /// `scavenge_bytes_per_second`.
    fn throttle(&self, seg: &Segment, began: Instant) {
        let rate = self.config.scavenge_bytes_per_second;
        let Ok(len) = seg.file.len() else {
            return;
        };
        if rate == 0 {
            return;
        }
        let due = Duration::from_secs_f64(len as f64 / rate as f64);
        if let Some(rest) = due.checked_sub(began.elapsed()) {
            std::thread::sleep(rest);
        }
    }
}
