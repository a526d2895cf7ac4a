//! `PgGroups` readers never wait for another transaction: a claim cursor or
//! lease rows held by an open transaction (another process mid-read) are
//! skipped, not waited for. And the status's acks per second.

// Tests assert by panicking.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{pg_available, raw_client, SchemaGuard};
use strata_core::group::{ConsumerGroups, ConsumerId, GroupName, GroupSettings, GroupSource};
use strata_core::{EventStore, ExpectedVersion, NewEvent, ReadFilter, StreamId};
use strata_postgres::{PgGroups, PostgresStore};

/// Far below any lock timeout: a read that waited on a lock would miss it.
const PROMPT: Duration = Duration::from_secs(2);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_skip_locked_rows_and_a_held_cursor() {
    if !pg_available("readers_skip_locked_rows_and_a_held_cursor") {
        return;
    }
    let schema = SchemaGuard::new("grl");
    let store = PostgresStore::connect_with(schema.config()).await.unwrap();
    let stream = StreamId::new("order-1").unwrap();
    for i in 0..4 {
        let e = NewEvent::json("Placed", &serde_json::json!({ "i": i })).unwrap();
        store
            .append(&stream, ExpectedVersion::Any, vec![e])
            .await
            .unwrap();
    }
    let groups = PgGroups::new(store.clone());
    let g = GroupName::new("g").unwrap();
    let settings = GroupSettings::new(GroupSource::All(ReadFilter::all().category("order")));
    groups.put_group(&g, settings).await.unwrap();
    let a = ConsumerId::new("a").unwrap();
    // Claim all four, lease one.
    let first = groups
        .read(&g, &a, 1, Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(first.len(), 1);

    // Another "process" holds the cursor and the next free row locked.
    let mut other = raw_client().await;
    let tx = other.transaction().await.unwrap();
    let s = &schema.0;
    tx.execute(
        &format!("SELECT frontier FROM \"{s}\".group_frontiers FOR UPDATE"),
        &[],
    )
    .await
    .unwrap();
    let locked: i64 = tx
        .query_one(
            &format!(
                "SELECT position FROM \"{s}\".group_leases WHERE consumer IS NULL \
                 ORDER BY position LIMIT 1 FOR UPDATE"
            ),
            &[],
        )
        .await
        .unwrap()
        .get(0);

    let b = ConsumerId::new("b").unwrap();
    let began = Instant::now();
    let got = groups.read(&g, &b, 10, Duration::ZERO).await.unwrap();
    assert!(
        began.elapsed() < PROMPT,
        "the read waited: {:?}",
        began.elapsed()
    );
    let positions: Vec<i64> = got.iter().map(|d| d.event.position.0 as i64).collect();
    assert_eq!(
        positions.len(),
        2,
        "the two unlocked free rows: {positions:?}"
    );
    assert!(!positions.contains(&locked), "a locked row is skipped");

    // An append while the cursor is held: not claimed, not waited for.
    let e = NewEvent::json("Placed", &serde_json::json!({ "i": 4 })).unwrap();
    store
        .append(&stream, ExpectedVersion::Any, vec![e])
        .await
        .unwrap();
    let began = Instant::now();
    let none = groups
        .read(&g, &b, 10, Duration::from_millis(200))
        .await
        .unwrap();
    assert!(none.is_empty(), "{none:?}");
    assert!(began.elapsed() < PROMPT);

    // Released: the locked row and the new event come.
    tx.rollback().await.unwrap();
    let rest = groups
        .read(&g, &b, 10, Duration::from_secs(2))
        .await
        .unwrap();
    let mut versions: Vec<u64> = rest.iter().map(|d| d.event.version).collect();
    if versions.len() < 2 {
        let more = groups
            .read(&g, &b, 10, Duration::from_secs(2))
            .await
            .unwrap();
        versions.extend(more.iter().map(|d| d.event.version));
    }
    versions.sort_unstable();
    assert_eq!(versions.len(), 2, "{versions:?}");
    assert!(
        versions.contains(&5),
        "the new event is claimed once the cursor is free"
    );
}

#[tokio::test]
async fn status_counts_acks_per_second() {
    if !pg_available("status_counts_acks_per_second") {
        return;
    }
    let schema = SchemaGuard::new("grr");
    let store = PostgresStore::connect_with(schema.config()).await.unwrap();
    let stream = StreamId::new("order-1").unwrap();
    let events = (0..10)
        .map(|i| NewEvent::json("Placed", &serde_json::json!({ "i": i })).unwrap())
        .collect();
    store
        .append(&stream, ExpectedVersion::Any, events)
        .await
        .unwrap();
    let groups = PgGroups::new(store);
    let g = GroupName::new("g").unwrap();
    let settings = GroupSettings::new(GroupSource::All(ReadFilter::all()));
    let s = groups.put_group(&g, settings).await.unwrap();
    assert_eq!(s.acked_per_second, 0.0);
    let c = ConsumerId::new("c").unwrap();
    let got = groups
        .read(&g, &c, 10, Duration::from_secs(1))
        .await
        .unwrap();
    let ids: Vec<u64> = got.iter().map(|d| d.delivery_id).collect();
    assert_eq!(groups.ack(&g, &c, &ids).await.unwrap().settled, 10);
    let s = groups.group_status(&g).await.unwrap().unwrap();
    // 10 acks within the last one to two seconds.
    assert!(
        (5.0..=10.0).contains(&s.acked_per_second),
        "{}",
        s.acked_per_second
    );
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let s = groups.group_status(&g).await.unwrap().unwrap();
    assert_eq!(
        s.acked_per_second, 0.0,
        "nothing acked in the last two seconds"
    );
}
