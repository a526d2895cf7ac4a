//! A poisoned handler is retried, then its event is parked with the error
//! and position; the other handlers (and later events) go on; the parked
//! list is readable and replayable.

// Helpers outside `#[test]` functions unwrap too; clippy.toml only exempts the tests.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use strata::processor::{handler_fn, BatchFailure, EventHandler, HandlerError};
use strata::{
    async_trait, EventProcessor, EventStore, ExpectedVersion, MemoryCheckpointStore,
    MemoryParkedStore, MemoryStore, NewEvent, Position, ProcessorConfig, ProcessorError,
    RecordedEvent, RetryPolicy, StreamId,
};

/// Fails on every event whose `n` is in `poison`, until `fixed`.
struct Picky {
    poison: BTreeSet<u64>,
    fixed: AtomicBool,
    calls: AtomicU64,
    handled: Mutex<Vec<u64>>,
}

impl Picky {
    fn new(poison: impl IntoIterator<Item = u64>) -> Self {
        Picky {
            poison: poison.into_iter().collect(),
            fixed: AtomicBool::new(false),
            calls: AtomicU64::new(0),
            handled: Mutex::new(Vec::new()),
        }
    }
}

fn n_of(event: &RecordedEvent) -> u64 {
    event.json::<serde_json::Value>().unwrap()["n"]
        .as_u64()
        .unwrap()
}

#[async_trait]
impl EventHandler for Picky {
    fn name(&self) -> &str {
        "picky"
    }

    async fn handle(&self, event: &RecordedEvent) -> Result<(), HandlerError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let n = n_of(event);
        if self.poison.contains(&n) && !self.fixed.load(Ordering::SeqCst) {
            return Err(format!("cannot digest event {n}").into());
        }
        self.handled.lock().push(n);
        Ok(())
    }
}

async fn seed(store: &MemoryStore, events: u64) {
    for n in 0..events {
        let stream = StreamId::new(format!("acct-{}", n % 5)).unwrap();
        let e = NewEvent::json("Thing", &serde_json::json!({ "n": n })).unwrap();
        store
            .append(&stream, ExpectedVersion::Any, vec![e])
            .await
            .unwrap();
    }
}

fn config(workers: usize) -> ProcessorConfig {
    ProcessorConfig {
        workers,
        batch_events: 8,
        page_events: 32,
        retry: RetryPolicy::default()
            .with_max_attempts(3)
            .with_base_delay(Duration::ZERO),
        ..ProcessorConfig::default()
    }
}

async fn poisoned_handler_is_parked_and_the_others_continue(workers: usize) {
    let store = MemoryStore::new();
    seed(&store, 100).await;
    let picky = Arc::new(Picky::new([13, 57]));
    let others = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&others);
    let mut processor = EventProcessor::new(
        "worker",
        store.clone(),
        Arc::new(MemoryCheckpointStore::new()),
    )
    .with_config(config(workers))
    .on_shared("Thing", picky.clone())
    .on(
        "Thing",
        handler_fn("counter", move |_e: &RecordedEvent| {
            counter.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }),
    );
    let report = processor.catch_up().await.unwrap();
    assert_eq!(report.events, 100);
    assert_eq!(report.to, Position(100));
    // The other handler saw everything; the picky one everything but two.
    assert_eq!(others.load(Ordering::SeqCst), 100);
    let mut handled = picky.handled.lock().clone();
    handled.sort_unstable();
    assert_eq!(handled.len(), 98);
    assert!(!handled.contains(&13) && !handled.contains(&57));

    let parked = processor.parked(10).await.unwrap();
    assert_eq!(parked.len(), 2);
    assert_eq!(parked[0].handler, "picky");
    assert_eq!(
        parked[0].position(),
        Position(14),
        "n = 13 is at position 14"
    );
    assert_eq!(parked[1].position(), Position(58));
    assert_eq!(parked[0].attempts, 3, "tried three times, then parked");
    assert!(
        parked[0].error.contains("cannot digest event 13"),
        "{}",
        parked[0].error
    );
    let stats = processor.stats();
    assert_eq!(stats.parked, 2);
    assert_eq!(stats.retries, 4);

    // Still failing: a replay keeps them parked, with their attempts counted.
    let replay = processor.replay_parked(10).await.unwrap();
    assert_eq!(
        (replay.replayed, replay.recovered, replay.still_parked),
        (2, 0, 2)
    );
    assert_eq!(processor.parked(10).await.unwrap()[0].attempts, 6);

    // Fixed: a replay handles them and empties the list.
    picky.fixed.store(true, Ordering::SeqCst);
    let replay = processor.replay_parked(10).await.unwrap();
    assert_eq!(
        (replay.replayed, replay.recovered, replay.still_parked),
        (2, 2, 0)
    );
    assert!(processor.parked(10).await.unwrap().is_empty());
    assert!(picky.handled.lock().contains(&57));
}

#[tokio::test]
async fn a_poisoned_handler_is_parked_and_the_others_continue() {
    poisoned_handler_is_parked_and_the_others_continue(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poisoned_handler_is_parked_and_the_others_continue_in_parallel() {
    poisoned_handler_is_parked_and_the_others_continue(4).await;
}

/// Handles a batch at once, and reports which event failed.
struct Batcher {
    batches: Mutex<Vec<Vec<u64>>>,
}

#[async_trait]
impl EventHandler for Batcher {
    fn name(&self) -> &str {
        "batcher"
    }

    async fn handle(&self, event: &RecordedEvent) -> Result<(), HandlerError> {
        match n_of(event) {
            5 => Err("five is poison".into()),
            n => {
                self.batches.lock().push(vec![n]);
                Ok(())
            }
        }
    }

    async fn handle_batch(&self, events: &[&RecordedEvent]) -> Result<(), BatchFailure> {
        let mut done = Vec::new();
        for (index, e) in events.iter().enumerate() {
            if n_of(e) == 5 {
                self.batches.lock().push(done);
                return Err(BatchFailure {
                    index,
                    error: "five is poison".into(),
                });
            }
            done.push(n_of(e));
        }
        self.batches.lock().push(done);
        Ok(())
    }
}

#[tokio::test]
async fn a_failure_inside_a_batch_parks_that_event_only_and_handles_the_rest_once() {
    let store = MemoryStore::new();
    seed(&store, 20).await;
    let batcher = Arc::new(Batcher {
        batches: Mutex::new(Vec::new()),
    });
    let processor = EventProcessor::new("b", store.clone(), Arc::new(MemoryCheckpointStore::new()))
        .with_config(config(1))
        .on_shared("Thing", batcher.clone());
    let page: Vec<RecordedEvent> = store
        .read_all(Position::START, 20, &strata::ReadFilter::all())
        .await
        .unwrap();
    processor.process_event_batch(&page).await.unwrap();
    let batches = batcher.batches.lock().clone();
    // Batches of 8: [0..8) fails at 5 → [0..5) done, 5 parked, [6, 7) resumed.
    assert_eq!(batches[0], vec![0, 1, 2, 3, 4]);
    assert_eq!(batches[1], vec![6, 7]);
    assert_eq!(batches[2], (8..16).collect::<Vec<_>>());
    assert_eq!(batches[3], (16..20).collect::<Vec<_>>());
    let all: Vec<u64> = batches.concat();
    assert_eq!(all.len(), 19, "every event but the poison, once");
    let parked = processor.parked(10).await.unwrap();
    assert_eq!(parked.len(), 1);
    assert_eq!(parked[0].position(), Position(6));
}

#[tokio::test]
async fn a_full_parked_list_stops_the_processor_instead_of_dropping_events() {
    let store = MemoryStore::new();
    seed(&store, 10).await;
    let mut processor = EventProcessor::new(
        "strict",
        store.clone(),
        Arc::new(MemoryCheckpointStore::new()),
    )
    .with_config(config(1))
    .with_parked_store(Arc::new(MemoryParkedStore::with_capacity(2)))
    .on(
        "Thing",
        handler_fn("broken", |_e: &RecordedEvent| Err("always".into())),
    );
    let err = processor.catch_up().await.unwrap_err();
    assert!(matches!(err, ProcessorError::Park { .. }), "{err}");
    assert!(err.to_string().contains("position 3"), "{err}");
    // Nothing past the failure was checkpointed.
    assert_eq!(processor.position(), Position::START);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_handler_stops_a_parallel_processor_with_an_error_not_a_hang() {
    let store = MemoryStore::new();
    seed(&store, 50).await;
    let mut processor = EventProcessor::new(
        "panicky",
        store.clone(),
        Arc::new(MemoryCheckpointStore::new()),
    )
    .with_config(config(2))
    .on(
        "Thing",
        handler_fn("bomb", |e: &RecordedEvent| {
            if n_of(e) == 20 {
                panic!("handler bug");
            }
            Ok(())
        }),
    );
    let err = processor.catch_up().await.unwrap_err();
    assert!(
        matches!(err, ProcessorError::WorkerPanicked { .. }),
        "{err}"
    );
    assert!(
        processor.position() < Position(21),
        "{}",
        processor.position()
    );
}
