//! Tag files of sealed segments: building their entries from a segment,
//! writing them, and loading them when a store opens.

use std::path::Path;
use std::sync::atomic::Ordering;

use tracing::{info, warn};

use strata_core::{Error, Result};

use crate::background::indexing::walk_frames;
use crate::config::LogConfig;
use crate::dcb::TagIndex;
use crate::format::record_offsets;
use crate::format::{position_of, FrameKind, RecordView, FRAME_HEADER_BYTES};
use crate::index::tags::{encode_tag_file, walk_tag_file, TagEntry, MAX_TAG_FILE_BYTES};
use crate::io::{read_file, Storage};
use crate::segment::{list_segment_numbers, tag_file_name, Segment};
use crate::state::OpenStore;

/// The tag entries of segment `seg` up to offset `limit`: every event of a
/// user stream it holds (removed records and gap frames hold none),
/// positions ascending.
pub(crate) fn tag_entries_of_segment(
    seg: &Segment,
    limit: u64,
    max_segment_bytes: u64,
) -> Result<Vec<TagEntry>> {
    let n = seg.number;
    let mut out = Vec::new();
    walk_frames(seg, limit, max_segment_bytes, |offset, kind, body, _, _| {
        if kind == FrameKind::Append {
            let body_start = offset + FRAME_HEADER_BYTES as u64;
            for (rec_off, rel) in record_offsets(body, body_start)? {
                let view = RecordView::parse_in_verified_frame(&body[rel..])?;
                if view.is_removed() || view.stream.starts_with('$') {
                    continue;
                }
                out.push(TagEntry {
                    position: position_of(n, rec_off).0,
                    event_type: view.event_type.to_owned(),
                    tags: view.tags()?,
                });
            }
        }
        Ok(true)
    })?;
    Ok(out)
}

/// Writes sealed segment `n`'s tag file durably (a temporary file synced,
/// renamed over, the directory synced).
pub(crate) fn write_tag_file(
    storage: &dyn Storage,
    idx_dir: &Path,
    n: u32,
    entries: &[TagEntry],
) -> Result<()> {
    let path = idx_dir.join(tag_file_name(n));
    let tmp = path.with_extension("tags.tmp");
    let io = |e: std::io::Error| Error::io(format!("writing {}", path.display()), e);
    let f = storage.open(&tmp, true).map_err(io)?;
    f.set_len(0).map_err(io)?;
    f.write_all_at(&encode_tag_file(n, entries), 0)
        .map_err(io)?;
    f.sync_data().map_err(io)?;
    drop(f);
    storage.rename(&tmp, &path).map_err(io)?;
    storage.sync_dir(idx_dir).map_err(io)
}

/// Sealed segment `n`'s tag file's bytes, if it is present and not over
/// the size limit; `Err` says why not (a missing file is `Ok(None)`).
pub(crate) fn read_tag_file(
    storage: &dyn Storage,
    idx_dir: &Path,
    n: u32,
) -> std::result::Result<Option<Vec<u8>>, String> {
    let path = idx_dir.join(tag_file_name(n));
    if !storage.exists(&path) {
        return Ok(None);
    }
    let f = storage.open(&path, false).map_err(|e| e.to_string())?;
    let len = f.len().map_err(|e| e.to_string())?;
    if len > MAX_TAG_FILE_BYTES {
        return Err(format!(
            "{len} bytes, over the limit of {MAX_TAG_FILE_BYTES}"
        ));
    }
    drop(f);
    read_file(storage, &path)
        .map(Some)
        .map_err(|e| e.to_string())
}

/// Removes sealed segment `n`'s tag file, if it has one, durably.
pub(crate) fn remove_tag_file(
    storage: &dyn Storage,
    idx_dir: &Path,
    n: u32,
) -> std::io::Result<()> {
    let path = idx_dir.join(tag_file_name(n));
    if !storage.exists(&path) {
        return Ok(());
    }
    storage.remove(&path)?;
    storage.sync_dir(idx_dir)
}

impl OpenStore {
    /// Builds sealed segment `n`'s tag file from the segment and writes it;
    /// returns its entries.
    pub(crate) fn write_segment_tags(&self, n: u32) -> Result<Vec<TagEntry>> {
        let seg = self
            .state
            .read()
            .segments
            .get(&n)
            .cloned()
            .ok_or_else(|| Error::Backend(format!("no segment {n} to write the tags of")))?;
        let len = seg
            .file
            .len()
            .map_err(|e| Error::io(format!("sizing {}", seg.path.display()), e))?;
        let entries = tag_entries_of_segment(&seg, len, self.config.max_segment_bytes)?;
        write_tag_file(
            self.config.storage.as_ref(),
            &self.config.dir.join("index"),
            n,
            &entries,
        )?;
        Ok(entries)
    }
}

/// Sealed segments' tag files, loaded into a tag index of their own while
/// recovery runs on another thread.
#[derive(Default)]
pub(crate) struct PreloadedTags {
    index: TagIndex,
    /// The segments loaded, ascending: a run from the first.
    segments: Vec<u32>,
    events: u64,
}

/// Loads the tag files of the store's segments, from the first on, into a
/// new tag index, stopping at the first missing or unsound one and before
/// the last segment (the active one, or about to be). Reads only: a store
/// that opens runs it beside recovery, and
/// [`OpenStore::load_tag_index`] goes on from where it stopped.
pub(crate) fn preload_sealed_tags(config: &LogConfig) -> PreloadedTags {
    let storage = config.storage.as_ref();
    let numbers = list_segment_numbers(storage, &config.dir.join("segments")).unwrap_or_default();
    let idx_dir = config.dir.join("index");
    let mut out = PreloadedTags::default();
    for &n in numbers.iter().take(numbers.len().saturating_sub(1)) {
        match add_tag_file(&mut out.index, storage, &idx_dir, n) {
            Ok(Some(count)) => {
                out.segments.push(n);
                out.events += count;
            }
            Ok(None) | Err(_) => break,
        }
    }
    out
}

/// Adds sealed segment `n`'s events to `index` straight from its tag file,
/// without building an entry per event; `Ok(None)` when the file is
/// missing, `Err` saying why it is unsound. Events a file handed over
/// before a check failed stay: the segment's rebuild then adds only later
/// positions.
fn add_tag_file(
    index: &mut TagIndex,
    storage: &dyn Storage,
    idx_dir: &Path,
    n: u32,
) -> std::result::Result<Option<u64>, String> {
    let Some(bytes) = read_tag_file(storage, idx_dir, n)? else {
        return Ok(None);
    };
    // The file's type numbers, interned once each.
    let mut type_ids: Vec<Option<u32>> = Vec::new();
    let count = walk_tag_file(n, &bytes, |e| {
        let slot = e.type_number as usize;
        if type_ids.len() <= slot {
            type_ids.resize(slot + 1, None);
        }
        let id = match type_ids.get_mut(slot) {
            Some(Some(id)) => *id,
            Some(none) => *none.insert(index.type_id(e.event_type)),
            None => index.type_id(e.event_type),
        };
        index.add_typed(e.position, id, e.tags);
    })
    .map_err(|e| e.to_string())?;
    Ok(Some(count as u64))
}

impl OpenStore {
    /// Fills the tag index when the store opens, before the writer starts:
    /// each sealed segment's entries from its tag file (a missing or unsound
    /// one is rebuilt from the segment and written again), then the active
    /// segment's events up to its visible end. A store opened read-only over
    /// damage scans `$all` instead, and a scan that meets damage leaves the
    /// index marked incomplete.
    /// Segments whose tag files `preloaded` holds (see
    /// [`preload_sealed_tags`]) are not read again, if recovery left them
    /// sealed.
    pub(crate) fn load_tag_index(&self, preloaded: Option<PreloadedTags>) {
        if self.damaged.is_some() {
            return self.scan_tag_index(strata_core::Position::START);
        }
        let (segments, active, visible_end) = {
            let state = self.state.read();
            (
                state.segments.clone(),
                state.active_segment,
                state.visible_end,
            )
        };
        let storage = self.config.storage.as_ref();
        let idx_dir = self.config.dir.join("index");
        let max = self.config.max_segment_bytes;
        let preloaded = preloaded.filter(|p| {
            p.segments
                .iter()
                .all(|n| *n != active && segments.contains_key(n))
        });
        let skip = match preloaded {
            Some(p) => {
                self.metrics
                    .tag_events_loaded
                    .fetch_add(p.events, Ordering::Relaxed);
                self.state.write().tags = p.index;
                p.segments
            }
            None => Vec::new(),
        };
        for (&n, seg) in &segments {
            if skip.binary_search(&n).is_ok() {
                continue;
            }
            if n != active {
                let mut state = self.state.write();
                match add_tag_file(&mut state.tags, storage, &idx_dir, n) {
                    Ok(Some(count)) => {
                        self.metrics
                            .tag_events_loaded
                            .fetch_add(count, Ordering::Relaxed);
                        continue;
                    }
                    Ok(None) => {}
                    Err(reason) => {
                        warn!(segment = n, reason = %reason, "tag file unusable; rebuilding it from the segment");
                    }
                }
            }
            let entries = if n == active {
                tag_entries_of_segment(seg, visible_end, max).inspect(|e| {
                    self.metrics
                        .tag_events_scanned
                        .fetch_add(e.len() as u64, Ordering::Relaxed);
                })
            } else {
                self.rebuilt_sealed_tags(storage, &idx_dir, n)
            };
            match entries {
                Ok(entries) => {
                    let mut state = self.state.write();
                    for e in entries {
                        state.tags.add(e.position, &e.event_type, &e.tags);
                    }
                }
                Err(e) => {
                    warn!(segment = n, error = %e, "the tag index stops at damage; conditional appends and query reads are refused");
                    self.state.write().tags.mark_incomplete(e.to_string());
                    return;
                }
            }
        }
        info!(
            loaded = self.metrics.tag_events_loaded.load(Ordering::Relaxed),
            scanned = self.metrics.tag_events_scanned.load(Ordering::Relaxed),
            "tag index loaded"
        );
    }

    /// Sealed segment `n`'s tag entries, rebuilt from the segment (and its
    /// tag file written again): its file was missing or unsound.
    fn rebuilt_sealed_tags(
        &self,
        storage: &dyn Storage,
        idx_dir: &Path,
        n: u32,
    ) -> Result<Vec<TagEntry>> {
        let seg = self
            .state
            .read()
            .segments
            .get(&n)
            .cloned()
            .ok_or_else(|| Error::Backend(format!("no segment {n} to read the tags of")))?;
        let len = seg
            .file
            .len()
            .map_err(|e| Error::io(format!("sizing {}", seg.path.display()), e))?;
        let entries = tag_entries_of_segment(&seg, len, self.config.max_segment_bytes)?;
        if let Err(e) = write_tag_file(storage, idx_dir, n, &entries) {
            // The index in memory is whole; the next open tries again.
            warn!(segment = n, error = %e, "writing a rebuilt tag file failed");
        }
        self.metrics
            .tag_events_scanned
            .fetch_add(entries.len() as u64, Ordering::Relaxed);
        self.metrics
            .tag_segments_rebuilt
            .fetch_add(1, Ordering::Relaxed);
        Ok(entries)
    }
}
