//! One loaded group: its state behind a lock, the task that feeds it from
//! the store, readers that wait for events, and the durable writes that
//! settle records need before a caller is answered.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures::FutureExt;
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinHandle;

use crate::error::{Error, Result};
use crate::filter::ReadFilter;
use crate::store::EventStore;
use crate::subscription::{SubscribeFrom, SubscriptionMessage};
use crate::version::{ExpectedVersion, Position};
use crate::RecordedEvent;

use super::super::state::{GroupState, Progress, Record};
use super::super::{
    ConsumerId, Delivery, DeliveryId, GroupName, GroupSettings, GroupSource, GroupStatus,
    NackAction, ParkedMessage, SettleReport, MAX_READ_WAIT,
};
use super::durable::{self, ParkedEntry, CHECKPOINT_EVERY_RECORDS, MAX_CONCURRENT_WRITES};

/// How long the feeder waits before reading again after a failed read.
const FEED_RETRY: Duration = Duration::from_millis(500);
/// The most subscription messages the feeder pushes under one lock.
const FEED_BATCH: usize = 1_024;
/// How far back `acked_per_second` looks.
const RATE_WINDOW: Duration = Duration::from_secs(5);

/// The state and its record numbering, under one lock.
struct Inner {
    state: GroupState,
    /// The next settle record's number.
    next_seq: u64,
    /// Settle records since the last checkpoint record.
    since_checkpoint: u64,
    parked: BTreeMap<Position, ParkedEntry>,
    /// (when, acked_total) samples for the ack rate.
    rate: VecDeque<(Instant, u64)>,
}

/// One group, loaded.
pub(super) struct GroupHandle {
    name: GroupName,
    inner: Mutex<Inner>,
    /// Readers waiting for something to lease.
    ready: Notify,
    /// The feeder waiting for room.
    room: Notify,
    writes: Semaphore,
    /// Set when a durable write failed: the group is loaded again from
    /// what is durable before its next use.
    failed: AtomicBool,
    feeder: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for GroupHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

impl GroupHandle {
    /// Loads a group from its durable records and starts feeding it.
    pub(super) async fn load<S: EventStore + Clone + 'static>(
        store: &S,
        name: GroupName,
        settings: GroupSettings,
        start: Position,
    ) -> Result<Arc<Self>> {
        let (progress, next_seq) = durable::load_progress(store, &name, start).await?;
        let parked = durable::load_parked(store, &name).await?;
        let from = progress.checkpoint;
        let mut state = GroupState::new(settings.clone(), progress);
        for entry in parked.values().filter(|e| e.replaying) {
            if let Some(e) = durable::event_at(store, &entry.stream, entry.position).await? {
                state.replay(e);
            }
        }
        let handle = Arc::new(Self {
            name,
            inner: Mutex::new(Inner {
                state,
                next_seq,
                since_checkpoint: 0,
                parked,
                rate: VecDeque::new(),
            }),
            ready: Notify::new(),
            room: Notify::new(),
            writes: Semaphore::new(MAX_CONCURRENT_WRITES),
            failed: AtomicBool::new(false),
            feeder: Mutex::new(None),
        });
        let filter = match &settings.source {
            GroupSource::Stream(s) => ReadFilter {
                stream: Some(s.clone()),
                ..ReadFilter::default()
            },
            GroupSource::All(f) => f.clone(),
        };
        let from = if from == Position::START {
            SubscribeFrom::Start
        } else {
            SubscribeFrom::After(from)
        };
        let sub = store.subscribe(from, filter).await?;
        let task = tokio::spawn(feed(Arc::downgrade(&handle), sub));
        *lock(&handle.feeder) = Some(task);
        Ok(handle)
    }

    /// Stops the feeder.
    pub(super) fn stop(&self) {
        if let Some(task) = lock(&self.feeder).take() {
            task.abort();
        }
    }

    /// Whether a durable write failed since the group was loaded.
    pub(super) fn failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        lock(&self.inner)
    }

    /// Replaces the settings (the source is unchanged).
    pub(super) fn set_settings(&self, settings: GroupSettings) {
        self.inner().state.set_settings(settings);
        self.ready.notify_waiters();
    }

    /// Leases up to `max` messages, waiting up to `wait` for the first.
    pub(super) async fn read(
        &self,
        consumer: &ConsumerId,
        max: usize,
        wait: Duration,
    ) -> Vec<Delivery> {
        let deadline = Instant::now() + wait.min(MAX_READ_WAIT);
        loop {
            let notified = self.ready.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let (got, wake) = {
                let mut inner = self.inner();
                let got = inner.state.lease(consumer, max, Instant::now());
                (got, inner.state.next_wakeup())
            };
            let now = Instant::now();
            if !got.is_empty() || now >= deadline {
                return got;
            }
            let until = wake.map_or(deadline, |w| w.min(deadline)).max(now);
            tokio::select! {
                () = &mut notified => {}
                () = tokio::time::sleep_until(until.into()) => {}
            }
        }
    }

    /// Acks, durably.
    pub(super) async fn ack<S: EventStore>(
        &self,
        store: &S,
        consumer: &ConsumerId,
        ids: &[DeliveryId],
    ) -> Result<SettleReport> {
        self.settle(store, |state, now| state.ack(consumer, ids, now))
            .await
    }

    /// Nacks, durably.
    pub(super) async fn nack<S: EventStore>(
        &self,
        store: &S,
        consumer: &ConsumerId,
        ids: &[DeliveryId],
        action: NackAction,
        reason: &str,
    ) -> Result<SettleReport> {
        self.settle(store, |state, now| {
            state.nack(consumer, ids, action, reason, now)
        })
        .await
    }

    /// Runs a settle on the state, then makes its records durable.
    async fn settle<S: EventStore>(
        &self,
        store: &S,
        apply: impl FnOnce(&mut GroupState, Instant) -> (SettleReport, Vec<Record>),
    ) -> Result<SettleReport> {
        let _permit = self.writes.acquire().await.map_err(|_| Error::Closed)?;
        let (report, records, at, checkpoint) = {
            let mut inner = self.inner();
            let now = Instant::now();
            let (report, records) = apply(&mut inner.state, now);
            let numbered = number(&mut inner, records);
            list_parked(&mut inner, &numbered);
            let at = inner.state.checkpoint();
            let checkpoint = if inner.since_checkpoint >= CHECKPOINT_EVERY_RECORDS {
                inner.since_checkpoint = 0;
                Some((inner.next_seq - 1, inner.state.progress()))
            } else {
                None
            };
            let total = inner.state.acked_total();
            inner.rate.push_back((now, total));
            while inner
                .rate
                .front()
                .is_some_and(|(t, _)| now.duration_since(*t) > RATE_WINDOW)
            {
                inner.rate.pop_front();
            }
            (report, numbered, at, checkpoint)
        };
        self.ready.notify_waiters();
        self.room.notify_one();
        let written = self.write(store, records, at, checkpoint).await;
        if written.is_err() {
            self.failed.store(true, Ordering::Release);
        }
        written.map(|()| report)
    }

    /// Writes numbered records (settle records carry the checkpoint `at`
    /// they left), then a checkpoint record if one is due.
    async fn write<S: EventStore>(
        &self,
        store: &S,
        records: Vec<(u64, Record)>,
        at: Position,
        checkpoint: Option<(u64, Progress)>,
    ) -> Result<()> {
        let group = durable::group_stream(&self.name)?;
        let parked = durable::parked_stream(&self.name)?;
        for (seq, record) in records {
            match record {
                Record::Settled(positions) => {
                    let e = durable::settled_record(seq, positions, at)?;
                    store.append(&group, ExpectedVersion::Any, vec![e]).await?;
                }
                Record::Parked {
                    event,
                    delivery_count,
                    reason,
                } => {
                    let listed = self.inner().parked.get(&event.position).cloned();
                    let entry =
                        listed.unwrap_or_else(|| parked_entry(&event, delivery_count, &reason));
                    let e = durable::parked_record(&entry)?;
                    store.append(&parked, ExpectedVersion::Any, vec![e]).await?;
                }
                Record::Unparked(p) => {
                    let e = durable::unparked_record(p)?;
                    store.append(&parked, ExpectedVersion::Any, vec![e]).await?;
                }
            }
        }
        if let Some((covers, progress)) = checkpoint {
            let e = durable::checkpoint_record(covers, &progress)?;
            store.append(&group, ExpectedVersion::Any, vec![e]).await?;
        }
        Ok(())
    }

    /// A consumer leaves.
    pub(super) fn leave(&self, consumer: &ConsumerId) {
        self.inner().state.leave(consumer);
        self.ready.notify_waiters();
    }

    /// Up to `limit` parked messages whose events are still readable.
    pub(super) async fn parked<S: EventStore>(
        &self,
        store: &S,
        limit: usize,
    ) -> Result<Vec<ParkedMessage>> {
        let entries: Vec<ParkedEntry> = self.inner().parked.values().cloned().collect();
        let mut out = Vec::new();
        for entry in entries {
            if out.len() >= limit {
                break;
            }
            if let Some(event) = durable::event_at(store, &entry.stream, entry.position).await? {
                out.push(ParkedMessage {
                    event,
                    delivery_count: entry.delivery_count,
                    reason: entry.reason,
                    parked_at: entry.parked_at,
                });
            }
        }
        Ok(out)
    }

    /// Offers up to `limit` parked messages again.
    pub(super) async fn replay_parked<S: EventStore>(
        &self,
        store: &S,
        limit: usize,
    ) -> Result<u64> {
        let _permit = self.writes.acquire().await.map_err(|_| Error::Closed)?;
        let entries: Vec<ParkedEntry> = self
            .inner()
            .parked
            .values()
            .filter(|e| !e.replaying)
            .take(limit)
            .cloned()
            .collect();
        let stream = durable::parked_stream(&self.name)?;
        let mut replayed = 0;
        for entry in entries {
            let event = durable::event_at(store, &entry.stream, entry.position).await?;
            let Some(event) = event else {
                let e = durable::unparked_record(entry.position)?;
                store.append(&stream, ExpectedVersion::Any, vec![e]).await?;
                self.inner().parked.remove(&entry.position);
                continue;
            };
            let e = durable::replayed_record(entry.position)?;
            store.append(&stream, ExpectedVersion::Any, vec![e]).await?;
            let mut inner = self.inner();
            if let Some(p) = inner.parked.get_mut(&entry.position) {
                p.replaying = true;
            }
            inner.state.replay(event);
            replayed += 1;
        }
        self.ready.notify_waiters();
        Ok(replayed)
    }

    /// Removes parked messages from the list.
    pub(super) async fn delete_parked<S: EventStore>(
        &self,
        store: &S,
        positions: &[Position],
    ) -> Result<u64> {
        let _permit = self.writes.acquire().await.map_err(|_| Error::Closed)?;
        let stream = durable::parked_stream(&self.name)?;
        let mut removed = 0;
        for &p in positions {
            if !self.inner().parked.contains_key(&p) {
                continue;
            }
            let e = durable::unparked_record(p)?;
            store.append(&stream, ExpectedVersion::Any, vec![e]).await?;
            let mut inner = self.inner();
            inner.parked.remove(&p);
            inner.state.forget_replay(p);
            removed += 1;
        }
        Ok(removed)
    }

    /// The group's status.
    pub(super) fn status(&self) -> GroupStatus {
        let mut inner = self.inner();
        let now = Instant::now();
        inner.state.expire(now);
        let state = &inner.state;
        let lag_seconds = state.oldest_unsettled().map_or(0.0, |t| {
            (chrono::Utc::now() - t).num_milliseconds().max(0) as f64 / 1000.0
        });
        let acked_per_second = match (inner.rate.front(), inner.rate.back()) {
            (Some((t0, a0)), Some((t1, a1))) if t1 > t0 => {
                (a1 - a0) as f64 / t1.duration_since(*t0).as_secs_f64()
            }
            _ => 0.0,
        };
        GroupStatus {
            name: self.name.clone(),
            settings: state.settings().clone(),
            checkpoint: state.checkpoint(),
            lag_events: state.held(),
            lag_seconds,
            in_flight: state.in_flight(),
            parked: inner.parked.len() as u64,
            consumers: state.live_consumers(now).len() as u64,
            acked_total: state.acked_total(),
            acked_per_second,
        }
    }
}

/// Numbers the settle records (the others need no number).
fn number(inner: &mut Inner, records: Vec<Record>) -> Vec<(u64, Record)> {
    records
        .into_iter()
        .map(|r| {
            let seq = if matches!(r, Record::Settled(_)) {
                let seq = inner.next_seq;
                inner.next_seq += 1;
                inner.since_checkpoint += 1;
                seq
            } else {
                0
            };
            (seq, r)
        })
        .collect()
}

/// Applies a settle's parked-list changes in the same critical section as
/// the state change that made them, so a status or `parked` read never
/// sees the checkpoint past a parked event that is not listed yet (the
/// records are made durable right after, by [`GroupHandle::write`]).
fn list_parked(inner: &mut Inner, records: &[(u64, Record)]) {
    for (_, record) in records {
        match record {
            Record::Parked {
                event,
                delivery_count,
                reason,
            } => {
                let entry = parked_entry(event, *delivery_count, reason);
                inner.parked.insert(entry.position, entry);
            }
            Record::Unparked(p) => {
                inner.parked.remove(p);
            }
            Record::Settled(_) => {}
        }
    }
}

/// The parked-list entry of an event parked now.
fn parked_entry(event: &RecordedEvent, delivery_count: u32, reason: &str) -> ParkedEntry {
    ParkedEntry {
        position: event.position,
        stream: event.stream_id.as_str().to_owned(),
        delivery_count,
        reason: reason.to_owned(),
        parked_at: chrono::Utc::now(),
        replaying: false,
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Feeds the group from its subscription while it has room, in batches of
/// what the subscription already holds (up to [`FEED_BATCH`]), so readers
/// wake once per page rather than once per event.
async fn feed(handle: std::sync::Weak<GroupHandle>, mut sub: crate::Subscription) {
    loop {
        if !wait_for_room(&handle).await {
            return;
        }
        let Some(first) = sub.next().await else {
            return;
        };
        let mut batch = vec![first];
        // `Subscription::next` is cancel-safe: a page read dropped half-way
        // changes nothing and is read again.
        while batch.len() < FEED_BATCH {
            match sub.next().now_or_never() {
                Some(Some(message)) => batch.push(message),
                _ => break,
            }
        }
        let Some(h) = handle.upgrade() else { return };
        if let Err(e) = push(&h, batch) {
            tracing::warn!(group = %h.name, error = %e, "a consumer group could not read its source; retrying");
            drop(h);
            tokio::time::sleep(FEED_RETRY).await;
        }
    }
}

/// Pushes a batch into the state and wakes the readers; the first error
/// met, after pushing what came before it.
fn push(h: &GroupHandle, batch: Vec<Result<SubscriptionMessage>>) -> Result<()> {
    let mut outcome = Ok(());
    {
        let mut inner = h.inner();
        for message in batch {
            match message {
                Ok(SubscriptionMessage::Event(e)) => inner.state.push(e),
                Ok(SubscriptionMessage::CaughtUp(p)) => inner.state.skip_to(p),
                Err(e) => {
                    outcome = Err(e);
                    break;
                }
            }
        }
    }
    h.ready.notify_waiters();
    outcome
}

/// Waits until the group has room; false once it is gone.
async fn wait_for_room(handle: &std::sync::Weak<GroupHandle>) -> bool {
    loop {
        let Some(h) = handle.upgrade() else {
            return false;
        };
        let notified = h.room.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if !h.inner().state.is_full() {
            return true;
        }
        // Holding the handle while waiting would keep it alive; the
        // notification future borrows it, so wait with a bound and look again.
        let _ = tokio::time::timeout(FEED_RETRY, notified).await;
    }
}
