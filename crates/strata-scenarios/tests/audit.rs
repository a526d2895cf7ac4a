//! Audit trail: the hash chain written by the aggregate, the
//! detector naming the first modified, removed or reordered event (in a
//! read sequence and in a doctored copy appended to a second stream), and
//! the secondary indexes against full scans on random data.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use strata::testing::{given, given_no_events};
use strata::{
    Bytes, CommandMeta, Direction, EventStore, ExpectedVersion, MemoryStore, NewEvent, Position,
    Queryable, RecordedEvent, Repository, StreamId, Typed,
};
use strata_scenarios::audit::{
    verify_audit_chain, verify_events, verify_events_against, AuditCommand, AuditError, AuditEvent,
    AuditIndex, AuditLog, AuditQuery, ChainHead, TamperKind, VerifyError, GENESIS_HASH,
    MAX_BATCH_RECORDS,
};
use strata_scenarios::{project_until, Until};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap()
}

fn action(user: &str, what: &str, resource: &str, minutes: i64) -> AuditCommand {
    AuditCommand::UserAction {
        user_id: user.into(),
        action: what.into(),
        resource: resource.into(),
        timestamp: t0() + Duration::minutes(minutes),
    }
}

type Repo = Repository<AuditLog, MemoryStore>;

/// Records `n` actions (and a system event every tenth) in log `log`.
async fn record(repo: &Repo, log: &str, n: usize) -> Vec<RecordedEvent> {
    for i in 0..n {
        let command = if i % 10 == 9 {
            AuditCommand::SystemEvent {
                event_type: "backup".into(),
                details: serde_json::json!({ "files": i, "ok": true }),
                timestamp: t0() + Duration::minutes(i as i64),
            }
        } else {
            action(
                &format!("user-{}", i % 3),
                "update",
                &format!("doc-{}", i % 4),
                i as i64,
            )
        };
        repo.execute(log, command, CommandMeta::new())
            .await
            .unwrap();
    }
    let stream = Repo::stream_id(log).unwrap();
    repo.store()
        .read_stream(&stream, 1, 10_000, Direction::Forward)
        .await
        .unwrap()
}

#[test]
fn each_event_is_chained_to_its_predecessor() {
    let first = given_no_events::<AuditLog>()
        .when(action("ada", "read", "doc-1", 0))
        .into_result()
        .unwrap();
    assert_eq!(first[0].seq(), 1);
    assert_eq!(first[0].prev_hash(), GENESIS_HASH);
    assert_eq!(first[0].hash(), first[0].compute_hash());
    assert_eq!(first[0].hash().len(), 64);

    let then = given::<AuditLog>(first.clone())
        .when(action("bo", "delete", "doc-2", 1))
        .into_result()
        .unwrap();
    assert_eq!(then[0].seq(), 2);
    assert_eq!(then[0].prev_hash(), first[0].hash());
    assert_ne!(then[0].hash(), first[0].hash());

    given_no_events::<AuditLog>()
        .when(action("", "read", "doc-1", 0))
        .then_expect_error(AuditError::InvalidField { field: "user id" });
}

#[tokio::test]
async fn an_untouched_chain_verifies() {
    let store = MemoryStore::new();
    let repo = Repo::new(store.clone());
    let events = record(&repo, "svc", 25).await;
    let head = verify_audit_chain(&store, &Repo::stream_id("svc").unwrap())
        .await
        .unwrap();
    assert_eq!(head.count, 25);
    assert_eq!(head.hash, repo.load("svc").await.unwrap().state.head());
    assert_eq!(verify_events(&events).unwrap(), head);
    // A log that was never written is an empty chain.
    let empty = verify_audit_chain(&store, &Repo::stream_id("none").unwrap())
        .await
        .unwrap();
    assert_eq!((empty.count, empty.hash.as_str()), (0, GENESIS_HASH));
}

/// The event's JSON with one field changed.
fn doctor(e: &RecordedEvent, field: &str, value: serde_json::Value) -> RecordedEvent {
    let mut json: serde_json::Value = serde_json::from_slice(&e.data).unwrap();
    json[field] = value;
    let mut out = e.clone();
    out.data = Bytes::from(serde_json::to_vec(&json).unwrap());
    out
}

#[tokio::test]
async fn a_modified_event_is_named() {
    let store = MemoryStore::new();
    let events = record(&Repo::new(store), "svc", 12).await;

    let mut tampered = events.clone();
    tampered[4] = doctor(&events[4], "resource", "doc-secret".into());
    let report = verify_events(&tampered).unwrap_err();
    assert_eq!((report.index, report.version), (5, 5));
    assert_eq!(report.event_id, Some(events[4].id));
    assert!(matches!(report.kind, TamperKind::HashMismatch { .. }));
    assert!(report.to_string().contains("was modified"), "{report}");

    // A system event's details count too.
    let mut tampered = events.clone();
    tampered[9] = doctor(&events[9], "details", serde_json::json!({"files": 0}));
    let report = verify_events(&tampered).unwrap_err();
    assert_eq!(report.index, 10);
    assert!(matches!(report.kind, TamperKind::HashMismatch { .. }));

    // Re-hashing the modified event moves the evidence to its successor.
    let mut forged: AuditEvent =
        strata::event::decode(&events[4].event_type, &events[4].data).unwrap();
    if let AuditEvent::UserAction { resource, hash, .. } = &mut forged {
        *resource = "doc-secret".into();
        hash.clear();
    }
    let rehashed = forged.compute_hash();
    let mut tampered = events.clone();
    tampered[4] = doctor(
        &doctor(&events[4], "resource", "doc-secret".into()),
        "hash",
        rehashed.into(),
    );
    let report = verify_events(&tampered).unwrap_err();
    assert_eq!(report.index, 6);
    assert!(
        matches!(&report.kind, TamperKind::BrokenLink { .. }),
        "{report}"
    );
}

#[tokio::test]
async fn a_removed_event_is_named() {
    let store = MemoryStore::new();
    let events = record(&Repo::new(store), "svc", 12).await;
    for gone in [0, 5, 10] {
        let mut tampered = events.clone();
        tampered.remove(gone);
        let report = verify_events(&tampered).unwrap_err();
        assert_eq!(report.index, gone as u64 + 1);
        assert_eq!(report.event_id, Some(events[gone + 1].id));
        assert_eq!(
            report.kind,
            TamperKind::OutOfSequence {
                expected: gone as u64 + 1,
                found: gone as u64 + 2
            }
        );
    }
    // Cutting the end off passes the chain alone, not a head kept outside.
    let head = verify_events(&events).unwrap();
    let cut = &events[..events.len() - 1];
    assert!(verify_events(cut).is_ok());
    let report = verify_events_against(cut, &head).unwrap_err();
    assert!(matches!(report.kind, TamperKind::HeadMismatch { .. }));
    assert_eq!(report.event_id, None);
    assert_eq!(verify_events_against(&events, &head).unwrap(), head);
}

#[tokio::test]
async fn reordered_events_are_named() {
    let store = MemoryStore::new();
    let events = record(&Repo::new(store), "svc", 12).await;
    let mut tampered = events.clone();
    tampered.swap(3, 7);
    let report = verify_events(&tampered).unwrap_err();
    assert_eq!(report.index, 4);
    assert_eq!(report.event_id, Some(events[7].id));
    assert_eq!(
        report.kind,
        TamperKind::OutOfSequence {
            expected: 4,
            found: 8
        }
    );
    // Renumbering the moved events is caught by the links.
    let mut renumbered = events.clone();
    renumbered.swap(3, 4);
    renumbered[3] = doctor(&renumbered[3], "seq", 4.into());
    renumbered[4] = doctor(&renumbered[4], "seq", 5.into());
    let report = verify_events(&renumbered).unwrap_err();
    assert_eq!(report.index, 4);
    assert!(matches!(report.kind, TamperKind::BrokenLink { .. }));
}

#[tokio::test]
async fn a_doctored_copy_in_a_second_stream_is_caught_through_the_store() {
    let store = MemoryStore::new();
    let events = record(&Repo::new(store.clone()), "svc", 15).await;
    // The store has no back door: copy the chain into another stream, one
    // event changed on the way, as someone rewriting history would have to.
    let copy = StreamId::new("audit-svc_copy").unwrap();
    let mut new_events = Vec::new();
    for (i, e) in events.iter().enumerate() {
        let e = if i == 7 {
            doctor(e, "user_id", "someone-else".into())
        } else {
            e.clone()
        };
        new_events.push(NewEvent::json_bytes(e.event_type.clone(), e.data.clone()));
    }
    store
        .append(&copy, ExpectedVersion::NoStream, new_events)
        .await
        .unwrap();
    match verify_audit_chain(&store, &copy).await {
        Err(VerifyError::Tampered(report)) => {
            assert_eq!((report.index, report.version), (8, 8));
            assert!(matches!(report.kind, TamperKind::HashMismatch { .. }));
        }
        other => panic!("expected tampering at #8, got {other:?}"),
    }
    // The original still verifies.
    verify_audit_chain(&store, &Repo::stream_id("svc").unwrap())
        .await
        .unwrap();
}

#[tokio::test]
async fn index_queries_match_full_scans_on_random_actions() {
    let store = MemoryStore::new();
    let repo = Repo::new(store.clone());
    let mut rng = StdRng::seed_from_u64(17);
    let users: Vec<String> = (0..6).map(|u| format!("user-{u}")).collect();
    let resources: Vec<String> = (0..9).map(|r| format!("res-{r}")).collect();
    for _ in 0..400 {
        let log = ["web", "api", "batch"][rng.gen_range(0..3)];
        // Timestamps out of order on purpose: the time index sorts them.
        let minutes = rng.gen_range(0..1_000);
        let command = if rng.gen_bool(0.1) {
            AuditCommand::SystemEvent {
                event_type: "restart".into(),
                details: serde_json::json!({ "log": log }),
                timestamp: t0() + Duration::minutes(minutes),
            }
        } else {
            action(
                &users[rng.gen_range(0..users.len())],
                ["read", "update", "delete"][rng.gen_range(0..3)],
                &resources[rng.gen_range(0..resources.len())],
                minutes,
            )
        };
        repo.execute(log, command, CommandMeta::new())
            .await
            .unwrap();
    }
    let mut index = Typed::new(AuditIndex::new());
    project_until(&store, &mut index, Until::Position(Position(u64::MAX)))
        .await
        .unwrap();
    assert_eq!(index.len(), 400);
    let all = index.records();

    for u in &users {
        let want: Vec<_> = all.iter().filter(|r| r.user_id() == Some(u)).collect();
        assert_eq!(index.by_user(u), want, "{u}");
        assert_eq!(
            index.query(&AuditQuery::ByUser(u.clone())),
            want.iter().map(|r| (*r).clone()).collect::<Vec<_>>()
        );
    }
    for r in &resources {
        let want: Vec<_> = all.iter().filter(|x| x.resource() == Some(r)).collect();
        assert_eq!(index.by_resource(r), want, "{r}");
    }
    for _ in 0..50 {
        let a = t0() + Duration::minutes(rng.gen_range(0..1_000));
        let b = a + Duration::minutes(rng.gen_range(0..200));
        let mut want: Vec<_> = all
            .iter()
            .filter(|x| (a..b).contains(&x.event.timestamp()))
            .collect();
        want.sort_by_key(|x| (x.event.timestamp(), x.position));
        assert_eq!(index.in_range(a, b), want, "[{a}, {b})");
        let u = &users[rng.gen_range(0..users.len())];
        let want_user: Vec<_> = all
            .iter()
            .filter(|x| x.user_id() == Some(u) && (a..b).contains(&x.event.timestamp()))
            .collect();
        assert_eq!(index.by_user_in_range(u, a, b), want_user);
    }
    // Delivered again after a restart: nothing changes.
    let events = store
        .read_all(Position(1), 1_000, &strata::ReadFilter::all())
        .await
        .unwrap();
    let before = index.len();
    for e in &events[200..] {
        strata::Projection::update(&mut index, e).unwrap();
    }
    assert_eq!(index.len(), before);
    // Every log still verifies.
    for log in ["web", "api", "batch"] {
        let head: ChainHead = verify_audit_chain(&store, &Repo::stream_id(log).unwrap())
            .await
            .unwrap();
        assert_eq!(head.count, repo.load(log).await.unwrap().state.count());
    }
}

#[tokio::test]
async fn a_batch_is_chained_in_order_and_appended_at_once() {
    let records = vec![
        action("ada", "read", "doc-1", 0),
        AuditCommand::SystemEvent {
            event_type: "backup".into(),
            details: serde_json::json!({}),
            timestamp: t0(),
        },
        action("bo", "update", "doc-2", 1),
    ];
    let store = MemoryStore::new();
    let repo = Repo::new(store.clone());
    repo.execute("svc", action("cy", "read", "doc-0", 0), CommandMeta::new())
        .await
        .unwrap();
    let done = repo
        .execute(
            "svc",
            AuditCommand::Batch {
                records: records.clone(),
            },
            CommandMeta::new(),
        )
        .await
        .unwrap();
    assert_eq!(done.events.len(), 3);
    let seqs: Vec<u64> = done.events.iter().map(AuditEvent::seq).collect();
    assert_eq!(seqs, [2, 3, 4]);
    let (first, last) = done.positions.unwrap();
    assert_eq!(last.0 - first.0, 2, "one append");
    let head = verify_audit_chain(&store, &Repo::stream_id("svc").unwrap())
        .await
        .unwrap();
    assert_eq!(head.count, 4);

    given_no_events::<AuditLog>()
        .when(AuditCommand::Batch {
            records: vec![AuditCommand::Batch { records }],
        })
        .then_expect_error(AuditError::NestedBatch);
    let too_many = vec![action("ada", "read", "doc-1", 0); MAX_BATCH_RECORDS + 1];
    given_no_events::<AuditLog>()
        .when(AuditCommand::Batch { records: too_many })
        .then_expect_error(AuditError::BatchTooLarge {
            records: MAX_BATCH_RECORDS + 1,
        });
    given_no_events::<AuditLog>()
        .when(AuditCommand::Batch {
            records: vec![action("ada", "read", "", 0)],
        })
        .then_expect_error(AuditError::InvalidField { field: "resource" });
}

#[tokio::test]
async fn a_chain_on_the_log_store_verifies_after_reopening() {
    use strata_log::{LogConfig, LogStore};
    let dir = std::env::temp_dir().join(format!(
        "strata-audit-{}-{}",
        std::process::id(),
        Utc::now().timestamp_nanos_opt().unwrap_or_default()
    ));
    let stream = Repository::<AuditLog, LogStore>::stream_id("svc").unwrap();
    let head = {
        let store = Arc::new(LogStore::open(LogConfig::new(&dir)).await.unwrap());
        let repo = Repository::<AuditLog, _>::new(Arc::clone(&store));
        for chunk in 0..3 {
            let records = (0..10)
                .map(|i| action("ada", "update", &format!("doc-{i}"), chunk * 10 + i))
                .collect();
            repo.execute("svc", AuditCommand::Batch { records }, CommandMeta::new())
                .await
                .unwrap();
        }
        let head = verify_audit_chain(repo.store(), &stream).await.unwrap();
        assert_eq!(head.count, 30);
        drop(repo);
        let Ok(store) = Arc::try_unwrap(store) else {
            panic!("the store is still shared");
        };
        store.close().await.unwrap();
        head
    };
    let reopened = LogStore::open(LogConfig::new(&dir)).await.unwrap();
    assert_eq!(verify_audit_chain(&reopened, &stream).await.unwrap(), head);
    let events = reopened
        .read_stream(&stream, 1, 100, Direction::Forward)
        .await
        .unwrap();
    assert_eq!(verify_events_against(&events, &head).unwrap(), head);
    reopened.close().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
