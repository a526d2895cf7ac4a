//! `LogStore`: opening (recovery), reading, and the `EventStore` contract.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use async_trait::async_trait;
use parking_lot::{Mutex, RwLock};
use strata_core::clock::{from_micros, MonotonicClock};
use strata_core::handoff::request;
use strata_core::subscription::SubscriptionSource;
use strata_core::{
    AppendResult, Direction, Error, EventStore, ExpectedVersion, Limits, NewEvent, Position,
    ReadFilter, ReadWindow, RecordedEvent, Result, StreamAppend, StreamId, StreamInfo,
    SubscribeFrom, Subscription, Version,
};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{error, info, warn};

use crate::compress::{compress_segment, compressed_file_name, CompressedFile, Compression};
use crate::config::{Durability, LogConfig};
use crate::format::{
    decode_delete, encode_segment_header, position_of, split_position, FrameKind, RecordView,
    MAX_METADATA_FIELD_BYTES, MAX_SEGMENT_BYTES_LIMIT, SEGMENT_HEADER_BYTES,
};
use crate::index::{key_hash, ActiveIndex, IndexEntry, Postings, SealedIndex};
use crate::io::{read_file, Storage};
use crate::segment::{
    index_file_name, list_segment_numbers, open_segment, record_offsets, scan_frames,
    segment_file_name, ScanEnd, Segment, FIRST_FRAME_OFFSET,
};
use crate::state::{location, read_events_at, read_events_at_in, to_event, State};
use crate::streams::StreamIndex;
use crate::writer::{Request, Writer};

/// File name of the stream index checkpoint.
pub const STREAM_CHECKPOINT_FILE: &str = "streams.ckpt";
/// File name of the directory lock.
pub const LOCK_FILE: &str = "LOCK";
/// Most result slots a read reserves up front (more grow as needed).
const READ_PRESIZE_EVENTS: usize = 16 * 1024;
/// How many candidate positions a filtered read checks per round.
const FILTER_CHUNK_EVENTS: usize = 1024;

/// Counters the server and `strata bench` report.
#[derive(Debug, Default)]
pub struct LogMetrics {
    /// `fdatasync` calls on segment files.
    pub syncs: AtomicU64,
}

impl LogMetrics {
    pub(crate) fn record_sync(&self) {
        self.syncs.fetch_add(1, Ordering::Relaxed);
    }
}

/// Sizes reported by [`LogStore::disk_usage`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DiskUsage {
    /// Events stored.
    pub events: u64,
    /// Streams known.
    pub streams: u64,
    /// Segment bytes before compression.
    pub segment_bytes: u64,
    /// Segment bytes on disk (after compression of sealed segments).
    pub segment_bytes_on_disk: u64,
}

/// What the writer and the readers share.
pub struct Shared {
    pub(crate) state: RwLock<State>,
    pub(crate) config: LogConfig,
    pub(crate) poisoned: Mutex<Option<String>>,
    pub(crate) metrics: LogMetrics,
    head_tx: Mutex<Option<watch::Sender<Position>>>,
    head_rx: watch::Receiver<Position>,
    compressions: Mutex<Vec<JoinHandle<()>>>,
}

impl Shared {
    pub(crate) fn publish_head(&self, head: Position) {
        if let Some(tx) = self.head_tx.lock().as_ref() {
            tx.send_replace(head);
        }
    }

    pub(crate) fn close_head(&self) {
        self.head_tx.lock().take();
    }

    /// Finishes sealing segment `n` in the background: writes its index file
    /// (then serves lookups from it), then compresses it if configured.
    pub(crate) fn spawn_sealing(self: &Arc<Self>, n: u32) {
        let shared = self.clone();
        self.spawn_background(format!("strata-seal-{n}"), move || {
            let idx = shared.state.read().sealing.get(&n).cloned();
            if let Some(idx) = idx {
                match write_sealed_index(
                    shared.config.storage.as_ref(),
                    &shared.config.dir.join("index"),
                    n,
                    &idx,
                ) {
                    Ok(sealed) => {
                        let mut state = shared.state.write();
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
            if let Some(cfg) = shared.config.compression {
                if let Err(e) = shared.compress_segment(n, cfg) {
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
        let shared = self.clone();
        self.spawn_background(format!("strata-compress-{n}"), move || {
            if let Err(e) = shared.compress_segment(n, cfg) {
                warn!(segment = n, error = %e, "compressing a sealed segment failed; it stays uncompressed");
            }
        });
    }

    fn spawn_background(&self, name: String, work: impl FnOnce() + Send + 'static) {
        let spawned = std::thread::Builder::new().name(name.clone()).spawn(work);
        match spawned {
            Ok(h) => {
                let mut handles = self.compressions.lock();
                handles.retain(|h| !h.is_finished());
                handles.push(h);
            }
            Err(e) => warn!(thread = %name, error = %e, "cannot start a background thread"),
        }
    }

    fn compress_segment(&self, n: u32, cfg: Compression) -> std::io::Result<()> {
        let storage = self.config.storage.as_ref();
        let seg_dir = self.config.dir.join("segments");
        let seg = match self.state.read().segments.get(&n) {
            Some(s) if s.path.extension().is_some_and(|e| e == "seg") => s.clone(),
            _ => return Ok(()),
        };
        let len = seg.file.len()?;
        let packed = seg_dir.join(compressed_file_name(n));
        let tmp = packed.with_extension("zseg.tmp");
        let out = storage.open(&tmp, true)?;
        let size = compress_segment(seg.file.as_ref(), len, out.as_ref(), n, cfg)?;
        drop(out);
        storage.rename(&tmp, &packed)?;
        storage.sync_dir(&seg_dir)?;
        let file = storage.open(&packed, false)?;
        let c = CompressedFile::open(file, n)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        self.state.write().segments.insert(
            n,
            Arc::new(Segment {
                number: n,
                path: packed,
                file: Arc::new(c),
            }),
        );
        // Readers that still hold the plain file keep reading it until they drop it.
        storage.remove(&seg.path)?;
        storage.sync_dir(&seg_dir)?;
        info!(
            segment = n,
            bytes = len,
            compressed = size,
            "compressed a sealed segment"
        );
        Ok(())
    }

    fn join_compressions(&self) {
        let handles: Vec<_> = self.compressions.lock().drain(..).collect();
        for h in handles {
            let _ = h.join();
        }
    }
}

/// The embedded durable event store.
///
/// ```no_run
/// # async fn demo() -> strata_core::Result<()> {
/// use strata_log::{LogConfig, LogStore};
/// let store = LogStore::open(LogConfig::new("./strata-data")).await?;
/// // ... use it as any `EventStore` ...
/// store.close().await?;
/// # Ok(()) }
/// ```
pub struct LogStore {
    shared: Arc<Shared>,
    tx: mpsc::Sender<Request>,
    writer: Mutex<Option<JoinHandle<()>>>,
    _lock: File,
}

impl LogStore {
    /// Opens (or creates) a store, recovering from whatever a crash left.
    pub async fn open(config: LogConfig) -> Result<LogStore> {
        tokio::task::spawn_blocking(move || Self::open_blocking(config))
            .await
            .map_err(|e| Error::Backend(format!("open task failed: {e}")))?
    }

    fn open_blocking(config: LogConfig) -> Result<LogStore> {
        if config.max_segment_bytes > MAX_SEGMENT_BYTES_LIMIT || config.max_segment_bytes < 4096 {
            return Err(Error::invalid(format!(
                "max_segment_bytes must be between 4 KiB and 4 GiB, got {}",
                config.max_segment_bytes
            )));
        }
        let storage = config.storage.clone();
        let dir = config.dir.clone();
        let io =
            |what: &str, e: std::io::Error| Error::io(format!("{what} in {}", dir.display()), e);
        storage
            .create_dir_all(&dir.join("segments"))
            .map_err(|e| io("creating segments/", e))?;
        storage
            .create_dir_all(&dir.join("index"))
            .map_err(|e| io("creating index/", e))?;
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(LOCK_FILE))
            .map_err(|e| io("opening LOCK", e))?;
        lock.try_lock().map_err(|_| {
            Error::invalid(format!(
                "{} is in use by another process (LOCK is held)",
                dir.display()
            ))
        })?;

        let recovered = recover(&config, storage.as_ref())?;
        let (head_tx, head_rx) = watch::channel(recovered.state.head);
        let active = recovered
            .state
            .segments
            .get(&recovered.state.active_segment)
            .cloned()
            .ok_or_else(|| Error::Backend("active segment missing after recovery".into()))?;
        let tail = recovered.state.visible_end;
        let shared = Arc::new(Shared {
            state: RwLock::new(recovered.state),
            config: config.clone(),
            poisoned: Mutex::new(None),
            metrics: LogMetrics::default(),
            head_tx: Mutex::new(Some(head_tx)),
            head_rx,
            compressions: Mutex::new(Vec::new()),
        });
        // Sealed segments left uncompressed (crash, or compression just enabled).
        let plain_sealed: Vec<u32> = {
            let state = shared.state.read();
            state
                .segments
                .iter()
                .filter(|(n, s)| {
                    **n != state.active_segment && s.path.extension().is_some_and(|e| e == "seg")
                })
                .map(|(n, _)| *n)
                .collect()
        };
        for n in plain_sealed {
            shared.spawn_compression(n);
        }
        let (tx, rx) = mpsc::channel(config.write_queue_requests.max(1));
        let writer = Writer::new(
            shared.clone(),
            rx,
            active,
            tail,
            MonotonicClock::starting_at(from_micros(recovered.last_recorded_at)),
        );
        let handle = std::thread::Builder::new()
            .name("strata-log-writer".into())
            .spawn(move || writer.run())
            .map_err(|e| Error::io("starting the writer thread", e))?;
        if let Durability::Interval(every) = config.durability {
            let weak = tx.downgrade();
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move {
                    let mut tick = tokio::time::interval(every);
                    loop {
                        tick.tick().await;
                        let Some(tx) = weak.upgrade() else { return };
                        if tx.send(Request::Sync { reply: None }).await.is_err() {
                            return;
                        }
                    }
                });
            }
        }
        Ok(LogStore {
            shared,
            tx,
            writer: Mutex::new(Some(handle)),
            _lock: lock,
        })
    }

    /// Syncs, writes the stream checkpoint and stops the writer. Reads on
    /// other handles keep working; writes fail with `Closed`.
    pub async fn close(self) -> Result<()> {
        let (reply, rx) = oneshot::channel();
        let sent = self.tx.send(Request::Close { reply }).await.is_ok();
        let r = if sent {
            rx.await.unwrap_or(Err(Error::Closed))
        } else {
            Ok(())
        };
        let handle = self.writer.lock().take();
        let shared = self.shared.clone();
        let _ = tokio::task::spawn_blocking(move || {
            if let Some(h) = handle {
                let _ = h.join();
            }
            shared.join_compressions();
        })
        .await;
        r
    }

    /// Bytes on disk and events stored, for reports (`strata bench`, `stats`).
    pub fn disk_usage(&self) -> Result<DiskUsage> {
        let state = self.shared.state.read();
        let mut u = DiskUsage::default();
        for seg in state.segments.values() {
            let logical = seg
                .file
                .len()
                .map_err(|e| Error::io(format!("sizing {}", seg.path.display()), e))?;
            let on_disk = std::fs::metadata(&seg.path)
                .map(|m| m.len())
                .unwrap_or(logical);
            u.segment_bytes += logical;
            u.segment_bytes_on_disk += on_disk;
        }
        u.events = state
            .streams
            .streams
            .values()
            .map(|e| e.positions.len() as u64)
            .sum();
        u.streams = state.streams.streams.len() as u64;
        Ok(u)
    }

    /// Forces everything written so far to stable storage (useful in the
    /// `Interval` and `None` modes).
    pub async fn flush(&self) -> Result<()> {
        request(&self.tx, |reply| Request::Sync { reply: Some(reply) }).await
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.shared.config.dir
    }

    /// Number of `fdatasync` calls on segment files since open.
    pub fn sync_count(&self) -> u64 {
        self.shared.metrics.syncs.load(Ordering::Relaxed)
    }

    fn check_writable(&self) -> Result<()> {
        if let Some(reason) = self.shared.poisoned.lock().as_ref() {
            return Err(Error::Poisoned {
                reason: reason.clone(),
            });
        }
        Ok(())
    }

    async fn submit_append(&self, parts: Vec<StreamAppend>) -> Result<Vec<AppendResult>> {
        self.check_writable()?;
        for p in &parts {
            check_format_limits(&p.events)?;
        }
        request(&self.tx, |reply| Request::Append { parts, reply }).await
    }

    async fn submit_delete(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        tombstone: bool,
    ) -> Result<()> {
        self.check_writable()?;
        request(&self.tx, |reply| Request::Delete {
            stream: stream.clone(),
            expected,
            tombstone,
            reply,
        })
        .await
    }
}

/// Limits the on-disk format itself imposes, beyond `Limits`.
fn check_format_limits(events: &[NewEvent]) -> Result<()> {
    for (i, e) in events.iter().enumerate() {
        if e.event_type.len() > u16::MAX as usize {
            return Err(Error::invalid(format!(
                "event {i} has a type of {} bytes; the log format holds at most {}",
                e.event_type.len(),
                u16::MAX
            )));
        }
        let m = &e.metadata;
        let too_long = [&m.correlation_id, &m.causation_id, &m.user_id, &m.source]
            .into_iter()
            .flatten()
            .chain(m.extra.keys())
            .any(|s| s.len() > MAX_METADATA_FIELD_BYTES);
        if too_long {
            return Err(Error::invalid(format!(
                "event {i} has a metadata field over {MAX_METADATA_FIELD_BYTES} bytes"
            )));
        }
    }
    Ok(())
}

struct Recovered {
    state: State,
    last_recorded_at: i64,
}

/// The segment whose index an error names (see `State::index_error`).
pub(crate) fn damaged_index_segment(location: &str) -> Option<u32> {
    location.strip_prefix("index of segment ")?.parse().ok()
}

/// The index entry of a recorded event.
pub(crate) fn index_entry(view: &RecordView<'_>, position: u64) -> IndexEntry {
    IndexEntry {
        id: view.id().0.as_u128(),
        position,
        type_hash: key_hash(view.event_type),
        category_hash: key_hash(strata_core::stream_id::category_of(view.stream)),
        correlation_hash: view.correlation_id().map(key_hash),
    }
}

/// Writes the index file of sealed segment `n` and opens it.
pub(crate) fn write_sealed_index(
    storage: &dyn Storage,
    idx_dir: &Path,
    n: u32,
    idx: &ActiveIndex,
) -> Result<SealedIndex> {
    let path = idx_dir.join(index_file_name(n));
    crate::io::write_file_atomic(storage, &path, &idx.freeze().encode(n))
        .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
    let file = storage
        .open(&path, false)
        .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
    SealedIndex::open(file, n).map_err(|reason| Error::Corrupt {
        location: path.display().to_string(),
        reason,
    })
}

/// Opens every segment, loads or rebuilds indexes, replays the log after the
/// stream checkpoint and cuts a torn tail.
fn recover(config: &LogConfig, storage: &dyn Storage) -> Result<Recovered> {
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
    let idx_dir = config.dir.join("index");
    let io = |what: String, e: std::io::Error| Error::io(what, e);
    let mut numbers = list_segment_numbers(storage, &seg_dir)
        .map_err(|e| io(format!("listing {}", seg_dir.display()), e))?;
    for name in storage
        .list(&seg_dir)
        .map_err(|e| io(format!("listing {}", seg_dir.display()), e))?
    {
        if name.ends_with(".tmp") {
            // An unfinished compression: the plain segment is still there.
            let _ = storage.remove(&seg_dir.join(name));
        }
    }
    for w in numbers.windows(2) {
        if w[1] != w[0] + 1 {
            return Err(Error::Corrupt {
                location: seg_dir.display().to_string(),
                reason: format!(
                    "segment {} is missing (found {} then {})",
                    w[0] + 1,
                    w[0],
                    w[1]
                ),
            });
        }
    }
    if numbers.is_empty() {
        let path = seg_dir.join(segment_file_name(0));
        let f = storage
            .open(&path, true)
            .map_err(|e| io(format!("creating {}", path.display()), e))?;
        f.write_all_at(&encode_segment_header(0), 0)
            .and_then(|_| f.sync_data())
            .and_then(|_| storage.sync_dir(&seg_dir))
            .map_err(|e| io(format!("initialising {}", path.display()), e))?;
        numbers.push(0);
    }

    let mut segments = BTreeMap::new();
    for &n in &numbers {
        let Segment { path, file, .. } =
            open_segment(storage, &seg_dir, n, true).map_err(|reason| Error::Corrupt {
                location: seg_dir.join(segment_file_name(n)).display().to_string(),
                reason,
            })?;
        let mut header = [0u8; SEGMENT_HEADER_BYTES];
        let len = file
            .len()
            .map_err(|e| io(format!("sizing {}", path.display()), e))?;
        let is_last = Some(&n) == numbers.last();
        if len < SEGMENT_HEADER_BYTES as u64 && is_last {
            // Crash while creating the segment: write its header again.
            file.set_len(0)
                .and_then(|_| file.write_all_at(&encode_segment_header(n), 0))
                .and_then(|_| file.sync_data())
                .map_err(|e| io(format!("re-initialising {}", path.display()), e))?;
        }
        file.read_exact_at(&mut header, 0)
            .map_err(|e| io(format!("reading the header of {}", path.display()), e))?;
        let named =
            crate::format::decode_segment_header(&header).map_err(|reason| Error::Corrupt {
                location: location(&path, 0),
                reason,
            })?;
        if named != n {
            return Err(Error::Corrupt {
                location: location(&path, 0),
                reason: format!("header names segment {named}"),
            });
        }
        segments.insert(
            n,
            Arc::new(Segment {
                number: n,
                path,
                file,
            }),
        );
    }
    let active_no = *numbers.last().unwrap_or(&0);

    // The stream checkpoint, if usable.
    let ckpt_path = config.dir.join(STREAM_CHECKPOINT_FILE);
    let (mut streams, mut covers) = if use_checkpoint && storage.exists(&ckpt_path) {
        match read_file(storage, &ckpt_path)
            .map_err(|e| e.to_string())
            .and_then(|b| StreamIndex::decode_checkpoint(&b))
        {
            Ok(x) => x,
            Err(reason) => {
                warn!(reason = %reason, "stream checkpoint unusable; rebuilding the stream index from the log");
                (StreamIndex::default(), (numbers[0], 0))
            }
        }
    } else {
        (StreamIndex::default(), (numbers[0], 0))
    };
    if covers.0 > active_no || !segments.contains_key(&covers.0) {
        warn!("stream checkpoint refers to a segment that does not exist; rebuilding");
        streams = StreamIndex::default();
        covers = (numbers[0], 0);
    }

    let mut sealed = BTreeMap::new();
    let mut active = ActiveIndex::default();
    let mut head = Position::START;
    let mut last_recorded_at = i64::MIN;
    let mut visible_end = FIRST_FRAME_OFFSET;
    let max_seg = config.max_segment_bytes;

    for (&n, seg) in &segments {
        let is_active = n == active_no;
        let idx_path = idx_dir.join(index_file_name(n));
        let mut loaded: Option<SealedIndex> = None;
        if !is_active && storage.exists(&idx_path) {
            match storage
                .open(&idx_path, false)
                .map_err(|e| e.to_string())
                .and_then(|f| SealedIndex::open(f, n))
            {
                Ok(i) => loaded = Some(i),
                Err(reason) => {
                    warn!(segment = n, reason = %reason, "segment index unusable; rebuilding it from the segment")
                }
            }
        }
        let needs_streams = n >= covers.0;
        let stream_from = if n == covers.0 { covers.1 } else { 0 };
        if loaded.is_some() && !needs_streams {
            if let Some(i) = loaded {
                sealed.insert(n, Arc::new(i));
            }
            continue;
        }
        // Scan the segment.
        let mut idx = ActiveIndex::default();
        let build_index = loaded.is_none();
        let len = seg
            .file
            .len()
            .map_err(|e| io(format!("sizing {}", seg.path.display()), e))?;
        let end = scan_frames(
            seg.file.as_ref(),
            FIRST_FRAME_OFFSET,
            len,
            max_seg,
            |offset, kind, body, _shared, _at| {
                if build_index {
                    idx.add_frame(offset);
                }
                let apply_streams = offset >= stream_from;
                match kind {
                    FrameKind::Append => {
                        let body_start = offset + crate::format::FRAME_HEADER_BYTES as u64;
                        for (rec_off, rel) in record_offsets(body, body_start)? {
                            let view = RecordView::parse_in_verified_frame(&body[rel..])?;
                            let position = position_of(n, rec_off).0;
                            let stream = StreamId::new(view.stream)
                                .or_else(|_| StreamId::system(view.stream))
                                .map_err(|e| e.to_string())?;
                            if build_index {
                                idx.add(&index_entry(&view, position));
                            }
                            if apply_streams {
                                let expected = streams
                                    .streams
                                    .get(stream.as_str())
                                    .map_or(0, |e| e.head.version)
                                    + 1;
                                if view.version != expected {
                                    return Err(format!(
                                        "stream `{stream}` jumps from version {} to {}",
                                        expected - 1,
                                        view.version
                                    ));
                                }
                                streams.add_event(&stream, view.version, position);
                            }
                            head = head.max(Position(position));
                            last_recorded_at = last_recorded_at.max(view.recorded_at_micros());
                        }
                    }
                    FrameKind::Delete | FrameKind::Tombstone => {
                        if apply_streams {
                            let d = decode_delete(body)?;
                            let stream = StreamId::new(&d.stream)
                                .or_else(|_| StreamId::system(&d.stream))
                                .map_err(|e| e.to_string())?;
                            streams.delete(
                                &stream,
                                d.deleted_through,
                                kind == FrameKind::Tombstone,
                            );
                        }
                    }
                }
                Ok(true)
            },
        )
        .map_err(|e| Error::Corrupt {
            location: seg.path.display().to_string(),
            reason: e.to_string(),
        })?;
        match end {
            ScanEnd::Clean { end } => {
                if is_active {
                    visible_end = end.max(FIRST_FRAME_OFFSET);
                    if end < len {
                        seg.file
                            .set_len(end)
                            .map_err(|e| io(format!("trimming {}", seg.path.display()), e))?;
                    }
                }
            }
            ScanEnd::Torn { at, reason } if is_active => {
                warn!(segment = n, offset = at, reason = %reason, "cutting a torn tail left by a crash");
                seg.file
                    .set_len(at)
                    .and_then(|_| seg.file.sync_data())
                    .map_err(|e| {
                        io(
                            format!("cutting the torn tail of {}", seg.path.display()),
                            e,
                        )
                    })?;
                visible_end = at;
            }
            ScanEnd::Torn { at, reason } | ScanEnd::Corrupt { at, reason } => {
                return Err(Error::Corrupt {
                    location: location(&seg.path, at),
                    reason,
                });
            }
        }
        if is_active {
            if n == covers.0 && covers.1 > visible_end {
                return Ok(None);
            }
            active = idx;
        } else {
            let s = match loaded {
                Some(i) => i,
                None => write_sealed_index(storage, &idx_dir, n, &idx)?,
            };
            sealed.insert(n, Arc::new(s));
        }
    }

    // Events covered by the checkpoint may be the newest ones.
    for e in streams.streams.values() {
        if let Some(p) = e.head.last_position {
            head = head.max(p);
        }
    }
    if last_recorded_at == i64::MIN && head > Position::START {
        // Read the newest event's time so the clock never steps back.
        let mut out = Vec::new();
        read_events_at(&segments, &[head.0], |_| true, &mut out)?;
        last_recorded_at = out
            .first()
            .map_or(i64::MIN, |e| e.recorded_at.timestamp_micros());
    }
    info!(
        dir = %config.dir.display(),
        segments = segments.len(),
        streams = streams.streams.len(),
        head = head.0,
        "log store opened"
    );
    Ok(Some(Recovered {
        state: State {
            streams,
            active,
            active_segment: active_no,
            sealed,
            sealing: BTreeMap::new(),
            segments,
            visible_end,
            head,
        },
        last_recorded_at: if last_recorded_at == i64::MIN {
            0
        } else {
            last_recorded_at
        },
    }))
}

impl Shared {
    /// `read_all` without the limit check. A damaged sealed index is rebuilt
    /// from its segment and the read retried once.
    fn read_all_inner(
        &self,
        from: Position,
        max_count: usize,
        filter: &ReadFilter,
    ) -> Result<Vec<RecordedEvent>> {
        match self.read_all_once(from, max_count, filter) {
            Err(Error::Corrupt { location, reason }) => match damaged_index_segment(&location) {
                Some(n) => {
                    warn!(segment = n, reason = %reason, "a segment index is damaged; rebuilding it from the segment");
                    self.repair_index(n)?;
                    self.read_all_once(from, max_count, filter)
                }
                None => Err(Error::Corrupt { location, reason }),
            },
            other => other,
        }
    }

    /// Rebuilds sealed segment `n`'s index file from the segment.
    pub(crate) fn repair_index(&self, n: u32) -> Result<()> {
        let seg = self
            .state
            .read()
            .segments
            .get(&n)
            .cloned()
            .ok_or_else(|| Error::Backend(format!("no segment {n} to reindex")))?;
        let len = seg
            .file
            .len()
            .map_err(|e| Error::io(format!("sizing {}", seg.path.display()), e))?;
        let mut idx = ActiveIndex::default();
        let end = scan_frames(
            seg.file.as_ref(),
            FIRST_FRAME_OFFSET,
            len,
            self.config.max_segment_bytes,
            |offset, kind, body, _, _| {
                idx.add_frame(offset);
                if kind == FrameKind::Append {
                    let body_start = offset + crate::format::FRAME_HEADER_BYTES as u64;
                    for (rec_off, rel) in record_offsets(body, body_start)? {
                        let view = RecordView::parse_in_verified_frame(&body[rel..])?;
                        idx.add(&index_entry(&view, position_of(n, rec_off).0));
                    }
                }
                Ok(true)
            },
        )
        .map_err(|e| Error::Corrupt {
            location: seg.path.display().to_string(),
            reason: e.to_string(),
        })?;
        if let ScanEnd::Torn { at, reason } | ScanEnd::Corrupt { at, reason } = end {
            return Err(Error::Corrupt {
                location: location(&seg.path, at),
                reason,
            });
        }
        let sealed = write_sealed_index(
            self.config.storage.as_ref(),
            &self.config.dir.join("index"),
            n,
            &idx,
        )?;
        self.state.write().sealed.insert(n, Arc::new(sealed));
        Ok(())
    }

    fn read_all_once(
        &self,
        from: Position,
        max_count: usize,
        filter: &ReadFilter,
    ) -> Result<Vec<RecordedEvent>> {
        if max_count == 0 {
            return Ok(Vec::new());
        }
        let mut out = Vec::with_capacity(max_count.min(READ_PRESIZE_EVENTS));
        let plan = Plan::for_filter(filter);
        match plan {
            Plan::Scan => self.scan_all(from, max_count, filter, &mut out)?,
            Plan::Stream(stream) => {
                let (positions, segments) = {
                    let state = self.state.read();
                    let positions: Vec<u64> = match state.streams.streams.get(stream.as_str()) {
                        Some(e) => {
                            let lo = e.positions.partition_point(|p| *p < from.0);
                            e.positions[lo..].to_vec()
                        }
                        None => Vec::new(),
                    };
                    (positions, state.segments.clone())
                };
                for chunk in positions.chunks(FILTER_CHUNK_EVENTS) {
                    read_events_at(&segments, chunk, |v| filter_view(filter, v), &mut out)?;
                    if out.len() >= max_count {
                        break;
                    }
                }
            }
            Plan::Postings(kind, keys) => {
                let (seg_numbers, segments) = {
                    let state = self.state.read();
                    let (from_seg, _) = split_position(from);
                    let nums: Vec<u32> =
                        state.segments.range(from_seg..).map(|(n, _)| *n).collect();
                    (nums, state.segments.clone())
                };
                for n in seg_numbers {
                    let mut positions: Vec<u64> = {
                        let state = self.state.read();
                        let mut v = Vec::new();
                        for k in &keys {
                            v.extend(state.postings(n, kind, *k, from.0)?);
                        }
                        v
                    };
                    if keys.len() > 1 {
                        positions.sort_unstable();
                        positions.dedup();
                    }
                    for chunk in positions.chunks(FILTER_CHUNK_EVENTS) {
                        read_events_at(&segments, chunk, |v| filter_view(filter, v), &mut out)?;
                        if out.len() >= max_count {
                            break;
                        }
                    }
                    if out.len() >= max_count {
                        break;
                    }
                }
            }
        }
        out.truncate(max_count);
        Ok(out)
    }

    /// Reads `$all` sequentially from `from`, keeping events that pass `filter`.
    fn scan_all(
        &self,
        from: Position,
        max_count: usize,
        filter: &ReadFilter,
        out: &mut Vec<RecordedEvent>,
    ) -> Result<()> {
        let (from_seg, from_off) = split_position(from);
        let starts = {
            let state = self.state.read();
            let mut starts = Vec::new();
            for (&n, seg) in state.segments.range(from_seg..) {
                let Some(end) = state.readable_end(n) else {
                    continue;
                };
                let start = if n == from_seg {
                    state.frame_start(n, from_off)?
                } else {
                    FIRST_FRAME_OFFSET
                };
                starts.push((n, start, end, seg.clone()));
            }
            starts
        };
        let all = filter.is_all();
        let mut last_stream: Option<StreamId> = None;
        for (n, start, end, seg) in starts {
            let limit = if end == u64::MAX {
                seg.file
                    .len()
                    .map_err(|e| Error::io(format!("sizing {}", seg.path.display()), e))?
            } else {
                end
            };
            let mut failure: Option<Error> = None;
            let result = scan_frames(
                seg.file.as_ref(),
                start,
                limit,
                self.config.max_segment_bytes,
                |offset, kind, body, shared, body_at| {
                    if kind != FrameKind::Append {
                        return Ok(true);
                    }
                    let body_start = offset + crate::format::FRAME_HEADER_BYTES as u64;
                    for (rec_off, rel) in record_offsets(body, body_start)? {
                        let position = position_of(n, rec_off);
                        if position < from {
                            continue;
                        }
                        let view = RecordView::parse_in_verified_frame(&body[rel..])?;
                        if !all && !filter_view(filter, &view) {
                            continue;
                        }
                        // Consecutive events often share a stream: reuse its id.
                        let event = match &last_stream {
                            Some(s) if s.as_str() == view.stream => view
                                .to_event(s.clone(), position, shared, body_at + rel)
                                .map_err(|reason| Error::Corrupt {
                                    location: location(&seg.path, rec_off),
                                    reason,
                                }),
                            _ => {
                                to_event(&view, position, shared, body_at + rel, &seg.path, rec_off)
                            }
                        };
                        if let Ok(e) = &event {
                            last_stream = Some(e.stream_id.clone());
                        }
                        match event {
                            Ok(e) => {
                                if !all && !filter.matches(&e) {
                                    continue;
                                }
                                out.push(e);
                            }
                            Err(e) => {
                                failure = Some(e);
                                return Ok(false);
                            }
                        }
                        if out.len() >= max_count {
                            return Ok(false);
                        }
                    }
                    Ok(true)
                },
            )
            .map_err(|e| Error::Corrupt {
                location: seg.path.display().to_string(),
                reason: e.to_string(),
            })?;
            if let Some(e) = failure {
                return Err(e);
            }
            match result {
                ScanEnd::Clean { .. } => {}
                ScanEnd::Torn { at, reason } | ScanEnd::Corrupt { at, reason } => {
                    return Err(Error::Corrupt {
                        location: location(&seg.path, at),
                        reason,
                    })
                }
            }
            if out.len() >= max_count {
                break;
            }
        }
        Ok(())
    }
}

/// Cheap pre-check of a record against a filter (before building the event).
fn filter_view(filter: &ReadFilter, v: &RecordView<'_>) -> bool {
    filter.matches_stream(v.stream)
        && filter.matches_type(v.event_type)
        && match &filter.correlation_id {
            Some(c) => v.correlation_id() == Some(c.as_str()),
            None => true,
        }
}

/// How a filtered `read_all` finds its candidates.
enum Plan {
    Scan,
    Stream(StreamId),
    Postings(Postings, Vec<u64>),
}

impl Plan {
    fn for_filter(f: &ReadFilter) -> Plan {
        if let Some(s) = &f.stream {
            return Plan::Stream(s.clone());
        }
        if let Some(c) = &f.correlation_id {
            return Plan::Postings(Postings::Correlation, vec![key_hash(c)]);
        }
        if !f.event_types.is_empty() {
            return Plan::Postings(
                Postings::Type,
                f.event_types.iter().map(|t| key_hash(t)).collect(),
            );
        }
        if let Some(c) = &f.category {
            return Plan::Postings(Postings::Category, vec![key_hash(c)]);
        }
        if let Some(p) = &f.stream_prefix {
            // `account-` selects a subset of category `account`.
            if let Some(cat) = p.strip_suffix('-') {
                if !cat.contains('-') {
                    return Plan::Postings(Postings::Category, vec![key_hash(cat)]);
                }
            }
        }
        Plan::Scan
    }
}

#[async_trait]
impl SubscriptionSource for Shared {
    async fn read_page(
        &self,
        from: Position,
        max_count: usize,
        filter: &ReadFilter,
    ) -> Result<Vec<RecordedEvent>> {
        self.read_all_inner(from, max_count, filter)
    }

    fn head(&self) -> watch::Receiver<Position> {
        self.head_rx.clone()
    }
}

#[async_trait]
impl EventStore for LogStore {
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult> {
        self.shared.config.limits.check_events(&events)?;
        let mut r = self
            .submit_append(vec![StreamAppend::new(stream.clone(), expected, events)])
            .await?;
        r.pop()
            .ok_or_else(|| Error::Backend("writer returned no result".into()))
    }

    async fn append_multi(&self, appends: Vec<StreamAppend>) -> Result<Vec<AppendResult>> {
        self.shared.config.limits.check_multi(&appends)?;
        self.submit_append(appends).await
    }

    async fn read_stream(
        &self,
        stream: &StreamId,
        from: Version,
        max_count: usize,
        direction: Direction,
    ) -> Result<Vec<RecordedEvent>> {
        self.shared.config.limits.check_read_count(max_count)?;
        let (positions, segments) = {
            let state = self.shared.state.read();
            let entry = match state.streams.streams.get(stream.as_str()) {
                Some(e) if e.head.tombstoned => {
                    return Err(Error::StreamDeleted {
                        stream: stream.clone(),
                    })
                }
                Some(e) if e.head.version > e.head.deleted_through => e,
                _ => {
                    return Err(Error::StreamNotFound {
                        stream: stream.clone(),
                    })
                }
            };
            let window = ReadWindow::new(
                entry.head.deleted_through + 1,
                entry.head.version,
                from,
                max_count,
                direction,
            );
            let (lo, hi) = (window.low, window.high);
            let positions = entry.positions[(lo - 1) as usize..(hi - 1) as usize].to_vec();
            (positions, state.segments.clone())
        };
        let mut out = Vec::with_capacity(positions.len());
        read_events_at_in(&segments, &positions, Some(stream), |_| true, &mut out)?;
        for e in &out {
            if e.stream_id != *stream {
                return Err(Error::Corrupt {
                    location: format!("position {}", e.position),
                    reason: format!(
                        "the stream index of `{stream}` points at an event of `{}`",
                        e.stream_id
                    ),
                });
            }
        }
        if direction == Direction::Backward {
            out.reverse();
        }
        Ok(out)
    }

    async fn read_all(
        &self,
        from: Position,
        max_count: usize,
        filter: &ReadFilter,
    ) -> Result<Vec<RecordedEvent>> {
        self.shared.config.limits.check_read_count(max_count)?;
        self.shared.read_all_inner(from, max_count, filter)
    }

    async fn subscribe(&self, from: SubscribeFrom, filter: ReadFilter) -> Result<Subscription> {
        let source: Arc<dyn SubscriptionSource> = self.shared.clone();
        Ok(Subscription::new(source, from, filter))
    }

    async fn stream_info(&self, stream: &StreamId) -> Result<Option<StreamInfo>> {
        let state = self.shared.state.read();
        Ok(state
            .streams
            .streams
            .get(stream.as_str())
            .map(|e| e.head.info(stream)))
    }

    async fn delete_stream(&self, stream: &StreamId, expected: ExpectedVersion) -> Result<()> {
        self.submit_delete(stream, expected, false).await
    }

    async fn tombstone_stream(&self, stream: &StreamId, expected: ExpectedVersion) -> Result<()> {
        self.submit_delete(stream, expected, true).await
    }

    async fn head_position(&self) -> Result<Position> {
        Ok(self.shared.state.read().head)
    }

    fn limits(&self) -> &Limits {
        &self.shared.config.limits
    }

    fn durable_syncs(&self) -> Option<u64> {
        Some(self.shared.metrics.syncs.load(Ordering::Relaxed))
    }
}

/// Segment bytes of a closed store's directory: before compression and on
/// disk. (`events` and `streams` are left at 0: they need the indexes.)
pub fn dir_usage(dir: &Path) -> Result<DiskUsage> {
    let storage = crate::io::FsStorage;
    let seg_dir = dir.join("segments");
    let mut u = DiskUsage::default();
    let numbers = list_segment_numbers(&storage, &seg_dir)
        .map_err(|e| Error::io(format!("listing {}", seg_dir.display()), e))?;
    for n in numbers {
        let seg = open_segment(&storage, &seg_dir, n, false).map_err(|reason| Error::Corrupt {
            location: seg_dir.display().to_string(),
            reason,
        })?;
        u.segment_bytes += seg
            .file
            .len()
            .map_err(|e| Error::io(format!("sizing {}", seg.path.display()), e))?;
        u.segment_bytes_on_disk += std::fs::metadata(&seg.path)
            .map_err(|e| Error::io(format!("sizing {}", seg.path.display()), e))?
            .len();
    }
    Ok(u)
}
