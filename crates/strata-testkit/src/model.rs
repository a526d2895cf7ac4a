//! A trivially correct reference store, and the model-based property test
//! that compares a backend against it.
//!
//! [`Model`] keeps the whole contract's observable behaviour in a `Vec` and a
//! `BTreeMap`, synchronously, re-deciding everything by scanning: no indexes,
//! no shared rule code with the stores, nothing clever. The property test
//! ([`run_model_based_test`], or the
//! [`model_based_property_test!`](crate::model_based_property_test) macro)
//! generates random operation sequences, runs each against a fresh backend
//! store and the model, and demands that every answer agrees:
//!
//! - `Ok` values on every deterministic field (versions, ids, types, data,
//!   metadata, states). Positions are only promised to be strictly increasing,
//!   so a backend position is compared by its rank: the test learns the
//!   backend position of every event it writes and maps it to the model's
//!   contiguous position.
//! - errors by [`Error::kind`], and for `WrongExpectedVersion`,
//!   `StreamNotFound` and `StreamDeleted` also by stream, expected and actual.
//!
//! Contract decisions the model encodes (see the crate's conformance cases):
//! input is validated before anything else; a tombstone is checked before
//! idempotency, and idempotency before the guard; a retry is any run of
//! recorded ids that are consecutive versions of the target stream, in order,
//! with no new event; deletes and tombstones add nothing to `$all`.

// These functions are test assertions: a panic (from `unwrap`, `expect` or
// `assert!`) is how the property test reports that the store broke the contract.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashSet};
use std::fmt::Debug;

use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestCaseError, TestError, TestRunner};
use strata_core::{
    AppendResult, Bytes, ContentType, CurrentVersion, Direction, Error, EventId, EventStore,
    ExpectedVersion, Limits, Metadata, NewEvent, Position, ReadFilter, RecordedEvent, StreamAppend,
    StreamId, StreamInfo, StreamState, Version, FROM_END,
};

use crate::conformance::StoreHarness;

/// Cases the property test runs unless `PROPTEST_CASES` says otherwise.
pub const DEFAULT_CASES: u32 = 256;

/// Most operations in one generated sequence.
pub const MAX_OPS: usize = 30;

// ---------------------------------------------------------------------------
// The model.
// ---------------------------------------------------------------------------

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
    /// Model position of the last event ever appended.
    pub last_position: Option<Position>,
}

impl ModelStream {
    fn is_live(&self) -> bool {
        self.version > self.deleted_through
    }

    fn current(&self) -> CurrentVersion {
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
    /// [`Error::IdempotencyConflict`].
    IdempotencyConflict,
    /// [`Error::StreamNotFound`] for this stream.
    StreamNotFound(StreamId),
    /// [`Error::StreamDeleted`] for this stream.
    StreamDeleted(StreamId),
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
            (ModelError::IdempotencyConflict, Error::IdempotencyConflict { .. }) => true,
            (ModelError::StreamNotFound(s), Error::StreamNotFound { stream }) => s == stream,
            (ModelError::StreamDeleted(s), Error::StreamDeleted { stream }) => s == stream,
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
    log: Vec<ModelEvent>,
    streams: BTreeMap<StreamId, ModelStream>,
}

/// Whether `expected` accepts a stream that is at `current`.
fn guard_accepts(expected: ExpectedVersion, current: CurrentVersion) -> bool {
    match expected {
        ExpectedVersion::Any => true,
        ExpectedVersion::NoStream | ExpectedVersion::Exact(0) => {
            current == CurrentVersion::NoStream
        }
        ExpectedVersion::StreamExists => current != CurrentVersion::NoStream,
        ExpectedVersion::Exact(n) => current == CurrentVersion::Current(n),
    }
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
        }
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

    fn events_valid<'a>(&self, events: impl Iterator<Item = &'a NewEvent>) -> bool {
        let l = &self.limits;
        let mut ids = HashSet::new();
        let mut count = 0usize;
        let mut bytes = 0usize;
        for e in events {
            count += 1;
            bytes += e.size_bytes();
            let type_ok = !e.event_type.is_empty()
                && e.event_type.len() <= l.max_event_type_bytes
                && !e.event_type.chars().any(char::is_control);
            let json_ok = e.content_type != ContentType::Json
                || serde_json::from_slice::<serde_json::Value>(&e.data).is_ok();
            let id_ok = e.id.is_none_or(|id| ids.insert(id));
            if !type_ok || !json_ok || !id_ok || e.size_bytes() > l.max_event_bytes {
                return false;
            }
        }
        count > 0 && count <= l.max_events_per_append && bytes <= l.max_append_bytes
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
    fn decide(
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

    fn write(&mut self, stream: &StreamId, events: &[NewEvent]) -> AppendResult {
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
        if !self.events_valid(events.iter()) {
            return Err(ModelError::InvalidInput);
        }
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
        let distinct: HashSet<&StreamId> = parts.iter().map(|p| &p.stream).collect();
        let shape_ok = !parts.is_empty()
            && parts.len() <= self.limits.max_streams_per_multi_append
            && distinct.len() == parts.len()
            && parts.iter().all(|p| !p.events.is_empty());
        if !shape_ok || !self.events_valid(parts.iter().flat_map(|p| p.events.iter())) {
            return Err(vec![ModelError::InvalidInput]);
        }
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
            return Ok(decisions
                .into_iter()
                .map(|d| ModelAppend {
                    result: d.ok().flatten().unwrap(),
                    written: false,
                })
                .collect());
        }
        Ok(parts
            .iter()
            .map(|p| ModelAppend {
                result: self.write(&p.stream, &p.events),
                written: true,
            })
            .collect())
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
        let readable = self
            .log
            .iter()
            .filter(|e| &e.stream == stream && e.version > s.deleted_through);
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
            .filter(|e| e.position >= from && filter_accepts(filter, e))
            .take(max_count)
            .cloned()
            .collect())
    }

    /// `stream_info`, with a model `last_position`.
    pub fn stream_info(&self, stream: &StreamId) -> Option<StreamInfo> {
        self.streams.get(stream).map(|s| StreamInfo {
            stream: stream.clone(),
            version: s.version,
            first_readable_version: if s.tombstoned || !s.is_live() {
                s.version + 1
            } else {
                s.deleted_through + 1
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

// ---------------------------------------------------------------------------
// Generated operations.
// ---------------------------------------------------------------------------

/// The streams the generated operations touch: two categories, plus one whose
/// name shares a prefix with a category but not the category.
const STREAMS: [&str; 4] = ["account-1", "account-2", "accountant-1", "order-1"];
const TYPES: [&str; 3] = ["Opened", "Deposited", "Withdrawn"];
const CORRELATIONS: [Option<&str>; 3] = [None, Some("c1"), Some("c2")];
const PREFIXES: [&str; 5] = ["account", "account-", "order", "acc", "x"];
const CATEGORIES: [&str; 4] = ["account", "accountant", "order", "account-1"];

/// A generated guard, resolved against the model when the op runs.
#[derive(Clone, Debug)]
enum GenExpected {
    Any,
    NoStream,
    StreamExists,
    Exact(u64),
    /// `Exact` of the stream's live version (0 if none) plus this.
    Live(i8),
    /// `Exact` of the stream's last version ever (ignoring deletion) plus this.
    Raw(i8),
}

#[derive(Clone, Debug)]
enum GenId {
    /// No id: the store generates one.
    Generated,
    /// A new supplied id.
    Fresh,
    /// An id seen before (supplied or learned), picked by index.
    Reuse(usize),
}

#[derive(Clone, Debug)]
enum GenPayload {
    Json,
    Binary,
    BadJson,
}

#[derive(Clone, Debug)]
struct GenEvent {
    id: GenId,
    event_type: usize,
    correlation: usize,
    payload: GenPayload,
    n: u8,
}

/// How a retry differs from the original append.
#[derive(Clone, Debug)]
enum Tamper {
    None,
    Reverse,
    DropFirst,
    AddFresh,
    OtherStream(usize),
}

#[derive(Clone, Debug)]
enum GenFrom {
    /// Position `rank % (events + 2)`; 0 is `START`, `events + 1` past the end.
    Rank(usize),
    /// Just after the event of that rank.
    After(usize),
}

#[derive(Clone, Debug)]
struct GenFilter {
    stream: Option<usize>,
    prefix: Option<usize>,
    category: Option<usize>,
    types: Vec<usize>,
    correlation: Option<usize>,
}

/// A generated read count: small, or one over the store's limit.
#[derive(Clone, Debug)]
enum GenCount {
    Small(usize),
    OverLimit,
}

#[derive(Clone, Debug)]
enum Op {
    Append {
        stream: usize,
        expected: GenExpected,
        events: Vec<GenEvent>,
    },
    Retry {
        of: usize,
        expected: GenExpected,
        tamper: Tamper,
    },
    Multi {
        parts: Vec<(usize, GenExpected, Vec<GenEvent>)>,
    },
    RetryMulti {
        of: usize,
        extra: Option<(usize, GenEvent)>,
    },
    Delete {
        stream: usize,
        expected: GenExpected,
    },
    Tombstone {
        stream: usize,
        expected: GenExpected,
    },
    ReadStream {
        stream: usize,
        from: Option<u64>,
        count: GenCount,
        backward: bool,
    },
    ReadAll {
        from: GenFrom,
        count: GenCount,
        filter: GenFilter,
    },
    StreamInfo {
        stream: usize,
    },
    Head,
    Reopen,
}

fn gen_expected() -> impl Strategy<Value = GenExpected> {
    prop_oneof![
        2 => Just(GenExpected::Any),
        2 => Just(GenExpected::NoStream),
        1 => Just(GenExpected::StreamExists),
        1 => (0u64..5).prop_map(GenExpected::Exact),
        4 => prop_oneof![3 => Just(0i8), 1 => -1i8..=1].prop_map(GenExpected::Live),
        1 => (-1i8..=1).prop_map(GenExpected::Raw),
    ]
}

fn gen_event() -> impl Strategy<Value = GenEvent> {
    let id = prop_oneof![
        3 => Just(GenId::Generated),
        5 => Just(GenId::Fresh),
        2 => any::<usize>().prop_map(GenId::Reuse),
    ];
    let payload = prop_oneof![
        30 => Just(GenPayload::Json),
        6 => Just(GenPayload::Binary),
        1 => Just(GenPayload::BadJson),
    ];
    (
        id,
        0..TYPES.len(),
        0..CORRELATIONS.len(),
        payload,
        any::<u8>(),
    )
        .prop_map(|(id, event_type, correlation, payload, n)| GenEvent {
            id,
            event_type,
            correlation,
            payload,
            n,
        })
}

fn gen_events() -> impl Strategy<Value = Vec<GenEvent>> {
    prop_oneof![
        39 => proptest::collection::vec(gen_event(), 1..=3),
        1 => Just(Vec::new()),
    ]
}

fn gen_count() -> impl Strategy<Value = GenCount> {
    prop_oneof![
        2 => Just(GenCount::Small(0)),
        20 => (1usize..10).prop_map(GenCount::Small),
        1 => Just(GenCount::OverLimit),
    ]
}

fn gen_filter() -> impl Strategy<Value = GenFilter> {
    use proptest::option::weighted;
    (
        weighted(0.12, 0..STREAMS.len()),
        weighted(0.12, 0..PREFIXES.len()),
        weighted(0.12, 0..CATEGORIES.len()),
        prop_oneof![
            3 => Just(Vec::new()),
            1 => proptest::collection::vec(0..TYPES.len(), 1..=2),
        ],
        weighted(0.12, 1..CORRELATIONS.len()),
    )
        .prop_map(|(stream, prefix, category, types, correlation)| GenFilter {
            stream,
            prefix,
            category,
            types,
            correlation,
        })
}

/// The streams of a multi-stream append: 1 to 3 distinct ones in random
/// order, or now and then one named twice (which must be refused).
fn gen_multi_streams() -> impl Strategy<Value = Vec<usize>> {
    let distinct =
        proptest::sample::subsequence((0..STREAMS.len()).collect::<Vec<_>>(), 1..=3).prop_shuffle();
    prop_oneof![
        12 => distinct.clone(),
        1 => distinct.prop_map(|mut s| {
            s.push(s[0]);
            s
        }),
    ]
}

fn gen_op() -> impl Strategy<Value = Op> {
    let stream = || 0..STREAM_PICKS;
    let tamper = prop_oneof![
        4 => Just(Tamper::None),
        1 => Just(Tamper::Reverse),
        1 => Just(Tamper::DropFirst),
        1 => Just(Tamper::AddFresh),
        1 => (0..STREAM_PICKS).prop_map(Tamper::OtherStream),
    ];
    let from = prop_oneof![
        3 => any::<usize>().prop_map(GenFrom::Rank),
        1 => any::<usize>().prop_map(GenFrom::After),
    ];
    prop_oneof![
        30 => (stream(), gen_expected(), gen_events())
            .prop_map(|(stream, expected, events)| Op::Append { stream, expected, events }),
        8 => (any::<usize>(), gen_expected(), tamper)
            .prop_map(|(of, expected, tamper)| Op::Retry { of, expected, tamper }),
        8 => (gen_multi_streams(), proptest::collection::vec((gen_expected(), gen_events()), 3))
            .prop_map(|(streams, guards)| Op::Multi {
                parts: streams
                    .into_iter()
                    .zip(guards)
                    .map(|(s, (expected, events))| (s, expected, events))
                    .collect(),
            }),
        3 => (any::<usize>(), proptest::option::weighted(0.3, (stream(), gen_event())))
            .prop_map(|(of, extra)| Op::RetryMulti { of, extra }),
        4 => (stream(), gen_expected())
            .prop_map(|(stream, expected)| Op::Delete { stream, expected }),
        2 => (stream(), gen_expected())
            .prop_map(|(stream, expected)| Op::Tombstone { stream, expected }),
        10 => (
            stream(),
            prop_oneof![4 => (0u64..8).prop_map(Some), 1 => Just(None)],
            gen_count(),
            any::<bool>(),
        )
            .prop_map(|(stream, from, count, backward)| Op::ReadStream {
                stream,
                from,
                count,
                backward,
            }),
        10 => (from, gen_count(), gen_filter())
            .prop_map(|(from, count, filter)| Op::ReadAll { from, count, filter }),
        5 => stream().prop_map(|stream| Op::StreamInfo { stream }),
        2 => Just(Op::Head),
        2 => Just(Op::Reopen),
    ]
}

/// One generated test case: a seed for fresh ids and the operations.
fn gen_case() -> impl Strategy<Value = (u64, Vec<Op>)> {
    (
        any::<u64>(),
        proptest::collection::vec(gen_op(), 1..=MAX_OPS),
    )
}

// ---------------------------------------------------------------------------
// Running a case against a backend and the model.
// ---------------------------------------------------------------------------

/// A generated filter as a [`ReadFilter`].
fn resolve_filter(filter: &GenFilter) -> ReadFilter {
    ReadFilter {
        stream: filter.stream.map(stream_id),
        stream_prefix: filter.prefix.map(|i| PREFIXES[i].to_string()),
        category: filter.category.map(|i| CATEGORIES[i].to_string()),
        event_types: filter.types.iter().map(|&i| TYPES[i].to_string()).collect(),
        correlation_id: filter
            .correlation
            .and_then(|i| CORRELATIONS[i])
            .map(str::to_string),
    }
}

fn stream_id(i: usize) -> StreamId {
    StreamId::new(STREAMS[i]).expect("valid stream name")
}

/// A generated stream pick: below `STREAMS.len()` names a stream directly;
/// above, it prefers a stream that is live at the time the op runs.
const STREAM_PICKS: usize = 2 * STREAMS.len();

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(TestCaseError::fail(format!($($fmt)+)));
        }
    };
}

/// The backend and model side by side, plus what the test learned about the
/// backend's positions.
struct Run<'h, H: StoreHarness> {
    harness: &'h H,
    store: Option<H::Store>,
    model: Model,
    /// `backend_positions[i]` is the backend position of model position `i + 1`.
    backend_positions: Vec<Position>,
    /// `recorded_at` of the last learned event, in microseconds since the epoch.
    last_recorded_at: Option<i64>,
    id_seed: u64,
    next_fresh: u64,
    /// Every id ever sent or learned, for reuse.
    id_pool: Vec<EventId>,
    /// Written single appends and multi parts (with learned ids), for retries.
    appends: Vec<StreamAppend>,
    /// Written multi appends (with learned ids), for retries.
    multis: Vec<Vec<StreamAppend>>,
    step: usize,
}

impl<'h, H: StoreHarness> Run<'h, H> {
    fn store(&self) -> &H::Store {
        self.store.as_ref().expect("store is open")
    }

    /// Resolves a generated stream pick (see [`STREAM_PICKS`]).
    fn pick(&self, i: usize) -> StreamId {
        if i < STREAMS.len() {
            return stream_id(i);
        }
        let live: Vec<usize> = (0..STREAMS.len())
            .filter(|&k| self.model.current(&stream_id(k)) != CurrentVersion::NoStream)
            .collect();
        match live.len() {
            0 => stream_id(i % STREAMS.len()),
            n => stream_id(live[i % n]),
        }
    }

    /// Makes the supplied ids of `events` available for later reuse (only
    /// after an op is resolved, so one append does not reuse its own ids).
    fn remember(&mut self, events: &[NewEvent]) {
        self.id_pool.extend(events.iter().filter_map(|e| e.id));
    }

    fn fresh_id(&mut self) -> EventId {
        self.next_fresh += 1;
        EventId(uuid::Uuid::from_u64_pair(self.id_seed, self.next_fresh))
    }

    fn resolve_expected(&self, stream: &StreamId, g: &GenExpected) -> ExpectedVersion {
        let shifted =
            |base: u64, d: i8| ExpectedVersion::Exact(base.saturating_add_signed(d.into()));
        match g {
            GenExpected::Any => ExpectedVersion::Any,
            GenExpected::NoStream => ExpectedVersion::NoStream,
            GenExpected::StreamExists => ExpectedVersion::StreamExists,
            GenExpected::Exact(n) => ExpectedVersion::Exact(*n),
            GenExpected::Live(d) => match self.model.current(stream) {
                CurrentVersion::Current(v) => shifted(v, *d),
                CurrentVersion::NoStream => shifted(0, *d),
            },
            GenExpected::Raw(d) => shifted(self.model.stream(stream).map_or(0, |s| s.version), *d),
        }
    }

    fn resolve_event(&mut self, g: &GenEvent) -> NewEvent {
        let event_type = TYPES[g.event_type];
        let mut e = match g.payload {
            GenPayload::Json => {
                NewEvent::json_bytes(event_type, format!("{{\"n\":{}}}", g.n).into_bytes())
            }
            GenPayload::Binary => {
                NewEvent::new(event_type, vec![g.n, 0xff, 0x00], ContentType::Binary)
            }
            GenPayload::BadJson => NewEvent::json_bytes(event_type, &b"{\"n\":"[..]),
        };
        if let Some(c) = CORRELATIONS[g.correlation] {
            e.metadata = Metadata::default().with_correlation_id(c);
        }
        e.id = match g.id {
            GenId::Generated => None,
            GenId::Fresh => Some(self.fresh_id()),
            GenId::Reuse(i) if !self.id_pool.is_empty() => {
                Some(self.id_pool[i % self.id_pool.len()])
            }
            GenId::Reuse(_) => Some(self.fresh_id()),
        };
        e
    }

    fn resolve_count(&self, g: &GenCount) -> usize {
        match g {
            GenCount::Small(n) => *n,
            GenCount::OverLimit => self.model.limits.max_read_count.saturating_add(1),
        }
    }

    /// Backend position to model position, by rank.
    fn to_model(&self, p: Position) -> Result<Position, TestCaseError> {
        match self.backend_positions.binary_search(&p) {
            Ok(i) => Ok(Position(i as u64 + 1)),
            Err(_) => Err(TestCaseError::fail(format!(
                "the backend returned position {p}, which no event the test wrote has"
            ))),
        }
    }

    fn check_event(&self, got: &RecordedEvent, want: &ModelEvent) -> Result<(), TestCaseError> {
        let at = format!("event {}@{}", want.stream, want.version);
        ensure!(
            got.stream_id == want.stream && got.version == want.version,
            "{at}: backend returned {}@{} instead",
            got.stream_id,
            got.version
        );
        ensure!(
            self.to_model(got.position)? == want.position,
            "{at}: backend position {} ranks as {}, model says {}",
            got.position,
            self.to_model(got.position)?,
            want.position
        );
        if let Some(id) = want.id {
            ensure!(got.id == id, "{at}: id {} instead of {id}", got.id);
        }
        ensure!(got.event_type == want.event_type, "{at}: type differs");
        ensure!(got.data == want.data, "{at}: data differs");
        ensure!(
            got.content_type == want.content_type,
            "{at}: content type differs"
        );
        ensure!(got.metadata == want.metadata, "{at}: metadata differs");
        Ok(())
    }

    fn check_events(
        &self,
        what: &str,
        got: &[RecordedEvent],
        want: &[ModelEvent],
    ) -> Result<(), TestCaseError> {
        let show = |v: Vec<(String, u64)>| format!("{v:?}");
        ensure!(
            got.len() == want.len(),
            "{what}: backend returned {} events {}, model {} events {}",
            got.len(),
            show(
                got.iter()
                    .map(|e| (e.stream_id.to_string(), e.version))
                    .collect()
            ),
            want.len(),
            show(
                want.iter()
                    .map(|e| (e.stream.to_string(), e.version))
                    .collect()
            )
        );
        for (g, w) in got.iter().zip(want) {
            self.check_event(g, w)
                .map_err(|e| TestCaseError::fail(format!("{what}: {e}")))?;
        }
        Ok(())
    }

    fn check_error<T: Debug>(
        &self,
        what: &str,
        got: &Result<T, Error>,
        allowed: &[ModelError],
    ) -> Result<(), TestCaseError> {
        match got {
            Err(e) if allowed.iter().any(|m| m.matches(e)) => Ok(()),
            other => Err(TestCaseError::fail(format!(
                "{what}: the model expects one of {allowed:?}, the backend returned {other:?}"
            ))),
        }
    }

    /// After the model wrote `count` events starting at model position
    /// `model_first`, reads them back from the backend starting at
    /// `backend_first`, checks them, and learns their positions and ids.
    async fn learn_written(
        &mut self,
        what: &str,
        backend_first: Position,
        model_first: Position,
        count: usize,
    ) -> Result<(), TestCaseError> {
        ensure!(
            self.backend_positions.len() as u64 + 1 == model_first.0,
            "{what}: test bookkeeping out of step"
        );
        if let Some(last) = self.backend_positions.last() {
            ensure!(
                backend_first > *last,
                "{what}: first position {backend_first} is not after the previous last {last}"
            );
        }
        let read = self
            .store()
            .read_all(backend_first, count, &ReadFilter::all())
            .await
            .map_err(|e| TestCaseError::fail(format!("{what}: read back failed: {e}")))?;
        ensure!(
            read.len() == count,
            "{what}: read back {} events from {backend_first}, expected {count}",
            read.len()
        );
        for (i, e) in read.iter().enumerate() {
            if let Some(last) = self.backend_positions.last() {
                ensure!(e.position > *last, "{what}: positions not increasing");
            }
            let micros = e.recorded_at.timestamp_micros();
            if let Some(prev) = self.last_recorded_at {
                ensure!(micros >= prev, "{what}: recorded_at went back along $all");
            }
            self.last_recorded_at = Some(micros);
            self.backend_positions.push(e.position);
            let model_pos = Position(model_first.0 + i as u64);
            if self.model.events()[(model_pos.0 - 1) as usize].id.is_none() {
                ensure!(
                    e.id.as_uuid().get_version_num() == 7,
                    "{what}: generated id {} is not a UUID v7",
                    e.id
                );
                self.model
                    .learn_generated_id(model_pos, e.id)
                    .map_err(|m| TestCaseError::fail(format!("{what}: {m}")))?;
                self.id_pool.push(e.id);
            }
            let want = self.model.events()[(model_pos.0 - 1) as usize].clone();
            self.check_event(e, &want)
                .map_err(|m| TestCaseError::fail(format!("{what}: {m}")))?;
        }
        Ok(())
    }

    /// Checks a backend append result against the model's; learns written events.
    async fn check_append(
        &mut self,
        what: &str,
        got: &AppendResult,
        want: &ModelAppend,
        count: usize,
    ) -> Result<(), TestCaseError> {
        ensure!(
            got.next_expected_version == want.result.next_expected_version,
            "{what}: next_expected_version {} , model {}",
            got.next_expected_version,
            want.result.next_expected_version
        );
        if want.written {
            self.learn_written(what, got.first_position, want.result.first_position, count)
                .await?;
        }
        ensure!(
            self.to_model(got.first_position)? == want.result.first_position
                && self.to_model(got.last_position)? == want.result.last_position,
            "{what}: positions {}..{} rank as {}..{}, model says {}..{}",
            got.first_position,
            got.last_position,
            self.to_model(got.first_position)?,
            self.to_model(got.last_position)?,
            want.result.first_position,
            want.result.last_position
        );
        Ok(())
    }

    /// The events as they were recorded (ids filled in), for later retries.
    fn as_recorded(
        &self,
        stream: &StreamId,
        result: &AppendResult,
        expected: ExpectedVersion,
    ) -> StreamAppend {
        let events = (result.first_position.0..=result.last_position.0)
            .map(|p| {
                let e = &self.model.events()[(p - 1) as usize];
                NewEvent {
                    id: e.id,
                    event_type: e.event_type.clone(),
                    data: e.data.clone(),
                    content_type: e.content_type,
                    metadata: e.metadata.clone(),
                }
            })
            .collect();
        StreamAppend::new(stream.clone(), expected, events)
    }

    async fn append(
        &mut self,
        what: &str,
        stream: StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<(), TestCaseError> {
        let want = self.model.append(&stream, expected, &events);
        let got = self.store().append(&stream, expected, events.clone()).await;
        match (&got, &want) {
            (Ok(g), Ok(w)) => {
                self.check_append(what, g, w, events.len()).await?;
                if w.written {
                    let recorded = self.as_recorded(&stream, &w.result, expected);
                    self.appends.push(recorded);
                }
                Ok(())
            }
            (_, Err(m)) => self.check_error(what, &got, std::slice::from_ref(m)),
            (Err(e), Ok(w)) => Err(TestCaseError::fail(format!(
                "{what}: the backend failed with {e:?}, the model succeeded with {w:?}"
            ))),
        }
    }

    async fn append_multi(
        &mut self,
        what: &str,
        parts: Vec<StreamAppend>,
    ) -> Result<(), TestCaseError> {
        let want = self.model.append_multi(&parts);
        let got = self.store().append_multi(parts.clone()).await;
        match (&got, &want) {
            (Ok(g), Ok(w)) => {
                ensure!(
                    g.len() == w.len(),
                    "{what}: {} results, model {}",
                    g.len(),
                    w.len()
                );
                let written = w.iter().all(|r| r.written);
                if written {
                    // Parts get consecutive positions in part order: learn them all.
                    let total: usize = parts.iter().map(|p| p.events.len()).sum();
                    self.learn_written(
                        what,
                        g[0].first_position,
                        w[0].result.first_position,
                        total,
                    )
                    .await?;
                }
                for (i, ((g, w), p)) in g.iter().zip(w).zip(&parts).enumerate() {
                    let what = format!("{what} part {i}");
                    let w = ModelAppend {
                        written: false,
                        ..*w
                    };
                    self.check_append(&what, g, &w, p.events.len()).await?;
                }
                if written {
                    let recorded: Vec<StreamAppend> = w
                        .iter()
                        .zip(&parts)
                        .map(|(w, p)| self.as_recorded(&p.stream, &w.result, p.expected))
                        .collect();
                    self.appends.extend(recorded.iter().cloned());
                    self.multis.push(recorded);
                }
                Ok(())
            }
            (_, Err(allowed)) => self.check_error(what, &got, allowed),
            (Err(e), Ok(w)) => Err(TestCaseError::fail(format!(
                "{what}: the backend failed with {e:?}, the model succeeded with {w:?}"
            ))),
        }
    }

    fn check_unit(
        &self,
        what: &str,
        got: Result<(), Error>,
        want: Result<(), ModelError>,
    ) -> Result<(), TestCaseError> {
        match (&got, &want) {
            (Ok(()), Ok(())) => Ok(()),
            (_, Err(m)) => self.check_error(what, &got, std::slice::from_ref(m)),
            (Err(e), Ok(())) => Err(TestCaseError::fail(format!(
                "{what}: the backend failed with {e:?}, the model succeeded"
            ))),
        }
    }

    fn check_info(
        &self,
        what: &str,
        got: Option<StreamInfo>,
        want: Option<StreamInfo>,
    ) -> Result<(), TestCaseError> {
        let got = match got {
            None => None,
            Some(mut info) => {
                if let Some(p) = info.last_position {
                    info.last_position = Some(self.to_model(p)?);
                }
                Some(info)
            }
        };
        ensure!(
            got == want,
            "{what}: backend {got:?} (positions ranked), model {want:?}"
        );
        Ok(())
    }

    async fn run_op(&mut self, op: &Op) -> Result<(), TestCaseError> {
        self.step += 1;
        let what = format!("step {} ({op:?})", self.step);
        match op {
            Op::Append {
                stream,
                expected,
                events,
            } => self.op_append(&what, *stream, expected, events).await,
            Op::Retry {
                of,
                expected,
                tamper,
            } => self.op_retry(&what, *of, expected, tamper).await,
            Op::Multi { parts } => self.op_multi(&what, parts).await,
            Op::RetryMulti { of, extra } => self.op_retry_multi(&what, *of, extra).await,
            Op::Delete { stream, expected } => self.op_delete(&what, *stream, expected).await,
            Op::Tombstone { stream, expected } => self.op_tombstone(&what, *stream, expected).await,
            Op::ReadStream {
                stream,
                from,
                count,
                backward,
            } => {
                self.op_read_stream(&what, *stream, *from, count, *backward)
                    .await
            }
            Op::ReadAll {
                from,
                count,
                filter,
            } => self.op_read_all(&what, from, count, filter).await,
            Op::StreamInfo { stream } => self.op_stream_info(&what, *stream).await,
            Op::Head => self.check_head(&what).await,
            Op::Reopen => {
                let store = self.store.take().expect("store is open");
                self.store = Some(self.harness.reopen(store).await);
                Ok(())
            }
        }
    }

    async fn op_append(
        &mut self,
        what: &str,
        stream: usize,
        expected: &GenExpected,
        events: &[GenEvent],
    ) -> Result<(), TestCaseError> {
        let stream = self.pick(stream);
        let expected = self.resolve_expected(&stream, expected);
        let events: Vec<NewEvent> = events.iter().map(|g| self.resolve_event(g)).collect();
        self.remember(&events);
        let what = format!("{what}: append {expected:?} to {stream}");
        self.append(&what, stream, expected, events).await
    }

    /// Appends again what an earlier append sent, possibly altered.
    async fn op_retry(
        &mut self,
        what: &str,
        of: usize,
        expected: &GenExpected,
        tamper: &Tamper,
    ) -> Result<(), TestCaseError> {
        if self.appends.is_empty() {
            return Ok(());
        }
        let original = self.appends[of % self.appends.len()].clone();
        let mut stream = original.stream.clone();
        let mut events = original.events;
        match tamper {
            Tamper::None => {}
            Tamper::Reverse => events.reverse(),
            Tamper::DropFirst => {
                events.remove(0);
            }
            Tamper::AddFresh => {
                let id = self.fresh_id();
                events.push(NewEvent::json_bytes("Deposited", &b"{}"[..]).with_id(id));
                self.remember(&events);
            }
            Tamper::OtherStream(i) => stream = self.pick(*i),
        }
        let expected = self.resolve_expected(&stream, expected);
        let what = format!("{what}: retry {expected:?} to {stream}");
        self.append(&what, stream, expected, events).await
    }

    async fn op_multi(
        &mut self,
        what: &str,
        parts: &[(usize, GenExpected, Vec<GenEvent>)],
    ) -> Result<(), TestCaseError> {
        let mut resolved = Vec::new();
        for (stream, expected, events) in parts {
            let stream = stream_id(*stream);
            let expected = self.resolve_expected(&stream, expected);
            let events = events.iter().map(|g| self.resolve_event(g)).collect();
            resolved.push(StreamAppend::new(stream, expected, events));
        }
        for part in &resolved {
            self.remember(&part.events);
        }
        self.append_multi(&format!("{what}: append_multi"), resolved)
            .await
    }

    /// Sends an earlier multi-stream append again, possibly with one more part.
    async fn op_retry_multi(
        &mut self,
        what: &str,
        of: usize,
        extra: &Option<(usize, GenEvent)>,
    ) -> Result<(), TestCaseError> {
        if self.multis.is_empty() {
            return Ok(());
        }
        let mut parts = self.multis[of % self.multis.len()].clone();
        if let Some((stream, g)) = extra {
            let e = self.resolve_event(g);
            self.remember(std::slice::from_ref(&e));
            parts.push(StreamAppend::new(
                self.pick(*stream),
                ExpectedVersion::Any,
                vec![e],
            ));
        }
        self.append_multi(&format!("{what}: retry append_multi"), parts)
            .await
    }

    async fn op_delete(
        &mut self,
        what: &str,
        stream: usize,
        expected: &GenExpected,
    ) -> Result<(), TestCaseError> {
        let stream = self.pick(stream);
        let expected = self.resolve_expected(&stream, expected);
        let want = self.model.delete_stream(&stream, expected);
        let got = self.store().delete_stream(&stream, expected).await;
        self.check_unit(&format!("{what}: delete {expected:?} {stream}"), got, want)
    }

    async fn op_tombstone(
        &mut self,
        what: &str,
        stream: usize,
        expected: &GenExpected,
    ) -> Result<(), TestCaseError> {
        let stream = self.pick(stream);
        let expected = self.resolve_expected(&stream, expected);
        let want = self.model.tombstone_stream(&stream, expected);
        let got = self.store().tombstone_stream(&stream, expected).await;
        self.check_unit(
            &format!("{what}: tombstone {expected:?} {stream}"),
            got,
            want,
        )
    }

    async fn op_read_stream(
        &mut self,
        what: &str,
        stream: usize,
        from: Option<u64>,
        count: &GenCount,
        backward: bool,
    ) -> Result<(), TestCaseError> {
        let stream = self.pick(stream);
        let from = from.unwrap_or(FROM_END);
        let count = self.resolve_count(count);
        let direction = if backward {
            Direction::Backward
        } else {
            Direction::Forward
        };
        let want = self.model.read_stream(&stream, from, count, direction);
        let got = self
            .store()
            .read_stream(&stream, from, count, direction)
            .await;
        let what = format!("{what}: read {stream} {direction:?} from {from} x{count}");
        match (&got, &want) {
            (Ok(g), Ok(w)) => self.check_events(&what, g, w),
            (_, Err(m)) => self.check_error(&what, &got, std::slice::from_ref(m)),
            (Err(e), Ok(_)) => Err(TestCaseError::fail(format!(
                "{what}: backend failed: {e:?}"
            ))),
        }
    }

    /// Where a generated `read_all` starts: in the backend's positions and
    /// in the model's (which are dense, 1, 2, 3, …).
    fn resolve_from(&self, from: &GenFrom) -> (Position, Position) {
        let n = self.backend_positions.len();
        match *from {
            GenFrom::Rank(r) => match r % (n + 2) {
                0 => (Position::START, Position::START),
                k if k <= n => (self.backend_positions[k - 1], Position(k as u64)),
                _ => (
                    self.backend_positions
                        .last()
                        .map_or(Position(1), |p| p.next()),
                    Position(n as u64 + 1),
                ),
            },
            GenFrom::After(r) if n > 0 => {
                let k = r % n;
                (self.backend_positions[k].next(), Position(k as u64 + 2))
            }
            GenFrom::After(_) => (Position(1), Position(1)),
        }
    }

    async fn op_read_all(
        &mut self,
        what: &str,
        from: &GenFrom,
        count: &GenCount,
        filter: &GenFilter,
    ) -> Result<(), TestCaseError> {
        let (backend_from, model_from) = self.resolve_from(from);
        let filter = resolve_filter(filter);
        let count = self.resolve_count(count);
        let want = self.model.read_all(model_from, count, &filter);
        let got = self.store().read_all(backend_from, count, &filter).await;
        let what = format!("{what}: read_all from {backend_from} (model {model_from}) x{count}");
        match (&got, &want) {
            (Ok(g), Ok(w)) => {
                for pair in g.windows(2) {
                    ensure!(
                        pair[0].recorded_at <= pair[1].recorded_at,
                        "{what}: recorded_at goes back"
                    );
                }
                self.check_events(&what, g, w)
            }
            (_, Err(m)) => self.check_error(&what, &got, std::slice::from_ref(m)),
            (Err(e), Ok(_)) => Err(TestCaseError::fail(format!(
                "{what}: backend failed: {e:?}"
            ))),
        }
    }

    async fn op_stream_info(&mut self, what: &str, stream: usize) -> Result<(), TestCaseError> {
        let stream = self.pick(stream);
        let got = self
            .store()
            .stream_info(&stream)
            .await
            .map_err(|e| TestCaseError::fail(format!("{what}: stream_info failed: {e}")))?;
        self.check_info(
            &format!("{what}: stream_info {stream}"),
            got,
            self.model.stream_info(&stream),
        )
    }

    async fn check_head(&self, what: &str) -> Result<(), TestCaseError> {
        let got = self
            .store()
            .head_position()
            .await
            .map_err(|e| TestCaseError::fail(format!("{what}: head_position failed: {e}")))?;
        let want = match self.backend_positions.last() {
            Some(p) => *p,
            None => Position::START,
        };
        ensure!(got == want, "{what}: head_position {got}, expected {want}");
        Ok(())
    }

    /// The final comparison: all of `$all`, every stream's info, the head.
    async fn check_everything(&mut self) -> Result<(), TestCaseError> {
        let store = self.store.take().expect("store is open");
        self.store = Some(self.harness.reopen(store).await);
        let limit = self.model.limits.max_read_count.max(1);
        let mut got = Vec::new();
        let mut from = Position::START;
        loop {
            let page = self
                .store()
                .read_all(from, limit.min(1000), &ReadFilter::all())
                .await
                .map_err(|e| TestCaseError::fail(format!("final read_all failed: {e}")))?;
            let short = page.len() < limit.min(1000);
            if let Some(last) = page.last() {
                from = last.position.next();
            }
            got.extend(page);
            if short {
                break;
            }
        }
        let want = self.model.events().to_vec();
        self.check_events("final $all", &got, &want)?;
        for i in 0..STREAMS.len() {
            let s = stream_id(i);
            let info = self
                .store()
                .stream_info(&s)
                .await
                .map_err(|e| TestCaseError::fail(format!("final stream_info failed: {e}")))?;
            self.check_info(
                &format!("final stream_info {s}"),
                info,
                self.model.stream_info(&s),
            )?;
        }
        self.check_head("final head").await
    }
}

async fn run_case<H: StoreHarness>(
    harness: &H,
    id_seed: u64,
    ops: &[Op],
) -> Result<(), TestCaseError> {
    let store = harness.open().await;
    let model = Model::new(store.limits().clone());
    let mut run = Run {
        harness,
        store: Some(store),
        model,
        backend_positions: Vec::new(),
        last_recorded_at: None,
        id_seed,
        next_fresh: 0,
        id_pool: Vec::new(),
        appends: Vec::new(),
        multis: Vec::new(),
        step: 0,
    };
    for op in ops {
        run.run_op(op).await?;
    }
    run.check_everything().await
}

/// The number of cases: `PROPTEST_CASES` if set and valid, else [`DEFAULT_CASES`].
pub fn cases_from_env() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(DEFAULT_CASES)
}

/// Runs the model-based property test with [`cases_from_env`] cases against
/// the harness `make_harness` builds (inside the test's tokio runtime).
pub fn run_model_based_test<H, F>(make_harness: F)
where
    H: StoreHarness,
    F: FnOnce() -> H,
{
    run_model_based_test_with_cases(cases_from_env(), make_harness);
}

/// Runs the model-based property test with `cases` cases. Each case opens a
/// fresh store, runs up to [`MAX_OPS`] random operations against it and the
/// [`Model`], and fails on the first disagreement, printing the shrunk input.
pub fn run_model_based_test_with_cases<H, F>(cases: u32, make_harness: F)
where
    H: StoreHarness,
    F: FnOnce() -> H,
{
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("build a tokio runtime for the property test");
    let harness = {
        let _entered = rt.enter();
        make_harness()
    };
    let config = ProptestConfig {
        cases,
        // The cases live in this library, not in the caller's source tree:
        // the failing input is printed instead of persisted.
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    let mut runner = TestRunner::new(config);
    let result = runner.run(&gen_case(), |(id_seed, ops)| {
        rt.block_on(run_case(&harness, id_seed, &ops))
    });
    match result {
        Ok(()) => {}
        Err(TestError::Fail(reason, (seed, ops))) => panic!(
            "model-based test failed: {reason}\nminimal failing input (id seed {seed}):\n{ops:#?}"
        ),
        Err(TestError::Abort(reason)) => panic!("model-based test aborted: {reason}"),
    }
}

/// Expands into a `#[test] fn model_based_property_test()` that runs
/// [`run_model_based_test`](crate::model::run_model_based_test) against the
/// harness `$harness` builds (256 cases unless `PROPTEST_CASES` is set).
///
/// ```
/// strata_testkit::model_based_property_test!(strata_testkit::conformance::MemoryHarness);
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! model_based_property_test {
    ($harness:expr $(,)?) => {
        #[test]
        fn model_based_property_test() {
            $crate::model::run_model_based_test(|| $harness);
        }
    };
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
