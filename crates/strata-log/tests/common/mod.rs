//! Helpers shared by the log store's integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use strata_core::{
    Direction, EventId, EventStore, ExpectedVersion, NewEvent, Position, ReadFilter, StreamId,
};
use strata_log::io::{Faults, FaultyStorage};
use strata_log::verify::verify;
use strata_log::{Durability, LogConfig, LogStore};

/// An acknowledged append: what must survive anything.
#[derive(Clone, Debug)]
pub struct Acked {
    pub stream: StreamId,
    pub first_version: u64,
    pub ids: Vec<EventId>,
    pub first_position: Position,
    pub last_position: Position,
}

pub fn config(dir: &Path) -> LogConfig {
    LogConfig::new(dir).durability(Durability::Always)
}

pub fn faulty_config(dir: &Path, faults: Arc<Faults>) -> LogConfig {
    config(dir).storage(Arc::new(FaultyStorage::new(faults)))
}

pub fn event(i: usize) -> NewEvent {
    NewEvent::json(
        "Happened",
        &serde_json::json!({ "i": i, "pad": "x".repeat(150) }),
    )
    .expect("json")
    .with_id(EventId::new())
}

pub fn stream(i: usize) -> StreamId {
    StreamId::new(format!("s-{i}")).expect("stream id")
}

/// Appends `n` events, one per append, round-robin over `streams` streams.
pub async fn append_some(store: &LogStore, n: usize, streams: usize, acked: &mut Vec<Acked>) {
    for i in 0..n {
        let s = stream(i % streams);
        let e = event(i);
        let id = e.id.expect("id");
        let r = store
            .append(&s, ExpectedVersion::Any, vec![e])
            .await
            .expect("append");
        acked.push(Acked {
            stream: s,
            first_version: r.next_expected_version,
            ids: vec![id],
            first_position: r.first_position,
            last_position: r.last_position,
        });
    }
}

/// Checks that every acknowledged append is present, whole, with its version
/// and position, and that every stream's versions are contiguous.
pub async fn check_acked(store: &LogStore, acked: &[Acked]) {
    // Read every stream once: (stream, version) -> (id, position).
    let mut seen: std::collections::HashMap<(StreamId, u64), (EventId, Position)> =
        Default::default();
    let streams: std::collections::BTreeSet<StreamId> =
        acked.iter().map(|a| a.stream.clone()).collect();
    for s in streams {
        let mut from = 1;
        loop {
            let page = store
                .read_stream(&s, from, 10_000, Direction::Forward)
                .await
                .unwrap_or_else(|e| panic!("reading stream {s}: {e}"));
            for e in &page {
                seen.insert((s.clone(), e.version), (e.id, e.position));
            }
            if page.len() < 10_000 {
                break;
            }
            from += page.len() as u64;
        }
    }
    for a in acked {
        for (k, id) in a.ids.iter().enumerate() {
            let v = a.first_version + k as u64;
            let got = seen
                .get(&(a.stream.clone(), v))
                .unwrap_or_else(|| panic!("acknowledged append {a:?} lost version {v}"));
            assert_eq!(got.0, *id, "event id of {a:?} at version {v}");
            if k == 0 {
                assert_eq!(got.1, a.first_position, "first position of {a:?}");
            }
            if k + 1 == a.ids.len() {
                assert_eq!(got.1, a.last_position, "last position of {a:?}");
            }
        }
    }
    check_contiguous(store).await;
}

/// Every stream's versions run 1..=n without gaps, and `$all` is ordered.
pub async fn check_contiguous(store: &LogStore) {
    let mut from = Position::START;
    let mut last = Position::START;
    let mut versions: std::collections::HashMap<StreamId, u64> = Default::default();
    loop {
        let page = store
            .read_all(from, 10_000, &ReadFilter::all())
            .await
            .expect("read_all");
        if page.is_empty() {
            break;
        }
        for e in &page {
            assert!(e.position > last, "positions must increase");
            last = e.position;
            let v = versions.entry(e.stream_id.clone()).or_insert(0);
            assert_eq!(
                e.version,
                *v + 1,
                "versions of {} must be contiguous",
                e.stream_id
            );
            *v = e.version;
        }
        from = last.next();
    }
}

/// Asserts `verify` finds nothing wrong.
pub fn assert_verify_clean(dir: &Path) {
    let report = verify(dir, &strata_log::io::FsStorage).expect("verify runs");
    assert!(
        report.is_clean(),
        "verify found problems: {:#?}",
        report.problems
    );
}

pub fn segment_path(dir: &Path, n: u32) -> PathBuf {
    dir.join("segments").join(format!("{n:08}.seg"))
}
