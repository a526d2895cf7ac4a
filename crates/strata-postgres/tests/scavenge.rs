//! Scavenging on PostgreSQL (`StoreAdmin::scavenge`): it deletes the rows
//! of deleted and tombstoned streams and those retention cuts, and only
//! those; live reads, `$all` positions and stream heads are unchanged; it
//! works in bounded batches (several when configured small) and over more
//! streams than one page of its plan; and appends and a `$all` subscriber
//! go on throughout, losing, repeating or reordering nothing. In both
//! events layouts.

// Tests assert by panicking.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{pg_available, raw_client, SchemaGuard};
use strata_core::{
    Direction, EventId, EventStore, ExpectedVersion, NewEvent, Position, ReadFilter, RecordedEvent,
    ScavengeOptions, StoreAdmin, StreamAppend, StreamId, StreamInfo, StreamMetadata, SubscribeFrom,
    SubscriptionMessage,
};
use strata_postgres::{EventsLayout, PostgresStore, SCAVENGE_PLAN_STREAMS};
use ExpectedVersion::{Exact, NoStream};

const PLAIN: EventsLayout = EventsLayout::Plain;
const PARTITIONED: EventsLayout = EventsLayout::Partitioned {
    positions_per_partition: 32,
};

fn sid(name: &str) -> StreamId {
    StreamId::new(name).unwrap()
}

fn events(n: usize) -> Vec<NewEvent> {
    (0..n)
        .map(|i| NewEvent::json_bytes("Noted", format!("{{\"n\": {i}}}")))
        .collect()
}

fn settings(
    max_count: Option<u64>,
    truncate_before: Option<u64>,
    max_age: Option<u64>,
) -> StreamMetadata {
    StreamMetadata {
        max_count,
        truncate_before,
        max_age,
        ..Default::default()
    }
}

/// Rows of the events table by stream.
async fn rows_by_stream(schema: &str) -> BTreeMap<String, i64> {
    let client = raw_client().await;
    client
        .query(
            &format!("SELECT stream_id, count(*) FROM \"{schema}\".events GROUP BY stream_id"),
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

async fn all_events(store: &PostgresStore) -> Vec<RecordedEvent> {
    let mut out: Vec<RecordedEvent> = Vec::new();
    let mut from = Position::START;
    loop {
        let page = store
            .read_all(from, 1000, &ReadFilter::all())
            .await
            .unwrap();
        let done = page.len() < 1000;
        if let Some(last) = page.last() {
            from = last.position.next();
        }
        out.extend(page);
        if done {
            return out;
        }
    }
}

/// What readers see of `streams`: their events (or error kind) and info.
async fn reads(
    store: &PostgresStore,
    streams: &[&StreamId],
) -> Vec<(Result<Vec<RecordedEvent>, String>, Option<StreamInfo>)> {
    let mut out = Vec::new();
    for s in streams {
        let events = store
            .read_stream(s, 1, 1000, Direction::Forward)
            .await
            .map_err(|e| e.kind().to_string());
        out.push((events, store.stream_info(s).await.unwrap()));
    }
    out
}

/// Streams of every kind a scavenge meets; returns the rows it must leave
/// per stream.
async fn fill(store: &PostgresStore) -> BTreeMap<String, i64> {
    store
        .append(&sid("live-1"), NoStream, events(10))
        .await
        .unwrap();
    // Deleted, then written again: versions 1..=5 go, 6 and 7 stay.
    store
        .append(&sid("deleted-1"), NoStream, events(5))
        .await
        .unwrap();
    store
        .delete_stream(&sid("deleted-1"), Exact(5))
        .await
        .unwrap();
    store
        .append(&sid("deleted-1"), NoStream, events(2))
        .await
        .unwrap();
    store
        .append(&sid("tomb-1"), NoStream, events(4))
        .await
        .unwrap();
    store
        .tombstone_stream(&sid("tomb-1"), Exact(4))
        .await
        .unwrap();
    store
        .append(&sid("count-1"), NoStream, events(10))
        .await
        .unwrap();
    for expected in [NoStream, Exact(1)] {
        store
            .set_stream_metadata(&sid("count-1"), expected, &settings(Some(3), None, None))
            .await
            .unwrap();
    }
    store
        .append(&sid("trunc-1"), NoStream, events(6))
        .await
        .unwrap();
    store
        .set_stream_metadata(&sid("trunc-1"), NoStream, &settings(None, Some(4), None))
        .await
        .unwrap();
    store
        .append(&sid("age-1"), NoStream, events(3))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    store
        .append(&sid("age-1"), Exact(3), events(2))
        .await
        .unwrap();
    store
        .set_stream_metadata(&sid("age-1"), NoStream, &settings(None, None, Some(2)))
        .await
        .unwrap();
    [
        ("live-1", 10),
        ("deleted-1", 2),
        ("count-1", 3),
        ("trunc-1", 3),
        ("age-1", 2),
        ("$$count-1", 1),
        ("$$trunc-1", 1),
        ("$$age-1", 1),
    ]
    .into_iter()
    .map(|(s, n)| (s.to_owned(), n))
    .collect()
}

async fn removes_exactly_what_no_read_returns(layout: EventsLayout, name: &str) {
    if !pg_available(name) {
        return;
    }
    let schema = SchemaGuard::new("scav");
    let store = PostgresStore::connect_with(schema.config().layout(layout))
        .await
        .unwrap();
    let want = fill(&store).await;
    let names = [
        "live-1",
        "deleted-1",
        "tomb-1",
        "count-1",
        "trunc-1",
        "age-1",
    ]
    .map(sid);
    let refs: Vec<&StreamId> = names.iter().collect();
    let before_reads = reads(&store, &refs).await;
    let before_all = all_events(&store).await;
    let before_rows = rows_by_stream(&schema.0).await;
    assert_eq!(before_rows.values().sum::<i64>(), 46);
    let head = store.head_position().await.unwrap();

    // Erasure is immediate: an erased-only scavenge has nothing to do.
    let report = store
        .scavenge(ScavengeOptions { erased_only: true })
        .await
        .unwrap();
    assert_eq!(report.events_removed, 0);
    assert_eq!(rows_by_stream(&schema.0).await, before_rows);

    let report = store.scavenge(ScavengeOptions::default()).await.unwrap();
    assert_eq!(report.events_removed, 23, "{report:?}");
    assert_eq!((report.segments_rewritten, report.bytes_before), (0, 0));
    assert_eq!(rows_by_stream(&schema.0).await, want);
    // Reads are as before; `$all` lost only the deleted streams' events,
    // every other one at its position.
    assert_eq!(reads(&store, &refs).await, before_reads);
    let gone = |e: &RecordedEvent| {
        e.stream_id.as_str() == "tomb-1" || (e.stream_id.as_str() == "deleted-1" && e.version <= 5)
    };
    let expected_all: Vec<RecordedEvent> =
        before_all.iter().filter(|e| !gone(e)).cloned().collect();
    assert_eq!(all_events(&store).await, expected_all);
    assert_eq!(store.head_position().await.unwrap(), head);
    let status = store.scavenge_status().unwrap();
    assert!(!status.running);
    assert_eq!(status.events_removed, 23);
    assert_eq!(status.segments_done, status.segments_total);
    assert_eq!(status.segments_total, 8, "{status:?}");

    // A second scavenge finds nothing; writing goes on as before.
    let again = store.scavenge(ScavengeOptions::default()).await.unwrap();
    assert_eq!(again.events_removed, 0);
    let r = store
        .append(&sid("count-1"), Exact(10), events(1))
        .await
        .unwrap();
    assert_eq!(r.next_expected_version, 11);
    assert!(r.first_position > head);
    store.close().await.unwrap();

    // Backups are the database's own tools.
    let store = PostgresStore::connect_with(schema.config()).await.unwrap();
    let err = store
        .backup(std::path::Path::new("/nonexistent"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "unsupported");
    assert!(err.to_string().contains("pg_dump"), "{err}");
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scavenge_removes_exactly_what_no_read_returns() {
    removes_exactly_what_no_read_returns(PLAIN, "scavenge_removes_exactly_what_no_read_returns")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scavenge_removes_exactly_what_no_read_returns_partitioned() {
    removes_exactly_what_no_read_returns(
        PARTITIONED,
        "scavenge_removes_exactly_what_no_read_returns_partitioned",
    )
    .await;
}

/// More deleted streams than a page of the plan holds, and one long
/// stream cut by `max_count`, scavenged 7 rows per batch.
async fn scavenges_in_batches(layout: EventsLayout, name: &str) {
    if !pg_available(name) {
        return;
    }
    let schema = SchemaGuard::new("scav_batches");
    let store = PostgresStore::connect_with(schema.config().layout(layout).scavenge_batch_rows(7))
        .await
        .unwrap();
    let n = SCAVENGE_PLAN_STREAMS + 50;
    let doomed: Vec<StreamId> = (0..n).map(|i| sid(&format!("gone-{i:05}"))).collect();
    for chunk in doomed.chunks(store.limits().max_streams_per_multi_append) {
        let parts = chunk
            .iter()
            .map(|s| StreamAppend::new(s.clone(), NoStream, events(2)))
            .collect();
        store.append_multi(parts).await.unwrap();
    }
    // Tombstoned as `tombstone_stream` does (writer/tombstone.sql), in one
    // statement rather than a thousand transactions.
    let tombstoned = raw_client()
        .await
        .execute(
            &format!(
                "UPDATE \"{}\".streams SET tombstoned = true WHERE starts_with(stream_id, 'gone-')",
                schema.0
            ),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(tombstoned, n as u64);
    assert_eq!(
        store
            .stream_info(&doomed[0])
            .await
            .unwrap()
            .map(|i| i.state),
        Some(strata_core::StreamState::Tombstoned)
    );
    let long = sid("long-1");
    store.append(&long, NoStream, events(100)).await.unwrap();
    store
        .set_stream_metadata(&long, NoStream, &settings(Some(1), None, None))
        .await
        .unwrap();
    let report = store.scavenge(ScavengeOptions::default()).await.unwrap();
    let removed = 2 * n as u64 + 99;
    assert_eq!(report.events_removed, removed);
    assert!(
        store.scavenge_batches() > removed / 7,
        "{} batches for {removed} rows",
        store.scavenge_batches()
    );
    let rows = rows_by_stream(&schema.0).await;
    assert_eq!(
        rows,
        [("long-1".to_owned(), 1), ("$$long-1".to_owned(), 1)].into()
    );
    let kept = store
        .read_stream(&long, 1, 10, Direction::Forward)
        .await
        .unwrap();
    assert_eq!(
        kept.iter().map(|e| e.version).collect::<Vec<_>>(),
        vec![100]
    );
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scavenge_works_in_bounded_batches() {
    scavenges_in_batches(PLAIN, "scavenge_works_in_bounded_batches").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scavenge_works_in_bounded_batches_partitioned() {
    // Larger partitions than elsewhere: every batch probes every partition.
    let layout = EventsLayout::Partitioned {
        positions_per_partition: 512,
    };
    scavenges_in_batches(layout, "scavenge_works_in_bounded_batches_partitioned").await;
}

/// Writers appending throughout the scavenge; what each acknowledged.
const WRITERS: usize = 4;

/// Appends to `live-{w}` one or two events at a time until `stop`; returns
/// every acknowledged event (id, position) and how many appends were
/// acknowledged while `during` was set.
async fn writer(
    store: PostgresStore,
    w: usize,
    stop: Arc<AtomicBool>,
    during: Arc<AtomicBool>,
) -> (Vec<(EventId, Position)>, usize) {
    let s = sid(&format!("live-{w}"));
    let mut version = 0;
    let mut acked = Vec::new();
    let mut while_scavenging = 0;
    let mut i = 0usize;
    while !stop.load(Ordering::Acquire) {
        i += 1;
        let batch: Vec<NewEvent> = events(1 + i % 2)
            .into_iter()
            .map(|e| e.with_id(EventId::new()))
            .collect();
        let ids: Vec<EventId> = batch.iter().map(|e| e.id.unwrap()).collect();
        let expected = if version == 0 {
            NoStream
        } else {
            Exact(version)
        };
        let r = store.append(&s, expected, batch).await.unwrap();
        if during.load(Ordering::Acquire) {
            while_scavenging += 1;
        }
        version = r.next_expected_version;
        let first = r.first_position.0;
        // Positions of one append are contiguous on PostgreSQL.
        for (k, id) in ids.into_iter().enumerate() {
            acked.push((id, Position(first + k as u64)));
        }
    }
    (acked, while_scavenging)
}

/// Receives `$all` until an event of `stop-1`, a little slowly, so its
/// catch-up overlaps the scavenge.
async fn subscriber(store: PostgresStore) -> Vec<RecordedEvent> {
    let mut sub = store
        .subscribe(SubscribeFrom::Start, ReadFilter::all())
        .await
        .unwrap();
    let mut got = Vec::new();
    loop {
        let m = tokio::time::timeout(Duration::from_secs(30), sub.next())
            .await
            .expect("the subscription stalled")
            .expect("the subscription ended")
            .expect("the subscription failed");
        let SubscriptionMessage::Event(e) = m else {
            continue;
        };
        if got.len() % 100 == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let stop = e.stream_id.as_str() == "stop-1";
        got.push(e);
        if stop {
            return got;
        }
    }
}

async fn appends_and_a_subscriber_go_on(layout: EventsLayout, name: &str) {
    if !pg_available(name) {
        return;
    }
    let schema = SchemaGuard::new("scav_live");
    let config = schema.config().layout(layout).scavenge_batch_rows(50);
    let store = PostgresStore::connect_with(config.clone()).await.unwrap();
    // 4,000 rows to remove: tombstoned, deleted and retention-cut streams.
    for i in 0..100 {
        let s = sid(&format!("doomed-{i}"));
        store.append(&s, NoStream, events(30)).await.unwrap();
        match i % 3 {
            0 => store.tombstone_stream(&s, Exact(30)).await.unwrap(),
            1 => store.delete_stream(&s, Exact(30)).await.unwrap(),
            _ => {
                store
                    .set_stream_metadata(&s, NoStream, &settings(Some(3), None, None))
                    .await
                    .unwrap();
            }
        }
    }
    // The subscriber is another process, as is each writer.
    let reader = PostgresStore::connect_with(config.clone()).await.unwrap();
    let received = tokio::spawn(subscriber(reader));
    let (stop, during) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let s = PostgresStore::connect_with(config.clone()).await.unwrap();
        writers.push(tokio::spawn(writer(s, w, stop.clone(), during.clone())));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    during.store(true, Ordering::Release);
    let report = store.scavenge(ScavengeOptions::default()).await.unwrap();
    during.store(false, Ordering::Release);
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Release);
    let mut acked = Vec::new();
    let mut while_scavenging = 0;
    for w in writers {
        let (a, n) = w.await.unwrap();
        acked.extend(a);
        while_scavenging += n;
    }
    store
        .append(&sid("stop-1"), NoStream, events(1))
        .await
        .unwrap();
    let got = received.await.unwrap();

    assert_eq!(
        report.events_removed,
        34 * 30 + 33 * 30 + 33 * 27,
        "{report:?}"
    );
    assert!(
        while_scavenging > 0,
        "no append was acknowledged while the scavenge ran ({report:?})"
    );
    for pair in got.windows(2) {
        assert!(
            pair[0].position < pair[1].position,
            "out of order or repeated: {} then {}",
            pair[0].position,
            pair[1].position
        );
    }
    let seen: BTreeMap<Position, EventId> = got.iter().map(|e| (e.position, e.id)).collect();
    for (id, position) in &acked {
        assert_eq!(
            seen.get(position),
            Some(id),
            "acknowledged event at {position} not delivered"
        );
    }
    let all: BTreeMap<Position, EventId> = all_events(&store)
        .await
        .iter()
        .map(|e| (e.position, e.id))
        .collect();
    for (id, position) in &acked {
        assert_eq!(all.get(position), Some(id));
    }
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn scavenge_with_concurrent_appends_and_a_subscriber() {
    appends_and_a_subscriber_go_on(PLAIN, "scavenge_with_concurrent_appends_and_a_subscriber")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn scavenge_with_concurrent_appends_and_a_subscriber_partitioned() {
    appends_and_a_subscriber_go_on(
        PARTITIONED,
        "scavenge_with_concurrent_appends_and_a_subscriber_partitioned",
    )
    .await;
}
