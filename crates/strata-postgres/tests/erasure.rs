//! Erasure on PostgreSQL is immediate: when `erase_stream` returns, no row
//! of the schema holds the stream's data — its events (and their ids), its
//! metadata stream's events and settings row, its snapshots — and a unique
//! marker written into all of them is found in no table, partitions
//! included. Other streams' rows are untouched. In both events layouts.

// Tests assert by panicking.
#![allow(clippy::unwrap_used)]

mod common;

use bytes::Bytes;
use chrono::Utc;
use common::{pg_available, raw_client, SchemaGuard};
use strata_core::dcb::Tag;
use strata_core::{
    EventStore, ExpectedVersion, Metadata, NewEvent, Snapshot, SnapshotStore, StreamId,
    StreamMetadata, StreamState,
};
use strata_postgres::{EventsLayout, PostgresStore};

const MARKER: &str = "ERASE-ME-3b9f41";
const KEPT: &str = "KEEP-ME-77d0";

fn event(i: usize, marker: &str) -> NewEvent {
    NewEvent::json(
        "Noted",
        &serde_json::json!({ "i": i, "note": format!("{marker}-{i}") }),
    )
    .unwrap()
    .with_metadata(Metadata::default().with_user_id(format!("{marker}-user")))
    .with_tags([
        Tag::new(format!("owner:{marker}")).unwrap(),
        Tag::new("kind:note").unwrap(),
    ])
}

/// Rows of `event_tags` in `schema` with tag `tag`.
async fn tag_rows(client: &tokio_postgres::Client, schema: &str, tag: &str) -> i64 {
    client
        .query_one(
            &format!("SELECT count(*) FROM \"{schema}\".event_tags WHERE tag = $1"),
            &[&tag],
        )
        .await
        .unwrap()
        .get(0)
}

fn snapshot(stream: &StreamId, version: u64, marker: &str) -> Snapshot {
    Snapshot {
        stream: stream.clone(),
        aggregate_type: "person".into(),
        version,
        schema_version: 1,
        state: Bytes::from(format!("{{\"name\":\"{marker}\"}}")),
        taken_at: Utc::now(),
    }
}

/// How many rows of every table of `schema` (partitions included) hold
/// `needle`, as text or as the hex of bytes, by table.
async fn tables_holding(
    client: &tokio_postgres::Client,
    schema: &str,
    needle: &str,
) -> Vec<String> {
    let tables = client
        .query(
            "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relkind = 'r'",
            &[&schema],
        )
        .await
        .unwrap();
    let hex: String = needle.bytes().map(|b| format!("{b:02x}")).collect();
    let mut out = Vec::new();
    for row in tables {
        let table: String = row.get(0);
        let n: i64 = client
            .query_one(
                &format!(
                    "SELECT count(*) FROM \"{schema}\".\"{table}\" t \
                     WHERE t::text LIKE '%' || $1 || '%' OR t::text LIKE '%' || $2 || '%'"
                ),
                &[&needle, &hex],
            )
            .await
            .unwrap()
            .get(0);
        if n > 0 {
            out.push(format!("{table}: {n}"));
        }
    }
    out
}

/// Rows of `table` in `schema` whose `stream_id` is one of `streams`.
async fn rows_of(
    client: &tokio_postgres::Client,
    schema: &str,
    table: &str,
    streams: &[&str],
) -> i64 {
    client
        .query_one(
            &format!("SELECT count(*) FROM \"{schema}\".{table} WHERE stream_id = ANY($1)"),
            &[&streams],
        )
        .await
        .unwrap()
        .get(0)
}

async fn erase_removes_every_row(layout: EventsLayout, name: &str) {
    if !pg_available(name) {
        return;
    }
    let schema = SchemaGuard::new("erase");
    let store = PostgresStore::connect_with(schema.config().layout(layout))
        .await
        .unwrap();
    let person = StreamId::new("person-7").unwrap();
    let other = StreamId::new("other-1").unwrap();
    for i in 0..60 {
        let (s, marker) = if i % 3 == 0 {
            (&person, MARKER)
        } else {
            (&other, KEPT)
        };
        store
            .append(s, ExpectedVersion::Any, vec![event(i, marker)])
            .await
            .unwrap();
    }
    let settings = StreamMetadata {
        max_count: Some(100),
        custom: Some(serde_json::json!({ "owner": MARKER })),
        ..Default::default()
    };
    for expected in [ExpectedVersion::NoStream, ExpectedVersion::Exact(1)] {
        store
            .set_stream_metadata(&person, expected, &settings)
            .await
            .unwrap();
    }
    store
        .snapshots()
        .save(snapshot(&person, 20, MARKER))
        .await
        .unwrap();
    store
        .snapshots()
        .save(snapshot(&other, 40, KEPT))
        .await
        .unwrap();
    let client = raw_client().await;
    let s = &schema.0;
    let both = [person.as_str(), "$$person-7"];
    assert_eq!(rows_of(&client, s, "events", &both).await, 22);
    assert!(!tables_holding(&client, s, MARKER).await.is_empty());
    let erased_tag = format!("owner:{MARKER}");
    assert_eq!(tag_rows(&client, s, &erased_tag).await, 20);
    assert_eq!(tag_rows(&client, s, "kind:note").await, 60);
    let head = store.head_position().await.unwrap();

    store
        .erase_stream(&person, ExpectedVersion::Exact(20))
        .await
        .unwrap();

    assert_eq!(rows_of(&client, s, "events", &both).await, 0);
    assert_eq!(rows_of(&client, s, "stream_metadata", &both).await, 0);
    assert_eq!(rows_of(&client, s, "snapshots", &both).await, 0);
    if matches!(layout, EventsLayout::Partitioned { .. }) {
        assert_eq!(rows_of(&client, s, "event_ids", &both).await, 0);
    }
    assert_eq!(
        tables_holding(&client, s, MARKER).await,
        Vec::<String>::new(),
        "rows still holding the erased stream's data"
    );
    // Both names stay, tombstoned; everything else is where it was.
    let rows = client
        .query(
            &format!(
                "SELECT stream_id, tombstoned FROM \"{s}\".streams \
                 WHERE stream_id = ANY($1) ORDER BY stream_id"
            ),
            &[&both.to_vec()],
        )
        .await
        .unwrap();
    let tombstoned: Vec<(String, bool)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(
        tombstoned,
        vec![("$$person-7".into(), true), ("person-7".into(), true)]
    );
    assert_eq!(rows_of(&client, s, "events", &[other.as_str()]).await, 40);
    // The erased events' tag rows went with them; the others' stay.
    assert_eq!(tag_rows(&client, s, &erased_tag).await, 0);
    assert_eq!(tag_rows(&client, s, "kind:note").await, 40);
    let kept_tag = format!("owner:{KEPT}");
    assert_eq!(tag_rows(&client, s, &kept_tag).await, 40);
    assert!(!tables_holding(&client, s, KEPT).await.is_empty());
    assert!(store
        .snapshots()
        .load(&other, u64::MAX)
        .await
        .unwrap()
        .is_some());
    assert_eq!(store.head_position().await.unwrap(), head);
    let info = store.stream_info(&person).await.unwrap().unwrap();
    assert_eq!(
        (info.state, info.version, info.first_readable_version),
        (StreamState::Tombstoned, 20, 21)
    );
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erase_removes_every_row_of_the_stream_at_once() {
    erase_removes_every_row(
        EventsLayout::Plain,
        "erase_removes_every_row_of_the_stream_at_once",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erase_removes_every_row_of_the_stream_at_once_partitioned() {
    erase_removes_every_row(
        EventsLayout::Partitioned {
            positions_per_partition: 16,
        },
        "erase_removes_every_row_of_the_stream_at_once_partitioned",
    )
    .await;
}
