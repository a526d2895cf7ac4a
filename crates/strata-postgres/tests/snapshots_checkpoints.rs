//! `SnapshotStore` and `CheckpointStore` on PostgreSQL.

// Tests assert by panicking.
#![allow(clippy::unwrap_used)]

mod common;

use bytes::Bytes;
use chrono::Utc;
use common::{pg_available, SchemaGuard};
use strata_core::{CheckpointStore, Position, Snapshot, SnapshotStore, StreamId};
use strata_postgres::{PostgresStore, MAX_SNAPSHOTS_PER_STREAM};

fn snapshot(stream: &StreamId, version: u64) -> Snapshot {
    Snapshot {
        stream: stream.clone(),
        aggregate_type: "account".into(),
        version,
        schema_version: 2,
        state: Bytes::from(format!("{{\"v\":{version}}}")),
        taken_at: Utc::now(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_round_trip_and_are_pruned() {
    if !pg_available("snapshots_round_trip_and_are_pruned") {
        return;
    }
    let schema = SchemaGuard::new("snap");
    let store = PostgresStore::connect_with(schema.config()).await.unwrap();
    let snaps = store.snapshots();
    let s = StreamId::new("account-1").unwrap();
    assert_eq!(snaps.load(&s, u64::MAX).await.unwrap(), None);
    for v in 1..=20u64 {
        snaps.save(snapshot(&s, v * 10)).await.unwrap();
    }
    let newest = snaps.load(&s, u64::MAX).await.unwrap().unwrap();
    assert_eq!(newest.version, 200);
    assert_eq!(newest.schema_version, 2);
    assert_eq!(newest.state, Bytes::from("{\"v\":200}"));
    assert_eq!(snaps.load(&s, 155).await.unwrap().unwrap().version, 150);
    // Only the newest MAX_SNAPSHOTS_PER_STREAM are kept.
    let oldest_kept = (20 - MAX_SNAPSHOTS_PER_STREAM as u64 + 1) * 10;
    assert_eq!(
        snaps.load(&s, oldest_kept).await.unwrap().unwrap().version,
        oldest_kept
    );
    assert_eq!(snaps.load(&s, oldest_kept - 1).await.unwrap(), None);
    // Replacing one at the same version.
    let mut again = snapshot(&s, 200);
    again.state = Bytes::from("{}");
    snaps.save(again).await.unwrap();
    assert_eq!(
        snaps.load(&s, u64::MAX).await.unwrap().unwrap().state,
        Bytes::from("{}")
    );
    snaps.delete(&s).await.unwrap();
    assert_eq!(snaps.load(&s, u64::MAX).await.unwrap(), None);
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_round_trip() {
    if !pg_available("checkpoints_round_trip") {
        return;
    }
    let schema = SchemaGuard::new("ckpt");
    let store = PostgresStore::connect_with(schema.config()).await.unwrap();
    let c = store.checkpoints();
    assert_eq!(c.load("balances").await.unwrap(), None);
    c.save("balances", Position(42)).await.unwrap();
    c.save("balances", Position(43)).await.unwrap();
    c.save("other", Position(1)).await.unwrap();
    assert_eq!(c.load("balances").await.unwrap(), Some(Position(43)));
    c.reset("balances").await.unwrap();
    assert_eq!(c.load("balances").await.unwrap(), None);
    assert_eq!(c.load("other").await.unwrap(), Some(Position(1)));
    store.close().await.unwrap();
}
