//! Time travel (`rebuild(E, t)`): an aggregate as of a version, a
//! position or a time, with and without snapshots.

// Helpers outside `#[test]` functions unwrap too; clippy.toml only exempts the tests.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::InstrumentedStore;
use rust_decimal::Decimal;
use strata::bank::{AccountCommand, AccountStatus, BankAccount};
use strata::{
    AsOf, CommandMeta, Direction, EventStore, MemorySnapshotStore, Position, Repository,
    SnapshotPolicy, StreamId,
};

type Repo = Repository<BankAccount, InstrumentedStore>;

/// Account `a` gets `Open` then deposits of 1, 2, 3, ... while account `b`
/// is written in between, so `a`'s positions are not contiguous. Returns
/// `a`'s recorded events.
async fn history(repo: &Repo, deposits: i64) -> Vec<strata::RecordedEvent> {
    for id in ["a", "b"] {
        repo.execute(
            id,
            AccountCommand::Open { owner: id.into() },
            CommandMeta::new(),
        )
        .await
        .unwrap();
    }
    for n in 1..=deposits {
        repo.execute(
            "a",
            AccountCommand::Deposit {
                amount: Decimal::from(n),
            },
            CommandMeta::new(),
        )
        .await
        .unwrap();
        repo.execute(
            "b",
            AccountCommand::Deposit {
                amount: Decimal::ONE,
            },
            CommandMeta::new(),
        )
        .await
        .unwrap();
        // Distinct record times (the store keeps microseconds).
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    repo.store()
        .read_stream(
            &StreamId::new("account-a").unwrap(),
            1,
            1_000,
            Direction::Forward,
        )
        .await
        .unwrap()
}

/// Balance after version `v` of account `a`: 1 + 2 + ... + (v - 1).
fn balance_at(v: u64) -> Decimal {
    let k = v.saturating_sub(1) as i64;
    Decimal::from(k * (k + 1) / 2)
}

fn repos() -> (Repo, Repo) {
    let store = InstrumentedStore::new();
    let plain = Repo::new(store.clone());
    let snapshotted = Repo::new(store).with_snapshots(
        Arc::new(MemorySnapshotStore::new()),
        SnapshotPolicy::every(5),
    );
    (plain, snapshotted)
}

#[tokio::test]
async fn as_of_every_version() {
    let (plain, snap) = repos();
    history(&snap, 20).await; // writes snapshots of `a` at 5, 10, 15, 20
    snap.flush_snapshots().await;
    for repo in [&plain, &snap] {
        for v in 0..=21 {
            let then = repo.load_as_of("a", AsOf::Version(v)).await.unwrap();
            assert_eq!(then.version, v);
            assert_eq!(then.state.balance(), balance_at(v), "version {v}");
            let status = if v == 0 {
                AccountStatus::New
            } else {
                AccountStatus::Open
            };
            assert_eq!(then.state.status(), status);
        }
        // Past the end: the current state.
        let later = repo.load_as_of("a", AsOf::Version(1_000)).await.unwrap();
        assert_eq!(later.version, 21);
    }
    assert!(snap.stats().snapshots_used >= 17, "{:?}", snap.stats());
}

#[tokio::test]
async fn as_of_a_snapshot_version_reads_no_events() {
    let (_, snap) = repos();
    history(&snap, 12).await;
    snap.flush_snapshots().await;
    let before = snap.stats();
    let then = snap.load_as_of("a", AsOf::Version(10)).await.unwrap();
    assert_eq!(then.state.balance(), balance_at(10));
    let after = snap.stats();
    assert_eq!(after.snapshots_used - before.snapshots_used, 1);
    assert_eq!(after.events_loaded, before.events_loaded);
}

#[tokio::test]
async fn as_of_every_position() {
    let (plain, snap) = repos();
    let events = history(&snap, 12).await;
    snap.flush_snapshots().await;
    let head = plain.store().head_position().await.unwrap();
    for repo in [&plain, &snap] {
        // Every position in $all, including those of the other account.
        for p in 0..=head.0 + 1 {
            let expected = events.iter().filter(|e| e.position.0 <= p).count() as u64;
            let then = repo
                .load_as_of("a", AsOf::Position(Position(p)))
                .await
                .unwrap();
            assert_eq!(then.version, expected, "position {p}");
            assert_eq!(then.state.balance(), balance_at(expected), "position {p}");
        }
    }
}

#[tokio::test]
async fn as_of_every_time() {
    let (plain, snap) = repos();
    let events = history(&snap, 12).await;
    snap.flush_snapshots().await;
    let micro = chrono::Duration::microseconds(1);
    for repo in [&plain, &snap] {
        for (i, e) in events.iter().enumerate() {
            let v = i as u64 + 1;
            // Exactly at an event's time includes it; just before excludes it.
            let at = repo
                .load_as_of("a", AsOf::Time(e.recorded_at))
                .await
                .unwrap();
            assert_eq!(at.version, v);
            assert_eq!(at.state.balance(), balance_at(v));
            let before = repo
                .load_as_of("a", AsOf::Time(e.recorded_at - micro))
                .await
                .unwrap();
            assert_eq!(before.version, v - 1);
            assert_eq!(before.state.balance(), balance_at(v - 1));
        }
        let last = events.last().unwrap().recorded_at;
        let future = repo
            .load_as_of("a", AsOf::Time(last + chrono::Duration::days(1)))
            .await
            .unwrap();
        assert_eq!(future.version, events.len() as u64);
    }
}

#[tokio::test]
async fn a_stream_that_does_not_exist_is_in_its_initial_state() {
    let (plain, _) = repos();
    for as_of in [
        AsOf::Version(3),
        AsOf::Position(Position(3)),
        AsOf::Time(chrono::Utc::now()),
    ] {
        let then = plain.load_as_of("nobody", as_of).await.unwrap();
        assert_eq!(then.version, 0);
        assert_eq!(then.state, BankAccount::default());
    }
}

#[tokio::test]
async fn a_position_search_reads_logarithmically_many_events() {
    let store = InstrumentedStore::new();
    let repo = Repo::new(store.clone()).with_cache(10).with_snapshots(
        Arc::new(MemorySnapshotStore::new()),
        SnapshotPolicy::every(100),
    );
    repo.execute(
        "big",
        AccountCommand::Open { owner: "x".into() },
        CommandMeta::new(),
    )
    .await
    .unwrap();
    for _ in 0..2_047 {
        repo.execute(
            "big",
            AccountCommand::Deposit {
                amount: Decimal::ONE,
            },
            CommandMeta::new(),
        )
        .await
        .unwrap();
    }
    repo.flush_snapshots().await;
    let reads = store.reads();
    let then = repo
        .load_as_of("big", AsOf::Position(Position(1_000)))
        .await
        .unwrap();
    assert_eq!(then.version, 1_000);
    assert_eq!(then.state.balance(), Decimal::from(999));
    // stream_info + ~11 probes + the snapshot's (empty) tail.
    assert!(
        store.reads() - reads <= 14,
        "{} reads",
        store.reads() - reads
    );
}
