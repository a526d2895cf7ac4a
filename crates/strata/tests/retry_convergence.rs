//! Optimistic concurrency: concurrent commands on one aggregate converge by
//! catching up and retrying, and no update is ever lost.

// Helpers outside `#[test]` functions unwrap too; clippy.toml only exempts the tests.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::InstrumentedStore;
use rust_decimal::Decimal;
use strata::bank::{AccountCommand, BankAccount};
use strata::{
    AggregateError, CommandMeta, CurrentVersion, ExpectedVersion, Repository, RetryPolicy,
};

const WRITERS: usize = 16;

type Repo = Repository<BankAccount, InstrumentedStore>;

fn deposit(n: usize) -> AccountCommand {
    AccountCommand::Deposit {
        amount: Decimal::new(n as i64 * 100 + 1, 2),
    }
}

fn expected_total(amounts: impl IntoIterator<Item = usize>) -> Decimal {
    amounts
        .into_iter()
        .map(|n| Decimal::new(n as i64 * 100 + 1, 2))
        .sum()
}

async fn open(repo: &Repo, id: &str) {
    repo.execute(
        id,
        AccountCommand::Open {
            owner: "ada".into(),
        },
        CommandMeta::new(),
    )
    .await
    .unwrap();
}

/// A policy that lets each of `WRITERS` contenders win eventually: every lost
/// race is another writer's win, so `WRITERS` attempts always suffice.
fn patient() -> RetryPolicy {
    RetryPolicy::default()
        .with_max_attempts(WRITERS as u32)
        .with_base_delay(Duration::from_micros(200))
        .with_max_delay(Duration::from_millis(2))
}

async fn run_concurrently(repos: Vec<Arc<Repo>>, id: &'static str) -> Vec<Result<u32, String>> {
    let mut tasks = Vec::new();
    for n in 0..WRITERS {
        let repo = Arc::clone(&repos[n % repos.len()]);
        tasks.push(tokio::spawn(async move {
            match repo.execute(id, deposit(n), CommandMeta::new()).await {
                Ok(c) => Ok(c.attempts),
                Err(e) => Err(e.to_string()),
            }
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_uncached_writers_converge_with_exact_balance() {
    let store = InstrumentedStore::yielding();
    let repo = Arc::new(Repo::new(store.clone()).with_retry_policy(patient()));
    open(&repo, "1").await;

    let results = run_concurrently(vec![Arc::clone(&repo)], "1").await;
    for r in &results {
        assert!(r.is_ok(), "{r:?}");
    }

    let account = repo.load("1").await.unwrap();
    assert_eq!(account.version, 1 + WRITERS as u64);
    assert_eq!(account.state.balance(), expected_total(0..WRITERS));
    let stats = repo.stats();
    assert!(
        stats.conflicts > 0,
        "the yielding store should force races: {stats:?}"
    );
    assert_eq!(stats.conflicts_exhausted, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_repositories_with_stale_caches_converge() {
    // Each writer has its own repository and cache (as if in its own
    // process): caches go stale, the expected-version check notices, and the
    // repository catches up and retries.
    let store = InstrumentedStore::yielding();
    let repos: Vec<Arc<Repo>> = (0..WRITERS)
        .map(|_| {
            Arc::new(
                Repo::new(store.clone())
                    .with_cache(100)
                    .with_retry_policy(patient()),
            )
        })
        .collect();
    open(&repos[0], "2").await;
    // Warm every cache at version 1.
    for r in &repos {
        r.execute(
            "2",
            AccountCommand::Deposit {
                amount: Decimal::ONE,
            },
            CommandMeta::new(),
        )
        .await
        .unwrap();
    }

    let results = run_concurrently(repos.clone(), "2").await;
    for r in &results {
        assert!(r.is_ok(), "{r:?}");
    }

    let account = repos[0].load("2").await.unwrap();
    assert_eq!(account.version, 1 + 2 * WRITERS as u64);
    assert_eq!(
        account.state.balance(),
        expected_total(0..WRITERS) + Decimal::from(WRITERS)
    );
    let conflicts: u64 = repos.iter().map(|r| r.stats().conflicts).sum();
    assert!(conflicts > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_cached_repository_serializes_commands_without_conflicts() {
    let store = InstrumentedStore::yielding();
    let repo = Arc::new(Repo::new(store.clone()).with_cache(100));
    open(&repo, "3").await;

    let results = run_concurrently(vec![Arc::clone(&repo)], "3").await;
    assert!(results.iter().all(|r| r == &Ok(1)), "{results:?}");

    let account = repo.load("3").await.unwrap();
    assert_eq!(account.state.balance(), expected_total(0..WRITERS));
    assert_eq!(repo.stats().conflicts, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn default_policy_never_loses_an_update() {
    // With only 3 attempts some of 16 racing writers may give up; each one
    // that does gets a conflict error, and every one that succeeded counts.
    let store = InstrumentedStore::yielding();
    let repo = Arc::new(Repo::new(store.clone()));
    open(&repo, "4").await;

    let mut tasks = Vec::new();
    for n in 0..WRITERS {
        let repo = Arc::clone(&repo);
        tasks.push(tokio::spawn(async move {
            (n, repo.execute("4", deposit(n), CommandMeta::new()).await)
        }));
    }
    let mut succeeded = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            (n, Ok(_)) => succeeded.push(n),
            (
                _,
                Err(AggregateError::Conflict {
                    expected,
                    actual,
                    attempts,
                    ..
                }),
            ) => {
                assert_eq!(attempts, 3);
                let ExpectedVersion::Exact(e) = expected else {
                    panic!("{expected:?}")
                };
                let CurrentVersion::Current(a) = actual else {
                    panic!("{actual:?}")
                };
                assert!(a > e, "actual {a} should be past expected {e}");
            }
            (_, Err(e)) => panic!("unexpected error {e}"),
        }
    }
    let account = repo.load("4").await.unwrap();
    assert_eq!(account.version, 1 + succeeded.len() as u64);
    assert_eq!(
        account.state.balance(),
        expected_total(succeeded.iter().copied())
    );
    let stats = repo.stats();
    assert_eq!(
        stats.conflicts_exhausted as usize,
        WRITERS - succeeded.len()
    );
}

#[tokio::test]
async fn exhausted_conflict_reports_both_versions() {
    let store = InstrumentedStore::new();
    let stale = Repo::new(store.clone())
        .with_cache(10)
        .with_retry_policy(RetryPolicy::no_retry());
    let other = Repo::new(store.clone());
    open(&stale, "5").await; // `stale` caches version 1
    other
        .execute(
            "5",
            AccountCommand::Deposit {
                amount: Decimal::ONE,
            },
            CommandMeta::new(),
        )
        .await
        .unwrap();
    other
        .execute(
            "5",
            AccountCommand::Deposit {
                amount: Decimal::ONE,
            },
            CommandMeta::new(),
        )
        .await
        .unwrap();

    let err = stale
        .execute(
            "5",
            AccountCommand::Deposit {
                amount: Decimal::TEN,
            },
            CommandMeta::new(),
        )
        .await
        .unwrap_err();
    match &err {
        AggregateError::Conflict {
            stream,
            expected,
            actual,
            attempts,
        } => {
            assert_eq!(stream.as_str(), "account-5");
            assert_eq!(*expected, ExpectedVersion::Exact(1));
            assert_eq!(*actual, CurrentVersion::Current(3));
            assert_eq!(*attempts, 1);
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains("version 3") && text.contains("version 1"),
        "{text}"
    );

    // The conflict marked the cached copy stale: the next command catches
    // up first and succeeds, even without retries.
    let done = stale
        .execute(
            "5",
            AccountCommand::Deposit {
                amount: Decimal::TEN,
            },
            CommandMeta::new(),
        )
        .await
        .unwrap();
    assert_eq!(done.version, 4);
    assert_eq!(
        stale.load("5").await.unwrap().state.balance(),
        Decimal::from(12)
    );
}
