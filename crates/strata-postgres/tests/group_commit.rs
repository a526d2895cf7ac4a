//! Group commit: concurrent appends through one store share transactions,
//! and each keeps its own guard — one conflict does not fail the others.

// Tests assert by panicking.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use common::{pg_available, SchemaGuard};
use strata_core::{Error, EventId, EventStore, ExpectedVersion, NewEvent, StreamId};
use strata_postgres::PostgresStore;
use tokio::sync::Barrier;

const APPENDERS: usize = 64;
const ROUNDS: usize = 20;

/// Appends version `round + 1` of `own`, a stream no other task writes:
/// it never conflicts.
async fn append_own(store: &PostgresStore, own: &StreamId, round: usize) {
    store
        .append(
            own,
            ExpectedVersion::Exact(round as u64),
            vec![NewEvent::json_bytes("E", "{}")],
        )
        .await
        .expect("an append to its own stream never conflicts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_share_transactions_and_keep_their_own_guards() {
    if !pg_available("concurrent_appends_share_transactions_and_keep_their_own_guards") {
        return;
    }
    let schema = SchemaGuard::new("group");
    let store = PostgresStore::connect_with(schema.config()).await.unwrap();
    let barrier = Arc::new(Barrier::new(APPENDERS));
    let mut tasks = Vec::new();
    for a in 0..APPENDERS {
        let (store, barrier) = (store.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            let own = StreamId::new(format!("own-{a}")).unwrap();
            let shared = StreamId::new("shared-1").unwrap();
            let mut conflicts = 0;
            for round in 0..ROUNDS {
                barrier.wait().await;
                append_own(&store, &own, round).await;
                // Everyone races for version `round + 1` of a shared stream:
                // exactly one wins per round, the others get their own error.
                match store
                    .append(
                        &shared,
                        ExpectedVersion::Exact(round as u64),
                        vec![NewEvent::json_bytes("E", "{}")],
                    )
                    .await
                {
                    Ok(_) => {}
                    Err(Error::WrongExpectedVersion { .. }) => conflicts += 1,
                    Err(e) => panic!("unexpected error: {e}"),
                }
                barrier.wait().await;
            }
            conflicts
        }));
    }
    let mut conflicts = 0;
    for t in tasks {
        conflicts += t.await.unwrap();
    }
    assert_eq!(conflicts, (APPENDERS - 1) * ROUNDS, "one winner per round");
    let stats = store.stats();
    let appends = (2 * APPENDERS * ROUNDS) as u64;
    assert_eq!(stats.appends, appends);
    eprintln!(
        "{} appends in {} transactions ({:.1} per transaction)",
        stats.appends,
        stats.batches,
        stats.appends as f64 / stats.batches as f64
    );
    assert!(
        stats.batches * 4 <= appends,
        "appends were not combined: {} transactions for {appends} appends",
        stats.batches
    );
    store.close().await.unwrap();
}

/// Concurrent copies of one append (a client retrying while its first try is
/// still being committed) record its events once: every copy gets the same
/// positions, whichever batch it lands in, while other appends keep
/// committing in batches alongside.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_copies_of_one_append_record_it_once() {
    if !pg_available("concurrent_copies_of_one_append_record_it_once") {
        return;
    }
    const COPIES: usize = 16;
    let schema = SchemaGuard::new("group_copies");
    let store = PostgresStore::connect_with(schema.config()).await.unwrap();
    let stream = StreamId::new("copied-1").unwrap();
    let ids: Vec<EventId> = (0..ROUNDS).map(|_| EventId::new()).collect();
    let barrier = Arc::new(Barrier::new(2 * COPIES));
    let mut copies = Vec::new();
    let mut others = Vec::new();
    for c in 0..COPIES {
        let (copy_store, copy_barrier, stream, ids) =
            (store.clone(), barrier.clone(), stream.clone(), ids.clone());
        copies.push(tokio::spawn(async move {
            let (store, barrier) = (copy_store, copy_barrier);
            let mut results = Vec::new();
            for id in ids {
                barrier.wait().await;
                let event = NewEvent::json_bytes("E", "{}").with_id(id);
                results.push(
                    store
                        .append(&stream, ExpectedVersion::Any, vec![event])
                        .await
                        .expect("a copy of an append succeeds"),
                );
            }
            results
        }));
        let (store, barrier) = (store.clone(), barrier.clone());
        others.push(tokio::spawn(async move {
            let own = StreamId::new(format!("other-{c}")).unwrap();
            for round in 0..ROUNDS {
                barrier.wait().await;
                append_own(&store, &own, round).await;
            }
        }));
    }
    let mut seen = Vec::new();
    for t in copies {
        seen.push(t.await.unwrap());
    }
    for t in others {
        t.await.unwrap();
    }
    for copy in &seen[1..] {
        assert_eq!(
            copy, &seen[0],
            "every copy reports the first one's positions"
        );
    }
    let events = store
        .read_stream(&stream, 1, 1_000, strata_core::Direction::Forward)
        .await
        .unwrap();
    let recorded: Vec<EventId> = events.iter().map(|e| e.id).collect();
    assert_eq!(recorded, ids, "each append recorded once, in order");
    for (round, (event, result)) in events.iter().zip(&seen[0]).enumerate() {
        assert_eq!(event.version, round as u64 + 1);
        assert_eq!(event.position, result.first_position);
    }
    store.close().await.unwrap();
}
