//! Recovery from the files a crash (or a disk) leaves behind: torn tails of
//! every length, zeroed tails, flipped bits in sealed and active data, lost
//! index files and checkpoints.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs::OpenOptions;
use std::io::{Seek, SeekFrom, Write};

use common::*;
use strata_core::{Direction, Error, EventStore, Position, ReadFilter};
use strata_log::verify::verify;
use strata_log::{Durability, LogConfig, LogStore};

fn file_len(p: &std::path::Path) -> u64 {
    std::fs::metadata(p).unwrap().len()
}

fn flip_byte(p: &std::path::Path, offset: u64) {
    let mut f = OpenOptions::new().read(true).write(true).open(p).unwrap();
    let mut b = [0u8; 1];
    use std::io::Read;
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.read_exact(&mut b).unwrap();
    b[0] ^= 0x10;
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.write_all(&b).unwrap();
}

/// Writes `n` single-event appends, closes, and returns what was acknowledged
/// and the segment length before the last append.
async fn prepared(dir: &std::path::Path, n: usize) -> (Vec<Acked>, u64) {
    let store = LogStore::open(config(dir)).await.unwrap();
    let mut acked = Vec::new();
    append_some(&store, n - 1, 3, &mut acked).await;
    store.flush().await.unwrap();
    let before_last = file_len(&segment_path(dir, 0));
    append_some(&store, 1, 3, &mut acked).await;
    store.close().await.unwrap();
    (acked, before_last)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn torn_tail_of_every_length_is_cut() {
    let src = tempfile::tempdir().unwrap();
    let (acked, before_last) = prepared(src.path(), 20).await;
    let full = file_len(&segment_path(src.path(), 0));
    // Every cut inside the last frame loses exactly that (unacknowledged, in a
    // real crash) frame and nothing else.
    for cut in before_last + 1..full {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("segments")).unwrap();
        std::fs::copy(segment_path(src.path(), 0), segment_path(dir.path(), 0)).unwrap();
        // A crash never leaves the close-time checkpoint behind.
        OpenOptions::new()
            .write(true)
            .open(segment_path(dir.path(), 0))
            .unwrap()
            .set_len(cut)
            .unwrap();
        let store = LogStore::open(config(dir.path())).await.unwrap();
        let all = store
            .read_all(Position::START, 1000, &ReadFilter::all())
            .await
            .unwrap();
        // Only the alignment padding (< 8 bytes) may be missing from a frame
        // that is kept: its checksummed bytes are all there.
        if cut + 8 > full && all.len() == acked.len() {
            check_acked(&store, &acked).await;
        } else {
            assert_eq!(all.len(), acked.len() - 1, "cut at {cut} of {full}");
            check_acked(&store, &acked[..acked.len() - 1]).await;
        }
        store.close().await.unwrap();
        assert_verify_clean(dir.path());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_zeroes_after_the_tail_are_cut() {
    for garbage in [
        vec![0u8; 4096],
        vec![0xAB; 100],
        b"STRATA frame that is not".to_vec(),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (acked, _) = prepared(dir.path(), 10).await;
        std::fs::remove_file(dir.path().join("streams.ckpt")).unwrap();
        let mut f = OpenOptions::new()
            .append(true)
            .open(segment_path(dir.path(), 0))
            .unwrap();
        f.write_all(&garbage).unwrap();
        drop(f);
        let store = LogStore::open(config(dir.path())).await.unwrap();
        check_acked(&store, &acked).await;
        store.close().await.unwrap();
        assert_verify_clean(dir.path());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flipped_bit_in_active_data_refuses_to_open_with_location() {
    let dir = tempfile::tempdir().unwrap();
    let (_, before_last) = prepared(dir.path(), 10).await;
    // Damage an early frame: valid frames follow, so this is not a torn tail.
    flip_byte(&segment_path(dir.path(), 0), before_last / 2);
    let err = LogStore::open(config(dir.path()))
        .await
        .err()
        .expect("open must fail");
    match err {
        Error::Corrupt { location, .. } => {
            assert!(location.contains("00000000.seg"), "{location}")
        }
        other => panic!("expected Corrupt, got {other}"),
    }
    let report = verify(dir.path(), &strata_log::io::FsStorage).unwrap();
    assert!(!report.is_clean());
    assert!(report.problems[0].offset.is_some());
}

async fn sealed_store(dir: &std::path::Path) -> Vec<Acked> {
    let cfg = LogConfig::new(dir)
        .durability(Durability::None)
        .max_segment_bytes(64 * 1024);
    let store = LogStore::open(cfg).await.unwrap();
    let mut acked = Vec::new();
    append_some(&store, 1200, 10, &mut acked).await;
    store.close().await.unwrap();
    assert!(
        segment_path(dir, 2).exists(),
        "the test needs sealed segments"
    );
    acked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flipped_bit_in_sealed_data_is_reported_not_served() {
    let dir = tempfile::tempdir().unwrap();
    let acked = sealed_store(dir.path()).await;
    let seg0 = segment_path(dir.path(), 0);
    // Flip a byte in the payload of the 5th event of segment 0.
    let victim = &acked[4];
    let offset = victim.first_position.0 & 0xffff_ffff;
    flip_byte(&seg0, offset + 100);
    let cfg = LogConfig::new(dir.path()).max_segment_bytes(64 * 1024);
    let store = LogStore::open(cfg).await.unwrap();
    // Reading the damaged event fails with its file and offset ...
    let err = store
        .read_stream(&victim.stream, victim.first_version, 1, Direction::Forward)
        .await
        .unwrap_err();
    match &err {
        Error::Corrupt { location, .. } => {
            assert!(location.contains("00000000.seg"), "{location}");
            assert!(location.contains(&offset.to_string()), "{location}");
        }
        other => panic!("expected Corrupt, got {other}"),
    }
    // ... and so does a scan of `$all` that reaches it; it is never served.
    let all = store
        .read_all(Position::START, 10_000, &ReadFilter::all())
        .await;
    assert!(matches!(all, Err(Error::Corrupt { .. })), "{all:?}");
    // Other events are still readable.
    let fine = &acked[acked.len() - 1];
    store
        .read_stream(&fine.stream, fine.first_version, 1, Direction::Forward)
        .await
        .unwrap();
    store.close().await.unwrap();
    let report = verify(dir.path(), &strata_log::io::FsStorage).unwrap();
    assert!(report
        .problems
        .iter()
        .any(|p| p.file.ends_with("00000000.seg") && p.offset.is_some()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_index_files_and_checkpoint_are_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let acked = sealed_store(dir.path()).await;
    std::fs::remove_file(dir.path().join("index").join("00000001.idx")).unwrap();
    std::fs::remove_file(dir.path().join("streams.ckpt")).unwrap();
    // Damage a chunk of another index file's type postings: it must be
    // rebuilt from the segment when a read trips over it, never trusted.
    let idx0 = dir.path().join("index").join("00000000.idx");
    let bytes = std::fs::read(&idx0).unwrap();
    let n_ids = u64::from_le_bytes(bytes[16..24].try_into().unwrap());
    flip_byte(&idx0, 64 + n_ids * 24 + 5);
    let cfg = LogConfig::new(dir.path()).max_segment_bytes(64 * 1024);
    let store = LogStore::open(cfg).await.unwrap();
    check_acked(&store, &acked).await;
    // Filtered reads go through the rebuilt indexes.
    let typed = store
        .read_all(
            Position::START,
            10_000,
            &ReadFilter::all().event_types(["Happened"]),
        )
        .await
        .unwrap();
    assert_eq!(typed.len(), acked.len());
    store.close().await.unwrap();
    assert_verify_clean(dir.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_index_file_under_the_stream_checkpoint_is_rebuilt() {
    // The checkpoint stays: the segment is re-read for its index only, and
    // its events are not applied to the stream index a second time.
    let dir = tempfile::tempdir().unwrap();
    let acked = sealed_store(dir.path()).await;
    std::fs::remove_file(dir.path().join("index").join("00000000.idx")).unwrap();
    let cfg = LogConfig::new(dir.path()).max_segment_bytes(64 * 1024);
    let store = LogStore::open(cfg).await.unwrap();
    check_acked(&store, &acked).await;
    store.close().await.unwrap();
    assert_verify_clean(dir.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopen_uses_checkpoint_and_sealed_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let acked = sealed_store(dir.path()).await;
    assert_verify_clean(dir.path());
    for _ in 0..3 {
        let cfg = LogConfig::new(dir.path()).max_segment_bytes(64 * 1024);
        let store = LogStore::open(cfg).await.unwrap();
        check_acked(&store, &acked).await;
        store.close().await.unwrap();
    }
}

/// A power cut while a new segment was being created can keep its size and
/// lose its header: the file is as long as a header, all zeros. Nothing was
/// ever in it, so the store writes the header again and opens (it refused
/// with "bad segment magic" before; found by the power-cut simulator,
/// reordered mode, seed 84).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_last_segment_whose_header_never_reached_the_disk_is_rewritten() {
    for len in [64u64, 512, 4096] {
        let dir = tempfile::tempdir().unwrap();
        let (acked, _) = prepared(dir.path(), 5).await;
        std::fs::write(segment_path(dir.path(), 1), vec![0u8; len as usize]).unwrap();
        let store = LogStore::open(config(dir.path())).await.unwrap();
        check_acked(&store, &acked).await;
        append_some(&store, 2, 2, &mut Vec::new()).await;
        store.close().await.unwrap();
        assert_verify_clean(dir.path());
    }
}

/// Damage in sealed data stops the tag index's rebuild on open (its tag
/// file is gone, so the segment is read): the store still opens and takes
/// plain appends, but refuses conditional appends and query reads instead
/// of answering them from an index that misses events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damage_met_by_the_tag_index_rebuild_refuses_conditions() {
    use strata_core::dcb::{AppendCondition, Query};
    let dir = tempfile::tempdir().unwrap();
    let acked = sealed_store(dir.path()).await;
    let seg0 = segment_path(dir.path(), 0);
    let offset = acked[4].first_position.0 & 0xffff_ffff;
    flip_byte(&seg0, offset + 100);
    std::fs::remove_file(dir.path().join("index").join("00000000.tags")).unwrap();
    let cfg = LogConfig::new(dir.path()).max_segment_bytes(64 * 1024);
    let store = LogStore::open(cfg).await.unwrap();
    let s = strata_core::StreamId::new("after-damage").unwrap();
    let part = || {
        vec![strata_core::StreamAppend::new(
            s.clone(),
            strata_core::ExpectedVersion::Any,
            vec![event(1)],
        )]
    };
    let cond = AppendCondition::new(Query::all(), None);
    let r = store.append_if(part(), &cond).await;
    assert!(matches!(r, Err(Error::Corrupt { .. })), "{r:?}");
    let q = store.read_query(&Query::all(), Position::START, 10).await;
    assert!(matches!(q, Err(Error::Corrupt { .. })), "{q:?}");
    store.append_multi(part()).await.unwrap();
    store.close().await.unwrap();
}

/// Damage in sealed data under a sound tag file: the tag index loads whole
/// from the file (as the type index does, without reading the segment), so
/// conditions are answered from it; a query read that reaches the damaged
/// event reports the damage instead of serving it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damage_under_a_sound_tag_file_is_reported_by_reads() {
    use strata_core::dcb::{AppendCondition, Query};
    let dir = tempfile::tempdir().unwrap();
    let acked = sealed_store(dir.path()).await;
    let seg0 = segment_path(dir.path(), 0);
    let offset = acked[4].first_position.0 & 0xffff_ffff;
    flip_byte(&seg0, offset + 100);
    let cfg = LogConfig::new(dir.path()).max_segment_bytes(64 * 1024);
    let store = LogStore::open(cfg).await.unwrap();
    assert_eq!(store.tag_index_load().segments_rebuilt, 0);
    let s = strata_core::StreamId::new("after-damage").unwrap();
    let part = || {
        vec![strata_core::StreamAppend::new(
            s.clone(),
            strata_core::ExpectedVersion::Any,
            vec![event(1)],
        )]
    };
    let after_all = AppendCondition::new(Query::all(), Some(acked[0].first_position));
    let r = store.append_if(part(), &after_all).await;
    match r {
        Err(Error::ConditionFailed { position }) => assert!(position > acked[0].first_position),
        other => panic!("expected condition_failed, got {other:?}"),
    }
    let q = store.read_query(&Query::all(), Position::START, 10).await;
    assert!(matches!(q, Err(Error::Corrupt { .. })), "{q:?}");
    store.append_multi(part()).await.unwrap();
    store.close().await.unwrap();
}
