//! `EventStore::durable_syncs` on PostgreSQL: committed transactions that
//! wrote events (each a WAL flush with `synchronous_commit = on`).

#![allow(clippy::unwrap_used)]

mod common;

use common::{pg_available, SchemaGuard};
use strata_core::{EventStore, ExpectedVersion, NewEvent, StreamId};
use strata_postgres::PostgresStore;

#[tokio::test]
async fn writing_commits_are_counted_and_refused_appends_are_not() {
    if !pg_available("writing_commits_are_counted_and_refused_appends_are_not") {
        return;
    }
    let guard = SchemaGuard::new("syncs");
    let store = PostgresStore::connect_with(guard.config()).await.unwrap();
    assert_eq!(store.durable_syncs(), Some(0));
    let stream = StreamId::new("s-1").unwrap();
    for _ in 0..3 {
        store
            .append(
                &stream,
                ExpectedVersion::Any,
                vec![NewEvent::json("A", &serde_json::json!({})).unwrap()],
            )
            .await
            .unwrap();
    }
    assert_eq!(store.durable_syncs(), Some(3));
    // A conflict writes nothing: no flush counted.
    store
        .append(
            &stream,
            ExpectedVersion::NoStream,
            vec![NewEvent::json("A", &serde_json::json!({})).unwrap()],
        )
        .await
        .unwrap_err();
    assert_eq!(store.durable_syncs(), Some(3));
    store.close().await.unwrap();
}
