//! One group's leases, retries and checkpoint: a state machine with no I/O.
//!
//! The engine feeds it the source's events in position order ([`push`]),
//! asks it for leases ([`lease`]) and settles them ([`ack`], [`nack`]). It
//! answers with the [`Record`]s that must be made durable before the caller
//! is answered. Time comes in as an argument, so tests drive it.
//!
//! [`push`]: GroupState::push
//! [`lease`]: GroupState::lease
//! [`ack`]: GroupState::ack
//! [`nack`]: GroupState::nack

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::{Duration, Instant};

use crate::event::RecordedEvent;
use crate::stream_id::StreamId;
use crate::version::Position;

use super::{ConsumerId, Delivery, DeliveryId, GroupSettings, NackAction, SettleReport, Strategy};

/// The most unsettled events one group holds in memory; the engine reads
/// the source on only as the oldest settle.
pub const MAX_BUFFERED_EVENTS: usize = 20_000;

/// What must be made durable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    /// These positions were acked or skipped.
    Settled(Vec<Position>),
    /// This event was parked (its position is settled once this is durable
    /// and a [`Record::Settled`] names it).
    Parked {
        /// The event.
        event: Box<RecordedEvent>,
        /// Its deliveries.
        delivery_count: u32,
        /// Why.
        reason: String,
    },
    /// A replayed parked event was acked or skipped: it leaves the parked
    /// list.
    Unparked(Position),
}

/// Where a slot stands.
#[derive(Clone, Debug)]
enum SlotState {
    /// Waiting for a consumer, not before the instant if one is given.
    Ready(Option<Instant>),
    /// Leased.
    Leased {
        consumer: ConsumerId,
        id: DeliveryId,
        deadline: Instant,
    },
}

/// An unsettled event.
#[derive(Clone, Debug)]
struct Slot {
    event: RecordedEvent,
    /// The hash of its stream's name, for `pinned`'s owner.
    stream_hash: u64,
    /// Deliveries so far.
    count: u32,
    state: SlotState,
}

/// A consumer the group has heard from.
#[derive(Clone, Debug)]
struct Consumer {
    in_flight: u32,
    last_seen: Instant,
}

/// Where the state was when it was last made durable in full: every event
/// at or below `checkpoint` is settled, and of those in
/// `(checkpoint, cursor]` only `unsettled` are not.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// Every event at or below it is settled.
    pub checkpoint: Position,
    /// The last position read from the source.
    pub cursor: Position,
    /// Positions in `(checkpoint, cursor]` not settled.
    pub unsettled: BTreeSet<Position>,
    /// Positions above `cursor` already settled.
    pub settled_ahead: BTreeSet<Position>,
}

impl Progress {
    /// Progress of a group that starts after `start`.
    pub fn starting_after(start: Position) -> Self {
        Self {
            checkpoint: start,
            cursor: start,
            ..Self::default()
        }
    }

    /// Folds a durable settle record in.
    pub fn settle(&mut self, positions: &[Position]) {
        for &p in positions {
            if p > self.cursor {
                self.settled_ahead.insert(p);
            } else {
                self.unsettled.remove(&p);
            }
        }
        self.checkpoint = match self.unsettled.first() {
            Some(&first) => before(first),
            None => self.cursor,
        };
    }

    /// Folds in a checkpoint a settle record carried: every event at or
    /// below `c` is settled.
    pub fn advance(&mut self, c: Position) {
        if c <= self.checkpoint {
            return;
        }
        self.cursor = self.cursor.max(c);
        self.unsettled.retain(|&p| p > c);
        self.settled_ahead.retain(|&p| p > c);
        self.checkpoint = match self.unsettled.first() {
            Some(&first) => before(first).max(c),
            None => self.cursor,
        };
    }
}

/// One group's in-memory state.
#[derive(Debug)]
pub struct GroupState {
    settings: GroupSettings,
    /// Unsettled events read from the source, by position (boxed, so the
    /// map's nodes stay small to search and shift).
    pending: BTreeMap<Position, Box<Slot>>,
    /// Under `pinned` only (empty otherwise): the positions in `pending` of
    /// each stream, in order.
    by_stream: HashMap<StreamId, BTreeSet<Position>>,
    /// Under `pinned` only (empty otherwise): the first position in
    /// `pending` of each stream, the only ones that may be leased.
    heads: BTreeSet<Position>,
    /// The positions in `pending` whose slot is ready now
    /// (`SlotState::Ready(None)`), in order: what `round_robin` and
    /// `single` lease from, without walking the leased ones.
    ready: BTreeSet<Position>,
    /// `heads` ∩ `ready`, with each one's stream hash: what `pinned`
    /// leases from, without a look into `pending`.
    ready_heads: BTreeMap<Position, u64>,
    /// Slots waiting out a retry back-off (`SlotState::Ready(Some(at))`),
    /// pending or replayed: (at, position, whether a replay).
    delayed: BTreeSet<(Instant, Position, bool)>,
    /// Parked events offered again, by position (below the checkpoint,
    /// so kept apart from `pending`).
    replays: BTreeMap<Position, Box<Slot>>,
    /// The last position read from the source.
    cursor: Position,
    /// Of the positions in `(checkpoint, cursor]` the durable progress knew,
    /// those not settled: the others are skipped when read again.
    resumed_unsettled: BTreeSet<Position>,
    /// The end of the range `resumed_unsettled` describes.
    resumed_cursor: Position,
    /// Positions above the cursor settled before a restart.
    settled_ahead: BTreeSet<Position>,
    /// Lease id -> (position, whether a replay).
    leases: HashMap<DeliveryId, (Position, bool)>,
    consumers: HashMap<ConsumerId, Consumer>,
    /// The consumer a `single` group delivers to.
    active: Option<ConsumerId>,
    next_id: DeliveryId,
    /// The earliest lease deadline, if any lease is out (may be early).
    next_deadline: Option<Instant>,
    acked_total: u64,
}

impl GroupState {
    /// A group resuming from durable `progress`.
    pub fn new(settings: GroupSettings, progress: Progress) -> Self {
        Self {
            settings,
            pending: BTreeMap::new(),
            by_stream: HashMap::new(),
            heads: BTreeSet::new(),
            ready: BTreeSet::new(),
            ready_heads: BTreeMap::new(),
            delayed: BTreeSet::new(),
            replays: BTreeMap::new(),
            cursor: progress.checkpoint,
            resumed_unsettled: progress.unsettled,
            resumed_cursor: progress.cursor,
            settled_ahead: progress.settled_ahead,
            leases: HashMap::new(),
            consumers: HashMap::new(),
            active: None,
            next_id: 1,
            next_deadline: None,
            acked_total: 0,
        }
    }

    /// The settings.
    pub fn settings(&self) -> &GroupSettings {
        &self.settings
    }

    /// Replaces the settings (same source); leases already out keep their
    /// deadlines.
    pub fn set_settings(&mut self, settings: GroupSettings) {
        let was_pinned = self.pinned();
        self.settings = settings;
        if self.pinned() != was_pinned {
            self.index_streams();
        }
    }

    fn pinned(&self) -> bool {
        self.settings.strategy == Strategy::Pinned
    }

    /// Builds the per-stream index and the heads afresh: from `pending`
    /// under `pinned`, empty otherwise.
    fn index_streams(&mut self) {
        self.by_stream.clear();
        self.heads.clear();
        self.ready_heads.clear();
        if !self.pinned() {
            return;
        }
        for (&p, slot) in &self.pending {
            let queue = self
                .by_stream
                .entry(slot.event.stream_id.clone())
                .or_default();
            if queue.is_empty() {
                self.heads.insert(p);
                if self.ready.contains(&p) {
                    self.ready_heads.insert(p, slot.stream_hash);
                }
            }
            queue.insert(p);
        }
    }

    /// The last position read from the source: the engine reads on after it.
    pub fn cursor(&self) -> Position {
        self.cursor
    }

    /// Whether the group holds as many unsettled events as it may.
    pub fn is_full(&self) -> bool {
        self.pending.len() >= MAX_BUFFERED_EVENTS
    }

    /// Every event at or below this position is settled.
    pub fn checkpoint(&self) -> Position {
        match (
            self.pending.first_key_value(),
            self.resumed_unsettled.first(),
        ) {
            (Some((&p, _)), Some(&r)) => before(p.min(r)),
            (Some((&p, _)), None) => before(p),
            (None, Some(&r)) => before(r),
            (None, None) => self.cursor,
        }
    }

    /// The durable picture of now, for a full checkpoint record.
    pub fn progress(&self) -> Progress {
        let mut unsettled: BTreeSet<Position> = self.pending.keys().copied().collect();
        unsettled.extend(self.resumed_unsettled.iter().copied());
        let cursor = self.cursor.max(self.resumed_cursor);
        Progress {
            checkpoint: self.checkpoint(),
            cursor,
            unsettled,
            settled_ahead: self.settled_ahead.clone(),
        }
    }

    /// Takes in the next event of the source (in position order, after
    /// [`cursor`](Self::cursor)). Events the group does not deliver, and
    /// events settled before a restart, only move the cursor.
    pub fn push(&mut self, event: RecordedEvent) {
        let p = event.position;
        if p <= self.cursor {
            return;
        }
        self.cursor = p;
        let settled_before = if p <= self.resumed_cursor {
            !self.resumed_unsettled.remove(&p)
        } else {
            self.settled_ahead.remove(&p)
        };
        if settled_before || !self.delivers(&event) {
            return;
        }
        if self.pinned() {
            let queue = self.by_stream.entry(event.stream_id.clone()).or_default();
            if queue.is_empty() {
                self.heads.insert(p);
            }
            queue.insert(p);
        }
        let stream_hash = name_hash(event.stream_id.as_str());
        self.mark_ready(p, stream_hash);
        self.pending.insert(
            p,
            Box::new(Slot {
                stream_hash,
                event,
                count: 0,
                state: SlotState::Ready(None),
            }),
        );
    }

    /// Moves the cursor past events the source does not hold any more (a
    /// read came back with nothing up to `to`).
    pub fn skip_to(&mut self, to: Position) {
        if to > self.cursor {
            self.cursor = to;
            self.resumed_unsettled.retain(|&p| p > to);
            self.settled_ahead.retain(|&p| p > to);
        }
    }

    fn delivers(&self, event: &RecordedEvent) -> bool {
        if !self.settings.delivers(event) {
            return false;
        }
        match self.settings.start {
            super::GroupStart::FromVersion(v) => event.version >= v,
            _ => true,
        }
    }

    /// Offers a parked event again, with a fresh retry budget.
    pub fn replay(&mut self, event: RecordedEvent) {
        let p = event.position;
        self.replays.entry(p).or_insert_with(|| {
            Box::new(Slot {
                stream_hash: name_hash(event.stream_id.as_str()),
                event,
                count: 0,
                state: SlotState::Ready(None),
            })
        });
    }

    /// Stops offering a replayed parked event (it left the parked list).
    pub fn forget_replay(&mut self, position: Position) {
        if let Some(slot) = self.replays.remove(&position) {
            match slot.state {
                SlotState::Leased { consumer, id, .. } => {
                    self.leases.remove(&id);
                    if let Some(c) = self.consumers.get_mut(&consumer) {
                        c.in_flight = c.in_flight.saturating_sub(1);
                    }
                }
                SlotState::Ready(Some(at)) => {
                    self.delayed.remove(&(at, position, true));
                }
                SlotState::Ready(None) => {}
            }
        }
    }

    /// Notes a call from `consumer` (it is live for `ack_timeout_ms` more).
    pub fn touch(&mut self, consumer: &ConsumerId, now: Instant) {
        self.consumers
            .entry(consumer.clone())
            .or_insert(Consumer {
                in_flight: 0,
                last_seen: now,
            })
            .last_seen = now;
    }

    fn ack_timeout(&self) -> Duration {
        Duration::from_millis(self.settings.ack_timeout_ms)
    }

    fn is_live(&self, consumer: &Consumer, now: Instant) -> bool {
        now.saturating_duration_since(consumer.last_seen) < self.ack_timeout()
    }

    /// Consumers heard from within `ack_timeout_ms`, by name.
    pub fn live_consumers(&self, now: Instant) -> Vec<ConsumerId> {
        let mut live: Vec<ConsumerId> = self
            .consumers
            .iter()
            .filter(|(_, c)| self.is_live(c, now))
            .map(|(id, _)| id.clone())
            .collect();
        live.sort();
        live
    }

    /// Ends leases past their deadline and forgets consumers gone silent:
    /// their events are ready again (their delivery count kept).
    pub fn expire(&mut self, now: Instant) {
        if self.next_deadline.is_none_or(|d| d > now) {
            return;
        }
        let mut next: Option<Instant> = None;
        let mut expired = Vec::new();
        for (&id, &(p, replay)) in &self.leases {
            let Some(slot) = self.slot(p, replay) else {
                continue;
            };
            if let SlotState::Leased {
                consumer, deadline, ..
            } = &slot.state
            {
                if *deadline <= now {
                    expired.push((consumer.clone(), id, p, replay));
                } else {
                    next = Some(next.map_or(*deadline, |n| n.min(*deadline)));
                }
            }
        }
        self.next_deadline = next;
        for (consumer, id, p, replay) in expired {
            self.leases.remove(&id);
            self.make_ready(p, replay);
            if let Some(c) = self.consumers.get_mut(&consumer) {
                c.in_flight = c.in_flight.saturating_sub(1);
            }
        }
        let timeout = self.ack_timeout();
        self.consumers
            .retain(|_, c| c.in_flight > 0 || now.saturating_duration_since(c.last_seen) < timeout);
    }

    /// The earliest instant something becomes ready (a lease deadline or a
    /// retry back-off), for a reader that waits.
    pub fn next_wakeup(&self) -> Option<Instant> {
        let retry = self.delayed.first().map(|&(at, _, _)| at);
        match (retry, self.next_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// A consumer leaves: its leases are ready again at once.
    pub fn leave(&mut self, consumer: &ConsumerId) {
        let mine: Vec<DeliveryId> = self
            .leases
            .iter()
            .filter(|(id, (p, replay))| {
                self.slot(*p, *replay).is_some_and(
                    |s| matches!(&s.state, SlotState::Leased { consumer: c, id: i, .. } if c == consumer && i == *id),
                )
            })
            .map(|(id, _)| *id)
            .collect();
        for id in mine {
            if let Some((p, replay)) = self.leases.remove(&id) {
                self.make_ready(p, replay);
            }
        }
        self.consumers.remove(consumer);
        if self.active.as_ref() == Some(consumer) {
            self.active = None;
        }
    }

    /// Removes a settled event from `pending`, keeping the per-stream
    /// index and the heads in step.
    fn remove_pending(&mut self, p: Position) -> Option<Box<Slot>> {
        let slot = self.pending.remove(&p)?;
        match slot.state {
            SlotState::Ready(None) => {
                self.ready.remove(&p);
                self.ready_heads.remove(&p);
            }
            SlotState::Ready(Some(at)) => {
                self.delayed.remove(&(at, p, false));
            }
            SlotState::Leased { .. } => {}
        }
        let stream = &slot.event.stream_id;
        if !self.pinned() {
            return Some(slot);
        }
        if let Some(queue) = self.by_stream.get_mut(stream) {
            let was_head = queue.first() == Some(&p);
            queue.remove(&p);
            if was_head {
                self.heads.remove(&p);
                if let Some(&next) = queue.first() {
                    self.heads.insert(next);
                    if self.ready.contains(&next) {
                        self.ready_heads.insert(next, slot.stream_hash);
                    }
                }
            }
            if queue.is_empty() {
                self.by_stream.remove(stream);
            }
        }
        Some(slot)
    }

    /// Notes that pending `p` is ready now (its slot's state says so).
    fn mark_ready(&mut self, p: Position, stream_hash: u64) {
        self.ready.insert(p);
        if self.pinned() && self.heads.contains(&p) {
            self.ready_heads.insert(p, stream_hash);
        }
    }

    /// Makes a slot ready now, keeping the indexes in step.
    fn make_ready(&mut self, p: Position, replay: bool) {
        let Some(slot) = self.slot_mut(p, replay) else {
            return;
        };
        let was = std::mem::replace(&mut slot.state, SlotState::Ready(None));
        let stream_hash = slot.stream_hash;
        if let SlotState::Ready(Some(at)) = was {
            self.delayed.remove(&(at, p, replay));
        }
        if !replay {
            self.mark_ready(p, stream_hash);
        }
    }

    /// Makes ready the slots whose back-off has passed.
    fn promote(&mut self, now: Instant) {
        while let Some(&(at, p, replay)) = self.delayed.first() {
            if at > now {
                break;
            }
            self.make_ready(p, replay);
            self.delayed.remove(&(at, p, replay));
        }
    }

    fn slot(&self, p: Position, replay: bool) -> Option<&Slot> {
        if replay {
            self.replays.get(&p).map(|s| &**s)
        } else {
            self.pending.get(&p).map(|s| &**s)
        }
    }

    fn slot_mut(&mut self, p: Position, replay: bool) -> Option<&mut Slot> {
        if replay {
            self.replays.get_mut(&p).map(|s| &mut **s)
        } else {
            self.pending.get_mut(&p).map(|s| &mut **s)
        }
    }

    /// Leases up to `max` ready events to `consumer`, within its in-flight
    /// room and the group's strategy.
    pub fn lease(&mut self, consumer: &ConsumerId, max: usize, now: Instant) -> Vec<Delivery> {
        self.touch(consumer, now);
        self.expire(now);
        self.promote(now);
        let in_flight = self.consumers.get(consumer).map_or(0, |c| c.in_flight);
        let room = (self.settings.max_in_flight.saturating_sub(in_flight) as usize).min(max);
        if room == 0 || !self.may_receive(consumer, now) {
            return Vec::new();
        }
        let chosen = self.choose(consumer, room, now);
        let deadline = now + self.ack_timeout();
        let mut out = Vec::with_capacity(chosen.len());
        for (p, replay) in chosen {
            let id = self.next_id;
            self.next_id += 1;
            if !replay {
                self.ready.remove(&p);
                if self.pinned() {
                    self.ready_heads.remove(&p);
                }
            }
            let Some(slot) = self.slot_mut(p, replay) else {
                continue;
            };
            slot.count += 1;
            slot.state = SlotState::Leased {
                consumer: consumer.clone(),
                id,
                deadline,
            };
            out.push(Delivery {
                delivery_id: id,
                delivery_count: slot.count,
                event: slot.event.clone(),
            });
            self.leases.insert(id, (p, replay));
        }
        if !out.is_empty() {
            self.next_deadline = Some(self.next_deadline.map_or(deadline, |d| d.min(deadline)));
        }
        if let Some(c) = self.consumers.get_mut(consumer) {
            c.in_flight += out.len() as u32;
        }
        out
    }

    /// Whether the strategy lets `consumer` receive now (`single` names
    /// one active consumer at a time).
    fn may_receive(&mut self, consumer: &ConsumerId, now: Instant) -> bool {
        if self.settings.strategy != Strategy::Single {
            return true;
        }
        let active_live = self
            .active
            .as_ref()
            .and_then(|a| self.consumers.get(a))
            .is_some_and(|c| self.is_live(c, now));
        if !active_live {
            self.active = Some(consumer.clone());
        }
        self.active.as_ref() == Some(consumer)
    }

    /// Which ready slots to lease: replays first, then pending, oldest first.
    /// Delayed slots whose back-off has passed must have been promoted.
    fn choose(&self, consumer: &ConsumerId, room: usize, now: Instant) -> Vec<(Position, bool)> {
        let mut out = Vec::new();
        for (&p, s) in &self.replays {
            if out.len() == room {
                return out;
            }
            if matches!(s.state, SlotState::Ready(None)) {
                out.push((p, true));
            }
        }
        if self.settings.strategy != Strategy::Pinned {
            let left = room - out.len();
            out.extend(self.ready.iter().take(left).map(|&p| (p, false)));
            return out;
        }
        let live: Vec<(ConsumerId, u64)> = self
            .live_consumers(now)
            .into_iter()
            .map(|c| {
                let h = name_hash(c.as_str());
                (c, h)
            })
            .collect();
        for (&p, &stream_hash) in &self.ready_heads {
            if out.len() == room {
                break;
            }
            if owner(stream_hash, &live).is_none_or(|o| o == consumer) {
                out.push((p, false));
            }
        }
        out
    }

    /// Ends `consumer`'s lease `id` if it holds it; the slot's place.
    fn take_lease(&mut self, consumer: &ConsumerId, id: DeliveryId) -> Option<(Position, bool)> {
        let &(p, replay) = self.leases.get(&id)?;
        let holds = self.slot(p, replay).is_some_and(
            |s| matches!(&s.state, SlotState::Leased { consumer: c, id: i, .. } if c == consumer && *i == id),
        );
        if !holds {
            return None;
        }
        self.leases.remove(&id);
        if let Some(c) = self.consumers.get_mut(consumer) {
            c.in_flight = c.in_flight.saturating_sub(1);
        }
        Some((p, replay))
    }

    /// Acks `ids`; the records to make durable.
    pub fn ack(
        &mut self,
        consumer: &ConsumerId,
        ids: &[DeliveryId],
        now: Instant,
    ) -> (SettleReport, Vec<Record>) {
        self.touch(consumer, now);
        let mut report = SettleReport::default();
        let mut settled = Vec::new();
        let mut records = Vec::new();
        for &id in ids {
            match self.take_lease(consumer, id) {
                Some((p, false)) => {
                    self.remove_pending(p);
                    settled.push(p);
                    report.settled += 1;
                }
                Some((p, true)) => {
                    self.replays.remove(&p);
                    records.push(Record::Unparked(p));
                    report.settled += 1;
                }
                None => report.unknown += 1,
            }
        }
        self.acked_total += report.settled;
        if !settled.is_empty() {
            records.push(Record::Settled(settled));
        }
        (report, records)
    }

    /// Nacks `ids` with `action`; the records to make durable.
    pub fn nack(
        &mut self,
        consumer: &ConsumerId,
        ids: &[DeliveryId],
        action: NackAction,
        reason: &str,
        now: Instant,
    ) -> (SettleReport, Vec<Record>) {
        self.touch(consumer, now);
        let mut report = SettleReport::default();
        let mut settled = Vec::new();
        let mut records = Vec::new();
        for &id in ids {
            let Some((p, replay)) = self.take_lease(consumer, id) else {
                report.unknown += 1;
                continue;
            };
            report.settled += 1;
            let Some(count) = self.slot(p, replay).map(|s| s.count) else {
                continue;
            };
            let park = action == NackAction::Park
                || (action == NackAction::Retry && count > self.settings.max_retries);
            if action == NackAction::Retry && !park {
                let at = now + Duration::from_millis(self.settings.backoff_ms(count));
                if let Some(slot) = self.slot_mut(p, replay) {
                    slot.state = SlotState::Ready(Some(at));
                    self.delayed.insert((at, p, replay));
                }
                continue;
            }
            let removed = if replay {
                self.replays.remove(&p)
            } else {
                self.remove_pending(p)
            };
            let Some(slot) = removed else { continue };
            if park {
                if action == NackAction::Retry {
                    report.parked += 1;
                }
                records.push(Record::Parked {
                    event: Box::new(slot.event),
                    delivery_count: slot.count,
                    reason: reason.to_owned(),
                });
            } else if replay {
                records.push(Record::Unparked(p));
            }
            if !replay {
                settled.push(p);
            }
        }
        if !settled.is_empty() {
            records.push(Record::Settled(settled));
        }
        (report, records)
    }

    /// Leases out now.
    pub fn in_flight(&self) -> u64 {
        self.leases.len() as u64
    }

    /// Unsettled events held (ready, leased or waiting for a retry).
    pub fn held(&self) -> u64 {
        (self.pending.len() + self.replays.len()) as u64
    }

    /// The oldest unsettled event's recording time.
    pub fn oldest_unsettled(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.pending.values().next().map(|s| s.event.recorded_at)
    }

    /// Acks since the group was loaded.
    pub fn acked_total(&self) -> u64 {
        self.acked_total
    }
}

#[cfg(test)]
impl GroupState {
    /// Panics unless the indexes agree with the slots' states.
    fn check_indexes(&self) {
        let ready: BTreeSet<Position> = self
            .pending
            .iter()
            .filter(|(_, s)| matches!(s.state, SlotState::Ready(None)))
            .map(|(&p, _)| p)
            .collect();
        assert_eq!(self.ready, ready, "ready");
        let ready_heads: BTreeMap<Position, u64> = self
            .heads
            .intersection(&ready)
            .map(|p| (*p, self.pending[p].stream_hash))
            .collect();
        assert_eq!(self.ready_heads, ready_heads, "ready_heads");
        let mut heads = BTreeSet::new();
        if self.pinned() {
            let mut seen = std::collections::HashSet::new();
            for (&p, s) in &self.pending {
                if seen.insert(s.event.stream_id.clone()) {
                    heads.insert(p);
                }
            }
        }
        assert_eq!(self.heads, heads, "heads");
        let mut delayed = BTreeSet::new();
        for (replay, map) in [(false, &self.pending), (true, &self.replays)] {
            for (&p, s) in map {
                if let SlotState::Ready(Some(at)) = s.state {
                    delayed.insert((at, p, replay));
                }
            }
        }
        assert_eq!(self.delayed, delayed, "delayed");
        let leased = self
            .pending
            .values()
            .chain(self.replays.values())
            .filter(|s| matches!(s.state, SlotState::Leased { .. }))
            .count();
        assert_eq!(self.leases.len(), leased, "leases");
    }
}

/// The position right before `p`.
fn before(p: Position) -> Position {
    Position(p.0.saturating_sub(1))
}

/// The live consumer that owns `stream` under `pinned`: the one with the
/// highest hash of (stream, consumer), so a consumer that leaves moves only
/// its own streams.
fn owner(stream: u64, live: &[(ConsumerId, u64)]) -> Option<&ConsumerId> {
    live.iter()
        .max_by_key(|(_, c)| mix(stream ^ c.rotate_left(32)))
        .map(|(c, _)| c)
}

/// A name's hash, for [`owner`].
fn name_hash(name: &str) -> u64 {
    let mut h = DefaultHasher::new();
    name.hash(&mut h);
    h.finish()
}

/// A 64-bit finalizer (splitmix64's): every input bit moves every output bit.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests;
