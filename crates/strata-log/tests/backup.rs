//! Backups of a log store in use, incremental backups, restores, and the
//! backups and restores that are refused.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use strata_core::{
    CheckpointStore, Error, EventId, EventStore, ExpectedVersion, NewEvent, Position, ReadFilter,
    RecordedEvent, Snapshot, SnapshotStore, StoreAdmin, StreamId,
};
use strata_log::backup::{backup_dir, restore, BackupError, MANIFEST_FILE};
use strata_log::compress::Compression;
use strata_log::io::FsStorage;
use strata_log::verify::verify;
use strata_log::{Durability, LogCheckpointStore, LogConfig, LogSnapshotStore, LogStore};

/// Small segments, so a test seals (and compresses) several of them.
const SMALL_SEGMENT_BYTES: u64 = 128 * 1024;
/// Writer tasks appending throughout a backup.
const WRITERS: usize = 4;
/// Streams each writer spreads its events over.
const STREAMS_PER_WRITER: usize = 16;

fn small_segments(dir: &Path) -> LogConfig {
    LogConfig::new(dir)
        .durability(Durability::Always)
        .max_segment_bytes(SMALL_SEGMENT_BYTES)
        .compression(Some(Compression::default()))
}

fn event(writer: usize, i: u64) -> NewEvent {
    NewEvent::json(
        "Happened",
        &serde_json::json!({ "writer": writer, "i": i, "pad": "x".repeat(120) }),
    )
    .unwrap()
    .with_id(EventId::new())
}

fn stream(writer: usize, i: u64) -> StreamId {
    StreamId::new(format!("w{writer}-s{}", i % STREAMS_PER_WRITER as u64)).unwrap()
}

/// Every event of `$all`, in order.
async fn all_events(store: &LogStore) -> Vec<RecordedEvent> {
    let mut out = Vec::new();
    let mut from = Position::START;
    loop {
        let page = store
            .read_all(from, 10_000, &ReadFilter::all())
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        from = Position(last.position.0 + 1);
        out.extend(page);
    }
    out
}

/// Appends `n` events from one writer, one per append.
async fn append_n(store: &LogStore, writer: usize, from: u64, n: u64) {
    for i in from..from + n {
        store
            .append(
                &stream(writer, i),
                ExpectedVersion::Any,
                vec![event(writer, i)],
            )
            .await
            .unwrap();
    }
}

/// Writers that append until `stop`; `appended` counts their acknowledged events.
fn spawn_writers(
    store: &Arc<LogStore>,
    stop: &Arc<AtomicBool>,
    appended: &Arc<AtomicU64>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..WRITERS)
        .map(|w| {
            let (store, stop, appended) = (store.clone(), stop.clone(), appended.clone());
            tokio::spawn(async move {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    append_n(&store, w, i, 1).await;
                    appended.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
            })
        })
        .collect()
}

async fn wait_for(appended: &AtomicU64, n: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while appended.load(Ordering::Relaxed) < n {
        assert!(tokio::time::Instant::now() < deadline, "writers too slow");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Restores `dest` into `to` and checks the result: `verify` is clean and
/// the restored store holds exactly `original`'s events up to `position`.
async fn restore_and_compare(
    dest: &Path,
    to: &Path,
    original: &[RecordedEvent],
    position: Position,
) {
    let report = restore(dest, to).unwrap();
    assert_eq!(report.position, position);
    let verified = verify(to, &FsStorage).unwrap();
    assert!(verified.is_clean(), "{:?}", verified.problems);
    let restored = LogStore::open(LogConfig::new(to)).await.unwrap();
    let expected: Vec<&RecordedEvent> =
        original.iter().filter(|e| e.position <= position).collect();
    let got = all_events(&restored).await;
    assert_eq!(got.len(), expected.len(), "events up to {position:?}");
    for (g, e) in got.iter().zip(&expected) {
        assert_eq!(g, *e, "restored event differs from the original");
    }
    assert_eq!(restored.head_position().await.unwrap(), position);
    restored.close().await.unwrap();
}

fn saved_snapshot(stream: &StreamId, version: u64) -> Snapshot {
    Snapshot {
        stream: stream.clone(),
        aggregate_type: "Counter".into(),
        version,
        schema_version: 1,
        state: bytes::Bytes::from(format!("state at {version}")),
        taken_at: chrono::Utc::now(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn backups_during_appends_restore_exactly_up_to_their_position() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, dest) = (tmp.path().join("store"), tmp.path().join("backup"));
    let store = Arc::new(LogStore::open(small_segments(&dir)).await.unwrap());
    let snaps_dir = dir.clone();
    let snaps = Arc::new(
        tokio::task::spawn_blocking(move || LogSnapshotStore::open(snaps_dir))
            .await
            .unwrap()
            .unwrap(),
    );
    let ckpt_dir = dir.clone();
    let ckpts = Arc::new(
        tokio::task::spawn_blocking(move || LogCheckpointStore::open(ckpt_dir))
            .await
            .unwrap()
            .unwrap(),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let appended = Arc::new(AtomicU64::new(0));
    let writers = spawn_writers(&store, &stop, &appended);
    // Snapshots and a projection checkpoint saved throughout, each of what
    // was readable when it was saved.
    let side = {
        let (store, snaps, ckpts, stop) =
            (store.clone(), snaps.clone(), ckpts.clone(), stop.clone());
        tokio::spawn(async move {
            let s = stream(0, 0);
            while !stop.load(Ordering::Relaxed) {
                if let Some(info) = store.stream_info(&s).await.unwrap() {
                    snaps.save(saved_snapshot(&s, info.version)).await.unwrap();
                }
                let head = store.head_position().await.unwrap();
                ckpts.save("projection", head).await.unwrap();
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    wait_for(&appended, 6_000).await;
    let first = store.backup_to(&dest).await.unwrap();
    let after_first = appended.load(Ordering::Relaxed);
    wait_for(&appended, after_first + 1_500).await;
    let second = store.backup_to(&dest).await.unwrap();
    wait_for(&appended, appended.load(Ordering::Relaxed) + 500).await;
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    side.await.unwrap();

    let original = all_events(&store).await;
    assert!(first.position < second.position, "{first:?} {second:?}");
    assert!(
        original.last().unwrap().position > second.position,
        "writers appended after the second backup"
    );
    let sealed = std::fs::read_dir(dir.join("segments")).unwrap().count();
    assert!(sealed >= 8, "the store has several segments: {sealed}");
    assert!(
        second.files_copied < second.files,
        "an incremental backup keeps what it had: {second:?}"
    );

    // The second backup restores to its own position...
    let restored = tmp.path().join("restored-2");
    restore_and_compare(&dest, &restored, &original, second.position).await;
    // ...with snapshots and checkpoints that refer only to what it holds.
    let snaps2 = LogSnapshotStore::open(&restored).unwrap();
    let ckpts2 = LogCheckpointStore::open(&restored).unwrap();
    let s = stream(0, 0);
    let snap = snaps2
        .load(&s, u64::MAX)
        .await
        .unwrap()
        .expect("a snapshot was saved");
    let restored_store = LogStore::open(LogConfig::new(&restored)).await.unwrap();
    let info = restored_store.stream_info(&s).await.unwrap().unwrap();
    assert!(
        snap.version <= info.version,
        "{} > {}",
        snap.version,
        info.version
    );
    let ckpt = ckpts2
        .load("projection")
        .await
        .unwrap()
        .expect("a checkpoint was saved");
    assert!(ckpt <= second.position && ckpt > first.position, "{ckpt:?}");
    restored_store.close().await.unwrap();

    drop((snaps, ckpts));
    Arc::try_unwrap(store).ok().unwrap().close().await.unwrap();
}

#[tokio::test]
async fn an_incremental_backup_copies_only_what_is_new() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, dest) = (tmp.path().join("store"), tmp.path().join("backup"));
    // `None`: the backup must flush what readers already see.
    let store = LogStore::open(LogConfig::new(&dir).durability(Durability::None))
        .await
        .unwrap();
    append_n(&store, 0, 0, 3_000).await;
    let first = store.backup_to(&dest).await.unwrap();
    append_n(&store, 0, 3_000, 300).await;
    let second = store.backup_to(&dest).await.unwrap();
    assert!(second.position > first.position);
    assert!(
        second.bytes_copied * 5 < first.bytes_copied,
        "the second copies about a tenth: {first:?} {second:?}"
    );
    assert_eq!(second.bytes, first.bytes + second.bytes_copied);
    // Nothing new: nothing copied.
    let third = store.backup_to(&dest).await.unwrap();
    assert_eq!(
        (third.files_copied, third.bytes_copied),
        (0, 0),
        "{third:?}"
    );
    assert_eq!(third.position, second.position);
    let original = all_events(&store).await;
    restore_and_compare(
        &dest,
        &tmp.path().join("restored"),
        &original,
        second.position,
    )
    .await;
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_store_open_elsewhere_is_backed_up_from_its_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, dest) = (tmp.path().join("store"), tmp.path().join("backup"));
    let store = Arc::new(LogStore::open(small_segments(&dir)).await.unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let appended = Arc::new(AtomicU64::new(0));
    let writers = spawn_writers(&store, &stop, &appended);
    wait_for(&appended, 4_000).await;
    // The store's LOCK is held: copy its files without it.
    let (d, t) = (dir.clone(), dest.clone());
    let report = tokio::task::spawn_blocking(move || backup_dir(&d, &t))
        .await
        .unwrap()
        .unwrap();
    wait_for(&appended, appended.load(Ordering::Relaxed) + 500).await;
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    let original = all_events(&store).await;
    assert!(original.last().unwrap().position > report.position);
    assert!(report.position > Position::START);
    restore_and_compare(
        &dest,
        &tmp.path().join("restored"),
        &original,
        report.position,
    )
    .await;
    Arc::try_unwrap(store).ok().unwrap().close().await.unwrap();
}

#[tokio::test]
async fn a_restore_into_a_directory_that_holds_anything_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, dest) = (tmp.path().join("store"), tmp.path().join("backup"));
    let store = LogStore::open(LogConfig::new(&dir)).await.unwrap();
    append_n(&store, 0, 0, 10).await;
    store.backup_to(&dest).await.unwrap();
    store.close().await.unwrap();

    let target = tmp.path().join("target");
    std::fs::create_dir(&target).unwrap();
    std::fs::write(target.join("keep-me"), b"precious").unwrap();
    let err = restore(&dest, &target).unwrap_err();
    assert!(matches!(err, BackupError::TargetNotEmpty { .. }), "{err}");
    assert!(err.to_string().contains("not empty"), "{err}");
    assert_eq!(std::fs::read(target.join("keep-me")).unwrap(), b"precious");
    assert_eq!(
        std::fs::read_dir(&target).unwrap().count(),
        1,
        "nothing written"
    );
    // A file in the way is refused too; an empty directory is fine.
    let err = restore(&dest, &target.join("keep-me")).unwrap_err();
    assert!(matches!(err, BackupError::TargetNotEmpty { .. }), "{err}");
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    restore(&dest, &empty).unwrap();
    // A directory that holds no backup is not one to restore from.
    let err = restore(&target, &tmp.path().join("other")).unwrap_err();
    assert!(matches!(err, BackupError::Incomplete { .. }), "{err}");
}

#[tokio::test]
async fn a_damaged_backup_is_not_restored() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, dest) = (tmp.path().join("store"), tmp.path().join("backup"));
    let store = LogStore::open(LogConfig::new(&dir)).await.unwrap();
    append_n(&store, 0, 0, 100).await;
    store.backup_to(&dest).await.unwrap();
    store.close().await.unwrap();
    let seg = dest.join("segments").join("00000000.seg");
    let mut bytes = std::fs::read(&seg).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&seg, bytes).unwrap();
    let err = restore(&dest, &tmp.path().join("restored")).unwrap_err();
    assert!(matches!(err, BackupError::Damaged { .. }), "{err}");
    assert!(err.to_string().contains("00000000.seg"), "{err}");
}

#[tokio::test]
async fn a_backup_into_a_directory_of_another_store_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("backup");
    let a = LogStore::open(LogConfig::new(tmp.path().join("a")))
        .await
        .unwrap();
    let b = LogStore::open(LogConfig::new(tmp.path().join("b")))
        .await
        .unwrap();
    append_n(&a, 0, 0, 10).await;
    append_n(&b, 1, 0, 10).await;
    let first = a.backup_to(&dest).await.unwrap();
    let manifest_before = std::fs::read(dest.join(MANIFEST_FILE)).unwrap();

    let err = b.backup_to(&dest).await.unwrap_err();
    assert!(matches!(err, BackupError::OtherStore { .. }), "{err}");
    assert!(err.to_string().contains("another store"), "{err}");
    // Through the backend-neutral face: invalid input, same words.
    let admin: &dyn StoreAdmin = &b;
    match admin.backup(&dest).await {
        Err(Error::InvalidInput { reason }) => {
            assert!(reason.contains("another store"), "{reason}")
        }
        other => panic!("expected invalid input, got {other:?}"),
    }
    assert_eq!(
        std::fs::read(dest.join(MANIFEST_FILE)).unwrap(),
        manifest_before
    );
    let a_events = all_events(&a).await;
    restore_and_compare(
        &dest,
        &tmp.path().join("restored"),
        &a_events,
        first.position,
    )
    .await;

    // A directory holding anything else is no backup to add to.
    let junk = tmp.path().join("junk");
    std::fs::create_dir(&junk).unwrap();
    std::fs::write(junk.join("notes.txt"), b"mine").unwrap();
    let err = a.backup_to(&junk).await.unwrap_err();
    assert!(matches!(err, BackupError::NotABackup { .. }), "{err}");
    // Nor is the store's own directory.
    let err = a
        .backup_to(&tmp.path().join("a").join("backup"))
        .await
        .unwrap_err();
    assert!(matches!(err, BackupError::InsideStore { .. }), "{err}");
    a.close().await.unwrap();
    b.close().await.unwrap();
}
