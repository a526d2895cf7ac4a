//! Processors and projections filtered by a DCB query: they see exactly the
//! matching events, in order, across catch-up (the store's query reads) and
//! live (a query-filtered subscription), and resume from their checkpoint
//! without handling anything twice.

// Helpers outside `#[test]` functions unwrap too; clippy.toml only exempts the tests.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use strata::dcb::{Query, QueryItem, Tag};
use strata::processor::{handler_fn, EventProcessor, ProcessorConfig};
use strata::{
    CheckpointStore, EventStore, ExpectedVersion, MemoryCheckpointStore, MemoryStore, NewEvent,
    Position, Projection, ProjectionError, ProjectionRunner, ReadFilter, RecordedEvent,
    RunnerConfig, StreamId, StreamMetadata,
};

mod common;
use common::InstrumentedStore;

const WAIT: Duration = Duration::from_secs(10);

fn tag(t: &str) -> Tag {
    Tag::new(t).unwrap()
}

/// The `i`-th event of the test's history: its stream, type and tags.
fn shape(i: u64) -> (String, &'static str, Vec<Tag>) {
    let event_type = if i.is_multiple_of(2) {
        "StudentSubscribed"
    } else {
        "CourseRenamed"
    };
    let tags = vec![
        tag(&format!("course:c{}", i % 3)),
        tag(&format!("student:s{}", i % 5)),
    ];
    (format!("course-c{}", i % 3), event_type, tags)
}

/// Subscriptions to course c1, and anything about student s2.
fn query() -> Query {
    Query::new(vec![
        QueryItem::new(["StudentSubscribed"], [tag("course:c1")]),
        QueryItem::new(Vec::<String>::new(), [tag("student:s2")]),
    ])
    .unwrap()
}

/// Whether the `i`-th event matches [`query`], decided from its shape
/// alone (not by the code under test).
fn wanted(i: u64) -> bool {
    (i.is_multiple_of(2) && i % 3 == 1) || i % 5 == 2
}

/// Appends events `range` one by one; returns each one's (index, position).
async fn append(store: &impl EventStore, range: std::ops::Range<u64>) -> Vec<(u64, Position)> {
    let mut out = Vec::new();
    for i in range {
        let (stream, event_type, tags) = shape(i);
        let e = NewEvent::json_bytes(event_type, format!("{{\"i\":{i}}}")).with_tags(tags);
        let r = store
            .append(
                &StreamId::new(stream).unwrap(),
                ExpectedVersion::Any,
                vec![e],
            )
            .await
            .unwrap();
        out.push((i, r.last_position));
    }
    out
}

fn matching(written: &[(u64, Position)]) -> Vec<Position> {
    written
        .iter()
        .filter(|(i, _)| wanted(*i))
        .map(|(_, p)| *p)
        .collect()
}

/// A processor named `name` with the test's query, recording the position
/// of every event its handler gets; pages of 4 so catch-up takes several.
fn processor(
    store: InstrumentedStore,
    checkpoints: Arc<dyn CheckpointStore>,
    seen: Arc<Mutex<Vec<Position>>>,
) -> EventProcessor<InstrumentedStore> {
    EventProcessor::new("course-mail", store, checkpoints)
        .with_config(ProcessorConfig {
            page_events: 4,
            batch_events: 3,
            ..Default::default()
        })
        .with_query(query())
        .on_any(handler_fn("record", move |e: &RecordedEvent| {
            seen.lock().push(e.position);
            Ok(())
        }))
}

#[tokio::test]
async fn a_processor_with_a_query_handles_exactly_the_matching_events() {
    let store = InstrumentedStore::default();
    let checkpoints: Arc<dyn CheckpointStore> = Arc::new(MemoryCheckpointStore::new());
    let seen = Arc::new(Mutex::new(Vec::new()));
    // 29 is not wanted: the history ends with a skipped event.
    assert!(!wanted(29));
    let mut written = append(&store, 0..30).await;
    // Metadata events live in system streams: no query matches them.
    let course = StreamId::new("course-c1").unwrap();
    let settings = StreamMetadata {
        custom: Some(serde_json::json!({"room": 12})),
        ..Default::default()
    };
    store
        .set_stream_metadata(&course, ExpectedVersion::Any, &settings)
        .await
        .unwrap();
    let head = store.head_position().await.unwrap();

    // Catch-up: query reads only, every matching event once, in order.
    let mut p = processor(store.clone(), Arc::clone(&checkpoints), Arc::clone(&seen));
    let report = p.catch_up().await.unwrap();
    assert_eq!(*seen.lock(), matching(&written));
    assert_eq!(report.to, head, "the skipped tail is considered too");
    assert_eq!(p.position(), head);
    assert_eq!(store.all_reads.load(Ordering::SeqCst), 0);
    let pages = matching(&written).len() as u64 / 4 + 1;
    assert_eq!(store.query_reads.load(Ordering::SeqCst), pages);
    assert_eq!(checkpoints.load("course-mail").await.unwrap(), Some(head));

    // Live: a query-filtered subscription, still in order, nothing twice.
    let running = p.spawn();
    written.extend(append(&store, 30..60).await);
    let head = store.head_position().await.unwrap();
    running.wait_for(head, WAIT).await.unwrap();
    let report = running.stop().await.unwrap();
    assert_eq!(*seen.lock(), matching(&written));
    assert_eq!(report.to, head);
    assert_eq!(checkpoints.load("course-mail").await.unwrap(), Some(head));

    // A new processor resumes after the checkpoint: only the new events.
    written.extend(append(&store, 60..75).await);
    let resumed = Arc::new(Mutex::new(Vec::new()));
    let mut p = processor(
        store.clone(),
        Arc::clone(&checkpoints),
        Arc::clone(&resumed),
    );
    let report = p.catch_up().await.unwrap();
    assert_eq!(report.from, head);
    let new: Vec<Position> = matching(&written[60..]);
    assert!(!new.is_empty());
    assert_eq!(*resumed.lock(), new);
    assert_eq!(report.events, new.len() as u64);
}

#[tokio::test]
async fn a_query_combines_with_the_handlers_event_types_and_leaves_projections_alone() {
    let store = InstrumentedStore::default();
    let written = append(&store, 0..40).await;
    let typed = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&typed);
    let counted = SharedCount::default();
    let all = strata::SharedProjection::new(counted.clone());
    let mut p = EventProcessor::new(
        "typed",
        store.clone(),
        Arc::new(MemoryCheckpointStore::new()),
    )
    .with_config(ProcessorConfig {
        page_events: 5,
        workers: 3,
        ..Default::default()
    })
    .with_query(query())
    .on(
        "CourseRenamed",
        handler_fn("renames", move |e: &RecordedEvent| {
            log.lock().push(e.position);
            Ok(())
        }),
    )
    .with_projection(all.clone());
    p.catch_up().await.unwrap();
    // Renames (odd indexes) that the query matches: only those about s2.
    let want: Vec<Position> = written
        .iter()
        .filter(|(i, _)| i % 2 == 1 && wanted(*i))
        .map(|(_, p)| *p)
        .collect();
    let mut got = typed.lock().clone();
    // Three workers: each stream's events in order, streams interleaved.
    got.sort();
    assert_eq!(got, want);
    // The attached projection has no query: it folded every event.
    assert_eq!(counted.0.load(Ordering::SeqCst), 40);
}

/// Counts the events it folds; with a query when built by [`Self::with_query`].
#[derive(Clone, Default)]
struct SharedCount(Arc<AtomicU64>, Option<Query>, Arc<Mutex<Vec<Position>>>);

impl SharedCount {
    fn with_query(query: Query) -> Self {
        SharedCount(Default::default(), Some(query), Default::default())
    }
}

impl Projection for SharedCount {
    fn name(&self) -> &str {
        "count"
    }

    fn dcb_query(&self) -> Option<Query> {
        self.1.clone()
    }

    fn update(&mut self, event: &RecordedEvent) -> Result<(), ProjectionError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        self.2.lock().push(event.position);
        Ok(())
    }

    fn reset(&mut self) {
        self.0.store(0, Ordering::SeqCst);
        self.2.lock().clear();
    }
}

#[tokio::test]
async fn a_projection_with_a_query_folds_exactly_the_matching_events() {
    let store = InstrumentedStore::default();
    let mut written = append(&store, 0..25).await;
    let projection = SharedCount::with_query(query());
    let folded = Arc::clone(&projection.2);
    let mut runner = ProjectionRunner::new(
        store.clone(),
        Arc::new(MemoryCheckpointStore::new()),
        projection,
    )
    .with_config(RunnerConfig {
        page_events: 3,
        live_batch_events: 2,
        ..Default::default()
    });
    let report = runner.catch_up().await.unwrap();
    assert_eq!(*folded.lock(), matching(&written));
    assert_eq!(report.to, store.head_position().await.unwrap());
    assert_eq!(store.all_reads.load(Ordering::SeqCst), 0);
    assert!(store.query_reads.load(Ordering::SeqCst) > 0);

    let running = runner.spawn();
    written.extend(append(&store, 25..50).await);
    let head = store.head_position().await.unwrap();
    let progress = running.projection().wait_for(head, WAIT).await.unwrap();
    assert_eq!(*folded.lock(), matching(&written));
    assert_eq!(progress.state_position, *matching(&written).last().unwrap());
    running.stop().await.unwrap();
}

/// Waits until the group's checkpoint reaches `last`.
async fn wait_for_group(
    groups: &Arc<dyn strata::group::ConsumerGroups>,
    group: &strata::group::GroupName,
    last: Position,
) {
    let began = std::time::Instant::now();
    loop {
        let status = groups.group_status(group).await.unwrap().unwrap();
        if status.checkpoint >= last {
            return;
        }
        assert!(
            began.elapsed() < WAIT,
            "the group's checkpoint stayed at {} below {last}",
            status.checkpoint
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn in_a_group_a_query_processor_handles_the_matching_messages_and_acks_the_rest() {
    use strata::group::{
        ConsumerGroups, ConsumerId, GroupMember, GroupName, GroupSettings, GroupSource, LocalGroups,
    };
    let store = MemoryStore::new();
    let written = append(&store, 0..40).await;
    let groups: Arc<dyn ConsumerGroups> = Arc::new(LocalGroups::new(store.clone()));
    let group = GroupName::new("course-mail").unwrap();
    groups
        .put_group(
            &group,
            GroupSettings::new(GroupSource::All(ReadFilter::all())),
        )
        .await
        .unwrap();
    let member = |name: &str| {
        GroupMember::new(
            Arc::clone(&groups),
            group.clone(),
            ConsumerId::new(name).unwrap(),
        )
    };

    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let running = EventProcessor::new(
        "course-mail",
        store.clone(),
        Arc::new(MemoryCheckpointStore::new()),
    )
    .with_query(query())
    .on_any(handler_fn("record", move |e: &RecordedEvent| {
        log.lock().push(e.position);
        Ok(())
    }))
    .run_in_group(member("m1"))
    .unwrap();
    // The last event is not wanted: the checkpoint still passes it.
    assert!(!wanted(39));
    wait_for_group(&groups, &group, written.last().unwrap().1).await;
    running.stop().await.unwrap();
    let mut got = seen.lock().clone();
    got.sort();
    assert_eq!(got, matching(&written), "each matching event once");

    // A projection with a query, in a group of its own, folds the same.
    let group = GroupName::new("course-count").unwrap();
    groups
        .put_group(
            &group,
            GroupSettings::new(GroupSource::All(ReadFilter::all())),
        )
        .await
        .unwrap();
    let projection = SharedCount::with_query(query());
    let folded = Arc::clone(&projection.2);
    let running = ProjectionRunner::new(
        store.clone(),
        Arc::new(MemoryCheckpointStore::new()),
        projection,
    )
    .run_in_group(GroupMember::new(
        Arc::clone(&groups),
        group.clone(),
        ConsumerId::new("p1").unwrap(),
    ))
    .unwrap();
    wait_for_group(&groups, &group, written.last().unwrap().1).await;
    running.stop().await.unwrap();
    let mut got = folded.lock().clone();
    got.sort();
    assert_eq!(got, matching(&written));
}
