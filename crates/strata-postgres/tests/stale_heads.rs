//! A store's writer decides every batch against the heads as they are under
//! the row locks, whatever changed them since its own last append: another
//! process, a delete or a tombstone (which go around the writer), an id
//! another store recorded. Any writer that remembers heads between batches
//! (docs/adr/0028-postgres-append-function.md) must keep these outcomes.

// Tests assert by panicking.
#![allow(clippy::unwrap_used)]

mod common;

use common::{pg_available, SchemaGuard};
use strata_core::{Direction, Error, EventId, EventStore, ExpectedVersion, NewEvent, StreamId};
use strata_postgres::{EventsLayout, PostgresStore};

fn event() -> NewEvent {
    NewEvent::json_bytes("E", "{}")
}

async fn stale_heads_are_caught(layout: EventsLayout, prefix: &str) {
    let schema = SchemaGuard::new(prefix);
    let config = schema.config().layout(layout);
    // Two stores on one schema, as two processes would be.
    let a = PostgresStore::connect_with(config.clone()).await.unwrap();
    let b = PostgresStore::connect_with(config).await.unwrap();
    let s = StreamId::new("shared-1").unwrap();

    a.append(&s, ExpectedVersion::NoStream, vec![event()])
        .await
        .unwrap();
    a.append(&s, ExpectedVersion::Exact(1), vec![event()])
        .await
        .unwrap();

    // B appends behind A's back: A last wrote version 2, the stream is at 3.
    b.append(&s, ExpectedVersion::Exact(2), vec![event()])
        .await
        .unwrap();
    match a.append(&s, ExpectedVersion::Exact(2), vec![event()]).await {
        Err(Error::WrongExpectedVersion {
            expected, actual, ..
        }) => {
            assert_eq!(expected, ExpectedVersion::Exact(2));
            assert_eq!(actual, strata_core::CurrentVersion::Current(3));
        }
        other => panic!("expected WrongExpectedVersion, got {other:?}"),
    }
    // An `Any` append A would have written as version 3 becomes version 4.
    let r = a
        .append(&s, ExpectedVersion::Any, vec![event()])
        .await
        .unwrap();
    assert_eq!(r.next_expected_version, 4);
    let r = a
        .append(&s, ExpectedVersion::Exact(4), vec![event()])
        .await
        .unwrap();
    assert_eq!(r.next_expected_version, 5);

    // An id B recorded: A's copy of that append is an idempotent retry.
    let id = EventId::new();
    let first = b
        .append(&s, ExpectedVersion::Exact(5), vec![event().with_id(id)])
        .await
        .unwrap();
    let again = a
        .append(&s, ExpectedVersion::Exact(5), vec![event().with_id(id)])
        .await
        .unwrap();
    assert_eq!(
        again, first,
        "the retry answers with the recorded positions"
    );

    // A soft delete by the other store: the stream reads as gone, and an
    // append expecting its old version fails.
    b.delete_stream(&s, ExpectedVersion::Exact(6))
        .await
        .unwrap();
    assert!(matches!(
        a.append(&s, ExpectedVersion::Exact(6), vec![event()]).await,
        Err(Error::WrongExpectedVersion { .. })
    ));
    let r = a
        .append(&s, ExpectedVersion::Any, vec![event()])
        .await
        .unwrap();
    assert_eq!(r.next_expected_version, 7);

    // A tombstone by the other store, then through A's own store (outside
    // its writer): appends fail with StreamDeleted either way.
    let t = StreamId::new("tombstoned-1").unwrap();
    a.append(&t, ExpectedVersion::NoStream, vec![event()])
        .await
        .unwrap();
    b.tombstone_stream(&t, ExpectedVersion::Any).await.unwrap();
    assert!(matches!(
        a.append(&t, ExpectedVersion::Any, vec![event()]).await,
        Err(Error::StreamDeleted { .. })
    ));
    let u = StreamId::new("tombstoned-2").unwrap();
    a.append(&u, ExpectedVersion::NoStream, vec![event()])
        .await
        .unwrap();
    a.tombstone_stream(&u, ExpectedVersion::Any).await.unwrap();
    assert!(matches!(
        a.append(&u, ExpectedVersion::Exact(1), vec![event()]).await,
        Err(Error::StreamDeleted { .. })
    ));

    // A stream A never saw, which B created: taken as new, found not to be.
    let v = StreamId::new("b-only-1").unwrap();
    b.append(&v, ExpectedVersion::NoStream, vec![event(), event()])
        .await
        .unwrap();
    assert!(matches!(
        a.append(&v, ExpectedVersion::NoStream, vec![event()]).await,
        Err(Error::WrongExpectedVersion { .. })
    ));
    let r = a
        .append(&v, ExpectedVersion::Exact(2), vec![event()])
        .await
        .unwrap();
    assert_eq!(r.next_expected_version, 3);

    // Nothing was written twice or skipped: versions 1..=7 of the shared
    // stream (1..=6 deleted), positions strictly increasing in $all.
    let events = a.read_stream(&s, 7, 10, Direction::Forward).await.unwrap();
    assert_eq!(events.len(), 1);
    let all = a
        .read_all(
            strata_core::Position(0),
            100,
            &strata_core::ReadFilter::default(),
        )
        .await
        .unwrap();
    for pair in all.windows(2) {
        assert_eq!(pair[1].position.0, pair[0].position.0 + 1, "no gap in $all");
    }
    a.close().await.unwrap();
    b.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_see_heads_changed_behind_the_writer() {
    if !pg_available("appends_see_heads_changed_behind_the_writer") {
        return;
    }
    stale_heads_are_caught(EventsLayout::Plain, "stale_heads").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_see_heads_changed_behind_the_writer_partitioned() {
    if !pg_available("appends_see_heads_changed_behind_the_writer_partitioned") {
        return;
    }
    stale_heads_are_caught(
        EventsLayout::Partitioned {
            positions_per_partition: 4,
        },
        "stale_heads_part",
    )
    .await;
}
