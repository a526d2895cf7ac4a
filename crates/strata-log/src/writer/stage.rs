//! The sync stage: a second thread that makes written turns durable,
//! publishes them to readers and answers their callers, while the writer
//! thread decides, encodes and writes the next turn.
//!
//! The writer hands each written turn over as a [`Job`], in log order. The
//! stage takes every job queued, syncs once for all of them (a sync of the
//! file covers every byte written before it started), then, in order,
//! applies each job's effects to the shared state and answers its callers.
//! So a caller still hears only of bytes that are durable, and a reader
//! still sees only those; what changes is that the writer's CPU work and
//! the disk's flush overlap instead of adding up.
//!
//! A failed sync stops the store: that job, every job queued with it and
//! every later one fail, since their bytes follow bytes the disk may have
//! dropped.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use strata_core::{Error, Position};
use tracing::error;

use crate::segment::Segment;
use crate::state::{OpenStore, State};
use crate::writer::{Effect, PendingAck};

/// Most turns written and not yet published at once: the writer waits for
/// the stage once this many are queued (each holds at most one batch,
/// `LogConfig::max_batch_bytes`).
pub const MAX_TURNS_IN_FLIGHT: usize = 4;

/// One written turn, for the stage to sync, publish and answer.
pub(super) struct Job {
    /// The turn's number (ascending from 1).
    pub seq: u64,
    /// Whether the durability mode (or a flush) asks for a sync first.
    pub sync: bool,
    /// The segment its frames were written to.
    pub segment: Arc<Segment>,
    /// Where the segment's written bytes end after this turn.
    pub end: u64,
    /// Sequence number of the segment's next frame after this turn: once
    /// synced, every frame before it is durable.
    pub next_frame_seq: u32,
    /// Whether the turn wrote any frame (else it only answers callers).
    pub wrote: bool,
    /// State changes its frames bring.
    pub effects: Vec<Effect>,
    /// Callers to answer, in order.
    pub acks: Vec<PendingAck>,
    /// Position of its last event.
    pub last_position: Option<u64>,
}

/// What the writer sends the stage.
enum Message {
    /// A written turn.
    Commit(Job),
    /// Answered once every job sent before it is published and answered.
    Drain(Sender<()>),
}

/// What the stage tells the writer, shared through atomics.
#[derive(Default)]
struct Progress {
    /// The last turn published (0: none yet).
    published: AtomicU64,
    /// The last sync's cover: segment number in the high 32 bits, the
    /// segment's next frame sequence number then in the low 32.
    synced: AtomicU64,
    /// How long the last sync took, in nanoseconds.
    sync_nanos: AtomicU64,
}

/// The writer's handle on the stage thread.
pub(super) struct SyncStage {
    tx: Option<SyncSender<Message>>,
    progress: Arc<Progress>,
    handle: Option<JoinHandle<()>>,
}

impl SyncStage {
    /// Starts the stage thread for `store`.
    pub fn start(store: Arc<OpenStore>) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::sync_channel(MAX_TURNS_IN_FLIGHT);
        let progress = Arc::new(Progress::default());
        let shared = progress.clone();
        let handle = std::thread::Builder::new()
            .name("strata-log-sync".into())
            .spawn(move || run(&store, &rx, &shared))?;
        Ok(SyncStage {
            tx: Some(tx),
            progress,
            handle: Some(handle),
        })
    }

    /// Hands a written turn over. If the stage is gone (it only stops when
    /// this handle drops), the turn's callers are told the store stopped.
    pub fn send(&self, job: Job) {
        let Some(tx) = &self.tx else {
            fail_acks(job.acks, STOPPED);
            return;
        };
        if let Err(mpsc::SendError(Message::Commit(job))) = tx.send(Message::Commit(job)) {
            fail_acks(job.acks, STOPPED);
        }
    }

    /// Waits until every turn handed over is published and answered.
    pub fn drain(&self) {
        let Some(tx) = &self.tx else { return };
        let (done_tx, done_rx) = mpsc::channel();
        if tx.send(Message::Drain(done_tx)).is_ok() {
            let _ = done_rx.recv();
        }
    }

    /// The last turn published.
    pub fn published(&self) -> u64 {
        self.progress.published.load(Ordering::Acquire)
    }

    /// The frame sequence number before which every frame of `segment` is
    /// known durable, if the last sync was of that segment.
    pub fn synced_before(&self, segment: u32) -> Option<u32> {
        let v = self.progress.synced.load(Ordering::Acquire);
        ((v >> 32) as u32 == segment && v != 0).then_some(v as u32)
    }

    /// How long the last sync took.
    pub fn last_sync_took(&self) -> Duration {
        Duration::from_nanos(self.progress.sync_nanos.load(Ordering::Relaxed))
    }
}

impl Drop for SyncStage {
    fn drop(&mut self) {
        self.tx.take();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Why callers are refused once the stage has stopped.
const STOPPED: &str = "the log store's writer stopped";

/// The stage thread: takes what is queued, syncs once, publishes and
/// answers in order; until the writer's handle drops.
fn run(store: &Arc<OpenStore>, rx: &Receiver<Message>, progress: &Progress) {
    let mut failed: Option<String> = None;
    while let Ok(first) = rx.recv() {
        let mut messages = vec![first];
        while messages.len() < MAX_TURNS_IN_FLIGHT + 1 {
            match rx.try_recv() {
                Ok(m) => messages.push(m),
                Err(_) => break,
            }
        }
        if failed.is_none() {
            if let Err(reason) = sync_for(store, &messages, progress) {
                error!(reason = %reason, "log store stops accepting writes");
                *store.poisoned.lock() = Some(reason.clone());
                failed = Some(reason);
            }
        }
        let mut settling = Vec::with_capacity(messages.len());
        for m in messages {
            match m {
                Message::Commit(job) => settling.push(job),
                Message::Drain(done) => {
                    settle(
                        store,
                        failed.as_deref(),
                        progress,
                        std::mem::take(&mut settling),
                    );
                    let _ = done.send(());
                }
            }
        }
        settle(store, failed.as_deref(), progress, settling);
    }
}

/// Settles jobs covered by one sync together: publishes them all under one
/// lock of the state and one move of the head, then answers their callers
/// in order; or, after a failed sync, fails them.
fn settle(store: &OpenStore, failed: Option<&str>, progress: &Progress, mut jobs: Vec<Job>) {
    let Some(last) = jobs.last().map(|j| j.seq) else {
        return;
    };
    match failed {
        Some(reason) => {
            for job in jobs {
                fail_acks(job.acks, reason);
            }
        }
        None => {
            publish(store, &mut jobs);
            for job in jobs {
                acknowledge(job.acks);
            }
        }
    }
    progress.published.store(last, Ordering::Release);
}

/// Syncs once for every job in `messages` that asks for it: the sync of
/// the last such job's segment covers the bytes of all before it (a turn
/// that fills a segment is the last of it, and the writer drains before it
/// starts the next).
fn sync_for(store: &OpenStore, messages: &[Message], progress: &Progress) -> Result<(), String> {
    let last = messages.iter().rev().find_map(|m| match m {
        Message::Commit(job) if job.sync => Some(job),
        _ => None,
    });
    let Some(job) = last else { return Ok(()) };
    let started = Instant::now();
    job.segment
        .file
        .sync_data()
        .map_err(|e| format!("fsync of {} failed: {e}", job.segment.path.display()))?;
    store.metrics.record_sync();
    progress.sync_nanos.store(
        started.elapsed().as_nanos().min(u128::from(u64::MAX)) as u64,
        Ordering::Relaxed,
    );
    progress.synced.store(
        (u64::from(job.segment.number) << 32) | u64::from(job.next_frame_seq),
        Ordering::Release,
    );
    Ok(())
}

/// Makes the frames of committed `jobs` visible to readers (applies their
/// effects to the shared state, in order) and moves the head once.
fn publish(store: &OpenStore, jobs: &mut [Job]) {
    if !jobs.iter().any(|j| j.wrote) {
        return;
    }
    let mut state = store.state.write();
    for job in jobs.iter_mut().filter(|j| j.wrote) {
        for eff in std::mem::take(&mut job.effects) {
            apply(&mut state, eff);
        }
        state.visible_end = job.end;
        if let Some(p) = job.last_position {
            state.head = Position(p);
        }
    }
    let head = state.head;
    drop(state);
    store.publish_head(head);
}

/// Applies one committed change to the shared state.
fn apply(state: &mut State, eff: Effect) {
    match eff {
        Effect::Events(run) => {
            state.tags.add_run(run.positions().zip(&run.tagged));
            state
                .streams
                .add_events(&run.stream, run.first_version, run.positions());
            state.active.add_run(&run.entries);
        }
        Effect::Frame(off) => state.active.add_frame(off),
        Effect::Delete {
            stream,
            through,
            kind,
        } => state.streams.record_delete(&stream, through, kind),
        Effect::Metadata { target, metadata } => state.streams.set_metadata(target, metadata),
    }
}

/// Tells each caller of a turn its outcome.
pub(super) fn acknowledge(acks: Vec<PendingAck>) {
    for ack in acks {
        match ack {
            PendingAck::Append(tx, results) => {
                let _ = tx.send(Ok(results));
            }
            PendingAck::Refused(tx, e) => {
                let _ = tx.send(Err(e));
            }
            PendingAck::Delete(tx) | PendingAck::Sync(tx) => {
                let _ = tx.send(Ok(()));
            }
        }
    }
}

/// Tells each caller of a turn that the store stopped accepting writes,
/// for `reason`.
pub(super) fn fail_acks(acks: Vec<PendingAck>, reason: &str) {
    let e = || Error::Poisoned {
        reason: reason.to_owned(),
    };
    for ack in acks {
        match ack {
            PendingAck::Append(tx, _) | PendingAck::Refused(tx, _) => {
                let _ = tx.send(Err(e()));
            }
            PendingAck::Delete(tx) | PendingAck::Sync(tx) => {
                let _ = tx.send(Err(e()));
            }
        }
    }
}
