//! The query model: `AtLeast(position)` returns only once the projection
//! has reached the position (read-your-writes), times out with a clear
//! error otherwise, and the cache never answers with a state older than
//! the position a query demands.

// Helpers outside `#[test]` functions unwrap too; clippy.toml only exempts the tests.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use rust_decimal::Decimal;
use strata::account_balance::{AccountBalanceProjection, BalanceQuery, ACCOUNT_BALANCES};
use strata::bank::{AccountCommand, BankAccount};
use strata::query::{Consistency, QueryError, QueryModel, ReadModel};
use strata::{
    CommandMeta, EventStore, ExpectedVersion, MemoryCheckpointStore, MemoryStore, NewEvent,
    Position, ProjectionRunner, ProjectionStatus, Repository, StreamId, Typed, WaitError,
};

type Balances = Typed<AccountBalanceProjection>;

async fn open(repo: &Repository<BankAccount, MemoryStore>, id: &str, owner: &str) -> Position {
    let done = repo
        .execute(
            id,
            AccountCommand::Open {
                owner: owner.into(),
            },
            CommandMeta::new(),
        )
        .await
        .unwrap();
    done.positions.unwrap().1
}

async fn deposit(repo: &Repository<BankAccount, MemoryStore>, id: &str, amount: i64) -> Position {
    let done = repo
        .execute(
            id,
            AccountCommand::Deposit {
                amount: Decimal::from(amount),
            },
            CommandMeta::new(),
        )
        .await
        .unwrap();
    done.positions.unwrap().1
}

#[tokio::test]
async fn at_least_returns_only_after_the_projection_reached_the_position() {
    let store = MemoryStore::new();
    let repo = Repository::<BankAccount, _>::new(store.clone());
    open(&repo, "1", "ada").await;
    let written = deposit(&repo, "1", 10).await;

    // The projection exists but nothing runs it yet.
    let runner = ProjectionRunner::new(
        store.clone(),
        Arc::new(MemoryCheckpointStore::new()),
        Typed::new(AccountBalanceProjection::new()),
    );
    let model = ReadModel::new(runner.projection().clone(), 100);
    let query = {
        let model = model.clone();
        tokio::spawn(async move {
            model
                .query(
                    &BalanceQuery::Balance("1".into()),
                    Consistency::AtLeast(written),
                )
                .await
        })
    };
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
    assert!(
        !query.is_finished(),
        "answered before the projection got there"
    );
    // Eventual does not wait: the projection has nothing yet.
    let now = model
        .query(&BalanceQuery::Balance("1".into()), Consistency::Eventual)
        .await
        .unwrap();
    assert_eq!(now.balance(), None);

    let running = runner.spawn();
    let answer = query.await.unwrap().unwrap();
    assert_eq!(answer.balance(), Some(Decimal::from(10)));
    assert!(running.projection().progress().position >= written);
    running.stop().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn at_least_gives_up_after_the_bound_with_a_clear_error() {
    let store = MemoryStore::new();
    let repo = Repository::<BankAccount, _>::new(store.clone());
    let written = open(&repo, "1", "ada").await;
    let runner = ProjectionRunner::new(
        store.clone(),
        Arc::new(MemoryCheckpointStore::new()),
        Typed::new(AccountBalanceProjection::new()),
    );
    let model =
        ReadModel::new(runner.projection().clone(), 100).with_max_wait(Duration::from_millis(250));
    let err = model
        .query(
            &BalanceQuery::Balance("1".into()),
            Consistency::AtLeast(written),
        )
        .await
        .unwrap_err();
    match &err {
        QueryError::NotReached(WaitError::Timeout {
            projection,
            wanted,
            reached,
            ..
        }) => {
            assert_eq!(projection, ACCOUNT_BALANCES);
            assert_eq!((*wanted, *reached), (written, Position::START));
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains("account-balances") && text.contains("250 ms"),
        "{text}"
    );
}

#[tokio::test]
async fn a_stopped_projection_fails_waits_at_once() {
    let store = MemoryStore::new();
    let model = QueryModel::new(store.clone(), Arc::new(MemoryCheckpointStore::new()));
    let balances = model
        .register(Typed::new(AccountBalanceProjection::new()))
        .unwrap();
    model.shutdown().await.unwrap();
    assert_eq!(
        balances.projection().progress().status,
        ProjectionStatus::Stopped
    );
    let err = balances
        .query(
            &BalanceQuery::TotalBalance,
            Consistency::AtLeast(Position(1)),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, QueryError::NotReached(WaitError::Stopped { .. })),
        "{err}"
    );
}

#[tokio::test]
async fn read_your_writes_and_the_cache_never_serves_an_older_state() {
    let store = MemoryStore::new();
    let repo = Repository::<BankAccount, _>::new(store.clone()).with_cache(100);
    let model = QueryModel::new(store.clone(), Arc::new(MemoryCheckpointStore::new()));
    let balances = model
        .register(Typed::new(AccountBalanceProjection::new()))
        .unwrap();
    open(&repo, "a", "ada").await;
    open(&repo, "b", "bob").await;

    let mut expected_a = 0i64;
    let mut expected_total = 0i64;
    for i in 0..200i64 {
        let account = if i % 3 == 0 { "b" } else { "a" };
        let written = deposit(&repo, account, i + 1).await;
        if account == "a" {
            expected_a += i + 1;
        }
        expected_total += i + 1;
        // Asked twice: the second may come from the cache, and must agree.
        for _ in 0..2 {
            let a = balances
                .query(
                    &BalanceQuery::Balance("a".into()),
                    Consistency::AtLeast(written),
                )
                .await
                .unwrap();
            assert_eq!(
                a.balance(),
                Some(Decimal::from(expected_a)),
                "after deposit {i}"
            );
            let total = balances
                .query(&BalanceQuery::TotalBalance, Consistency::AtLeast(written))
                .await
                .unwrap();
            assert_eq!(total.total(), Some(Decimal::from(expected_total)));
        }
    }
    let stats = balances.cache_stats();
    assert!(stats.hits >= 200, "{stats:?}");
    assert!(stats.misses >= 400, "every write invalidates: {stats:?}");

    // Through the model by name, and the owner index.
    let of_bob = model
        .query::<Balances>(
            ACCOUNT_BALANCES,
            &BalanceQuery::AccountsOf("bob".into()),
            Consistency::Latest,
        )
        .await
        .unwrap();
    assert_eq!(of_bob.accounts().unwrap().len(), 1);
    assert_eq!(of_bob.accounts().unwrap()[0].account_id, "b");
    assert!(matches!(
        model.read_model::<Balances>("nope"),
        Err(QueryError::UnknownProjection { .. })
    ));
    model.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_position_the_filter_skips_does_not_make_a_query_wait() {
    let store = MemoryStore::new();
    let repo = Repository::<BankAccount, _>::new(store.clone());
    let model = QueryModel::new(store.clone(), Arc::new(MemoryCheckpointStore::new()))
        .with_max_wait(Duration::from_secs(10));
    let balances = model
        .register(Typed::new(AccountBalanceProjection::new()))
        .unwrap();
    open(&repo, "1", "ada").await;
    deposit(&repo, "1", 3).await;
    let balance = balances
        .query(&BalanceQuery::Balance("1".into()), Consistency::Latest)
        .await
        .unwrap();
    assert_eq!(balance.balance(), Some(Decimal::from(3)));
    // The projection is live; an event it does not read commits.
    let other = StreamId::new("audit-1").unwrap();
    let r = store
        .append(
            &other,
            ExpectedVersion::Any,
            vec![NewEvent::json_bytes("Audited", "{}")],
        )
        .await
        .unwrap();
    let answer = balances
        .query(
            &BalanceQuery::Balance("1".into()),
            Consistency::AtLeast(r.last_position),
        )
        .await
        .unwrap();
    assert_eq!(answer.balance(), Some(Decimal::from(3)));
    assert!(balances.projection().progress().position >= r.last_position);
    model.shutdown().await.unwrap();
}

#[tokio::test]
async fn lag_is_measured_in_positions_and_time_and_converges() {
    let store = MemoryStore::new();
    let repo = Repository::<BankAccount, _>::new(store.clone());
    open(&repo, "1", "ada").await;
    for _ in 0..9 {
        deposit(&repo, "1", 1).await;
    }
    let runner = ProjectionRunner::new(
        store.clone(),
        Arc::new(MemoryCheckpointStore::new()),
        Typed::new(AccountBalanceProjection::new()),
    );
    let shared = runner.projection().clone();
    let lag = strata::consistency::lag_of(&store, shared.name(), &shared.progress())
        .await
        .unwrap();
    assert_eq!((lag.position, lag.head), (Position::START, Position(10)));
    assert_eq!(lag.positions_behind, 10);
    assert!(!lag.is_caught_up());

    let running = runner.spawn();
    shared
        .wait_for(Position(10), Duration::from_secs(10))
        .await
        .unwrap();
    let lag = strata::consistency::lag_of(&store, shared.name(), &shared.progress())
        .await
        .unwrap();
    assert!(lag.is_caught_up());
    assert_eq!(lag.positions_behind, 0);
    assert_eq!(lag.time_behind, Duration::ZERO);
    running.stop().await.unwrap();
}

#[tokio::test]
async fn a_rebuild_through_the_model_keeps_answers_consistent() {
    let store = MemoryStore::new();
    let repo = Repository::<BankAccount, _>::new(store.clone());
    let model = QueryModel::new(store.clone(), Arc::new(MemoryCheckpointStore::new()));
    let balances = model
        .register(Typed::new(AccountBalanceProjection::new()))
        .unwrap();
    open(&repo, "1", "ada").await;
    let written = deposit(&repo, "1", 4).await;
    let before = balances
        .query(
            &BalanceQuery::Balance("1".into()),
            Consistency::AtLeast(written),
        )
        .await
        .unwrap();
    let report = model.rebuild::<Balances>(ACCOUNT_BALANCES).await.unwrap();
    assert_eq!(report.events, 2);
    let after = balances
        .query(
            &BalanceQuery::Balance("1".into()),
            Consistency::AtLeast(written),
        )
        .await
        .unwrap();
    assert_eq!(before, after);
    let lags = model.lag().await.unwrap();
    assert_eq!(lags.len(), 1);
    assert!(lags[0].is_caught_up());
    model.shutdown().await.unwrap();
}

/// Counts events; on a `Slow` event it tells the test it is folding and
/// blocks until the test releases it, holding the runner's batch open.
#[derive(Clone)]
struct Gate {
    count: u64,
    entered: std::sync::mpsc::SyncSender<()>,
    release: Arc<std::sync::Mutex<std::sync::mpsc::Receiver<()>>>,
}

impl strata::Projection for Gate {
    fn name(&self) -> &str {
        "gate"
    }

    fn update(&mut self, event: &strata::RecordedEvent) -> Result<(), strata::ProjectionError> {
        if event.event_type == "Slow" {
            let _ = self.entered.send(());
            let _ = self.release.lock().unwrap().recv();
        }
        self.count += 1;
        Ok(())
    }

    fn reset(&mut self) {
        self.count = 0;
    }
}

impl strata::Queryable for Gate {
    type Query = ();
    type Answer = u64;

    fn query(&self, _: &()) -> u64 {
        self.count
    }
}

async fn append_one(store: &MemoryStore, event_type: &str) -> Position {
    let stream = StreamId::new("gate-1").unwrap();
    let done = store
        .append(
            &stream,
            ExpectedVersion::Any,
            vec![NewEvent::json(event_type, &serde_json::json!({})).unwrap()],
        )
        .await
        .unwrap();
    done.last_position
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eventual_answers_at_once_while_the_runner_folds_a_slow_batch() {
    let store = MemoryStore::new();
    let first = append_one(&store, "Fast").await;
    let (entered_tx, entered) = std::sync::mpsc::sync_channel(1);
    let (release, release_rx) = std::sync::mpsc::channel();
    let runner = ProjectionRunner::new(
        store.clone(),
        Arc::new(MemoryCheckpointStore::new()),
        Gate {
            count: 0,
            entered: entered_tx,
            release: Arc::new(std::sync::Mutex::new(release_rx)),
        },
    );
    let model = ReadModel::new(runner.projection().clone(), 100);
    let running = runner.spawn();
    running
        .projection()
        .wait_for(first, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(model.query(&(), Consistency::Eventual).await.unwrap(), 1);

    // The runner takes the slow event and blocks inside its fold, holding
    // the projection for the whole batch.
    let second = append_one(&store, "Slow").await;
    tokio::task::spawn_blocking(move || entered.recv())
        .await
        .unwrap()
        .unwrap();
    // Not a timing assertion: a query that waited for the fold would wait
    // for ever, as the fold only ends when the test releases it below.
    let during = tokio::time::timeout(
        Duration::from_secs(10),
        model.query(&(), Consistency::Eventual),
    )
    .await
    .expect("an eventual query waited for the runner's fold")
    .unwrap();
    assert_eq!(during, 1, "the last published state");

    release.send(()).unwrap();
    running
        .projection()
        .wait_for(second, Duration::from_secs(10))
        .await
        .unwrap();
    // The runner reports its position before it lets go of the state (it
    // may still be committing), and while it holds it an eventual query
    // answers from the last published copy: the new state shows once the
    // runner has let go, which takes no more than the commit.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while model.query(&(), Consistency::Eventual).await.unwrap() != 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "an eventual query still answered the old state 10 s after the runner moved on"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    running.stop().await.unwrap();
}
