//! The conformance suite: the executable definition of the [`EventStore`]
//! contract.
//!
//! A backend plugs in through a [`StoreHarness`] and runs every case with
//! [`conformance_suite!`](crate::conformance_suite), which expands into one
//! `#[test]` per case (each on its own multi-threaded tokio runtime), so every
//! case is reported by name and cases run in parallel:
//!
//! ```
//! // tests/memory_conformance.rs
//! use strata_testkit::conformance::MemoryHarness;
//! strata_testkit::conformance_suite!(MemoryHarness);
//! strata_testkit::model_based_property_test!(MemoryHarness);
//! # fn main() {}
//! ```
//!
//! Each case is an `async fn(&H)` that opens a fresh store, exercises one part
//! of the contract and asserts what must hold. Cases call
//! [`StoreHarness::reopen`] at natural points (after appends, before checking
//! reads), so a durable backend proves the behaviour survives a restart.
//!
//! Cases never assume positions are contiguous: positions are only promised
//! to be strictly increasing in commit order.

// These functions are test assertions: a panic (from `unwrap`, `expect` or
// `assert!`) is how a case reports that the store broke the contract.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashSet};
use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use serde_json::json;
use strata_core::{
    AppendResult, Bytes, ContentType, CurrentVersion, Direction, Error, EventId, EventStore,
    ExpectedVersion, MemoryStore, Metadata, NewEvent, Position, ReadFilter, RecordedEvent, Result,
    StreamAppend, StreamId, StreamInfo, StreamState, SubscribeFrom, Subscription,
    SubscriptionMessage, FROM_END,
};
use tokio::sync::Barrier;
use tokio::time::timeout;

use ExpectedVersion::{Any, Exact, NoStream, StreamExists};

pub use crate::erasure::*;
pub use crate::retention::*;
pub use crate::stream_list::*;

/// How a backend plugs into the suite.
///
/// ```
/// use strata_core::{async_trait, MemoryStore};
/// use strata_testkit::conformance::StoreHarness;
///
/// struct Memory;
///
/// #[async_trait]
/// impl StoreHarness for Memory {
///     type Store = MemoryStore;
///     async fn open(&self) -> MemoryStore {
///         MemoryStore::new()
///     }
///     async fn reopen(&self, store: MemoryStore) -> MemoryStore {
///         store
///     }
/// }
/// ```
#[async_trait]
pub trait StoreHarness: Send + Sync + 'static {
    /// The store under test.
    type Store: EventStore;

    /// A fresh, empty store.
    async fn open(&self) -> Self::Store;

    /// Close `store` and open the same data again (durable backends); a memory
    /// store returns it unchanged.
    async fn reopen(&self, store: Self::Store) -> Self::Store;
}

/// The harness for [`MemoryStore`]: `open` makes an empty store with default
/// limits, `reopen` hands the same store back.
#[derive(Clone, Copy, Debug, Default)]
pub struct MemoryHarness;

#[async_trait]
impl StoreHarness for MemoryHarness {
    type Store = MemoryStore;

    async fn open(&self) -> MemoryStore {
        MemoryStore::new()
    }

    async fn reopen(&self, store: MemoryStore) -> MemoryStore {
        store
    }
}

/// The longest a whole case may take before it counts as hung.
pub const CASE_TIMEOUT: Duration = Duration::from_secs(60);

/// The longest a single subscription step (one `next()`) may take.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(10);

/// More events than any case expects from one subscription.
const MAX_RECEIVED_EVENTS: usize = 100_000;

/// How long a subscription must stay silent to count as having nothing more.
pub const QUIET_PERIOD: Duration = Duration::from_millis(100);

/// Expands into one test per conformance case, run against the harness that
/// `$harness` (an expression, evaluated once per case inside the case's
/// runtime) builds.
///
/// Each test runs on a multi-threaded tokio runtime with 4 workers (the same
/// as `#[tokio::test(flavor = "multi_thread", worker_threads = 4)]`, without
/// requiring the calling crate to depend on tokio) and fails if it takes longer
/// than [`CASE_TIMEOUT`](crate::conformance::CASE_TIMEOUT).
///
/// Invoke it once per module; to run the suite in several configurations, put
/// each invocation in its own module.
///
/// ```
/// mod memory {
///     strata_testkit::conformance_suite!(strata_testkit::conformance::MemoryHarness);
/// }
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! conformance_suite {
    ($harness:expr $(,)?) => {
        $crate::__conformance_cases! {
            $harness;
            append_any_creates_and_extends,
            append_no_stream_creates_stream,
            append_no_stream_on_existing_stream_fails,
            append_stream_exists_on_new_stream_fails,
            append_stream_exists_on_existing_stream,
            append_exact_matches_current_version,
            append_exact_mismatch_reports_actual_version,
            append_exact_zero_equals_no_stream,
            expected_versions_on_soft_deleted_stream,
            appends_to_tombstoned_stream_fail,
            append_result_reports_versions_and_positions,
            multi_event_append_is_atomic,
            append_multi_writes_parts_with_consecutive_positions,
            append_multi_guard_failure_writes_nothing,
            append_multi_refuses_same_stream_twice,
            append_multi_refuses_empty_input,
            append_multi_with_tombstoned_part_writes_nothing,
            idempotent_retry_returns_original_result,
            idempotent_retry_after_later_appends_and_reopen,
            idempotent_retry_of_multi_append,
            partial_overlap_is_idempotency_conflict,
            recorded_ids_in_other_stream_conflict,
            reordered_ids_conflict,
            append_multi_mixing_retry_and_new_parts_conflicts,
            duplicate_ids_in_one_append_refused,
            retry_to_tombstoned_stream_fails,
            read_stream_forward_ranges,
            read_stream_backward_ranges,
            read_missing_stream_not_found,
            read_tombstoned_stream_fails,
            soft_deleted_stream_is_not_found_then_recreated,
            read_all_in_position_order,
            read_all_from_is_inclusive_and_max_count_limits,
            read_all_on_empty_store,
            read_all_filter_by_stream,
            read_all_filter_by_stream_prefix,
            read_all_filter_by_category,
            read_all_filter_by_event_types,
            read_all_filter_by_correlation_id,
            read_all_filters_combine,
            a_nul_in_a_filter_is_invalid_input,
            read_all_keeps_events_of_deleted_streams,
            read_all_backward_from_the_end_is_read_all_reversed,
            read_all_backward_bound_is_exclusive_and_pages,
            read_all_backward_through_filters,
            read_all_backward_keeps_events_of_deleted_streams,
            head_position_tracks_last_event,
            health_answers_without_io,
            subscribe_from_start_catches_up_then_goes_live,
            subscribe_after_position,
            subscribe_from_end_sees_only_new_events,
            subscribe_on_empty_store,
            subscription_catches_up_across_many_pages,
            subscription_handoff_under_concurrent_writers,
            filtered_subscription_sees_exactly_matching_events,
            concurrent_appends_with_same_expected_version_one_wins,
            concurrent_appends_with_any_are_atomic_and_contiguous,
            concurrent_appends_to_many_streams,
            appends_are_atomic_to_concurrent_readers,
            stream_names_are_validated,
            empty_append_refused,
            bad_event_types_refused,
            invalid_json_refused_binary_accepted,
            oversized_event_refused,
            too_many_events_refused,
            read_count_over_limit_refused,
            recorded_at_never_decreases,
            stream_info_of_missing_and_live_streams,
            stream_info_of_deleted_and_recreated_streams,
            stream_info_of_tombstoned_streams,
            delete_stream_guards,
            delete_missing_or_deleted_stream_not_found,
            tombstone_never_written_stream,
            tombstone_guards,
            metadata_and_content_type_round_trip,
            generated_ids_are_unique_uuid_v7,
            supplied_ids_are_kept,
            events_survive_reopen,
            metadata_is_versioned_and_round_trips,
            max_count_keeps_the_newest_events,
            truncate_before_hides_older_versions,
            max_age_hides_old_events,
            retention_applies_to_subscriptions,
            metadata_survives_reopen,
            erase_hides_the_stream_from_every_read,
            erase_hides_the_stream_from_live_subscriptions,
            erase_is_guarded_by_expected_version,
            erased_name_is_never_written_again,
            erase_of_deleted_and_tombstoned_streams,
            erase_of_never_written_stream_reserves_the_name,
            erase_keeps_other_events_in_place,
            erase_removes_the_stream_metadata,
            erasure_survives_reopen,
            list_streams_in_byte_order,
            list_streams_pages_through_after_and_next,
            list_streams_by_prefix_and_category,
            list_streams_shows_every_state,
            list_streams_hides_system_streams_unless_asked,
            list_streams_caps_the_page_and_checks_the_query,
        }
    };
}

/// Implementation detail of [`conformance_suite!`]: one test per listed case.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_cases {
    ($harness:expr; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                $crate::conformance::__private::run_case(stringify!($case), async {
                    let harness = $harness;
                    $crate::conformance::$case(&harness).await;
                });
            }
        )*
    };
}

/// Support for the macros; not part of the public API.
#[doc(hidden)]
pub mod __private {
    use std::future::Future;
    use std::time::Duration;

    /// Runs one case on a fresh 4-worker runtime, failing it after
    /// [`super::CASE_TIMEOUT`].
    pub fn run_case(name: &str, case: impl Future<Output = ()>) {
        run_case_within(name, super::CASE_TIMEOUT, case);
    }

    /// [`run_case`] with its own time limit.
    pub fn run_case_within(name: &str, limit: Duration, case: impl Future<Output = ()>) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .enable_all()
            .build()
            .expect("build a tokio runtime for a conformance case");
        rt.block_on(async {
            if tokio::time::timeout(limit, case).await.is_err() {
                panic!("conformance case `{name}` did not finish within {limit:?}");
            }
        });
    }
}

// ---------------------------------------------------------------------------
// Helpers (test code: they panic with a message when something is off).
// ---------------------------------------------------------------------------

pub(crate) fn sid(name: &str) -> StreamId {
    StreamId::new(name).expect("valid stream name")
}

fn ev(event_type: &str, n: u64) -> NewEvent {
    NewEvent::json(event_type, &json!({ "n": n })).expect("serializable payload")
}

pub(crate) fn evs(event_type: &str, count: u64) -> Vec<NewEvent> {
    (1..=count).map(|n| ev(event_type, n)).collect()
}

/// `count` events with fresh supplied ids.
fn with_ids(event_type: &str, count: u64) -> Vec<NewEvent> {
    evs(event_type, count)
        .into_iter()
        .map(|e| e.with_id(EventId::new()))
        .collect()
}

fn ids_of(events: &[NewEvent]) -> Vec<EventId> {
    events.iter().map(|e| e.id.expect("supplied id")).collect()
}

fn versions(events: &[RecordedEvent]) -> Vec<u64> {
    events.iter().map(|e| e.version).collect()
}

fn positions(events: &[RecordedEvent]) -> Vec<Position> {
    events.iter().map(|e| e.position).collect()
}

fn keys(events: &[RecordedEvent]) -> Vec<(String, u64)> {
    events
        .iter()
        .map(|e| (e.stream_id.to_string(), e.version))
        .collect()
}

#[track_caller]
fn assert_strictly_increasing(events: &[RecordedEvent]) {
    for w in events.windows(2) {
        assert!(
            w[0].position < w[1].position,
            "positions must strictly increase: {} then {}",
            w[0].position,
            w[1].position
        );
    }
}

/// A page size every store accepts.
fn page<S: EventStore>(store: &S) -> usize {
    store.limits().max_read_count.clamp(1, 1000)
}

pub(crate) async fn append_ok<S: EventStore>(
    store: &S,
    stream: &StreamId,
    expected: ExpectedVersion,
    events: Vec<NewEvent>,
) -> AppendResult {
    match store.append(stream, expected, events).await {
        Ok(r) => r,
        Err(e) => panic!("append to `{stream}` with {expected:?} failed: {e} ({e:?})"),
    }
}

/// Every readable event of `stream`, forward, paging through.
pub(crate) async fn read_fwd<S: EventStore>(store: &S, stream: &StreamId) -> Vec<RecordedEvent> {
    let page = page(store);
    let mut out: Vec<RecordedEvent> = Vec::new();
    let mut from = 1;
    loop {
        let batch = store
            .read_stream(stream, from, page, Direction::Forward)
            .await
            .unwrap_or_else(|e| panic!("read_stream `{stream}` from {from} failed: {e}"));
        let short = batch.len() < page;
        if let Some(last) = batch.last() {
            from = last.version + 1;
        }
        out.extend(batch);
        if short {
            return out;
        }
    }
}

/// Every event of `$all` that passes `filter`, paging through.
pub(crate) async fn read_all_filtered<S: EventStore>(
    store: &S,
    filter: &ReadFilter,
) -> Vec<RecordedEvent> {
    let page = page(store);
    let mut out: Vec<RecordedEvent> = Vec::new();
    let mut from = Position::START;
    loop {
        let batch = store
            .read_all(from, page, filter)
            .await
            .unwrap_or_else(|e| panic!("read_all from {from} failed: {e}"));
        let short = batch.len() < page;
        if let Some(last) = batch.last() {
            from = last.position.next();
        }
        out.extend(batch);
        if short {
            return out;
        }
    }
}

/// Every event of `$all` that passes `filter`, newest first: backward
/// pages of `page_size` from [`Position::END`], each next page before the
/// last position of the one before, until an empty page.
pub(crate) async fn read_all_backward_paged<S: EventStore>(
    store: &S,
    filter: &ReadFilter,
    page_size: usize,
) -> Vec<RecordedEvent> {
    let mut out: Vec<RecordedEvent> = Vec::new();
    let mut before = Position::END;
    loop {
        let batch = store
            .read_all_backward(before, page_size, filter)
            .await
            .unwrap_or_else(|e| panic!("read_all_backward before {before} failed: {e}"));
        assert!(
            batch.len() <= page_size,
            "a backward page of {} events where at most {page_size} were asked for",
            batch.len()
        );
        let Some(last) = batch.last() else {
            return out;
        };
        before = last.position;
        out.extend(batch);
    }
}

/// [`read_all_backward_paged`] with pages every store accepts.
pub(crate) async fn read_all_backward_filtered<S: EventStore>(
    store: &S,
    filter: &ReadFilter,
) -> Vec<RecordedEvent> {
    read_all_backward_paged(store, filter, page(store)).await
}

/// `events` newest first.
pub(crate) fn reversed(events: &[RecordedEvent]) -> Vec<RecordedEvent> {
    events.iter().rev().cloned().collect()
}

pub(crate) async fn all_events<S: EventStore>(store: &S) -> Vec<RecordedEvent> {
    read_all_filtered(store, &ReadFilter::all()).await
}

#[track_caller]
pub(crate) fn assert_wev<T: Debug>(
    result: Result<T>,
    stream: &StreamId,
    expected: ExpectedVersion,
    actual: CurrentVersion,
) {
    match result {
        Err(Error::WrongExpectedVersion {
            stream: s,
            expected: e,
            actual: a,
        }) => {
            assert_eq!(&s, stream, "WrongExpectedVersion names the wrong stream");
            assert_eq!(e, expected, "WrongExpectedVersion must echo `expected`");
            assert_eq!(a, actual, "WrongExpectedVersion reports the wrong `actual`");
        }
        other => panic!(
            "expected WrongExpectedVersion {{ stream: {stream}, expected: {expected:?}, \
             actual: {actual:?} }}, got {other:?}"
        ),
    }
}

#[track_caller]
pub(crate) fn assert_kind<T: Debug>(result: Result<T>, kind: &str) {
    match result {
        Err(e) if e.kind() == kind => {}
        other => panic!("expected a `{kind}` error, got {other:?}"),
    }
}

#[track_caller]
fn assert_not_found<T: Debug>(result: Result<T>, stream: &StreamId) {
    match result {
        Err(Error::StreamNotFound { stream: s }) => assert_eq!(&s, stream),
        other => panic!("expected StreamNotFound for `{stream}`, got {other:?}"),
    }
}

#[track_caller]
pub(crate) fn assert_deleted<T: Debug>(result: Result<T>, stream: &StreamId) {
    match result {
        Err(Error::StreamDeleted { stream: s }) => assert_eq!(&s, stream),
        other => panic!("expected StreamDeleted for `{stream}`, got {other:?}"),
    }
}

/// What a store shows to readers; two equal snapshots mean nothing was written.
#[derive(Debug, PartialEq)]
struct Snapshot {
    head: Position,
    all: Vec<RecordedEvent>,
    streams: Vec<(StreamId, Option<StreamInfo>, Option<Vec<RecordedEvent>>)>,
}

async fn snapshot<S: EventStore>(store: &S, streams: &[&StreamId]) -> Snapshot {
    let mut per_stream = Vec::new();
    for &s in streams {
        let info = store.stream_info(s).await.expect("stream_info");
        let events = match store
            .read_stream(s, 1, page(store), Direction::Forward)
            .await
        {
            Ok(events) => Some(events),
            Err(Error::StreamNotFound { .. } | Error::StreamDeleted { .. }) => None,
            Err(e) => panic!("read_stream `{s}` failed: {e}"),
        };
        per_stream.push((s.clone(), info, events));
    }
    Snapshot {
        head: store.head_position().await.expect("head_position"),
        all: all_events(store).await,
        streams: per_stream,
    }
}

#[track_caller]
fn assert_unchanged(before: &Snapshot, after: &Snapshot, what: &str) {
    assert_eq!(before.head, after.head, "{what}: head_position moved");
    assert_eq!(keys(&before.all), keys(&after.all), "{what}: $all changed");
    assert_eq!(before.all, after.all, "{what}: $all changed");
    assert_eq!(
        before.streams, after.streams,
        "{what}: a stream's info or events changed"
    );
}

/// The next subscription message, or a panic after [`STEP_TIMEOUT`].
async fn next_message(sub: &mut Subscription) -> SubscriptionMessage {
    // A subscription that is always ready (say, one repeating `CaughtUp` for
    // ever) never yields; spending coop budget lets the case timeout fire.
    tokio::task::consume_budget().await;
    match timeout(STEP_TIMEOUT, sub.next()).await {
        Err(_) => panic!("subscription yielded nothing within {STEP_TIMEOUT:?}"),
        Ok(None) => panic!("subscription ended while the store is open"),
        Ok(Some(Err(e))) => panic!("subscription failed: {e}"),
        Ok(Some(Ok(m))) => m,
    }
}

pub(crate) async fn next_event(sub: &mut Subscription) -> RecordedEvent {
    match next_message(sub).await {
        SubscriptionMessage::Event(e) => e,
        m => panic!("expected an event, got {m:?}"),
    }
}

pub(crate) async fn next_caught_up(sub: &mut Subscription) -> Position {
    match next_message(sub).await {
        SubscriptionMessage::CaughtUp(p) => p,
        m => panic!("expected CaughtUp, got {m:?}"),
    }
}

/// Fails if the subscription yields anything within [`QUIET_PERIOD`].
pub(crate) async fn assert_quiet(sub: &mut Subscription) {
    if let Ok(m) = timeout(QUIET_PERIOD, sub.next()).await {
        panic!("subscription should have nothing to deliver, got {m:?}");
    }
}

/// What a subscription delivered: its events in order, and each `CaughtUp`
/// marker with the number of events delivered before it.
#[derive(Debug, Default)]
struct Received {
    events: Vec<RecordedEvent>,
    caught_up: Vec<(usize, Position)>,
}

impl Received {
    /// Records one message, failing at once on a second `CaughtUp` or a
    /// runaway number of events (so a broken subscription cannot spin).
    #[track_caller]
    fn push(&mut self, message: SubscriptionMessage) {
        match message {
            SubscriptionMessage::CaughtUp(p) => {
                assert!(
                    self.caught_up.is_empty(),
                    "a second CaughtUp({p}) after {:?}",
                    self.caught_up
                );
                self.caught_up.push((self.events.len(), p));
            }
            SubscriptionMessage::Event(e) => {
                assert!(
                    self.events.len() < MAX_RECEIVED_EVENTS,
                    "subscription delivered more than {MAX_RECEIVED_EVENTS} events"
                );
                self.events.push(e);
            }
        }
    }

    /// Checks the marker rules: exactly one `CaughtUp`, and every event after
    /// it lies beyond its position (all events up to it came before it).
    #[track_caller]
    fn assert_one_caught_up(&self, what: &str) -> Position {
        assert_eq!(
            self.caught_up.len(),
            1,
            "{what}: exactly one CaughtUp marker expected, got {:?}",
            self.caught_up
        );
        let (index, at) = self.caught_up[0];
        for e in &self.events[index..] {
            assert!(
                e.position > at,
                "{what}: event at {} delivered after CaughtUp({at})",
                e.position
            );
        }
        at
    }
}

/// Receives until `done` holds for a delivered event (inclusive), then, if no
/// `CaughtUp` came yet, the one that must follow: callers only stop at an
/// event after which no further matching event is written.
async fn receive_until(
    sub: &mut Subscription,
    mut done: impl FnMut(&RecordedEvent) -> bool,
) -> Received {
    let mut r = Received::default();
    loop {
        let message = next_message(sub).await;
        let stop = matches!(&message, SubscriptionMessage::Event(e) if done(e));
        r.push(message);
        if stop {
            if r.caught_up.is_empty() {
                let at = next_caught_up(sub).await;
                r.push(SubscriptionMessage::CaughtUp(at));
            }
            return r;
        }
    }
}

/// Receives `count` events and, if `until_caught_up`, keeps going until the
/// first `CaughtUp` marker (which must come after them).
async fn receive_events(sub: &mut Subscription, count: usize, until_caught_up: bool) -> Received {
    let mut r = Received::default();
    while r.events.len() < count || (until_caught_up && r.caught_up.is_empty()) {
        r.push(next_message(sub).await);
    }
    r
}

fn unwrap_arc<T>(store: Arc<T>) -> T {
    Arc::try_unwrap(store)
        .unwrap_or_else(|_| panic!("a task still holds the store after all tasks were joined"))
}

/// Runs `f(i)` for `i in 0..n` on `n` tasks that all start together.
async fn race<T, F, Fut>(n: usize, f: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
{
    let barrier = Arc::new(Barrier::new(n));
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let barrier = barrier.clone();
        let fut = f(i);
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            fut.await
        }));
    }
    let mut out = Vec::with_capacity(n);
    for t in tasks {
        out.push(t.await.expect("task panicked"));
    }
    out
}

// ---------------------------------------------------------------------------
// Expected versions.
// ---------------------------------------------------------------------------

/// `Any` creates a stream and then appends to it, whatever its version.
pub async fn append_any_creates_and_extends<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    let s = sid("account-1");
    let r1 = append_ok(&store, &s, Any, evs("Deposited", 2)).await;
    assert_eq!(r1.next_expected_version, 2);
    let r2 = append_ok(&store, &s, Any, evs("Deposited", 1)).await;
    assert_eq!(r2.next_expected_version, 3);
    assert!(r2.first_position > r1.last_position);
    let store = h.reopen(store).await;
    let read = read_fwd(&store, &s).await;
    assert_eq!(versions(&read), vec![1, 2, 3]);
    assert!(read.iter().all(|e| e.stream_id == s));
}

/// `NoStream` creates a stream that was never written.
pub async fn append_no_stream_creates_stream<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    let s = sid("account-1");
    let r = append_ok(&store, &s, NoStream, evs("Opened", 1)).await;
    assert_eq!(r.next_expected_version, 1);
    assert_eq!(r.first_position, r.last_position);
    let store = h.reopen(store).await;
    let read = read_fwd(&store, &s).await;
    assert_eq!(versions(&read), vec![1]);
    assert_eq!(read[0].event_type, "Opened");
    assert_eq!(read[0].position, r.first_position);
}

/// `NoStream` on a stream with events fails and reports its version.
pub async fn append_no_stream_on_existing_stream_fails<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    let s = sid("account-1");
    append_ok(&store, &s, NoStream, evs("Deposited", 2)).await;
    let store = h.reopen(store).await;
    let before = snapshot(&store, &[&s]).await;
    assert_wev(
        store.append(&s, NoStream, evs("Deposited", 1)).await,
        &s,
        NoStream,
        CurrentVersion::Current(2),
    );
    let store = h.reopen(store).await;
    assert_unchanged(&before, &snapshot(&store, &[&s]).await, "failed NoStream");
}

/// `StreamExists` on a never-written stream fails with `actual = NoStream`
/// and creates nothing.
pub async fn append_stream_exists_on_new_stream_fails<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    let s = sid("account-1");
    assert_wev(
        store.append(&s, StreamExists, evs("Deposited", 2)).await,
        &s,
        StreamExists,
        CurrentVersion::NoStream,
    );
    let store = h.reopen(store).await;
    assert_eq!(store.stream_info(&s).await.unwrap(), None);
    assert_not_found(store.read_stream(&s, 1, 10, Direction::Forward).await, &s);
    assert_eq!(store.head_position().await.unwrap(), Position::START);
    assert!(all_events(&store).await.is_empty());
}

/// `StreamExists` appends to a stream with events.
pub async fn append_stream_exists_on_existing_stream<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    let s = sid("account-1");
    append_ok(&store, &s, NoStream, evs("Opened", 1)).await;
    let store = h.reopen(store).await;
    let r = append_ok(&store, &s, StreamExists, evs("Deposited", 2)).await;
    assert_eq!(r.next_expected_version, 3);
    let store = h.reopen(store).await;
    assert_eq!(versions(&read_fwd(&store, &s).await), vec![1, 2, 3]);
}

/// `Exact(n)` appends when the stream is at `n`, and the result's
/// `next_expected_version` is the guard for the next append.
pub async fn append_exact_matches_current_version<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    let s = sid("account-1");
    let r = append_ok(&store, &s, Exact(0), evs("Opened", 1)).await;
    assert_eq!(r.next_expected_version, 1);
    let r = append_ok(
        &store,
        &s,
        Exact(r.next_expected_version),
        evs("Deposited", 2),
    )
    .await;
    assert_eq!(r.next_expected_version, 3);
    let store = h.reopen(store).await;
    let r = append_ok(&store, &s, Exact(3), evs("Withdrawn", 1)).await;
    assert_eq!(r.next_expected_version, 4);
    let read = read_fwd(&store, &s).await;
    assert_eq!(versions(&read), vec![1, 2, 3, 4]);
    let types: Vec<_> = read.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(types, ["Opened", "Deposited", "Deposited", "Withdrawn"]);
}

/// A wrong `Exact(n)` fails, echoes `expected` and reports the actual version.
pub async fn append_exact_mismatch_reports_actual_version<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    let s = sid("account-1");
    let fresh = sid("account-2");
    append_ok(&store, &s, NoStream, evs("Deposited", 3)).await;
    let store = h.reopen(store).await;
    let before = snapshot(&store, &[&s, &fresh]).await;
    for n in [1, 2, 4, 100] {
        assert_wev(
            store.append(&s, Exact(n), evs("Deposited", 1)).await,
            &s,
            Exact(n),
            CurrentVersion::Current(3),
        );
    }
    assert_wev(
        store.append(&fresh, Exact(1), evs("Deposited", 1)).await,
        &fresh,
        Exact(1),
        CurrentVersion::NoStream,
    );
    let store = h.reopen(store).await;
    assert_unchanged(
        &before,
        &snapshot(&store, &[&s, &fresh]).await,
        "wrong Exact",
    );
}

/// `Exact(0)` behaves exactly like `NoStream`.
pub async fn append_exact_zero_equals_no_stream<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    let a = sid("account-1");
    let b = sid("account-2");
    let ra = append_ok(&store, &a, Exact(0), evs("Opened", 2)).await;
    let rb = append_ok(&store, &b, NoStream, evs("Opened", 2)).await;
    assert_eq!(ra.next_expected_version, rb.next_expected_version);
    let store = h.reopen(store).await;
    // Both guards now fail the same way on both streams.
    for s in [&a, &b] {
        assert_wev(
            store.append(s, Exact(0), evs("Opened", 1)).await,
            s,
            Exact(0),
            CurrentVersion::Current(2),
        );
        assert_wev(
            store.append(s, NoStream, evs("Opened", 1)).await,
            s,
            NoStream,
            CurrentVersion::Current(2),
        );
    }
    // And both accept a soft-deleted stream.
    store.delete_stream(&a, Exact(2)).await.unwrap();
    store.delete_stream(&b, Exact(2)).await.unwrap();
    let store = h.reopen(store).await;
    let ra = append_ok(&store, &a, Exact(0), evs("Reopened", 1)).await;
    let rb = append_ok(&store, &b, NoStream, evs("Reopened", 1)).await;
    assert_eq!(ra.next_expected_version, 3);
    assert_eq!(rb.next_expected_version, 3);
}

/// A soft-deleted stream counts as absent for guards: `NoStream`, `Exact(0)`
/// and `Any` re-create it (versions continue), `StreamExists` and `Exact(old)`
/// fail with `actual = NoStream`.
pub async fn expected_versions_on_soft_deleted_stream<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    let names = ["account-1", "account-2", "account-3"];
    let streams: Vec<StreamId> = names.iter().map(|n| sid(n)).collect();
    for s in &streams {
        append_ok(&store, s, NoStream, evs("Deposited", 2)).await;
        store.delete_stream(s, Exact(2)).await.unwrap();
    }
    let store = h.reopen(store).await;
    let refs: Vec<&StreamId> = streams.iter().collect();
    let before = snapshot(&store, &refs).await;
    for s in &streams {
        for expected in [StreamExists, Exact(2), Exact(1), Exact(3)] {
            assert_wev(
                store.append(s, expected, evs("Deposited", 1)).await,
                s,
                expected,
                CurrentVersion::NoStream,
            );
        }
    }
    let store = h.reopen(store).await;
    assert_unchanged(&before, &snapshot(&store, &refs).await, "guards on deleted");
    for (s, expected) in streams.iter().zip([NoStream, Exact(0), Any]) {
        let r = append_ok(&store, s, expected, evs("Deposited", 1)).await;
        assert_eq!(r.next_expected_version, 3, "versions continue on `{s}`");
    }
    let store = h.reopen(store).await;
    for s in &streams {
        assert_eq!(versions(&read_fwd(&store, s).await), vec![3]);
        // Re-created: the guards now see the stream at version 3.
        assert_wev(
            store.append(s, NoStream, evs("Deposited", 1)).await,
            s,
            NoStream,
            CurrentVersion::Current(3),
        );
    }
}

/// Every append to a tombstoned stream fails with `StreamDeleted`, whatever
/// the guard, and writes nothing.
pub async fn appends_to_tombstoned_stream_fail<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    let s = sid("account-1");
    let other = sid("account-2");
    append_ok(&store, &s, NoStream, evs("Deposited", 2)).await;
    store.tombstone_stream(&s, Exact(2)).await.unwrap();
    let store = h.reopen(store).await;
    let before = snapshot(&store, &[&s, &other]).await;
    for expected in [Any, NoStream, StreamExists, Exact(0), Exact(2), Exact(3)] {
        assert_deleted(store.append(&s, expected, evs("Deposited", 1)).await, &s);
    }
    assert_deleted(
        store
            .append_multi(vec![
                StreamAppend::new(other.clone(), Any, evs("Deposited", 1)),
                StreamAppend::new(s.clone(), Any, evs("Deposited", 1)),
            ])
            .await,
        &s,
    );
    let store = h.reopen(store).await;
    assert_unchanged(
        &before,
        &snapshot(&store, &[&s, &other]).await,
        "tombstoned",
    );
}

/// An append reports the stream's new version and the positions of its first
/// and last events, which read back in order.
pub async fn append_result_reports_versions_and_positions<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    let a = sid("account-1");
    let b = sid("account-2");
    let ra = append_ok(&store, &a, NoStream, evs("Deposited", 3)).await;
    assert_eq!(ra.next_expected_version, 3);
    assert!(ra.first_position > Position::START);
    assert!(ra.last_position.0 >= ra.first_position.0 + 2);
    let rb = append_ok(&store, &b, NoStream, evs("Deposited", 1)).await;
    assert_eq!(rb.next_expected_version, 1);
    assert_eq!(rb.first_position, rb.last_position);
    assert!(rb.first_position > ra.last_position);
    let ra2 = append_ok(&store, &a, Exact(3), evs("Withdrawn", 2)).await;
    assert_eq!(ra2.next_expected_version, 5);
    assert!(ra2.first_position > rb.last_position);
    let store = h.reopen(store).await;

    let first = store
        .read_all(ra.first_position, 3, &ReadFilter::all())
        .await
        .unwrap();
    assert_eq!(
        keys(&first),
        vec![
            ("account-1".into(), 1),
            ("account-1".into(), 2),
            ("account-1".into(), 3)
        ]
    );
    assert_eq!(first[0].position, ra.first_position);
    assert_eq!(first[2].position, ra.last_position);
    let read_a = read_fwd(&store, &a).await;
    assert_eq!(versions(&read_a), vec![1, 2, 3, 4, 5]);
    assert_eq!(read_a[3].position, ra2.first_position);
    assert_eq!(read_a[4].position, ra2.last_position);
    assert_eq!(store.head_position().await.unwrap(), ra2.last_position);
}

// ---------------------------------------------------------------------------
// Atomicity.
// ---------------------------------------------------------------------------

/// A multi-event append is all or nothing: a failing guard or one bad event
/// leaves no trace.
pub async fn multi_event_append_is_atomic<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    let s = sid("account-1");
    let fresh = sid("account-2");
    append_ok(&store, &s, NoStream, evs("Opened", 1)).await;
    let store = h.reopen(store).await;
    let before = snapshot(&store, &[&s, &fresh]).await;

    assert_wev(
        store.append(&s, Exact(5), evs("Deposited", 3)).await,
        &s,
        Exact(5),
        CurrentVersion::Current(1),
    );
    let mut bad_middle = evs("Deposited", 3);
    bad_middle[1] = NewEvent::json_bytes("Deposited", &b"{\"n\": 2"[..]);
    assert_kind(
        store.append(&s, Exact(1), bad_middle).await,
        "invalid_input",
    );
    let mut bad_last = evs("Opened", 3);
    bad_last[2].event_type = String::new();
    assert_kind(
        store.append(&fresh, NoStream, bad_last).await,
        "invalid_input",
    );

    let store = h.reopen(store).await;
    assert_unchanged(
        &before,
        &snapshot(&store, &[&s, &fresh]).await,
        "atomic append",
    );
    assert_eq!(store.stream_info(&fresh).await.unwrap(), None);
}

/// `append_multi` writes every part, reports results in part order and gives
/// the events consecutive positions in that order.
pub async fn append_multi_writes_parts_with_consecutive_positions<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    let a = sid("account-1");
    let b = sid("order-1");
    let c = sid("account-2");
    append_ok(&store, &c, NoStream, evs("Opened", 1)).await;
    let store = h.reopen(store).await;
    let results = store
        .append_multi(vec![
            StreamAppend::new(a.clone(), NoStream, evs("Opened", 2)),
            StreamAppend::new(b.clone(), NoStream, evs("Placed", 1)),
            StreamAppend::new(c.clone(), Exact(1), evs("Deposited", 3)),
        ])
        .await
        .unwrap();
    assert_eq!(results.len(), 3);
    let next: Vec<u64> = results.iter().map(|r| r.next_expected_version).collect();
    assert_eq!(next, vec![2, 1, 4]);
    for w in results.windows(2) {
        assert!(w[0].last_position < w[1].first_position);
    }
    let store = h.reopen(store).await;

    let read = store
        .read_all(results[0].first_position, 100, &ReadFilter::all())
        .await
        .unwrap();
    assert_eq!(
        keys(&read),
        vec![
            ("account-1".into(), 1),
            ("account-1".into(), 2),
            ("order-1".into(), 1),
            ("account-2".into(), 2),
            ("account-2".into(), 3),
            ("account-2".into(), 4),
        ],
        "the parts' events must be consecutive in $all, in part order"
    );
    assert_strictly_increasing(&read);
    assert_eq!(read[0].position, results[0].first_position);
    assert_eq!(read[1].position, results[0].last_position);
    assert_eq!(read[2].position, results[1].first_position);
    assert_eq!(read[2].position, results[1].last_position);
    assert_eq!(read[3].position, results[2].first_position);
    assert_eq!(read[5].position, results[2].last_position);
    assert_eq!(
        store.head_position().await.unwrap(),
        results[2].last_position
    );
    assert_eq!(versions(&read_fwd(&store, &c).await), vec![1, 2, 3, 4]);
}

/// One failing guard in `append_multi` writes nothing on any stream.
pub async fn append_multi_guard_failure_writes_nothing<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    let a = sid("account-1");
    let b = sid("account-2");
    let c = sid("account-3");
    append_ok(&store, &a, NoStream, evs("Opened", 1)).await;
    append_ok(&store, &b, NoStream, evs("Opened", 1)).await;
    let store = h.reopen(store).await;
    let before = snapshot(&store, &[&a, &b, &c]).await;
    assert_wev(
        store
            .append_multi(vec![
                StreamAppend::new(a.clone(), Exact(1), evs("Deposited", 2)),
                StreamAppend::new(b.clone(), Exact(5), evs("Deposited", 1)),
                StreamAppend::new(c.clone(), NoStream, evs("Opened", 1)),
            ])
            .await,
        &b,
        Exact(5),
        CurrentVersion::Current(1),
    );
    // The failing part last this time.
    assert_wev(
        store
            .append_multi(vec![
                StreamAppend::new(c.clone(), NoStream, evs("Opened", 1)),
                StreamAppend::new(a.clone(), NoStream, evs("Deposited", 1)),
            ])
            .await,
        &a,
        NoStream,
        CurrentVersion::Current(1),
    );
    let store = h.reopen(store).await;
    assert_unchanged(
        &before,
        &snapshot(&store, &[&a, &b, &c]).await,
        "failed append_multi",
    );
    assert_eq!(store.stream_info(&c).await.unwrap(), None);
}

/// `append_multi` refuses to name one stream twice, and writes nothing.
pub async fn append_multi_refuses_same_stream_twice<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    let a = sid("account-1");
    let b = sid("account-2");
    append_ok(&store, &b, NoStream, evs("Opened", 1)).await;
    let before = snapshot(&store, &[&a, &b]).await;
    assert_kind(
        store
            .append_multi(vec![
                StreamAppend::new(a.clone(), Any, evs("Opened", 1)),
                StreamAppend::new(a.clone(), Any, evs("Deposited", 1)),
            ])
            .await,
        "invalid_input",
    );
    assert_kind(
        store
            .append_multi(vec![
                StreamAppend::new(a.clone(), NoStream, evs("Opened", 1)),
                StreamAppend::new(b.clone(), Exact(1), evs("Deposited", 1)),
                StreamAppend::new(a.clone(), Exact(1), evs("Deposited", 1)),
            ])
            .await,
        "invalid_input",
    );
    let store = h.reopen(store).await;
    assert_unchanged(
        &before,
        &snapshot(&store, &[&a, &b]).await,
        "same stream twice",
    );
}

/// `append_multi` with no parts, or with a part without events, is invalid
/// input, and writes nothing.
pub async fn append_multi_refuses_empty_input<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    let a = sid("account-1");
    let b = sid("account-2");
    let before = snapshot(&store, &[&a, &b]).await;
    assert_kind(store.append_multi(Vec::new()).await, "invalid_input");
    assert_kind(
        store
            .append_multi(vec![
                StreamAppend::new(a.clone(), Any, evs("Opened", 1)),
                StreamAppend::new(b.clone(), Any, Vec::new()),
            ])
            .await,
        "invalid_input",
    );
    let store = h.reopen(store).await;
    assert_unchanged(
        &before,
        &snapshot(&store, &[&a, &b]).await,
        "empty append_multi",
    );
}

/// A tombstoned stream in `append_multi` fails the whole call with
/// `StreamDeleted` and writes nothing on the other streams.
pub async fn append_multi_with_tombstoned_part_writes_nothing<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    let a = sid("account-1");
    let dead = sid("account-2");
    append_ok(&store, &dead, NoStream, evs("Opened", 1)).await;
    store.tombstone_stream(&dead, Any).await.unwrap();
    let store = h.reopen(store).await;
    let before = snapshot(&store, &[&a, &dead]).await;
    assert_deleted(
        store
            .append_multi(vec![
                StreamAppend::new(a.clone(), NoStream, evs("Opened", 1)),
                StreamAppend::new(dead.clone(), Any, evs("Deposited", 1)),
            ])
            .await,
        &dead,
    );
    let store = h.reopen(store).await;
    assert_unchanged(
        &before,
        &snapshot(&store, &[&a, &dead]).await,
        "tombstoned part",
    );
}

// ---------------------------------------------------------------------------
// Idempotency.
// ---------------------------------------------------------------------------

/// Re-sending an append with the same ids returns the original result and
/// writes nothing, whatever the expected version — even a now-wrong one.
pub async fn idempotent_retry_returns_original_result<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    let s = sid("account-1");
    let events = with_ids("Deposited", 2);
    let original = append_ok(&store, &s, NoStream, events.clone()).await;
    let store = h.reopen(store).await;
    let before = snapshot(&store, &[&s]).await;
    for expected in [NoStream, Exact(0), Exact(7), StreamExists, Exact(2), Any] {
        let again = store.append(&s, expected, events.clone()).await;
        assert_eq!(
            again.unwrap_or_else(|e| panic!("retry with {expected:?} failed: {e}")),
            original,
            "a retry with {expected:?} must return the original result"
        );
    }
    let store = h.reopen(store).await;
    assert_unchanged(&before, &snapshot(&store, &[&s]).await, "idempotent retry");
    let read = read_fwd(&store, &s).await;
    assert_eq!(
        read.iter().map(|e| e.id).collect::<Vec<_>>(),
        ids_of(&events)
    );
}

/// A retry of an older append, after other appends and a reopen, still
/// returns that append's original result.
pub async fn idempotent_retry_after_later_appends_and_reopen<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    let s = sid("account-1");
    let other = sid("account-2");
    let first = with_ids("Deposited", 2);
    let second = with_ids("Withdrawn", 3);
    let r1 = append_ok(&store, &s, NoStream, first.clone()).await;
    append_ok(&store, &other, NoStream, with_ids("Opened", 1)).await;
    let r2 = append_ok(&store, &s, Exact(2), second.clone()).await;
    append_ok(&store, &s, Exact(5), evs("Deposited", 1)).await;
    let store = h.reopen(store).await;
    let before = snapshot(&store, &[&s, &other]).await;
    assert_eq!(store.append(&s, Exact(0), first.clone()).await.unwrap(), r1);
    assert_eq!(
        store.append(&s, NoStream, second.clone()).await.unwrap(),
        r2
    );
    assert_eq!(store.append(&s, Exact(6), first).await.unwrap(), r1);
    let store = h.reopen(store).await;
    assert_unchanged(
        &before,
        &snapshot(&store, &[&s, &other]).await,
        "late retry",
    );
}

/// Re-sending a whole `append_multi` returns the original results and
/// writes nothing; each part re-sent alone is an exact retry too.
pub async fn idempotent_retry_of_multi_append<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    let a = sid("account-1");
    let b = sid("order-1");
    let parts = vec![
        StreamAppend::new(a.clone(), NoStream, with_ids("Opened", 2)),
        StreamAppend::new(b.clone(), NoStream, with_ids("Placed", 1)),
    ];
    let original = store.append_multi(parts.clone()).await.unwrap();
    let store = h.reopen(store).await;
    let before = snapshot(&store, &[&a, &b]).await;
    assert_eq!(store.append_multi(parts.clone()).await.unwrap(), original);
    for (part, result) in parts.iter().zip(&original) {
        assert_eq!(
            store
                .append(&part.stream, Exact(0), part.events.clone())
                .await
                .unwrap(),
            *result
        );
    }
    let store = h.reopen(store).await;
    assert_unchanged(&before, &snapshot(&store, &[&a, &b]).await, "multi retry");
}

/// Re-sending recorded ids together with new events is a conflict and
/// writes nothing.
pub async fn partial_overlap_is_idempotency_conflict<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    let s = sid("account-1");
    let recorded = with_ids("Deposited", 2);
    append_ok(&store, &s, NoStream, recorded.clone()).await;
    let store = h.reopen(store).await;
    let before = snapshot(&store, &[&s]).await;
    let fresh = ev("Deposited", 3).with_id(EventId::new());

    let mut plus_new = recorded.clone();
    plus_new.push(fresh.clone());
    assert_kind(
        store.append(&s, Any, plus_new).await,
        "idempotency_conflict",
    );
    let new_first = vec![fresh.clone(), recorded[0].clone()];
    assert_kind(
        store.append(&s, Any, new_first).await,
        "idempotency_conflict",
    );
    let mut plus_generated = recorded.clone();
    plus_generated.push(ev("Deposited", 4));
    assert_kind(
        store.append(&s, Exact(2), plus_generated).await,
        "idempotency_conflict",
    );
    let store = h.reopen(store).await;
    assert_unchanged(&before, &snapshot(&store, &[&s]).await, "partial overlap");
    // The refused new id was not recorded: it can be appended on its own.
    let r = append_ok(&store, &s, Exact(2), vec![fresh]).await;
    assert_eq!(r.next_expected_version, 3);
}

/// Re-sending recorded ids to another stream is a conflict and writes nothing.
pub async fn recorded_ids_in_other_stream_conflict<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    let s = sid("account-1");
    let other = sid("account-2");
    let recorded = with_ids("Deposited", 2);
    append_ok(&store, &s, NoStream, recorded.clone()).await;
    let store = h.reopen(store).await;
    let before = snapshot(&store, &[&s, &other]).await;
    assert_kind(
        store.append(&other, Any, recorded.clone()).await,
        "idempotency_conflict",
    );
    assert_kind(
        store.append(&other, NoStream, recorded[1..].to_vec()).await,
        "idempotency_conflict",
    );
    assert_kind(
        store
            .append_multi(vec![StreamAppend::new(other.clone(), Any, recorded)])
            .await,
        "idempotency_conflict",
    );
    let store = h.reopen(store).await;
    assert_unchanged(
        &before,
        &snapshot(&store, &[&s, &other]).await,
        "wrong stream",
    );
    assert_not_found(
        store.read_stream(&other, 1, 10, Direction::Forward).await,
        &other,
    );
}

/// Re-sending recorded ids in another order (or with a gap) is a conflict.
pub async fn reordered_ids_conflict<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    let s = sid("account-1");
    let recorded = with_ids("Deposited", 3);
    append_ok(&store, &s, NoStream, recorded.clone()).await;
    let store = h.reopen(store).await;
    let before = snapshot(&store, &[&s]).await;
    let r = &recorded;
    for attempt in [
        vec![r[1].clone(), r[0].clone()],
        vec![r[2].clone(), r[1].clone(), r[0].clone()],
        vec![r[0].clone(), r[2].clone()],
        vec![r[0].clone(), r[2].clone(), r[1].clone()],
    ] {
        assert_kind(store.append(&s, Any, attempt).await, "idempotency_conflict");
    }
    let store = h.reopen(store).await;
    assert_unchanged(&before, &snapshot(&store, &[&s]).await, "reordered ids");
}

/// An `append_multi` that re-sends one recorded part together with a new part
/// is a partial overlap: a conflict that writes nothing.
pub async fn append_multi_mixing_retry_and_new_parts_conflicts<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    let a = sid("account-1");
    let b = sid("account-2");
    let recorded = StreamAppend::new(a.clone(), NoStream, with_ids("Opened", 2));
    store.append_multi(vec![recorded.clone()]).await.unwrap();
    let store = h.reopen(store).await;
    let before = snapshot(&store, &[&a, &b]).await;
    assert_kind(
        store
            .append_multi(vec![
                recorded.clone(),
                StreamAppend::new(b.clone(), NoStream, with_ids("Opened", 1)),
            ])
            .await,
        "idempotency_conflict",
    );
    assert_kind(
        store
            .append_multi(vec![
                StreamAppend::new(b.clone(), NoStream, with_ids("Opened", 1)),
                recorded,
            ])
            .await,
        "idempotency_conflict",
    );
    let store = h.reopen(store).await;
    assert_unchanged(
        &before,
        &snapshot(&store, &[&a, &b]).await,
        "mixed multi retry",
    );
}

/// The same id twice in one append (or one `append_multi`) is invalid input.
pub async fn duplicate_ids_in_one_append_refused<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    let a = sid("account-1");
    let b = sid("account-2");
    let before = snapshot(&store, &[&a, &b]).await;
    let id = EventId::new();
    assert_kind(
        store
            .append(
                &a,
                Any,
                vec![ev("Opened", 1).with_id(id), ev("Deposited", 2).with_id(id)],
            )
            .await,
        "invalid_input",
    );
    assert_kind(
        store
            .append_multi(vec![
                StreamAppend::new(a.clone(), Any, vec![ev("Opened", 1).with_id(id)]),
                StreamAppend::new(b.clone(), Any, vec![ev("Opened", 1).with_id(id)]),
            ])
            .await,
        "invalid_input",
    );
    let store = h.reopen(store).await;
    assert_unchanged(&before, &snapshot(&store, &[&a, &b]).await, "duplicate ids");
}

/// A tombstoned stream refuses every append with `StreamDeleted`, including
/// an exact retry of an append it recorded before it was tombstoned: the
/// trait promises that *every* later append fails (as KurrentDB does).
pub async fn retry_to_tombstoned_stream_fails<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    let s = sid("account-1");
    let events = with_ids("Deposited", 2);
    append_ok(&store, &s, NoStream, events.clone()).await;
    store.tombstone_stream(&s, Exact(2)).await.unwrap();
    let store = h.reopen(store).await;
    let before = snapshot(&store, &[&s]).await;
    assert_deleted(store.append(&s, Exact(0), events.clone()).await, &s);
    assert_deleted(store.append(&s, Any, events.clone()).await, &s);
    assert_deleted(
        store
            .append_multi(vec![StreamAppend::new(s.clone(), NoStream, events)])
            .await,
        &s,
    );
    let store = h.reopen(store).await;
    assert_unchanged(
        &before,
        &snapshot(&store, &[&s]).await,
        "retry to tombstoned",
    );
}

// ---------------------------------------------------------------------------
// Reading streams.
// ---------------------------------------------------------------------------

async fn five_event_stream<H: StoreHarness>(h: &H) -> (H::Store, StreamId) {
    let store = h.open().await;
    let s = sid("account-1");
    let other = sid("account-2");
    // Interleave another stream so stream reads cannot just slice `$all`.
    for n in 1..=5 {
        append_ok(&store, &s, Exact(n - 1), vec![ev("Deposited", n)]).await;
        append_ok(&store, &other, Exact(n - 1), vec![ev("Deposited", 100 + n)]).await;
    }
    (h.reopen(store).await, s)
}

async fn read_versions<S: EventStore>(
    store: &S,
    s: &StreamId,
    from: u64,
    max_count: usize,
    direction: Direction,
) -> Vec<u64> {
    let read = store
        .read_stream(s, from, max_count, direction)
        .await
        .unwrap_or_else(|e| panic!("read {direction:?} from {from} x{max_count}: {e}"));
    assert!(read.iter().all(|e| &e.stream_id == s));
    versions(&read)
}

/// Forward reads start at `from` (inclusive), return at most `max_count`
/// events, and return nothing past the end.
pub async fn read_stream_forward_ranges<H: StoreHarness>(h: &H) {
    let (store, s) = five_event_stream(h).await;
    let fwd = Direction::Forward;
    assert_eq!(
        read_versions(&store, &s, 1, 100, fwd).await,
        vec![1, 2, 3, 4, 5]
    );
    assert_eq!(
        read_versions(&store, &s, 0, 100, fwd).await,
        vec![1, 2, 3, 4, 5]
    );
    assert_eq!(read_versions(&store, &s, 3, 100, fwd).await, vec![3, 4, 5]);
    assert_eq!(read_versions(&store, &s, 2, 2, fwd).await, vec![2, 3]);
    assert_eq!(read_versions(&store, &s, 5, 1, fwd).await, vec![5]);
    assert_eq!(
        read_versions(&store, &s, 6, 10, fwd).await,
        Vec::<u64>::new()
    );
    assert_eq!(
        read_versions(&store, &s, 1, 0, fwd).await,
        Vec::<u64>::new()
    );
    let read = store.read_stream(&s, 1, 5, fwd).await.unwrap();
    assert_strictly_increasing(&read);
    let payloads: Vec<u64> = read
        .iter()
        .map(|e| {
            e.json::<serde_json::Value>().unwrap()["n"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(payloads, vec![1, 2, 3, 4, 5]);
}

/// Backward reads go down from `from` (clamped to the last version;
/// [`FROM_END`] for the end) and return at most `max_count` events.
pub async fn read_stream_backward_ranges<H: StoreHarness>(h: &H) {
    let (store, s) = five_event_stream(h).await;
    let back = Direction::Backward;
    assert_eq!(
        read_versions(&store, &s, FROM_END, 100, back).await,
        vec![5, 4, 3, 2, 1]
    );
    assert_eq!(
        read_versions(&store, &s, FROM_END, 2, back).await,
        vec![5, 4]
    );
    assert_eq!(read_versions(&store, &s, 3, 100, back).await, vec![3, 2, 1]);
    assert_eq!(read_versions(&store, &s, 3, 2, back).await, vec![3, 2]);
    assert_eq!(read_versions(&store, &s, 10, 2, back).await, vec![5, 4]);
    assert_eq!(read_versions(&store, &s, 1, 10, back).await, vec![1]);
    assert_eq!(
        read_versions(&store, &s, 0, 10, back).await,
        Vec::<u64>::new()
    );
    assert_eq!(
        read_versions(&store, &s, FROM_END, 0, back).await,
        Vec::<u64>::new()
    );
    let read = store.read_stream(&s, FROM_END, 5, back).await.unwrap();
    for w in read.windows(2) {
        assert!(w[0].position > w[1].position);
    }
}

/// Reading a stream that was never written fails with `StreamNotFound`, in
/// both directions, even after a refused append to it.
pub async fn read_missing_stream_not_found<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    let s = sid("account-1");
    append_ok(&store, &sid("account-2"), NoStream, evs("Opened", 1)).await;
    assert_kind(
        store.append(&s, StreamExists, evs("Opened", 1)).await,
        "wrong_expected_version",
    );
    let store = h.reopen(store).await;
    assert_not_found(store.read_stream(&s, 1, 10, Direction::Forward).await, &s);
    assert_not_found(
        store
            .read_stream(&s, FROM_END, 10, Direction::Backward)
            .await,
        &s,
    );
}

/// Reading a tombstoned stream fails with `StreamDeleted`, in both directions.
pub async fn read_tombstoned_stream_fails<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    let s = sid("account-1");
    append_ok(&store, &s, NoStream, evs("Deposited", 3)).await;
    store.tombstone_stream(&s, Exact(3)).await.unwrap();
    let store = h.reopen(store).await;
    assert_deleted(store.read_stream(&s, 1, 10, Direction::Forward).await, &s);
    assert_deleted(
        store
            .read_stream(&s, FROM_END, 10, Direction::Backward)
            .await,
        &s,
    );
}

/// A soft-deleted stream reads as not found; appending re-creates it, its
/// versions continue and reads start at the first version after the delete.
pub async fn soft_deleted_stream_is_not_found_then_recreated<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    let s = sid("account-1");
    append_ok(&store, &s, NoStream, evs("Deposited", 3)).await;
    store.delete_stream(&s, Exact(3)).await.unwrap();
    let store = h.reopen(store).await;
    assert_not_found(store.read_stream(&s, 1, 10, Direction::Forward).await, &s);
    assert_not_found(
        store
            .read_stream(&s, FROM_END, 10, Direction::Backward)
            .await,
        &s,
    );

    let r = append_ok(&store, &s, NoStream, evs("Reopened", 2)).await;
    assert_eq!(r.next_expected_version, 5);
    let store = h.reopen(store).await;
    let fwd = Direction::Forward;
    let back = Direction::Backward;
    assert_eq!(read_versions(&store, &s, 1, 10, fwd).await, vec![4, 5]);
    assert_eq!(read_versions(&store, &s, 0, 10, fwd).await, vec![4, 5]);
    assert_eq!(read_versions(&store, &s, 2, 1, fwd).await, vec![4]);
    assert_eq!(
        read_versions(&store, &s, FROM_END, 10, back).await,
        vec![5, 4]
    );
    assert_eq!(
        read_versions(&store, &s, 3, 10, back).await,
        Vec::<u64>::new()
    );
    let read = read_fwd(&store, &s).await;
    assert!(read.iter().all(|e| e.event_type == "Reopened"));
    assert_eq!(read[0].position, r.first_position);
    let info = store.stream_info(&s).await.unwrap().expect("info");
    assert_eq!(info.first_readable_version, 4);
    assert_eq!(info.version, 5);
    assert_eq!(info.state, StreamState::Live);
}

// ---------------------------------------------------------------------------
// Reading `$all`.
// ---------------------------------------------------------------------------

/// `read_all` returns every event once, in commit order, with strictly
/// increasing positions.
pub async fn read_all_in_position_order<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    let names = ["account-1", "order-1", "account-2"];
    let mut expected = Vec::new();
    let mut versions_so_far = BTreeMap::new();
    for round in 0..4u64 {
        for (i, name) in names.iter().enumerate() {
            let count = (round + i as u64) % 3 + 1;
            let v: &mut u64 = versions_so_far.entry(*name).or_default();
            append_ok(&store, &sid(name), Exact(*v), evs("Deposited", count)).await;
            for _ in 0..count {
                *v += 1;
                expected.push((name.to_string(), *v));
            }
        }
    }
    let store = h.reopen(store).await;
    let all = all_events(&store).await;
    assert_eq!(keys(&all), expected);
    assert_strictly_increasing(&all);
    let one_read = store
        .read_all(Position::START, expected.len() + 10, &ReadFilter::all())
        .await
        .unwrap();
    assert_eq!(one_read, all);
    assert_eq!(
        store.head_position().await.unwrap(),
        all.last().unwrap().position
    );
}

/// `from` is inclusive, `max_count` caps the page, and paging with
/// `last.position.next()` visits every event exactly once.
pub async fn read_all_from_is_inclusive_and_max_count_limits<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    for n in 0..10 {
        let s = sid(if n % 2 == 0 { "account-1" } else { "account-2" });
        append_ok(&store, &s, Any, vec![ev("Deposited", n)]).await;
    }
    let store = h.reopen(store).await;
    let all = all_events(&store).await;
    assert_eq!(all.len(), 10);
    let p = positions(&all);
    let f = ReadFilter::all();

    let from3 = store.read_all(p[3], 100, &f).await.unwrap();
    assert_eq!(positions(&from3), p[3..].to_vec());
    let two = store.read_all(p[3], 2, &f).await.unwrap();
    assert_eq!(positions(&two), p[3..5].to_vec());
    let after3 = store.read_all(p[3].next(), 1, &f).await.unwrap();
    assert_eq!(positions(&after3), vec![p[4]]);
    assert!(store
        .read_all(p[9].next(), 10, &f)
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .read_all(Position::START, 0, &f)
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .read_all(Position(u64::MAX), 10, &f)
        .await
        .unwrap()
        .is_empty());

    let mut paged = Vec::new();
    let mut from = Position::START;
    loop {
        let page = store.read_all(from, 3, &f).await.unwrap();
        assert!(page.len() <= 3);
        let Some(last) = page.last() else { break };
        from = last.position.next();
        paged.extend(page);
    }
    assert_eq!(paged, all);
}

/// An empty store has nothing in `$all` and its head is `Position::START`.
pub async fn read_all_on_empty_store<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    assert_eq!(store.head_position().await.unwrap(), Position::START);
    assert!(store
        .read_all(Position::START, 10, &ReadFilter::all())
        .await
        .unwrap()
        .is_empty());
    let store = h.reopen(store).await;
    assert_eq!(store.head_position().await.unwrap(), Position::START);
    assert!(all_events(&store).await.is_empty());
}

/// Events for the filter cases: several streams, categories, types and
/// correlation ids, interleaved.
async fn filter_fixture<H: StoreHarness>(h: &H) -> (H::Store, Vec<RecordedEvent>) {
    let store = h.open().await;
    let plan: [(&str, &str, Option<&str>); 14] = [
        ("account-1", "Opened", Some("c1")),
        ("account-10", "Opened", Some("c2")),
        ("accountant-1", "Hired", Some("c1")),
        ("account-1", "Deposited", Some("c1")),
        ("order-1", "Placed", None),
        ("account", "Audited", Some("c2")),
        ("account-2", "Opened", None),
        ("account-10", "Deposited", Some("c1")),
        ("account-1", "Withdrawn", Some("c2")),
        ("order-1", "Deposited", Some("c1")),
        ("account-2", "Deposited", Some("c1")),
        ("accountant-1", "Deposited", None),
        ("account-1", "Deposited", None),
        ("order-2", "Placed", Some("c1")),
    ];
    for (n, (stream, ty, corr)) in plan.iter().enumerate() {
        let mut meta = Metadata::default();
        if let Some(c) = corr {
            meta = meta.with_correlation_id(*c);
        }
        let e = ev(ty, n as u64).with_metadata(meta);
        append_ok(&store, &sid(stream), Any, vec![e]).await;
    }
    let store = h.reopen(store).await;
    let all = all_events(&store).await;
    assert_eq!(all.len(), plan.len());
    (store, all)
}

/// Checks that `filter` selects exactly the events `pred` accepts (and that
/// this is a proper, non-empty subset), through whole reads, a ranged read and
/// a short page.
async fn check_filter<S: EventStore>(
    store: &S,
    all: &[RecordedEvent],
    filter: &ReadFilter,
    pred: impl Fn(&RecordedEvent) -> bool,
) {
    let expected: Vec<RecordedEvent> = all.iter().filter(|e| pred(e)).cloned().collect();
    assert!(
        !expected.is_empty(),
        "fixture: {filter:?} should match something"
    );
    assert!(
        expected.len() < all.len(),
        "fixture: {filter:?} should exclude something"
    );
    let got = read_all_filtered(store, filter).await;
    assert_eq!(keys(&got), keys(&expected), "read_all with {filter:?}");
    assert_eq!(got, expected);
    let one = store
        .read_all(Position::START, all.len(), filter)
        .await
        .unwrap();
    assert_eq!(one, expected);
    // From the middle of `$all`, one page of one event.
    let mid = all[all.len() / 2].position;
    let later: Vec<_> = expected.iter().filter(|e| e.position >= mid).collect();
    let page = store.read_all(mid, 1, filter).await.unwrap();
    assert_eq!(
        page.iter().collect::<Vec<_>>(),
        later.into_iter().take(1).collect::<Vec<_>>(),
        "read_all from {mid} x1 with {filter:?}"
    );
}

fn category(e: &RecordedEvent) -> &str {
    let name = e.stream_id.as_str();
    name.split('-').next().unwrap_or(name)
}

fn correlation(e: &RecordedEvent) -> Option<&str> {
    e.metadata.correlation_id.as_deref()
}

/// The `stream` filter selects exactly one stream (not others sharing a prefix).
pub async fn read_all_filter_by_stream<H: StoreHarness>(h: &H) {
    let (store, all) = filter_fixture(h).await;
    check_filter(
        &store,
        &all,
        &ReadFilter::all().stream(sid("account-1")),
        |e| e.stream_id.as_str() == "account-1",
    )
    .await;
    check_filter(
        &store,
        &all,
        &ReadFilter::all().stream(sid("account")),
        |e| e.stream_id.as_str() == "account",
    )
    .await;
    assert!(store
        .read_all(
            Position::START,
            10,
            &ReadFilter::all().stream(sid("nope-1"))
        )
        .await
        .unwrap()
        .is_empty());
}

/// The `stream_prefix` filter selects streams whose names start with it.
pub async fn read_all_filter_by_stream_prefix<H: StoreHarness>(h: &H) {
    let (store, all) = filter_fixture(h).await;
    for prefix in ["account-1", "account", "order-", "accountant"] {
        check_filter(
            &store,
            &all,
            &ReadFilter::all().stream_prefix(prefix),
            |e| e.stream_id.as_str().starts_with(prefix),
        )
        .await;
    }
    assert!(store
        .read_all(Position::START, 10, &ReadFilter::all().stream_prefix("zzz"))
        .await
        .unwrap()
        .is_empty());
}

/// The `category` filter selects streams whose name up to the first `-` is
/// the category (`account` matches `account-1` and `account`, not
/// `accountant-1`).
pub async fn read_all_filter_by_category<H: StoreHarness>(h: &H) {
    let (store, all) = filter_fixture(h).await;
    for cat in ["account", "accountant", "order"] {
        check_filter(&store, &all, &ReadFilter::all().category(cat), |e| {
            category(e) == cat
        })
        .await;
    }
    assert!(store
        .read_all(
            Position::START,
            10,
            &ReadFilter::all().category("account-1")
        )
        .await
        .unwrap()
        .is_empty());
}

/// The `event_types` filter selects events of any listed type.
pub async fn read_all_filter_by_event_types<H: StoreHarness>(h: &H) {
    let (store, all) = filter_fixture(h).await;
    check_filter(
        &store,
        &all,
        &ReadFilter::all().event_types(["Opened"]),
        |e| e.event_type == "Opened",
    )
    .await;
    check_filter(
        &store,
        &all,
        &ReadFilter::all().event_types(["Deposited", "Withdrawn"]),
        |e| e.event_type == "Deposited" || e.event_type == "Withdrawn",
    )
    .await;
    assert!(store
        .read_all(
            Position::START,
            10,
            &ReadFilter::all().event_types(["Nope"])
        )
        .await
        .unwrap()
        .is_empty());
}

/// The `correlation_id` filter selects events whose metadata carries it.
pub async fn read_all_filter_by_correlation_id<H: StoreHarness>(h: &H) {
    let (store, all) = filter_fixture(h).await;
    for c in ["c1", "c2"] {
        check_filter(&store, &all, &ReadFilter::all().correlation_id(c), |e| {
            correlation(e) == Some(c)
        })
        .await;
    }
    assert!(store
        .read_all(Position::START, 10, &ReadFilter::all().correlation_id("c3"))
        .await
        .unwrap()
        .is_empty());
}

/// Filter fields combine with AND.
pub async fn read_all_filters_combine<H: StoreHarness>(h: &H) {
    let (store, all) = filter_fixture(h).await;
    check_filter(
        &store,
        &all,
        &ReadFilter::all()
            .category("account")
            .event_types(["Deposited"])
            .correlation_id("c1"),
        |e| category(e) == "account" && e.event_type == "Deposited" && correlation(e) == Some("c1"),
    )
    .await;
    check_filter(
        &store,
        &all,
        &ReadFilter::all()
            .stream_prefix("account")
            .event_types(["Opened", "Deposited"]),
        |e| {
            e.stream_id.as_str().starts_with("account")
                && (e.event_type == "Opened" || e.event_type == "Deposited")
        },
    )
    .await;
    check_filter(
        &store,
        &all,
        &ReadFilter::all()
            .stream(sid("account-1"))
            .correlation_id("c2"),
        |e| e.stream_id.as_str() == "account-1" && correlation(e) == Some("c2"),
    )
    .await;
    // Contradictory parts select nothing.
    assert!(store
        .read_all(
            Position::START,
            100,
            &ReadFilter::all().stream(sid("order-1")).category("account")
        )
        .await
        .unwrap()
        .is_empty());
}

/// Deleting or tombstoning a stream leaves its events in `$all`, unchanged,
/// and adds none.
pub async fn read_all_keeps_events_of_deleted_streams<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    let soft = sid("account-1");
    let hard = sid("account-2");
    append_ok(&store, &soft, NoStream, evs("Deposited", 2)).await;
    append_ok(&store, &hard, NoStream, evs("Deposited", 2)).await;
    append_ok(&store, &sid("order-1"), NoStream, evs("Placed", 1)).await;
    let before = all_events(&store).await;
    let head = store.head_position().await.unwrap();
    store.delete_stream(&soft, Any).await.unwrap();
    store.tombstone_stream(&hard, Any).await.unwrap();
    let store = h.reopen(store).await;
    assert_eq!(all_events(&store).await, before);
    assert_eq!(store.head_position().await.unwrap(), head);
    for s in [&soft, &hard] {
        let by_stream = read_all_filtered(&store, &ReadFilter::all().stream(s.clone())).await;
        assert_eq!(versions(&by_stream), vec![1, 2]);
    }
}

// ---------------------------------------------------------------------------
// Reading `$all` backwards.
// ---------------------------------------------------------------------------

/// `read_all_backward` from [`Position::END`] returns what `read_all`
/// returns, newest first, in one read and in pages; an empty store has
/// nothing to read backwards either.
pub async fn read_all_backward_from_the_end_is_read_all_reversed<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    let f = ReadFilter::all();
    assert!(store
        .read_all_backward(Position::END, 10, &f)
        .await
        .unwrap()
        .is_empty());
    let names = ["account-1", "order-1", "account-2"];
    for round in 0..4u64 {
        for (i, name) in names.iter().enumerate() {
            let count = (round + i as u64) % 3 + 1;
            append_ok(&store, &sid(name), Any, evs("Deposited", count)).await;
        }
    }
    let store = h.reopen(store).await;
    let forward = all_events(&store).await;
    let newest_first = reversed(&forward);
    let one_read = store
        .read_all_backward(Position::END, forward.len() + 10, &f)
        .await
        .unwrap();
    assert_eq!(one_read, newest_first);
    assert_eq!(
        one_read.first().map(|e| e.position),
        Some(store.head_position().await.unwrap())
    );
    for w in one_read.windows(2) {
        assert!(
            w[0].position > w[1].position,
            "a backward read goes down: {} then {}",
            w[0].position,
            w[1].position
        );
    }
    assert_eq!(read_all_backward_filtered(&store, &f).await, newest_first);
    // Past the head is the same as the end.
    let head = store.head_position().await.unwrap();
    assert_eq!(
        store.read_all_backward(head.next(), 3, &f).await.unwrap(),
        newest_first[..3].to_vec()
    );
    // New events are read from the end at once.
    append_ok(&store, &sid("order-2"), NoStream, evs("Placed", 1)).await;
    let newest = store.read_all_backward(Position::END, 1, &f).await.unwrap();
    assert_eq!(keys(&newest), vec![("order-2".to_string(), 1)]);
    assert_eq!(
        store
            .read_all_backward(newest[0].position, 2, &f)
            .await
            .unwrap(),
        newest_first[..2].to_vec()
    );
}

/// `before` is exclusive, `max_count` caps the page (0 reads nothing, over
/// the store's `max_read_count` is `invalid_input`, as for `read_all`), a
/// bad filter is `invalid_input`, and paging with `before = last.position`
/// visits every event exactly once, whatever the page size.
pub async fn read_all_backward_bound_is_exclusive_and_pages<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    for n in 0..10 {
        let s = sid(if n % 2 == 0 { "account-1" } else { "account-2" });
        append_ok(&store, &s, Any, vec![ev("Deposited", n)]).await;
    }
    let store = h.reopen(store).await;
    let all = all_events(&store).await;
    assert_eq!(all.len(), 10);
    let p = positions(&all);
    let f = ReadFilter::all();
    let back = |before: Position, n: usize| {
        let store = &store;
        let f = &f;
        async move {
            let got = store.read_all_backward(before, n, f).await.unwrap();
            positions(&got)
        }
    };
    let below = |k: usize| p[..k].iter().rev().copied().collect::<Vec<_>>();
    assert_eq!(back(p[3], 100).await, below(3));
    assert_eq!(back(p[3], 2).await, below(3)[..2].to_vec());
    assert_eq!(back(p[3].next(), 1).await, vec![p[3]]);
    assert_eq!(back(p[9], 100).await, below(9));
    assert!(back(p[0], 10).await.is_empty());
    assert!(back(Position::START, 10).await.is_empty());
    assert!(back(Position::END, 0).await.is_empty());
    assert!(back(p[5], 0).await.is_empty());
    assert_eq!(back(Position::END, 100).await, below(10));
    for size in [1, 3, 4, 10, 11] {
        assert_eq!(
            read_all_backward_paged(&store, &f, size).await,
            reversed(&all),
            "backward pages of {size}"
        );
    }
    let max = store.limits().max_read_count;
    if let Some(over) = max.checked_add(1) {
        assert_kind(
            store.read_all_backward(Position::END, over, &f).await,
            "invalid_input",
        );
    }
    assert_eq!(
        store
            .read_all_backward(Position::END, max, &f)
            .await
            .unwrap()
            .len(),
        10
    );
    for bad in [
        ReadFilter::all().stream_prefix("account\0"),
        ReadFilter::all().event_types(["\0"]),
    ] {
        assert_kind(
            store.read_all_backward(Position::END, 10, &bad).await,
            "invalid_input",
        );
    }
}

/// Every filter reads backwards exactly what it reads forwards, newest
/// first: in one read, in pages of one, and from the middle of `$all`.
pub async fn read_all_backward_through_filters<H: StoreHarness>(h: &H) {
    let (store, all) = filter_fixture(h).await;
    let filters = [
        ReadFilter::all().stream(sid("account-1")),
        ReadFilter::all().stream(sid("account")),
        ReadFilter::all().stream(sid("nope-1")),
        ReadFilter::all().stream_prefix("account-1"),
        ReadFilter::all().stream_prefix("account"),
        ReadFilter::all().stream_prefix("order-"),
        ReadFilter::all().stream_prefix("accountant"),
        ReadFilter::all().stream_prefix("zzz"),
        ReadFilter::all().category("account"),
        ReadFilter::all().category("order"),
        ReadFilter::all().event_types(["Opened"]),
        ReadFilter::all().event_types(["Deposited", "Withdrawn"]),
        ReadFilter::all().event_types(["Nope"]),
        ReadFilter::all().correlation_id("c1"),
        ReadFilter::all().correlation_id("c2"),
        ReadFilter::all()
            .category("account")
            .event_types(["Deposited"])
            .correlation_id("c1"),
        ReadFilter::all()
            .stream_prefix("account")
            .event_types(["Opened", "Deposited"]),
        ReadFilter::all()
            .stream(sid("account-1"))
            .event_types(["Deposited"]),
        ReadFilter::all().stream(sid("order-1")).category("account"),
    ];
    for filter in &filters {
        let forward = read_all_filtered(&store, filter).await;
        assert_eq!(
            forward,
            all.iter()
                .filter(|e| filter.matches(e))
                .cloned()
                .collect::<Vec<_>>(),
            "fixture: forward through {filter:?}"
        );
        let newest_first = reversed(&forward);
        let one = store
            .read_all_backward(Position::END, all.len(), filter)
            .await
            .unwrap();
        assert_eq!(one, newest_first, "backward through {filter:?}");
        assert_eq!(
            read_all_backward_paged(&store, filter, 1).await,
            newest_first,
            "backward pages of 1 through {filter:?}"
        );
        // From the middle of `$all`: below it, newest first.
        let mid = all[all.len() / 2].position;
        let below: Vec<RecordedEvent> = newest_first
            .iter()
            .filter(|e| e.position < mid)
            .cloned()
            .collect();
        for n in [1, 2, all.len()] {
            let page = store.read_all_backward(mid, n, filter).await.unwrap();
            assert_eq!(
                page,
                below.iter().take(n).cloned().collect::<Vec<_>>(),
                "read_all_backward before {mid} x{n} through {filter:?}"
            );
        }
    }
}

/// Deleting or tombstoning a stream leaves its events in `$all` read
/// backwards too.
pub async fn read_all_backward_keeps_events_of_deleted_streams<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    let soft = sid("account-1");
    let hard = sid("account-2");
    append_ok(&store, &soft, NoStream, evs("Deposited", 2)).await;
    append_ok(&store, &hard, NoStream, evs("Deposited", 2)).await;
    append_ok(&store, &sid("order-1"), NoStream, evs("Placed", 1)).await;
    let before = all_events(&store).await;
    store.delete_stream(&soft, Any).await.unwrap();
    store.tombstone_stream(&hard, Any).await.unwrap();
    let store = h.reopen(store).await;
    assert_eq!(
        read_all_backward_filtered(&store, &ReadFilter::all()).await,
        reversed(&before)
    );
    for s in [&soft, &hard] {
        for filter in [
            ReadFilter::all().stream(s.clone()),
            ReadFilter::all().stream_prefix(s.as_str()),
        ] {
            let by_stream = read_all_backward_filtered(&store, &filter).await;
            assert_eq!(versions(&by_stream), vec![2, 1], "{filter:?}");
        }
    }
}

/// A NUL in any string of a filter is `invalid_input`, for reads and
/// subscriptions alike, and nothing stored is touched.
pub async fn a_nul_in_a_filter_is_invalid_input<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    append_ok(&store, &sid("account-1"), NoStream, evs("Deposited", 1)).await;
    let bad = [
        ReadFilter::all().stream_prefix("account\0"),
        ReadFilter::all().category("acc\0ount"),
        ReadFilter::all().event_types(["Deposited", "\0"]),
        ReadFilter::all().correlation_id("\0"),
    ];
    for filter in bad {
        assert_kind(
            store.read_all(Position::START, 10, &filter).await,
            "invalid_input",
        );
        match store.subscribe(SubscribeFrom::Start, filter.clone()).await {
            Err(e) => assert_eq!(e.kind(), "invalid_input", "{filter:?}: {e}"),
            Ok(mut sub) => {
                // A store may refuse at the first page instead.
                let first = sub.next().await;
                assert!(
                    matches!(&first, Some(Err(e)) if e.kind() == "invalid_input"),
                    "{filter:?}: {first:?}"
                );
            }
        }
    }
    let all = store
        .read_all(Position::START, 10, &ReadFilter::all())
        .await
        .unwrap();
    assert_eq!(all.len(), 1);
}

/// `head_position` is the position of the last committed event; refused
/// appends, deletes and tombstones do not move it.
pub async fn head_position_tracks_last_event<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    let a = sid("account-1");
    let b = sid("account-2");
    assert_eq!(store.head_position().await.unwrap(), Position::START);
    let r = append_ok(&store, &a, NoStream, evs("Deposited", 3)).await;
    assert_eq!(store.head_position().await.unwrap(), r.last_position);
    let r = append_ok(&store, &b, NoStream, evs("Deposited", 1)).await;
    let store = h.reopen(store).await;
    assert_eq!(store.head_position().await.unwrap(), r.last_position);
    assert_kind(
        store.append(&a, NoStream, evs("Deposited", 1)).await,
        "wrong_expected_version",
    );
    assert_kind(store.append(&a, Any, Vec::new()).await, "invalid_input");
    store.delete_stream(&a, Any).await.unwrap();
    store.tombstone_stream(&b, Any).await.unwrap();
    let store = h.reopen(store).await;
    assert_eq!(store.head_position().await.unwrap(), r.last_position);
    let results = store
        .append_multi(vec![
            StreamAppend::new(a.clone(), NoStream, evs("Deposited", 1)),
            StreamAppend::new(sid("order-1"), NoStream, evs("Placed", 2)),
        ])
        .await
        .unwrap();
    assert_eq!(
        store.head_position().await.unwrap(),
        results[1].last_position
    );
}

/// `health` of an open store is `Ok`, and a head it reports is one the
/// store has committed (it may lag `head_position`, never pass it).
pub async fn health_answers_without_io<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    let a = sid("account-1");
    assert!(store.health().is_ok(), "a fresh store is healthy");
    let r = append_ok(&store, &a, NoStream, evs("Deposited", 3)).await;
    match store.health() {
        Ok(Some(head)) => assert!(
            head <= r.last_position,
            "health reports head {head:?} past the last commit {:?}",
            r.last_position
        ),
        Ok(None) => {}
        Err(e) => panic!("an open store must be healthy, got {e}"),
    }
}

// ---------------------------------------------------------------------------
// Subscriptions.
// ---------------------------------------------------------------------------

/// A subscription from the start delivers the recorded events in order, then
/// exactly one `CaughtUp`, then live events as they commit.
pub async fn subscribe_from_start_catches_up_then_goes_live<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    let s = sid("account-1");
    append_ok(&store, &s, NoStream, evs("Deposited", 3)).await;
    append_ok(&store, &sid("order-1"), NoStream, evs("Placed", 2)).await;
    let store = h.reopen(store).await;
    let recorded = all_events(&store).await;

    let mut sub = store
        .subscribe(SubscribeFrom::Start, ReadFilter::all())
        .await
        .unwrap();
    let caught = receive_events(&mut sub, recorded.len(), true).await;
    assert_eq!(caught.events, recorded);
    let at = caught.assert_one_caught_up("catch-up");
    assert_eq!(caught.caught_up[0].0, recorded.len());
    assert!(at >= recorded.last().unwrap().position);

    let r = append_ok(&store, &s, Exact(3), evs("Withdrawn", 2)).await;
    let e1 = next_event(&mut sub).await;
    let e2 = next_event(&mut sub).await;
    assert_eq!(
        (e1.position, e2.position),
        (r.first_position, r.last_position)
    );
    assert_eq!((e1.version, e2.version), (4, 5));
    assert!(e1.position > at);
    let r = append_ok(&store, &sid("order-2"), NoStream, evs("Placed", 1)).await;
    assert_eq!(next_event(&mut sub).await.position, r.first_position);
    assert_quiet(&mut sub).await;
    assert_eq!(all_events(&store).await.len(), recorded.len() + 3);
}

/// `After(p)` starts right after `p`; `After(START)` is the same as `Start`;
/// `After(head)` only says `CaughtUp`.
pub async fn subscribe_after_position<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    for n in 0..6 {
        append_ok(&store, &sid("account-1"), Any, vec![ev("Deposited", n)]).await;
    }
    let store = h.reopen(store).await;
    let all = all_events(&store).await;
    let f = ReadFilter::all;

    let mut sub = store
        .subscribe(SubscribeFrom::After(all[2].position), f())
        .await
        .unwrap();
    let got = receive_events(&mut sub, 3, true).await;
    assert_eq!(got.events, all[3..].to_vec());
    got.assert_one_caught_up("after p[2]");

    let mut sub = store
        .subscribe(SubscribeFrom::After(Position::START), f())
        .await
        .unwrap();
    let got = receive_events(&mut sub, 6, true).await;
    assert_eq!(got.events, all);
    got.assert_one_caught_up("after START");

    let mut sub = store
        .subscribe(SubscribeFrom::After(all[5].position), f())
        .await
        .unwrap();
    let at = next_caught_up(&mut sub).await;
    assert!(at >= all[5].position);
    let r = append_ok(&store, &sid("account-2"), NoStream, evs("Opened", 1)).await;
    assert_eq!(next_event(&mut sub).await.position, r.first_position);
    assert_quiet(&mut sub).await;
}

/// `End` delivers only events committed after subscribing.
pub async fn subscribe_from_end_sees_only_new_events<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    append_ok(&store, &sid("account-1"), NoStream, evs("Deposited", 4)).await;
    let store = h.reopen(store).await;
    let head = store.head_position().await.unwrap();
    let mut sub = store
        .subscribe(SubscribeFrom::End, ReadFilter::all())
        .await
        .unwrap();
    let at = next_caught_up(&mut sub).await;
    assert!(at >= head);
    let r = append_ok(&store, &sid("account-2"), NoStream, evs("Opened", 2)).await;
    let e1 = next_event(&mut sub).await;
    let e2 = next_event(&mut sub).await;
    assert_eq!(
        (e1.position, e2.position),
        (r.first_position, r.last_position)
    );
    assert_eq!(e1.stream_id.as_str(), "account-2");
    assert_quiet(&mut sub).await;
}

/// On an empty store every kind of subscription says `CaughtUp` first, then
/// delivers the first event.
pub async fn subscribe_on_empty_store<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    let mut subs = Vec::new();
    for from in [
        SubscribeFrom::Start,
        SubscribeFrom::End,
        SubscribeFrom::After(Position::START),
    ] {
        let mut sub = store.subscribe(from, ReadFilter::all()).await.unwrap();
        next_caught_up(&mut sub).await;
        subs.push(sub);
    }
    let r = append_ok(&store, &sid("account-1"), NoStream, evs("Opened", 1)).await;
    for sub in &mut subs {
        let e = next_event(sub).await;
        assert_eq!(e.position, r.first_position);
        assert_quiet(sub).await;
    }
}

/// Catch-up over more events than one subscription page delivers every event
/// once, in order, with one `CaughtUp` at the end.
pub async fn subscription_catches_up_across_many_pages<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    let s = sid("account-1");
    append_ok(&store, &s, NoStream, evs("Deposited", 500)).await;
    append_ok(&store, &sid("order-1"), NoStream, evs("Placed", 100)).await;
    append_ok(&store, &s, Exact(500), evs("Deposited", 500)).await;
    let store = h.reopen(store).await;
    let all = all_events(&store).await;
    assert_eq!(all.len(), 1100);
    let mut sub = store
        .subscribe(SubscribeFrom::Start, ReadFilter::all())
        .await
        .unwrap();
    let got = receive_events(&mut sub, all.len(), true).await;
    assert_eq!(positions(&got.events), positions(&all));
    assert_eq!(got.events, all);
    got.assert_one_caught_up("1100 events");

    let mut filtered = store
        .subscribe(SubscribeFrom::Start, ReadFilter::all().stream(s.clone()))
        .await
        .unwrap();
    let got = receive_events(&mut filtered, 1000, true).await;
    assert_eq!(versions(&got.events), (1..=1000).collect::<Vec<_>>());
    got.assert_one_caught_up("1000 filtered events");
}

/// While 8 writers append, subscriptions started from the start, from the end
/// and with a filter hand off from catch-up to live without a gap or a
/// duplicate: checked position by position against the final `$all`.
pub async fn subscription_handoff_under_concurrent_writers<H: StoreHarness>(h: &H) {
    const WRITERS: usize = 8;
    const PER_WRITER: u64 = 50;
    const PRELOAD: u64 = 20;
    let store = h.open().await;
    append_ok(&store, &sid("pre-1"), NoStream, evs("Preloaded", PRELOAD)).await;
    let store = Arc::new(h.reopen(store).await);

    let barrier = Arc::new(Barrier::new(WRITERS + 1));
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let store = store.clone();
        let barrier = barrier.clone();
        writers.push(tokio::spawn(async move {
            let s = sid(&format!("w-{w}"));
            barrier.wait().await;
            for n in 1..=PER_WRITER {
                store
                    .append(&s, Exact(n - 1), vec![ev("Written", n)])
                    .await
                    .unwrap_or_else(|e| panic!("writer {w} append {n}: {e}"));
                tokio::task::yield_now().await;
            }
        }));
    }
    barrier.wait().await;
    let mut from_start = store
        .subscribe(SubscribeFrom::Start, ReadFilter::all())
        .await
        .unwrap();
    let head_before_end = store.head_position().await.unwrap();
    let mut from_end = store
        .subscribe(SubscribeFrom::End, ReadFilter::all())
        .await
        .unwrap();
    let head_after_end = store.head_position().await.unwrap();
    let mut only_w3 = store
        .subscribe(SubscribeFrom::Start, ReadFilter::all().stream_prefix("w-3"))
        .await
        .unwrap();

    let is_sentinel = |e: &RecordedEvent| e.stream_id.as_str() == "end-1";
    let sentinel_writer = {
        let store = store.clone();
        async move {
            for w in writers {
                w.await.expect("writer panicked");
            }
            append_ok(&*store, &sid("end-1"), NoStream, evs("End", 1)).await;
        }
    };
    let (start_got, end_got, w3_got, ()) = tokio::join!(
        receive_until(&mut from_start, is_sentinel),
        receive_until(&mut from_end, is_sentinel),
        receive_until(&mut only_w3, |e| e.version == PER_WRITER),
        sentinel_writer,
    );
    drop((from_start, from_end, only_w3));
    let store = h.reopen(unwrap_arc(store)).await;
    let all = all_events(&store).await;
    assert_eq!(all.len() as u64, PRELOAD + WRITERS as u64 * PER_WRITER + 1);
    assert_strictly_increasing(&all);

    // From the start: every position exactly once, in order.
    assert_eq!(positions(&start_got.events), positions(&all));
    assert_eq!(start_got.events, all);
    start_got.assert_one_caught_up("from start");

    // From the end: a gapless suffix of `$all` that begins after the head at
    // subscribe time and no later than the first event after it.
    end_got.assert_one_caught_up("from end");
    let first = end_got.events.first().expect("the sentinel at least");
    assert!(first.position > head_before_end);
    let start_index = all
        .iter()
        .position(|e| e.position == first.position)
        .expect("delivered event is in $all");
    let first_after = all
        .iter()
        .position(|e| e.position > head_after_end)
        .expect("the sentinel is after the head");
    assert!(start_index <= first_after, "from end skipped events");
    assert_eq!(end_got.events, all[start_index..].to_vec());

    // Filtered: exactly writer 3's events, in version order.
    w3_got.assert_one_caught_up("filtered");
    let expected: Vec<RecordedEvent> = all
        .iter()
        .filter(|e| e.stream_id.as_str() == "w-3")
        .cloned()
        .collect();
    assert_eq!(w3_got.events, expected);
    assert_eq!(
        versions(&w3_got.events),
        (1..=PER_WRITER).collect::<Vec<_>>()
    );
}

/// A filtered subscription delivers exactly the matching events, in catch-up
/// and live, and nothing else.
pub async fn filtered_subscription_sees_exactly_matching_events<H: StoreHarness>(h: &H) {
    let (store, all) = filter_fixture(h).await;
    let filter = ReadFilter::all()
        .category("account")
        .event_types(["Deposited", "Opened"]);
    let matches = |e: &RecordedEvent| {
        category(e) == "account" && (e.event_type == "Deposited" || e.event_type == "Opened")
    };
    let expected: Vec<RecordedEvent> = all.iter().filter(|e| matches(e)).cloned().collect();
    let mut sub = store
        .subscribe(SubscribeFrom::Start, filter.clone())
        .await
        .unwrap();
    let got = receive_events(&mut sub, expected.len(), true).await;
    assert_eq!(got.events, expected);
    got.assert_one_caught_up("filtered catch-up");

    // Live: interleave matching and non-matching events.
    let plan = [
        ("order-1", "Deposited", false),
        ("account-3", "Opened", true),
        ("accountant-1", "Deposited", false),
        ("account-1", "Audited", false),
        ("account-3", "Deposited", true),
        ("order-9", "Placed", false),
    ];
    let mut live_expected = Vec::new();
    for (n, (stream, ty, matching)) in plan.iter().enumerate() {
        let r = append_ok(&store, &sid(stream), Any, vec![ev(ty, n as u64)]).await;
        if *matching {
            live_expected.push(r.first_position);
        }
    }
    for p in &live_expected {
        let e = next_event(&mut sub).await;
        assert_eq!(e.position, *p);
        assert!(matches(&e));
    }
    // The trailing non-matching event must not come through: the next thing
    // delivered is the next matching event.
    let r = append_ok(&store, &sid("account-4"), Any, vec![ev("Deposited", 99)]).await;
    assert_eq!(next_event(&mut sub).await.position, r.first_position);
    assert_quiet(&mut sub).await;
}

// ---------------------------------------------------------------------------
// Concurrency.
// ---------------------------------------------------------------------------

/// 16 tasks append with the same expected version at once: exactly one wins,
/// the others get `WrongExpectedVersion` with `actual` = the winner's version.
pub async fn concurrent_appends_with_same_expected_version_one_wins<H: StoreHarness>(h: &H) {
    const TASKS: usize = 16;
    let store = h.open().await;
    let s = sid("account-1");
    let fresh = sid("account-2");
    append_ok(&store, &s, NoStream, evs("Opened", 2)).await;
    let store = Arc::new(h.reopen(store).await);

    // An existing stream, guarded with Exact(2), one event per task.
    let results = race(TASKS, |i| {
        let store = store.clone();
        let s = s.clone();
        let id = EventId::new();
        async move {
            (
                id,
                store
                    .append(&s, Exact(2), vec![ev("Deposited", i as u64).with_id(id)])
                    .await,
            )
        }
    })
    .await;
    let winners: Vec<_> = results.iter().filter(|(_, r)| r.is_ok()).collect();
    assert_eq!(winners.len(), 1, "exactly one append may win: {results:?}");
    let (winner_id, winner) = winners[0];
    let winner = winner.as_ref().unwrap();
    assert_eq!(winner.next_expected_version, 3);
    for (_, r) in &results {
        if let Err(e) = r {
            match e {
                Error::WrongExpectedVersion {
                    stream,
                    expected,
                    actual,
                } => {
                    assert_eq!(stream, &s);
                    assert_eq!(*expected, Exact(2));
                    assert_eq!(*actual, CurrentVersion::Current(3));
                }
                other => panic!("a losing append must get WrongExpectedVersion, got {other:?}"),
            }
        }
    }

    // A new stream, guarded with NoStream, two events per task.
    let results = race(TASKS, |i| {
        let store = store.clone();
        let fresh = fresh.clone();
        async move {
            store
                .append(&fresh, NoStream, evs(&format!("Opened{i}"), 2))
                .await
        }
    })
    .await;
    let wins = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(wins, 1, "exactly one NoStream append may win: {results:?}");
    for r in results {
        if let Err(e) = r {
            assert_wev(
                Err::<(), _>(e),
                &fresh,
                NoStream,
                CurrentVersion::Current(2),
            );
        }
    }

    let store = h.reopen(unwrap_arc(store)).await;
    let read = read_fwd(&store, &s).await;
    assert_eq!(versions(&read), vec![1, 2, 3]);
    assert_eq!(read[2].id, *winner_id);
    let read = read_fwd(&store, &fresh).await;
    assert_eq!(versions(&read), vec![1, 2]);
    assert_eq!(read[0].event_type, read[1].event_type);
    assert_eq!(all_events(&store).await.len(), 5);
}

/// 16 tasks append two events at a time with `Any` to one stream: every
/// append lands whole (adjacent versions and positions), versions are
/// contiguous, and results match what is read back.
pub async fn concurrent_appends_with_any_are_atomic_and_contiguous<H: StoreHarness>(h: &H) {
    const TASKS: usize = 16;
    const APPENDS: u64 = 5;
    let store = Arc::new(h.open().await);
    let s = sid("account-1");
    let results = race(TASKS, |t| {
        let store = store.clone();
        let s = s.clone();
        async move {
            let mut out = Vec::new();
            for n in 0..APPENDS {
                let events = vec![
                    ev(&format!("T{t}"), 2 * n).with_id(EventId::new()),
                    ev(&format!("T{t}"), 2 * n + 1).with_id(EventId::new()),
                ];
                let r = store.append(&s, Any, events.clone()).await.unwrap();
                out.push((r, ids_of(&events)));
                tokio::task::yield_now().await;
            }
            out
        }
    })
    .await;
    let store = h.reopen(unwrap_arc(store)).await;
    let read = read_fwd(&store, &s).await;
    let total = TASKS as u64 * APPENDS * 2;
    assert_eq!(versions(&read), (1..=total).collect::<Vec<_>>());
    assert_strictly_increasing(&read);
    let mut next_versions = HashSet::new();
    for (r, ids) in results.into_iter().flatten() {
        assert!(next_versions.insert(r.next_expected_version));
        let v = r.next_expected_version as usize;
        let (first, second) = (&read[v - 2], &read[v - 1]);
        assert_eq!((first.id, second.id), (ids[0], ids[1]));
        assert_eq!(first.position, r.first_position);
        assert_eq!(second.position, r.last_position);
        let between = store
            .read_all(r.first_position, 2, &ReadFilter::all())
            .await
            .unwrap();
        assert_eq!(between, vec![first.clone(), second.clone()]);
    }
}

/// 8 tasks append to their own streams at once: every stream is contiguous
/// and `$all` holds each event once, at the position its append reported.
pub async fn concurrent_appends_to_many_streams<H: StoreHarness>(h: &H) {
    const TASKS: usize = 8;
    const APPENDS: u64 = 20;
    let store = Arc::new(h.open().await);
    let results = race(TASKS, |t| {
        let store = store.clone();
        async move {
            let s = sid(&format!("account-{t}"));
            let mut out = Vec::new();
            for n in 0..APPENDS {
                let r = store
                    .append(&s, Exact(n), vec![ev("Deposited", n)])
                    .await
                    .unwrap();
                assert_eq!(r.next_expected_version, n + 1);
                out.push((s.clone(), r));
            }
            out
        }
    })
    .await;
    let store = h.reopen(unwrap_arc(store)).await;
    let all = all_events(&store).await;
    assert_eq!(all.len(), TASKS * APPENDS as usize);
    assert_strictly_increasing(&all);
    let by_position: BTreeMap<Position, &RecordedEvent> =
        all.iter().map(|e| (e.position, e)).collect();
    for (s, r) in results.into_iter().flatten() {
        let e = by_position
            .get(&r.first_position)
            .expect("reported position is in $all");
        assert_eq!((&e.stream_id, e.version), (&s, r.next_expected_version));
    }
    for t in 0..TASKS {
        let read = read_fwd(&store, &sid(&format!("account-{t}"))).await;
        assert_eq!(versions(&read), (1..=APPENDS).collect::<Vec<_>>());
    }
}

/// Readers running alongside writers never see part of an append: every
/// complete read of `$all` or of a stream holds whole multi-event appends and
/// both parts of every `append_multi`.
pub async fn appends_are_atomic_to_concurrent_readers<H: StoreHarness>(h: &H) {
    const WRITERS: usize = 4;
    const ROUNDS: u64 = 15;
    const READERS: usize = 2;
    let store = Arc::new(h.open().await);
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let check = |all: &[RecordedEvent]| {
        let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
        for e in all {
            *counts.entry(e.stream_id.as_str()).or_default() += 1;
        }
        for w in 0..WRITERS {
            let n = |prefix: &str| {
                counts
                    .get(format!("{prefix}-{w}").as_str())
                    .copied()
                    .unwrap_or(0)
            };
            assert_eq!(
                n("batch") % 3,
                0,
                "a reader saw part of a 3-event append: {counts:?}"
            );
            assert_eq!(
                n("left"),
                n("right"),
                "a reader saw one part of an append_multi: {counts:?}"
            );
        }
    };
    let mut readers = Vec::new();
    for _ in 0..READERS {
        let store = store.clone();
        let done = done.clone();
        readers.push(tokio::spawn(async move {
            let page = page(&*store);
            let mut complete_reads = 0;
            loop {
                let finished = done.load(std::sync::atomic::Ordering::SeqCst);
                let all = store
                    .read_all(Position::START, page, &ReadFilter::all())
                    .await
                    .unwrap();
                if all.len() < page {
                    check(&all);
                    complete_reads += 1;
                }
                for w in 0..WRITERS {
                    match store
                        .read_stream(&sid(&format!("batch-{w}")), 1, page, Direction::Forward)
                        .await
                    {
                        Ok(events) if events.len() < page => {
                            assert_eq!(events.len() % 3, 0, "a stream read saw part of an append");
                        }
                        Ok(_) | Err(Error::StreamNotFound { .. }) => {}
                        Err(e) => panic!("read_stream failed: {e}"),
                    }
                }
                if finished {
                    return complete_reads;
                }
                tokio::task::yield_now().await;
            }
        }));
    }
    race(WRITERS, |w| {
        let store = store.clone();
        async move {
            let batch = sid(&format!("batch-{w}"));
            for n in 0..ROUNDS {
                store
                    .append(&batch, Exact(3 * n), evs("Deposited", 3))
                    .await
                    .unwrap();
                store
                    .append_multi(vec![
                        StreamAppend::new(sid(&format!("left-{w}")), Exact(n), evs("Moved", 1)),
                        StreamAppend::new(sid(&format!("right-{w}")), Exact(n), evs("Moved", 1)),
                    ])
                    .await
                    .unwrap();
                tokio::task::yield_now().await;
            }
        }
    })
    .await;
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    for r in readers {
        let complete_reads = r.await.expect("reader panicked");
        assert!(complete_reads > 0);
    }
    let store = h.reopen(unwrap_arc(store)).await;
    let all = all_events(&store).await;
    assert_eq!(all.len() as u64, WRITERS as u64 * ROUNDS * 5);
    check(&all);
}

// ---------------------------------------------------------------------------
// Bad input.
// ---------------------------------------------------------------------------

/// `StreamId::new` refuses empty, over-long (256 bytes), `$`-prefixed and
/// control-character names, so no store can be handed one.
pub async fn stream_names_are_validated<H: StoreHarness>(h: &H) {
    for bad in [
        String::new(),
        "x".repeat(256),
        "é".repeat(128),
        "$all".to_string(),
        "$ce-account".to_string(),
        "account\n1".to_string(),
        "account\u{0}1".to_string(),
        "\t".to_string(),
        "account-\u{7f}".to_string(),
    ] {
        assert_kind(StreamId::new(&bad), "invalid_input");
    }
    // The longest valid name works end to end.
    let store = h.open().await;
    let longest = StreamId::new("x".repeat(255)).unwrap();
    append_ok(&store, &longest, NoStream, evs("Opened", 1)).await;
    let store = h.reopen(store).await;
    let read = read_fwd(&store, &longest).await;
    assert_eq!(read[0].stream_id, longest);
    assert!(StreamId::new("ünïcödé-stream").is_ok());
}

/// An append without events is invalid input and creates nothing.
pub async fn empty_append_refused<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    let s = sid("account-1");
    let existing = sid("account-2");
    append_ok(&store, &existing, NoStream, evs("Opened", 1)).await;
    let before = snapshot(&store, &[&s, &existing]).await;
    for expected in [Any, NoStream, Exact(0)] {
        assert_kind(
            store.append(&s, expected, Vec::new()).await,
            "invalid_input",
        );
    }
    assert_kind(
        store.append(&existing, Exact(1), Vec::new()).await,
        "invalid_input",
    );
    let store = h.reopen(store).await;
    assert_unchanged(&before, &snapshot(&store, &[&s, &existing]).await, "empty");
    assert_eq!(store.stream_info(&s).await.unwrap(), None);
}

/// An empty or over-long event type is invalid input; nothing is written.
pub async fn bad_event_types_refused<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    let s = sid("account-1");
    let before = snapshot(&store, &[&s]).await;
    assert_kind(
        store.append(&s, Any, vec![ev("", 1)]).await,
        "invalid_input",
    );
    assert_kind(
        store
            .append(&s, Any, vec![ev("Opened", 1), ev("", 2)])
            .await,
        "invalid_input",
    );
    let too_long = "T".repeat(store.limits().max_event_type_bytes + 1);
    assert_kind(
        store.append(&s, Any, vec![ev(&too_long, 1)]).await,
        "invalid_input",
    );
    let store = h.reopen(store).await;
    assert_unchanged(&before, &snapshot(&store, &[&s]).await, "bad types");
    let longest = "T".repeat(store.limits().max_event_type_bytes);
    append_ok(&store, &s, NoStream, vec![ev(&longest, 1)]).await;
    assert_eq!(read_fwd(&store, &s).await[0].event_type, longest);
}

/// Data declared JSON must parse; the same bytes as binary are stored as is.
pub async fn invalid_json_refused_binary_accepted<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    let s = sid("account-1");
    let before = snapshot(&store, &[&s]).await;
    for bad in [
        &b"{\"amount\": 1"[..],
        b"",
        b"not json",
        b"{\"a\":1} trailing",
        b"\xff\xfe",
    ] {
        assert_kind(
            store
                .append(&s, Any, vec![NewEvent::json_bytes("Deposited", bad)])
                .await,
            "invalid_input",
        );
    }
    // Bytes put in place of data a constructor vouched for as JSON are
    // parsed like any others.
    let raw = serde_json::value::RawValue::from_string("{}".to_owned()).unwrap();
    for vouched in [
        NewEvent::json("Deposited", &serde_json::json!({"amount": 1})).unwrap(),
        NewEvent::raw_json("Deposited", raw),
    ] {
        let swapped = NewEvent {
            data: Bytes::from_static(b"{\"amount\": 1"),
            ..vouched
        };
        assert_kind(store.append(&s, Any, vec![swapped]).await, "invalid_input");
    }
    let store = h.reopen(store).await;
    assert_unchanged(&before, &snapshot(&store, &[&s]).await, "invalid JSON");
    let bytes = Bytes::from_static(b"{\"amount\": 1");
    append_ok(
        &store,
        &s,
        NoStream,
        vec![NewEvent::new(
            "Deposited",
            bytes.clone(),
            ContentType::Binary,
        )],
    )
    .await;
    let store = h.reopen(store).await;
    let read = read_fwd(&store, &s).await;
    assert_eq!(read[0].data, bytes);
    assert_eq!(read[0].content_type, ContentType::Binary);
}

/// An event over `limits().max_event_bytes` is refused as too large
/// (`payload_too_large`, not `invalid_input`) and takes the rest of its
/// append down with it; an event exactly at the limit is fine.
pub async fn oversized_event_refused<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    let max = store.limits().max_event_bytes;
    if max > 64 * 1024 * 1024 {
        eprintln!("oversized_event_refused: max_event_bytes = {max} is too large to test");
        return;
    }
    let s = sid("account-1");
    let before = snapshot(&store, &[&s]).await;
    let sized = |size: usize| {
        let e = NewEvent::new("Blob", Bytes::new(), ContentType::Binary);
        let data = vec![7u8; size - e.size_bytes()];
        NewEvent::new("Blob", data, ContentType::Binary)
    };
    let over = sized(max + 1);
    assert_eq!(over.size_bytes(), max + 1);
    assert_kind(
        store.append(&s, Any, vec![over.clone()]).await,
        "payload_too_large",
    );
    assert_kind(
        store.append(&s, Any, vec![ev("Opened", 1), over]).await,
        "payload_too_large",
    );
    let store = h.reopen(store).await;
    assert_unchanged(&before, &snapshot(&store, &[&s]).await, "oversized");
    let at_limit = sized(max);
    append_ok(&store, &s, NoStream, vec![at_limit.clone()]).await;
    let store = h.reopen(store).await;
    assert_eq!(read_fwd(&store, &s).await[0].data, at_limit.data);
}

/// More than `limits().max_events_per_append` events in one append (or in one
/// `append_multi`) is refused as too large (`payload_too_large`); nothing is
/// written.
pub async fn too_many_events_refused<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    let max = store.limits().max_events_per_append;
    if max > 1_000_000 {
        eprintln!("too_many_events_refused: max_events_per_append = {max} is too large to test");
        return;
    }
    let a = sid("account-1");
    let b = sid("account-2");
    let before = snapshot(&store, &[&a, &b]).await;
    let tiny = || NewEvent::new("E", Bytes::new(), ContentType::Binary);
    let many: Vec<NewEvent> = (0..=max).map(|_| tiny()).collect();
    assert_kind(store.append(&a, Any, many).await, "payload_too_large");
    let half = max / 2 + 1;
    assert_kind(
        store
            .append_multi(vec![
                StreamAppend::new(a.clone(), Any, (0..half).map(|_| tiny()).collect()),
                StreamAppend::new(b.clone(), Any, (0..half).map(|_| tiny()).collect()),
            ])
            .await,
        "payload_too_large",
    );
    let store = h.reopen(store).await;
    assert_unchanged(
        &before,
        &snapshot(&store, &[&a, &b]).await,
        "too many events",
    );
}

/// A read asking for more than `limits().max_read_count` events is invalid
/// input; asking for exactly the limit is fine.
pub async fn read_count_over_limit_refused<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    let max = store.limits().max_read_count;
    let s = sid("account-1");
    append_ok(&store, &s, NoStream, evs("Deposited", 2)).await;
    let store = h.reopen(store).await;
    if let Some(over) = max.checked_add(1) {
        for direction in [Direction::Forward, Direction::Backward] {
            assert_kind(
                store.read_stream(&s, 1, over, direction).await,
                "invalid_input",
            );
        }
        assert_kind(
            store
                .read_all(Position::START, over, &ReadFilter::all())
                .await,
            "invalid_input",
        );
    }
    assert_eq!(
        store
            .read_stream(&s, 1, max, Direction::Forward)
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        store
            .read_all(Position::START, max, &ReadFilter::all())
            .await
            .unwrap()
            .len(),
        2
    );
}

// ---------------------------------------------------------------------------
// Time, stream info, deletion.
// ---------------------------------------------------------------------------

/// `recorded_at` never decreases along `$all` and is close to the wall clock.
pub async fn recorded_at_never_decreases<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    for n in 0..12u64 {
        let s = sid(&format!("account-{}", n % 3));
        append_ok(&store, &s, Any, evs("Deposited", n % 3 + 1)).await;
        if n % 4 == 0 {
            store
                .append_multi(vec![
                    StreamAppend::new(sid("order-1"), Any, evs("Placed", 2)),
                    StreamAppend::new(sid("order-2"), Any, evs("Placed", 1)),
                ])
                .await
                .unwrap();
        }
    }
    let store = h.reopen(store).await;
    append_ok(&store, &sid("account-9"), Any, evs("Deposited", 2)).await;
    let all = all_events(&store).await;
    for w in all.windows(2) {
        assert!(
            w[0].recorded_at <= w[1].recorded_at,
            "recorded_at went back from {} to {} between positions {} and {}",
            w[0].recorded_at,
            w[1].recorded_at,
            w[0].position,
            w[1].position
        );
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64;
    for e in [&all[0], all.last().unwrap()] {
        let t = e.recorded_at.timestamp();
        assert!(
            (now - t).abs() < 3600,
            "recorded_at {} is far from now",
            e.recorded_at
        );
    }
}

/// `stream_info` is `None` for a stream never written and describes a live one.
pub async fn stream_info_of_missing_and_live_streams<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    let s = sid("account-1");
    assert_eq!(store.stream_info(&s).await.unwrap(), None);
    append_ok(&store, &s, NoStream, evs("Deposited", 2)).await;
    let r = append_ok(&store, &s, Exact(2), evs("Deposited", 1)).await;
    append_ok(&store, &sid("account-2"), NoStream, evs("Deposited", 1)).await;
    let store = h.reopen(store).await;
    assert_eq!(
        store.stream_info(&s).await.unwrap(),
        Some(StreamInfo {
            stream: s.clone(),
            version: 3,
            first_readable_version: 1,
            state: StreamState::Live,
            last_position: Some(r.last_position),
        })
    );
    assert_eq!(store.stream_info(&sid("account-3")).await.unwrap(), None);
}

/// A soft-deleted stream's info says `Deleted` with nothing readable; once
/// re-created it is `Live` from the first version after the delete.
pub async fn stream_info_of_deleted_and_recreated_streams<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    let s = sid("account-1");
    let r = append_ok(&store, &s, NoStream, evs("Deposited", 3)).await;
    store.delete_stream(&s, Exact(3)).await.unwrap();
    let store = h.reopen(store).await;
    assert_eq!(
        store.stream_info(&s).await.unwrap(),
        Some(StreamInfo {
            stream: s.clone(),
            version: 3,
            first_readable_version: 4,
            state: StreamState::Deleted,
            last_position: Some(r.last_position),
        })
    );
    let r = append_ok(&store, &s, NoStream, evs("Deposited", 2)).await;
    let store = h.reopen(store).await;
    assert_eq!(
        store.stream_info(&s).await.unwrap(),
        Some(StreamInfo {
            stream: s.clone(),
            version: 5,
            first_readable_version: 4,
            state: StreamState::Live,
            last_position: Some(r.last_position),
        })
    );
    store.delete_stream(&s, Exact(5)).await.unwrap();
    let info = store.stream_info(&s).await.unwrap().expect("info");
    assert_eq!(
        (info.state, info.version, info.first_readable_version),
        (StreamState::Deleted, 5, 6)
    );
}

/// A tombstoned stream's info says `Tombstoned` with nothing readable
/// (`first_readable_version = version + 1`), whether or not it had events.
pub async fn stream_info_of_tombstoned_streams<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    let s = sid("account-1");
    let never = sid("account-2");
    let r = append_ok(&store, &s, NoStream, evs("Deposited", 2)).await;
    store.tombstone_stream(&s, Exact(2)).await.unwrap();
    store.tombstone_stream(&never, NoStream).await.unwrap();
    let store = h.reopen(store).await;
    assert_eq!(
        store.stream_info(&s).await.unwrap(),
        Some(StreamInfo {
            stream: s.clone(),
            version: 2,
            first_readable_version: 3,
            state: StreamState::Tombstoned,
            last_position: Some(r.last_position),
        })
    );
    assert_eq!(
        store.stream_info(&never).await.unwrap(),
        Some(StreamInfo {
            stream: never.clone(),
            version: 0,
            first_readable_version: 1,
            state: StreamState::Tombstoned,
            last_position: None,
        })
    );
}

/// `delete_stream` checks its guard: a wrong one fails with the actual
/// version and deletes nothing; a right one deletes.
pub async fn delete_stream_guards<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    let names = ["account-1", "account-2", "account-3"];
    let streams: Vec<StreamId> = names.iter().map(|n| sid(n)).collect();
    for s in &streams {
        append_ok(&store, s, NoStream, evs("Deposited", 2)).await;
    }
    let store = h.reopen(store).await;
    let refs: Vec<&StreamId> = streams.iter().collect();
    let before = snapshot(&store, &refs).await;
    for s in &streams {
        for expected in [Exact(1), Exact(3), NoStream, Exact(0)] {
            assert_wev(
                store.delete_stream(s, expected).await,
                s,
                expected,
                CurrentVersion::Current(2),
            );
        }
    }
    let store = h.reopen(store).await;
    assert_unchanged(
        &before,
        &snapshot(&store, &refs).await,
        "wrong delete guards",
    );
    for (s, expected) in streams.iter().zip([Exact(2), StreamExists, Any]) {
        store.delete_stream(s, expected).await.unwrap();
    }
    let store = h.reopen(store).await;
    for s in &streams {
        assert_not_found(store.read_stream(s, 1, 10, Direction::Forward).await, s);
        assert_eq!(
            store.stream_info(s).await.unwrap().map(|i| i.state),
            Some(StreamState::Deleted)
        );
    }
}

/// Deleting a stream with no live events (never written, or already deleted)
/// fails with `StreamNotFound`; deleting a tombstoned one with `StreamDeleted`.
pub async fn delete_missing_or_deleted_stream_not_found<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    let missing = sid("account-1");
    let deleted = sid("account-2");
    let dead = sid("account-3");
    append_ok(&store, &deleted, NoStream, evs("Deposited", 1)).await;
    store.delete_stream(&deleted, Exact(1)).await.unwrap();
    append_ok(&store, &dead, NoStream, evs("Deposited", 1)).await;
    store.tombstone_stream(&dead, Exact(1)).await.unwrap();
    let store = h.reopen(store).await;
    for expected in [Any, NoStream, StreamExists, Exact(1)] {
        assert_not_found(store.delete_stream(&missing, expected).await, &missing);
        assert_not_found(store.delete_stream(&deleted, expected).await, &deleted);
        assert_deleted(store.delete_stream(&dead, expected).await, &dead);
    }
    let store = h.reopen(store).await;
    assert_eq!(store.stream_info(&missing).await.unwrap(), None);
    assert_eq!(
        store.stream_info(&deleted).await.unwrap().map(|i| i.state),
        Some(StreamState::Deleted)
    );
}

/// A never-written stream can be tombstoned; then appends, reads, deletes and
/// tombstones all fail with `StreamDeleted`, for ever.
pub async fn tombstone_never_written_stream<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    let s = sid("account-1");
    store.tombstone_stream(&s, NoStream).await.unwrap();
    let store = h.reopen(store).await;
    for expected in [Any, NoStream, Exact(0)] {
        assert_deleted(store.append(&s, expected, evs("Opened", 1)).await, &s);
    }
    assert_deleted(store.read_stream(&s, 1, 10, Direction::Forward).await, &s);
    assert_deleted(store.delete_stream(&s, Any).await, &s);
    assert_deleted(store.tombstone_stream(&s, Any).await, &s);
    let store = h.reopen(store).await;
    assert_deleted(store.append(&s, Any, evs("Opened", 1)).await, &s);
    assert_eq!(store.head_position().await.unwrap(), Position::START);
    assert!(all_events(&store).await.is_empty());
}

/// `tombstone_stream` checks its guard; a soft-deleted stream counts as absent.
pub async fn tombstone_guards<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    let s = sid("account-1");
    let soft = sid("account-2");
    append_ok(&store, &s, NoStream, evs("Deposited", 2)).await;
    append_ok(&store, &soft, NoStream, evs("Deposited", 2)).await;
    store.delete_stream(&soft, Exact(2)).await.unwrap();
    let store = h.reopen(store).await;
    for expected in [Exact(1), Exact(3), NoStream, Exact(0)] {
        assert_wev(
            store.tombstone_stream(&s, expected).await,
            &s,
            expected,
            CurrentVersion::Current(2),
        );
    }
    for expected in [StreamExists, Exact(2)] {
        assert_wev(
            store.tombstone_stream(&soft, expected).await,
            &soft,
            expected,
            CurrentVersion::NoStream,
        );
    }
    let store = h.reopen(store).await;
    assert_eq!(versions(&read_fwd(&store, &s).await), vec![1, 2]);
    store.tombstone_stream(&s, Exact(2)).await.unwrap();
    store.tombstone_stream(&soft, NoStream).await.unwrap();
    let store = h.reopen(store).await;
    assert_deleted(store.read_stream(&s, 1, 10, Direction::Forward).await, &s);
    assert_deleted(store.append(&soft, NoStream, evs("Opened", 1)).await, &soft);
}

// ---------------------------------------------------------------------------
// Event content and ids.
// ---------------------------------------------------------------------------

/// Data bytes, content type and every metadata field come back exactly as
/// appended, from stream reads, `$all` and subscriptions.
pub async fn metadata_and_content_type_round_trip<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    let s = sid("account-1");
    let full = Metadata::default()
        .with_correlation_id("corr-ü-1")
        .with_causation_id("cause-2")
        .with_user_id("ada@example.com")
        .with_source("teller/7")
        .with("tenant", "acme")
        .with("emoji", "🦀")
        .with("empty", "");
    let events = vec![
        NewEvent::json_bytes(
            "Deposited",
            &b"{ \"amount\" : \"10.00\",\n \"z\": [1, 2.50] }"[..],
        )
        .with_metadata(full),
        NewEvent::new("Blob", vec![0u8, 255, 1, 254, b'{'], ContentType::Binary)
            .with_metadata(Metadata::default().with_user_id("bob")),
        NewEvent::json_bytes("Null", &b"null"[..]),
        NewEvent::new("Empty", Bytes::new(), ContentType::Binary),
    ];
    append_ok(&store, &s, NoStream, events.clone()).await;
    let store = h.reopen(store).await;

    let check = |read: &[RecordedEvent], how: &str| {
        assert_eq!(read.len(), events.len(), "{how}");
        for (got, sent) in read.iter().zip(&events) {
            assert_eq!(got.event_type, sent.event_type, "{how}");
            assert_eq!(
                got.data, sent.data,
                "{how}: data bytes must be kept exactly"
            );
            assert_eq!(got.content_type, sent.content_type, "{how}");
            assert_eq!(got.metadata, sent.metadata, "{how}");
        }
    };
    check(&read_fwd(&store, &s).await, "read_stream");
    check(&all_events(&store).await, "read_all");
    let mut sub = store
        .subscribe(SubscribeFrom::Start, ReadFilter::all())
        .await
        .unwrap();
    let got = receive_events(&mut sub, events.len(), true).await;
    check(&got.events, "subscribe");
}

/// Events appended without ids get unique UUID v7 ids, stable across reads.
pub async fn generated_ids_are_unique_uuid_v7<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    append_ok(&store, &sid("account-1"), NoStream, evs("Deposited", 10)).await;
    append_ok(&store, &sid("account-2"), NoStream, evs("Deposited", 5)).await;
    store
        .append_multi(vec![
            StreamAppend::new(sid("account-1"), Exact(10), evs("Deposited", 3)),
            StreamAppend::new(sid("order-1"), NoStream, evs("Placed", 2)),
        ])
        .await
        .unwrap();
    let first_read = all_events(&store).await;
    let store = h.reopen(store).await;
    let all = all_events(&store).await;
    assert_eq!(all.len(), 20);
    let ids: HashSet<EventId> = all.iter().map(|e| e.id).collect();
    assert_eq!(ids.len(), all.len(), "generated ids must be unique");
    for e in &all {
        assert_eq!(
            e.id.as_uuid().get_version_num(),
            7,
            "generated id {} is not a UUID v7",
            e.id
        );
    }
    let first_ids: Vec<EventId> = first_read.iter().map(|e| e.id).collect();
    let ids: Vec<EventId> = all.iter().map(|e| e.id).collect();
    assert_eq!(first_ids, ids, "ids must not change between reads");
}

/// Supplied ids are kept as given (any UUID version), alongside generated ones.
pub async fn supplied_ids_are_kept<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    let s = sid("account-1");
    let v4 = EventId(uuid::Uuid::new_v4());
    let fixed = EventId(uuid::Uuid::from_u128(
        0x0123_4567_89ab_cdef_0123_4567_89ab_cdef,
    ));
    let v7 = EventId::new();
    let events = vec![
        ev("Opened", 1).with_id(v4),
        ev("Deposited", 2),
        ev("Deposited", 3).with_id(fixed),
        ev("Deposited", 4).with_id(v7),
    ];
    append_ok(&store, &s, NoStream, events).await;
    let store = h.reopen(store).await;
    let read = read_fwd(&store, &s).await;
    assert_eq!(read[0].id, v4);
    assert_eq!(read[2].id, fixed);
    assert_eq!(read[3].id, v7);
    assert!(![v4, fixed, v7].contains(&read[1].id));
}

/// Everything survives a reopen, and appends after it continue the versions
/// and positions where they left off.
pub async fn events_survive_reopen<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    let a = sid("account-1");
    let b = sid("account-2");
    append_ok(&store, &a, NoStream, with_ids("Deposited", 3)).await;
    append_ok(&store, &b, NoStream, evs("Deposited", 2)).await;
    store.delete_stream(&b, Exact(2)).await.unwrap();
    let before = snapshot(&store, &[&a, &b]).await;
    let store = h.reopen(store).await;
    let store = h.reopen(store).await;
    assert_unchanged(&before, &snapshot(&store, &[&a, &b]).await, "reopen");
    let r = append_ok(&store, &a, Exact(3), evs("Deposited", 1)).await;
    assert_eq!(r.next_expected_version, 4);
    assert!(r.first_position > before.head);
    let r = append_ok(&store, &b, NoStream, evs("Deposited", 1)).await;
    assert_eq!(r.next_expected_version, 3);
    let store = h.reopen(store).await;
    assert_eq!(all_events(&store).await.len(), 7);
    assert_eq!(store.head_position().await.unwrap(), r.last_position);
}
