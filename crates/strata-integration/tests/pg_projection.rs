//! Exactly-once projection into PostgreSQL tables, with the bank domain of
//! the framework: account commands run through a `strata::Repository` on a
//! `PostgresStore`, and a `PgTransactionalProjection` keeps a `balances`
//! table whose rows and checkpoint commit together. A handler that fails
//! mid-batch, a connection killed mid-transaction and a second runner of the
//! same projection must not apply any event twice or lose one.

// Tests assert by panicking.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{pg_available, SchemaGuard};
use futures::FutureExt;
use rust_decimal::Decimal;
use strata::bank::{AccountCommand, AccountEvent, BankAccount};
use strata::{CommandMeta, EventStore, Repository};
use strata_core::{CheckpointStore, Position, ReadFilter, RecordedEvent};
use strata_postgres::tokio_postgres::Transaction;
use strata_postgres::{
    HandlerError, PgProjectionHandler, PgTransactionalProjection, PostgresStore, ProjectionError,
};

const ACCOUNTS: usize = 6;
const ROUNDS: usize = 25;

fn account_id(event: &RecordedEvent) -> String {
    let name = event.stream_id.as_str();
    name.strip_prefix("account-").unwrap_or(name).to_owned()
}

/// The balance projection: one row per account.
async fn apply(
    schema: &str,
    tx: &Transaction<'_>,
    event: &RecordedEvent,
) -> Result<(), HandlerError> {
    let id = account_id(event);
    let table = format!("\"{schema}\".balances");
    match strata::event::decode::<AccountEvent>(&event.event_type, &event.data)? {
        AccountEvent::Opened { owner } => {
            tx.execute(
                &format!("INSERT INTO {table} (account, owner, balance) VALUES ($1, $2, 0)"),
                &[&id, &owner],
            )
            .await?;
        }
        AccountEvent::Deposited { amount } => {
            tx.execute(
                &format!(
                    "UPDATE {table} SET balance = balance + $2::text::numeric WHERE account = $1"
                ),
                &[&id, &amount.to_string()],
            )
            .await?;
        }
        AccountEvent::Withdrawn { amount } => {
            tx.execute(
                &format!(
                    "UPDATE {table} SET balance = balance - $2::text::numeric WHERE account = $1"
                ),
                &[&id, &amount.to_string()],
            )
            .await?;
        }
        AccountEvent::Closed => {}
    }
    Ok(())
}

/// A handler that fails once on its `fail_at`-th event (1-based).
struct Balances {
    schema: String,
    seen: Arc<AtomicUsize>,
    fail_at: Option<usize>,
}

#[strata_core::async_trait]
impl PgProjectionHandler for Balances {
    async fn handle(
        &mut self,
        tx: &Transaction<'_>,
        event: &RecordedEvent,
    ) -> Result<(), HandlerError> {
        let n = self.seen.fetch_add(1, Ordering::SeqCst) + 1;
        if self.fail_at == Some(n) {
            self.fail_at = None;
            return Err("injected failure".into());
        }
        apply(&self.schema, tx, event).await
    }
}

async fn setup(schema: &SchemaGuard) -> (PostgresStore, BTreeMap<String, Decimal>) {
    let store = PostgresStore::connect_with(schema.config()).await.unwrap();
    let raw = common::raw_client().await;
    raw.batch_execute(&format!(
        "CREATE TABLE \"{}\".balances (account text PRIMARY KEY, owner text NOT NULL, \
         balance numeric NOT NULL)",
        schema.0
    ))
    .await
    .unwrap();
    let repo: Repository<BankAccount, PostgresStore> = Repository::new(store.clone());
    let mut expected = BTreeMap::new();
    for a in 0..ACCOUNTS {
        let id = format!("{a}");
        repo.execute(
            &id,
            AccountCommand::Open {
                owner: format!("owner {a}"),
            },
            CommandMeta::new(),
        )
        .await
        .unwrap();
        expected.insert(id, Decimal::ZERO);
    }
    for round in 0..ROUNDS {
        for a in 0..ACCOUNTS {
            let id = format!("{a}");
            let amount = Decimal::new((round * 7 + a * 3 + 1) as i64, 2);
            let command = if round % 3 == 2 {
                AccountCommand::Withdraw { amount }
            } else {
                AccountCommand::Deposit { amount }
            };
            if repo
                .execute(&id, command.clone(), CommandMeta::new())
                .await
                .is_ok()
            {
                let b = expected.get_mut(&id).unwrap();
                match command {
                    AccountCommand::Withdraw { amount } => *b -= amount,
                    AccountCommand::Deposit { amount } => *b += amount,
                    _ => {}
                }
            }
        }
    }
    (store, expected)
}

async fn balances(schema: &str) -> BTreeMap<String, Decimal> {
    let raw = common::raw_client().await;
    raw.query(
        &format!("SELECT account, balance::text FROM \"{schema}\".balances"),
        &[],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| {
        (
            r.get::<_, String>(0),
            Decimal::from_str(r.get::<_, &str>(1)).unwrap(),
        )
    })
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn balance_projection_is_exactly_once_across_a_failing_batch() {
    if !pg_available("balance_projection_is_exactly_once_across_a_failing_batch") {
        return;
    }
    let schema = SchemaGuard::new("proj");
    let (store, expected) = setup(&schema).await;
    let head = store.head_position().await.unwrap();
    let seen = Arc::new(AtomicUsize::new(0));
    let mut projection = PgTransactionalProjection::new(
        store.clone(),
        "balances",
        Balances {
            schema: schema.0.clone(),
            seen: seen.clone(),
            fail_at: Some(37),
        },
    )
    .batch_events(16)
    .filter(ReadFilter::all().category("account"));

    // The batch holding the 37th event fails: its rows and checkpoint roll back.
    let err = projection.catch_up().await.unwrap_err();
    assert!(
        matches!(err, ProjectionError::Handler { .. }),
        "unexpected error: {err}"
    );
    let checkpoint = store.checkpoints().load("balances").await.unwrap();
    assert_eq!(
        checkpoint,
        Some(Position(32)),
        "two batches of 16 committed"
    );

    // Running again applies the rest exactly once.
    let done = projection.catch_up().await.unwrap();
    assert_eq!(done, head);
    assert_eq!(balances(&schema.0).await, expected);
    assert_eq!(
        store.checkpoints().load("balances").await.unwrap(),
        Some(head)
    );
    // Nothing new: a further step applies nothing.
    assert_eq!(projection.step().await.unwrap(), (head, 0));
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn balance_projection_follows_live_appends_with_two_runners_and_killed_connections() {
    if !pg_available("balance_projection_follows_live_appends_with_two_runners") {
        return;
    }
    let schema = SchemaGuard::new("proj2");
    let app = common::unique_schema("projapp");
    let (store, mut expected) = setup(&schema).await;
    let projector_store = PostgresStore::connect_with(schema.config().application_name(&app))
        .await
        .unwrap();

    // Two runners of the same projection, as two processes would run it,
    // each with a closure handler.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut runners = Vec::new();
    for _ in 0..2 {
        let s = schema.0.clone();
        let store = projector_store.clone();
        let mut stop = stop_rx.clone();
        runners.push(tokio::spawn(async move {
            let mut projection =
                PgTransactionalProjection::from_fn(store, "balances", move |tx, event| {
                    let s = s.clone();
                    async move { apply(&s, tx, event).await }.boxed()
                })
                .batch_events(8);
            loop {
                let stop_fut = async {
                    let _ = stop.wait_for(|v| *v).await;
                };
                match projection.run_until(stop_fut).await {
                    Ok(p) => return p,
                    // A killed connection fails the step; nothing of it was
                    // committed, so running again is safe.
                    Err(e) => {
                        eprintln!("projection step failed, running again: {e}");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }
        }));
    }

    // Keep writing while the runners follow and their connections get killed.
    let repo: Repository<BankAccount, PostgresStore> = Repository::new(store.clone());
    let killer = common::raw_client().await;
    let mut kills = 0u64;
    for round in 0..40 {
        let id = format!("{}", round % ACCOUNTS);
        let amount = Decimal::new(round as i64 + 1, 1);
        repo.execute(&id, AccountCommand::Deposit { amount }, CommandMeta::new())
            .await
            .unwrap();
        *expected.get_mut(&id).unwrap() += amount;
        if round % 10 == 5 {
            let rows = killer
                .query(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                     WHERE application_name = $1",
                    &[&app],
                )
                .await
                .unwrap();
            kills += rows.len() as u64;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let head = store.head_position().await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let cp = store.checkpoints().load("balances").await.unwrap();
        if cp == Some(head) || tokio::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop_tx.send(true).unwrap();
    for r in runners {
        let p = r.await.unwrap();
        assert_eq!(p, head);
    }
    eprintln!("killed {kills} projection connections");
    assert_eq!(balances(&schema.0).await, expected);
    projector_store.close().await.unwrap();
    store.close().await.unwrap();
}
