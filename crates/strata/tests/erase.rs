//! `Repository::erase`: the stream is erased in the store, the aggregate's
//! snapshots in the snapshot store, its state dropped from the cache; a
//! failed guard or a store that cannot erase leaves everything; and no
//! snapshot survives an erasure racing commands on the same aggregate.

// Helpers outside `#[test]` functions unwrap too; clippy.toml only exempts the tests.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::InstrumentedStore;
use rust_decimal::Decimal;
use strata::bank::{AccountCommand, BankAccount};
use strata::{
    async_trait, AggregateError, AppendResult, CommandMeta, Direction, Error, EventStore,
    ExpectedVersion, Limits, MemorySnapshotStore, MemoryStore, NewEvent, Position, ReadFilter,
    RecordedEvent, Repository, Snapshot, SnapshotPolicy, SnapshotStore, StreamAppend, StreamId,
    StreamInfo, SubscribeFrom, Subscription, Version,
};

const OWNER: &str = "ada-SECRET-91e4";

fn stream(id: &str) -> StreamId {
    StreamId::new(format!("account-{id}")).unwrap()
}

async fn open_and_deposit<S: EventStore>(repo: &Repository<BankAccount, S>, id: &str, n: usize) {
    repo.execute(
        id,
        AccountCommand::Open {
            owner: OWNER.into(),
        },
        CommandMeta::new(),
    )
    .await
    .unwrap();
    for _ in 0..n {
        deposit(repo, id).await.unwrap();
    }
}

async fn deposit<S: EventStore>(
    repo: &Repository<BankAccount, S>,
    id: &str,
) -> Result<(), AggregateError<strata::bank::AccountError>> {
    repo.execute(
        id,
        AccountCommand::Deposit {
            amount: Decimal::ONE,
        },
        CommandMeta::new(),
    )
    .await
    .map(drop)
}

fn is_stream_deleted<E: std::fmt::Debug>(
    r: &Result<impl std::fmt::Debug, AggregateError<E>>,
) -> bool {
    matches!(r, Err(AggregateError::Store(Error::StreamDeleted { .. })))
}

#[tokio::test]
async fn erase_removes_the_stream_its_snapshots_and_its_cached_state() {
    let snapshots = Arc::new(MemorySnapshotStore::new());
    let repo = Repository::<BankAccount, _>::new(MemoryStore::new())
        .with_cache(100)
        .with_snapshots(snapshots.clone(), SnapshotPolicy::every(5));
    open_and_deposit(&repo, "1", 11).await; // versions 1..=12
    open_and_deposit(&repo, "2", 11).await;
    repo.flush_snapshots().await;
    assert!(snapshots
        .load(&stream("1"), u64::MAX)
        .await
        .unwrap()
        .is_some());

    repo.erase("1", ExpectedVersion::Exact(12)).await.unwrap();
    assert_eq!(snapshots.load(&stream("1"), u64::MAX).await.unwrap(), None);
    assert!(snapshots
        .load(&stream("2"), u64::MAX)
        .await
        .unwrap()
        .is_some());
    let read = repo
        .store()
        .read_stream(&stream("1"), 1, 10, Direction::Forward)
        .await;
    assert!(matches!(read, Err(Error::StreamDeleted { .. })), "{read:?}");
    let all = repo
        .store()
        .read_all(Position::START, 1_000, &ReadFilter::all())
        .await
        .unwrap();
    assert!(all.iter().all(|e| e.stream_id != stream("1")));
    assert_eq!(all.len(), 12, "account-2's events stay");
    // The cached state is gone: a command loads, and finds the stream erased.
    let misses = repo.stats().cache_misses;
    assert!(is_stream_deleted(&deposit(&repo, "1").await));
    assert_eq!(repo.stats().cache_misses, misses + 1);
    assert!(is_stream_deleted(&repo.load("1").await));
    // The other aggregate is untouched.
    assert_eq!(
        repo.load("2").await.unwrap().state.balance(),
        Decimal::from(11)
    );
    deposit(&repo, "2").await.unwrap();
    // Erasing again works with `Any` only.
    repo.erase("1", ExpectedVersion::Any).await.unwrap();
    assert!(is_stream_deleted(
        &repo.erase("1", ExpectedVersion::Exact(12)).await
    ));
}

#[tokio::test]
async fn a_failed_guard_erases_nothing() {
    let snapshots = Arc::new(MemorySnapshotStore::new());
    let repo = Repository::<BankAccount, _>::new(MemoryStore::new())
        .with_cache(100)
        .with_snapshots(snapshots.clone(), SnapshotPolicy::every(5));
    open_and_deposit(&repo, "1", 5).await;
    repo.flush_snapshots().await;
    let r = repo.erase("1", ExpectedVersion::Exact(3)).await;
    assert!(
        matches!(
            r,
            Err(AggregateError::Store(Error::WrongExpectedVersion { .. }))
        ),
        "{r:?}"
    );
    assert!(snapshots
        .load(&stream("1"), u64::MAX)
        .await
        .unwrap()
        .is_some());
    let hits = repo.stats().cache_hits;
    deposit(&repo, "1").await.unwrap();
    assert_eq!(repo.stats().cache_hits, hits + 1, "still cached");
}

#[tokio::test]
async fn a_store_that_cannot_erase_keeps_everything() {
    let snapshots = Arc::new(MemorySnapshotStore::new());
    // This wrapper does not forward `erase_stream`: the default refuses.
    let repo = Repository::<BankAccount, _>::new(InstrumentedStore::new())
        .with_snapshots(snapshots.clone(), SnapshotPolicy::every(5));
    open_and_deposit(&repo, "1", 5).await;
    repo.flush_snapshots().await;
    let r = repo.erase("1", ExpectedVersion::Any).await;
    assert!(
        matches!(r, Err(AggregateError::Store(Error::Unsupported { .. }))),
        "{r:?}"
    );
    assert!(snapshots
        .load(&stream("1"), u64::MAX)
        .await
        .unwrap()
        .is_some());
    deposit(&repo, "1").await.unwrap();
}

/// A snapshot store whose saves take a while, so that saves are in flight
/// when the erasure comes.
struct SlowSaves(MemorySnapshotStore);

#[async_trait]
impl SnapshotStore for SlowSaves {
    async fn save(&self, snapshot: Snapshot) -> strata::Result<()> {
        tokio::time::sleep(Duration::from_millis(2)).await;
        self.0.save(snapshot).await
    }

    async fn load(&self, stream: &StreamId, max: Version) -> strata::Result<Option<Snapshot>> {
        self.0.load(stream, max).await
    }

    async fn delete(&self, stream: &StreamId) -> strata::Result<()> {
        self.0.delete(stream).await
    }
}

/// A store whose appends are acknowledged a while after they commit: a
/// command that appended just before the erasure is still between its
/// append and its snapshot when the erasure runs.
#[derive(Clone, Default)]
struct SlowAcks(MemoryStore);

#[async_trait]
impl EventStore for SlowAcks {
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> strata::Result<AppendResult> {
        let r = self.0.append(stream, expected, events).await;
        tokio::time::sleep(Duration::from_millis(3)).await;
        r
    }

    async fn append_multi(&self, appends: Vec<StreamAppend>) -> strata::Result<Vec<AppendResult>> {
        self.0.append_multi(appends).await
    }

    async fn read_stream(
        &self,
        stream: &StreamId,
        from: Version,
        max_count: usize,
        direction: Direction,
    ) -> strata::Result<Vec<RecordedEvent>> {
        self.0.read_stream(stream, from, max_count, direction).await
    }

    async fn read_all(
        &self,
        from: Position,
        max_count: usize,
        filter: &ReadFilter,
    ) -> strata::Result<Vec<RecordedEvent>> {
        self.0.read_all(from, max_count, filter).await
    }

    async fn read_all_backward(
        &self,
        before: Position,
        max_count: usize,
        filter: &ReadFilter,
    ) -> strata::Result<Vec<RecordedEvent>> {
        self.0.read_all_backward(before, max_count, filter).await
    }

    async fn subscribe(
        &self,
        from: SubscribeFrom,
        filter: ReadFilter,
    ) -> strata::Result<Subscription> {
        self.0.subscribe(from, filter).await
    }

    async fn stream_info(&self, stream: &StreamId) -> strata::Result<Option<StreamInfo>> {
        self.0.stream_info(stream).await
    }

    async fn delete_stream(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
    ) -> strata::Result<()> {
        self.0.delete_stream(stream, expected).await
    }

    async fn tombstone_stream(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
    ) -> strata::Result<()> {
        self.0.tombstone_stream(stream, expected).await
    }

    async fn erase_stream(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
    ) -> strata::Result<()> {
        self.0.erase_stream(stream, expected).await
    }

    async fn head_position(&self) -> strata::Result<Position> {
        self.0.head_position().await
    }

    fn limits(&self) -> &Limits {
        self.0.limits()
    }
}

/// Four tasks deposit into one account (a snapshot after every event)
/// until it is erased under them; afterwards, no snapshot of it is left.
async fn race(cache: usize) {
    for round in 0..20 {
        let snapshots = Arc::new(SlowSaves(MemorySnapshotStore::new()));
        let repo = Arc::new(
            Repository::<BankAccount, _>::new(SlowAcks::default())
                .with_cache(cache)
                .with_snapshots(snapshots.clone(), SnapshotPolicy::every(1)),
        );
        let id = format!("r{round}");
        open_and_deposit(&repo, &id, 0).await;
        let writers: Vec<_> = (0..4)
            .map(|_| {
                let (repo, id) = (repo.clone(), id.clone());
                tokio::spawn(async move {
                    let mut done = 0u32;
                    loop {
                        match deposit(&repo, &id).await {
                            Ok(()) => done += 1,
                            Err(AggregateError::Store(Error::StreamDeleted { .. })) => return done,
                            Err(AggregateError::Conflict { .. }) => {}
                            Err(e) => panic!("{e}"),
                        }
                    }
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(5 + round % 5)).await;
        repo.erase(&id, ExpectedVersion::Any).await.unwrap();
        let mut deposits = 0;
        for w in writers {
            deposits += w.await.unwrap();
        }
        assert!(deposits > 0, "round {round}: the writers never ran");
        repo.flush_snapshots().await;
        assert_eq!(
            snapshots.load(&stream(&id), u64::MAX).await.unwrap(),
            None,
            "round {round}: a snapshot outlived the erasure"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_snapshot_survives_an_erasure_racing_commands() {
    race(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_snapshot_survives_an_erasure_racing_commands_on_a_cached_aggregate() {
    race(100).await;
}
