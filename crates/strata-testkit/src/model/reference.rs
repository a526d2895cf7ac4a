//! The reference store: the whole contract's observable behaviour in a
//! `Vec` and a `BTreeMap`, re-deciding everything by scanning.

// These functions are test assertions: a panic (from `unwrap`, `expect` or
// `assert!`) is how the property test reports that the store broke the contract.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashSet};

use strata_core::dcb::{Tag, MAX_TAGS_PER_EVENT};
use strata_core::Error;
use strata_core::{
    AppendResult, Bytes, ContentType, CurrentVersion, Direction, EventId, ExpectedVersion, Limits,
    Metadata, NewEvent, Position, ReadFilter, StreamAppend, StreamId, StreamInfo, StreamMetadata,
    StreamState, Version,
};

/// An event as the model recorded it. Its `position` is the model's own:
/// contiguous from 1.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelEvent {
    /// The supplied id, or the one the backend generated once the test learned
    /// it (`None` until then).
    pub id: Option<EventId>,
    /// Its stream.
    pub stream: StreamId,
    /// Its version in the stream.
    pub version: Version,
    /// Its place in the model's `$all` (1-based, contiguous).
    pub position: Position,
    /// Its type.
    pub event_type: String,
    /// Its payload.
    pub data: Bytes,
    /// Its payload's encoding.
    pub content_type: ContentType,
    /// Its metadata.
    pub metadata: Metadata,
    /// Its tags as a set: sorted, each once.
    pub tags: Vec<Tag>,
}

/// What the model keeps per stream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ModelStream {
    /// Version of the last event ever appended (0 if none).
    pub version: Version,
    /// Versions up to this one were soft-deleted.
    pub deleted_through: Version,
    /// Hard-deleted.
    pub tombstoned: bool,
    /// Erased: tombstoned, and its events gone from `$all` too.
    pub erased: bool,
    /// Model position of the last event ever appended.
    pub last_position: Option<Position>,
}

impl ModelStream {
    pub(super) fn is_live(&self) -> bool {
        self.version > self.deleted_through
    }

    pub(super) fn current(&self) -> CurrentVersion {
        if self.is_live() {
            CurrentVersion::Current(self.version)
        } else {
            CurrentVersion::NoStream
        }
    }
}

/// An error the model predicts, compared with a backend's [`Error`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModelError {
    /// [`Error::InvalidInput`].
    InvalidInput,
    /// [`Error::TooLarge`]: over a size limit.
    TooLarge,
    /// [`Error::IdempotencyConflict`].
    IdempotencyConflict,
    /// [`Error::StreamNotFound`] for this stream.
    StreamNotFound(StreamId),
    /// [`Error::StreamDeleted`] for this stream.
    StreamDeleted(StreamId),
    /// [`Error::ConditionFailed`] naming the event at this model position.
    ConditionFailed(Position),
    /// [`Error::WrongExpectedVersion`] with exactly these fields.
    WrongExpectedVersion {
        /// The stream.
        stream: StreamId,
        /// The guard, echoed.
        expected: ExpectedVersion,
        /// The stream's state.
        actual: CurrentVersion,
    },
}

impl ModelError {
    /// Whether a backend's `error` is the one predicted.
    pub fn matches(&self, error: &Error) -> bool {
        match (self, error) {
            (ModelError::InvalidInput, Error::InvalidInput { .. }) => true,
            (ModelError::TooLarge, Error::TooLarge { .. }) => true,
            (ModelError::IdempotencyConflict, Error::IdempotencyConflict { .. }) => true,
            (ModelError::StreamNotFound(s), Error::StreamNotFound { stream }) => s == stream,
            (ModelError::StreamDeleted(s), Error::StreamDeleted { stream }) => s == stream,
            // The position is a model position: the caller compares it by rank.
            (ModelError::ConditionFailed(_), Error::ConditionFailed { .. }) => true,
            (
                ModelError::WrongExpectedVersion {
                    stream,
                    expected,
                    actual,
                },
                Error::WrongExpectedVersion {
                    stream: s,
                    expected: e,
                    actual: a,
                },
            ) => stream == s && expected == e && actual == a,
            _ => false,
        }
    }
}

/// The model's answer to a successful append.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModelAppend {
    /// The result, with model positions.
    pub result: AppendResult,
    /// `false` for an idempotent retry (nothing written).
    pub written: bool,
}

/// The reference store.
#[derive(Clone, Debug)]
pub struct Model {
    limits: Limits,
    pub(super) log: Vec<ModelEvent>,
    pub(super) streams: BTreeMap<StreamId, ModelStream>,
    /// Each stream's settings, by the stream they govern (not its `$$` one).
    pub(super) metadata: BTreeMap<StreamId, StreamMetadata>,
}

/// Whether `expected` accepts a stream that is at `current`.
pub(super) fn guard_accepts(expected: ExpectedVersion, current: CurrentVersion) -> bool {
    match expected {
        ExpectedVersion::Any => true,
        ExpectedVersion::NoStream | ExpectedVersion::Exact(0) => {
            current == CurrentVersion::NoStream
        }
        ExpectedVersion::StreamExists => current != CurrentVersion::NoStream,
        ExpectedVersion::Exact(n) => current == CurrentVersion::Current(n),
    }
}

/// Tags as the store keeps them: sorted, each once.
pub(super) fn tag_set(tags: &[Tag]) -> Vec<Tag> {
    let set: std::collections::BTreeSet<&Tag> = tags.iter().collect();
    set.into_iter().cloned().collect()
}

/// Whether `filter` lets `e` through (every set field must match).
fn filter_accepts(filter: &ReadFilter, e: &ModelEvent) -> bool {
    let name = e.stream.as_str();
    let category = name.split('-').next().unwrap_or(name);
    filter.stream.as_ref().is_none_or(|s| s == &e.stream)
        && filter
            .stream_prefix
            .as_ref()
            .is_none_or(|p| name.starts_with(p.as_str()))
        && filter.category.as_ref().is_none_or(|c| c == category)
        && (filter.event_types.is_empty() || filter.event_types.contains(&e.event_type))
        && filter
            .correlation_id
            .as_ref()
            .is_none_or(|c| e.metadata.correlation_id.as_ref() == Some(c))
}

impl Model {
    /// An empty model enforcing `limits` (pass the backend's).
    pub fn new(limits: Limits) -> Self {
        Model {
            limits,
            log: Vec::new(),
            streams: BTreeMap::new(),
            metadata: BTreeMap::new(),
        }
    }

    /// The limits it enforces.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Every event, in position order.
    pub fn events(&self) -> &[ModelEvent] {
        &self.log
    }

    /// The stream's record, if it was ever written or tombstoned.
    pub fn stream(&self, stream: &StreamId) -> Option<&ModelStream> {
        self.streams.get(stream)
    }

    /// What a guard sees for `stream`.
    pub fn current(&self, stream: &StreamId) -> CurrentVersion {
        self.streams
            .get(stream)
            .map_or(CurrentVersion::NoStream, ModelStream::current)
    }

    /// Position of the last event (`START` if none).
    pub fn head(&self) -> Position {
        Position(self.log.len() as u64)
    }

    /// Records the id a backend generated for the event at model `position`.
    pub fn learn_generated_id(&mut self, position: Position, id: EventId) -> Result<(), String> {
        if self.log.iter().any(|e| e.id == Some(id)) {
            return Err(format!(
                "generated id {id} is already used by another event"
            ));
        }
        let e = &mut self.log[(position.0 - 1) as usize];
        if e.id.is_some() {
            return Err(format!("event at {position} already has an id"));
        }
        e.id = Some(id);
        Ok(())
    }

    pub(super) fn check_events<'a>(
        &self,
        events: impl Iterator<Item = &'a NewEvent>,
    ) -> Result<(), ModelError> {
        // The order of `Limits::check_events`: the count, then each event
        // (its type and tags, its size, its JSON), its id, then the total.
        let l = &self.limits;
        let events: Vec<&NewEvent> = events.collect();
        if events.is_empty() {
            return Err(ModelError::InvalidInput);
        }
        if events.len() > l.max_events_per_append {
            return Err(ModelError::TooLarge);
        }
        let mut ids = HashSet::new();
        let mut bytes = 0usize;
        for e in events {
            let type_ok = !e.event_type.is_empty()
                && e.event_type.len() <= l.max_event_type_bytes
                && !e.event_type.chars().any(char::is_control);
            if !type_ok || tag_set(&e.tags).len() > MAX_TAGS_PER_EVENT {
                return Err(ModelError::InvalidInput);
            }
            if e.size_bytes() > l.max_event_bytes {
                return Err(ModelError::TooLarge);
            }
            // What the store's check accepts: vouched-for data, or data
            // that parses as JSON the way `ContentType::check_json` does.
            let json_ok = e.content_type != ContentType::Json
                || e.json_checked.covers(&e.data)
                || ContentType::check_json(&e.data).is_ok();
            if !json_ok || !e.id.is_none_or(|id| ids.insert(id)) {
                return Err(ModelError::InvalidInput);
            }
            bytes += e.size_bytes();
        }
        if bytes > l.max_append_bytes {
            return Err(ModelError::TooLarge);
        }
        Ok(())
    }

    /// `Ok(Some(original))` if `events` re-send recorded events exactly,
    /// `Ok(None)` if none of their ids is recorded.
    fn retry_of(
        &self,
        stream: &StreamId,
        events: &[NewEvent],
    ) -> Result<Option<AppendResult>, ModelError> {
        let found: Vec<Option<&ModelEvent>> = events
            .iter()
            .map(|e| {
                e.id.and_then(|id| self.log.iter().find(|r| r.id == Some(id)))
            })
            .collect();
        if found.iter().all(Option::is_none) {
            return Ok(None);
        }
        if found.iter().any(Option::is_none) {
            return Err(ModelError::IdempotencyConflict);
        }
        let found: Vec<&ModelEvent> = found.into_iter().flatten().collect();
        let same_stream = found.iter().all(|e| &e.stream == stream);
        let in_order = found.windows(2).all(|w| w[1].version == w[0].version + 1);
        if !same_stream || !in_order {
            return Err(ModelError::IdempotencyConflict);
        }
        let (first, last) = (found[0], found[found.len() - 1]);
        Ok(Some(AppendResult {
            next_expected_version: last.version,
            first_position: first.position,
            last_position: last.position,
        }))
    }

    /// Everything but validation: `Ok(Some)` for a retry, `Ok(None)` to write.
    pub(super) fn decide(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: &[NewEvent],
    ) -> Result<Option<AppendResult>, ModelError> {
        if self.streams.get(stream).is_some_and(|s| s.tombstoned) {
            return Err(ModelError::StreamDeleted(stream.clone()));
        }
        if let Some(original) = self.retry_of(stream, events)? {
            return Ok(Some(original));
        }
        let actual = self.current(stream);
        if !guard_accepts(expected, actual) {
            return Err(ModelError::WrongExpectedVersion {
                stream: stream.clone(),
                expected,
                actual,
            });
        }
        Ok(None)
    }

    pub(super) fn write(&mut self, stream: &StreamId, events: &[NewEvent]) -> AppendResult {
        let first_position = Position(self.log.len() as u64 + 1);
        let entry = self.streams.entry(stream.clone()).or_default();
        for e in events {
            entry.version += 1;
            let position = Position(self.log.len() as u64 + 1);
            entry.last_position = Some(position);
            self.log.push(ModelEvent {
                id: e.id,
                stream: stream.clone(),
                version: entry.version,
                position,
                event_type: e.event_type.clone(),
                data: e.data.clone(),
                content_type: e.content_type,
                metadata: e.metadata.clone(),
                tags: tag_set(&e.tags),
            });
        }
        AppendResult {
            next_expected_version: entry.version,
            first_position,
            last_position: Position(self.log.len() as u64),
        }
    }

    /// `append`: validation, tombstone, idempotent retry, guard, write.
    pub fn append(
        &mut self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: &[NewEvent],
    ) -> Result<ModelAppend, ModelError> {
        self.check_events(events.iter())?;
        match self.decide(stream, expected, events)? {
            Some(result) => Ok(ModelAppend {
                result,
                written: false,
            }),
            None => Ok(ModelAppend {
                result: self.write(stream, events),
                written: true,
            }),
        }
    }

    /// `append_multi`. The error side lists every error a correct store may
    /// return: the contract does not say which failing part is reported.
    pub fn append_multi(
        &mut self,
        parts: &[StreamAppend],
    ) -> Result<Vec<ModelAppend>, Vec<ModelError>> {
        if let Some(retried) = self.decide_multi(parts)? {
            return Ok(retried);
        }
        Ok(self.write_parts(parts))
    }

    /// Everything `append_multi` decides before it writes: `Ok(Some)` for
    /// an exact retry of every part, `Ok(None)` to write, or every error a
    /// correct store may return.
    pub(super) fn decide_multi(
        &self,
        parts: &[StreamAppend],
    ) -> Result<Option<Vec<ModelAppend>>, Vec<ModelError>> {
        let distinct: HashSet<&StreamId> = parts.iter().map(|p| &p.stream).collect();
        let shape_ok = !parts.is_empty()
            && parts.len() <= self.limits.max_streams_per_multi_append
            && distinct.len() == parts.len()
            && parts.iter().all(|p| !p.events.is_empty());
        if !shape_ok {
            return Err(vec![ModelError::InvalidInput]);
        }
        self.check_events(parts.iter().flat_map(|p| p.events.iter()))
            .map_err(|e| vec![e])?;
        let decisions: Vec<_> = parts
            .iter()
            .map(|p| self.decide(&p.stream, p.expected, &p.events))
            .collect();
        let retried = decisions
            .iter()
            .filter(|d| matches!(d, Ok(Some(_))))
            .count();
        let mut errors: Vec<ModelError> = decisions
            .iter()
            .filter_map(|d| d.as_ref().err().cloned())
            .collect();
        if retried > 0 && retried < parts.len() {
            // Re-sending some recorded parts with new ones is a partial overlap.
            errors.push(ModelError::IdempotencyConflict);
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        if retried == parts.len() {
            return Ok(Some(
                decisions
                    .into_iter()
                    .map(|d| ModelAppend {
                        result: d.ok().flatten().unwrap(),
                        written: false,
                    })
                    .collect(),
            ));
        }
        Ok(None)
    }

    /// Writes every part, in order.
    pub(super) fn write_parts(&mut self, parts: &[StreamAppend]) -> Vec<ModelAppend> {
        parts
            .iter()
            .map(|p| ModelAppend {
                result: self.write(&p.stream, &p.events),
                written: true,
            })
            .collect()
    }

    /// `delete_stream`.
    pub fn delete_stream(
        &mut self,
        stream: &StreamId,
        expected: ExpectedVersion,
    ) -> Result<(), ModelError> {
        let s = self.streams.get(stream).copied().unwrap_or_default();
        if s.tombstoned {
            return Err(ModelError::StreamDeleted(stream.clone()));
        }
        if !s.is_live() {
            return Err(ModelError::StreamNotFound(stream.clone()));
        }
        if !guard_accepts(expected, s.current()) {
            return Err(ModelError::WrongExpectedVersion {
                stream: stream.clone(),
                expected,
                actual: s.current(),
            });
        }
        if let Some(s) = self.streams.get_mut(stream) {
            s.deleted_through = s.version;
        }
        Ok(())
    }

    /// `tombstone_stream`.
    pub fn tombstone_stream(
        &mut self,
        stream: &StreamId,
        expected: ExpectedVersion,
    ) -> Result<(), ModelError> {
        let s = self.streams.get(stream).copied().unwrap_or_default();
        if s.tombstoned {
            return Err(ModelError::StreamDeleted(stream.clone()));
        }
        if !guard_accepts(expected, s.current()) {
            return Err(ModelError::WrongExpectedVersion {
                stream: stream.clone(),
                expected,
                actual: s.current(),
            });
        }
        self.streams.entry(stream.clone()).or_default().tombstoned = true;
        Ok(())
    }

    /// `read_stream`.
    pub fn read_stream(
        &self,
        stream: &StreamId,
        from: Version,
        max_count: usize,
        direction: Direction,
    ) -> Result<Vec<ModelEvent>, ModelError> {
        if max_count > self.limits.max_read_count {
            return Err(ModelError::InvalidInput);
        }
        let s = self.streams.get(stream).copied().unwrap_or_default();
        if s.tombstoned {
            return Err(ModelError::StreamDeleted(stream.clone()));
        }
        if !s.is_live() {
            return Err(ModelError::StreamNotFound(stream.clone()));
        }
        let first = self.first_readable(stream, &s);
        let readable = self
            .log
            .iter()
            .filter(|e| &e.stream == stream && e.version >= first);
        Ok(match direction {
            Direction::Forward => readable
                .filter(|e| e.version >= from)
                .take(max_count)
                .cloned()
                .collect(),
            Direction::Backward => readable
                .rev()
                .filter(|e| e.version <= from)
                .take(max_count)
                .cloned()
                .collect(),
        })
    }

    /// `read_all`, with `from` a model position.
    pub fn read_all(
        &self,
        from: Position,
        max_count: usize,
        filter: &ReadFilter,
    ) -> Result<Vec<ModelEvent>, ModelError> {
        if max_count > self.limits.max_read_count {
            return Err(ModelError::InvalidInput);
        }
        Ok(self
            .log
            .iter()
            .filter(|e| e.position >= from && filter_accepts(filter, e) && self.shows(e))
            .take(max_count)
            .cloned()
            .collect())
    }

    /// `read_all_backward`, with `before` a model position.
    pub fn read_all_backward(
        &self,
        before: Position,
        max_count: usize,
        filter: &ReadFilter,
    ) -> Result<Vec<ModelEvent>, ModelError> {
        if max_count > self.limits.max_read_count {
            return Err(ModelError::InvalidInput);
        }
        Ok(self
            .log
            .iter()
            .rev()
            .filter(|e| e.position < before && filter_accepts(filter, e) && self.shows(e))
            .take(max_count)
            .cloned()
            .collect())
    }

    /// `stream_info`, with a model `last_position`.
    pub fn stream_info(&self, stream: &StreamId) -> Option<StreamInfo> {
        self.streams.get(stream).map(|s| StreamInfo {
            stream: stream.clone(),
            version: s.version,
            first_readable_version: if s.tombstoned {
                s.version + 1
            } else {
                self.first_readable(stream, s).min(s.version + 1)
            },
            state: if s.tombstoned {
                StreamState::Tombstoned
            } else if s.is_live() {
                StreamState::Live
            } else {
                StreamState::Deleted
            },
            last_position: s.last_position,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(name: &str) -> StreamId {
        StreamId::new(name).unwrap()
    }

    fn e(id: Option<EventId>) -> NewEvent {
        let e = NewEvent::json_bytes("E", &b"{}"[..]);
        NewEvent { id, ..e }
    }

    #[test]
    fn the_model_refuses_input_as_the_limits_check_does() {
        let limits = Limits {
            max_event_bytes: 100,
            max_events_per_append: 3,
            max_append_bytes: 250,
            ..Limits::default()
        };
        let m = Model::new(limits.clone());
        let sized = |n: usize| NewEvent::new("A", vec![b'x'; n], ContentType::Binary);
        let json = |text: &'static str| NewEvent::json_bytes("J", text.as_bytes());
        let untyped = NewEvent::new("", Bytes::new(), ContentType::Binary);
        let id = EventId::new();
        let twice = [e(Some(id)), e(Some(id))];
        let cases: Vec<Vec<NewEvent>> = vec![
            vec![],
            vec![sized(1); 4],
            vec![sized(100)],
            vec![sized(90), sized(90), sized(90)],
            vec![untyped.clone(), sized(100)],
            vec![sized(100), untyped.clone()],
            vec![sized(90), sized(90), json("{")],
            vec![json("{"), sized(100)],
            // Parsed as the store parses: a number out of range is JSON.
            vec![json("1e999"), sized(90), sized(90)],
            twice.to_vec(),
            vec![sized(99), sized(99)],
            vec![json("{\"n\": 1}")],
        ];
        for events in cases {
            let store = limits
                .check_events(&events)
                .map(|_| ())
                .map_err(|e| e.kind());
            let model = m.check_events(events.iter()).map_err(|e| match e {
                ModelError::InvalidInput => "invalid_input",
                ModelError::TooLarge => "payload_too_large",
                other => panic!("unexpected {other:?}"),
            });
            assert_eq!(model, store, "{events:?}");
        }
    }

    #[test]
    fn model_guards_retries_and_deletes() {
        let mut m = Model::new(Limits::default());
        let a = s("a-1");
        let ids: Vec<EventId> = (0..3).map(|_| EventId::new()).collect();
        let events: Vec<NewEvent> = ids.iter().map(|id| e(Some(*id))).collect();
        let r = m.append(&a, ExpectedVersion::NoStream, &events).unwrap();
        assert!(r.written);
        assert_eq!(r.result.next_expected_version, 3);
        // Retry whatever the guard.
        let again = m.append(&a, ExpectedVersion::Exact(9), &events).unwrap();
        assert_eq!(
            again,
            ModelAppend {
                written: false,
                ..r
            }
        );
        // Partial overlap and reorder.
        assert_eq!(
            m.append(&a, ExpectedVersion::Any, &[events[0].clone(), e(None)]),
            Err(ModelError::IdempotencyConflict)
        );
        assert_eq!(
            m.append(
                &a,
                ExpectedVersion::Any,
                &[events[1].clone(), events[0].clone()]
            ),
            Err(ModelError::IdempotencyConflict)
        );
        // Soft delete, then re-create with continuing versions.
        m.delete_stream(&a, ExpectedVersion::Exact(3)).unwrap();
        assert_eq!(
            m.read_stream(&a, 1, 10, Direction::Forward),
            Err(ModelError::StreamNotFound(a.clone()))
        );
        let r = m.append(&a, ExpectedVersion::NoStream, &[e(None)]).unwrap();
        assert_eq!(r.result.next_expected_version, 4);
        let read = m.read_stream(&a, 1, 10, Direction::Forward).unwrap();
        assert_eq!(read.iter().map(|e| e.version).collect::<Vec<_>>(), vec![4]);
        // Tombstone beats retry.
        m.tombstone_stream(&a, ExpectedVersion::Any).unwrap();
        assert_eq!(
            m.append(&a, ExpectedVersion::Any, &events),
            Err(ModelError::StreamDeleted(a.clone()))
        );
        let info = m.stream_info(&a).unwrap();
        assert_eq!((info.version, info.first_readable_version), (4, 5));
    }

    #[test]
    fn model_multi_is_atomic() {
        let mut m = Model::new(Limits::default());
        let (a, b) = (s("a-1"), s("b-1"));
        m.append(&b, ExpectedVersion::Any, &[e(None)]).unwrap();
        let err = m
            .append_multi(&[
                StreamAppend::new(a.clone(), ExpectedVersion::NoStream, vec![e(None)]),
                StreamAppend::new(b.clone(), ExpectedVersion::NoStream, vec![e(None)]),
            ])
            .unwrap_err();
        assert_eq!(
            err,
            vec![ModelError::WrongExpectedVersion {
                stream: b.clone(),
                expected: ExpectedVersion::NoStream,
                actual: CurrentVersion::Current(1),
            }]
        );
        assert_eq!(m.events().len(), 1);
        assert_eq!(m.stream_info(&a), None);
    }
}
