//! A damaged log: `verify` names the root problem once with a count of what
//! follows from it, and a repair cuts the log back to its last good frame,
//! keeping every cut byte in a side directory.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::FileExt;

use common::*;
use strata_core::{
    Direction, Error, EventStore, ExpectedVersion, Position, ReadFilter, RecordedEvent,
};
use strata_log::io::FsStorage;
use strata_log::verify::{plan_repair, verify};
use strata_log::{Durability, LogConfig, LogStore};

fn small_segments(dir: &std::path::Path) -> LogConfig {
    LogConfig::new(dir)
        .durability(Durability::Always)
        .max_segment_bytes(64 * 1024)
}

/// 1,200 events over sealed segments, closed; the stream checkpoint is kept.
async fn sealed_store(dir: &std::path::Path) -> Vec<Acked> {
    let cfg = small_segments(dir).durability(Durability::None);
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

/// Breaks the frame holding the single-event append `victim`: its length field.
fn break_frame(dir: &std::path::Path, victim: &Acked) {
    let (n, off) = (
        (victim.first_position.0 >> 32) as u32,
        victim.first_position.0 & 0xffff_ffff,
    );
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(segment_path(dir, n))
        .unwrap();
    f.write_all_at(&[0xFF, 0x7F, 0x13, 0x00], off - 20).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_names_the_root_problem_once_with_a_count() {
    let dir = tempfile::tempdir().unwrap();
    let acked = sealed_store(dir.path()).await;
    let victim = &acked[100];
    break_frame(dir.path(), victim);
    let report = verify(dir.path(), &FsStorage).unwrap();
    assert_eq!(
        report.problems.len(),
        1,
        "one root problem: {:#?}",
        report
            .problems
            .iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
    );
    let root = &report.problems[0];
    assert!(root.file.ends_with("00000000.seg"), "{root}");
    assert_eq!(
        root.offset,
        Some((victim.first_position.0 & 0xffff_ffff) - 20)
    );
    assert!(root.follows > 100, "{root}");
    assert!(
        root.to_string().contains("further findings follow"),
        "{root}"
    );
    let damage = report.first_damage.clone().unwrap();
    assert_eq!(damage.segment, 0);
    // The walk cannot read past the break in its segment: the readable
    // events after it are those of the later segments.
    let behind = acked
        .iter()
        .filter(|a| a.first_position.0 >> 32 > 0)
        .count() as u64;
    assert_eq!(damage.events_after, behind);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repair_cuts_to_the_last_good_frame_and_keeps_the_cut_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let acked = sealed_store(dir.path()).await;
    let victim = &acked[100];
    break_frame(dir.path(), victim);
    // Indexes and checkpoint gone: the store must scan, and refuses to open.
    std::fs::remove_dir_all(dir.path().join("index")).unwrap();
    std::fs::remove_file(dir.path().join("streams.ckpt")).unwrap();
    let seg_bytes: u64 = std::fs::read_dir(dir.path().join("segments"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert!(matches!(
        LogStore::open(small_segments(dir.path())).await,
        Err(Error::Corrupt { .. })
    ));
    let report = verify(dir.path(), &FsStorage).unwrap();
    let plan = plan_repair(dir.path(), &FsStorage, &report, "test")
        .unwrap()
        .expect("a damaged log has a plan");
    assert!(!plan.later_segments.is_empty());
    let done = plan.apply(&FsStorage).unwrap();
    // Every byte of the segments is still on disk: in the log or aside.
    let aside: u64 = done
        .kept
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    // The damaged segment is copied aside whole and later ones moved there.
    assert_eq!(aside, seg_bytes);
    assert!(verify(dir.path(), &FsStorage).unwrap().is_clean());
    let store = LogStore::open(small_segments(dir.path())).await.unwrap();
    check_acked(&store, &acked[..100]).await;
    let all = store
        .read_all(Position::START, 10_000, &ReadFilter::all())
        .await
        .unwrap();
    assert_eq!(all.len(), 100, "the log ends at the last good frame");
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repair_refuses_an_open_store() {
    let dir = tempfile::tempdir().unwrap();
    let acked = sealed_store(dir.path()).await;
    break_frame(dir.path(), &acked[1100]);
    let report = verify(dir.path(), &FsStorage).unwrap();
    let plan = plan_repair(dir.path(), &FsStorage, &report, "t")
        .unwrap()
        .unwrap();
    // The damage is in the active segment's data before later durable frames,
    // so the store does not open; hold its LOCK as an open store would.
    let _lock = strata_log::io::try_lock_file(&dir.path().join("LOCK"))
        .unwrap()
        .unwrap();
    let err = plan.apply(&FsStorage).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock);
    assert!(!dir.path().join("repair-t").exists(), "nothing was moved");
}

/// Every file of the store's segments, with its bytes.
fn segment_files(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<_> = std::fs::read_dir(dir.join("segments"))
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_store_opens_read_only_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let acked = sealed_store(dir.path()).await;
    let victim = &acked[100];
    break_frame(dir.path(), victim);
    std::fs::remove_dir_all(dir.path().join("index")).unwrap();
    std::fs::remove_file(dir.path().join("streams.ckpt")).unwrap();
    let before = segment_files(dir.path());
    let store = LogStore::open(small_segments(dir.path()).allow_damaged(true))
        .await
        .unwrap();
    // Everything before the damage is served ...
    for a in &acked[..100] {
        let got = store
            .read_stream(
                &a.stream,
                a.first_version,
                1,
                strata_core::Direction::Forward,
            )
            .await
            .unwrap();
        assert_eq!(got[0].position, a.first_position);
    }
    let all = store
        .read_all(Position::START, 10_000, &ReadFilter::all())
        .await
        .unwrap();
    assert_eq!(all.len(), 100);
    // ... a read that reaches the damage names it ...
    let next = Position(all.last().unwrap().position.0 + 1);
    match store.read_all(next, 10, &ReadFilter::all()).await {
        Err(Error::Corrupt { location, reason }) => {
            assert!(location.contains("00000000.seg"), "{location}");
            let off = (victim.first_position.0 & 0xffff_ffff) - 20;
            assert!(location.contains(&off.to_string()), "{location}");
            assert!(reason.contains("read-only"), "{reason}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    // ... and writes are refused.
    let err = store
        .append(&victim.stream, ExpectedVersion::Any, vec![event(1)])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Poisoned { .. }), "{err}");
    store.close().await.unwrap();
    assert_eq!(segment_files(dir.path()), before, "no segment file changed");
    // Without the option it still refuses to open.
    assert!(matches!(
        LogStore::open(small_segments(dir.path())).await,
        Err(Error::Corrupt { .. })
    ));
}

/// Flips one bit inside the event record of the single-event append
/// `victim`: its frame then fails its checksum.
fn flip_bit(dir: &std::path::Path, victim: &Acked) {
    let (n, off) = split(victim.first_position);
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(segment_path(dir, n))
        .unwrap();
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, off + 40).unwrap();
    f.write_all_at(&[b[0] ^ 0x04], off + 40).unwrap();
}

fn split(p: Position) -> (u32, u64) {
    ((p.0 >> 32) as u32, p.0 & 0xffff_ffff)
}

/// Where a damage error says reading can go on.
fn resume_position(reason: &str) -> Position {
    let n = reason
        .split("reading can go on from position ")
        .nth(1)
        .unwrap_or_else(|| panic!("no resume position in: {reason}"));
    Position(
        n.trim_end_matches(|c: char| !c.is_ascii_digit())
            .parse()
            .unwrap(),
    )
}

async fn read_one(store: &LogStore, a: &Acked) -> strata_core::Result<Vec<RecordedEvent>> {
    store
        .read_stream(&a.stream, a.first_version, 1, Direction::Forward)
        .await
}

/// The frame holding a single-event append starts 20 bytes before its
/// record (frame header and event count).
fn frame_of(a: &Acked) -> (String, u64) {
    let (n, off) = split(a.first_position);
    (format!("{n:08}.seg"), off - 20)
}

fn assert_names(err: &Error, a: &Acked) {
    let (file, off) = frame_of(a);
    match err {
        Error::Corrupt { location, reason } => {
            assert!(location.contains(&file), "{location}");
            assert!(
                location.ends_with(&format!("at offset {off}")),
                "{location}"
            );
            assert!(reason.contains("read-only"), "{reason}");
        }
        other => panic!("expected Corrupt naming the damage, got {other:?}"),
    }
}

fn positions(events: &[RecordedEvent]) -> Vec<Position> {
    events.iter().map(|e| e.position).collect()
}

fn acked_positions(acked: &[Acked]) -> Vec<Position> {
    acked.iter().map(|a| a.first_position).collect()
}

/// One bit flipped in a middle segment: every event before and after the
/// damaged frame is served, and each kind of read that touches it is
/// answered with an error naming it. `derived`: the stream checkpoint and
/// index files are kept (else recovery rebuilds everything from the log).
async fn serves_everything_outside_the_damage(derived: bool) {
    let dir = tempfile::tempdir().unwrap();
    let acked = sealed_store(dir.path()).await;
    let v = 600;
    let victim = &acked[v];
    let (victim_seg, _) = split(victim.first_position);
    let (last_seg, _) = split(acked.last().unwrap().first_position);
    assert!(victim_seg > 0 && victim_seg < last_seg, "a middle segment");
    flip_bit(dir.path(), victim);
    if !derived {
        std::fs::remove_dir_all(dir.path().join("index")).unwrap();
        std::fs::remove_file(dir.path().join("streams.ckpt")).unwrap();
    }
    let before = segment_files(dir.path());
    if !derived {
        // A normal opening must scan the damaged segment, and refuses it.
        assert!(matches!(
            LogStore::open(small_segments(dir.path())).await,
            Err(Error::Corrupt { .. })
        ));
    }
    let store = LogStore::open(small_segments(dir.path()).allow_damaged(true))
        .await
        .unwrap();

    // Every event outside the damage, read by its stream and version.
    for (i, a) in acked.iter().enumerate() {
        match read_one(&store, a).await {
            Ok(got) if i != v => assert_eq!(got[0].position, a.first_position, "event {i}"),
            Err(e) if i == v => assert_names(&e, a),
            other => panic!("event {i}: {other:?}"),
        }
    }
    // A window of the victim's stream over the lost version is refused;
    // the versions after it are served.
    let whole = store
        .read_stream(&victim.stream, 1, 10_000, Direction::Forward)
        .await
        .unwrap_err();
    assert_names(&whole, victim);
    let after: Vec<&Acked> = acked[v + 1..]
        .iter()
        .filter(|a| a.stream == victim.stream)
        .collect();
    let got = store
        .read_stream(
            &victim.stream,
            victim.first_version + 1,
            10_000,
            Direction::Forward,
        )
        .await
        .unwrap();
    assert_eq!(
        positions(&got),
        after.iter().map(|a| a.first_position).collect::<Vec<_>>()
    );

    // `$all`: up to the damage, then an error naming it and where reading
    // goes on, then everything after it.
    for filter in [
        ReadFilter::all(),
        ReadFilter::all().event_types(["Happened"]),
        ReadFilter::all().stream_prefix("s-"),
        ReadFilter::all().stream(victim.stream.clone()),
    ] {
        let wanted = |a: &&Acked| filter.matches_stream(a.stream.as_str());
        let up_to: Vec<Acked> = acked[..v].iter().filter(wanted).cloned().collect();
        let beyond: Vec<Acked> = acked[v + 1..].iter().filter(wanted).cloned().collect();
        let first = store
            .read_all(Position::START, 10_000, &filter)
            .await
            .unwrap();
        assert_eq!(positions(&first), acked_positions(&up_to), "{filter:?}");
        let next = Position(first.last().unwrap().position.0 + 1);
        let err = store.read_all(next, 10_000, &filter).await.unwrap_err();
        assert_names(&err, victim);
        let Error::Corrupt { reason, .. } = &err else {
            unreachable!()
        };
        let resume = resume_position(reason);
        assert!(resume > victim.first_position, "{resume:?}");
        let rest = store.read_all(resume, 10_000, &filter).await.unwrap();
        assert_eq!(positions(&rest), acked_positions(&beyond), "{filter:?}");

        // Backwards: from the end down to the damage, then an error naming
        // it, then, below the damaged frame, everything before it.
        let newest_first = |acked: &[Acked]| {
            let mut p = acked_positions(acked);
            p.reverse();
            p
        };
        let back = store
            .read_all_backward(Position::END, 10_000, &filter)
            .await
            .unwrap();
        assert_eq!(positions(&back), newest_first(&beyond), "{filter:?}");
        let lowest = back.last().unwrap().position;
        let err = store
            .read_all_backward(lowest, 10_000, &filter)
            .await
            .unwrap_err();
        assert_names(&err, victim);
        let (n, _) = split(victim.first_position);
        let (_, frame) = frame_of(victim);
        let below_damage = Position((u64::from(n) << 32) | frame);
        let lower = store
            .read_all_backward(below_damage, 10_000, &filter)
            .await
            .unwrap();
        assert_eq!(positions(&lower), newest_first(&up_to), "{filter:?}");
    }
    store.close().await.unwrap();
    assert_eq!(segment_files(dir.path()), before, "no segment file changed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_store_serves_everything_outside_the_damage() {
    serves_everything_outside_the_damage(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_store_rebuilt_from_the_log_serves_everything_outside_the_damage() {
    serves_everything_outside_the_damage(false).await;
}

/// Two damaged segments, one of them unreadable from its header on: the
/// segments between and after them are served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damage_in_two_segments_leaves_the_rest_readable() {
    let dir = tempfile::tempdir().unwrap();
    let acked = sealed_store(dir.path()).await;
    let in_seg = |n: u32| -> Vec<Acked> {
        acked
            .iter()
            .filter(|a| split(a.first_position).0 == n)
            .cloned()
            .collect()
    };
    let (last_seg, _) = split(acked.last().unwrap().first_position);
    assert!(last_seg >= 3, "the test needs four segments");
    // Segment 1 loses its header; one frame of segment 2 is damaged.
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(segment_path(dir.path(), 1))
        .unwrap();
    f.write_all_at(&[0xAB; 8], 0).unwrap();
    let seg2 = in_seg(2);
    let victim = &seg2[seg2.len() / 2];
    flip_bit(dir.path(), victim);
    let store = LogStore::open(small_segments(dir.path()).allow_damaged(true))
        .await
        .unwrap();
    let (seg1, seg3) = (in_seg(1), in_seg(3));
    for a in in_seg(0).iter().chain(&seg3) {
        assert_eq!(
            read_one(&store, a).await.unwrap()[0].position,
            a.first_position
        );
    }
    match read_one(&store, &seg1[5]).await {
        Err(Error::Corrupt { location, reason }) => {
            assert!(location.contains("00000001.seg"), "{location}");
            let resume = resume_position(&reason);
            assert_eq!(split(resume).0, 2, "reading goes on in segment 2: {reason}");
            // From there: segment 2 up to its damaged frame.
            let got = store
                .read_all(resume, 10_000, &ReadFilter::all())
                .await
                .unwrap();
            let before: Vec<&Acked> = seg2
                .iter()
                .take_while(|a| a.first_position < victim.first_position)
                .collect();
            assert_eq!(
                positions(&got),
                before.iter().map(|a| a.first_position).collect::<Vec<_>>()
            );
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert_names(&read_one(&store, victim).await.unwrap_err(), victim);
    store.close().await.unwrap();
}

/// A compressed segment with a damaged block: the events of every other
/// segment are served, and those the block held are refused by name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_compressed_block_is_refused_and_the_rest_served() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = small_segments(dir.path())
        .durability(strata_log::Durability::None)
        .compression(Some(strata_log::compress::Compression::default()));
    let store = LogStore::open(cfg.clone()).await.unwrap();
    let mut acked = Vec::new();
    append_some(&store, 1200, 10, &mut acked).await;
    store.close().await.unwrap();
    let packed = dir.path().join("segments").join("00000001.zseg");
    let mut bytes = std::fs::read(&packed).expect("segment 1 is compressed");
    let at = bytes.len() - 100;
    bytes[at] ^= 0x10;
    std::fs::write(&packed, bytes).unwrap();
    let store = LogStore::open(cfg.allow_damaged(true)).await.unwrap();
    let mut refused = 0;
    for a in &acked {
        match read_one(&store, a).await {
            Ok(got) => assert_eq!(got[0].position, a.first_position),
            Err(Error::Corrupt { location, .. }) if split(a.first_position).0 == 1 => {
                assert!(location.contains("00000001.zseg"), "{location}");
                refused += 1;
            }
            Err(e) => panic!("{:?}: {e}", a.first_position),
        }
    }
    assert!(refused > 0, "the damaged block's events are refused");
    let later: Vec<Position> = acked
        .iter()
        .map(|a| a.first_position)
        .filter(|p| split(*p).0 >= 2)
        .collect();
    let from = *later.first().unwrap();
    let got = store
        .read_all(from, 10_000, &ReadFilter::all())
        .await
        .unwrap();
    assert_eq!(positions(&got), later);
    store.close().await.unwrap();
}
