//! Parallel processing with 4 workers over 100 interleaved streams keeps
//! each stream's events in order (checked per stream), in catch-up and live.

// Helpers outside `#[test]` functions unwrap too; clippy.toml only exempts the tests.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use strata::processor::{partition_of, EventHandler, HandlerError};
use strata::{
    async_trait, EventProcessor, EventStore, ExpectedVersion, MemoryCheckpointStore, MemoryStore,
    NewEvent, ProcessorConfig, RecordedEvent, StreamId, Version,
};

const WORKERS: usize = 4;
const STREAMS: usize = 100;

/// Records, per stream, the versions it saw in the order it saw them; and
/// how many calls ran at once.
#[derive(Default)]
struct Recorder {
    seen: Mutex<HashMap<String, Vec<Version>>>,
    running: AtomicUsize,
    max_running: AtomicUsize,
}

#[async_trait]
impl EventHandler for Recorder {
    fn name(&self) -> &str {
        "recorder"
    }

    async fn handle(&self, event: &RecordedEvent) -> Result<(), HandlerError> {
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_running.fetch_max(now, Ordering::SeqCst);
        // Give the other partitions a chance to run in between.
        if event.version.is_multiple_of(3) {
            tokio::task::yield_now().await;
        }
        self.seen
            .lock()
            .entry(event.stream_id.as_str().to_owned())
            .or_default()
            .push(event.version);
        self.running.fetch_sub(1, Ordering::SeqCst);
        Ok(())
    }
}

async fn append_round(store: &MemoryStore, round: usize) {
    for s in 0..STREAMS {
        let stream = StreamId::new(format!("order-{s}")).unwrap();
        let event = NewEvent::json("Step", &serde_json::json!({ "round": round })).unwrap();
        store
            .append(&stream, ExpectedVersion::Any, vec![event])
            .await
            .unwrap();
    }
}

fn assert_in_order(recorder: &Recorder, rounds: usize) {
    let seen = recorder.seen.lock();
    assert_eq!(seen.len(), STREAMS);
    for (stream, versions) in seen.iter() {
        let expected: Vec<Version> = (1..=rounds as u64).collect();
        assert_eq!(versions, &expected, "stream {stream} out of order");
    }
}

#[test]
fn the_streams_spread_over_every_worker() {
    let mut used = [0usize; WORKERS];
    for s in 0..STREAMS {
        used[partition_of(&format!("order-{s}"), WORKERS)] += 1;
    }
    assert!(used.iter().all(|&n| n > 0), "{used:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_workers_keep_each_streams_order_while_catching_up() {
    let store = MemoryStore::new();
    let rounds = 30;
    for round in 0..rounds {
        append_round(&store, round).await;
    }
    let recorder = Arc::new(Recorder::default());
    let mut processor = EventProcessor::new(
        "orderly",
        store.clone(),
        Arc::new(MemoryCheckpointStore::new()),
    )
    .with_config(ProcessorConfig {
        workers: WORKERS,
        batch_events: 7,
        page_events: 256,
        ..ProcessorConfig::default()
    })
    .on_shared("Step", recorder.clone());
    let report = processor.catch_up().await.unwrap();
    assert_eq!(report.events, (rounds * STREAMS) as u64);
    assert_in_order(&recorder, rounds);
    assert!(recorder.max_running.load(Ordering::SeqCst) >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_workers_keep_each_streams_order_live() {
    let store = MemoryStore::new();
    let recorder = Arc::new(Recorder::default());
    let processor = EventProcessor::new(
        "orderly-live",
        store.clone(),
        Arc::new(MemoryCheckpointStore::new()),
    )
    .with_config(ProcessorConfig {
        workers: WORKERS,
        batch_events: 5,
        page_events: 64,
        ..ProcessorConfig::default()
    })
    .on_shared("Step", recorder.clone());
    let running = processor.spawn();
    let rounds = 20;
    // Write while it processes: catch-up and live batches both occur.
    for round in 0..rounds {
        append_round(&store, round).await;
        if round.is_multiple_of(5) {
            tokio::task::yield_now().await;
        }
    }
    let head = store.head_position().await.unwrap();
    let at = running
        .wait_for(head, Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(at, head);
    let report = running.stop().await.unwrap();
    assert_eq!(report.to, head);
    assert_in_order(&recorder, rounds);
}

/// `RunningProcessor::wait_for` has the shape of `SharedProjection::wait_for`:
/// a position it cannot reach in time is a typed timeout, not a bare position.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_for_a_position_not_reached_is_a_timeout() {
    let store = MemoryStore::new();
    append_round(&store, 0).await;
    let head = store.head_position().await.unwrap();
    let recorder = Arc::new(Recorder::default());
    let running = EventProcessor::new(
        "orderly-wait",
        store.clone(),
        Arc::new(MemoryCheckpointStore::new()),
    )
    .on_shared("Step", recorder.clone())
    .spawn();
    let at = running
        .wait_for(head, Duration::from_secs(20))
        .await
        .unwrap();
    assert!(at >= head);
    let beyond = strata::Position(head.0 + 1_000);
    let err = running
        .wait_for(beyond, Duration::from_millis(50))
        .await
        .unwrap_err();
    match err {
        strata::WaitError::Timeout {
            projection,
            wanted,
            reached,
            ..
        } => {
            assert_eq!(projection, "orderly-wait");
            assert_eq!(wanted, beyond);
            assert!(reached >= head && reached < beyond);
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    running.stop().await.unwrap();
}
