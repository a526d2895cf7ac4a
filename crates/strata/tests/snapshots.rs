//! Snapshots: taken every k events, used on load, ignored when
//! their schema is stale, and never able to fail a command.

// Helpers outside `#[test]` functions unwrap too; clippy.toml only exempts the tests.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use common::{FailingSnapshotStore, InstrumentedStore};
use rust_decimal::Decimal;
use strata::bank::{AccountCommand, AccountStatus, BankAccount};
use strata::{
    Aggregate, Bytes, CommandMeta, MemorySnapshotStore, MemoryStore, Repository, Snapshot,
    SnapshotPolicy, SnapshotStore, StreamId,
};

fn stream(id: &str) -> StreamId {
    StreamId::new(format!("account-{id}")).unwrap()
}

async fn open_and_deposit<S: strata::EventStore>(
    repo: &Repository<BankAccount, S>,
    id: &str,
    deposits: usize,
) {
    repo.execute(
        id,
        AccountCommand::Open {
            owner: "ada".into(),
        },
        CommandMeta::new(),
    )
    .await
    .unwrap();
    for _ in 0..deposits {
        repo.execute(
            id,
            AccountCommand::Deposit {
                amount: Decimal::ONE,
            },
            CommandMeta::new(),
        )
        .await
        .unwrap();
    }
}

#[tokio::test]
async fn a_snapshot_is_taken_every_k_events_and_used_on_load() {
    let snapshots = Arc::new(MemorySnapshotStore::new());
    let repo = Repository::<BankAccount, _>::new(MemoryStore::new())
        .with_snapshots(snapshots.clone(), SnapshotPolicy::every(10));
    open_and_deposit(&repo, "1", 24).await; // versions 1..=25
    repo.flush_snapshots().await;
    assert_eq!(repo.stats().snapshots_written, 2);

    let newest = snapshots
        .load(&stream("1"), u64::MAX)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(newest.version, 20);
    assert_eq!(newest.aggregate_type, "account");
    assert_eq!(newest.schema_version, BankAccount::SNAPSHOT_SCHEMA_VERSION);
    let state: BankAccount = serde_json::from_slice(&newest.state).unwrap();
    assert_eq!(state.balance(), Decimal::from(19));
    assert!(
        snapshots
            .load(&stream("1"), 19)
            .await
            .unwrap()
            .unwrap()
            .version
            == 10
    );

    let before = repo.stats();
    let account = repo.load("1").await.unwrap();
    let after = repo.stats();
    assert_eq!(account.version, 25);
    assert_eq!(account.state.balance(), Decimal::from(24));
    assert_eq!(after.snapshots_used - before.snapshots_used, 1);
    assert_eq!(
        after.events_loaded - before.events_loaded,
        5,
        "only the tail is read"
    );
}

#[tokio::test]
async fn a_long_stream_costs_no_more_than_a_short_one() {
    // 10,000 events, a snapshot every 100: an uncached command reads the
    // snapshot and at most 99 events, like a command on a short stream.
    let store = InstrumentedStore::new();
    let snapshots = Arc::new(MemorySnapshotStore::new());
    let repo = Repository::<BankAccount, _>::new(store.clone())
        .with_cache(10)
        .with_snapshots(snapshots.clone(), SnapshotPolicy::every(100));
    open_and_deposit(&repo, "long", 9_999).await;
    repo.flush_snapshots().await;
    assert_eq!(repo.stats().snapshots_written, 100);

    let uncached = Repository::<BankAccount, _>::new(store.clone())
        .with_snapshots(snapshots, SnapshotPolicy::every(100));
    let reads_before = store.reads();
    let done = uncached
        .execute(
            "long",
            AccountCommand::Deposit {
                amount: Decimal::ONE,
            },
            CommandMeta::new(),
        )
        .await
        .unwrap();
    assert_eq!(done.version, 10_001);
    assert_eq!(
        store.reads() - reads_before,
        1,
        "one read: the (empty) tail after the snapshot"
    );
    assert_eq!(uncached.stats().events_loaded, 0);
    assert_eq!(uncached.stats().snapshots_used, 1);
}

#[tokio::test]
async fn a_snapshot_of_another_schema_version_is_ignored_and_replaced() {
    let snapshots = Arc::new(MemorySnapshotStore::new());
    let repo = Repository::<BankAccount, _>::new(MemoryStore::new())
        .with_snapshots(snapshots.clone(), SnapshotPolicy::every(10));
    open_and_deposit(&repo, "2", 14).await; // versions 1..=15
    repo.flush_snapshots().await;

    // A snapshot at version 15 from "other code": a different schema version
    // and a state that would be wrong if it were used.
    let bogus = BankAccount::default();
    snapshots
        .save(Snapshot {
            stream: stream("2"),
            aggregate_type: "account".into(),
            version: 15,
            schema_version: BankAccount::SNAPSHOT_SCHEMA_VERSION + 1,
            state: Bytes::from(serde_json::to_vec(&bogus).unwrap()),
            taken_at: chrono::Utc::now(),
        })
        .await
        .unwrap();

    let before = repo.stats();
    let account = repo.load("2").await.unwrap();
    assert_eq!(account.version, 15);
    assert_eq!(account.state.balance(), Decimal::from(14));
    assert_eq!(account.state.status(), AccountStatus::Open);
    let after = repo.stats();
    assert_eq!(after.snapshots_ignored - before.snapshots_ignored, 1);

    // The next snapshot point (version 20) writes a current one, which wins.
    for _ in 0..5 {
        repo.execute(
            "2",
            AccountCommand::Deposit {
                amount: Decimal::ONE,
            },
            CommandMeta::new(),
        )
        .await
        .unwrap();
    }
    repo.flush_snapshots().await;
    let newest = snapshots
        .load(&stream("2"), u64::MAX)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(newest.version, 20);
    assert_eq!(newest.schema_version, BankAccount::SNAPSHOT_SCHEMA_VERSION);
    let before = repo.stats();
    assert_eq!(
        repo.load("2").await.unwrap().state.balance(),
        Decimal::from(19)
    );
    assert_eq!(repo.stats().snapshots_used - before.snapshots_used, 1);
}

#[tokio::test]
async fn snapshots_of_another_type_or_unreadable_ones_are_ignored() {
    let snapshots = Arc::new(MemorySnapshotStore::new());
    let repo = Repository::<BankAccount, _>::new(MemoryStore::new())
        .with_snapshots(snapshots.clone(), SnapshotPolicy::Never);
    open_and_deposit(&repo, "3", 3).await;
    for (version, aggregate_type, state) in [
        (
            2,
            "order",
            serde_json::to_vec(&BankAccount::default()).unwrap(),
        ),
        (3, "account", b"not json".to_vec()),
    ] {
        snapshots
            .save(Snapshot {
                stream: stream("3"),
                aggregate_type: aggregate_type.into(),
                version,
                schema_version: BankAccount::SNAPSHOT_SCHEMA_VERSION,
                state: Bytes::from(state),
                taken_at: chrono::Utc::now(),
            })
            .await
            .unwrap();
    }
    assert_eq!(
        repo.load("3").await.unwrap().state.balance(),
        Decimal::from(3)
    );
    assert_eq!(
        repo.load_as_of("3", strata::AsOf::Version(2))
            .await
            .unwrap()
            .state
            .balance(),
        Decimal::from(1)
    );
    assert_eq!(repo.stats().snapshots_ignored, 2);
    assert_eq!(
        repo.stats().snapshots_written,
        0,
        "policy Never writes none"
    );
}

#[tokio::test]
async fn a_failing_snapshot_store_never_fails_a_command() {
    let failing = Arc::new(FailingSnapshotStore::default());
    let repo = Repository::<BankAccount, _>::new(MemoryStore::new())
        .with_snapshots(failing.clone(), SnapshotPolicy::every(2));
    open_and_deposit(&repo, "4", 9).await;
    repo.flush_snapshots().await;
    let stats = repo.stats();
    assert_eq!(stats.snapshot_failures, 5);
    assert_eq!(stats.snapshots_written, 0);
    // Loads fall back to replaying the events.
    let account = repo.load("4").await.unwrap();
    assert_eq!(account.version, 10);
    assert_eq!(account.state.balance(), Decimal::from(9));
    assert!(repo.stats().snapshots_ignored >= 1);
}

#[test]
fn policy_points() {
    let p = SnapshotPolicy::every(100);
    assert!(!p.is_due(0, 99));
    assert!(p.is_due(99, 100));
    assert!(p.is_due(150, 250));
    assert!(!p.is_due(100, 199));
    assert!(!SnapshotPolicy::Every(0).is_due(0, 10));
    assert!(!SnapshotPolicy::Never.is_due(0, 10));
}

#[tokio::test]
async fn deleting_an_aggregate_deletes_its_snapshots() {
    let snapshots = Arc::new(MemorySnapshotStore::new());
    let repo = Repository::<BankAccount, _>::new(MemoryStore::new())
        .with_cache(10)
        .with_snapshots(snapshots.clone(), SnapshotPolicy::every(5));
    open_and_deposit(&repo, "5", 9).await; // version 10, snapshots at 5 and 10
    repo.delete("5", strata::ExpectedVersion::Exact(10))
        .await
        .unwrap();
    assert!(snapshots
        .load(&stream("5"), u64::MAX)
        .await
        .unwrap()
        .is_none());

    // Re-created, it starts from the initial state; versions continue.
    let opened = repo
        .execute(
            "5",
            AccountCommand::Open { owner: "bo".into() },
            CommandMeta::new(),
        )
        .await
        .unwrap();
    assert_eq!(opened.version, 11);
    let account = repo.load("5").await.unwrap();
    assert_eq!(account.version, 11);
    assert_eq!(account.state.owner(), "bo");
    assert_eq!(account.state.balance(), Decimal::ZERO);
}
