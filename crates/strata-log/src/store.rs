//! `LogStore`: the embedded store's face. Opening runs recovery and starts
//! the writer thread; appends and deletes go to the writer; reads are served
//! from the shared state; the `EventStore` contract; disk usage.

use std::fs::File;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use strata_core::clock::{from_micros, MonotonicClock};
use strata_core::dcb::{AppendCondition, Query};
use strata_core::handoff::{request, QueuedBytes};
use strata_core::stream_list::pick_page;
use strata_core::subscription::SubscriptionSource;
use strata_core::{
    AppendResult, Direction, Error, EventStore, ExpectedVersion, Limits, NewEvent, Position,
    ReadFilter, RecordedEvent, Result, ScavengeOptions, ScavengeReport, StreamAppend, StreamId,
    StreamInfo, StreamListQuery, StreamPage, SubscribeFrom, Subscription, Version,
};
use tokio::sync::{mpsc, oneshot};

use crate::config::{Durability, LogConfig};
use crate::format::{MAX_METADATA_FIELD_BYTES, MAX_SEGMENT_BYTES_LIMIT};
use crate::read::{offload, Cut};
use crate::recovery::{lock_dir, recover_and_preload_tags};
use crate::segment::{list_segment_numbers, open_segment};
use crate::state::OpenStore;
use crate::streams::DeleteKind;
use crate::writer::{append_frame_len, Request, Writer};

pub use crate::recovery::LOCK_FILE;
pub use crate::state::LogMetrics;
pub use crate::streams::STREAM_CHECKPOINT_FILE;

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
    /// Bytes of the sealed segments' index and tag files (`index/`); only
    /// [`dir_usage`] measures them.
    pub index_bytes: u64,
    /// Bytes of the stream checkpoint (`streams.ckpt`); only [`dir_usage`]
    /// measures them.
    pub checkpoint_bytes: u64,
}

/// How the tag index was filled on open, from [`LogStore::tag_index_load`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TagIndexLoad {
    /// Events loaded from sealed segments' tag files.
    pub events_loaded: u64,
    /// Events read from segments: the active segment's, and those of sealed
    /// segments whose tag file was missing or unsound.
    pub events_scanned: u64,
    /// Sealed segments whose tag file was missing or unsound, so the
    /// segment was read and the file written again.
    pub segments_rebuilt: u64,
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
    store: Arc<OpenStore>,
    tx: mpsc::Sender<Request>,
    /// Bytes of appends waiting for the writer, bounded.
    queued: QueuedBytes,
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
        let lock = lock_dir(&config)?;
        let (recovered, preloaded) = recover_and_preload_tags(&config);
        let recovered = recovered?;
        let active = recovered
            .state
            .segments
            .get(&recovered.state.active_segment)
            .cloned()
            .ok_or_else(|| Error::Backend("active segment missing after recovery".into()))?;
        let tail = recovered.state.visible_end;
        let mut open = OpenStore::new(recovered.state, config.clone());
        open.damaged = recovered.damaged.clone();
        let store = Arc::new(open);
        store.load_tag_index(preloaded);
        // Sealed segments left uncompressed (crash, or compression just enabled).
        let plain_sealed: Vec<u32> = {
            let state = store.state.read();
            state
                .segments
                .iter()
                .filter(|(n, s)| {
                    **n != state.active_segment && s.path.extension().is_some_and(|e| e == "seg")
                })
                .map(|(n, _)| *n)
                .collect()
        };
        if store.damaged.is_none() {
            for n in plain_sealed {
                store.spawn_compression(n);
            }
        }
        let (tx, rx) = mpsc::channel(config.write_queue_requests.max(1));
        let mut writer = Writer::new(
            store.clone(),
            rx,
            active,
            tail,
            recovered.next_frame_seq,
            MonotonicClock::starting_at(from_micros(recovered.last_recorded_at)),
        )
        .map_err(|e| Error::io("starting the sync thread", e))?;
        if let Some(d) = &recovered.damaged {
            writer.read_only(format!(
                "the store was opened read-only over damage at {}: {} ({} damaged run(s) in all)",
                d.location, d.reason, d.runs
            ));
        }
        let handle = std::thread::Builder::new()
            .name("strata-log-writer".into())
            .spawn(move || writer.run())
            .map_err(|e| Error::io("starting the writer thread", e))?;
        if let Durability::Interval(every) = config.durability {
            spawn_interval_sync(&tx, every);
        }
        Ok(LogStore {
            queued: QueuedBytes::new(store.config.limits.max_queued_append_bytes),
            store,
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
        let store = self.store.clone();
        let _ = tokio::task::spawn_blocking(move || {
            if let Some(h) = handle {
                let _ = h.join();
            }
            store.join_background();
        })
        .await;
        r
    }

    /// Bytes on disk and events stored, for reports (`strata bench`, `stats`).
    pub fn disk_usage(&self) -> Result<DiskUsage> {
        let state = self.store.state.read();
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

    /// Waits until the writer has finished every request sent before this
    /// call, and the segment seal one of them may have caused, without
    /// syncing anything. With [`LogStore::settle`] it lets the power-cut
    /// tests order the writer's storage operations before the background
    /// threads'.
    pub async fn wait_writer(&self) -> Result<()> {
        request(&self.tx, |reply| Request::Barrier { reply }).await
    }

    /// Waits for the writer as [`LogStore::wait_writer`] does, then for the
    /// background work started so far (sealed segments' index files,
    /// compression) to finish. Nothing is synced that would not have been
    /// anyway. The power-cut tests call it between steps so the order of
    /// storage operations, and so a seed's disk image, does not depend on
    /// thread scheduling. The writer's error, if any, is returned after the
    /// wait.
    pub async fn settle(&self) -> Result<()> {
        let waited = self.wait_writer().await;
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.join_background())
            .await
            .map_err(|e| Error::Backend(format!("waiting for background work failed: {e}")))?;
        waited
    }

    /// The state shared with the writer and readers (for backups).
    pub(crate) fn shared(&self) -> &Arc<OpenStore> {
        &self.store
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.store.config.dir
    }

    /// Reclaims the space of events no read can return (see
    /// [`crate::scavenge`]), online, on a blocking thread. Events of erased
    /// streams in the active segment are reached too: the segment is sealed
    /// first (and its index written) when it holds any.
    pub async fn scavenge(&self, options: ScavengeOptions) -> Result<ScavengeReport> {
        if self.store.unsealed_erased_events() {
            self.store.check_writable()?;
            request(&self.tx, |reply| Request::Seal { reply }).await?;
            self.settle().await?;
        }
        let store = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || store.scavenge(&options))
            .await
            .map_err(|e| Error::Backend(format!("the scavenge failed: {e}")))?
    }

    /// The running or last scavenge's progress, and totals since open.
    pub fn scavenge_progress(&self) -> &crate::scavenge::ScavengeProgress {
        &self.store.scavenge_progress
    }

    /// Index chunks that the sealed segments' indexes now in use have read
    /// and checked (a statistic: an id lookup that the id filter rules out
    /// reads none).
    pub fn index_chunk_reads(&self) -> u64 {
        let state = self.store.state.read();
        state.sealed.values().map(|s| s.chunk_reads()).sum()
    }

    /// How the tag index was filled when the store opened: events loaded
    /// from sealed segments' tag files, events read from segments (the
    /// active one's, and those of sealed segments whose tag file was missing
    /// or unsound), and how many such sealed segments were read.
    pub fn tag_index_load(&self) -> TagIndexLoad {
        let m = &self.store.metrics;
        TagIndexLoad {
            events_loaded: m.tag_events_loaded.load(Ordering::Relaxed),
            events_scanned: m.tag_events_scanned.load(Ordering::Relaxed),
            segments_rebuilt: m.tag_segments_rebuilt.load(Ordering::Relaxed),
        }
    }

    /// Number of `fdatasync` calls on segment files since open.
    pub fn sync_count(&self) -> u64 {
        self.store.metrics.syncs.load(Ordering::Relaxed)
    }

    async fn submit_append(
        &self,
        parts: Vec<StreamAppend>,
        condition: Option<Box<AppendCondition>>,
        bytes: usize,
    ) -> Result<Vec<AppendResult>> {
        self.store.check_writable()?;
        for p in &parts {
            check_format_limits(&p.events)?;
        }
        let _queued = self.queued.take(bytes)?;
        let frame_len = append_frame_len(&parts);
        request(&self.tx, |reply| Request::Append {
            parts,
            condition,
            frame_len,
            reply,
        })
        .await
    }

    async fn submit_delete(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        kind: DeleteKind,
    ) -> Result<()> {
        self.store.check_writable()?;
        request(&self.tx, |reply| Request::Delete {
            stream: stream.clone(),
            expected,
            kind,
            reply,
        })
        .await
    }
}

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

/// In `Interval` mode, asks the writer to sync every `every` while the
/// store is open.
fn spawn_interval_sync(tx: &mpsc::Sender<Request>, every: Duration) {
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

/// Limits the on-disk format itself imposes, beyond `Limits`.

#[async_trait]
impl EventStore for LogStore {
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult> {
        let bytes = self.store.config.limits.check_events(&events)?;
        let mut r = self
            .submit_append(
                vec![StreamAppend::new(stream.clone(), expected, events)],
                None,
                bytes,
            )
            .await?;
        r.pop()
            .ok_or_else(|| Error::Backend("writer returned no result".into()))
    }

    async fn append_multi(&self, appends: Vec<StreamAppend>) -> Result<Vec<AppendResult>> {
        let bytes = self.store.config.limits.check_multi(&appends)?;
        self.submit_append(appends, None, bytes).await
    }

    /// Checked by the writer against the store as the requests before it
    /// in its batch leave it, so the check and the write are one step.
    async fn append_if(
        &self,
        appends: Vec<StreamAppend>,
        condition: &AppendCondition,
    ) -> Result<Vec<AppendResult>> {
        condition.fail_if_events_match.validate()?;
        let bytes = self.store.config.limits.check_multi(&appends)?;
        self.submit_append(appends, Some(Box::new(condition.clone())), bytes)
            .await
    }

    /// Answered from the tag index.
    async fn read_query(
        &self,
        query: &Query,
        after: Position,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>> {
        strata_core::dcb::check_read(query, limit, &self.store.config.limits)?;
        // A read bounded by few candidates (a decision's boundary) runs in
        // place: the hand-off to the blocking pool would cost more than it.
        let candidates = self.store.state.read().tags.candidates(query, after.0);
        if candidates <= offload::IN_PLACE_QUERY_CANDIDATES {
            return self.store.read_query(query, after, limit);
        }
        let (store, query) = (Arc::clone(&self.store), query.clone());
        offload::off_runtime(move || store.read_query(&query, after, limit)).await
    }

    async fn read_stream(
        &self,
        stream: &StreamId,
        from: Version,
        max_count: usize,
        direction: Direction,
    ) -> Result<Vec<RecordedEvent>> {
        self.store.config.limits.check_read_count(max_count)?;
        offload::read_stream(&self.store, stream, from, max_count, direction).await
    }

    async fn read_all(
        &self,
        from: Position,
        max_count: usize,
        filter: &ReadFilter,
    ) -> Result<Vec<RecordedEvent>> {
        self.store.config.limits.check_read_count(max_count)?;
        filter.validate()?;
        offload::read_all(&self.store, from, max_count, filter).await
    }

    async fn read_all_backward(
        &self,
        before: Position,
        max_count: usize,
        filter: &ReadFilter,
    ) -> Result<Vec<RecordedEvent>> {
        self.store.config.limits.check_read_count(max_count)?;
        filter.validate()?;
        offload::read_all_backward(&self.store, before, max_count, filter).await
    }

    async fn subscribe(&self, from: SubscribeFrom, filter: ReadFilter) -> Result<Subscription> {
        filter.validate()?;
        let source: Arc<dyn SubscriptionSource> =
            Arc::new(offload::PageSource(Arc::clone(&self.store)));
        Ok(Subscription::new(source, from, filter))
    }

    async fn stream_info(&self, stream: &StreamId) -> Result<Option<StreamInfo>> {
        self.store
            .with_first_readable(stream.as_str(), Cut::Stream, |_, found| {
                Ok(found.map(|(e, first)| {
                    let mut info = e.head.info(stream);
                    // `version + 1` when retention left nothing readable.
                    info.first_readable_version = first.min(e.head.version + 1);
                    info
                }))
            })
    }

    /// The stream index is a hash map: a page is picked in one pass over
    /// every stream under the state's read lock, keeping only one page of
    /// names (`pick_page`), then each stream of the page is described as
    /// `stream_info` describes it. A page costs time in proportion to the
    /// number of streams (docs/adr/0026-listing-streams.md).
    async fn list_streams(&self, query: &StreamListQuery) -> Result<StreamPage> {
        query.validate()?;
        let (names, more) = {
            let state = self.store.state.read();
            pick_page(query, state.streams.streams.keys())
        };
        let mut streams = Vec::with_capacity(names.len());
        for name in &names {
            // Streams are never dropped from the index: each is still there.
            if let Some(info) = self.stream_info(name).await? {
                streams.push(info);
            }
        }
        let next = if more { names.last().cloned() } else { None };
        Ok(StreamPage { streams, next })
    }

    async fn delete_stream(&self, stream: &StreamId, expected: ExpectedVersion) -> Result<()> {
        self.submit_delete(stream, expected, DeleteKind::Soft).await
    }

    async fn tombstone_stream(&self, stream: &StreamId, expected: ExpectedVersion) -> Result<()> {
        self.submit_delete(stream, expected, DeleteKind::Tombstone)
            .await
    }

    /// Writes an erase frame (durable like any write): from then on no read
    /// returns the stream's events, `$all` included, and the next scavenge
    /// removes their data (`ScavengeOptions::erased_only` forces one that
    /// seals the active segment first if it holds any).
    async fn erase_stream(&self, stream: &StreamId, expected: ExpectedVersion) -> Result<()> {
        self.submit_delete(stream, expected, DeleteKind::Erase)
            .await
    }

    async fn head_position(&self) -> Result<Position> {
        Ok(self.store.state.read().head)
    }

    fn health(&self) -> Result<Option<Position>> {
        self.store.check_writable()?;
        Ok(Some(*self.store.head_feed().borrow()))
    }

    fn limits(&self) -> &Limits {
        &self.store.config.limits
    }

    fn durable_syncs(&self) -> Option<u64> {
        Some(self.store.metrics.syncs.load(Ordering::Relaxed))
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
            reason: reason.to_string(),
        })?;
        u.segment_bytes += seg
            .file
            .len()
            .map_err(|e| Error::io(format!("sizing {}", seg.path.display()), e))?;
        u.segment_bytes_on_disk += std::fs::metadata(&seg.path)
            .map_err(|e| Error::io(format!("sizing {}", seg.path.display()), e))?
            .len();
    }
    let idx_dir = dir.join("index");
    let listing = |e| Error::io(format!("listing {}", idx_dir.display()), e);
    for entry in std::fs::read_dir(&idx_dir).map_err(listing)? {
        let meta = entry.and_then(|e| e.metadata()).map_err(listing)?;
        if meta.is_file() {
            u.index_bytes += meta.len();
        }
    }
    u.checkpoint_bytes = std::fs::metadata(dir.join(STREAM_CHECKPOINT_FILE)).map_or(0, |m| m.len());
    Ok(u)
}
