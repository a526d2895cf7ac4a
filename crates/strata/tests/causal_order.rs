//! The causal-order checker finds planted violations: an effect recorded
//! before its cause, a declared cause that does not exist; and it skips
//! causation ids that are command ids.

// Helpers outside `#[test]` functions unwrap too; clippy.toml only exempts the tests.
#![allow(clippy::unwrap_used)]

use strata::bank::{AccountCommand, BankAccount};
use strata::consistency::{
    caused_by_event, CausalChecker, CausalViolationKind, CAUSATION_KIND_KEY,
};
use strata::{
    CommandMeta, Direction, EventId, EventStore, ExpectedVersion, MemoryStore, Metadata, NewEvent,
    Position, Repository, StreamId,
};

async fn append(store: &MemoryStore, stream: &str, event: NewEvent) -> Position {
    let s = StreamId::new(stream).unwrap();
    store
        .append(&s, ExpectedVersion::Any, vec![event])
        .await
        .unwrap()
        .last_position
}

#[tokio::test]
async fn framework_events_are_causally_consistent() {
    let store = MemoryStore::new();
    let repo = Repository::<BankAccount, _>::new(store.clone());
    repo.execute(
        "1",
        AccountCommand::Open {
            owner: "ada".into(),
        },
        CommandMeta::new(),
    )
    .await
    .unwrap();
    repo.execute(
        "1",
        AccountCommand::Deposit { amount: 3.into() },
        CommandMeta::new(),
    )
    .await
    .unwrap();
    // A reaction to the deposit, declared as caused by it.
    let deposit = store
        .read_stream(
            &StreamId::new("account-1").unwrap(),
            2,
            1,
            Direction::Forward,
        )
        .await
        .unwrap()
        .remove(0);
    append(
        &store,
        "mail-1",
        NewEvent::json_bytes("ReceiptSent", "{}")
            .with_metadata(caused_by_event(Metadata::default(), &deposit)),
    )
    .await;
    let report = CausalChecker::new().check_store(&store).await.unwrap();
    assert!(report.is_consistent(), "{report:?}");
    assert_eq!(report.events_checked, 3);
    assert_eq!(report.event_causations, 1);
    assert_eq!(report.other_causations, 2, "command ids are skipped");
}

#[tokio::test]
async fn the_checker_finds_planted_violations() {
    let store = MemoryStore::new();
    let cause_id = EventId::new();
    let missing_id = EventId::new();

    // 1: an effect whose cause (event 3) is recorded after it.
    let early = append(
        &store,
        "x-1",
        NewEvent::json_bytes("Effect", "{}")
            .with_metadata(Metadata::default().with_causation_id(cause_id.to_string())),
    )
    .await;
    // 2: a declared event cause that no event has.
    let orphan = append(
        &store,
        "x-2",
        NewEvent::json_bytes("Orphan", "{}").with_metadata(
            Metadata::default()
                .with_causation_id(missing_id.to_string())
                .with(CAUSATION_KIND_KEY, "event"),
        ),
    )
    .await;
    // 3: the cause of event 1.
    let cause = append(
        &store,
        "x-3",
        NewEvent::json_bytes("Cause", "{}").with_id(cause_id),
    )
    .await;
    // 4: an undeclared UUID that is no event: a command id, skipped.
    append(
        &store,
        "x-4",
        NewEvent::json_bytes("Commanded", "{}")
            .with_metadata(Metadata::default().with_causation_id(EventId::new().to_string())),
    )
    .await;
    // 5: a proper effect of event 3.
    append(
        &store,
        "x-5",
        NewEvent::json_bytes("Fine", "{}")
            .with_metadata(Metadata::default().with_causation_id(cause_id.to_string())),
    )
    .await;

    let report = CausalChecker::new().check_store(&store).await.unwrap();
    assert!(!report.is_consistent());
    assert_eq!(report.violation_count, 2, "{report:?}");
    let v = &report.violations;
    assert_eq!(v[0].position, early);
    assert_eq!(v[0].causation_id, cause_id);
    assert_eq!(
        v[0].kind,
        CausalViolationKind::NotBefore {
            cause_position: cause
        }
    );
    assert_eq!(v[1].position, orphan);
    assert_eq!(v[1].causation_id, missing_id);
    assert_eq!(v[1].kind, CausalViolationKind::Missing);
    assert_eq!(report.event_causations, 3);
    assert_eq!(report.other_causations, 1);

    // The same over a slice of events in memory.
    let events = store
        .read_all(Position::START, 100, &strata::ReadFilter::all())
        .await
        .unwrap();
    let again = CausalChecker::new().check_events(&events);
    assert_eq!(again.violations, report.violations);

    // A limit on the walk is reported, not silently applied.
    let short = CausalChecker {
        max_events: 2,
        ..CausalChecker::new()
    }
    .check_store(&store)
    .await
    .unwrap();
    assert!(short.truncated);
    assert_eq!(short.events_checked, 2);
}

#[tokio::test]
async fn an_event_that_names_itself_as_its_cause_is_a_violation() {
    let store = MemoryStore::new();
    let id = EventId::new();
    let at = append(
        &store,
        "loop-1",
        NewEvent::json_bytes("Loop", "{}")
            .with_id(id)
            .with_metadata(Metadata::default().with_causation_id(id.to_string())),
    )
    .await;
    let report = CausalChecker::new().check_store(&store).await.unwrap();
    assert_eq!(report.violation_count, 1);
    assert_eq!(
        report.violations[0].kind,
        CausalViolationKind::NotBefore { cause_position: at }
    );
}
