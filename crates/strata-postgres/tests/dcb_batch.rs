//! Conditional appends sharing one writer transaction: while another
//! session holds the position lock, the writer is stopped inside a batch
//! and the appends sent meanwhile queue up; once the lock is released they
//! are decided in one batch. On one boundary the later one fails naming the
//! position the earlier one's matching event took; on disjoint boundaries
//! all are written; a plain append in the batch counts for the conditions
//! after it (docs/postgres.md, "Tags, query reads and conditional appends").

// Tests assert by panicking.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{pg_available, raw_client, unique_schema, SchemaGuard};
use strata_core::dcb::{AppendCondition, Query, QueryItem, Tag};
use strata_core::{
    AppendResult, Error, EventStore, ExpectedVersion, NewEvent, Position, Result, StreamAppend,
    StreamId,
};
use strata_postgres::PostgresStore;

fn booked(seat: &str) -> NewEvent {
    NewEvent::json_bytes("Booked", "{}").with_tags([Tag::new(seat).unwrap()])
}

fn seat_condition(seat: &str, after: Position) -> AppendCondition {
    let item = QueryItem::new(["Booked"], [Tag::new(seat).unwrap()]);
    AppendCondition::new(Query::new(vec![item]).unwrap(), Some(after))
}

fn booking(stream: &str, events: Vec<NewEvent>) -> Vec<StreamAppend> {
    vec![StreamAppend::new(
        StreamId::new(stream).unwrap(),
        ExpectedVersion::Any,
        events,
    )]
}

type Pending = tokio::task::JoinHandle<Result<Vec<AppendResult>>>;

fn book(store: &PostgresStore, stream: &str, events: Vec<NewEvent>, seat: &str) -> Pending {
    let (store, parts) = (store.clone(), booking(stream, events));
    let condition = seat_condition(seat, Position(1));
    tokio::spawn(async move { store.append_if(parts, &condition).await })
}

/// Waits until the store's writer is blocked on a lock.
async fn wait_for_lock_wait(app: &str) {
    let watcher = raw_client().await;
    for _ in 0..250 {
        let waiting: i64 = watcher
            .query_one(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE application_name = $1 AND wait_event_type = 'Lock'",
                &[&app],
            )
            .await
            .unwrap()
            .get(0);
        if waiting > 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the writer was never seen waiting on the position lock");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conditional_appends_in_one_batch_see_each_other() {
    if !pg_available("conditional_appends_in_one_batch_see_each_other") {
        return;
    }
    let schema = SchemaGuard::new("dcbbatch");
    let app = unique_schema("app");
    let store = PostgresStore::connect_with(schema.config().application_name(&app))
        .await
        .unwrap();
    store
        .append(
            &StreamId::new("setup-1").unwrap(),
            ExpectedVersion::NoStream,
            vec![NewEvent::json_bytes("Opened", "{}")],
        )
        .await
        .unwrap();

    // Hold the position lock: the next batch stops at its phase 2.
    let mut raw = raw_client().await;
    let tx = raw.transaction().await.unwrap();
    tx.query_one(
        &format!(
            "SELECT last_position FROM \"{}\".global_position FOR UPDATE",
            schema.0
        ),
        &[],
    )
    .await
    .unwrap();
    let blocker = {
        let store = store.clone();
        tokio::spawn(async move {
            let s = StreamId::new("blocker-1").unwrap();
            let e = NewEvent::json_bytes("Noted", "{}");
            store.append(&s, ExpectedVersion::Any, vec![e]).await
        })
    };
    wait_for_lock_wait(&app).await;
    let before = store.stats();

    // Queued behind the blocked batch, in this order: each waits for the
    // previous one to be queued so the queue order is known.
    let mut pending: Vec<Pending> = Vec::new();
    let queue = [
        // 0: written (positions 3, 4: the blocker takes 2); books a:1 at 4.
        (
            "a-1",
            vec![NewEvent::json_bytes("Asked", "{}"), booked("a:1")],
            "a:1",
        ),
        // 1: fails on 0's booking, at position 4.
        ("a-2", vec![booked("a:1")], "a:1"),
        // 2: another boundary: written at 5.
        ("b-1", vec![booked("b:1")], "b:1"),
        // 3: fails on 2's booking, at 5.
        ("b-2", vec![booked("b:1")], "b:1"),
    ];
    for (stream, events, seat) in queue {
        pending.push(book(&store, stream, events, seat));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // 4: a plain append booking c:1 (position 6) …
    let plain = {
        let store = store.clone();
        tokio::spawn(async move {
            let s = StreamId::new("c-1").unwrap();
            store
                .append(&s, ExpectedVersion::Any, vec![booked("c:1")])
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    // 5: … fails the condition after it.
    pending.push(book(&store, "c-2", vec![booked("c:1")], "c:1"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    tx.commit().await.unwrap();

    assert_eq!(blocker.await.unwrap().unwrap().last_position, Position(2));
    let results: Vec<_> = futures::future::join_all(pending)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    let plain = plain.await.unwrap().unwrap();
    let failed_at = |r: &Result<Vec<AppendResult>>| match r {
        Err(Error::ConditionFailed { position }) => position.0,
        other => panic!("expected condition_failed, got {other:?}"),
    };
    let written = |r: &Result<Vec<AppendResult>>| {
        let r = &r.as_ref().unwrap()[0];
        (r.first_position.0, r.last_position.0)
    };
    assert_eq!(written(&results[0]), (3, 4));
    assert_eq!(failed_at(&results[1]), 4);
    assert_eq!(written(&results[2]), (5, 5));
    assert_eq!(failed_at(&results[3]), 5);
    assert_eq!(plain.last_position, Position(6));
    assert_eq!(failed_at(&results[4]), 6);

    // The blocker's batch, then the six queued appends in one transaction.
    let after = store.stats();
    assert_eq!(after.batches - before.batches, 2);
    assert_eq!(after.appends - before.appends, 7);
    assert_eq!(after.events - before.events, 5);
    assert_eq!(store.head_position().await.unwrap(), Position(6));

    // What failed was not written.
    let a = Query::new(vec![QueryItem::new(["Booked"], [Tag::new("a:1").unwrap()])]).unwrap();
    let got = store.read_query(&a, Position::START, 100).await.unwrap();
    assert_eq!(got.iter().map(|e| e.position.0).collect::<Vec<_>>(), [4]);
    store.close().await.unwrap();
}
