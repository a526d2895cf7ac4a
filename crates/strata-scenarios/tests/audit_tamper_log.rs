//! Tamper detection on the log store: an audit trail written
//! through the framework, one stored event rewritten in place through the
//! log's test-only back door (`strata_log::testing`, checksums recomputed,
//! so the log's own checks pass), and the hash chain naming exactly that
//! event — or, when the forger also recomputed the event's own hash, the
//! next event, whose link no longer matches.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use strata::{CommandMeta, Direction, EventStore, RecordedEvent, Repository, StreamId};
use strata_log::io::FsStorage;
use strata_log::{testing, LogConfig, LogStore};
use strata_scenarios::audit::{
    verify_all_audit_chains, verify_audit_chain, AuditCommand, AuditEvent, AuditLog, TamperKind,
    VerifyError,
};

const RECORDS: usize = 30;

fn action(i: usize) -> AuditCommand {
    AuditCommand::UserAction {
        user_id: format!("user-{:03}", i % 7),
        action: "update".into(),
        resource: format!("doc-{:03}", i),
        timestamp: Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap() + Duration::seconds(i as i64),
    }
}

/// Writes two audit logs (`svc` in three batches, `other` one by one) to a
/// fresh log store in `dir`, closes it and returns `svc`'s events.
async fn write_trail(dir: &Path) -> Vec<RecordedEvent> {
    let store = Arc::new(LogStore::open(LogConfig::new(dir)).await.unwrap());
    let repo = Repository::<AuditLog, _>::new(Arc::clone(&store));
    for chunk in 0..3 {
        let records = (0..RECORDS / 3).map(|i| action(chunk * 10 + i)).collect();
        repo.execute("svc", AuditCommand::Batch { records }, CommandMeta::new())
            .await
            .unwrap();
    }
    for i in 0..5 {
        repo.execute("other", action(i), CommandMeta::new())
            .await
            .unwrap();
    }
    let stream = svc();
    let events = store
        .read_stream(&stream, 1, 100, Direction::Forward)
        .await
        .unwrap();
    assert_eq!(events.len(), RECORDS);
    verify_audit_chain(&*store, &stream).await.unwrap();
    drop(repo);
    let Ok(store) = Arc::try_unwrap(store) else {
        panic!("the store is still shared");
    };
    store.close().await.unwrap();
    events
}

fn svc() -> StreamId {
    Repository::<AuditLog, LogStore>::stream_id("svc").unwrap()
}

/// `data` with the resource's three digits replaced by `666`: same length.
fn forge_resource(data: &[u8]) -> Vec<u8> {
    let needle = b"\"resource\":\"doc-";
    let at = data
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("a resource field")
        + needle.len();
    let mut out = data.to_vec();
    out[at..at + 3].copy_from_slice(b"666");
    assert_ne!(out, data);
    out
}

fn assert_log_checks_pass(dir: &Path) {
    let report = strata_log::verify::verify(dir, &FsStorage).unwrap();
    assert!(
        report.is_clean(),
        "the back door left the log's own checksums broken: {:?}",
        report.problems
    );
}

#[tokio::test]
async fn an_event_modified_in_a_segment_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let events = write_trail(dir.path()).await;
    let victim = &events[16];

    let stored = testing::read_event_data(dir.path(), victim.position).unwrap();
    assert_eq!(stored, victim.data.to_vec());
    testing::overwrite_event_data(dir.path(), victim.position, &forge_resource(&stored)).unwrap();
    assert_log_checks_pass(dir.path());

    let store = LogStore::open(LogConfig::new(dir.path())).await.unwrap();
    let reread = store
        .read_stream(&svc(), victim.version, 1, Direction::Forward)
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&reread[0].data).contains("doc-666"));
    let err = verify_audit_chain(&store, &svc()).await.unwrap_err();
    let VerifyError::Tampered(report) = err else {
        panic!("expected tampering, got {err}");
    };
    assert_eq!(report.version, victim.version);
    assert_eq!(report.index, 17);
    assert_eq!(report.event_id, Some(victim.id));
    assert!(
        matches!(report.kind, TamperKind::HashMismatch { .. }),
        "{report}"
    );
    assert!(report.to_string().contains("was modified"), "{report}");

    // Over the whole store: the tampered chain is named, the other is intact.
    let all = verify_all_audit_chains(&store).await.unwrap();
    assert_eq!(all.chains.len(), 2);
    let (stream, first) = all.first_tampered().unwrap();
    assert_eq!(stream, &svc());
    assert_eq!(first, &report);
    assert_eq!(all.tampered().count(), 1);
    assert_eq!(all.intact_events(), 5);
    store.close().await.unwrap();
}

#[tokio::test]
async fn a_modified_event_with_a_recomputed_hash_breaks_the_next_link() {
    let dir = tempfile::tempdir().unwrap();
    let events = write_trail(dir.path()).await;
    let victim = &events[4];
    let next = &events[5];

    // The forger changes the resource and recomputes the event's own hash
    // (same length), but cannot fix the link stored in the next event
    // without rewriting the whole tail.
    let forged = forge_resource(&victim.data);
    let decoded: AuditEvent = strata::event::decode(&victim.event_type, &forged).unwrap();
    let old_hash = decoded.hash().to_owned();
    let new_hash = decoded.compute_hash();
    let forged = String::from_utf8(forged)
        .unwrap()
        .replace(&old_hash, &new_hash);
    testing::overwrite_event_data(dir.path(), victim.position, forged.as_bytes()).unwrap();
    assert_log_checks_pass(dir.path());

    let store = LogStore::open(LogConfig::new(dir.path())).await.unwrap();
    let err = verify_audit_chain(&store, &svc()).await.unwrap_err();
    let VerifyError::Tampered(report) = err else {
        panic!("expected tampering, got {err}");
    };
    assert_eq!(report.version, next.version);
    assert_eq!(report.event_id, Some(next.id));
    assert!(
        matches!(&report.kind, TamperKind::BrokenLink { found, expected }
            if found == &old_hash && expected == &new_hash),
        "{report}"
    );
    store.close().await.unwrap();
}

#[tokio::test]
async fn the_back_door_refuses_an_open_store_and_a_different_length() {
    let dir = tempfile::tempdir().unwrap();
    let events = write_trail(dir.path()).await;
    let victim = &events[0];

    let longer = [victim.data.as_ref(), b" "].concat();
    let err = testing::overwrite_event_data(dir.path(), victim.position, &longer).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{err}");
    let not_a_record = strata::Position(victim.position.0 + 1);
    assert!(testing::overwrite_event_data(dir.path(), not_a_record, &victim.data).is_err());

    let store = LogStore::open(LogConfig::new(dir.path())).await.unwrap();
    let err = testing::overwrite_event_data(dir.path(), victim.position, &victim.data).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock, "{err}");
    // Nothing was changed.
    verify_audit_chain(&store, &svc()).await.unwrap();
    store.close().await.unwrap();
}
