//! The writer decides the next turn while the sync stage still syncs the
//! turns before it: checks must see those unpublished turns. Many racing
//! callers keep several turns in flight at once; every guard, retry and
//! condition must come out as if the turns were taken one at a time.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use serde_json::json;
use strata_core::dcb::{AppendCondition, Query, QueryItem, Tag};
use strata_core::version::CurrentVersion;
use strata_core::{
    Direction, Error, EventId, EventStore, ExpectedVersion, NewEvent, Position, StreamAppend,
    StreamId,
};
use strata_log::{Durability, LogConfig, LogStore};

/// Racing tasks.
const TASKS: usize = 16;

async fn open(dir: &std::path::Path) -> Arc<LogStore> {
    Arc::new(
        LogStore::open(
            LogConfig::new(dir)
                .durability(Durability::Always)
                .max_segment_bytes(256 * 1024),
        )
        .await
        .unwrap(),
    )
}

/// Runs `f(task, store)` as [`TASKS`] racing tasks; their results, in
/// task order.
async fn race<T, F, Fut>(store: &Arc<LogStore>, f: F) -> Vec<T>
where
    F: Fn(usize, Arc<LogStore>) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| tokio::spawn(f(task, store.clone())))
        .collect();
    let mut out = Vec::with_capacity(TASKS);
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

fn event(task: usize, n: usize) -> NewEvent {
    NewEvent::json("Tried", &json!({ "task": task, "n": n })).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_guarded_appends_take_each_version_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    let stream = StreamId::new("race-1").unwrap();
    let results = race(&store, |task, store| {
        let stream = stream.clone();
        async move {
            let mut won = Vec::new();
            let mut guess = 0u64;
            for n in 0..40 {
                match store
                    .append(&stream, ExpectedVersion::Exact(guess), vec![event(task, n)])
                    .await
                {
                    Ok(r) => {
                        won.push((r.next_expected_version, task, n));
                        guess = r.next_expected_version;
                    }
                    Err(Error::WrongExpectedVersion { actual, .. }) => {
                        guess = match actual {
                            CurrentVersion::NoStream => 0,
                            CurrentVersion::Current(v) => v,
                        };
                    }
                    Err(e) => panic!("{e}"),
                }
            }
            won
        }
    })
    .await;
    let mut won: Vec<_> = results.into_iter().flatten().collect();
    won.sort_unstable();
    let versions: Vec<u64> = won.iter().map(|w| w.0).collect();
    let expected: Vec<u64> = (1..=won.len() as u64).collect();
    assert_eq!(versions, expected, "each version won exactly once");
    let read = store
        .read_stream(&stream, 1, 10_000, Direction::Forward)
        .await
        .unwrap();
    assert_eq!(read.len(), won.len());
    for (e, (v, task, n)) in read.iter().zip(&won) {
        assert_eq!(e.version, *v);
        let data: serde_json::Value = serde_json::from_slice(&e.data).unwrap();
        assert_eq!(data, json!({ "task": task, "n": n }), "version {v}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_retry_racing_its_original_gets_the_original_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    let results = race(&store, |task, store| async move {
        for n in 0..30 {
            let stream = StreamId::new(format!("retry-{}", (task + n) % 5)).unwrap();
            let events: Vec<NewEvent> = (0..3)
                .map(|k| event(task, n * 3 + k).with_id(EventId::new()))
                .collect();
            let (a, b) = tokio::join!(
                store.append(&stream, ExpectedVersion::Any, events.clone()),
                store.append(&stream, ExpectedVersion::Any, events.clone()),
            );
            let (a, b) = (a.unwrap(), b.unwrap());
            assert_eq!(a, b, "a retry gets the original outcome");
            // And once more, after both are answered.
            let c = store
                .append(&stream, ExpectedVersion::Any, events)
                .await
                .unwrap();
            assert_eq!(a, c);
        }
    })
    .await;
    assert_eq!(results.len(), TASKS);
    let mut total = 0;
    for s in 0..5 {
        let stream = StreamId::new(format!("retry-{s}")).unwrap();
        let read = store
            .read_stream(&stream, 1, 10_000, Direction::Forward)
            .await
            .unwrap();
        let mut ids: Vec<EventId> = read.iter().map(|e| e.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), read.len(), "every id recorded once in {stream}");
        total += read.len();
    }
    assert_eq!(total, TASKS * 30 * 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_conditional_appends_let_one_win_per_boundary() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    let tag = |t: &str| Tag::new(t).unwrap();
    let results = race(&store, |task, store| async move {
        let mut wins = 0;
        for seat in 0..20 {
            let t = format!("seat:{seat}");
            let query = Query::new(vec![QueryItem::new(["Taken"], [tag(&t)])]).unwrap();
            // Every task decides from an empty boundary: one may take the seat.
            let cond = AppendCondition::new(query, Some(Position(0)));
            let e = NewEvent::json("Taken", &json!({ "task": task }))
                .unwrap()
                .with_tags([tag(&t)]);
            let part = StreamAppend::new(
                StreamId::new(format!("seats-{task}")).unwrap(),
                ExpectedVersion::Any,
                vec![e],
            );
            match store.append_if(vec![part], &cond).await {
                Ok(_) => wins += 1,
                Err(Error::ConditionFailed { .. }) => {}
                Err(e) => panic!("{e}"),
            }
        }
        wins
    })
    .await;
    let wins: usize = results.into_iter().sum();
    assert_eq!(wins, 20, "each seat taken exactly once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn what_racing_appends_acknowledged_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    let results = race(&store, |task, store| async move {
        let mut acked = Vec::new();
        for n in 0..60 {
            let stream = StreamId::new(format!("keep-{}", n % 7)).unwrap();
            let r = store
                .append(&stream, ExpectedVersion::Any, vec![event(task, n)])
                .await
                .unwrap();
            acked.push((stream, r.next_expected_version, r.last_position));
        }
        acked
    })
    .await;
    let acked: Vec<_> = results.into_iter().flatten().collect();
    Arc::into_inner(store).unwrap().close().await.unwrap();
    let store = open(dir.path()).await;
    for (stream, version, position) in acked {
        let e = store
            .read_stream(&stream, version, 1, Direction::Forward)
            .await
            .unwrap();
        assert_eq!(e.len(), 1, "{stream} v{version}");
        assert_eq!(e[0].position, position);
    }
}
