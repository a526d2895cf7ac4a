//! The durable snapshot store: the `SnapshotStore` contract, the cap per
//! stream, reopening, torn tails, damaged records, compaction (checked by
//! decoding the files as `docs/log-format.md` describes them), a model-based
//! run against `MemorySnapshotStore`, and injected I/O faults.

// Helpers outside `#[test]` functions unwrap too; clippy.toml only exempts the tests.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use strata_core::clock::from_micros;
use strata_core::snapshot::MAX_SNAPSHOTS_PER_STREAM;
use strata_core::{Error, MemorySnapshotStore, Snapshot, SnapshotStore, StreamId};
use strata_log::io::{Faults, FaultyStorage, FsStorage};
use strata_log::snapshot::{
    LogSnapshotStore, SnapshotStoreOptions, MAX_AGGREGATE_TYPE_BYTES, SNAPSHOT_FILE_HEADER_BYTES,
};

fn stream(i: usize) -> StreamId {
    StreamId::new(format!("account-{i}")).unwrap()
}

fn snap(s: &StreamId, version: u64, state: &[u8]) -> Snapshot {
    Snapshot {
        stream: s.clone(),
        aggregate_type: "Account".into(),
        version,
        schema_version: 2,
        state: Bytes::copy_from_slice(state),
        // Stored with microsecond precision.
        taken_at: from_micros(1_700_000_000_000_000 + version as i64),
    }
}

fn state_for(i: usize, version: u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|k| (i as u64 * 31 + version * 7 + k as u64) as u8)
        .collect()
}

fn open(dir: &Path) -> LogSnapshotStore {
    LogSnapshotStore::open(dir).unwrap()
}

fn open_small(dir: &Path, max_file_bytes: u64) -> LogSnapshotStore {
    LogSnapshotStore::open_with_options(
        dir,
        Arc::new(FsStorage),
        SnapshotStoreOptions {
            max_file_bytes,
            compact_min_reclaimable_bytes: 1024,
            compact_reclaimable_percent: 50,
        },
    )
    .unwrap()
}

fn first_file(dir: &Path) -> PathBuf {
    dir.join("snapshots").join("00000000.snap")
}

/// Copies a data directory's snapshot files (not its LOCK) into a new one.
fn copy_dir(from: &Path) -> tempfile::TempDir {
    let to = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(to.path().join("snapshots")).unwrap();
    for e in std::fs::read_dir(from.join("snapshots")).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        if name.ends_with(".snap") {
            std::fs::copy(e.path(), to.path().join("snapshots").join(name)).unwrap();
        }
    }
    to
}

/// A record decoded straight from the bytes, following `docs/log-format.md`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct DocRecord {
    offset: usize,
    kind: u8,
    stream: String,
    version: u64,
}

/// Decodes a whole snapshot file as the documentation describes it; panics
/// on anything that does not check out.
fn decode_file_per_docs(bytes: &[u8], number: u32) -> Vec<DocRecord> {
    let u16_at = |at: usize| u16::from_le_bytes(bytes[at..at + 2].try_into().unwrap()) as usize;
    let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
    let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());
    assert_eq!(&bytes[0..8], b"STRATASN");
    assert_eq!(u32_at(8), 1);
    assert_eq!(u32_at(12), number);
    assert!(bytes[16..28].iter().all(|&b| b == 0));
    assert_eq!(u32_at(28), crc32c::crc32c(&bytes[0..28]));
    let mut out = Vec::new();
    let mut at = 32;
    while at < bytes.len() {
        let record_len = u32_at(at + 4) as usize;
        let kind = bytes[at + 8];
        let stream_len = bytes[at + 9] as usize;
        let type_len = u16_at(at + 10);
        let state_len = u32_at(at + 32) as usize;
        let header_len = 40 + stream_len + type_len;
        assert_eq!(record_len, header_len + state_len);
        assert_eq!(
            u32_at(at),
            crc32c::crc32c(&bytes[at + 4..at + header_len]),
            "header checksum at {at}"
        );
        assert_eq!(
            u32_at(at + 36),
            crc32c::crc32c(&bytes[at + header_len..at + record_len]),
            "state checksum at {at}"
        );
        let stream = String::from_utf8(bytes[at + 40..at + 40 + stream_len].to_vec()).unwrap();
        out.push(DocRecord {
            offset: at,
            kind,
            stream,
            version: u64_at(at + 16),
        });
        at += record_len.div_ceil(8) * 8;
    }
    assert_eq!(at, bytes.len(), "a compacted file ends on its last record");
    out
}

/// Every (stream, version) the model holds.
async fn model_set(
    model: &MemorySnapshotStore,
    streams: usize,
    max_version: u64,
) -> BTreeSet<(String, u64)> {
    let mut set = BTreeSet::new();
    for i in 0..streams {
        let s = stream(i);
        let mut v = max_version;
        while let Some(found) = model.load(&s, v).await.unwrap() {
            set.insert((s.to_string(), found.version));
            if found.version == 0 {
                break;
            }
            v = found.version - 1;
        }
    }
    set
}

async fn assert_matches_model(
    store: &LogSnapshotStore,
    model: &MemorySnapshotStore,
    streams: usize,
    max_version: u64,
) {
    for i in 0..streams {
        let s = stream(i);
        for v in (0..=max_version).step_by(7).chain([u64::MAX]) {
            assert_eq!(
                store.load(&s, v).await.unwrap(),
                model.load(&s, v).await.unwrap(),
                "stream {s} at max version {v}"
            );
        }
    }
}

#[tokio::test]
async fn save_load_overwrite_and_delete() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let a = stream(1);
    let b = stream(2);
    assert_eq!(store.load(&a, u64::MAX).await.unwrap(), None);

    store.save(snap(&a, 5, b"five")).await.unwrap();
    store.save(snap(&b, 3, b"bee")).await.unwrap();
    assert_eq!(
        store.load(&a, u64::MAX).await.unwrap(),
        Some(snap(&a, 5, b"five"))
    );

    // Same stream and version: replaced.
    store.save(snap(&a, 5, b"FIVE again")).await.unwrap();
    assert_eq!(
        store.load(&a, 5).await.unwrap(),
        Some(snap(&a, 5, b"FIVE again"))
    );
    assert_eq!(store.stats().snapshots, 2);

    store.delete(&a).await.unwrap();
    assert_eq!(store.load(&a, u64::MAX).await.unwrap(), None);
    assert_eq!(
        store.load(&b, u64::MAX).await.unwrap(),
        Some(snap(&b, 3, b"bee"))
    );
    // Deleting a stream with no snapshots is fine.
    store.delete(&stream(99)).await.unwrap();
    // A deleted stream can get snapshots again.
    store.save(snap(&a, 1, b"one")).await.unwrap();
    assert_eq!(
        store.load(&a, u64::MAX).await.unwrap(),
        Some(snap(&a, 1, b"one"))
    );

    // System streams and empty states round-trip too.
    let sys = StreamId::system("$projection-state").unwrap();
    store.save(snap(&sys, 0, b"")).await.unwrap();
    drop(store);
    let store = open(dir.path());
    assert_eq!(store.load(&sys, 0).await.unwrap(), Some(snap(&sys, 0, b"")));
    assert_eq!(
        store.load(&a, u64::MAX).await.unwrap(),
        Some(snap(&a, 1, b"one"))
    );
    assert_eq!(
        store.load(&b, u64::MAX).await.unwrap(),
        Some(snap(&b, 3, b"bee"))
    );
}

#[tokio::test]
async fn keeps_at_most_the_cap_per_stream_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let s = stream(1);
    let n = MAX_SNAPSHOTS_PER_STREAM as u64 + 4;
    for v in 1..=n {
        store.save(snap(&s, v, &v.to_le_bytes())).await.unwrap();
    }
    let oldest_kept = n - MAX_SNAPSHOTS_PER_STREAM as u64 + 1;
    assert_eq!(store.stats().snapshots, MAX_SNAPSHOTS_PER_STREAM);
    assert_eq!(store.load(&s, oldest_kept - 1).await.unwrap(), None);
    assert_eq!(
        store
            .load(&s, oldest_kept)
            .await
            .unwrap()
            .map(|x| x.version),
        Some(oldest_kept)
    );
    // An older snapshot than every kept one is evicted at once (as in memory).
    store.save(snap(&s, 1, b"late")).await.unwrap();
    assert_eq!(store.load(&s, 1).await.unwrap(), None);
    assert_eq!(store.stats().snapshots, MAX_SNAPSHOTS_PER_STREAM);
    drop(store);
    let store = open(dir.path());
    assert_eq!(store.stats().snapshots, MAX_SNAPSHOTS_PER_STREAM);
    assert_eq!(store.load(&s, oldest_kept - 1).await.unwrap(), None);
    assert_eq!(
        store.load(&s, u64::MAX).await.unwrap(),
        Some(snap(&s, n, &n.to_le_bytes()))
    );
}

#[tokio::test]
async fn load_picks_the_newest_at_or_before_max_version() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let s = stream(1);
    for v in [30, 10, 20] {
        store.save(snap(&s, v, b"x")).await.unwrap();
    }
    let at = |v| {
        let store = &store;
        let s = &s;
        async move { store.load(s, v).await.unwrap().map(|x| x.version) }
    };
    assert_eq!(at(9).await, None);
    assert_eq!(at(10).await, Some(10));
    assert_eq!(at(19).await, Some(10));
    assert_eq!(at(25).await, Some(20));
    assert_eq!(at(30).await, Some(30));
    assert_eq!(at(u64::MAX).await, Some(30));
}

#[tokio::test]
async fn reopen_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let model = MemorySnapshotStore::new();
    {
        let store = open(dir.path());
        for i in 0..30 {
            for v in 1..=3u64 {
                let sn = snap(&stream(i), v * 10, &state_for(i, v, 50 + i * 10));
                store.save(sn.clone()).await.unwrap();
                model.save(sn).await.unwrap();
            }
        }
        for i in (0..30).step_by(5) {
            store.delete(&stream(i)).await.unwrap();
            model.delete(&stream(i)).await.unwrap();
        }
    }
    let store = open(dir.path());
    assert_matches_model(&store, &model, 30, 40).await;
    assert_eq!(store.stats().streams, 24);
    assert_eq!(store.stats().snapshots, 24 * 3);
}

#[tokio::test]
async fn open_takes_any_path_and_runs_off_the_async_workers() {
    let dir = tempfile::tempdir().unwrap();
    let owned: PathBuf = dir.path().to_path_buf();
    {
        let store = LogSnapshotStore::open(&owned).unwrap();
        store.save(snap(&stream(1), 3, b"abc")).await.unwrap();
    }
    // As its documentation says: opening blocks, so async code opens
    // through `spawn_blocking`.
    let as_string = dir.path().to_str().unwrap().to_owned();
    let store = tokio::task::spawn_blocking(move || LogSnapshotStore::open(as_string))
        .await
        .unwrap()
        .unwrap();
    let loaded = store.load(&stream(1), u64::MAX).await.unwrap().unwrap();
    assert_eq!((loaded.version, &loaded.state[..]), (3, &b"abc"[..]));
}

#[tokio::test]
async fn a_tail_with_huge_length_fields_is_cut_without_allocating_them() {
    let dir = tempfile::tempdir().unwrap();
    let (_, len) = three_records(dir.path()).await;
    let path = first_file(dir.path());
    // A record header claiming a 4 GiB record and state, and a 64 KiB type.
    let mut tail = vec![0u8; 40];
    tail[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
    tail[8] = 1;
    tail[9] = 9;
    tail[10..12].copy_from_slice(&u16::MAX.to_le_bytes());
    tail[32..36].copy_from_slice(&u32::MAX.to_le_bytes());
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(&tail);
    std::fs::write(&path, &bytes).unwrap();

    let store = open(dir.path());
    assert_eq!(store.stats().snapshots, 3);
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        len,
        "the tail is cut"
    );
    for i in 1..=3 {
        assert!(store.load(&stream(i), u64::MAX).await.unwrap().is_some());
    }
}

#[tokio::test]
async fn a_second_open_of_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _store = open(dir.path());
    let err = LogSnapshotStore::open(dir.path()).unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }), "{err}");
}

#[tokio::test]
async fn oversized_input_is_refused_before_writing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut s = snap(&stream(1), 1, b"x");
    s.aggregate_type = "T".repeat(MAX_AGGREGATE_TYPE_BYTES + 1);
    let err = store.save(s).await.unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }), "{err}");
    assert_eq!(store.stats().snapshots, 0);
}

/// Three snapshots (streams 1, 2, 3); returns the offsets of their records
/// and the file length.
async fn three_records(dir: &Path) -> (Vec<u64>, u64) {
    let store = open(dir);
    let mut offsets = Vec::new();
    for i in 1..=3 {
        offsets.push(store.stats().file_bytes);
        store
            .save(snap(&stream(i), 7, &state_for(i, 7, 100 + i)))
            .await
            .unwrap();
    }
    (offsets, store.stats().file_bytes)
}

#[tokio::test]
async fn a_torn_tail_at_any_offset_of_the_last_record_is_cut() {
    let dir = tempfile::tempdir().unwrap();
    let (offsets, len) = three_records(dir.path()).await;
    let full = std::fs::read(first_file(dir.path())).unwrap();
    assert_eq!(full.len() as u64, len);
    let last = offsets[2];
    let last_record_len = 40 + "account-3".len() + "Account".len() + 103;
    for cut in last..len {
        let copy = copy_dir(dir.path());
        std::fs::write(first_file(copy.path()), &full[..cut as usize]).unwrap();
        let store = open(copy.path());
        for i in 1..=2 {
            assert_eq!(
                store.load(&stream(i), u64::MAX).await.unwrap(),
                Some(snap(&stream(i), 7, &state_for(i, 7, 100 + i))),
                "cut at {cut}"
            );
        }
        let third = store.load(&stream(3), u64::MAX).await.unwrap();
        if cut >= last + last_record_len as u64 {
            // Only padding is missing: the record is whole.
            assert_eq!(third, Some(snap(&stream(3), 7, &state_for(3, 7, 103))));
        } else {
            assert_eq!(third, None, "cut at {cut}");
            // The torn bytes are gone from the file.
            assert_eq!(
                std::fs::metadata(first_file(copy.path())).unwrap().len(),
                last
            );
        }
        // The store writes on and the result survives another reopen.
        store.save(snap(&stream(4), 1, b"after")).await.unwrap();
        drop(store);
        let store = open(copy.path());
        assert_eq!(
            store.load(&stream(4), 1).await.unwrap(),
            Some(snap(&stream(4), 1, b"after"))
        );
        assert!(store.load(&stream(1), 7).await.unwrap().is_some());
    }
}

#[tokio::test]
async fn a_flipped_state_byte_is_reported_corrupt_and_the_store_still_opens() {
    let dir = tempfile::tempdir().unwrap();
    let (offsets, _) = three_records(dir.path()).await;
    let path = first_file(dir.path());
    let mut bytes = std::fs::read(&path).unwrap();
    // Inside the state of the middle record (stream 2).
    let header_len = 40 + "account-2".len() + "Account".len();
    let at = offsets[1] as usize + header_len + 10;
    bytes[at] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();

    let store = open(dir.path());
    match store.load(&stream(2), u64::MAX).await {
        Err(Error::Corrupt { location, reason }) => {
            assert!(location.contains("00000000.snap"), "{location}");
            assert!(
                location.contains(&format!("offset {}", offsets[1])),
                "{location}"
            );
            assert!(reason.contains("checksum"), "{reason}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    for i in [1, 3] {
        assert_eq!(
            store.load(&stream(i), u64::MAX).await.unwrap(),
            Some(snap(&stream(i), 7, &state_for(i, 7, 100 + i)))
        );
    }
    // A newer snapshot of the damaged stream is served again.
    store.save(snap(&stream(2), 8, b"fresh")).await.unwrap();
    assert_eq!(
        store.load(&stream(2), u64::MAX).await.unwrap(),
        Some(snap(&stream(2), 8, b"fresh"))
    );
    assert!(matches!(
        store.load(&stream(2), 7).await,
        Err(Error::Corrupt { .. })
    ));
}

#[tokio::test]
async fn a_damaged_byte_anywhere_in_a_record_is_never_served() {
    let dir = tempfile::tempdir().unwrap();
    let (offsets, _) = three_records(dir.path()).await;
    let full = std::fs::read(first_file(dir.path())).unwrap();
    let originals: Vec<Snapshot> = (1..=3)
        .map(|i| snap(&stream(i), 7, &state_for(i, 7, 100 + i)))
        .collect();
    for at in offsets[1]..offsets[2] {
        let copy = copy_dir(dir.path());
        let mut bytes = full.clone();
        bytes[at as usize] ^= 0xff;
        std::fs::write(first_file(copy.path()), &bytes).unwrap();
        let store = open(copy.path());
        for (i, original) in originals.iter().enumerate() {
            match store.load(&original.stream, u64::MAX).await {
                Ok(Some(got)) => assert_eq!(&got, original, "flip at {at}"),
                // The damaged record itself (bad state) ...
                Err(Error::Corrupt { location, .. }) => {
                    assert_eq!(i, 1, "flip at {at}");
                    assert!(location.contains("00000000.snap"));
                }
                // ... or, with a damaged header, everything before the damage
                // is dropped: it might have been a tombstone.
                Ok(None) => assert!(i < 2, "flip at {at}: record after the damage lost"),
                Err(e) => panic!("flip at {at}: {e}"),
            }
        }
    }
}

#[tokio::test]
async fn a_damaged_header_drops_what_came_before_and_the_file_is_healed() {
    let dir = tempfile::tempdir().unwrap();
    let (offsets, _) = three_records(dir.path()).await;
    let path = first_file(dir.path());
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[offsets[1] as usize + 20] ^= 0x01; // the version field of stream 2's record
    std::fs::write(&path, &bytes).unwrap();
    {
        let store = open(dir.path());
        assert_eq!(store.load(&stream(1), u64::MAX).await.unwrap(), None);
        assert_eq!(store.load(&stream(2), u64::MAX).await.unwrap(), None);
        assert!(store.load(&stream(3), u64::MAX).await.unwrap().is_some());
    }
    // Open rewrote the file: it now decodes cleanly and holds only stream 3.
    let records = decode_file_per_docs(&std::fs::read(&path).unwrap(), 0);
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].stream, "account-3");
    assert_eq!(records[0].offset, SNAPSHOT_FILE_HEADER_BYTES);
}

#[tokio::test]
async fn compaction_keeps_exactly_the_live_records_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let model = MemorySnapshotStore::new();
    let store = open_small(dir.path(), 1 << 20);
    for v in 1..=40u64 {
        for i in 0..5 {
            let sn = snap(&stream(i), v, &state_for(i, v, 100));
            store.save(sn.clone()).await.unwrap();
            model.save(sn).await.unwrap();
        }
    }
    store.delete(&stream(4)).await.unwrap();
    model.delete(&stream(4)).await.unwrap();
    let auto = store.stats().compactions;
    assert!(
        auto > 0,
        "dead records past the threshold trigger compaction"
    );

    store.compact().await.unwrap();
    let stats = store.stats();
    assert_eq!(stats.files, 1);
    assert_eq!(stats.snapshots, 4 * MAX_SNAPSHOTS_PER_STREAM);
    assert_eq!(
        stats.file_bytes,
        SNAPSHOT_FILE_HEADER_BYTES as u64 + stats.live_bytes,
        "a compacted file holds nothing but live records"
    );
    let on_disk = decode_file_per_docs(&std::fs::read(first_file(dir.path())).unwrap(), 0);
    assert!(
        on_disk.iter().all(|r| r.kind == 1),
        "the only file is the oldest: no tombstone is needed"
    );
    let got: BTreeSet<(String, u64)> = on_disk.into_iter().map(|r| (r.stream, r.version)).collect();
    assert_eq!(got, model_set(&model, 5, 40).await);
    assert_matches_model(&store, &model, 5, 40).await;

    // Writes go on after compaction, and everything survives a reopen.
    let sn = snap(&stream(0), 41, b"after");
    store.save(sn.clone()).await.unwrap();
    model.save(sn).await.unwrap();
    drop(store);
    let store = open_small(dir.path(), 1 << 20);
    assert_matches_model(&store, &model, 5, 41).await;
    assert_eq!(store.stats().snapshots, 4 * MAX_SNAPSHOTS_PER_STREAM);
}

#[tokio::test]
async fn random_operations_match_the_in_memory_store_across_files_and_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let model = MemorySnapshotStore::new();
    let mut rng = StdRng::seed_from_u64(0x5eed);
    let streams = 12;
    let mut store = open_small(dir.path(), 4096);
    for op in 0..1200 {
        let i = rng.gen_range(0..streams);
        let s = stream(i);
        match rng.gen_range(0..100) {
            0..=5 => {
                store.delete(&s).await.unwrap();
                model.delete(&s).await.unwrap();
            }
            6..=25 => {
                let v = rng.gen_range(0..60);
                assert_eq!(
                    store.load(&s, v).await.unwrap(),
                    model.load(&s, v).await.unwrap(),
                    "op {op}: {s} at {v}"
                );
            }
            _ => {
                let v = rng.gen_range(0..60);
                let len = rng.gen_range(0..300);
                let sn = snap(&s, v, &state_for(i, v, len));
                store.save(sn.clone()).await.unwrap();
                model.save(sn).await.unwrap();
            }
        }
        if op % 300 == 299 {
            drop(store);
            store = open_small(dir.path(), 4096);
            assert_matches_model(&store, &model, streams, 60).await;
        }
    }
    let stats = store.stats();
    assert!(stats.compactions > 0, "{stats:?}");
    assert!(
        stats.files > 1,
        "the run must span several files: {stats:?}"
    );
    assert_matches_model(&store, &model, streams, 60).await;

    // After a full compaction the files hold exactly the live snapshots
    // (tombstones only where an older file still exists).
    store.compact().await.unwrap();
    let mut on_disk = BTreeSet::new();
    let mut files: Vec<_> = std::fs::read_dir(dir.path().join("snapshots"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".snap"))
        .collect();
    files.sort();
    assert_eq!(files.len(), store.stats().files);
    for (k, name) in files.iter().enumerate() {
        let number: u32 = name.trim_end_matches(".snap").parse().unwrap();
        let bytes = std::fs::read(dir.path().join("snapshots").join(name)).unwrap();
        for r in decode_file_per_docs(&bytes, number) {
            if r.kind == 2 {
                assert!(k > 0, "a tombstone in the oldest file survived compaction");
            } else {
                assert!(
                    on_disk.insert((r.stream, r.version)),
                    "duplicate live record"
                );
            }
        }
    }
    assert_eq!(on_disk, model_set(&model, streams, 60).await);
    drop(store);
    let store = open_small(dir.path(), 4096);
    assert_matches_model(&store, &model, streams, 60).await;
}

fn faulty(dir: &Path, faults: &Arc<Faults>, options: SnapshotStoreOptions) -> LogSnapshotStore {
    LogSnapshotStore::open_with_options(dir, Arc::new(FaultyStorage::new(faults.clone())), options)
        .unwrap()
}

#[tokio::test]
async fn a_failing_fsync_fails_the_save_and_poisons_writes_until_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Faults::new();
    *faults.file_filter.lock() = ".snap".into();
    let store = faulty(dir.path(), &faults, SnapshotStoreOptions::default());
    store.save(snap(&stream(1), 1, b"one")).await.unwrap();
    store.save(snap(&stream(2), 1, b"two")).await.unwrap();

    faults.fail_next_sync.store(true, Ordering::SeqCst);
    let failed = store.save(snap(&stream(3), 1, b"three")).await;
    assert!(matches!(failed, Err(Error::Io { .. })), "{failed:?}");
    let refused = store.save(snap(&stream(4), 1, b"four")).await;
    assert!(
        matches!(refused, Err(Error::Poisoned { .. })),
        "{refused:?}"
    );
    assert!(matches!(
        store.delete(&stream(1)).await,
        Err(Error::Poisoned { .. })
    ));
    // Reads still work.
    assert_eq!(
        store.load(&stream(1), 1).await.unwrap(),
        Some(snap(&stream(1), 1, b"one"))
    );
    drop(store);

    let store = open(dir.path());
    assert_eq!(
        store.load(&stream(1), 1).await.unwrap(),
        Some(snap(&stream(1), 1, b"one"))
    );
    assert_eq!(
        store.load(&stream(2), 1).await.unwrap(),
        Some(snap(&stream(2), 1, b"two"))
    );
    // The failed save may or may not have reached the disk, but never half.
    let third = store.load(&stream(3), 1).await.unwrap();
    assert!(third.is_none() || third == Some(snap(&stream(3), 1, b"three")));
    assert_eq!(store.load(&stream(4), 1).await.unwrap(), None);
    store.save(snap(&stream(4), 1, b"four")).await.unwrap();
}

#[tokio::test]
async fn a_torn_write_then_crash_loses_only_the_unacknowledged_save() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Faults::new();
    *faults.file_filter.lock() = ".snap".into();
    let store = faulty(dir.path(), &faults, SnapshotStoreOptions::default());
    for i in 0..5 {
        store
            .save(snap(&stream(i), 3, &state_for(i, 3, 200)))
            .await
            .unwrap();
    }
    faults.torn_write_bytes.store(70, Ordering::SeqCst);
    assert!(store.save(snap(&stream(9), 1, &[7; 500])).await.is_err());
    drop(store);

    let store = open(dir.path());
    for i in 0..5 {
        assert_eq!(
            store.load(&stream(i), u64::MAX).await.unwrap(),
            Some(snap(&stream(i), 3, &state_for(i, 3, 200)))
        );
    }
    assert_eq!(store.load(&stream(9), u64::MAX).await.unwrap(), None);
}

#[tokio::test]
async fn a_failing_compaction_changes_nothing_and_is_retried() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Faults::new();
    // Only compaction's temporary files fail (no space left).
    *faults.file_filter.lock() = ".snap.tmp".into();
    let options = SnapshotStoreOptions {
        max_file_bytes: 1 << 20,
        compact_min_reclaimable_bytes: 1024,
        compact_reclaimable_percent: 50,
    };
    // Create the data file on healthy storage: the fault filter is matched
    // when a file is opened, and a new file starts out as a `.snap.tmp`.
    drop(
        LogSnapshotStore::open_with_options(dir.path(), Arc::new(FsStorage), options.clone())
            .unwrap(),
    );
    let store = faulty(dir.path(), &faults, options.clone());
    let model = MemorySnapshotStore::new();
    faults.enospc_after_bytes.store(0, Ordering::SeqCst);
    for v in 1..=30u64 {
        for i in 0..3 {
            let sn = snap(&stream(i), v, &state_for(i, v, 150));
            store.save(sn.clone()).await.unwrap();
            model.save(sn).await.unwrap();
        }
    }
    assert_eq!(store.stats().compactions, 0);
    assert_matches_model(&store, &model, 3, 30).await;
    assert!(
        !dir.path().join("snapshots/00000000.snap.tmp").exists(),
        "a failed compaction cleans up"
    );

    // Space is back: the next writes compact.
    faults.enospc_after_bytes.store(u64::MAX, Ordering::SeqCst);
    for v in 31..=60u64 {
        for i in 0..3 {
            let sn = snap(&stream(i), v, &state_for(i, v, 150));
            store.save(sn.clone()).await.unwrap();
            model.save(sn).await.unwrap();
        }
    }
    assert!(store.stats().compactions > 0);
    drop(store);
    let store =
        LogSnapshotStore::open_with_options(dir.path(), Arc::new(FsStorage), options).unwrap();
    assert_matches_model(&store, &model, 3, 60).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn loads_racing_saves_and_compactions_only_see_saved_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open_small(dir.path(), 4096));
    let writers = 3;
    let versions = 60u64;
    let mut tasks = Vec::new();
    for w in 0..writers {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            for v in 1..=versions {
                for k in 0..2 {
                    let i = w * 2 + k;
                    store
                        .save(snap(&stream(i), v, &state_for(i, v, 120)))
                        .await
                        .unwrap();
                }
            }
        }));
    }
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let store = Arc::clone(&store);
        let done = Arc::clone(&done);
        tokio::spawn(async move {
            let mut seen = 0u64;
            let mut round = 0u64;
            while !done.load(Ordering::SeqCst) {
                let i = (round % (writers as u64 * 2)) as usize;
                round += 1;
                if let Some(got) = store.load(&stream(i), u64::MAX).await.unwrap() {
                    let expected = snap(&stream(i), got.version, &state_for(i, got.version, 120));
                    assert_eq!(got, expected);
                    seen += 1;
                }
                tokio::task::yield_now().await;
            }
            seen
        })
    };
    for t in tasks {
        t.await.unwrap();
    }
    done.store(true, Ordering::SeqCst);
    assert!(reader.await.unwrap() > 0);
    assert!(store.stats().compactions > 0);
    for i in 0..writers * 2 {
        assert_eq!(
            store.load(&stream(i), u64::MAX).await.unwrap(),
            Some(snap(&stream(i), versions, &state_for(i, versions, 120)))
        );
    }
}
