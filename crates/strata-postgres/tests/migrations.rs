//! Migrations: versioned, idempotent, safe to run concurrently, and the
//! layout chosen when the schema is created wins.

// Tests assert by panicking.
#![allow(clippy::unwrap_used)]

mod common;

use common::{pg_available, raw_client, SchemaGuard};
use strata_core::{Direction, EventStore, ExpectedVersion, NewEvent, StreamId, StreamMetadata};
use strata_postgres::{migrate, EventsLayout, PgError, PostgresStore, CURRENT_SCHEMA_VERSION};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn migrate_is_idempotent_and_concurrent_safe() {
    if !pg_available("migrate_is_idempotent_and_concurrent_safe") {
        return;
    }
    let schema = SchemaGuard::new("mig");
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let config = schema.config();
        tasks.push(tokio::spawn(async move { migrate(&config).await }));
    }
    let mut applied = 0;
    for t in tasks {
        let report = t.await.unwrap().unwrap();
        assert_eq!(report.version, CURRENT_SCHEMA_VERSION);
        applied += report.applied.len();
    }
    assert_eq!(
        applied, CURRENT_SCHEMA_VERSION as usize,
        "each migration ran once"
    );
    let again = migrate(&schema.config()).await.unwrap();
    assert!(again.applied.is_empty());

    // The recorded layout wins over a later configuration.
    let store = PostgresStore::connect_with(schema.config().layout(EventsLayout::Partitioned {
        positions_per_partition: 10,
    }))
    .await
    .unwrap();
    assert_eq!(store.layout(), EventsLayout::Plain);
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn connecting_without_auto_migrate_needs_a_migrated_schema() {
    if !pg_available("connecting_without_auto_migrate_needs_a_migrated_schema") {
        return;
    }
    let schema = SchemaGuard::new("mig2");
    let err = PostgresStore::connect_with(schema.config().auto_migrate(false))
        .await
        .unwrap_err();
    assert!(matches!(err, PgError::Schema { .. }), "{err}");
    migrate(&schema.config()).await.unwrap();
    let store = PostgresStore::connect_with(schema.config().auto_migrate(false))
        .await
        .unwrap();
    store.close().await.unwrap();
}

#[tokio::test]
async fn bad_schema_names_are_refused() {
    let err = PostgresStore::connect("postgres://postgres@127.0.0.1:5432/test", "x\"; DROP")
        .await
        .unwrap_err();
    assert!(matches!(err, PgError::Config(_)), "{err}");
}

/// Migration 3 records the settings of metadata streams a schema already
/// holds (stream metadata was kept as `$metadata` events before the
/// `stream_metadata` table existed), so retention governs them at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn migration_3_records_existing_stream_metadata() {
    if !pg_available("migration_3_records_existing_stream_metadata") {
        return;
    }
    let schema = SchemaGuard::new("mig3");
    let store = PostgresStore::connect_with(schema.config()).await.unwrap();
    let s = StreamId::new("account-1").unwrap();
    store
        .append(
            &s,
            ExpectedVersion::NoStream,
            (0..5).map(|_| NewEvent::json_bytes("E", "{}")).collect(),
        )
        .await
        .unwrap();
    let settings = StreamMetadata {
        max_count: Some(2),
        ..Default::default()
    };
    store
        .set_stream_metadata(&s, ExpectedVersion::NoStream, &settings)
        .await
        .unwrap();
    store.close().await.unwrap();

    // Take the schema back to version 2: its metadata stream stays, the
    // table and view of migration 3 go (and the ledger rows of 3 and later;
    // the objects of migrations 4 to 6 are made with IF NOT EXISTS).
    let client = raw_client().await;
    client
        .batch_execute(&format!(
            "DROP VIEW \"{0}\".stream_retention; DROP TABLE \"{0}\".stream_metadata; \
             DELETE FROM \"{0}\".schema_migrations WHERE version >= 3",
            schema.0
        ))
        .await
        .unwrap();
    let report = migrate(&schema.config()).await.unwrap();
    assert_eq!(
        report.applied,
        vec![
            (3, "0003_stream_metadata.sql"),
            (4, "0004_groups.sql"),
            (5, "0005_event_tags.sql"),
            (6, "0006_stream_names.sql")
        ]
    );
    assert!(migrate(&schema.config()).await.unwrap().applied.is_empty());

    let store = PostgresStore::connect_with(schema.config()).await.unwrap();
    let read = store
        .read_stream(&s, 1, 10, Direction::Forward)
        .await
        .unwrap();
    assert_eq!(read.iter().map(|e| e.version).collect::<Vec<_>>(), [4, 5]);
    let got = store.stream_metadata(&s).await.unwrap().unwrap();
    assert_eq!((got.version, got.metadata), (1, settings));
    store.close().await.unwrap();
}
