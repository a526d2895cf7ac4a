//! The durable checkpoint store: save/load/reset across reopen, torn tails,
//! damage that is not a torn tail, compaction, and injected I/O faults.

// Helpers outside `#[test]` functions unwrap too; clippy.toml only exempts the tests.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use strata_core::{CheckpointStore, Error, Position};
use strata_log::checkpoint::{
    CheckpointStoreOptions, LogCheckpointStore, CHECKPOINT_FILE_HEADER_BYTES,
    MAX_CHECKPOINT_NAME_BYTES,
};
use strata_log::io::{Faults, FaultyStorage, FsStorage};

fn open(dir: &Path) -> LogCheckpointStore {
    LogCheckpointStore::open(dir).unwrap()
}

fn open_small(dir: &Path) -> LogCheckpointStore {
    LogCheckpointStore::open_with_options(
        dir,
        Arc::new(FsStorage),
        CheckpointStoreOptions {
            compact_at_bytes: 4096,
        },
    )
    .unwrap()
}

fn file(dir: &Path) -> PathBuf {
    dir.join("checkpoints").join("checkpoints.log")
}

#[tokio::test]
async fn save_load_and_reset_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        assert_eq!(store.load("balances").await.unwrap(), None);
        store.save("balances", Position(10)).await.unwrap();
        store.save("balances", Position(25)).await.unwrap();
        store.save("audit", Position(7)).await.unwrap();
        store.save("gone", Position(3)).await.unwrap();
        store.reset("gone").await.unwrap();
        // Resetting a name that has no checkpoint is fine.
        store.reset("never-saved").await.unwrap();
        assert_eq!(store.load("balances").await.unwrap(), Some(Position(25)));
        assert_eq!(store.load("gone").await.unwrap(), None);
    }
    let store = open(dir.path());
    assert_eq!(store.load("balances").await.unwrap(), Some(Position(25)));
    assert_eq!(store.load("audit").await.unwrap(), Some(Position(7)));
    assert_eq!(store.load("gone").await.unwrap(), None);
    assert_eq!(store.stats().names, 2);
    // A reset name can be saved again.
    store.save("gone", Position(1)).await.unwrap();
    drop(store);
    assert_eq!(
        open(dir.path()).load("gone").await.unwrap(),
        Some(Position(1))
    );
}

#[tokio::test]
async fn open_takes_any_path_and_runs_off_the_async_workers() {
    let dir = tempfile::tempdir().unwrap();
    let owned: PathBuf = dir.path().to_path_buf();
    {
        let store = LogCheckpointStore::open(&owned).unwrap();
        store.save("balances", Position(4)).await.unwrap();
    }
    // As its documentation says: opening blocks, so async code opens
    // through `spawn_blocking`.
    let as_string = dir.path().to_str().unwrap().to_owned();
    let store = tokio::task::spawn_blocking(move || LogCheckpointStore::open(as_string))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(store.load("balances").await.unwrap(), Some(Position(4)));
}

#[tokio::test]
async fn a_tail_with_huge_length_fields_is_cut_without_allocating_them() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        store.save("a", Position(1)).await.unwrap();
    }
    let len = std::fs::metadata(file(dir.path())).unwrap().len();
    // A record claiming a 4 GiB length and a 64 KiB name.
    let mut tail = vec![0u8; 24];
    tail[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
    tail[8] = 1;
    tail[10..12].copy_from_slice(&u16::MAX.to_le_bytes());
    let mut bytes = std::fs::read(file(dir.path())).unwrap();
    bytes.extend_from_slice(&tail);
    std::fs::write(file(dir.path()), &bytes).unwrap();

    let store = open(dir.path());
    assert_eq!(store.load("a").await.unwrap(), Some(Position(1)));
    assert_eq!(
        std::fs::metadata(file(dir.path())).unwrap().len(),
        len,
        "the tail is cut"
    );
}

#[tokio::test]
async fn saving_the_same_position_again_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.save("p", Position(5)).await.unwrap();
    let len = std::fs::metadata(file(dir.path())).unwrap().len();
    store.save("p", Position(5)).await.unwrap();
    assert_eq!(std::fs::metadata(file(dir.path())).unwrap().len(), len);
}

#[tokio::test]
async fn a_torn_tail_at_any_offset_of_the_last_record_is_cut() {
    let dir = tempfile::tempdir().unwrap();
    let last_start = {
        let store = open(dir.path());
        store.save("a", Position(1)).await.unwrap();
        store.save("b", Position(2)).await.unwrap();
        let at = store.stats().file_bytes;
        store.save("a", Position(3)).await.unwrap();
        at
    };
    let full = std::fs::read(file(dir.path())).unwrap();
    let record_len = 24 + 1;
    for cut in last_start as usize..full.len() {
        let copy = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(copy.path().join("checkpoints")).unwrap();
        std::fs::write(file(copy.path()), &full[..cut]).unwrap();
        let store = open(copy.path());
        assert_eq!(
            store.load("b").await.unwrap(),
            Some(Position(2)),
            "cut {cut}"
        );
        let a = store.load("a").await.unwrap();
        if cut >= last_start as usize + record_len {
            assert_eq!(a, Some(Position(3)), "cut {cut}: only padding missing");
        } else {
            assert_eq!(a, Some(Position(1)), "cut {cut}");
            assert_eq!(
                std::fs::metadata(file(copy.path())).unwrap().len(),
                last_start,
                "the torn bytes are gone"
            );
        }
        store.save("c", Position(9)).await.unwrap();
        drop(store);
        let store = open(copy.path());
        assert_eq!(store.load("c").await.unwrap(), Some(Position(9)));
        assert_eq!(store.load("b").await.unwrap(), Some(Position(2)));
    }
}

#[tokio::test]
async fn damage_followed_by_valid_records_refuses_to_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        store.save("a", Position(1)).await.unwrap();
        store.reset("a").await.unwrap();
        store.save("b", Position(2)).await.unwrap();
    }
    let path = file(dir.path());
    let mut bytes = std::fs::read(&path).unwrap();
    // The reset record (the second one): skipping it would move `a` forward.
    let second = CHECKPOINT_FILE_HEADER_BYTES + 32;
    bytes[second + 8] ^= 0x03;
    std::fs::write(&path, &bytes).unwrap();
    match LogCheckpointStore::open(dir.path()) {
        Err(Error::Corrupt { location, reason }) => {
            assert!(location.contains("checkpoints.log"), "{location}");
            assert!(location.contains(&format!("offset {second}")), "{location}");
            assert!(reason.contains("not a torn write"), "{reason}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    // A damaged file header is refused too.
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[second + 8] ^= 0x03;
    bytes[3] ^= 0x10;
    std::fs::write(&path, &bytes).unwrap();
    assert!(matches!(
        LogCheckpointStore::open(dir.path()),
        Err(Error::Corrupt { .. })
    ));
}

#[tokio::test]
async fn many_saves_trigger_compaction_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let names = ["balances", "audit-trail", "search-index"];
    {
        let store = open_small(dir.path());
        for i in 1..=600u64 {
            store
                .save(names[(i % 3) as usize], Position(i * 100))
                .await
                .unwrap();
        }
        store.reset("audit-trail").await.unwrap();
        let stats = store.stats();
        assert!(stats.compactions >= 3, "{stats:?}");
        assert!(stats.file_bytes <= 4096 + 64, "{stats:?}");
        assert_eq!(
            stats.file_bytes,
            std::fs::metadata(file(dir.path())).unwrap().len()
        );
    }
    let store = open_small(dir.path());
    assert_eq!(
        store.load("balances").await.unwrap(),
        Some(Position(60_000))
    );
    assert_eq!(store.load("audit-trail").await.unwrap(), None);
    assert_eq!(
        store.load("search-index").await.unwrap(),
        Some(Position(59_900))
    );
    assert!(!dir.path().join("checkpoints/checkpoints.log.tmp").exists());
}

#[tokio::test]
async fn a_failing_fsync_fails_the_save_and_poisons_writes_until_reopen() {
    let dir = tempfile::tempdir().unwrap();
    // Create the file on healthy storage (new files start as a `.tmp`).
    open(dir.path()).save("a", Position(1)).await.unwrap();
    let faults = Faults::new();
    *faults.file_filter.lock() = "checkpoints.log".into();
    let store = LogCheckpointStore::open_with_storage(
        dir.path(),
        Arc::new(FaultyStorage::new(faults.clone())),
    )
    .unwrap();
    store.save("b", Position(2)).await.unwrap();
    faults.fail_next_sync.store(true, Ordering::SeqCst);
    let failed = store.save("a", Position(5)).await;
    assert!(matches!(failed, Err(Error::Io { .. })), "{failed:?}");
    assert!(matches!(
        store.save("c", Position(1)).await,
        Err(Error::Poisoned { .. })
    ));
    assert!(matches!(
        store.reset("b").await,
        Err(Error::Poisoned { .. })
    ));
    assert_eq!(store.load("b").await.unwrap(), Some(Position(2)));
    drop(store);

    let store = open(dir.path());
    assert_eq!(store.load("b").await.unwrap(), Some(Position(2)));
    let a = store.load("a").await.unwrap();
    assert!(a == Some(Position(1)) || a == Some(Position(5)), "{a:?}");
    store.save("c", Position(1)).await.unwrap();
}

#[tokio::test]
async fn a_torn_write_then_crash_loses_only_the_unacknowledged_save() {
    let dir = tempfile::tempdir().unwrap();
    open(dir.path()).save("a", Position(1)).await.unwrap();
    let faults = Faults::new();
    let store = LogCheckpointStore::open_with_storage(
        dir.path(),
        Arc::new(FaultyStorage::new(faults.clone())),
    )
    .unwrap();
    store.save("a", Position(2)).await.unwrap();
    faults.torn_write_bytes.store(11, Ordering::SeqCst);
    assert!(store.save("a", Position(3)).await.is_err());
    drop(store);
    assert_eq!(open(dir.path()).load("a").await.unwrap(), Some(Position(2)));
}

#[tokio::test]
async fn bad_input_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let long = "n".repeat(MAX_CHECKPOINT_NAME_BYTES + 1);
    assert!(matches!(
        store.save(&long, Position(1)).await,
        Err(Error::InvalidInput { .. })
    ));
    assert!(matches!(
        LogCheckpointStore::open(dir.path()),
        Err(Error::InvalidInput { .. })
    ));
    assert!(matches!(
        LogCheckpointStore::open_with_options(
            tempfile::tempdir().unwrap().path(),
            Arc::new(FsStorage),
            CheckpointStoreOptions {
                compact_at_bytes: 1
            }
        ),
        Err(Error::InvalidInput { .. })
    ));
}
