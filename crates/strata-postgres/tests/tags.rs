//! Tags on PostgreSQL: they come back on every read path (stream forwards
//! and backwards, `$all`, a subscription, a query read), kept as sets;
//! each tag has one `event_tags` row, and scavenging removes the rows of
//! the events it removes. Erasure is covered in `erasure.rs`. In both
//! events layouts.

// Tests assert by panicking.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{pg_available, raw_client, SchemaGuard};
use strata_core::dcb::{Query, QueryItem, Tag};
use strata_core::{
    Direction, EventStore, ExpectedVersion, NewEvent, Position, ReadFilter, ScavengeOptions,
    StoreAdmin, StreamId, StreamMetadata, SubscribeFrom, SubscriptionMessage,
};
use strata_postgres::{EventsLayout, PostgresStore};

fn tag(t: &str) -> Tag {
    Tag::new(t).unwrap()
}

fn tagged(i: usize, tags: &[&str]) -> NewEvent {
    NewEvent::json_bytes("Noted", format!("{{\"n\": {i}}}")).with_tags(tags.iter().map(|t| tag(t)))
}

async fn tag_rows(schema: &str, tag: &str) -> i64 {
    raw_client()
        .await
        .query_one(
            &format!("SELECT count(*) FROM \"{schema}\".event_tags WHERE tag = $1"),
            &[&tag],
        )
        .await
        .unwrap()
        .get(0)
}

async fn round_trip(layout: EventsLayout, name: &str) {
    if !pg_available(name) {
        return;
    }
    let schema = SchemaGuard::new("tags");
    let store = PostgresStore::connect_with(schema.config().layout(layout))
        .await
        .unwrap();
    let s = StreamId::new("note-1").unwrap();
    let mut subscription = store
        .subscribe(SubscribeFrom::Start, ReadFilter::all())
        .await
        .unwrap();
    let events = vec![
        tagged(0, &["z:1", "a:1", "z:1"]),
        tagged(1, &[]),
        tagged(2, &["a:1"]),
    ];
    store
        .append(&s, ExpectedVersion::NoStream, events)
        .await
        .unwrap();
    let want = vec![vec![tag("a:1"), tag("z:1")], vec![], vec![tag("a:1")]];
    let forward = store
        .read_stream(&s, 1, 10, Direction::Forward)
        .await
        .unwrap();
    assert_eq!(
        forward.iter().map(|e| e.tags.clone()).collect::<Vec<_>>(),
        want
    );
    let mut backward = store
        .read_stream(&s, u64::MAX, 10, Direction::Backward)
        .await
        .unwrap();
    backward.reverse();
    assert_eq!(backward, forward);
    let all = store
        .read_all(Position::START, 10, &ReadFilter::all())
        .await
        .unwrap();
    assert_eq!(all, forward);
    let mut delivered = Vec::new();
    while delivered.len() < 3 {
        let message = tokio::time::timeout(Duration::from_secs(10), subscription.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if let SubscriptionMessage::Event(e) = message {
            delivered.push(e);
        }
    }
    assert_eq!(delivered, forward);
    let q = Query::new(vec![QueryItem::new(Vec::<String>::new(), [tag("a:1")])]).unwrap();
    let matched = store.read_query(&q, Position::START, 10).await.unwrap();
    assert_eq!(matched, vec![forward[0].clone(), forward[2].clone()]);
    // An item of neither types nor tags matches every event, whatever the
    // other items; types alone go through the type index.
    let any = Query::new(vec![
        QueryItem::new(Vec::<String>::new(), [tag("z:1")]),
        QueryItem::default(),
        QueryItem::new(["Other"], []),
    ])
    .unwrap();
    assert_eq!(
        store.read_query(&any, Position::START, 10).await.unwrap(),
        forward
    );
    let typed = Query::new(vec![
        QueryItem::new(["Noted"], [tag("z:1")]),
        QueryItem::new(["Other"], []),
    ])
    .unwrap();
    let matched_typed = store.read_query(&typed, Position::START, 10).await.unwrap();
    assert_eq!(matched_typed, vec![forward[0].clone()]);
    let by_type = Query::new(vec![QueryItem::new(["Noted"], [])]).unwrap();
    let after_first = store
        .read_query(&by_type, forward[0].position, 1)
        .await
        .unwrap();
    assert_eq!(after_first, vec![forward[1].clone()]);
    assert_eq!(tag_rows(&schema.0, "a:1").await, 2);
    assert_eq!(tag_rows(&schema.0, "z:1").await, 1);

    // Scavenging what retention cut takes the tag rows with the events.
    let settings = StreamMetadata {
        max_count: Some(1),
        ..Default::default()
    };
    store
        .set_stream_metadata(&s, ExpectedVersion::Any, &settings)
        .await
        .unwrap();
    let report = store.scavenge(ScavengeOptions::default()).await.unwrap();
    assert_eq!(report.events_removed, 2, "{report:?}");
    assert_eq!(tag_rows(&schema.0, "a:1").await, 1);
    assert_eq!(tag_rows(&schema.0, "z:1").await, 0);
    let matched = store.read_query(&q, Position::START, 10).await.unwrap();
    assert_eq!(matched, vec![forward[2].clone()]);
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_come_back_on_every_read_and_leave_with_scavenged_events() {
    round_trip(
        EventsLayout::Plain,
        "tags_come_back_on_every_read_and_leave_with_scavenged_events",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_come_back_on_every_read_and_leave_with_scavenged_events_partitioned() {
    round_trip(
        EventsLayout::Partitioned {
            positions_per_partition: 2,
        },
        "tags_come_back_on_every_read_and_leave_with_scavenged_events_partitioned",
    )
    .await;
}
