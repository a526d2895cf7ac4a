//! Tamper detection on PostgreSQL: an audit trail written through
//! the framework, then the `events` table changed behind the store's back
//! with plain SQL — one event's data modified, one event deleted, two
//! events' data swapped — and the hash chain naming the first bad event.
//!
//! Each test uses its own schema. With no server answering the tests print a
//! loud SKIPPED message and pass, unless `STRATA_REQUIRE_PG=1`.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use strata::{CommandMeta, Direction, EventStore, RecordedEvent, Repository, StreamId};
use strata_postgres::PostgresStore;
use strata_scenarios::audit::{
    verify_all_audit_chains, verify_audit_chain, AuditCommand, AuditLog, TamperKind, TamperReport,
    VerifyError,
};

use common::{pg_available, raw_client, SchemaGuard};

const RECORDS: usize = 24;

fn action(i: usize) -> AuditCommand {
    AuditCommand::UserAction {
        user_id: format!("user-{:03}", i % 5),
        action: "share".into(),
        resource: format!("doc-{i:03}"),
        timestamp: Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap() + Duration::seconds(i as i64),
    }
}

fn svc() -> StreamId {
    Repository::<AuditLog, PostgresStore>::stream_id("svc").unwrap()
}

/// Writes audit log `svc` (two batches and single records) and `other`,
/// closes the store and returns `svc`'s events.
async fn write_trail(schema: &SchemaGuard) -> Vec<RecordedEvent> {
    let store = Arc::new(PostgresStore::connect_with(schema.config()).await.unwrap());
    let repo = Repository::<AuditLog, _>::new(Arc::clone(&store));
    for chunk in 0..2 {
        let records = (0..RECORDS / 3).map(|i| action(chunk * 8 + i)).collect();
        repo.execute("svc", AuditCommand::Batch { records }, CommandMeta::new())
            .await
            .unwrap();
    }
    for i in 2 * RECORDS / 3..RECORDS {
        repo.execute("svc", action(i), CommandMeta::new())
            .await
            .unwrap();
    }
    for i in 0..3 {
        repo.execute("other", action(i), CommandMeta::new())
            .await
            .unwrap();
    }
    let events = store
        .read_stream(&svc(), 1, 100, Direction::Forward)
        .await
        .unwrap();
    assert_eq!(events.len(), RECORDS);
    verify_audit_chain(&*store, &svc()).await.unwrap();
    drop(repo);
    let Ok(store) = Arc::try_unwrap(store) else {
        panic!("the store is still shared");
    };
    store.close().await.unwrap();
    events
}

/// Reconnects (nothing cached from before the tampering) and verifies `svc`.
async fn tamper_report(schema: &SchemaGuard) -> TamperReport {
    let store = PostgresStore::connect_with(schema.config()).await.unwrap();
    let err = verify_audit_chain(&store, &svc()).await.unwrap_err();
    let all = verify_all_audit_chains(&store).await.unwrap();
    store.close().await.unwrap();
    let VerifyError::Tampered(report) = err else {
        panic!("expected tampering, got {err}");
    };
    // The whole-store check names the same chain and event; `other` is intact.
    assert_eq!(all.chains.len(), 2);
    let (stream, first) = all.first_tampered().unwrap();
    assert_eq!((stream, first), (&svc(), &report));
    assert_eq!(all.intact_events(), 3);
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_modified_with_sql_is_named() {
    if !pg_available("an_event_modified_with_sql_is_named") {
        return;
    }
    let schema = SchemaGuard::new("audit_mod");
    let events = write_trail(&schema).await;
    let victim = &events[10];
    let forged = String::from_utf8(victim.data.to_vec())
        .unwrap()
        .replace(r#""resource":"doc-"#, r#""resource":"doc-9"#);
    assert_ne!(forged.as_bytes(), victim.data.as_ref());
    let client = raw_client().await;
    let changed = client
        .execute(
            &format!(
                "UPDATE \"{}\".events SET data = $1 WHERE position = $2",
                schema.0
            ),
            &[&forged.as_bytes(), &(victim.position.0 as i64)],
        )
        .await
        .unwrap();
    assert_eq!(changed, 1);

    let report = tamper_report(&schema).await;
    assert_eq!((report.index, report.version), (11, victim.version));
    assert_eq!(report.event_id, Some(victim.id));
    assert!(
        matches!(report.kind, TamperKind::HashMismatch { .. }),
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_deleted_with_sql_is_named() {
    if !pg_available("an_event_deleted_with_sql_is_named") {
        return;
    }
    let schema = SchemaGuard::new("audit_del");
    let events = write_trail(&schema).await;
    let removed = &events[5];
    let client = raw_client().await;
    let changed = client
        .execute(
            &format!("DELETE FROM \"{}\".events WHERE position = $1", schema.0),
            &[&(removed.position.0 as i64)],
        )
        .await
        .unwrap();
    assert_eq!(changed, 1);

    // The event after the gap is where the sequence breaks.
    let report = tamper_report(&schema).await;
    assert_eq!(report.event_id, Some(events[6].id));
    assert_eq!(report.version, events[6].version);
    assert!(
        matches!(
            report.kind,
            TamperKind::OutOfSequence {
                expected: 6,
                found: 7
            }
        ),
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_reordered_with_sql_are_named() {
    if !pg_available("events_reordered_with_sql_are_named") {
        return;
    }
    let schema = SchemaGuard::new("audit_swap");
    let events = write_trail(&schema).await;
    let (a, b) = (&events[18], &events[19]);
    let client = raw_client().await;
    let sql = format!(
        "UPDATE \"{s}\".events SET data = CASE position WHEN $1 THEN $3::bytea ELSE $4::bytea END \
         WHERE position IN ($1, $2)",
        s = schema.0
    );
    let changed = client
        .execute(
            &sql,
            &[
                &(a.position.0 as i64),
                &(b.position.0 as i64),
                &b.data.as_ref(),
                &a.data.as_ref(),
            ],
        )
        .await
        .unwrap();
    assert_eq!(changed, 2);

    let report = tamper_report(&schema).await;
    assert_eq!(report.event_id, Some(a.id));
    assert_eq!(report.version, a.version);
    assert!(
        matches!(
            report.kind,
            TamperKind::OutOfSequence {
                expected: 19,
                found: 20
            }
        ),
        "{report}"
    );
}
