//! `MemoryStore`: the whole contract in memory, for tests and demos.

use std::collections::HashMap;

/// The hot maps hash with foldhash (seeded per map): several times cheaper
/// than SipHash on ids and short names.
type FastHash = foldhash::quality::RandomState;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::Utc;
use parking_lot::RwLock;
use tokio::sync::watch;

use crate::append::{AppendResult, StreamAppend};
use crate::append_rules::{
    check_erase, check_guard, check_metadata_append, check_readable, check_retry, RecordedRef,
    StreamHead,
};
use crate::clock::MonotonicClock;
use crate::dcb::{self, AppendCondition, Query, Tag};
use crate::error::{Error, Result};
use crate::event::{EventId, NewEvent, RecordedEvent};
use crate::filter::ReadFilter;
use crate::limits::Limits;
use crate::metadata::{erased_metadata_stream, metadata_target, Retention, StreamMetadata};
use crate::read::Direction;
use crate::store::EventStore;
use crate::stream_id::StreamId;
use crate::stream_info::StreamInfo;
use crate::stream_list::{pick_page, StreamListQuery, StreamPage};
use crate::subscription::{SubscribeFrom, Subscription, SubscriptionSource};
use crate::version::{ExpectedVersion, Position, Version};

/// An event store that lives in memory. Positions are contiguous from 1.
///
/// Cloning is cheap and shares the same store.
#[derive(Clone)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

struct Inner {
    state: RwLock<State>,
    head: watch::Sender<Position>,
    limits: Limits,
}

#[derive(Default)]
struct State {
    /// `log[i]` has position `i + 1`.
    log: Vec<RecordedEvent>,
    streams: HashMap<StreamId, StreamEntry, FastHash>,
    ids: HashMap<EventId, usize, FastHash>,
    /// Each stream's metadata, by the stream it applies to.
    metadata: HashMap<StreamId, StreamMetadata, FastHash>,
    /// Erased streams: their events' data is gone and `$all` skips them.
    erased: std::collections::HashSet<StreamId, FastHash>,
    /// Log indexes of user-stream events by tag, ascending: what query
    /// reads and conditions look through.
    by_tag: HashMap<Tag, Vec<usize>, FastHash>,
    /// Log indexes of user-stream events by type, ascending.
    by_type: HashMap<String, Vec<usize>, FastHash>,
    clock: MonotonicClock,
}

#[derive(Default)]
struct StreamEntry {
    head: StreamHead,
    /// `events[k]` is the log index of version `k + 1`.
    events: Vec<usize>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// An empty store with default limits.
    pub fn new() -> Self {
        Self::with_limits(Limits::default())
    }

    /// An empty store with the given limits.
    pub fn with_limits(limits: Limits) -> Self {
        let (head, _) = watch::channel(Position::START);
        MemoryStore {
            inner: Arc::new(Inner {
                state: RwLock::new(State::default()),
                head,
                limits,
            }),
        }
    }

    /// Number of events in `$all`.
    pub fn len(&self) -> usize {
        self.inner.state.read().log.len()
    }

    /// Whether no event was ever appended.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl State {
    fn lookup(&self, id: &EventId) -> Option<RecordedRef<'_>> {
        self.ids.get(id).map(|&i| {
            let e = &self.log[i];
            RecordedRef {
                stream: e.stream_id.as_str(),
                version: e.version,
                position: e.position,
            }
        })
    }

    fn check(&self, part: &StreamAppend) -> Result<Option<AppendResult>> {
        let head = self.streams.get(&part.stream).map(|s| &s.head);
        // A tombstone refuses every later append, exact retries included
        // (`EventStore::tombstone_stream`), so it is checked before idempotency.
        if head.is_some_and(|h| h.tombstoned) {
            return Err(Error::StreamDeleted {
                stream: part.stream.clone(),
            });
        }
        if let Some(original) = check_retry(&part.stream, &part.events, |id| self.lookup(id))? {
            return Ok(Some(original));
        }
        check_guard(&part.stream, part.expected, head)?;
        check_metadata_append(&part.stream, &part.events)?;
        Ok(None)
    }

    fn write(&mut self, part: StreamAppend) -> AppendResult {
        self.note_metadata(&part);
        let now = self.clock.now();
        let entry = self.streams.entry(part.stream.clone()).or_default();
        let first_position = Position(self.log.len() as u64 + 1);
        for e in part.events {
            let index = self.log.len();
            let version = entry.head.version + 1;
            let id = e.id.unwrap_or_default();
            let position = Position(index as u64 + 1);
            let tags = dcb::tag_set(e.tags);
            if !part.stream.is_system() {
                for t in &tags {
                    self.by_tag.entry(t.clone()).or_default().push(index);
                }
                match self.by_type.get_mut(&e.event_type) {
                    Some(list) => list.push(index),
                    None => {
                        self.by_type.insert(e.event_type.clone(), vec![index]);
                    }
                }
            }
            self.log.push(RecordedEvent {
                id,
                stream_id: part.stream.clone(),
                version,
                position,
                event_type: e.event_type,
                // Its own copy, not a view of the caller's buffer (a
                // request body, say): a kept event keeps only its own
                // bytes alive. One copy per append, on purpose.
                data: bytes::Bytes::copy_from_slice(&e.data),
                content_type: e.content_type,
                metadata: e.metadata,
                recorded_at: now,
                tags,
            });
            self.ids.insert(id, index);
            entry.events.push(index);
            entry.head.version = version;
            entry.head.last_position = Some(position);
        }
        AppendResult {
            next_expected_version: entry.head.version,
            first_position,
            last_position: Position(self.log.len() as u64),
        }
    }

    /// Checks every part of a multi-stream append: `Some` with the original
    /// results when all of them are exact retries, `None` when none is.
    fn check_parts(&self, appends: &[StreamAppend]) -> Result<Option<Vec<AppendResult>>> {
        let mut retries = Vec::with_capacity(appends.len());
        for part in appends {
            retries.push(self.check(part)?);
        }
        let retried = retries.iter().filter(|r| r.is_some()).count();
        if retried == appends.len() {
            return Ok(Some(retries.into_iter().flatten().collect()));
        }
        if retried > 0 {
            let (i, _) = retries
                .iter()
                .enumerate()
                .find(|(_, r)| r.is_some())
                .unwrap_or((0, &None));
            let event_id = appends[i].events[0].id.unwrap_or_default();
            return Err(Error::IdempotencyConflict {
                event_id,
                reason:
                    "a multi-stream append re-sends some recorded streams together with new ones"
                        .into(),
            });
        }
        Ok(None)
    }

    /// Events after `after` that match `query` and that `$all` shows, in
    /// order.
    fn matching<'a>(
        &'a self,
        query: &'a Query,
        after: Position,
    ) -> Box<dyn Iterator<Item = &'a RecordedEvent> + 'a> {
        let start = (after.0.min(self.log.len() as u64)) as usize;
        if query.is_all() {
            return Box::new(
                self.log[start..]
                    .iter()
                    .filter(move |e| query.matches(e) && self.shows(e)),
            );
        }
        // Each item's candidates come from its rarest tag, or from its
        // types when it names no tag; the union is read in log order.
        let mut candidates = std::collections::BTreeSet::new();
        for item in &query.items {
            let lists: Vec<&Vec<usize>> = if item.tags.is_empty() {
                item.types
                    .iter()
                    .filter_map(|t| self.by_type.get(t))
                    .collect()
            } else {
                let rarest = item
                    .tags
                    .iter()
                    .map(|t| self.by_tag.get(t))
                    .min_by_key(|l| l.map_or(0, |l| l.len()));
                rarest.flatten().into_iter().collect()
            };
            if item.tags.is_empty() && item.types.is_empty() {
                // An item of no types and no tags matches every event.
                candidates.extend(start..self.log.len());
                continue;
            }
            for list in lists {
                let from = list.partition_point(|&i| i < start);
                candidates.extend(list[from..].iter().copied());
            }
        }
        Box::new(
            candidates
                .into_iter()
                .map(move |i| &self.log[i])
                .filter(move |e| query.matches(e) && self.shows(e)),
        )
    }

    /// Fails with `ConditionFailed` when an event after the condition's
    /// position matches its query.
    fn check_condition(&self, condition: &AppendCondition) -> Result<()> {
        let query = &condition.fail_if_events_match;
        match self.matching(query, condition.checked_after()).next() {
            Some(e) => Err(Error::ConditionFailed {
                position: e.position,
            }),
            None => Ok(()),
        }
    }

    fn readable<'a>(&'a self, stream: &StreamId) -> Result<&'a StreamEntry> {
        check_readable(stream, self.streams.get(stream), |s| &s.head)
    }

    /// Keeps the settings an append to a metadata stream writes (checked
    /// by `check_metadata_append`).
    fn note_metadata(&mut self, part: &StreamAppend) {
        let Some(target) = metadata_target(part.stream.as_str()) else {
            return;
        };
        let parsed = part
            .events
            .last()
            .and_then(|e| StreamMetadata::from_json(&e.data).ok());
        let id = StreamId::any(target);
        if let (Some(m), Ok(id)) = (parsed, id) {
            self.metadata.insert(id, m);
        }
    }

    /// The first version of `entry` (stream `stream`) that retention leaves
    /// readable now: by deletion, count, truncation and age.
    fn first_readable(&self, stream: &StreamId, entry: &StreamEntry) -> Version {
        let r = self.retention(stream, &entry.head);
        let mut first = r.first_version;
        if let Some(t) = r.not_before {
            // Events are recorded in version order: the aged ones are a prefix.
            let aged = entry
                .events
                .partition_point(|&i| self.log[i].recorded_at < t);
            first = first.max(aged as Version + 1);
        }
        first
    }

    /// The `stream_info` answer for `stream`, whose entry is `entry`.
    fn info(&self, stream: &StreamId, entry: &StreamEntry) -> StreamInfo {
        let mut info = entry.head.info(stream);
        if !entry.head.tombstoned {
            // Everything cut reads as `version + 1`, as `StreamInfo` says.
            info.first_readable_version = self
                .first_readable(stream, entry)
                .min(entry.head.version + 1);
        }
        info
    }

    fn retention(&self, stream: &StreamId, head: &StreamHead) -> Retention {
        Retention::new(stream.as_str(), head, self.metadata.get(stream), Utc::now())
    }

    /// Tombstones `stream` (a never-written one too), empties its events'
    /// data and metadata and hides them from `$all`.
    fn erase(&mut self, stream: &StreamId) {
        let entry = self.streams.entry(stream.clone()).or_default();
        entry.head.tombstoned = true;
        let erased: Vec<usize> = entry.events.clone();
        for i in erased {
            let e = &mut self.log[i];
            e.data = bytes::Bytes::new();
            e.metadata = Default::default();
            e.tags = Vec::new();
        }
        self.erased.insert(stream.clone());
    }

    /// Whether `$all` shows `e`: retention cuts it there too, and erased
    /// streams show nothing.
    fn shows(&self, e: &RecordedEvent) -> bool {
        if self.erased.contains(&e.stream_id) {
            return false;
        }
        let governed = self.metadata.contains_key(&e.stream_id)
            || metadata_target(e.stream_id.as_str()).is_some();
        if !governed {
            return true;
        }
        match self.streams.get(&e.stream_id) {
            // Deletion does not cut `$all`: only the metadata's settings do.
            Some(s) => {
                let head = StreamHead {
                    deleted_through: 0,
                    ..s.head
                };
                self.retention(&e.stream_id, &head).keeps_event(e)
            }
            None => true,
        }
    }
}

impl Inner {
    fn publish(&self, state: &State) {
        let head = Position(state.log.len() as u64);
        self.head.send_if_modified(|h| {
            if *h != head {
                *h = head;
                true
            } else {
                false
            }
        });
    }

    fn read_all(
        &self,
        from: Position,
        max_count: usize,
        filter: &ReadFilter,
    ) -> Vec<RecordedEvent> {
        let state = self.state.read();
        let start = from.0.saturating_sub(1).min(state.log.len() as u64) as usize;
        let mut out = Vec::with_capacity(max_count.min(1024));
        // Every metadata stream has an entry here: without any, nothing is cut.
        if filter.is_all() && state.metadata.is_empty() && state.erased.is_empty() {
            let end = start.saturating_add(max_count).min(state.log.len());
            out.extend_from_slice(&state.log[start..end]);
        } else {
            out.extend(
                state.log[start..]
                    .iter()
                    .filter(|e| filter.matches(e) && state.shows(e))
                    .take(max_count)
                    .cloned(),
            );
        }
        out
    }

    /// `read_all_backward`: the log below `before`, from its end down.
    fn read_all_backward(
        &self,
        before: Position,
        max_count: usize,
        filter: &ReadFilter,
    ) -> Vec<RecordedEvent> {
        let state = self.state.read();
        // `log[i]` has position `i + 1`: positions below `before` are `log[..before - 1]`.
        let end = before.0.saturating_sub(1).min(state.log.len() as u64) as usize;
        state.log[..end]
            .iter()
            .rev()
            .filter(|e| filter.matches(e) && state.shows(e))
            .take(max_count)
            .cloned()
            .collect()
    }
}

#[async_trait]
impl SubscriptionSource for Inner {
    async fn read_page(
        &self,
        from: Position,
        max_count: usize,
        filter: &ReadFilter,
    ) -> Result<Vec<RecordedEvent>> {
        Ok(self.read_all(from, max_count, filter))
    }

    fn head(&self) -> watch::Receiver<Position> {
        self.head.subscribe()
    }
}

#[async_trait]
impl EventStore for MemoryStore {
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult> {
        self.inner.limits.check_events(&events)?;
        let part = StreamAppend::new(stream.clone(), expected, events);
        let mut state = self.inner.state.write();
        if let Some(original) = state.check(&part)? {
            return Ok(original);
        }
        let result = state.write(part);
        self.inner.publish(&state);
        Ok(result)
    }

    async fn append_multi(&self, appends: Vec<StreamAppend>) -> Result<Vec<AppendResult>> {
        self.inner.limits.check_multi(&appends)?;
        let mut state = self.inner.state.write();
        if let Some(original) = state.check_parts(&appends)? {
            return Ok(original);
        }
        let results = appends.into_iter().map(|p| state.write(p)).collect();
        self.inner.publish(&state);
        Ok(results)
    }

    async fn append_if(
        &self,
        appends: Vec<StreamAppend>,
        condition: &AppendCondition,
    ) -> Result<Vec<AppendResult>> {
        condition.fail_if_events_match.validate()?;
        self.inner.limits.check_multi(&appends)?;
        let mut state = self.inner.state.write();
        if let Some(original) = state.check_parts(&appends)? {
            return Ok(original);
        }
        state.check_condition(condition)?;
        let results = appends.into_iter().map(|p| state.write(p)).collect();
        self.inner.publish(&state);
        Ok(results)
    }

    async fn read_query(
        &self,
        query: &Query,
        after: Position,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>> {
        dcb::check_read(query, limit, &self.inner.limits)?;
        let state = self.inner.state.read();
        Ok(state.matching(query, after).take(limit).cloned().collect())
    }

    async fn read_stream(
        &self,
        stream: &StreamId,
        from: Version,
        max_count: usize,
        direction: Direction,
    ) -> Result<Vec<RecordedEvent>> {
        self.inner.limits.check_read_count(max_count)?;
        let state = self.inner.state.read();
        let entry = state.readable(stream)?;
        let first = state.first_readable(stream, entry);
        let window = entry
            .head
            .read_window_from(first, from, max_count, direction);
        let out = window
            .versions()
            .map(|v| state.log[entry.events[(v - 1) as usize]].clone())
            .collect();
        Ok(out)
    }

    async fn read_all(
        &self,
        from: Position,
        max_count: usize,
        filter: &ReadFilter,
    ) -> Result<Vec<RecordedEvent>> {
        self.inner.limits.check_read_count(max_count)?;
        filter.validate()?;
        Ok(self.inner.read_all(from, max_count, filter))
    }

    async fn read_all_backward(
        &self,
        before: Position,
        max_count: usize,
        filter: &ReadFilter,
    ) -> Result<Vec<RecordedEvent>> {
        self.inner.limits.check_read_count(max_count)?;
        filter.validate()?;
        Ok(self.inner.read_all_backward(before, max_count, filter))
    }

    async fn subscribe(&self, from: SubscribeFrom, filter: ReadFilter) -> Result<Subscription> {
        filter.validate()?;
        let source: Arc<dyn SubscriptionSource> = self.inner.clone();
        Ok(Subscription::new(source, from, filter))
    }

    async fn stream_info(&self, stream: &StreamId) -> Result<Option<StreamInfo>> {
        let state = self.inner.state.read();
        Ok(state.streams.get(stream).map(|s| state.info(stream, s)))
    }

    /// Picks the page in one pass over every stream (no ordered index is
    /// kept: the memory store is for tests and demos).
    async fn list_streams(&self, query: &StreamListQuery) -> Result<StreamPage> {
        query.validate()?;
        let state = self.inner.state.read();
        let (names, more) = pick_page(query, state.streams.keys());
        let streams = names
            .iter()
            .filter_map(|n| state.streams.get(n).map(|s| state.info(n, s)))
            .collect();
        let next = if more { names.last().cloned() } else { None };
        Ok(StreamPage { streams, next })
    }

    async fn delete_stream(&self, stream: &StreamId, expected: ExpectedVersion) -> Result<()> {
        let mut state = self.inner.state.write();
        state.readable(stream)?;
        check_guard(stream, expected, state.streams.get(stream).map(|s| &s.head))?;
        if let Some(s) = state.streams.get_mut(stream) {
            s.head.deleted_through = s.head.version;
        }
        Ok(())
    }

    async fn tombstone_stream(&self, stream: &StreamId, expected: ExpectedVersion) -> Result<()> {
        let mut state = self.inner.state.write();
        check_guard(stream, expected, state.streams.get(stream).map(|s| &s.head))?;
        let entry = state.streams.entry(stream.clone()).or_default();
        entry.head.tombstoned = true;
        Ok(())
    }

    async fn erase_stream(&self, stream: &StreamId, expected: ExpectedVersion) -> Result<()> {
        let mut state = self.inner.state.write();
        check_erase(stream, expected, state.streams.get(stream).map(|s| &s.head))?;
        state.erase(stream);
        if let Some(meta) = erased_metadata_stream(stream) {
            state.erase(&meta);
            state.metadata.remove(stream);
        }
        Ok(())
    }

    async fn head_position(&self) -> Result<Position> {
        Ok(Position(self.inner.state.read().log.len() as u64))
    }

    fn health(&self) -> Result<Option<Position>> {
        Ok(Some(Position(self.inner.state.read().log.len() as u64)))
    }

    fn limits(&self) -> &Limits {
        &self.inner.limits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_kept_event_does_not_hold_the_callers_buffer() {
        let store = MemoryStore::new();
        let s = StreamId::new("account-1").unwrap();
        let body = bytes::Bytes::from(format!("{{\"n\": 1}}{}", " ".repeat(1 << 20)));
        let data = body.slice(0..8);
        store
            .append(
                &s,
                ExpectedVersion::Any,
                vec![NewEvent::json_bytes("A", data)],
            )
            .await
            .unwrap();
        let read = store
            .read_stream(&s, 1, 10, Direction::Forward)
            .await
            .unwrap();
        assert_eq!(&read[0].data[..], br#"{"n": 1}"#);
        assert!(
            !crate::event::lies_within(&read[0].data, &body),
            "the event is a view of the body"
        );
    }

    #[tokio::test]
    async fn tombstone_refuses_exact_retries() {
        let store = MemoryStore::new();
        let s = StreamId::new("account-1").unwrap();
        let events = vec![NewEvent::json_bytes("Opened", &b"{}"[..]).with_id(EventId::new())];
        store
            .append(&s, ExpectedVersion::NoStream, events.clone())
            .await
            .unwrap();
        store
            .tombstone_stream(&s, ExpectedVersion::Any)
            .await
            .unwrap();
        let retry = store
            .append(&s, ExpectedVersion::NoStream, events.clone())
            .await;
        assert!(
            matches!(retry, Err(Error::StreamDeleted { .. })),
            "{retry:?}"
        );
        let multi = store
            .append_multi(vec![StreamAppend::new(
                s.clone(),
                ExpectedVersion::Any,
                events,
            )])
            .await;
        assert!(
            matches!(multi, Err(Error::StreamDeleted { .. })),
            "{multi:?}"
        );
    }
}
