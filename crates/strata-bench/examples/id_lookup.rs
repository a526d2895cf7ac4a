//! What an append carrying event ids costs as the log grows: builds a log
//! store with `SEGMENTS` sealed segments (filled with events whose ids the
//! store generates, so filling checks no ids), reopens it, then times
//! `ROUNDS` appends of `EVENTS` events with fresh ids each, every id checked
//! against every sealed segment's index.
//!
//! ```text
//! cargo build --release -p strata-bench --example id_lookup
//! target/release/examples/id_lookup [SEGMENTS [EVENTS [ROUNDS]]]   # defaults 100 10000 3
//! ```

use std::path::Path;
use std::time::{Duration, Instant};

use strata_core::{EventId, EventStore, ExpectedVersion, NewEvent, StreamId};
use strata_log::{Durability, LogConfig, LogStore};

/// Size of a segment: a 10,000-event append of small events fits in one.
const SEGMENT_BYTES: u64 = 4 * 1024 * 1024;
/// Events per append while filling.
const FILL_BATCH: usize = 500;

fn arg(n: usize, default: u64) -> u64 {
    std::env::args()
        .nth(n)
        .and_then(|s| s.replace('_', "").parse().ok())
        .unwrap_or(default)
}

fn config(dir: &Path) -> LogConfig {
    LogConfig::new(dir)
        .durability(Durability::None)
        .max_segment_bytes(SEGMENT_BYTES)
}

fn stream(name: String) -> StreamId {
    StreamId::new(name).expect("stream id")
}

fn count_files(dir: &Path, ext: &str) -> usize {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().ends_with(ext))
                .count()
        })
        .unwrap_or(0)
}

/// Appends id-less 1 KiB events until `segments` segments are sealed.
async fn fill(store: &LogStore, dir: &Path, segments: usize) {
    let pad = "x".repeat(1000);
    let mut i = 0u64;
    while count_files(&dir.join("segments"), "seg") <= segments {
        let events: Vec<NewEvent> = (0..FILL_BATCH)
            .map(|k| {
                NewEvent::json("Filled", &serde_json::json!({ "k": k, "pad": pad })).expect("json")
            })
            .collect();
        store
            .append(
                &stream(format!("fill-{}", i % 64)),
                ExpectedVersion::Any,
                events,
            )
            .await
            .expect("fill append");
        i += 1;
    }
}

/// One timed append of `events` events with fresh ids.
async fn timed_append(store: &LogStore, round: u64, events: usize) -> Duration {
    let batch: Vec<NewEvent> = (0..events)
        .map(|i| {
            NewEvent::json("Measured", &serde_json::json!({ "i": i }))
                .expect("json")
                .with_id(EventId::new())
        })
        .collect();
    let t = Instant::now();
    store
        .append(
            &stream(format!("bench-{round}")),
            ExpectedVersion::Any,
            batch,
        )
        .await
        .expect("timed append");
    t.elapsed()
}

#[tokio::main]
async fn main() {
    let segments = arg(1, 100) as usize;
    let events = arg(2, 10_000) as usize;
    let rounds = arg(3, 3).max(1);
    let dir = tempfile::tempdir().expect("tempdir");
    let t = Instant::now();
    let store = LogStore::open(config(dir.path())).await.expect("open");
    fill(&store, dir.path(), segments).await;
    store.close().await.expect("close");
    let sealed = count_files(&dir.path().join("index"), "idx");
    println!(
        "built {sealed} sealed segments of {} MiB in {:.1} s",
        SEGMENT_BYTES >> 20,
        t.elapsed().as_secs_f64()
    );
    let store = LogStore::open(config(dir.path())).await.expect("reopen");
    let mut times = Vec::new();
    for round in 0..rounds {
        let d = timed_append(&store, round, events).await;
        println!(
            "round {round}: append of {events} events with fresh ids: {:.1} ms",
            d.as_secs_f64() * 1e3
        );
        times.push(d);
    }
    store.close().await.expect("close");
    times.sort();
    let ms = |d: &Duration| d.as_secs_f64() * 1e3;
    println!(
        "{events}-event append against {sealed} sealed segments: median {:.1} ms, min {:.1} ms, max {:.1} ms ({rounds} rounds)",
        ms(&times[times.len() / 2]),
        ms(&times[0]),
        ms(&times[times.len() - 1])
    );
}
