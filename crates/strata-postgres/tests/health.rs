//! `EventStore::health` on PostgreSQL: answered from what the listener last
//! saw, with no query of its own, and unhealthy once the database stops
//! answering the store.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{pg_available, raw_client, SchemaGuard};
use strata_core::{EventStore, ExpectedVersion, NewEvent, StreamId};
use strata_postgres::PostgresStore;

#[tokio::test]
async fn health_reports_the_head_then_a_lost_schema() {
    if !pg_available("health_reports_the_head_then_a_lost_schema") {
        return;
    }
    let guard = SchemaGuard::new("health");
    let config = guard.config().head_poll_interval(Duration::from_millis(20));
    let store = PostgresStore::connect_with(config).await.unwrap();
    let stream = StreamId::new("s-1").unwrap();
    let r = store
        .append(
            &stream,
            ExpectedVersion::Any,
            vec![NewEvent::json("A", &serde_json::json!({})).unwrap()],
        )
        .await
        .unwrap();
    // The listener learns of the append (by notification or by polling).
    let deadline = Instant::now() + Duration::from_secs(10);
    while store.health().unwrap() != Some(r.last_position) {
        assert!(Instant::now() < deadline, "health never saw the append");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The schema disappears under the store: the next poll fails, and
    // health says so without a query of its own.
    raw_client()
        .await
        .batch_execute(&format!("DROP SCHEMA {} CASCADE", guard.0))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match store.health() {
            Err(e) => {
                assert_eq!(e.kind(), "backend");
                break;
            }
            Ok(_) => {
                assert!(Instant::now() < deadline, "health never noticed");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    store.close().await.unwrap();
}
