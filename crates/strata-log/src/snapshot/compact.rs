//! Compaction of snapshot files: a file whose dead records pass the
//! thresholds is rewritten with only what replay still needs, atomically and
//! under the same number; a file with nothing left is removed.

use std::io;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use strata_core::{Error, Result, StreamId, Version};

use super::dir::{SnapshotDir, Writer};
use super::index::FileInfo;
use super::layout::tmp_name;
use super::record::{align_u64, encode_file_header, RecordKind, SNAPSHOT_FILE_HEADER_BYTES};
use super::scan::{scan_records, Scanned};
use crate::io::StorageFile;

/// How much compaction copies at a time.
const COMPACT_COPY_CHUNK_BYTES: usize = 4 << 20;

/// The file being compacted, as the index knows it.
pub(super) struct Target {
    n: u32,
    path: PathBuf,
    handle: Arc<dyn StorageFile>,
    /// Whether an older file exists, whose dead snapshots the tombstones of
    /// this one still hide.
    has_older: bool,
    /// Snapshots the index places in this file.
    live_count: usize,
    /// The file's size on disk.
    phys: u64,
}

/// What a rewrite keeps, found by scanning the file.
#[derive(Default)]
pub(super) struct Plan {
    /// (old offset, padded length) of each kept record, in file order.
    keep: Vec<(u64, u64)>,
    /// Live snapshots moved: (stream, version, index into `keep`).
    moves: Vec<(StreamId, Version, usize)>,
    kept_live_bytes: u64,
    kept_tombstone_bytes: u64,
    /// Records of the stream being erased found in the file (all dropped).
    pub(super) erased_records: usize,
}

impl Plan {
    /// The offset of each kept record in the new file, and its length.
    fn new_layout(&self) -> (Vec<u64>, u64) {
        let mut new_offsets = Vec::with_capacity(self.keep.len());
        let mut new_len = SNAPSHOT_FILE_HEADER_BYTES as u64;
        for &(_, padded) in &self.keep {
            new_offsets.push(new_len);
            new_len += padded;
        }
        (new_offsets, new_len)
    }

    /// Runs of kept records that are contiguous in the old file, each copied
    /// as one: (old offset, length).
    fn runs(&self) -> Vec<(u64, u64)> {
        let mut runs: Vec<(u64, u64)> = Vec::new();
        for &(offset, padded) in &self.keep {
            match runs.last_mut() {
                Some((start, len)) if *start + *len == offset => *len += padded,
                _ => runs.push((offset, padded)),
            }
        }
        runs
    }
}

impl SnapshotDir {
    /// Whether file `n` should be compacted now.
    fn is_due(&self, f: &FileInfo, is_oldest: bool, is_active: bool) -> bool {
        let r = f.reclaimable(is_oldest);
        if r == 0 {
            return false;
        }
        let all_dead = r == f.len.saturating_sub(SNAPSHOT_FILE_HEADER_BYTES as u64);
        if all_dead && !is_active {
            return true;
        }
        r >= self.options.compact_min_reclaimable_bytes
            && r * 100 >= f.len * self.options.compact_reclaimable_percent
    }

    /// Compacts files that are due: at most one after a write (bounding the
    /// write's latency), all of them (oldest first) when `all`. A failed
    /// compaction is logged and retried later; only a failure that leaves
    /// the directory uncertain (and poisons the store) is returned.
    pub(super) fn compact_due(&self, w: &mut Writer, all: bool) -> Result<()> {
        if w.appended_bytes < w.compact_retry_at_bytes {
            return Ok(());
        }
        let numbers: Vec<u32> = self.index.lock().files.keys().copied().collect();
        for n in numbers {
            let due = {
                let s = self.index.lock();
                let oldest = s.files.keys().next().copied();
                s.files
                    .get(&n)
                    .is_some_and(|f| self.is_due(f, oldest == Some(n), n == w.active))
            };
            if !due {
                continue;
            }
            if let Err(error) = self.compact_file(w, n) {
                if w.poisoned.is_some() {
                    return Err(error);
                }
                tracing::warn!(%error, file = n, "snapshot compaction failed; will retry later");
                w.compact_retry_at_bytes =
                    w.appended_bytes + self.options.compact_min_reclaimable_bytes;
                return Ok(());
            }
            if !all {
                break;
            }
        }
        Ok(())
    }

    /// Compacts every file with reclaimable bytes, whatever the thresholds.
    pub(super) fn compact_all(&self) -> Result<()> {
        let mut w = self.writer.lock();
        w.check_writable()?;
        let numbers: Vec<u32> = self.index.lock().files.keys().copied().collect();
        for n in numbers {
            let reclaimable = {
                let s = self.index.lock();
                let oldest = s.files.keys().next().copied();
                s.files
                    .get(&n)
                    .map_or(0, |f| f.reclaimable(oldest == Some(n)))
            };
            if reclaimable > 0 {
                self.compact_file(&mut w, n)?;
            }
        }
        Ok(())
    }

    /// Rewrites file `n` with only its live records and the tombstones that
    /// still guard older files, atomically and under the same number; or
    /// removes it if nothing is left and it is not the active file.
    pub(super) fn compact_file(&self, w: &mut Writer, n: u32) -> Result<()> {
        let target = self.target(n)?;
        let plan = self.plan(&target, None)?;
        self.apply(w, target, plan)
    }

    /// Rewrites (or removes) the target file as `plan` says.
    pub(super) fn apply(&self, w: &mut Writer, target: Target, plan: Plan) -> Result<()> {
        let started = Instant::now();
        let n = target.n;
        if plan.keep.is_empty() && n != w.active {
            return self.remove_dead_file(w, &target);
        }
        let (new_offsets, new_len) = plan.new_layout();
        let tmp_path = self.dir.join(tmp_name(n));
        let new_handle = match self.rewrite(&target, &plan, &tmp_path, new_len) {
            Ok(h) => h,
            Err(e) => {
                let _ = self.storage.remove(&tmp_path);
                return Err(Error::io(
                    format!("compacting {}", target.path.display()),
                    e,
                ));
            }
        };
        self.install(&target, &plan, &new_offsets, new_handle, new_len);
        // Appends now go to the new file; if its rename were lost they
        // would be lost with it.
        self.sync_dir_or_poison(w)?;
        self.compactions.fetch_add(1, Ordering::Relaxed);
        tracing::info!(
            file = %target.path.display(),
            before_bytes = target.phys,
            after_bytes = new_len,
            snapshots = target.live_count,
            took_ms = started.elapsed().as_millis() as u64,
            "compacted a snapshot file"
        );
        Ok(())
    }

    /// File `n` as the index knows it, and its size on disk.
    pub(super) fn target(&self, n: u32) -> Result<Target> {
        let (path, handle, has_older, live_count) = {
            let s = self.index.lock();
            let f = s
                .files
                .get(&n)
                .ok_or_else(|| Error::Backend(format!("snapshot file {n} is not open")))?;
            (
                f.path.clone(),
                Arc::clone(&f.handle),
                s.files.range(..n).next().is_some(),
                f.live_count,
            )
        };
        let phys = handle
            .len()
            .map_err(|e| Error::io(format!("sizing {}", path.display()), e))?;
        Ok(Target {
            n,
            path,
            handle,
            has_older,
            live_count,
            phys,
        })
    }

    /// Scans the file for what to keep: the records the index points at, and
    /// the tombstones if an older file exists. Every record of stream
    /// `erased` (dead snapshots and tombstones included) goes: erasing
    /// rewrites the files oldest first, so no older file still holds a
    /// snapshot of it that its tombstones would have to hide.
    pub(super) fn plan(&self, t: &Target, erased: Option<&str>) -> Result<Plan> {
        let mut plan = Plan::default();
        scan_records(t.handle.as_ref(), t.phys, false, |item| {
            let Scanned::Record { offset, header: h } = item else {
                return;
            };
            let padded = align_u64(h.record_len as u64);
            if erased == Some(h.stream) {
                plan.erased_records += 1;
                return;
            }
            match h.kind {
                RecordKind::Snapshot => {
                    let key = self.index.lock().live_key(h.stream, h.version, t.n, offset);
                    if let Some(key) = key {
                        plan.moves.push((key, h.version, plan.keep.len()));
                        plan.keep.push((offset, padded));
                        plan.kept_live_bytes += padded;
                    }
                }
                RecordKind::Tombstone => {
                    if t.has_older {
                        plan.keep.push((offset, padded));
                        plan.kept_tombstone_bytes += padded;
                    }
                }
            }
        })
        .map_err(|e| Error::io(format!("scanning {}", t.path.display()), e))?;
        if plan.moves.len() != t.live_count {
            // Never expected: the index points at records the scan did not
            // find. Rewriting would leave it pointing at the wrong bytes.
            return Err(Error::Corrupt {
                location: t.path.display().to_string(),
                reason: format!(
                    "the index holds {} snapshots in this file but a scan finds {}; \
                     compaction skipped",
                    t.live_count,
                    plan.moves.len()
                ),
            });
        }
        Ok(plan)
    }

    /// Removes a file none of whose records is needed any more.
    fn remove_dead_file(&self, w: &mut Writer, t: &Target) -> Result<()> {
        self.storage
            .remove(&t.path)
            .map_err(|e| Error::io(format!("removing {}", t.path.display()), e))?;
        self.index.lock().files.remove(&t.n);
        // If the removal is lost, an older file could come back after later
        // compactions dropped the tombstones guarding it.
        self.sync_dir_or_poison(w)?;
        self.compactions.fetch_add(1, Ordering::Relaxed);
        tracing::info!(file = %t.path.display(), freed_bytes = t.phys, "removed a dead snapshot file");
        Ok(())
    }

    /// Writes the kept records to `tmp_path`, fsyncs it, reads it back and
    /// renames it over the file. Returns the new file.
    fn rewrite(
        &self,
        t: &Target,
        plan: &Plan,
        tmp_path: &std::path::Path,
        new_len: u64,
    ) -> io::Result<Arc<dyn StorageFile>> {
        let tmp = self.storage.open(tmp_path, true)?;
        tmp.set_len(0)?;
        tmp.write_all_at(&encode_file_header(t.n), 0)?;
        let out_at = copy_runs(t, &plan.runs(), tmp.as_ref())?;
        debug_assert_eq!(out_at, new_len);
        tmp.sync_data()?;
        check_read_back(tmp.as_ref(), new_len, plan.keep.len())?;
        self.storage.rename(tmp_path, &t.path)?;
        Ok(tmp)
    }

    /// Points the index at the new file and the kept records' new offsets.
    fn install(
        &self,
        t: &Target,
        plan: &Plan,
        new_offsets: &[u64],
        new_handle: Arc<dyn StorageFile>,
        new_len: u64,
    ) {
        let mut s = self.index.lock();
        for (key, version, ki) in &plan.moves {
            let new_offset = new_offsets.get(*ki).copied();
            if let (Some(e), Some(new_offset)) = (
                s.streams
                    .get_mut(key)
                    .and_then(|list| list.iter_mut().find(|e| e.version == *version)),
                new_offset,
            ) {
                debug_assert_eq!(e.file, t.n);
                e.offset = new_offset;
            }
        }
        s.files.insert(
            t.n,
            FileInfo {
                path: t.path.clone(),
                handle: new_handle,
                len: new_len,
                live_bytes: plan.kept_live_bytes,
                live_count: t.live_count,
                tombstone_bytes: plan.kept_tombstone_bytes,
            },
        );
    }
}

/// Copies `runs` of the target file, in order, after the header of `out`.
/// Returns where the copy ends.
fn copy_runs(t: &Target, runs: &[(u64, u64)], out: &dyn StorageFile) -> io::Result<u64> {
    let mut out_at = SNAPSHOT_FILE_HEADER_BYTES as u64;
    let mut buf = Vec::new();
    for &(start, len) in runs {
        let mut done = 0u64;
        while done < len {
            let chunk = (len - done).min(COMPACT_COPY_CHUNK_BYTES as u64) as usize;
            buf.clear();
            buf.resize(chunk, 0);
            // The padding of a file's last record may be missing on disk.
            let avail = t.phys.saturating_sub(start + done).min(chunk as u64) as usize;
            let present = buf
                .get_mut(..avail)
                .ok_or_else(|| io::Error::other("compaction copy out of range"))?;
            t.handle.read_exact_at(present, start + done)?;
            out.write_all_at(&buf, out_at)?;
            out_at += chunk as u64;
            done += chunk as u64;
        }
    }
    Ok(out_at)
}

/// Reads back what will replace the file: exactly `expected` whole records.
fn check_read_back(file: &dyn StorageFile, len: u64, expected: usize) -> io::Result<()> {
    let mut records = 0usize;
    let mut damaged = false;
    let torn = scan_records(file, len, false, |item| match item {
        Scanned::Record { .. } => records += 1,
        Scanned::Damaged { .. } => damaged = true,
    })?;
    if records != expected || damaged || torn.is_some() {
        return Err(io::Error::other(format!(
            "the rewritten file reads back {records} records, expected {expected}"
        )));
    }
    Ok(())
}
