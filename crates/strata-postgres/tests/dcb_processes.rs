//! Conditional appends across processes: several stores on one schema
//! (each its own writer and connections, as separate processes would be)
//! race to book the seats of one boundary, and plain appends of the same
//! boundary race them from another store. The check and the write are one
//! step with respect to every other append (docs/postgres.md, "Tags, query
//! reads and conditional appends"), so the boundary never holds more
//! bookings than seats, whoever wrote them.

// Tests assert by panicking.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::{pg_available, SchemaGuard};
use strata_core::dcb::{AppendCondition, Query, QueryItem, Tag};
use strata_core::{Error, EventStore, ExpectedVersion, NewEvent, Position, StreamAppend, StreamId};
use strata_postgres::PostgresStore;

const STORES: usize = 4;
const WRITERS_PER_STORE: usize = 4;
const SEATS: usize = 12;
/// The most decisions one writer makes before the test calls it stuck.
const MAX_TRIES_PER_WRITER: usize = 1_000;

/// What one booking decision came to.
#[derive(PartialEq)]
enum Booking {
    Booked,
    /// Another booking came after the read: decide again.
    Conflict,
    /// Every seat is taken.
    Full,
}

fn seat_query() -> Query {
    Query::new(vec![QueryItem::new(
        ["Booked"],
        [Tag::new("show:s1").unwrap()],
    )])
    .unwrap()
}

fn booking(writer: usize, attempt: usize) -> NewEvent {
    NewEvent::json_bytes("Booked", format!("{{\"w\": {writer}, \"a\": {attempt}}}")).with_tags([
        Tag::new("show:s1").unwrap(),
        Tag::new(format!("w:{writer}")).unwrap(),
    ])
}

/// Reads the boundary, and books a seat if one is left, on condition that
/// no booking came after the last one read.
async fn try_book(store: &PostgresStore, writer: usize, attempt: usize) -> Booking {
    let query = seat_query();
    let mut seen = Vec::new();
    let mut after = Position::START;
    loop {
        let page = store.read_query(&query, after, 100).await.unwrap();
        let Some(last) = page.last() else { break };
        after = last.position;
        seen.extend(page);
    }
    if seen.len() >= SEATS {
        return Booking::Full;
    }
    let last = seen.last().map(|e| e.position);
    let stream = StreamId::new(format!("booking-{writer}")).unwrap();
    let part = StreamAppend::new(stream, ExpectedVersion::Any, vec![booking(writer, attempt)]);
    match store
        .append_if(vec![part], &AppendCondition::new(query, last))
        .await
    {
        Ok(_) => Booking::Booked,
        Err(Error::ConditionFailed { .. }) => Booking::Conflict,
        Err(e) => panic!("append_if failed: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stores_on_one_schema_never_overbook() {
    if !pg_available("stores_on_one_schema_never_overbook") {
        return;
    }
    let schema = SchemaGuard::new("dcbp");
    let mut stores = Vec::new();
    for _ in 0..STORES {
        stores.push(PostgresStore::connect_with(schema.config()).await.unwrap());
    }
    let booked = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for (s, store) in stores.iter().enumerate() {
        for w in 0..WRITERS_PER_STORE {
            let store = store.clone();
            let booked = booked.clone();
            let writer = s * WRITERS_PER_STORE + w;
            tasks.push(tokio::spawn(async move {
                // Decide until the show is full: a conflict is decided again.
                for attempt in 0..MAX_TRIES_PER_WRITER {
                    match try_book(&store, writer, attempt).await {
                        Booking::Full => return,
                        Booking::Booked => {
                            booked.fetch_add(1, Ordering::Relaxed);
                        }
                        Booking::Conflict => {}
                    }
                }
                panic!("writer {writer} made {MAX_TRIES_PER_WRITER} decisions and the show never filled");
            }));
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    let bookings = stores[0]
        .read_query(&seat_query(), Position::START, 1_000)
        .await
        .unwrap();
    assert_eq!(booked.load(Ordering::Relaxed), SEATS);
    assert_eq!(bookings.len(), SEATS);
    for store in stores {
        store.close().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_plain_append_from_another_store_fails_a_racing_condition() {
    if !pg_available("a_plain_append_from_another_store_fails_a_racing_condition") {
        return;
    }
    let schema = SchemaGuard::new("dcbp");
    let checker = PostgresStore::connect_with(schema.config()).await.unwrap();
    let plain = PostgresStore::connect_with(schema.config()).await.unwrap();
    // Each round: the plain store appends one booking while the checker,
    // having read the boundary before it, books on condition. Either the
    // plain booking committed first and the condition fails, or the
    // conditional one is in before it; never both unnoticed.
    for round in 0..20 {
        let query = seat_query();
        let before = checker
            .read_query(&query, Position::START, 1_000)
            .await
            .unwrap();
        let last = before.last().map(|e| e.position);
        let stream = StreamId::new(format!("cond-{round}")).unwrap();
        let part = StreamAppend::new(stream, ExpectedVersion::Any, vec![booking(1, round)]);
        let plain_stream = StreamId::new(format!("plain-{round}")).unwrap();
        let condition = AppendCondition::new(query, last);
        let (conditional, written) = tokio::join!(
            checker.append_if(vec![part], &condition),
            plain.append(&plain_stream, ExpectedVersion::Any, vec![booking(2, round)]),
        );
        let written = written.unwrap();
        match conditional {
            Ok(results) => assert!(
                results[0].first_position < written.first_position,
                "round {round}: the condition passed though a matching event committed before it"
            ),
            Err(Error::ConditionFailed { position }) => {
                assert_eq!(position, written.first_position, "round {round}")
            }
            Err(e) => panic!("round {round}: {e}"),
        }
    }
    checker.close().await.unwrap();
    plain.close().await.unwrap();
}
