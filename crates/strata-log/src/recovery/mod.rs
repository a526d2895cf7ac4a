//! Opening a store directory: the lock, the segments, the stream checkpoint,
//! replay of the log after it, rebuilt indexes, and the torn-tail rule
//! ([`tail`]).

mod damaged;
mod metadata;
mod replay;
mod segments;
mod tail;

use tail::Tail;

use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use strata_core::{Error, Position, Result};
use tracing::{info, warn};

use crate::background::indexing::write_sealed_index;
use crate::background::tagging::{preload_sealed_tags, PreloadedTags};
use crate::config::LogConfig;
use crate::format::position_of;
use crate::index::{ActiveIndex, SealedIndex};
use crate::io::{read_file, try_lock_file, Storage};
use crate::read::at::read_events_at;
use crate::recovery::replay::{Replay, SegmentReplay};
use crate::segment::{index_file_name, scan_frames, DamagedBytes, Segment, FIRST_FRAME_OFFSET};
use crate::state::location;
use crate::state::State;
use crate::streams::{StreamIndex, STREAM_CHECKPOINT_FILE};

/// File name of the directory lock.
pub const LOCK_FILE: &str = "LOCK";

/// What recovery hands to the open store.
pub(crate) struct Recovered {
    /// The state readers and the writer start from.
    pub(crate) state: State,
    /// The newest `recorded_at` in the log (0 if none), so the clock never
    /// steps back.
    pub(crate) last_recorded_at: i64,
    /// Sequence number of the active segment's next frame (format 2; 0 in
    /// a format-1 segment). Everything before it is durable: recovery
    /// synced the active segment.
    pub(crate) next_frame_seq: u32,
    /// The damage a store opened read-only has, if any.
    pub(crate) damaged: Option<Damaged>,
}

/// Creates the store's directories and takes its lock.
pub(crate) fn lock_dir(config: &LogConfig) -> Result<File> {
    let storage = config.storage.as_ref();
    let dir = &config.dir;
    let io = |what: &str, e: std::io::Error| Error::io(format!("{what} in {}", dir.display()), e);
    storage
        .create_dir_all(&dir.join("segments"))
        .map_err(|e| io("creating segments/", e))?;
    storage
        .create_dir_all(&dir.join("index"))
        .map_err(|e| io("creating index/", e))?;
    try_lock_file(&dir.join(LOCK_FILE))
        .map_err(|e| io("opening LOCK", e))?
        .ok_or_else(|| {
            Error::invalid(format!(
                "{} is in use by another process (LOCK is held)",
                dir.display()
            ))
        })
}

/// [`recover`], with the sealed segments' tag files loaded on a second
/// thread meanwhile (see [`preload_sealed_tags`]): on a large store the two
/// take about as long each. A store opened read-only over damage rebuilds
/// its tag index by a scan instead, so nothing is preloaded for it.
pub(crate) fn recover_and_preload_tags(
    config: &LogConfig,
) -> (Result<Recovered>, Option<PreloadedTags>) {
    if config.allow_damaged {
        return (recover(config), None);
    }
    std::thread::scope(|scope| {
        let preload = std::thread::Builder::new()
            .name("strata-tag-preload".into())
            .spawn_scoped(scope, || preload_sealed_tags(config));
        let recovered = recover(config);
        let preloaded = match preload {
            Ok(handle) => handle.join().ok(),
            Err(e) => {
                warn!(error = %e, "cannot start the tag preload thread; tag files load after recovery");
                None
            }
        };
        (recovered, preloaded)
    })
}

/// Opens every segment, loads or rebuilds indexes, replays the log after the
/// stream checkpoint and cuts a torn tail.
pub(crate) fn recover(config: &LogConfig) -> Result<Recovered> {
    let storage = config.storage.as_ref();
    match recover_with(config, storage, true)? {
        Some(r) => Ok(r),
        None => {
            warn!("the stream checkpoint covers more than the log holds; rebuilding the stream index from the log");
            recover_with(config, storage, false)?.ok_or_else(|| {
                Error::Backend("recovery without a checkpoint asked for a checkpoint".into())
            })
        }
    }
}

/// Recovery proper; `None` when the checkpoint turns out to cover bytes the
/// log no longer has (only possible if something other than a crash changed
/// the files), so the caller retries without it.
fn recover_with(
    config: &LogConfig,
    storage: &dyn Storage,
    use_checkpoint: bool,
) -> Result<Option<Recovered>> {
    let seg_dir = config.dir.join("segments");
    let read_only = config.allow_damaged;
    let numbers = segments::segment_numbers(storage, &seg_dir, read_only)?;
    let mut segments = segments::open_segments(storage, &seg_dir, &numbers, read_only)?;
    let first = *numbers.first().unwrap_or(&0);
    let (streams, covers) = if use_checkpoint {
        load_stream_checkpoint(&config.dir, storage, &segments, first)
    } else {
        (StreamIndex::default(), (first, 0))
    };
    let mut rec = Recovering {
        config,
        storage,
        covers,
        active_no: *numbers.last().unwrap_or(&0),
        replay: Replay {
            streams,
            head: Position::START,
            last_recorded_at: i64::MIN,
            holes: Vec::new(),
        },
        sealed: BTreeMap::new(),
        active: ActiveIndex::default(),
        transient: BTreeMap::new(),
        visible_end: FIRST_FRAME_OFFSET,
        next_frame_seq: 1,
        damage: BTreeMap::new(),
    };
    for (&n, seg) in &segments {
        if rec.segment(n, seg)? == Next::WithoutCheckpoint {
            return Ok(None);
        }
    }
    if use_checkpoint && rec.checkpoint_outruns_log() {
        return Ok(None);
    }
    let damaged = mark_damage(&mut segments, std::mem::take(&mut rec.damage))?;
    metadata::load_checkpointed_metadata(&mut rec.replay.streams, &segments, read_only)?;
    let last_recorded_at = if damaged.is_some() {
        // Nothing is written: the clock does not matter.
        rec.replay.last_recorded_at.max(0)
    } else {
        newest_recorded_at(&mut rec.replay, &segments)?
    };
    info!(
        dir = %config.dir.display(),
        segments = segments.len(),
        streams = rec.replay.streams.streams.len(),
        head = rec.replay.head.0,
        "log store opened"
    );
    Ok(Some(Recovered {
        state: State {
            streams: rec.replay.streams,
            active: rec.active,
            active_segment: rec.active_no,
            sealed: rec.sealed,
            sealing: rec.transient,
            segments,
            visible_end: rec.visible_end,
            head: rec.replay.head,
            tags: Default::default(),
        },
        last_recorded_at,
        next_frame_seq: rec.next_frame_seq,
        damaged,
    }))
}

/// Damage a store opened read-only was found to have.
#[derive(Clone, Debug)]
pub(crate) struct Damaged {
    /// File and offset of the first damaged frame.
    pub(crate) location: String,
    /// What is wrong with it.
    pub(crate) reason: String,
    /// How many damaged runs of bytes the log has.
    pub(crate) runs: usize,
}

/// Hands each segment its damaged runs; the summary of them all, if any.
fn mark_damage(
    segments: &mut BTreeMap<u32, Arc<Segment>>,
    damage: BTreeMap<u32, Vec<DamagedBytes>>,
) -> Result<Option<Damaged>> {
    let mut summary: Option<Damaged> = None;
    for (n, runs) in damage {
        let Some(seg) = segments.get_mut(&n).and_then(Arc::get_mut) else {
            return Err(Error::Backend(format!(
                "segment {n} is shared while recovery marks its damage"
            )));
        };
        let first = runs
            .first()
            .map(|d| (location(&seg.path, d.start), d.reason.clone()));
        match (&mut summary, first) {
            (Some(s), _) => s.runs += runs.len(),
            (None, Some((location, reason))) => {
                summary = Some(Damaged {
                    location,
                    reason,
                    runs: runs.len(),
                })
            }
            (None, None) => {}
        }
        for d in &runs {
            warn!(segment = n, start = d.start, end = d.end, reason = %d.reason, "damaged bytes; the store is read-only and reads of them fail");
        }
        seg.damage = runs;
    }
    Ok(summary)
}

/// What recovery has built so far.
struct Recovering<'a> {
    config: &'a LogConfig,
    storage: &'a dyn Storage,
    /// What the stream checkpoint covers: (segment, offset).
    covers: (u32, u64),
    active_no: u32,
    replay: Replay,
    sealed: BTreeMap<u32, Arc<SealedIndex>>,
    active: ActiveIndex,
    /// Indexes kept in memory only: of damaged segments of a store opened
    /// read-only (no index file is written for them).
    transient: BTreeMap<u32, Arc<ActiveIndex>>,
    visible_end: u64,
    next_frame_seq: u32,
    /// Each segment's damaged runs (read-only opening).
    damage: BTreeMap<u32, Vec<DamagedBytes>>,
}

/// What recovery does after a segment.
#[derive(PartialEq, Eq)]
enum Next {
    /// Goes on with the next segment.
    Segment,
    /// Starts again without the stream checkpoint.
    WithoutCheckpoint,
}

impl Recovering<'_> {
    /// Whether a stream of the checkpoint holds a position at or past the
    /// end of the log: its events were published, so synced, before it was
    /// written; only a change to the files from outside leaves it so.
    fn checkpoint_outruns_log(&self) -> bool {
        let end = position_of(self.active_no, self.visible_end).0;
        let outruns = self
            .replay
            .streams
            .newest_position()
            .is_some_and(|p| p >= end);
        if outruns {
            warn!("the stream checkpoint holds events past the end of the log; rebuilding the stream index from the log");
        }
        outruns
    }

    /// Loads or replays segment `n`.
    fn segment(&mut self, n: u32, seg: &Segment) -> Result<Next> {
        let (config, storage) = (self.config, self.storage);
        let read_only = config.allow_damaged;
        let is_active = n == self.active_no;
        if !seg.damage.is_empty() {
            // Could not even be opened: nothing in it is read.
            return Ok(self.unreadable(n, seg));
        }
        let loaded = if is_active {
            None
        } else {
            load_sealed_index(&config.dir.join("index"), storage, n)
        };
        if n < self.covers.0 && !read_only {
            if let Some(i) = loaded {
                // Nothing to replay, nothing to rebuild.
                self.sealed.insert(n, Arc::new(i));
                return Ok(Next::Segment);
            }
        }
        let mut seg_replay = SegmentReplay {
            segment: n,
            streams_from: match n.cmp(&self.covers.0) {
                std::cmp::Ordering::Less => u64::MAX,
                std::cmp::Ordering::Equal => self.covers.1,
                std::cmp::Ordering::Greater => 0,
            },
            index: (loaded.is_none() || read_only).then(ActiveIndex::default),
        };
        let (tail, damage) =
            replay_segment(config, seg, &mut self.replay, &mut seg_replay, is_active)?;
        let idx = seg_replay.index.unwrap_or_default();
        let damaged = !damage.is_empty();
        if damaged {
            self.damage.insert(n, damage);
        }
        if is_active {
            return self.active_tail(seg, tail, idx, read_only);
        }
        match loaded {
            _ if damaged => {
                // Its index file (if any) may point into the damage.
                self.transient.insert(n, Arc::new(idx));
            }
            Some(i) => {
                self.sealed.insert(n, Arc::new(i));
            }
            None => {
                let s = write_sealed_index(storage, &config.dir.join("index"), n, &idx)?;
                self.sealed.insert(n, Arc::new(s));
            }
        }
        Ok(Next::Segment)
    }

    /// A segment that could not be opened (read-only opening): all damage.
    fn unreadable(&mut self, n: u32, seg: &Segment) -> Next {
        self.replay.hole_at(position_of(n, FIRST_FRAME_OFFSET).0);
        self.damage.insert(n, seg.damage.clone());
        if n == self.active_no {
            self.visible_end = FIRST_FRAME_OFFSET;
            self.next_frame_seq = 0;
        } else {
            self.transient.insert(n, Arc::new(ActiveIndex::default()));
        }
        Next::Segment
    }

    /// The active segment's tail: where appends go on.
    fn active_tail(
        &mut self,
        seg: &Segment,
        tail: Tail,
        idx: ActiveIndex,
        read_only: bool,
    ) -> Result<Next> {
        self.visible_end = tail.end;
        self.next_frame_seq = if seg.check.sequenced() {
            tail.next_seq
        } else {
            0
        };
        if !read_only {
            // What survived may still be only in the page cache (a killed
            // process, a lazy durability mode): make it durable, so frames
            // written from now on can say everything before them is.
            seg.file
                .sync_data()
                .map_err(|e| Error::io(format!("syncing {}", seg.path.display()), e))?;
        }
        if seg.number == self.covers.0 && self.covers.1 > self.visible_end {
            return Ok(Next::WithoutCheckpoint);
        }
        self.active = idx;
        Ok(Next::Segment)
    }
}

/// Scans one segment, replaying its frames, and applies the torn-tail rule.
/// Returns where its valid frames end and, in a store opened read-only over
/// damage, the damaged runs of bytes it stepped over.
fn replay_segment(
    config: &LogConfig,
    seg: &Segment,
    replay: &mut Replay,
    seg_replay: &mut SegmentReplay,
    is_active: bool,
) -> Result<(Tail, Vec<DamagedBytes>)> {
    let len = seg
        .file
        .len()
        .map_err(|e| Error::io(format!("sizing {}", seg.path.display()), e))?;
    if config.allow_damaged {
        return damaged::replay_past_damage(
            seg,
            len,
            is_active,
            config.max_segment_bytes,
            replay,
            seg_replay,
        );
    }
    let end = scan_frames(
        seg.file.as_ref(),
        seg.check,
        FIRST_FRAME_OFFSET,
        len,
        config.max_segment_bytes,
        |offset, kind, body, _shared, _at| {
            replay.frame(seg_replay, offset, kind, body)?;
            Ok(true)
        },
    )
    .map_err(|e| Error::Corrupt {
        location: seg.path.display().to_string(),
        reason: e.to_string(),
    })?;
    tail::settle_tail(seg, len, end, is_active).map(|t| (t, Vec::new()))
}

/// The stream checkpoint and the log location it covers, if it is usable;
/// otherwise an empty index covering nothing (the log is replayed from
/// segment `first`).
fn load_stream_checkpoint(
    dir: &Path,
    storage: &dyn Storage,
    segments: &BTreeMap<u32, Arc<Segment>>,
    first: u32,
) -> (StreamIndex, (u32, u64)) {
    let nothing = || (StreamIndex::default(), (first, 0));
    let path = dir.join(STREAM_CHECKPOINT_FILE);
    if !storage.exists(&path) {
        return nothing();
    }
    let decoded = read_file(storage, &path)
        .map_err(|e| e.to_string())
        .and_then(|b| StreamIndex::decode_checkpoint(&b).map_err(|e| e.to_string()));
    match decoded {
        Ok((streams, covers)) if segments.contains_key(&covers.0) => (streams, covers),
        Ok(_) => {
            warn!("stream checkpoint refers to a segment that does not exist; rebuilding");
            nothing()
        }
        Err(reason) => {
            warn!(reason = %reason, "stream checkpoint unusable; rebuilding the stream index from the log");
            nothing()
        }
    }
}

/// Sealed segment `n`'s index file, if present and sound.
fn load_sealed_index(idx_dir: &Path, storage: &dyn Storage, n: u32) -> Option<SealedIndex> {
    let path = idx_dir.join(index_file_name(n));
    if !storage.exists(&path) {
        return None;
    }
    let opened = storage
        .open(&path, false)
        .map_err(|e| e.to_string())
        .and_then(|f| SealedIndex::open(f, n).map_err(|e| e.to_string()));
    match opened {
        Ok(i) => Some(i),
        Err(reason) => {
            warn!(segment = n, reason = %reason, "segment index unusable; rebuilding it from the segment");
            None
        }
    }
}

/// Completes the head from the checkpoint (events it covers may be the
/// newest) and finds the newest `recorded_at`, so the clock never steps back.
fn newest_recorded_at(replay: &mut Replay, segments: &BTreeMap<u32, Arc<Segment>>) -> Result<i64> {
    if let Some(p) = replay.streams.newest_position() {
        replay.head = replay.head.max(Position(p));
    }
    let mut last = replay.last_recorded_at;
    if last == i64::MIN && replay.head > Position::START {
        // Read the newest event's time.
        let mut out = Vec::new();
        read_events_at(segments, &[replay.head.0], |_| true, &mut out)?;
        last = out
            .first()
            .map_or(i64::MIN, |e| e.recorded_at.timestamp_micros());
    }
    Ok(if last == i64::MIN { 0 } else { last })
}
