//! The single writer thread: group commit, in stages.
//!
//! Callers queue requests on a bounded channel. The writer takes everything
//! pending (up to `max_batch_bytes`) and, for each batch:
//! - [`decide`]: checks each request against the stream heads as they will
//!   be after the requests before it in the batch (so one conflict does not
//!   fail its neighbours): tombstones, exact retries ([`retry`]), guards;
//! - [`encode`]: encodes one frame per accepted append or delete;
//! - [`commit`]: writes the batch with one `write` and hands it to the
//!   [`stage`] thread, which syncs once for every turn queued, publishes
//!   the new state to readers and only then acknowledges each caller,
//!   while this thread goes on with the next batch ([`pending`] lets its
//!   checks see the turns not yet published).
//!
//! A request that does not fit in the active segment has it sealed
//! ([`seal`]) and waits for the next turn.

mod commit;
mod decide;
mod encode;
mod pending;
mod retry;
mod seal;
mod stage;

pub(crate) use encode::append_frame_len;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use strata_core::clock::MonotonicClock;
use strata_core::dcb::{AppendCondition, Tag};
use strata_core::handoff::Reply as ReplyTo;
use strata_core::{AppendResult, Error, ExpectedVersion, StreamAppend, StreamId, StreamMetadata};
use tokio::sync::mpsc;
use tracing::error;

use crate::config::Durability;
use crate::format::FrameWriter;
use crate::index::IndexEntry;
use crate::segment::Segment;
use crate::state::OpenStore;
use crate::streams::DeleteKind;
use crate::writer::pending::Decided;
use crate::writer::stage::SyncStage;

/// Work for the writer.
pub enum Request {
    /// One append or one multi-stream append.
    Append {
        /// The parts (one for a plain append).
        parts: Vec<StreamAppend>,
        /// A conditional append's condition, checked in the batch.
        condition: Option<Box<AppendCondition>>,
        /// The exact size of the frame the parts encode to
        /// ([`append_frame_len`]), measured once by the caller's task.
        frame_len: u64,
        /// Where the outcome goes.
        reply: ReplyTo<Vec<AppendResult>>,
    },
    /// A soft delete, tombstone or erasure.
    Delete {
        /// The stream.
        stream: StreamId,
        /// Its guard.
        expected: ExpectedVersion,
        /// Which.
        kind: DeleteKind,
        /// Where the outcome goes.
        reply: ReplyTo<()>,
    },
    /// Sync now (interval ticks and explicit flushes).
    Sync {
        /// Told when done.
        reply: Option<ReplyTo<()>>,
    },
    /// Nothing: answered once every request sent before it (and the seal
    /// they caused) is done, without a sync.
    Barrier {
        /// Told when done.
        reply: ReplyTo<()>,
    },
    /// Seal the active segment now, if it holds any frame (so a scavenge
    /// can reach its events); answered once the next one is started.
    Seal {
        /// Told when done.
        reply: ReplyTo<()>,
    },
    /// Sync, checkpoint and stop.
    Close {
        /// Told when done.
        reply: ReplyTo<()>,
    },
}

/// A caller to answer once the turn is committed.
enum PendingAck {
    /// An append (or an exact retry) and its outcome.
    Append(ReplyTo<Vec<AppendResult>>, Vec<AppendResult>),
    /// An append refused because its condition matched: answered once the
    /// turn is committed, so the matching event it names (perhaps earlier
    /// in the same batch) is readable and durable when the caller hears.
    Refused(ReplyTo<Vec<AppendResult>>, Error),
    /// A delete or tombstone.
    Delete(ReplyTo<()>),
    /// A flush.
    Sync(ReplyTo<()>),
}

/// A change to the in-memory state that a committed frame brings.
enum Effect {
    /// The events an append frame records for one stream.
    Events(EventRun),
    Frame(u64),
    Delete {
        stream: StreamId,
        through: u64,
        kind: DeleteKind,
    },
    /// An append to a metadata stream sets its stream's metadata.
    Metadata {
        target: StreamId,
        metadata: StreamMetadata,
    },
}

/// The events one append frame records for one stream, in position order:
/// published to the indexes together, so each index is looked up once per
/// stream and key rather than once per event.
struct EventRun {
    stream: StreamId,
    /// Version of the first event; the others follow it one by one.
    first_version: u64,
    /// What each event adds to the segment's index.
    entries: Vec<IndexEntry>,
    /// Each event's type and tag set, for the tag index; empty for a
    /// system stream.
    tagged: Vec<(String, Vec<Tag>)>,
}

impl EventRun {
    /// An empty run of `stream` from `first_version`, with room for `n`
    /// events.
    fn starting(stream: &StreamId, first_version: u64, n: usize) -> Self {
        EventRun {
            stream: stream.clone(),
            first_version,
            entries: Vec::with_capacity(n),
            tagged: if stream.is_system() {
                Vec::new()
            } else {
                Vec::with_capacity(n)
            },
        }
    }

    /// Each event's position, in order.
    fn positions(&self) -> impl ExactSizeIterator<Item = u64> + '_ {
        self.entries.iter().map(|e| e.position)
    }
}

/// The writer thread's state.
pub struct Writer {
    store: Arc<OpenStore>,
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
    /// Makes written turns durable and visible, and answers their callers.
    stage: SyncStage,
    /// Number of the last turn handed to the stage.
    turn_seq: u64,
    /// Turns handed to the stage and not known published yet, oldest first.
    inflight: VecDeque<(u64, Decided)>,
}

/// Longest a batch waits for more requests before it is written.
const LINGER_MAX: Duration = Duration::from_micros(500);
/// How long an idle writer polls for the next request before it parks.
const FIRST_REQUEST_SPIN: Duration = Duration::from_micros(50);
/// A batch stops waiting once no request arrived for this long.
const LINGER_IDLE: Duration = Duration::from_micros(40);

impl Writer {
    /// A writer that appends to `segment` at `tail` (and starts its sync
    /// stage thread).
    pub fn new(
        store: Arc<OpenStore>,
        rx: mpsc::Receiver<Request>,
        segment: Arc<Segment>,
        tail: u64,
        next_frame_seq: u32,
        clock: MonotonicClock,
    ) -> std::io::Result<Self> {
        Ok(Writer {
            stage: SyncStage::start(store.clone())?,
            turn_seq: 0,
            inflight: VecDeque::new(),
            store,
            rx,
            frames: FrameWriter::for_segment(segment.check, next_frame_seq),
            segment,
            tail,
            clock,
            last_sync: Instant::now(),
            dirty: false,
            sealed_since_checkpoint: 0,
            carry: VecDeque::new(),
            poisoned: None,
            last_batch_requests: 0,
        })
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
            while bytes < self.store.config.max_batch_bytes {
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
                if let Request::Append { frame_len, .. } = &next {
                    bytes += *frame_len as usize;
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
        if self.store.config.durability != Durability::Always || self.last_batch_requests < 2 {
            return Duration::ZERO;
        }
        (self.stage.last_sync_took() / 2).min(LINGER_MAX)
    }

    /// Refuses every write from the start, for `reason` (a damaged store
    /// opened read-only).
    pub fn read_only(&mut self, reason: String) {
        *self.store.poisoned.lock() = Some(reason.clone());
        self.poisoned = Some(reason);
    }

    /// Stops accepting writes if the sync stage failed a sync.
    fn adopt_stage_failure(&mut self) {
        if self.poisoned.is_none() {
            self.poisoned = self.store.poisoned.lock().clone();
        }
    }

    /// Waits until every turn handed to the sync stage is published and
    /// answered, then adopts its failure, if any.
    fn drain_stage(&mut self) {
        self.stage.drain();
        self.adopt_stage_failure();
    }

    fn poison(&mut self, reason: String) {
        error!(reason = %reason, "log store stops accepting writes");
        *self.store.poisoned.lock() = Some(reason.clone());
        self.poisoned = Some(reason);
    }

    fn poisoned_error(&self) -> Error {
        Error::Poisoned {
            reason: self.poisoned.clone().unwrap_or_default(),
        }
    }

    /// Handles one batch; returns true when the writer must stop.
    fn process(&mut self, batch: Vec<Request>) -> bool {
        self.adopt_stage_failure();
        if self.poisoned.is_some() {
            self.stage.drain();
            return self.refuse(batch);
        }
        let mut turn = Turn::default();
        self.frames.clear();
        if let Some(seq) = self.stage.synced_before(self.segment.number) {
            self.frames.mark_synced_before(seq);
        }
        let decided = self.decide(batch, &mut turn);
        if let Err(reason) = self.write() {
            return self.fail(reason, turn);
        }
        self.hand_off(&mut turn, decided);
        if turn.rotate || turn.close.is_some() || !turn.after_seal.is_empty() {
            // Sealing and closing need every turn published first.
            self.drain_stage();
        }
        if turn.rotate && self.poisoned.is_none() {
            if let Err(e) = self.rotate() {
                self.poison(format!(
                    "sealing segment {} failed: {e}",
                    self.segment.number
                ));
            }
        }
        for reply in std::mem::take(&mut turn.after_seal) {
            let r = match self.poisoned {
                Some(_) => Err(self.poisoned_error()),
                None => Ok(()),
            };
            let _ = reply.send(r);
        }
        if let Some(reply) = turn.close {
            let r = self.close();
            let _ = reply.send(r);
            return true;
        }
        false
    }

    /// Answers every request of a batch once the store is poisoned: writes
    /// and flushes fail, a close succeeds (and stops the writer).
    fn refuse(&self, batch: Vec<Request>) -> bool {
        let mut stop = false;
        for r in batch {
            match r {
                Request::Append { reply, .. } => {
                    let _ = reply.send(Err(self.poisoned_error()));
                }
                Request::Delete { reply, .. } => {
                    let _ = reply.send(Err(self.poisoned_error()));
                }
                Request::Barrier { reply } => {
                    let _ = reply.send(Ok(()));
                }
                Request::Seal { reply } => {
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
        stop
    }
}

/// What one turn of the writer decided and encoded, waiting to be committed.
#[derive(Default)]
struct Turn {
    /// Callers to answer, in order.
    acks: Vec<PendingAck>,
    /// State changes to publish once the frames are committed.
    effects: Vec<Effect>,
    /// A flush asked for a sync.
    force_sync: bool,
    /// A close, answered after the commit.
    close: Option<ReplyTo<()>>,
    /// The active segment is full, or a seal was asked for: seal it after
    /// the commit.
    rotate: bool,
    /// Seals asked for, answered after the seal.
    after_seal: Vec<ReplyTo<()>>,
    /// Position of the last event encoded.
    last_position: Option<u64>,
}
