//! `$all` read backwards on a log long enough to span several segments,
//! each read in several windows: every page, from any bound, through every
//! kind of plan (a scan, a stream's positions, posting lists, a prefix),
//! is what the forward read gives, newest first; and retention cuts the
//! same events both ways.

#![allow(clippy::unwrap_used)]

use strata_core::{
    EventStore, ExpectedVersion, Metadata, NewEvent, Position, ReadFilter, RecordedEvent,
    StreamAppend, StreamId, StreamMetadata,
};
use strata_log::{Durability, LogConfig, LogStore};

/// Segments of 3 MiB: a few backward windows each.
const SEGMENT_BYTES: u64 = 3 * 1024 * 1024;
/// Appends; each writes 1 to 40 events of ~600 bytes to two streams.
const APPENDS: u64 = 700;

fn positions(events: &[RecordedEvent]) -> Vec<Position> {
    events.iter().map(|e| e.position).collect()
}

async fn long_store(dir: &std::path::Path) -> LogStore {
    let store = LogStore::open(
        LogConfig::new(dir)
            .durability(Durability::None)
            .max_segment_bytes(SEGMENT_BYTES),
    )
    .await
    .unwrap();
    let pad = "x".repeat(600);
    for i in 0..APPENDS {
        let n = i % 40 + 1;
        let batch = |t: &str| {
            (0..n)
                .map(|j| {
                    let meta = Metadata::default().with_correlation_id(format!("c{}", j % 3));
                    NewEvent::json(t, &serde_json::json!({ "i": i, "j": j, "pad": pad }))
                        .unwrap()
                        .with_metadata(meta)
                })
                .collect::<Vec<_>>()
        };
        let a = StreamId::new(format!("tenant-{}-a", i % 7)).unwrap();
        let b = StreamId::new(format!("order-{}", i % 5)).unwrap();
        store
            .append_multi(vec![
                StreamAppend::new(a, ExpectedVersion::Any, batch(["A", "B"][(i % 2) as usize])),
                StreamAppend::new(b, ExpectedVersion::Any, batch("Placed")),
            ])
            .await
            .unwrap();
    }
    store
}

/// Checks `filter` backwards against the forward read: whole, in pages of
/// several sizes, and from bounds inside `$all`.
async fn check(store: &LogStore, all: &[RecordedEvent], filter: &ReadFilter) {
    let forward: Vec<RecordedEvent> = all.iter().filter(|e| filter.matches(e)).cloned().collect();
    let newest_first: Vec<Position> = positions(&forward).into_iter().rev().collect();
    let one = store
        .read_all_backward(Position::END, 100_000, filter)
        .await
        .unwrap();
    assert_eq!(positions(&one), newest_first, "whole through {filter:?}");
    assert_eq!(one.first(), forward.last(), "{filter:?}");
    for size in [997, 16_385] {
        let mut paged = Vec::new();
        let mut before = Position::END;
        loop {
            let page = store.read_all_backward(before, size, filter).await.unwrap();
            assert!(page.len() <= size);
            let Some(last) = page.last() else { break };
            before = last.position;
            paged.extend(positions(&page));
        }
        assert_eq!(paged, newest_first, "pages of {size} through {filter:?}");
    }
    for at in [1, all.len() / 3, all.len() / 2 + 1, all.len() - 1] {
        let bound = all[at].position;
        let below: Vec<Position> = newest_first
            .iter()
            .copied()
            .filter(|p| *p < bound)
            .collect();
        for n in [1, 50, 5_000] {
            let page = store.read_all_backward(bound, n, filter).await.unwrap();
            assert_eq!(
                positions(&page),
                below.iter().copied().take(n).collect::<Vec<_>>(),
                "before {bound} x{n} through {filter:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_log_reads_backwards_as_it_reads_forwards() {
    let dir = tempfile::tempdir().unwrap();
    let store = long_store(dir.path()).await;
    let all = store
        .read_all(Position::START, 100_000, &ReadFilter::all())
        .await
        .unwrap();
    let segments = all
        .iter()
        .map(|e| e.position.0 >> 32)
        .collect::<std::collections::BTreeSet<_>>();
    assert!(segments.len() >= 4, "the test needs several segments");
    for filter in [
        ReadFilter::all(),
        ReadFilter::all().stream(StreamId::new("tenant-3-a").unwrap()),
        // Half of the stream's events: its positions are taken in batches.
        ReadFilter::all()
            .stream(StreamId::new("tenant-3-a").unwrap())
            .event_types(["B"]),
        ReadFilter::all().stream_prefix("tenant-3-"),
        ReadFilter::all().category("order"),
        ReadFilter::all().event_types(["A", "Placed"]),
        ReadFilter::all().correlation_id("c1"),
    ] {
        check(&store, &all, &filter).await;
    }

    // Retention: the scan and the posting lists cut what a forward read cuts.
    let kept = StreamMetadata {
        max_count: Some(3),
        ..Default::default()
    };
    store
        .set_stream_metadata(
            &StreamId::new("order-2").unwrap(),
            ExpectedVersion::NoStream,
            &kept,
        )
        .await
        .unwrap();
    let all = store
        .read_all(Position::START, 100_000, &ReadFilter::all())
        .await
        .unwrap();
    let order_2 = all
        .iter()
        .filter(|e| e.stream_id.as_str() == "order-2")
        .count();
    assert_eq!(order_2, 3);
    for filter in [
        ReadFilter::all(),
        ReadFilter::all().category("order"),
        ReadFilter::all().stream_prefix("order-2"),
    ] {
        check(&store, &all, &filter).await;
    }
    store.close().await.unwrap();
}
