//! Long reads: stream reads and unfiltered pages of `$all` are done in
//! pieces, filtered pages on the blocking pool; what comes back is what one
//! read would give, in either direction, from any version or position, on
//! and across piece boundaries.

#![allow(clippy::unwrap_used)]

use strata_core::{
    Direction, EventStore, ExpectedVersion, NewEvent, Position, ReadFilter, StreamAppend, StreamId,
};
use strata_log::{Durability, LogConfig, LogStore};

/// Events per stream; `$all` holds twice as many, more than one read piece.
const LONG: u64 = 10_000;

#[tokio::test(flavor = "current_thread")]
async fn a_long_stream_reads_whole_in_both_directions() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(LogConfig::new(dir.path()).durability(Durability::None))
        .await
        .unwrap();
    let s = StreamId::new("long-1").unwrap();
    let other = StreamId::new("other-1").unwrap();
    for i in 0..LONG / 100 {
        let batch = |t: &str| {
            (0..100)
                .map(|j| NewEvent::json(t, &serde_json::json!({ "i": i * 100 + j })).unwrap())
                .collect::<Vec<_>>()
        };
        // Two streams in each append, so one stream's positions are not
        // contiguous.
        store
            .append_multi(vec![
                StreamAppend::new(s.clone(), ExpectedVersion::Any, batch("N")),
                StreamAppend::new(other.clone(), ExpectedVersion::Any, batch("O")),
            ])
            .await
            .unwrap();
    }
    let forward = store
        .read_stream(&s, 1, 10_000, Direction::Forward)
        .await
        .unwrap();
    let versions: Vec<u64> = forward.iter().map(|e| e.version).collect();
    assert_eq!(versions, (1..=LONG).collect::<Vec<_>>());
    assert!(forward.iter().all(|e| e.stream_id == s));

    let middle = store
        .read_stream(&s, 300, 9_500, Direction::Forward)
        .await
        .unwrap();
    let versions: Vec<u64> = middle.iter().map(|e| e.version).collect();
    assert_eq!(versions, (300..9_800).collect::<Vec<_>>());

    let backward = store
        .read_stream(&s, 9_900, 9_700, Direction::Backward)
        .await
        .unwrap();
    let versions: Vec<u64> = backward.iter().map(|e| e.version).collect();
    assert_eq!(versions, (201..=9_900).rev().collect::<Vec<_>>());

    // A page of `$all` longer than a read piece, and a filtered page (read
    // off the runtime), from the start and from the middle.
    let all = store
        .read_all(Position::START, 100_000, &ReadFilter::all())
        .await
        .unwrap();
    assert_eq!(all.len() as u64, 2 * LONG);
    assert!(all.windows(2).all(|w| w[0].position < w[1].position));
    // Pages that end on, and cross, piece boundaries, from the middle.
    for (start, count) in [
        (0, 16_384),
        (0, 16_385),
        (1, 16_384),
        (3_000, 17_000),
        (19_999, 10),
    ] {
        let page = store
            .read_all(all[start].position, count, &ReadFilter::all())
            .await
            .unwrap();
        let expected = &all[start..(start + count).min(all.len())];
        let ids = |es: &[strata_core::RecordedEvent]| es.iter().map(|e| e.id).collect::<Vec<_>>();
        assert_eq!(ids(&page), ids(expected), "page of {count} from {start}");
    }
    let filtered = store
        .read_all(
            Position::START,
            100_000,
            &ReadFilter::all().stream_prefix("long-1"),
        )
        .await
        .unwrap();
    assert_eq!(filtered.len() as u64, LONG);
    // Prefixes that are not categories are answered from the stream index:
    // the same events, in the same order, as filtering everything.
    for (prefix, start, count) in [
        ("long-1", 5_000, 3_000),
        ("o", 0, 100_000),
        ("l", 19_990, 50),
    ] {
        let from = all[start].position;
        let page = store
            .read_all(from, count, &ReadFilter::all().stream_prefix(prefix))
            .await
            .unwrap();
        let expected: Vec<_> = all[start..]
            .iter()
            .filter(|e| e.stream_id.as_str().starts_with(prefix))
            .take(count)
            .map(|e| e.position)
            .collect();
        let got: Vec<_> = page.iter().map(|e| e.position).collect();
        assert_eq!(got, expected, "prefix {prefix} from {start}");
    }
    let none = store
        .read_all(
            Position::START,
            10,
            &ReadFilter::all().stream_prefix("nothing"),
        )
        .await
        .unwrap();
    assert!(none.is_empty());
    store.close().await.unwrap();
}
