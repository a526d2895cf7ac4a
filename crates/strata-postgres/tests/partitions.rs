//! The partitioned layout: a store whose events span many position-range
//! partitions reads, appends and subscribes like any other; partitions are
//! created ahead by the writer; an old partition can be detached without
//! touching the live one, and its event ids are still recognized.

// Tests assert by panicking.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{pg_available, SchemaGuard};
use strata_core::{
    Direction, EventId, EventStore, ExpectedVersion, NewEvent, Position, ReadFilter, StreamId,
    SubscribeFrom, SubscriptionMessage,
};
use strata_postgres::{EventsLayout, PostgresStore};

const PER_PARTITION: u64 = 100;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn store_spans_partitions_and_detaches_an_old_one() {
    if !pg_available("store_spans_partitions_and_detaches_an_old_one") {
        return;
    }
    let schema = SchemaGuard::new("part");
    let store = PostgresStore::connect_with(schema.config().layout(EventsLayout::Partitioned {
        positions_per_partition: PER_PARTITION,
    }))
    .await
    .unwrap();
    assert_eq!(
        store.layout(),
        EventsLayout::Partitioned {
            positions_per_partition: PER_PARTITION
        }
    );

    // 1,050 events over 10 streams, in appends of 7 and one of 300 (which
    // crosses several partitions in one transaction).
    let mut first_ids = Vec::new();
    for i in 0..107 {
        let stream = StreamId::new(format!("s-{}", i % 10)).unwrap();
        let events: Vec<NewEvent> = (0..7)
            .map(|_| NewEvent::json_bytes("E", "{}").with_id(EventId::new()))
            .collect();
        if i == 0 {
            first_ids = events.clone();
        }
        store
            .append(&stream, ExpectedVersion::Any, events)
            .await
            .unwrap();
    }
    let big: Vec<NewEvent> = (0..301)
        .map(|_| NewEvent::json_bytes("Big", "{}"))
        .collect();
    store
        .append(
            &StreamId::new("big-1").unwrap(),
            ExpectedVersion::NoStream,
            big,
        )
        .await
        .unwrap();
    let total = 107 * 7 + 301;
    assert_eq!(store.head_position().await.unwrap(), Position(total));

    let parts = store.partitions().await.unwrap();
    assert!(parts.len() as u64 > total / PER_PARTITION, "{parts:?}");
    for w in parts.windows(2) {
        assert_eq!(w[0].to, w[1].from, "partitions are contiguous");
    }
    assert!(
        parts.last().unwrap().to.0 > total,
        "created ahead of the head"
    );

    // Reads across partitions.
    let all = store
        .read_all(Position::START, 10_000, &ReadFilter::all())
        .await
        .unwrap();
    assert_eq!(all.len() as u64, total);
    assert!(all.windows(2).all(|w| w[0].position < w[1].position));
    let s3 = store
        .read_stream(&StreamId::new("s-3").unwrap(), 1, 1_000, Direction::Forward)
        .await
        .unwrap();
    assert_eq!(s3.len(), 77);
    let back = store
        .read_stream(
            &StreamId::new("s-3").unwrap(),
            u64::MAX,
            5,
            Direction::Backward,
        )
        .await
        .unwrap();
    assert_eq!(back.first().unwrap().version, 77);
    let mut sub = store
        .subscribe(SubscribeFrom::Start, ReadFilter::all().event_types(["Big"]))
        .await
        .unwrap();
    let mut big_seen = 0;
    while let Ok(Some(Ok(m))) = tokio::time::timeout(Duration::from_secs(5), sub.next()).await {
        match m {
            SubscriptionMessage::Event(_) => big_seen += 1,
            SubscriptionMessage::CaughtUp(_) => break,
        }
    }
    assert_eq!(big_seen, 301);

    // Detach the oldest partition: $all starts after it; the rest is untouched.
    let oldest = &parts[0];
    store.detach_partition(&oldest.name).await.unwrap();
    let after = store
        .read_all(Position::START, 10_000, &ReadFilter::all())
        .await
        .unwrap();
    assert_eq!(after.first().unwrap().position, oldest.to);
    assert_eq!(after.len() as u64, total - (oldest.to.0 - oldest.from.0));
    // The detached table keeps its events for archiving.
    let raw = common::raw_client().await;
    let kept: i64 = raw
        .query_one(
            &format!("SELECT count(*) FROM \"{}\".\"{}\"", schema.0, oldest.name),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(kept as u64, oldest.to.0 - oldest.from.0);
    // Ids of detached events are still known: a re-sent append is a retry.
    let retry = store
        .append(
            &StreamId::new("s-0").unwrap(),
            ExpectedVersion::Any,
            first_ids,
        )
        .await
        .unwrap();
    assert_eq!(retry.first_position, Position(1));
    // Appends go on; the partition holding the head cannot be detached.
    store
        .append(
            &StreamId::new("s-0").unwrap(),
            ExpectedVersion::Any,
            vec![NewEvent::json_bytes("E", "{}")],
        )
        .await
        .unwrap();
    let last = store.partitions().await.unwrap().pop().unwrap();
    assert!(store.detach_partition(&last.name).await.is_err());
    assert!(store.detach_partition("events; DROP").await.is_err());
    store.close().await.unwrap();
}
