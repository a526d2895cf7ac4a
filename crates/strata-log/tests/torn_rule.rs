//! The torn-tail rule against crafted payloads and reordered writes: event
//! data that holds a well-formed frame never stops a store from opening, a
//! power cut that keeps a later unsynced frame and loses an earlier one is a
//! torn tail, and damage to a frame that later frames prove durable is
//! still corruption. Format-1 segments written by older builds still open
//! and take appends.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;

use common::*;
use strata_core::{
    ContentType, Error, EventId, EventStore, ExpectedVersion, Metadata, NewEvent, Position,
    ReadFilter, StreamId,
};
use strata_log::format::{
    encode_segment_header_v1, split_position, FrameCheck, FrameKind, FrameWriter,
};
use strata_log::{Durability, LogConfig, LogStore};

fn file_len(p: &std::path::Path) -> u64 {
    std::fs::metadata(p).unwrap().len()
}

/// A delete frame that passes every check of its format, as bytes.
fn frame(check: FrameCheck, seq: u32) -> Vec<u8> {
    let mut w = FrameWriter::for_segment(check, seq);
    w.begin(FrameKind::Delete);
    w.delete_body("victim-1", 99);
    w.finish();
    w.buf
}

/// Event data holding `frame` at each of the 8 alignments, then filler.
fn data_holding(frame: &[u8]) -> Vec<u8> {
    let mut d = Vec::new();
    for shift in 0..8 {
        d.extend(std::iter::repeat_n(0xEE, shift));
        d.extend_from_slice(frame);
    }
    d.extend(std::iter::repeat_n(0xEE, 256));
    d
}

async fn append_one(store: &LogStore, stream: &str, e: NewEvent) -> Position {
    let r = store
        .append(
            &StreamId::new(stream).unwrap(),
            ExpectedVersion::Any,
            vec![e],
        )
        .await
        .unwrap();
    r.first_position
}

/// Offset of the frame holding the single-event append at `p`: the record
/// follows the 16-byte frame header and the 4-byte event count.
fn frame_of(p: Position) -> u64 {
    split_position(p).1 - 20
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payload_holding_frames_does_not_stop_a_torn_store_from_opening() {
    for forged in [
        frame(FrameCheck::V1, 0),
        // Right sequence numbers, a floor that would prove durability, a guessed salt.
        frame(FrameCheck::salted(12345), 7),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let store = LogStore::open(config(dir.path())).await.unwrap();
        let mut acked = Vec::new();
        append_some(&store, 5, 2, &mut acked).await;
        let data = data_holding(&forged);
        append_one(
            &store,
            "crafted-1",
            NewEvent::new("Blob", data, ContentType::Binary),
        )
        .await;
        store.close().await.unwrap();
        std::fs::remove_file(dir.path().join("streams.ckpt")).ok();
        // The crafted frame's last bytes never reached the disk.
        let seg = segment_path(dir.path(), 0);
        let f = OpenOptions::new().write(true).open(&seg).unwrap();
        f.set_len(file_len(&seg) - 64).unwrap();
        drop(f);
        let store = LogStore::open(config(dir.path())).await.unwrap();
        check_acked(&store, &acked).await;
        let all = store
            .read_all(Position::START, 100, &ReadFilter::all())
            .await
            .unwrap();
        assert_eq!(all.len(), acked.len(), "the torn crafted event is gone");
        store.close().await.unwrap();
        assert_verify_clean(dir.path());
    }
}

/// Appends six single-event appends in `durability`, closes, and returns
/// the acknowledged appends and the positions of the six events.
async fn six_frames(dir: &std::path::Path, durability: Durability) -> (Vec<Acked>, Vec<Position>) {
    let store = LogStore::open(LogConfig::new(dir).durability(durability))
        .await
        .unwrap();
    let mut acked = Vec::new();
    append_some(&store, 6, 2, &mut acked).await;
    store.close().await.unwrap();
    std::fs::remove_file(dir.join("streams.ckpt")).ok();
    let positions = acked.iter().map(|a| a.first_position).collect();
    (acked, positions)
}

/// Zeroes the frame holding the event at `p`, as a lost write leaves it.
fn lose_frame(dir: &std::path::Path, p: Position, next: Position) {
    let seg = segment_path(dir, 0);
    let f = OpenOptions::new().write(true).open(seg).unwrap();
    let from = frame_of(p);
    let len = frame_of(next) - from;
    f.write_all_at(&vec![0u8; len as usize], from).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_later_frame_after_a_lost_unsynced_one_is_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    // No sync between the appends: all six were unsynced together.
    let (acked, pos) = six_frames(dir.path(), Durability::None).await;
    lose_frame(dir.path(), pos[3], pos[4]);
    let store = LogStore::open(config(dir.path())).await.unwrap();
    check_acked(&store, &acked[..3]).await;
    let all = store
        .read_all(Position::START, 100, &ReadFilter::all())
        .await
        .unwrap();
    assert_eq!(all.len(), 3, "the store is cut at the lost frame");
    // It takes appends again where it was cut.
    let p = append_one(&store, "after-1", event(99)).await;
    assert_eq!(frame_of(p), frame_of(pos[3]));
    store.close().await.unwrap();
    assert_verify_clean(dir.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_frame_that_later_frames_prove_durable_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    // Every append synced: frames 5 and 6 say frame 4 was durable.
    let (_, pos) = six_frames(dir.path(), Durability::Always).await;
    lose_frame(dir.path(), pos[3], pos[4]);
    let err = LogStore::open(config(dir.path()))
        .await
        .err()
        .expect("open must refuse");
    match err {
        Error::Corrupt { location, reason } => {
            assert!(location.contains("00000000.seg"), "{location}");
            assert!(reason.contains("made durable"), "{reason}");
        }
        other => panic!("expected Corrupt, got {other}"),
    }
}

/// Writes a format-1 segment 0 holding `n` events of stream `old-1`.
fn write_v1_segment(dir: &std::path::Path, n: u64) {
    std::fs::create_dir_all(dir.join("segments")).unwrap();
    let mut w = FrameWriter::new();
    for v in 1..=n {
        w.begin(FrameKind::Append);
        w.put_u32(1);
        w.record(
            "old-1",
            v,
            EventId::new(),
            1_700_000_000_000_000,
            ContentType::Json,
            "Old",
            &Metadata::default(),
            &[],
            b"{}",
        );
        w.finish();
    }
    let mut bytes = encode_segment_header_v1(0).to_vec();
    bytes.extend_from_slice(&w.buf);
    std::fs::write(segment_path(dir, 0), bytes).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_format_1_store_opens_and_takes_appends() {
    let dir = tempfile::tempdir().unwrap();
    write_v1_segment(dir.path(), 3);
    let store = LogStore::open(config(dir.path())).await.unwrap();
    let old = StreamId::new("old-1").unwrap();
    let r = store
        .append(&old, ExpectedVersion::Exact(3), vec![event(1)])
        .await
        .unwrap();
    assert_eq!(r.next_expected_version, 4);
    store.close().await.unwrap();
    let store = LogStore::open(config(dir.path())).await.unwrap();
    let all = store
        .read_all(Position::START, 100, &ReadFilter::all())
        .await
        .unwrap();
    assert_eq!(all.len(), 4);
    store.close().await.unwrap();
    assert_verify_clean(dir.path());
}
