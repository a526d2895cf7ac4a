//! The single writer thread: group commit.
//!
//! Callers queue requests on a bounded channel. The writer takes everything
//! pending (up to `max_batch_bytes`), checks each append against the stream
//! heads as they will be after the appends before it in the batch (so one
//! conflict does not fail its neighbours), encodes one frame per append,
//! writes the batch with one `write`, syncs once, publishes the new state to
//! readers and only then acknowledges each caller.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use strata_core::append_rules::{check_guard, check_retry, RecordedRef, StreamHead};
use strata_core::clock::MonotonicClock;
use strata_core::handoff::Reply as ReplyTo;
use strata_core::{
    AppendResult, Error, EventId, ExpectedVersion, Position, Result, StreamAppend, StreamId,
};
use tokio::sync::mpsc;
use tracing::{debug, error, info, warn};

use crate::config::Durability;
use crate::format::{
    align, encode_segment_header, position_of, FrameKind, FrameWriter, RecordView,
    FRAME_HEADER_BYTES, RECORD_HEADER_BYTES,
};
use crate::index::{key_hash, IndexEntry};
use crate::segment::{read_records, segment_file_name, Segment, FIRST_FRAME_OFFSET};
use crate::store::Shared;

/// Work for the writer.
pub enum Request {
    /// One append or one multi-stream append.
    Append {
        /// The parts (one for a plain append).
        parts: Vec<StreamAppend>,
        /// Where the outcome goes.
        reply: ReplyTo<Vec<AppendResult>>,
    },
    /// A soft delete or tombstone.
    Delete {
        /// The stream.
        stream: StreamId,
        /// Its guard.
        expected: ExpectedVersion,
        /// Hard delete.
        tombstone: bool,
        /// Where the outcome goes.
        reply: ReplyTo<()>,
    },
    /// Sync now (interval ticks and explicit flushes).
    Sync {
        /// Told when done.
        reply: Option<ReplyTo<()>>,
    },
    /// Sync, checkpoint and stop.
    Close {
        /// Told when done.
        reply: ReplyTo<()>,
    },
}

enum Reply {
    Append(ReplyTo<Vec<AppendResult>>, Vec<AppendResult>),
    Delete(ReplyTo<()>),
    Sync(ReplyTo<()>),
}

enum Effect {
    Event {
        stream: StreamId,
        version: u64,
        entry: IndexEntry,
    },
    Frame(u64),
    Delete {
        stream: StreamId,
        through: u64,
        tombstone: bool,
    },
}

/// The writer thread's state.
pub struct Writer {
    shared: Arc<Shared>,
    rx: mpsc::Receiver<Request>,
    segment: Arc<Segment>,
    tail: u64,
    clock: MonotonicClock,
    frames: FrameWriter,
    last_sync: Instant,
    dirty: bool,
    sealed_since_checkpoint: u32,
    carry: VecDeque<Request>,
    poisoned: Option<String>,
    last_batch_requests: usize,
    last_sync_took: Duration,
}

/// Longest a batch waits for more requests before it is written.
const LINGER_MAX: Duration = Duration::from_micros(500);
/// How long an idle writer polls for the next request before it parks.
const FIRST_REQUEST_SPIN: Duration = Duration::from_micros(50);
/// A batch stops waiting once no request arrived for this long.
const LINGER_IDLE: Duration = Duration::from_micros(40);

impl Writer {
    /// A writer that appends to `segment` at `tail`.
    pub fn new(
        shared: Arc<Shared>,
        rx: mpsc::Receiver<Request>,
        segment: Arc<Segment>,
        tail: u64,
        clock: MonotonicClock,
    ) -> Self {
        Writer {
            shared,
            rx,
            segment,
            tail,
            clock,
            frames: FrameWriter::new(),
            last_sync: Instant::now(),
            dirty: false,
            sealed_since_checkpoint: 0,
            carry: VecDeque::new(),
            poisoned: None,
            last_batch_requests: 0,
            last_sync_took: Duration::ZERO,
        }
    }

    /// Runs until a `Close` request or until every sender is gone.
    pub fn run(mut self) {
        loop {
            let first = match self.carry.pop_front() {
                Some(r) => r,
                None => match self.next_request() {
                    Some(r) => r,
                    None => {
                        let _ = self.close();
                        return;
                    }
                },
            };
            let mut batch = vec![first];
            let mut bytes = 0usize;
            let linger = self.linger_budget();
            let started = Instant::now();
            let mut last_arrival = started;
            while bytes < self.shared.config.max_batch_bytes {
                let next = match self.carry.pop_front() {
                    Some(r) => r,
                    None => match self.rx.try_recv() {
                        Ok(r) => r,
                        Err(_) => {
                            // Group commit: when other writers are likely to be
                            // about to send (the last batch had several), wait a
                            // moment for them so one fsync covers them too.
                            let now = Instant::now();
                            if now.duration_since(last_arrival) < LINGER_IDLE
                                && now.duration_since(started) < linger
                            {
                                std::thread::yield_now();
                                continue;
                            }
                            break;
                        }
                    },
                };
                last_arrival = Instant::now();
                if let Request::Append { parts, .. } = &next {
                    bytes += parts
                        .iter()
                        .flat_map(|p| p.events.iter())
                        .map(|e| e.size_bytes() + RECORD_HEADER_BYTES)
                        .sum::<usize>();
                }
                let stop = matches!(next, Request::Close { .. });
                batch.push(next);
                if stop {
                    break;
                }
            }
            self.last_batch_requests = batch.len();
            if self.process(batch) {
                return;
            }
        }
    }

    /// The next request: polled for a moment first, because a writer that
    /// was just acknowledged usually sends again within microseconds and
    /// parking this thread would add a wake-up to its latency; then blocks.
    fn next_request(&mut self) -> Option<Request> {
        let started = Instant::now();
        while started.elapsed() < FIRST_REQUEST_SPIN {
            match self.rx.try_recv() {
                Ok(r) => return Some(r),
                Err(tokio::sync::mpsc::error::TryRecvError::Empty) => std::thread::yield_now(),
                Err(tokio::sync::mpsc::error::TryRecvError::Disconnected) => return None,
            }
        }
        self.rx.blocking_recv()
    }

    /// How long the next batch may wait for more requests: only in `Always`
    /// mode, only after a batch of several requests, and at most half the
    /// last fsync (so lingering never costs more than it saves).
    fn linger_budget(&self) -> Duration {
        if self.shared.config.durability != Durability::Always || self.last_batch_requests < 2 {
            return Duration::ZERO;
        }
        (self.last_sync_took / 2).min(LINGER_MAX)
    }

    fn poison(&mut self, reason: String) {
        error!(reason = %reason, "log store stops accepting writes");
        *self.shared.poisoned.lock() = Some(reason.clone());
        self.poisoned = Some(reason);
    }

    fn poisoned_error(&self) -> Error {
        Error::Poisoned {
            reason: self.poisoned.clone().unwrap_or_default(),
        }
    }

    /// Handles one batch; returns true when the writer must stop.
    fn process(&mut self, batch: Vec<Request>) -> bool {
        if self.poisoned.is_some() {
            let mut stop = false;
            for r in batch {
                match r {
                    Request::Append { reply, .. } => {
                        let _ = reply.send(Err(self.poisoned_error()));
                    }
                    Request::Delete { reply, .. } => {
                        let _ = reply.send(Err(self.poisoned_error()));
                    }
                    Request::Sync { reply } => {
                        if let Some(reply) = reply {
                            let _ = reply.send(Err(self.poisoned_error()));
                        }
                    }
                    Request::Close { reply } => {
                        let _ = reply.send(Ok(()));
                        stop = true;
                    }
                }
            }
            return stop;
        }

        let mut replies: Vec<Reply> = Vec::with_capacity(batch.len());
        let mut effects: Vec<Effect> = Vec::new();
        let mut force_sync = false;
        let mut close: Option<ReplyTo<()>> = None;
        let mut rotate = false;
        let mut last_position = None;
        self.frames.clear();

        {
            let shared = self.shared.clone();
            let state = shared.state.read();
            let mut overlay: crate::index::FastMap<StreamId, StreamHead> = Default::default();
            let mut batch_ids: HashMap<EventId, (StreamId, u64, u64)> = HashMap::new();
            let max_segment = shared.config.max_segment_bytes;
            let seg_no = self.segment.number;
            let mut queue: VecDeque<Request> = batch.into();
            while let Some(req) = queue.pop_front() {
                match req {
                    Request::Append { parts, reply } => {
                        // Exact retries first, then guards, for every part.
                        let mut retries = Vec::with_capacity(parts.len());
                        let mut failed = None;
                        for part in &parts {
                            // A tombstone refuses everything, exact retries included.
                            let tombstoned = overlay
                                .get(&part.stream)
                                .or_else(|| {
                                    state.streams.streams.get(&part.stream).map(|e| &e.head)
                                })
                                .is_some_and(|h| h.tombstoned);
                            if tombstoned {
                                failed = Some(Error::StreamDeleted {
                                    stream: part.stream.clone(),
                                });
                                break;
                            }
                            match self.retry_of(&state, &batch_ids, part) {
                                Ok(r) => retries.push(r),
                                Err(e) => {
                                    failed = Some(e);
                                    break;
                                }
                            }
                        }
                        if let Some(e) = failed {
                            let _ = reply.send(Err(e));
                            continue;
                        }
                        let n_retries = retries.iter().filter(|r| r.is_some()).count();
                        if n_retries == parts.len() {
                            // Answer after this batch is synced: the original may be in it.
                            replies.push(Reply::Append(
                                reply,
                                retries.into_iter().flatten().collect(),
                            ));
                            continue;
                        }
                        if n_retries > 0 {
                            let event_id = parts
                                .iter()
                                .zip(&retries)
                                .find(|(_, r)| r.is_some())
                                .and_then(|(p, _)| p.events.first().and_then(|e| e.id))
                                .unwrap_or_default();
                            let _ = reply.send(Err(Error::IdempotencyConflict {
                                event_id,
                                reason: "a multi-stream append re-sends some recorded streams together with new ones".into(),
                            }));
                            continue;
                        }
                        let mut guard_err = None;
                        for part in &parts {
                            let head = overlay.get(&part.stream).or_else(|| {
                                state.streams.streams.get(&part.stream).map(|e| &e.head)
                            });
                            if let Err(e) = check_guard(&part.stream, part.expected, head) {
                                guard_err = Some(e);
                                break;
                            }
                        }
                        if let Some(e) = guard_err {
                            let _ = reply.send(Err(e));
                            continue;
                        }
                        // Does it fit in this segment?
                        let frame_len = append_frame_len(&parts);
                        let at = self.tail + self.frames.len() as u64;
                        if at + frame_len > max_segment {
                            if self.frames.is_empty() && self.tail == FIRST_FRAME_OFFSET {
                                let _ = reply.send(Err(Error::invalid(format!(
                                    "append of {frame_len} bytes does not fit in a segment of {max_segment} bytes"
                                ))));
                                continue;
                            }
                            rotate = true;
                            self.carry.push_back(Request::Append { parts, reply });
                            self.carry.extend(queue.drain(..));
                            break;
                        }
                        // Encode.
                        let now = self.clock.now().timestamp_micros();
                        let frame_at = self.frames.begin(FrameKind::Append);
                        effects.push(Effect::Frame(self.tail + frame_at as u64));
                        let count: usize = parts.iter().map(|p| p.events.len()).sum();
                        self.frames.put_u32(count as u32);
                        let mut results = Vec::with_capacity(parts.len());
                        for part in parts {
                            let head = overlay
                                .get(&part.stream)
                                .copied()
                                .or_else(|| state.streams.streams.get(&part.stream).map(|e| e.head))
                                .unwrap_or_default();
                            let mut head = head;
                            let category_hash = key_hash(part.stream.category());
                            let mut first = None;
                            for e in part.events {
                                let id = e.id.unwrap_or_default();
                                let version = head.version + 1;
                                let rec_at = self.frames.record(
                                    part.stream.as_str(),
                                    version,
                                    id,
                                    now,
                                    e.content_type,
                                    &e.event_type,
                                    &e.metadata,
                                    &e.data,
                                );
                                let position = position_of(seg_no, self.tail + rec_at as u64).0;
                                first.get_or_insert(position);
                                head.version = version;
                                head.last_position = Some(Position(position));
                                if e.id.is_some() {
                                    // Only caller-chosen ids can be re-sent in this batch.
                                    batch_ids.insert(id, (part.stream.clone(), version, position));
                                }
                                effects.push(Effect::Event {
                                    stream: part.stream.clone(),
                                    version,
                                    entry: IndexEntry {
                                        id: id.0.as_u128(),
                                        position,
                                        type_hash: key_hash(&e.event_type),
                                        category_hash,
                                        correlation_hash: e
                                            .metadata
                                            .correlation_id
                                            .as_deref()
                                            .map(key_hash),
                                    },
                                });
                                last_position = Some(position);
                            }
                            results.push(AppendResult {
                                next_expected_version: head.version,
                                first_position: Position(first.unwrap_or_default()),
                                last_position: head.last_position.unwrap_or_default(),
                            });
                            overlay.insert(part.stream, head);
                        }
                        self.frames.finish();
                        debug_assert_eq!(self.frames.len() - frame_at, frame_len as usize);
                        replies.push(Reply::Append(reply, results));
                    }
                    Request::Delete {
                        stream,
                        expected,
                        tombstone,
                        reply,
                    } => {
                        let head = overlay
                            .get(&stream)
                            .copied()
                            .or_else(|| state.streams.streams.get(&stream).map(|e| e.head));
                        if let Some(h) = &head {
                            if h.tombstoned {
                                let _ = reply.send(Err(Error::StreamDeleted { stream }));
                                continue;
                            }
                        }
                        let live = head.is_some_and(|h| h.version > h.deleted_through);
                        if !tombstone && !live {
                            let _ = reply.send(Err(Error::StreamNotFound { stream }));
                            continue;
                        }
                        if let Err(e) = check_guard(&stream, expected, head.as_ref()) {
                            let _ = reply.send(Err(e));
                            continue;
                        }
                        let len = align(FRAME_HEADER_BYTES + 1 + stream.as_str().len() + 8) as u64;
                        if self.tail + self.frames.len() as u64 + len > max_segment {
                            rotate = true;
                            self.carry.push_back(Request::Delete {
                                stream,
                                expected,
                                tombstone,
                                reply,
                            });
                            self.carry.extend(queue.drain(..));
                            break;
                        }
                        let mut h = head.unwrap_or_default();
                        let through = h.version;
                        let kind = if tombstone {
                            h.tombstoned = true;
                            FrameKind::Tombstone
                        } else {
                            h.deleted_through = through;
                            FrameKind::Delete
                        };
                        let frame_at = self.frames.begin(kind);
                        self.frames.delete_body(stream.as_str(), through);
                        self.frames.finish();
                        effects.push(Effect::Frame(self.tail + frame_at as u64));
                        effects.push(Effect::Delete {
                            stream: stream.clone(),
                            through,
                            tombstone,
                        });
                        overlay.insert(stream, h);
                        replies.push(Reply::Delete(reply));
                    }
                    Request::Sync { reply } => {
                        force_sync = true;
                        if let Some(r) = reply {
                            replies.push(Reply::Sync(r));
                        }
                    }
                    Request::Close { reply } => {
                        close = Some(reply);
                        self.carry.extend(queue.drain(..));
                        break;
                    }
                }
            }
        }

        // Write and sync.
        let wrote = !self.frames.is_empty();
        let mut failure: Option<String> = None;
        if wrote {
            if let Err(e) = self.segment.file.write_all_at(&self.frames.buf, self.tail) {
                failure = Some(format!(
                    "write of {} bytes to {} at offset {} failed: {e}",
                    self.frames.len(),
                    self.segment.path.display(),
                    self.tail
                ));
            } else {
                self.dirty = true;
            }
        }
        if failure.is_none() {
            let sync_now = match self.shared.config.durability {
                Durability::Always => self.dirty,
                Durability::Interval(d) => {
                    self.dirty && (force_sync || self.last_sync.elapsed() >= d)
                }
                Durability::None => self.dirty && force_sync,
            } || (force_sync && self.dirty)
                || (rotate && self.dirty)
                || (close.is_some() && self.dirty);
            if sync_now {
                let sync_started = Instant::now();
                if let Err(e) = self.segment.file.sync_data() {
                    failure = Some(format!(
                        "fsync of {} failed: {e}",
                        self.segment.path.display()
                    ));
                } else {
                    self.shared.metrics.record_sync();
                    self.dirty = false;
                    self.last_sync = Instant::now();
                    self.last_sync_took = sync_started.elapsed();
                }
            }
        }
        if let Some(reason) = failure {
            self.poison(reason);
            for r in replies {
                match r {
                    Reply::Append(tx, _) => {
                        let _ = tx.send(Err(self.poisoned_error()));
                    }
                    Reply::Delete(tx) | Reply::Sync(tx) => {
                        let _ = tx.send(Err(self.poisoned_error()));
                    }
                }
            }
            // Everything carried over fails the same way on the next turn.
            if let Some(c) = close {
                let _ = c.send(Err(self.poisoned_error()));
                return true;
            }
            return false;
        }

        // Publish, then acknowledge.
        if wrote {
            self.tail += self.frames.len() as u64;
            let mut state = self.shared.state.write();
            for eff in effects {
                match eff {
                    Effect::Event {
                        stream,
                        version,
                        entry,
                    } => {
                        state.streams.add_event(&stream, version, entry.position);
                        state.active.add(&entry);
                    }
                    Effect::Frame(off) => state.active.add_frame(off),
                    Effect::Delete {
                        stream,
                        through,
                        tombstone,
                    } => state.streams.delete(&stream, through, tombstone),
                }
            }
            state.visible_end = self.tail;
            if let Some(p) = last_position {
                state.head = Position(p);
            }
            let head = state.head;
            drop(state);
            self.shared.publish_head(head);
        }
        for r in replies {
            match r {
                Reply::Append(tx, results) => {
                    let _ = tx.send(Ok(results));
                }
                Reply::Delete(tx) | Reply::Sync(tx) => {
                    let _ = tx.send(Ok(()));
                }
            }
        }

        if rotate {
            if let Err(e) = self.rotate() {
                self.poison(format!(
                    "sealing segment {} failed: {e}",
                    self.segment.number
                ));
            }
        }
        if let Some(reply) = close {
            let r = self.close();
            let _ = reply.send(r);
            return true;
        }
        false
    }

    /// Decides whether `part` is an exact retry.
    fn retry_of(
        &self,
        state: &crate::state::State,
        batch_ids: &HashMap<EventId, (StreamId, u64, u64)>,
        part: &StreamAppend,
    ) -> Result<Option<AppendResult>> {
        // Resolve every supplied id that is recorded (in this batch or before).
        let mut found: HashMap<EventId, (String, u64, u64)> = HashMap::new();
        for e in &part.events {
            let Some(id) = e.id else { continue };
            if let Some((s, v, p)) = batch_ids.get(&id) {
                found.insert(id, (s.as_str().to_owned(), *v, *p));
            } else if let Some(p) = self.lookup_or_repair(state, id)? {
                let (stream, version) = self.read_stream_version(state, p)?;
                found.insert(id, (stream, version, p));
            }
        }
        if found.is_empty() {
            return Ok(None);
        }
        check_retry(&part.stream, &part.events, |id| {
            found.get(id).map(|(s, v, p)| RecordedRef {
                stream: s.as_str(),
                version: *v,
                position: Position(*p),
            })
        })
    }

    /// Looks an id up; a damaged sealed index fails this append and is
    /// rebuilt in the background, so a retry succeeds.
    fn lookup_or_repair(&self, state: &crate::state::State, id: EventId) -> Result<Option<u64>> {
        match state.lookup_id(id.0.as_u128()) {
            Err(Error::Corrupt { location, reason }) => {
                if let Some(n) = crate::store::damaged_index_segment(&location) {
                    let shared = self.shared.clone();
                    let _ = std::thread::Builder::new()
                        .name(format!("strata-reindex-{n}"))
                        .spawn(move || {
                            if let Err(e) = shared.repair_index(n) {
                                error!(segment = n, error = %e, "rebuilding a damaged segment index failed");
                            }
                        });
                }
                Err(Error::Corrupt { location, reason })
            }
            other => other,
        }
    }

    fn read_stream_version(&self, state: &crate::state::State, p: u64) -> Result<(String, u64)> {
        let (seg, off) = crate::format::split_position(Position(p));
        let segment = state.segments.get(&seg).ok_or_else(|| Error::Corrupt {
            location: format!("position {p}"),
            reason: "event id index points to a missing segment".into(),
        })?;
        let bufs = read_records(segment.file.as_ref(), &[off])
            .map_err(|e| Error::io(format!("reading {}", segment.path.display()), e))?;
        let (buf, at) = bufs.into_iter().next().ok_or_else(|| Error::Corrupt {
            location: crate::state::location(&segment.path, off),
            reason: "record missing".into(),
        })?;
        let view = RecordView::parse(&buf[at..]).map_err(|reason| Error::Corrupt {
            location: crate::state::location(&segment.path, off),
            reason,
        })?;
        Ok((view.stream.to_owned(), view.version))
    }

    /// Seals the active segment: index file, new segment, maybe a stream checkpoint.
    fn rotate(&mut self) -> std::io::Result<()> {
        let shared = self.shared.clone();
        let storage = shared.config.storage.as_ref();
        if self.dirty {
            self.segment.file.sync_data()?;
            self.dirty = false;
        }
        let old = self.segment.number;
        let next = old + 1;
        let path = shared
            .config
            .dir
            .join("segments")
            .join(segment_file_name(next));
        let file = storage.open(&path, true)?;
        file.set_len(0)?;
        file.write_all_at(&encode_segment_header(next), 0)?;
        file.sync_data()?;
        storage.sync_dir(&shared.config.dir.join("segments"))?;
        let segment = Arc::new(Segment {
            number: next,
            path,
            file,
        });
        {
            let mut state = shared.state.write();
            let sealing = Arc::new(std::mem::take(&mut state.active));
            state.sealing.insert(old, sealing);
            state.active_segment = next;
            state.segments.insert(next, segment.clone());
            state.visible_end = FIRST_FRAME_OFFSET;
        }
        self.segment = segment;
        self.tail = FIRST_FRAME_OFFSET;
        info!(sealed = old, next, "sealed segment");
        // Writing the index file and compressing happen off the writer thread.
        shared.spawn_sealing(old);
        self.sealed_since_checkpoint += 1;
        if self.sealed_since_checkpoint >= shared.config.stream_checkpoint_every_segments {
            self.write_stream_checkpoint()?;
        }
        Ok(())
    }

    fn write_stream_checkpoint(&mut self) -> std::io::Result<()> {
        let shared = self.shared.clone();
        let bytes = shared
            .state
            .read()
            .streams
            .encode_checkpoint((self.segment.number, self.tail));
        crate::io::write_file_atomic(
            shared.config.storage.as_ref(),
            &shared.config.dir.join(crate::store::STREAM_CHECKPOINT_FILE),
            &bytes,
        )?;
        self.sealed_since_checkpoint = 0;
        debug!(bytes = bytes.len(), "wrote stream checkpoint");
        Ok(())
    }

    /// Syncs and checkpoints; after this the store reopens without replay.
    fn close(&mut self) -> Result<()> {
        if let Some(reason) = &self.poisoned {
            warn!(reason = %reason, "closing a store that stopped accepting writes; no checkpoint written");
            self.shared.close_head();
            return Ok(());
        }
        let r = (|| -> std::io::Result<()> {
            if self.dirty {
                self.segment.file.sync_data()?;
                self.dirty = false;
            }
            self.write_stream_checkpoint()
        })();
        self.shared.close_head();
        r.map_err(|e| Error::io("closing the log store", e))
    }
}

/// The exact size of the frame `parts` encode to.
fn append_frame_len(parts: &[StreamAppend]) -> u64 {
    let mut n = FRAME_HEADER_BYTES + 4;
    for p in parts {
        for e in &p.events {
            n += RECORD_HEADER_BYTES
                + p.stream.as_str().len()
                + e.event_type.len()
                + metadata_len(&e.metadata)
                + e.data.len();
        }
    }
    align(n) as u64
}

fn metadata_len(m: &strata_core::Metadata) -> usize {
    let mut n = 0;
    for s in [&m.correlation_id, &m.causation_id, &m.user_id, &m.source]
        .into_iter()
        .flatten()
    {
        n += 2 + s.len();
    }
    if !m.extra.is_empty() {
        n += 4 + m
            .extra
            .iter()
            .map(|(k, v)| 2 + k.len() + 4 + v.len())
            .sum::<usize>();
    }
    n
}
