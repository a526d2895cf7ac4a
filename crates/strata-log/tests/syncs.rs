//! `EventStore::durable_syncs`: the log store counts its `fdatasync` calls.

#![allow(clippy::unwrap_used)]

use strata_core::{EventStore, ExpectedVersion, NewEvent, StreamId};
use strata_log::{Durability, LogConfig, LogStore};

async fn append_three(store: &LogStore) {
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
}

#[tokio::test]
async fn every_acknowledged_append_was_synced_in_always_mode() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(LogConfig::new(dir.path()).durability(Durability::Always))
        .await
        .unwrap();
    let before = store.durable_syncs().unwrap();
    append_three(&store).await;
    // One append at a time: each waited for its own sync.
    assert!(store.durable_syncs().unwrap() >= before + 3);
    store.close().await.unwrap();
}

#[tokio::test]
async fn no_sync_is_counted_without_durability() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(LogConfig::new(dir.path()).durability(Durability::None))
        .await
        .unwrap();
    append_three(&store).await;
    assert_eq!(store.durable_syncs(), Some(0));
    store.close().await.unwrap();
}
