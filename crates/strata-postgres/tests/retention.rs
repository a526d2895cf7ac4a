//! Stream metadata and retention across processes sharing one schema: the
//! settings that govern a read come from the database with the read, never
//! from what one store last saw; bad metadata appends write nothing; and
//! deletion still leaves a stream's retained events in `$all`.

// Tests assert by panicking.
#![allow(clippy::unwrap_used)]

mod common;

use common::{pg_available, SchemaGuard};
use strata_core::{
    Direction, EventStore, ExpectedVersion, NewEvent, Position, ReadFilter, RecordedEvent,
    StreamAppend, StreamId, StreamMetadata, Version,
};
use strata_postgres::PostgresStore;
use ExpectedVersion::{Any, Exact, NoStream};

fn events(n: usize) -> Vec<NewEvent> {
    (0..n)
        .map(|i| NewEvent::json_bytes("Deposited", format!("{{\"n\": {i}}}")))
        .collect()
}

fn max_count(n: u64) -> StreamMetadata {
    StreamMetadata {
        max_count: Some(n),
        ..Default::default()
    }
}

fn versions(events: &[RecordedEvent]) -> Vec<Version> {
    events.iter().map(|e| e.version).collect()
}

async fn read_versions(store: &PostgresStore, s: &StreamId) -> Vec<Version> {
    versions(
        &store
            .read_stream(s, 1, 100, Direction::Forward)
            .await
            .unwrap(),
    )
}

async fn all_versions(store: &PostgresStore, s: &StreamId) -> Vec<Version> {
    let all = store
        .read_all(Position::START, 1000, &ReadFilter::all())
        .await
        .unwrap();
    all.iter()
        .filter(|e| &e.stream_id == s)
        .map(|e| e.version)
        .collect()
}

/// Two stores on one schema stand for two processes: settings one writes
/// govern the other's very next read, stream_info and `$all` page, and a
/// change back is seen as soon.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn settings_written_by_another_process_govern_the_next_read() {
    if !pg_available("settings_written_by_another_process_govern_the_next_read") {
        return;
    }
    let schema = SchemaGuard::new("ret_procs");
    let a = PostgresStore::connect_with(schema.config()).await.unwrap();
    let b = PostgresStore::connect_with(schema.config()).await.unwrap();
    let s = StreamId::new("account-1").unwrap();
    a.append(&s, NoStream, events(10)).await.unwrap();
    assert_eq!(read_versions(&b, &s).await, (1..=10).collect::<Vec<_>>());

    a.set_stream_metadata(&s, NoStream, &max_count(3))
        .await
        .unwrap();
    assert_eq!(read_versions(&b, &s).await, vec![8, 9, 10]);
    assert_eq!(all_versions(&b, &s).await, vec![8, 9, 10]);
    let info = b.stream_info(&s).await.unwrap().unwrap();
    assert_eq!((info.version, info.first_readable_version), (10, 8));
    assert_eq!(
        b.stream_metadata(&s).await.unwrap().unwrap().metadata,
        max_count(3)
    );

    // B raises the count; A, which wrote the first setting, follows at once.
    b.set_stream_metadata(&s, Exact(1), &max_count(5))
        .await
        .unwrap();
    assert_eq!(read_versions(&a, &s).await, vec![6, 7, 8, 9, 10]);
    assert_eq!(all_versions(&a, &s).await, vec![6, 7, 8, 9, 10]);
    a.close().await.unwrap();
    b.close().await.unwrap();
}

/// An append to a metadata stream whose events are not valid `$metadata`
/// events is `invalid_input`, alone or in a multi-stream append, and writes
/// nothing anywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_metadata_appends_write_nothing() {
    if !pg_available("bad_metadata_appends_write_nothing") {
        return;
    }
    let schema = SchemaGuard::new("ret_bad");
    let store = PostgresStore::connect_with(schema.config()).await.unwrap();
    let meta = StreamId::system("$$account-1").unwrap();
    let other = StreamId::new("order-1").unwrap();
    let bad = [
        vec![NewEvent::json_bytes("Opened", "{}")],
        vec![NewEvent::json_bytes("$metadata", r#"{"max_count": 0}"#)],
        vec![NewEvent::json_bytes(
            "$metadata",
            r#"{"max_count": 2, "nope": 1}"#,
        )],
        vec![
            max_count(2).to_event().unwrap(),
            NewEvent::json_bytes("$metadata", r#"{"max_count": -1}"#),
        ],
    ];
    for events in bad {
        let err = store.append(&meta, Any, events.clone()).await.unwrap_err();
        assert_eq!(err.kind(), "invalid_input", "{err}");
        let err = store
            .append_multi(vec![
                StreamAppend::new(
                    other.clone(),
                    Any,
                    vec![NewEvent::json_bytes("Placed", "{}")],
                ),
                StreamAppend::new(meta.clone(), Any, events),
            ])
            .await
            .unwrap_err();
        assert_eq!(err.kind(), "invalid_input", "{err}");
    }
    assert_eq!(store.head_position().await.unwrap(), Position::START);
    assert_eq!(store.stream_info(&meta).await.unwrap(), None);
    assert_eq!(store.stream_info(&other).await.unwrap(), None);
    let s = StreamId::new("account-1").unwrap();
    assert_eq!(store.stream_metadata(&s).await.unwrap(), None);
    store.close().await.unwrap();
}

/// Deleting or tombstoning a governed stream leaves in `$all` what
/// retention leaves there: deletion hides events from stream reads only.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deleted_streams_keep_their_retained_events_in_all() {
    if !pg_available("deleted_streams_keep_their_retained_events_in_all") {
        return;
    }
    let schema = SchemaGuard::new("ret_del");
    let store = PostgresStore::connect_with(schema.config()).await.unwrap();
    let soft = StreamId::new("account-1").unwrap();
    let hard = StreamId::new("account-2").unwrap();
    for s in [&soft, &hard] {
        store.append(s, NoStream, events(5)).await.unwrap();
        store
            .set_stream_metadata(s, NoStream, &max_count(3))
            .await
            .unwrap();
    }
    store.delete_stream(&soft, Any).await.unwrap();
    store.tombstone_stream(&hard, Any).await.unwrap();
    for s in [&soft, &hard] {
        assert_eq!(all_versions(&store, s).await, vec![3, 4, 5]);
        let only = store
            .read_all(Position::START, 100, &ReadFilter::all().stream(s.clone()))
            .await
            .unwrap();
        assert_eq!(versions(&only), vec![3, 4, 5]);
    }
    store.close().await.unwrap();
}
