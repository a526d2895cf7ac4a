//! Conformance cases for stream metadata and retention: settings kept as a
//! version of their own, and reads, `$all` and subscriptions that honour
//! `max_count`, `truncate_before` and `max_age` at once while writes go on
//! counting every version ever written.

// These functions are test assertions: a panic is how a case reports that
// the store broke the contract.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use serde_json::json;
use strata_core::{
    Direction, EventStore, ExpectedVersion, ReadFilter, RecordedEvent, StreamMetadata,
    SubscribeFrom, Version, FROM_END,
};
use ExpectedVersion::{Exact, NoStream};

use crate::conformance::{
    all_events, append_ok, assert_kind, evs, next_caught_up, next_event,
    read_all_backward_filtered, read_fwd, sid, StoreHarness,
};

fn versions(events: &[RecordedEvent]) -> Vec<Version> {
    events.iter().map(|e| e.version).collect()
}

fn max_count(n: u64) -> StreamMetadata {
    StreamMetadata {
        max_count: Some(n),
        ..Default::default()
    }
}

/// Metadata has a version of its own, guarded like a stream's, and comes
/// back as it was set, custom JSON included. Setting it needs no stream;
/// bad settings are refused.
pub async fn metadata_is_versioned_and_round_trips<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    let s = sid("account-1");
    assert_eq!(store.stream_metadata(&s).await.unwrap(), None);
    let first = StreamMetadata {
        max_count: Some(5),
        custom: Some(json!({"owner": "ada", "tags": [1, 2]})),
        ..Default::default()
    };
    assert_eq!(
        store
            .set_stream_metadata(&s, NoStream, &first)
            .await
            .unwrap(),
        1
    );
    let got = store.stream_metadata(&s).await.unwrap().unwrap();
    assert_eq!((got.version, &got.metadata), (1, &first));
    // The stream itself still does not exist.
    assert_eq!(store.stream_info(&s).await.unwrap(), None);
    let second = StreamMetadata {
        max_age: Some(3600),
        truncate_before: Some(2),
        ..Default::default()
    };
    let stale = store.set_stream_metadata(&s, NoStream, &second).await;
    assert_kind(stale, "wrong_expected_version");
    assert_eq!(
        store
            .set_stream_metadata(&s, Exact(1), &second)
            .await
            .unwrap(),
        2
    );
    assert_kind(
        store.set_stream_metadata(&s, Exact(1), &first).await,
        "wrong_expected_version",
    );
    let got = store.stream_metadata(&s).await.unwrap().unwrap();
    assert_eq!((got.version, &got.metadata), (2, &second));
    for bad in [
        max_count(0),
        StreamMetadata {
            max_age: Some(0),
            ..Default::default()
        },
    ] {
        assert_kind(
            store.set_stream_metadata(&s, Exact(2), &bad).await,
            "invalid_input",
        );
    }
    assert_eq!(store.stream_metadata(&s).await.unwrap().unwrap().version, 2);
}

/// `max_count` keeps the newest events readable, forward and backward, in
/// the stream and in `$all`; appends still count every version, and the
/// remaining events keep their versions and positions.
pub async fn max_count_keeps_the_newest_events<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    let s = sid("account-1");
    let other = sid("account-2");
    append_ok(&store, &s, NoStream, evs("Deposited", 10)).await;
    append_ok(&store, &other, NoStream, evs("Deposited", 2)).await;
    let before = read_fwd(&store, &s).await;
    store
        .set_stream_metadata(&s, NoStream, &max_count(3))
        .await
        .unwrap();
    let kept = read_fwd(&store, &s).await;
    assert_eq!(kept, before[7..].to_vec(), "versions 8..=10, unchanged");
    let back = store
        .read_stream(&s, FROM_END, 10, Direction::Backward)
        .await
        .unwrap();
    assert_eq!(versions(&back), vec![10, 9, 8]);
    let info = store.stream_info(&s).await.unwrap().unwrap();
    assert_eq!((info.version, info.first_readable_version), (10, 8));
    // Writing works as before: expected versions count every version.
    let r = append_ok(&store, &s, Exact(10), evs("Deposited", 1)).await;
    assert_eq!(r.next_expected_version, 11);
    assert_eq!(versions(&read_fwd(&store, &s).await), vec![9, 10, 11]);
    let in_all: Vec<Version> = all_events(&store)
        .await
        .iter()
        .filter(|e| e.stream_id == s)
        .map(|e| e.version)
        .collect();
    assert_eq!(in_all, vec![9, 10, 11]);
    let back: Vec<Version> =
        read_all_backward_filtered(&store, &ReadFilter::all().stream(s.clone()))
            .await
            .iter()
            .map(|e| e.version)
            .collect();
    assert_eq!(back, vec![11, 10, 9], "$all backwards keeps the newest too");
    let only = ReadFilter::all().stream(s.clone());
    let filtered = store
        .read_all(strata_core::Position::START, 100, &only)
        .await
        .unwrap();
    assert_eq!(versions(&filtered), vec![9, 10, 11]);
    assert_eq!(
        read_fwd(&store, &other).await.len(),
        2,
        "other streams are untouched"
    );
}

/// `truncate_before` hides versions below it; raising `max_count` later
/// cannot bring them back while it is set.
pub async fn truncate_before_hides_older_versions<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    let s = sid("order-7");
    append_ok(&store, &s, NoStream, evs("Placed", 6)).await;
    let t = StreamMetadata {
        truncate_before: Some(4),
        ..Default::default()
    };
    store.set_stream_metadata(&s, NoStream, &t).await.unwrap();
    assert_eq!(versions(&read_fwd(&store, &s).await), vec![4, 5, 6]);
    let from_two = store
        .read_stream(&s, 2, 2, Direction::Forward)
        .await
        .unwrap();
    assert_eq!(versions(&from_two), vec![4, 5]);
    let back = store
        .read_stream(&s, 5, 10, Direction::Backward)
        .await
        .unwrap();
    assert_eq!(versions(&back), vec![5, 4]);
    let all: Vec<Version> = all_events(&store)
        .await
        .iter()
        .filter(|e| e.stream_id == s)
        .map(|e| e.version)
        .collect();
    assert_eq!(all, vec![4, 5, 6]);
    // Truncating past the end leaves the stream with nothing readable.
    let past = StreamMetadata {
        truncate_before: Some(100),
        ..Default::default()
    };
    store
        .set_stream_metadata(&s, Exact(1), &past)
        .await
        .unwrap();
    assert!(read_fwd(&store, &s).await.is_empty());
    // The first readable version is the next one to be written, not the cut.
    let info = store.stream_info(&s).await.unwrap().unwrap();
    assert_eq!((info.version, info.first_readable_version), (6, 7));
    let r = append_ok(&store, &s, Exact(6), evs("Placed", 1)).await;
    assert_eq!(r.next_expected_version, 7);
}

/// `max_age` hides events recorded longer ago than it says.
pub async fn max_age_hides_old_events<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    let s = sid("session-1");
    append_ok(&store, &s, NoStream, evs("Seen", 3)).await;
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    append_ok(&store, &s, Exact(3), evs("Seen", 2)).await;
    let age = StreamMetadata {
        max_age: Some(2),
        ..Default::default()
    };
    store.set_stream_metadata(&s, NoStream, &age).await.unwrap();
    assert_eq!(versions(&read_fwd(&store, &s).await), vec![4, 5]);
    let back = store
        .read_stream(&s, FROM_END, 10, Direction::Backward)
        .await
        .unwrap();
    assert_eq!(versions(&back), vec![5, 4]);
    let all: Vec<Version> = all_events(&store)
        .await
        .iter()
        .filter(|e| e.stream_id == s)
        .map(|e| e.version)
        .collect();
    assert_eq!(all, vec![4, 5]);
}

/// A subscription's catch-up honours retention like a read, and the
/// metadata stream shows only its latest event in `$all`.
pub async fn retention_applies_to_subscriptions<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    let s = sid("account-1");
    append_ok(&store, &s, NoStream, evs("Deposited", 5)).await;
    store
        .set_stream_metadata(&s, NoStream, &max_count(2))
        .await
        .unwrap();
    store
        .set_stream_metadata(&s, Exact(1), &max_count(2))
        .await
        .unwrap();
    let only = ReadFilter::all().stream(s.clone());
    let mut sub = store.subscribe(SubscribeFrom::Start, only).await.unwrap();
    assert_eq!(next_event(&mut sub).await.version, 4);
    assert_eq!(next_event(&mut sub).await.version, 5);
    next_caught_up(&mut sub).await;
    append_ok(&store, &s, Exact(5), evs("Deposited", 1)).await;
    assert_eq!(next_event(&mut sub).await.version, 6);
    let meta: Vec<RecordedEvent> = all_events(&store)
        .await
        .into_iter()
        .filter(|e| e.event_type == strata_core::metadata::METADATA_EVENT_TYPE)
        .collect();
    assert_eq!(meta.len(), 1, "only the latest metadata event: {meta:?}");
    assert_eq!(meta[0].stream_id.as_str(), "$$account-1");
    assert_eq!(meta[0].version, 2);
}

/// Metadata and its effect survive a reopen.
pub async fn metadata_survives_reopen<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    let s = sid("account-1");
    append_ok(&store, &s, NoStream, evs("Deposited", 4)).await;
    store
        .set_stream_metadata(&s, NoStream, &max_count(1))
        .await
        .unwrap();
    let store = h.reopen(store).await;
    let got = store.stream_metadata(&s).await.unwrap().unwrap();
    assert_eq!((got.version, got.metadata), (1, max_count(1)));
    assert_eq!(versions(&read_fwd(&store, &s).await), vec![4]);
    let store = h.reopen(store).await;
    assert_eq!(versions(&read_fwd(&store, &s).await), vec![4]);
}
