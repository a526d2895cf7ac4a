//! A bounded queue of append bytes: appends that would go over
//! `Limits::max_queued_append_bytes` are refused at once with `Overloaded`,
//! nothing of theirs is written, and every acknowledged append is kept.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use strata_core::{Direction, EventStore, ExpectedVersion, Limits, NewEvent, StreamId};
use strata_log::{Durability, LogConfig, LogStore};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_over_the_queued_bytes_are_refused_and_nothing_acknowledged_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits {
        max_queued_append_bytes: 1024 * 1024,
        ..Limits::default()
    };
    let config = LogConfig::new(dir.path())
        .durability(Durability::Always)
        .limits(limits);
    let store = Arc::new(LogStore::open(config).await.unwrap());
    // 32 appends of ~600 KB at once: at most one fits in the queue at a time.
    let blob = "x".repeat(600_000);
    let tasks: Vec<_> = (0..32)
        .map(|i| {
            let store = store.clone();
            let blob = blob.clone();
            tokio::spawn(async move {
                let stream = StreamId::new(format!("big-{i}")).unwrap();
                let e = NewEvent::json("Big", &serde_json::json!({ "blob": blob })).unwrap();
                (
                    stream.clone(),
                    store.append(&stream, ExpectedVersion::Any, vec![e]).await,
                )
            })
        })
        .collect();
    let mut acknowledged = Vec::new();
    let mut overloaded = 0;
    for t in tasks {
        let (stream, r) = t.await.unwrap();
        match r {
            Ok(_) => acknowledged.push(stream),
            Err(e) => {
                assert_eq!(e.kind(), "overloaded", "{e}");
                overloaded += 1;
                // Refused appends wrote nothing.
                let read = store.read_stream(&stream, 1, 10, Direction::Forward).await;
                assert_eq!(read.unwrap_err().kind(), "stream_not_found");
            }
        }
    }
    assert!(!acknowledged.is_empty());
    assert!(
        overloaded > 0,
        "32 concurrent 600 KB appends never overloaded a 1 MiB queue"
    );
    for stream in &acknowledged {
        let events = store
            .read_stream(stream, 1, 10, Direction::Forward)
            .await
            .unwrap();
        assert_eq!(events.len(), 1);
    }
    // Once the queue drains, appends go through again.
    let e = NewEvent::json("Small", &serde_json::json!({})).unwrap();
    let s = StreamId::new("after-1").unwrap();
    store
        .append(&s, ExpectedVersion::Any, vec![e])
        .await
        .unwrap();
    Arc::try_unwrap(store).ok().unwrap().close().await.unwrap();
}
