//! The global order: no subscriber or `read_all` reader ever skips an event
//! that commits later with a lower position (docs/adr/0005-postgres-global-order.md).
//!
//! - `no_subscriber_skips_under_16_concurrent_writers`: 16 stores (as 16
//!   processes would be), each with its own writer connection, append
//!   `STRATA_PG_NOSKIP_EVENTS` events (default 100,000) while a subscriber on
//!   a 17th store follows from the start; it must see every event exactly
//!   once, in position order.
//! - The naive design (plain sequence, no lock held to commit) is caught:
//!   `naive_ordering_lets_a_subscriber_skip_an_event` shows the skip
//!   deterministically, and `naive_ordering_skips_under_concurrent_writers`
//!   shows the stress test above failing against it.
//!   `serialized_ordering_holds_later_commits_back` runs the same
//!   interleaving against the real design.

// Tests assert by panicking.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{database_url, pg_available, raw_client, SchemaGuard};
use rand::{Rng, SeedableRng};
use strata_core::{
    EventId, EventStore, ExpectedVersion, NewEvent, Position, ReadFilter, StreamId, SubscribeFrom,
    SubscriptionMessage,
};
use strata_postgres::{PgConfig, PostgresStore};

/// Writers (stores, each with its own connections and writer task).
const WRITERS: usize = 16;
/// Concurrent appenders per writer.
const TASKS_PER_WRITER: usize = 8;
/// Largest append in the stress test.
const MAX_APPEND_EVENTS: usize = 16;
/// Events unless `STRATA_PG_NOSKIP_EVENTS` says otherwise.
const DEFAULT_NOSKIP_EVENTS: usize = 100_000;
/// Events of the stress test against the naive design.
const NAIVE_STRESS_EVENTS: usize = 20_000;
/// The longest the stress test may take.
const STRESS_TIMEOUT: Duration = Duration::from_secs(240);
/// How long a subscriber must stay silent to count as having nothing more.
const QUIET: Duration = Duration::from_millis(1_500);

fn noskip_events() -> usize {
    std::env::var("STRATA_PG_NOSKIP_EVENTS")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(DEFAULT_NOSKIP_EVENTS)
}

fn config(schema: &str, naive: bool) -> PgConfig {
    let c = PgConfig::new(database_url())
        .schema(schema)
        .pool_size(2)
        .head_poll_interval(Duration::from_millis(200));
    if naive {
        c.danger_naive_ordering()
    } else {
        c
    }
}

/// What the subscriber saw.
struct Followed {
    received: usize,
    /// Events that arrived with a position not above the previous one.
    out_of_order: usize,
    duplicates: usize,
    /// Events recorded but never delivered.
    missing: usize,
    elapsed: Duration,
}

/// Runs the 16-writer stress test with `total` events; returns what the
/// subscriber saw once the writers are done and it has gone quiet.
async fn stress(schema: &str, total: usize, naive: bool) -> Followed {
    let reader = PostgresStore::connect_with(config(schema, naive))
        .await
        .expect("open the subscriber's store");
    let mut writers = Vec::new();
    for _ in 0..WRITERS {
        writers.push(
            PostgresStore::connect_with(config(schema, naive))
                .await
                .expect("open a writer store"),
        );
    }
    let mut sub = reader
        .subscribe(SubscribeFrom::Start, ReadFilter::all())
        .await
        .expect("subscribe");
    let started = Instant::now();

    // The subscriber runs alongside the writers from the first event on.
    let writers_done = Arc::new(AtomicBool::new(false));
    let done = writers_done.clone();
    let follower = tokio::spawn(async move {
        let mut seen = HashSet::new();
        let mut ids = Vec::new();
        let mut last = Position::START;
        let mut out_of_order = 0;
        let mut duplicates = 0;
        loop {
            let next = tokio::time::timeout(QUIET, sub.next()).await;
            match next {
                Ok(Some(Ok(SubscriptionMessage::Event(e)))) => {
                    if e.position <= last {
                        out_of_order += 1;
                    }
                    last = last.max(e.position);
                    if !seen.insert(e.id) {
                        duplicates += 1;
                    }
                    ids.push(e.id);
                }
                Ok(Some(Ok(SubscriptionMessage::CaughtUp(_)))) => {}
                Ok(Some(Err(e))) => eprintln!("subscription error (retrying): {e}"),
                Ok(None) => break,
                Err(_) => {
                    // Quiet after the writers finished: nothing more will come.
                    if done.load(AtomicOrdering::SeqCst) || started.elapsed() > STRESS_TIMEOUT {
                        break;
                    }
                }
            }
        }
        (seen, out_of_order, duplicates)
    });

    let per_task = total / (WRITERS * TASKS_PER_WRITER);
    let extra = total - per_task * WRITERS * TASKS_PER_WRITER;
    let mut tasks = Vec::new();
    for (w, store) in writers.iter().enumerate() {
        for t in 0..TASKS_PER_WRITER {
            let store = store.clone();
            let mut n = per_task;
            if w == 0 && t == 0 {
                n += extra;
            }
            tasks.push(tokio::spawn(async move {
                let stream = StreamId::new(format!("w{w}-{t}")).unwrap();
                let mut rng = rand::rngs::StdRng::from_entropy();
                let mut written = Vec::with_capacity(n);
                while written.len() < n {
                    let k = rng.gen_range(1..=MAX_APPEND_EVENTS).min(n - written.len());
                    let events: Vec<NewEvent> = (0..k)
                        .map(|i| {
                            NewEvent::json_bytes("Written", format!("{{\"i\":{i}}}"))
                                .with_id(EventId::new())
                        })
                        .collect();
                    let ids: Vec<EventId> = events.iter().filter_map(|e| e.id).collect();
                    store
                        .append(&stream, ExpectedVersion::Any, events)
                        .await
                        .expect("append");
                    written.extend(ids);
                }
                written
            }));
        }
    }
    let mut appended = HashSet::new();
    for t in tasks {
        appended.extend(t.await.expect("writer task"));
    }
    let write_time = started.elapsed();
    writers_done.store(true, AtomicOrdering::SeqCst);
    let (seen, out_of_order, duplicates) = follower.await.expect("follower");
    let missing = appended.difference(&seen).count();
    eprintln!(
        "stress ({}): {total} events by {WRITERS} writers x {TASKS_PER_WRITER} tasks written in {:.1}s \
         ({:.0} events/s); subscriber received {} (out of order {out_of_order}, duplicates {duplicates}, \
         missing {missing})",
        if naive { "NAIVE" } else { "serialized" },
        write_time.as_secs_f64(),
        total as f64 / write_time.as_secs_f64(),
        seen.len(),
    );
    for w in writers {
        w.close().await.expect("close writer");
    }
    reader.close().await.expect("close reader");
    Followed {
        received: seen.len() + duplicates,
        out_of_order,
        duplicates,
        missing,
        elapsed: started.elapsed(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_subscriber_skips_under_16_concurrent_writers() {
    if !pg_available("no_subscriber_skips_under_16_concurrent_writers") {
        return;
    }
    let schema = SchemaGuard::new("order");
    let total = noskip_events();
    let f = stress(&schema.0, total, false).await;
    assert_eq!(f.missing, 0, "the subscriber skipped {} events", f.missing);
    assert_eq!(f.duplicates, 0, "the subscriber saw duplicates");
    assert_eq!(
        f.out_of_order, 0,
        "the subscriber saw positions out of order"
    );
    assert_eq!(f.received, total);
    eprintln!(
        "no-skip test: {total} events in {:.1}s",
        f.elapsed.as_secs_f64()
    );

    // A plain reader of $all agrees: contiguous positions, everything once.
    let store = PostgresStore::connect_with(config(&schema.0, false))
        .await
        .unwrap();
    let mut from = Position::START;
    let mut count = 0u64;
    loop {
        let page = store
            .read_all(from, 10_000, &ReadFilter::all())
            .await
            .unwrap();
        for e in &page {
            count += 1;
            assert_eq!(e.position, Position(count), "positions are contiguous");
        }
        match page.last() {
            Some(last) => from = last.position.next(),
            None => break,
        }
    }
    assert_eq!(count, total as u64);
    assert_eq!(store.head_position().await.unwrap(), Position(total as u64));
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn naive_ordering_skips_under_concurrent_writers() {
    if !pg_available("naive_ordering_skips_under_concurrent_writers") {
        return;
    }
    let schema = SchemaGuard::new("naive");
    let f = stress(&schema.0, NAIVE_STRESS_EVENTS, true).await;
    assert!(
        f.missing > 0 || f.out_of_order > 0,
        "the naive design was expected to make the subscriber skip events; it did not this time"
    );
}

/// An event row for raw inserts.
fn insert_event_sql(schema: &str, with_position: bool) -> String {
    if with_position {
        format!(
            "INSERT INTO \"{schema}\".events (position, event_id, stream_id, version, event_type, \
             content_type, data, recorded_at) VALUES ($1, $2, 'slow-1', 1, 'Slow', 0, '\\x7b7d', now())"
        )
    } else {
        format!(
            "INSERT INTO \"{schema}\".events (event_id, stream_id, version, event_type, \
             content_type, data, recorded_at) VALUES ($1, 'slow-1', 1, 'Slow', 0, '\\x7b7d', now()) \
             RETURNING position"
        )
    }
}

/// Receives events until `want` arrives or `wait` passes; returns the ids seen.
async fn receive_until(
    sub: &mut strata_core::Subscription,
    want: Option<EventId>,
    wait: Duration,
) -> Vec<(EventId, Position)> {
    let mut got = Vec::new();
    let deadline = Instant::now() + wait;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match tokio::time::timeout(left, sub.next()).await {
            Ok(Some(Ok(SubscriptionMessage::Event(e)))) => {
                got.push((e.id, e.position));
                if Some(e.id) == want {
                    break;
                }
            }
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(e))) => panic!("subscription failed: {e}"),
            Ok(None) | Err(_) => break,
        }
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn naive_ordering_lets_a_subscriber_skip_an_event() {
    if !pg_available("naive_ordering_lets_a_subscriber_skip_an_event") {
        return;
    }
    let schema = SchemaGuard::new("naive1");
    let store = PostgresStore::connect_with(config(&schema.0, true))
        .await
        .unwrap();
    let mut sub = store
        .subscribe(SubscribeFrom::Start, ReadFilter::all())
        .await
        .unwrap();

    // Another writer (another process) takes a position from the sequence
    // and has not committed yet — exactly what the naive append does.
    let mut raw = raw_client().await;
    let tx = raw.transaction().await.unwrap();
    let slow = EventId::new();
    let row = tx
        .query_one(&insert_event_sql(&schema.0, false), &[&slow.0])
        .await
        .unwrap();
    let slow_position: i64 = row.get(0);

    // Meanwhile this store appends and commits: a higher position.
    let fast = EventId::new();
    let r = store
        .append(
            &StreamId::new("fast-1").unwrap(),
            ExpectedVersion::Any,
            vec![NewEvent::json_bytes("Fast", "{}").with_id(fast)],
        )
        .await
        .unwrap();
    assert!(r.first_position.0 > slow_position as u64);
    let got = receive_until(&mut sub, Some(fast), Duration::from_secs(10)).await;
    assert_eq!(got.last().map(|g| g.0), Some(fast));

    // The slow writer commits its lower position afterwards.
    tx.commit().await.unwrap();
    let later = receive_until(&mut sub, None, QUIET).await;
    let all = store
        .read_all(Position::START, 100, &ReadFilter::all())
        .await
        .unwrap();
    assert!(
        all.iter()
            .any(|e| e.id == slow && e.position.0 == slow_position as u64),
        "the slow event is recorded, below the fast one"
    );
    assert!(
        !later.iter().any(|(id, _)| *id == slow) && !got.iter().any(|(id, _)| *id == slow),
        "with the naive design the subscriber never sees the slow event: it was skipped"
    );
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serialized_ordering_holds_later_commits_back() {
    if !pg_available("serialized_ordering_holds_later_commits_back") {
        return;
    }
    let schema = SchemaGuard::new("serial1");
    let store = PostgresStore::connect_with(config(&schema.0, false))
        .await
        .unwrap();
    let mut sub = store
        .subscribe(SubscribeFrom::Start, ReadFilter::all())
        .await
        .unwrap();

    // Another writer takes the next position the way every append does —
    // under the global_position row lock — and has not committed yet.
    let mut raw = raw_client().await;
    let tx = raw.transaction().await.unwrap();
    let row = tx
        .query_one(
            &format!(
                "UPDATE \"{}\".global_position SET last_position = last_position + 1 \
                 RETURNING last_position",
                schema.0
            ),
            &[],
        )
        .await
        .unwrap();
    let slow_position: i64 = row.get(0);
    let slow = EventId::new();
    tx.execute(
        &format!(
            "INSERT INTO \"{}\".streams (stream_id, version, last_position) VALUES ('slow-1', 1, $1)",
            schema.0
        ),
        &[&slow_position],
    )
    .await
    .unwrap();
    tx.execute(
        &insert_event_sql(&schema.0, true),
        &[&slow_position, &slow.0],
    )
    .await
    .unwrap();

    // This store's append must wait for it: it cannot take a higher
    // position while the lower one is uncommitted.
    let fast = EventId::new();
    let appender = {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .append(
                    &StreamId::new("fast-1").unwrap(),
                    ExpectedVersion::Any,
                    vec![NewEvent::json_bytes("Fast", "{}").with_id(fast)],
                )
                .await
        })
    };
    let early = receive_until(&mut sub, None, Duration::from_millis(700)).await;
    assert!(
        early.is_empty(),
        "nothing is visible before the slow commit"
    );
    assert!(
        !appender.is_finished(),
        "the later append waits for the position lock"
    );

    tx.commit().await.unwrap();
    let r = appender.await.unwrap().unwrap();
    assert!(r.first_position.0 > slow_position as u64);
    let got = receive_until(&mut sub, Some(fast), Duration::from_secs(10)).await;
    assert_eq!(
        got.iter().map(|g| g.0).collect::<Vec<_>>(),
        vec![slow, fast],
        "the subscriber sees both, in position order"
    );
    store.close().await.unwrap();
}
