//! Migrations: versioned, idempotent, safe to run concurrently, and the
//! layout chosen when the schema is created wins.

// Tests assert by panicking.
#![allow(clippy::unwrap_used)]

mod common;

use common::{pg_available, SchemaGuard};
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
