//! Group commit: concurrent appends through one store share transactions,
//! and each keeps its own guard — one conflict does not fail the others.

// Tests assert by panicking.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use common::{pg_available, SchemaGuard};
use strata_core::{Error, EventStore, ExpectedVersion, NewEvent, StreamId};
use strata_postgres::PostgresStore;
use tokio::sync::Barrier;

const APPENDERS: usize = 64;
const ROUNDS: usize = 20;

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
                store
                    .append(
                        &own,
                        ExpectedVersion::Exact(round as u64),
                        vec![NewEvent::json_bytes("E", "{}")],
                    )
                    .await
                    .expect("an append to its own stream never conflicts");
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
