//! The store refreshes the events table's planner statistics once it has
//! written `ANALYZE_FIRST_EVENTS` events, so a freshly filled table does not
//! get plans made without statistics (a filtered `$all` page as a scan of
//! every matching row plus a sort); and not when turned off.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{pg_available, raw_client, SchemaGuard};
use strata_core::{EventStore, ExpectedVersion, NewEvent, StreamId};
use strata_postgres::{PostgresStore, ANALYZE_FIRST_EVENTS};

/// Appends `ANALYZE_FIRST_EVENTS` events in batches of 1,000.
async fn fill(store: &PostgresStore) {
    let per_append = 1_000;
    for i in 0..ANALYZE_FIRST_EVENTS / per_append {
        let stream = StreamId::new(format!("order-{i}")).unwrap();
        let events = (0..per_append)
            .map(|n| NewEvent::json("OrderPlaced", &serde_json::json!({ "n": n })).unwrap())
            .collect();
        store
            .append(&stream, ExpectedVersion::NoStream, events)
            .await
            .unwrap();
    }
}

/// When the events table of `schema` was last analyzed by hand or by us
/// (not autovacuum), as text; `None` if never.
async fn last_analyze(schema: &str) -> Option<String> {
    let client = raw_client().await;
    client
        .query_opt(
            "SELECT last_analyze::text FROM pg_stat_user_tables \
             WHERE schemaname = $1 AND relname = 'events'",
            &[&schema],
        )
        .await
        .unwrap()
        .and_then(|row| row.get::<_, Option<String>>(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statistics_are_refreshed_after_the_first_events() {
    if !pg_available("statistics_are_refreshed_after_the_first_events") {
        return;
    }
    let guard = SchemaGuard::new("stats");
    let store = PostgresStore::connect_with(guard.config()).await.unwrap();
    assert_eq!(last_analyze(&guard.0).await, None);
    fill(&store).await;
    // ANALYZE runs in the background; the statistics collector reports it
    // shortly after.
    let mut analyzed = None;
    for _ in 0..100 {
        analyzed = last_analyze(&guard.0).await;
        if analyzed.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(analyzed.is_some(), "the events table was never analyzed");
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statistics_are_left_alone_when_turned_off() {
    if !pg_available("statistics_are_left_alone_when_turned_off") {
        return;
    }
    let guard = SchemaGuard::new("stats_off");
    let store = PostgresStore::connect_with(guard.config().auto_analyze(false))
        .await
        .unwrap();
    fill(&store).await;
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert_eq!(last_analyze(&guard.0).await, None);
    store.close().await.unwrap();
}
