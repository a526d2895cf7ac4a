//! Dropped connections: backends of the store are killed with
//! `pg_terminate_backend` while it appends and a subscriber follows. Appends
//! whose outcome was unknown are run again (by the store, or by the caller
//! with the same event ids) and return their original result; nothing is
//! lost or written twice, and the subscriber reconnects and resumes with no
//! gap and no duplicate.

// Tests assert by panicking.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{pg_available, raw_client, unique_schema, SchemaGuard};
use strata_core::{
    Error, EventId, EventStore, ExpectedVersion, NewEvent, Position, ReadFilter, StreamId,
    SubscribeFrom, SubscriptionMessage,
};
use strata_postgres::PostgresStore;

const APPENDERS: usize = 8;
const APPENDS_PER_APPENDER: usize = 150;
const KILL_EVERY: Duration = Duration::from_millis(40);
/// Caller-level retries of one append before the test gives up.
const MAX_CALLER_RETRIES: usize = 20;

async fn kill_backends(raw: &tokio_postgres::Client, app: &str) -> u64 {
    let rows = raw
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE application_name = $1 AND pid <> pg_backend_pid()",
            &[&app],
        )
        .await
        .unwrap();
    rows.iter().filter(|r| r.get::<_, bool>(0)).count() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn appends_and_subscription_survive_killed_connections() {
    if !pg_available("appends_and_subscription_survive_killed_connections") {
        return;
    }
    let schema = SchemaGuard::new("kill");
    let app = unique_schema("app");
    let store = PostgresStore::connect_with(
        schema
            .config()
            .application_name(&app)
            .head_poll_interval(Duration::from_millis(100)),
    )
    .await
    .unwrap();
    let mut sub = store
        .subscribe(SubscribeFrom::Start, ReadFilter::all())
        .await
        .unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let kills = Arc::new(AtomicU64::new(0));
    let killer = {
        let (stop, kills, app) = (stop.clone(), kills.clone(), app.clone());
        tokio::spawn(async move {
            let raw = raw_client().await;
            while !stop.load(Ordering::SeqCst) {
                tokio::time::sleep(KILL_EVERY).await;
                kills.fetch_add(kill_backends(&raw, &app).await, Ordering::SeqCst);
            }
        })
    };

    let caller_retries = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for a in 0..APPENDERS {
        let store = store.clone();
        let caller_retries = caller_retries.clone();
        tasks.push(tokio::spawn(async move {
            let stream = StreamId::new(format!("acct-{a}")).unwrap();
            let mut ids = Vec::new();
            let mut version = 0u64;
            for i in 0..APPENDS_PER_APPENDER {
                let n = 1 + i % 3;
                let events: Vec<NewEvent> = (0..n)
                    .map(|_| NewEvent::json_bytes("Deposited", "{}").with_id(EventId::new()))
                    .collect();
                // Exact guards: a retry of a committed append must come back
                // as its original result, not as a conflict.
                let mut tries = 0;
                let result = loop {
                    match store
                        .append(&stream, ExpectedVersion::Exact(version), events.clone())
                        .await
                    {
                        Ok(r) => break r,
                        Err(Error::Backend(e)) if tries < MAX_CALLER_RETRIES => {
                            tries += 1;
                            caller_retries.fetch_add(1, Ordering::SeqCst);
                            eprintln!("append failed, retrying with the same ids: {e}");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                        Err(e) => panic!("append failed for good: {e}"),
                    }
                };
                assert_eq!(result.next_expected_version, version + n as u64);
                version = result.next_expected_version;
                ids.extend(events.iter().filter_map(|e| e.id));
            }
            (stream, ids)
        }));
    }
    let mut expected: HashMap<StreamId, Vec<EventId>> = HashMap::new();
    for t in tasks {
        let (stream, ids) = t.await.unwrap();
        expected.insert(stream, ids);
    }
    let total: usize = expected.values().map(Vec::len).sum();

    // The subscriber keeps following through the kills.
    let mut seen = Vec::new();
    let mut errors = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.len() < total && Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(10), sub.next()).await {
            Ok(Some(Ok(SubscriptionMessage::Event(e)))) => seen.push(e),
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(e))) => {
                errors += 1;
                eprintln!("subscription error, polling again: {e}");
            }
            Ok(None) => break,
            Err(_) => break,
        }
    }
    stop.store(true, Ordering::SeqCst);
    killer.await.unwrap();
    let kills = kills.load(Ordering::SeqCst);
    let stats = store.stats();
    eprintln!(
        "killed {kills} backends; {} batch attempts retried by the store, {} appends retried \
         by callers, {errors} subscription errors",
        stats.retried_attempts,
        caller_retries.load(Ordering::SeqCst),
    );
    assert!(kills > 0, "the test must actually kill connections");

    // The subscriber saw everything once, in order.
    assert_eq!(seen.len(), total, "subscriber missed events");
    let ids: HashSet<EventId> = seen.iter().map(|e| e.id).collect();
    assert_eq!(ids.len(), total, "subscriber saw duplicates");
    for w in seen.windows(2) {
        assert!(w[0].position < w[1].position, "out of order");
    }

    // Every stream holds its events once, in order, with contiguous versions.
    for (stream, ids) in &expected {
        let read = store
            .read_stream(stream, 1, 10_000, strata_core::Direction::Forward)
            .await
            .unwrap();
        let got: Vec<EventId> = read.iter().map(|e| e.id).collect();
        assert_eq!(&got, ids, "stream {stream} differs");
        for (i, e) in read.iter().enumerate() {
            assert_eq!(e.version, i as u64 + 1);
        }
    }
    assert_eq!(store.head_position().await.unwrap(), Position(total as u64));
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn append_whose_connection_is_killed_mid_commit_is_written_once() {
    if !pg_available("append_whose_connection_is_killed_mid_commit_is_written_once") {
        return;
    }
    let schema = SchemaGuard::new("kill1");
    let app = unique_schema("app");
    let store = PostgresStore::connect_with(schema.config().application_name(&app))
        .await
        .unwrap();
    let stream = StreamId::new("order-1").unwrap();
    store
        .append(
            &stream,
            ExpectedVersion::NoStream,
            vec![NewEvent::json_bytes("Placed", "{}")],
        )
        .await
        .unwrap();

    // Hold the position lock, so the store's append stops inside its
    // transaction, then kill the connection it is waiting on.
    let mut raw = raw_client().await;
    let tx = raw.transaction().await.unwrap();
    tx.query_one(
        &format!(
            "SELECT last_position FROM \"{}\".global_position FOR UPDATE",
            schema.0
        ),
        &[],
    )
    .await
    .unwrap();
    let event = NewEvent::json_bytes("Paid", "{}").with_id(EventId::new());
    let appender = {
        let (store, stream, event) = (store.clone(), stream.clone(), event.clone());
        tokio::spawn(async move {
            store
                .append(&stream, ExpectedVersion::Exact(1), vec![event])
                .await
        })
    };
    let killer = raw_client().await;
    let mut killed = 0;
    for _ in 0..100 {
        let rows = killer
            .query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE application_name = $1 AND wait_event_type = 'Lock'",
                &[&app],
            )
            .await
            .unwrap();
        killed += rows.len();
        if killed > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(killed > 0, "the append was never seen waiting on the lock");
    tokio::time::sleep(Duration::from_millis(200)).await;
    tx.commit().await.unwrap();

    let result = appender
        .await
        .unwrap()
        .expect("the store runs the append again");
    assert_eq!(result.next_expected_version, 2);
    assert!(store.stats().retried_attempts >= 1);

    // A caller that did not hear back retries with the same ids: the
    // original result, nothing written.
    let again = store
        .append(&stream, ExpectedVersion::Exact(1), vec![event])
        .await
        .unwrap();
    assert_eq!(again, result);
    let read = store
        .read_stream(&stream, 1, 10, strata_core::Direction::Forward)
        .await
        .unwrap();
    assert_eq!(read.len(), 2);
    store.close().await.unwrap();
}
