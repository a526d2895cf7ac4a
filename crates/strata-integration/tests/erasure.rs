//! `Repository::erase` on the durable stores: a bank account whose owner's
//! name is a unique marker, erased through the repository over a log store
//! and its snapshot store, then an erasing scavenge; no file of the data
//! directory (compressed segments decompressed) holds the marker any more,
//! the other account loads from its snapshot as before, through a reopen.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rust_decimal::Decimal;
use strata::bank::{AccountCommand, BankAccount};
use strata::{
    AggregateError, CommandMeta, Error, ExpectedVersion, Repository, ScavengeOptions,
    SnapshotPolicy, SnapshotStore, StreamId,
};
use strata_log::io::FsStorage;
use strata_log::snapshot::LogSnapshotStore;
use strata_log::{LogConfig, LogStore};

const SECRET: &str = "ada-SECRET-e5f0";
const KEPT: &str = "bo-KEPT-19aa";

/// The files under `dir` whose bytes (a compressed segment's decompressed)
/// hold `needle`.
fn files_holding(dir: &Path, needle: &str) -> Vec<PathBuf> {
    strata_log::inspect::files_holding(dir, needle.as_bytes()).unwrap()
}

async fn open(dir: &Path) -> (Arc<LogStore>, Arc<LogSnapshotStore>) {
    let store = LogStore::open(LogConfig::new(dir).max_segment_bytes(16 * 1024))
        .await
        .unwrap();
    let path = dir.to_path_buf();
    let snapshots = tokio::task::spawn_blocking(move || LogSnapshotStore::open(path))
        .await
        .unwrap()
        .unwrap();
    (Arc::new(store), Arc::new(snapshots))
}

fn repo(
    store: &Arc<LogStore>,
    snapshots: &Arc<LogSnapshotStore>,
) -> Repository<BankAccount, Arc<LogStore>> {
    Repository::new(store.clone())
        .with_cache(100)
        .with_snapshots(snapshots.clone(), SnapshotPolicy::every(10))
}

async fn open_account(r: &Repository<BankAccount, Arc<LogStore>>, id: &str, owner: &str) {
    r.execute(
        id,
        AccountCommand::Open {
            owner: owner.into(),
        },
        CommandMeta::new(),
    )
    .await
    .unwrap();
    for _ in 0..99 {
        r.execute(
            id,
            AccountCommand::Deposit {
                amount: Decimal::ONE,
            },
            CommandMeta::new().with_user_id(format!("{owner}-user")),
        )
        .await
        .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erased_aggregate_leaves_no_byte_in_the_log_store_directory() {
    let dir = tempfile::tempdir().unwrap();
    let (store, snapshots) = open(dir.path()).await;
    let r = repo(&store, &snapshots);
    open_account(&r, "1", SECRET).await;
    open_account(&r, "2", KEPT).await;
    r.flush_snapshots().await;
    assert!(files_holding(dir.path(), SECRET).len() >= 3);
    let account_1 = StreamId::new("account-1").unwrap();
    assert!(snapshots
        .load(&account_1, u64::MAX)
        .await
        .unwrap()
        .is_some());

    r.erase("1", ExpectedVersion::Exact(100)).await.unwrap();
    assert_eq!(snapshots.load(&account_1, u64::MAX).await.unwrap(), None);
    let refused = r
        .execute(
            "1",
            AccountCommand::Deposit {
                amount: Decimal::ONE,
            },
            CommandMeta::new(),
        )
        .await;
    assert!(
        matches!(
            refused,
            Err(AggregateError::Store(Error::StreamDeleted { .. }))
        ),
        "{refused:?}"
    );
    let report = store
        .scavenge(ScavengeOptions { erased_only: true })
        .await
        .unwrap();
    assert_eq!(report.events_removed, 100, "{report:?}");
    drop(r);
    let store = Arc::try_unwrap(store).ok().expect("the only handle");
    store.close().await.unwrap();
    drop(snapshots);
    assert_eq!(
        files_holding(dir.path(), SECRET),
        Vec::<PathBuf>::new(),
        "the erased aggregate's bytes are still in these files"
    );
    let report = strata_log::verify::verify(dir.path(), &FsStorage).unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);

    // The other account loads from its snapshot, as before.
    let (store, snapshots) = open(dir.path()).await;
    let r = repo(&store, &snapshots);
    let used = r.stats().snapshots_used;
    let two = r.load("2").await.unwrap();
    assert_eq!((two.version, two.state.balance()), (100, Decimal::from(99)));
    assert_eq!(r.stats().snapshots_used, used + 1);
    assert!(matches!(
        r.load("1").await,
        Err(AggregateError::Store(Error::StreamDeleted { .. }))
    ));
}
