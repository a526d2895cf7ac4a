//! The state an open store shares between the writer thread, readers and
//! background work, owned here: [`OpenStore`] (configuration, the poison
//! flag, counters, the head feed, background threads) around [`State`]
//! (segments, indexes, the stream index, the visible tail).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::{Mutex, RwLock};
use strata_core::{Error, Position, Result, StreamId};
use tokio::sync::watch;

use crate::config::LogConfig;
use crate::format::{split_position, RecordView};
use crate::index::filter::id_hash;
use crate::index::{active_postings_from, ActiveIndex, Postings, SealedIndex};
use crate::segment::{read_records, Segment, FIRST_FRAME_OFFSET};
use crate::streams::StreamIndex;

/// Counters the server and `strata bench` report.
#[derive(Debug, Default)]
pub struct LogMetrics {
    /// `fdatasync` calls on segment files.
    pub syncs: AtomicU64,
    /// Events the tag index loaded from sealed segments' tag files on open.
    pub tag_events_loaded: AtomicU64,
    /// Events the tag index read from segments on open (the active
    /// segment's, and those of sealed segments without a sound tag file).
    pub tag_events_scanned: AtomicU64,
    /// Sealed segments whose tag file was missing or unsound on open, so
    /// the segment was read and its tag file written again.
    pub tag_segments_rebuilt: AtomicU64,
    /// Stream checkpoints written.
    pub stream_checkpoints: AtomicU64,
}

impl LogMetrics {
    pub(crate) fn record_sync(&self) {
        self.syncs.fetch_add(1, Ordering::Relaxed);
    }
}

/// An open store as the writer thread, readers and background threads see
/// it. Only the writer thread mutates `state`'s log-derived parts, after the
/// bytes they describe are written (and, in `Always` mode, synced).
pub struct OpenStore {
    /// Segments, indexes and stream heads.
    pub(crate) state: RwLock<State>,
    /// How the store was opened.
    pub(crate) config: LogConfig,
    /// Why the store refuses writes, once an I/O failure made it stop.
    pub(crate) poisoned: Mutex<Option<String>>,
    /// Counters.
    pub(crate) metrics: LogMetrics,
    head_tx: Mutex<Option<watch::Sender<Position>>>,
    head_rx: watch::Receiver<Position>,
    /// Sealing and compression threads still running.
    pub(crate) background: Mutex<Vec<JoinHandle<()>>>,
    /// Held while an index is rebuilt: one repair at a time, however many
    /// readers hit damaged indexes at once.
    pub(crate) repairing: Mutex<()>,
    /// Held while a sealed segment's file is replaced (compression or a
    /// scavenge): one replacement of a segment at a time.
    pub(crate) maintenance: Mutex<()>,
    /// Held while a scavenge runs: one at a time.
    pub(crate) scavenging: Mutex<()>,
    /// Held while the stream checkpoint is written: one writer of
    /// `streams.ckpt` at a time.
    pub(crate) checkpointing: Mutex<()>,
    /// Set while a background stream checkpoint is scheduled or running, so
    /// the writer does not start a second.
    pub(crate) checkpoint_running: AtomicBool,
    /// The running or last scavenge's progress.
    pub(crate) scavenge_progress: crate::scavenge::ScavengeProgress,
    /// Set when a damaged store was opened read-only: its first damage and
    /// how many damaged runs it has (each segment knows its own).
    pub(crate) damaged: Option<crate::recovery::Damaged>,
}

impl OpenStore {
    /// An open store over recovered `state`.
    pub(crate) fn new(state: State, config: LogConfig) -> Self {
        let (head_tx, head_rx) = watch::channel(state.head);
        OpenStore {
            state: RwLock::new(state),
            config,
            poisoned: Mutex::new(None),
            metrics: LogMetrics::default(),
            head_tx: Mutex::new(Some(head_tx)),
            head_rx,
            background: Mutex::new(Vec::new()),
            repairing: Mutex::new(()),
            maintenance: Mutex::new(()),
            scavenging: Mutex::new(()),
            checkpointing: Mutex::new(()),
            checkpoint_running: AtomicBool::new(false),
            scavenge_progress: Default::default(),
            damaged: None,
        }
    }

    /// Tells subscribers the log now ends at `head`.
    pub(crate) fn publish_head(&self, head: Position) {
        if let Some(tx) = self.head_tx.lock().as_ref() {
            tx.send_replace(head);
        }
    }

    /// Ends the head feed (the store is closing).
    pub(crate) fn close_head(&self) {
        self.head_tx.lock().take();
    }

    /// The head feed subscriptions wait on.
    pub(crate) fn head_feed(&self) -> watch::Receiver<Position> {
        self.head_rx.clone()
    }

    /// Fails with `Poisoned` once an I/O failure stopped writes.
    pub(crate) fn check_writable(&self) -> Result<()> {
        if let Some(reason) = self.poisoned.lock().as_ref() {
            return Err(Error::Poisoned {
                reason: reason.clone(),
            });
        }
        Ok(())
    }
}

/// Readers' view of the store. Only the writer thread mutates it, after the
/// bytes it describes are written (and, in `Always` mode, synced).
pub struct State {
    /// Every stream's head and version → position map.
    pub streams: StreamIndex,
    /// Index of the segment being written.
    pub active: ActiveIndex,
    /// Number of the segment being written.
    pub active_segment: u32,
    /// Indexes of sealed segments.
    pub sealed: BTreeMap<u32, Arc<SealedIndex>>,
    /// Indexes of segments just sealed whose index file is being written in
    /// the background; they move to `sealed` when it is done.
    pub sealing: BTreeMap<u32, Arc<ActiveIndex>>,
    /// Every segment, sealed and active.
    pub segments: BTreeMap<u32, Arc<Segment>>,
    /// Readers may read the active segment up to this offset.
    pub visible_end: u64,
    /// Position of the last event (START if none).
    pub head: Position,
    /// Events of user streams by tag and type, for conditional appends
    /// and query reads.
    pub tags: crate::dcb::TagIndex,
}

impl State {
    /// The position of an event id, if recorded. Sealed segments are asked
    /// newest first; each one's id filter rules out almost every id it does
    /// not hold without a read. Callers hold the state read lock, never the
    /// write lock: a filter's first load (one read) happens under it and
    /// blocks no reader.
    pub fn lookup_id(&self, id: u128) -> Result<Option<u64>> {
        if let Some(p) = self.active.lookup_id(id) {
            return Ok(Some(p));
        }
        for s in self.sealing.values().rev() {
            if let Some(p) = s.lookup_id(id) {
                return Ok(Some(p));
            }
        }
        let hash = id_hash(id);
        for (n, s) in self.sealed.iter().rev() {
            let found = s.lookup_id_hashed(id, hash);
            if let Some(p) = found.map_err(|e| self.index_error(*n, e))? {
                return Ok(Some(p));
            }
        }
        Ok(None)
    }

    fn index_error(&self, segment: u32, e: std::io::Error) -> Error {
        Error::Corrupt {
            location: format!("{INDEX_LOCATION_PREFIX}{segment}"),
            reason: e.to_string(),
        }
    }

    /// The offset of the frame in `segment` that holds (or follows) `offset`.
    pub fn frame_start(&self, segment: u32, offset: u64) -> Result<u64> {
        let transient = if segment == self.active_segment {
            Some(&self.active)
        } else {
            self.sealing.get(&segment).map(|a| a.as_ref())
        };
        let found = if let Some(idx) = transient {
            let frames = &idx.frames;
            let i = frames.partition_point(|f| *f <= offset);
            if i == 0 {
                None
            } else {
                Some(frames[i - 1])
            }
        } else {
            match self.sealed.get(&segment) {
                Some(s) => s
                    .frame_at_or_before(offset)
                    .map_err(|e| self.index_error(segment, e))?,
                None => None,
            }
        };
        Ok(found.unwrap_or(FIRST_FRAME_OFFSET))
    }

    /// Where readers must stop in `segment`.
    pub fn readable_end(&self, segment: u32) -> Option<u64> {
        if segment == self.active_segment {
            Some(self.visible_end)
        } else if segment < self.active_segment {
            // Sealed segments are complete; `u64::MAX` means "to the end of the file".
            Some(u64::MAX)
        } else {
            None
        }
    }

    /// Where the event recorded at position `p` sits: its stream, version
    /// and time, read from its segment; `None` once a scavenge removed it
    /// (only events `$all` no longer shows are removed).
    pub fn placed_at(&self, p: u64) -> Result<Option<crate::dcb::Placed>> {
        self.with_record_at(p, |segment, record, corrupt| {
            if segment.removed_at(record) {
                return Ok(None);
            }
            let view = RecordView::parse(record).map_err(|reason| corrupt(reason.to_string()))?;
            if view.is_removed() {
                return Ok(None);
            }
            let stream = StreamId::any(view.stream).map_err(|e| corrupt(e.to_string()))?;
            Ok(Some(crate::dcb::Placed {
                stream,
                version: view.version,
                recorded_at: view.recorded_at_micros(),
            }))
        })
    }

    /// Reads the record at position `p` and hands `f` its segment, its
    /// bytes and how to name damage at it.
    pub(crate) fn with_record_at<T>(
        &self,
        p: u64,
        f: impl FnOnce(&Segment, &[u8], &dyn Fn(String) -> Error) -> Result<T>,
    ) -> Result<T> {
        let (seg, off) = split_position(Position(p));
        let segment = self.segments.get(&seg).ok_or_else(|| Error::Corrupt {
            location: format!("position {p}"),
            reason: "an index points to a missing segment".into(),
        })?;
        let bufs = read_records(segment.file.as_ref(), &[off])
            .map_err(|e| Error::io(format!("reading {}", segment.path.display()), e))?;
        let corrupt = |reason: String| Error::Corrupt {
            location: location(&segment.path, off),
            reason,
        };
        let (buf, at) = bufs
            .into_iter()
            .next()
            .ok_or_else(|| corrupt("record missing".into()))?;
        f(segment, buf.get(at..).unwrap_or_default(), &corrupt)
    }

    /// Positions `>= from` in `segment` under posting `kind`/`key`.
    pub fn postings(&self, segment: u32, kind: Postings, key: u64, from: u64) -> Result<Vec<u64>> {
        if segment == self.active_segment {
            Ok(active_postings_from(&self.active, kind, key, from).to_vec())
        } else if let Some(idx) = self.sealing.get(&segment) {
            Ok(active_postings_from(idx, kind, key, from).to_vec())
        } else {
            match self.sealed.get(&segment) {
                Some(s) => s
                    .postings_from(kind, key, from)
                    .map_err(|e| self.index_error(segment, e)),
                None => Ok(Vec::new()),
            }
        }
    }
}

/// How a `Corrupt` error names a damaged sealed index.
const INDEX_LOCATION_PREFIX: &str = "index of segment ";

/// The segment whose index a `Corrupt` error names (see `State::index_error`).
pub(crate) fn damaged_index_segment(location: &str) -> Option<u32> {
    location.strip_prefix(INDEX_LOCATION_PREFIX)?.parse().ok()
}

/// Describes a location for `Corrupt` errors.
pub fn location(path: &Path, offset: u64) -> String {
    format!("{} at offset {offset}", path.display())
}
