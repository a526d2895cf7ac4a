//! Conformance cases for erasure (`EventStore::erase_stream`): from the
//! moment it returns, no read shows the stream's events — stream reads,
//! `$all` filtered or not, catch-up and live subscriptions — nor its
//! metadata; the name stays tombstoned for ever; the guard is checked as
//! for a tombstone; and every other event keeps its position and version.

// These functions are test assertions: a panic is how a case reports that
// the store broke the contract.
#![allow(clippy::unwrap_used)]

use serde_json::json;
use strata_core::{
    CurrentVersion, Direction, EventId, EventStore, ExpectedVersion, NewEvent, Position,
    ReadFilter, RecordedEvent, StreamAppend, StreamId, StreamInfo, StreamMetadata, StreamState,
    SubscribeFrom, FROM_END,
};
use ExpectedVersion::{Any, Exact, NoStream, StreamExists};

use crate::conformance::{
    all_events, append_ok, assert_deleted, assert_kind, assert_quiet, assert_wev, evs,
    next_caught_up, next_event, read_all_backward_filtered, read_all_filtered, read_fwd, reversed,
    sid, StoreHarness,
};

/// A marker no other event carries: the erased stream's data.
const SECRET: &str = "erase-me-5d1c";

/// `count` events of type `Noted` whose data carries [`SECRET`].
fn secret_events(count: u64) -> Vec<NewEvent> {
    (1..=count)
        .map(|n| NewEvent::json("Noted", &json!({ "n": n, "note": SECRET })).unwrap())
        .collect()
}

/// Every filter a reader could use to find the erased stream `s`
/// (category `person`, events of type `Noted`).
fn filters(s: &StreamId) -> Vec<ReadFilter> {
    vec![
        ReadFilter::all(),
        ReadFilter::all().stream(s.clone()),
        ReadFilter::all().category("person"),
        ReadFilter::all().stream_prefix("person"),
        ReadFilter::all().event_types(["Noted"]),
    ]
}

/// `person-1` (5 events) and `account-1` (4 events), interleaved; returns
/// `account-1`'s events as read back.
async fn fixture<S: EventStore>(store: &S) -> Vec<RecordedEvent> {
    let person = sid("person-1");
    let other = sid("account-1");
    for i in 0..4u64 {
        let expected = if i == 0 { NoStream } else { Exact(i) };
        append_ok(store, &person, expected, secret_events(1)).await;
        append_ok(store, &other, expected, evs("Deposited", 1)).await;
    }
    append_ok(store, &person, Exact(4), secret_events(1)).await;
    read_fwd(store, &other).await
}

/// No read of any kind returns an event of `s`, or its data.
async fn assert_gone<S: EventStore>(store: &S, s: &StreamId) {
    assert_deleted(store.read_stream(s, 1, 10, Direction::Forward).await, s);
    assert_deleted(
        store
            .read_stream(s, FROM_END, 10, Direction::Backward)
            .await,
        s,
    );
    for f in filters(s) {
        let got = read_all_filtered(store, &f).await;
        assert!(
            got.iter().all(|e| &e.stream_id != s),
            "$all through {f:?} still shows the erased stream: {got:?}"
        );
        let back = read_all_backward_filtered(store, &f).await;
        assert_eq!(back, reversed(&got), "$all backwards through {f:?}");
    }
    let all = all_events(store).await;
    assert!(
        all.iter()
            .all(|e| !String::from_utf8_lossy(&e.data).contains(SECRET)),
        "$all still holds the erased data"
    );
}

/// `s`'s info after it was erased at `version` with its last event at `last`.
fn erased_info(s: &StreamId, version: u64, last: Option<Position>) -> StreamInfo {
    StreamInfo {
        stream: s.clone(),
        version,
        first_readable_version: version + 1,
        state: StreamState::Tombstoned,
        last_position: last,
    }
}

/// Erasure hides the stream from stream reads (both directions), `$all`
/// through every filter, and catch-up subscriptions, and leaves it
/// tombstoned with nothing readable.
pub async fn erase_hides_the_stream_from_every_read<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    let person = sid("person-1");
    let kept = fixture(&store).await;
    let last = store.stream_info(&person).await.unwrap().unwrap();
    store.erase_stream(&person, Exact(5)).await.unwrap();
    assert_gone(&store, &person).await;
    assert_eq!(
        store.stream_info(&person).await.unwrap(),
        Some(erased_info(&person, 5, last.last_position))
    );
    for f in filters(&person) {
        let mut sub = store
            .subscribe(SubscribeFrom::Start, f.clone())
            .await
            .unwrap();
        let wanted: Vec<&RecordedEvent> = kept.iter().filter(|e| f.matches(e)).collect();
        for want in wanted {
            assert_eq!(&next_event(&mut sub).await, want, "catch-up through {f:?}");
        }
        next_caught_up(&mut sub).await;
        assert_quiet(&mut sub).await;
    }
}

/// Subscriptions opened before the erasure deliver nothing of the stream
/// after it: a catch-up not yet read skips its events, live ones see only
/// other streams' new events, and so does one resuming from the start.
pub async fn erase_hides_the_stream_from_live_subscriptions<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    let person = sid("person-1");
    let other = sid("account-1");
    let kept = fixture(&store).await;
    let mut pending = store
        .subscribe(SubscribeFrom::Start, ReadFilter::all())
        .await
        .unwrap();
    let mut live = store
        .subscribe(SubscribeFrom::End, ReadFilter::all())
        .await
        .unwrap();
    let mut only = store
        .subscribe(SubscribeFrom::End, ReadFilter::all().stream(person.clone()))
        .await
        .unwrap();
    next_caught_up(&mut live).await;
    next_caught_up(&mut only).await;
    store.erase_stream(&person, Any).await.unwrap();
    for want in &kept {
        assert_eq!(&next_event(&mut pending).await, want);
    }
    next_caught_up(&mut pending).await;
    assert_deleted(store.append(&person, Any, secret_events(1)).await, &person);
    let r = append_ok(&store, &other, Exact(4), evs("Deposited", 1)).await;
    for sub in [&mut live, &mut pending] {
        let e = next_event(sub).await;
        assert_eq!((&e.stream_id, e.position), (&other, r.first_position));
        assert_quiet(sub).await;
    }
    assert_quiet(&mut only).await;
    let mut resumed = store
        .subscribe(SubscribeFrom::After(Position::START), ReadFilter::all())
        .await
        .unwrap();
    for _ in 0..5 {
        assert_eq!(next_event(&mut resumed).await.stream_id, other);
    }
    next_caught_up(&mut resumed).await;
}

/// Erasure checks its guard as a tombstone does: a wrong one fails with
/// `wrong_expected_version` and changes nothing.
pub async fn erase_is_guarded_by_expected_version<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    let person = sid("person-1");
    let never = sid("person-2");
    fixture(&store).await;
    let before_all = all_events(&store).await;
    let before = read_fwd(&store, &person).await;
    for expected in [Exact(4), Exact(6), NoStream, Exact(0)] {
        assert_wev(
            store.erase_stream(&person, expected).await,
            &person,
            expected,
            CurrentVersion::Current(5),
        );
    }
    for expected in [StreamExists, Exact(1)] {
        assert_wev(
            store.erase_stream(&never, expected).await,
            &never,
            expected,
            CurrentVersion::NoStream,
        );
    }
    let store = h.reopen(store).await;
    assert_eq!(read_fwd(&store, &person).await, before);
    assert_eq!(all_events(&store).await, before_all);
    assert_eq!(store.stream_info(&never).await.unwrap(), None);
    store.erase_stream(&person, StreamExists).await.unwrap();
    assert_gone(&store, &person).await;
}

/// An erased name can never be written again: appends (retries of its
/// recorded events included), multi-stream appends, deletes and
/// tombstones all fail with `stream_deleted`, and write nothing, before
/// and after a reopen.
pub async fn erased_name_is_never_written_again<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    let person = sid("person-1");
    let recorded: Vec<NewEvent> = secret_events(2)
        .into_iter()
        .map(|e| e.with_id(EventId::new()))
        .collect();
    append_ok(&store, &person, NoStream, recorded.clone()).await;
    store.erase_stream(&person, Exact(2)).await.unwrap();
    let head = store.head_position().await.unwrap();
    assert_refuses_writes(&store, &person, &recorded, head).await;
    let store = h.reopen(store).await;
    assert_refuses_writes(&store, &person, &recorded, head).await;
    assert_gone(&store, &person).await;
}

/// Every kind of write to the erased `person` fails with `stream_deleted`
/// and the head stays at `head`.
async fn assert_refuses_writes<S: EventStore>(
    store: &S,
    person: &StreamId,
    recorded: &[NewEvent],
    head: Position,
) {
    let other = sid("account-1");
    for expected in [Any, NoStream, Exact(2), Exact(0), StreamExists] {
        assert_deleted(
            store.append(person, expected, secret_events(1)).await,
            person,
        );
    }
    assert_deleted(store.append(person, Any, recorded.to_vec()).await, person);
    let multi = store
        .append_multi(vec![
            StreamAppend::new(other.clone(), Any, evs("Deposited", 1)),
            StreamAppend::new(person.clone(), Any, secret_events(1)),
        ])
        .await;
    assert_deleted(multi, person);
    assert_deleted(store.delete_stream(person, Any).await, person);
    assert_deleted(store.tombstone_stream(person, Any).await, person);
    assert_eq!(store.head_position().await.unwrap(), head);
    assert_eq!(store.stream_info(&other).await.unwrap(), None);
}

/// A tombstoned or soft-deleted stream's events stay in `$all`; erasing it
/// removes them. A tombstoned (or already erased) stream is erased with
/// `Any` only; a soft-deleted one counts as absent, as for a tombstone.
pub async fn erase_of_deleted_and_tombstoned_streams<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    let dead = sid("person-1");
    let soft = sid("person-2");
    let r = append_ok(&store, &dead, NoStream, secret_events(3)).await;
    let s = append_ok(&store, &soft, NoStream, secret_events(2)).await;
    store.tombstone_stream(&dead, Exact(3)).await.unwrap();
    store.delete_stream(&soft, Exact(2)).await.unwrap();
    assert_eq!(all_events(&store).await.len(), 5, "deletion keeps $all");
    for expected in [Exact(3), NoStream, StreamExists, Exact(0)] {
        assert_deleted(store.erase_stream(&dead, expected).await, &dead);
    }
    assert_wev(
        store.erase_stream(&soft, Exact(2)).await,
        &soft,
        Exact(2),
        CurrentVersion::NoStream,
    );
    store.erase_stream(&dead, Any).await.unwrap();
    store.erase_stream(&soft, NoStream).await.unwrap();
    // Erasing again is allowed and changes nothing.
    store.erase_stream(&dead, Any).await.unwrap();
    store.erase_stream(&soft, Any).await.unwrap();
    let store = h.reopen(store).await;
    assert_gone(&store, &dead).await;
    assert_gone(&store, &soft).await;
    assert!(all_events(&store).await.is_empty());
    assert_eq!(
        store.stream_info(&dead).await.unwrap(),
        Some(erased_info(&dead, 3, Some(r.last_position)))
    );
    assert_eq!(
        store.stream_info(&soft).await.unwrap(),
        Some(erased_info(&soft, 2, Some(s.last_position)))
    );
}

/// Erasing a name never written reserves it, as a tombstone does.
pub async fn erase_of_never_written_stream_reserves_the_name<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    let a = sid("person-1");
    let b = sid("person-2");
    store.erase_stream(&a, NoStream).await.unwrap();
    store.erase_stream(&b, Any).await.unwrap();
    let store = h.reopen(store).await;
    for s in [&a, &b] {
        assert_eq!(
            store.stream_info(s).await.unwrap(),
            Some(erased_info(s, 0, None))
        );
        assert_deleted(store.append(s, NoStream, secret_events(1)).await, s);
        assert_deleted(store.read_stream(s, 1, 10, Direction::Forward).await, s);
    }
    assert_eq!(store.head_position().await.unwrap(), Position::START);
}

/// Every other event keeps its position, version and content; the head
/// does not move, and the next append goes after it.
pub async fn erase_keeps_other_events_in_place<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    let person = sid("person-1");
    let other = sid("account-1");
    let kept = fixture(&store).await;
    let head = store.head_position().await.unwrap();
    store.erase_stream(&person, Exact(5)).await.unwrap();
    assert_eq!(all_events(&store).await, kept);
    assert_eq!(read_fwd(&store, &other).await, kept);
    assert_eq!(store.head_position().await.unwrap(), head);
    let r = append_ok(&store, &other, Exact(4), evs("Deposited", 1)).await;
    assert!(r.first_position > head, "{r:?} after {head}");
    assert_eq!(r.next_expected_version, 5);
    let store = h.reopen(store).await;
    let after = read_fwd(&store, &other).await;
    assert_eq!(&after[..4], &kept[..]);
    assert_eq!(after[4].position, r.first_position);
}

/// Erasure removes the stream's metadata: it reads as never set, its
/// `$metadata` events leave `$all`, and it cannot be set again.
pub async fn erase_removes_the_stream_metadata<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    let person = sid("person-1");
    let other = sid("account-1");
    append_ok(&store, &person, NoStream, secret_events(2)).await;
    let settings = StreamMetadata {
        max_count: Some(10),
        custom: Some(json!({ "owner": SECRET })),
        ..Default::default()
    };
    store
        .set_stream_metadata(&person, NoStream, &settings)
        .await
        .unwrap();
    store
        .set_stream_metadata(&person, Exact(1), &settings)
        .await
        .unwrap();
    store
        .set_stream_metadata(&other, NoStream, &StreamMetadata::default())
        .await
        .unwrap();
    store.erase_stream(&person, Any).await.unwrap();
    assert_eq!(store.stream_metadata(&person).await.unwrap(), None);
    let store = h.reopen(store).await;
    assert_eq!(store.stream_metadata(&person).await.unwrap(), None);
    assert_kind(
        store
            .set_stream_metadata(&person, Any, &StreamMetadata::default())
            .await,
        "stream_deleted",
    );
    assert_gone(&store, &person).await;
    let meta: Vec<String> = all_events(&store)
        .await
        .iter()
        .map(|e| e.stream_id.as_str().to_owned())
        .collect();
    assert_eq!(meta, vec!["$$account-1".to_string()]);
    assert_eq!(
        store
            .stream_metadata(&other)
            .await
            .unwrap()
            .map(|m| m.version),
        Some(1)
    );
}

/// Erasure survives reopening the store, twice.
pub async fn erasure_survives_reopen<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    let person = sid("person-1");
    let kept = fixture(&store).await;
    let store = h.reopen(store).await;
    let last = store.stream_info(&person).await.unwrap().unwrap();
    store.erase_stream(&person, Exact(5)).await.unwrap();
    let store = h.reopen(store).await;
    assert_gone(&store, &person).await;
    assert_eq!(all_events(&store).await, kept);
    let store = h.reopen(store).await;
    assert_gone(&store, &person).await;
    assert_eq!(
        store.stream_info(&person).await.unwrap(),
        Some(erased_info(&person, 5, last.last_position))
    );
    assert_deleted(store.append(&person, Any, secret_events(1)).await, &person);
}
