//! Typed projections decode each event with the framework's codec and
//! upcasters; the account balances agree with the aggregates they mirror;
//! a processor can feed projections too, and catches in-memory ones up
//! after a restart.

// Helpers outside `#[test]` functions unwrap too; clippy.toml only exempts the tests.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::json;
use strata::account_balance::AccountBalanceProjection;
use strata::bank::{AccountCommand, BankAccount};
use strata::{
    CommandMeta, EventProcessor, EventStore, ExpectedVersion, MemoryCheckpointStore, MemoryStore,
    Metadata, NewEvent, ProjectionError, ProjectionRunner, ReadFilter, RecordedEvent, Repository,
    SharedProjection, StreamId, Typed, TypedProjection, Upcasters,
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum TempEvent {
    // v1: {"temp": 21}; v2: {"celsius": 21.0}
    Measured { celsius: f64 },
}

impl strata::DomainEvent for TempEvent {
    fn schema_version(_: &str) -> u32 {
        2
    }
}

#[derive(Default)]
struct Temperatures {
    readings: Vec<f64>,
}

impl TypedProjection for Temperatures {
    type Event = TempEvent;

    fn name(&self) -> &str {
        "temperatures"
    }

    fn filter(&self) -> ReadFilter {
        // Wider than the enum: other types must be skipped, not fail.
        ReadFilter::all().category("thermo")
    }

    fn apply(&mut self, event: TempEvent, _: &RecordedEvent) -> Result<(), ProjectionError> {
        let TempEvent::Measured { celsius } = event;
        self.readings.push(celsius);
        Ok(())
    }

    fn reset(&mut self) {
        self.readings.clear();
    }
}

async fn append(store: &MemoryStore, event_type: &str, data: serde_json::Value, schema: &str) {
    let s = StreamId::new("thermo-1").unwrap();
    let e = NewEvent::json(event_type, &data)
        .unwrap()
        .with_metadata(Metadata::default().with("schema", schema));
    store
        .append(&s, ExpectedVersion::Any, vec![e])
        .await
        .unwrap();
}

#[tokio::test]
async fn typed_projections_upcast_old_events_and_skip_foreign_types() {
    let store = MemoryStore::new();
    append(&store, "Measured", json!({"temp": 20}), "1").await;
    append(&store, "Calibrated", json!({}), "1").await;
    append(&store, "Measured", json!({"celsius": 21.5}), "2").await;

    let upcasters = Upcasters::new().register("Measured", 1, |mut v| {
        let t = v["temp"].as_f64().ok_or("no temp")?;
        v = json!({ "celsius": t });
        Ok(v)
    });
    let mut runner = ProjectionRunner::new(
        store.clone(),
        Arc::new(MemoryCheckpointStore::new()),
        Typed::new(Temperatures::default()).with_upcasters(upcasters),
    );
    let report = runner.catch_up().await.unwrap();
    assert_eq!(report.events, 3, "the filter let the foreign type through");
    let readings = runner.projection().read(|p| p.readings.clone()).await;
    assert_eq!(readings, vec![20.0, 21.5]);

    // Without the upcaster the v1 event cannot be read: the runner stops on it.
    let mut strict = ProjectionRunner::new(
        store.clone(),
        Arc::new(MemoryCheckpointStore::new()),
        Typed::new(Temperatures::default()),
    );
    let err = strict.catch_up().await.unwrap_err();
    assert!(
        matches!(&err, ProjectionError::Event { position, source, .. }
            if position.0 == 1 && matches!(**source, ProjectionError::Decode(_))),
        "{err}"
    );
    assert_eq!(strict.projection().progress().position.0, 0);
}

#[tokio::test]
async fn account_balances_agree_with_the_aggregates() {
    let store = MemoryStore::new();
    let repo = Repository::<BankAccount, _>::new(store.clone());
    let mut ids = Vec::new();
    for a in 0..10 {
        let id = a.to_string();
        repo.execute(
            &id,
            AccountCommand::Open {
                owner: format!("owner-{}", a % 3),
            },
            CommandMeta::new(),
        )
        .await
        .unwrap();
        ids.push(id);
    }
    for i in 0..300u32 {
        let id = &ids[(i as usize * 7) % ids.len()];
        let command = if i % 4 == 3 {
            AccountCommand::Withdraw {
                amount: Decimal::new(i64::from(i), 2),
            }
        } else {
            AccountCommand::Deposit {
                amount: Decimal::new(i64::from(i) + 1, 1),
            }
        };
        // Some withdrawals are refused: only recorded events count.
        let _ = repo.execute(id, command, CommandMeta::new()).await;
    }
    let mut runner = ProjectionRunner::new(
        store.clone(),
        Arc::new(MemoryCheckpointStore::new()),
        Typed::new(AccountBalanceProjection::new()),
    );
    runner.catch_up().await.unwrap();
    let projection = runner.projection();
    let mut total = Decimal::ZERO;
    for id in &ids {
        let account = repo.load(id).await.unwrap();
        let view = projection.read(|p| p.account(id).cloned()).await.unwrap();
        assert_eq!(view.balance, account.state.balance(), "account {id}");
        assert_eq!(view.owner, account.state.owner());
        assert_eq!(view.version, account.version);
        total += view.balance;
    }
    assert_eq!(projection.read(|p| p.total_balance()).await, total);
    let of_owner_0 = projection.read(|p| p.accounts_of("owner-0")).await;
    assert_eq!(of_owner_0.len(), 4);
}

#[tokio::test]
async fn a_processor_feeds_projections_and_catches_in_memory_ones_up_after_a_restart() {
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
        AccountCommand::Deposit { amount: 5.into() },
        CommandMeta::new(),
    )
    .await
    .unwrap();
    let checkpoints = Arc::new(MemoryCheckpointStore::new());
    let balances = SharedProjection::new(Typed::new(AccountBalanceProjection::new()));
    let mut processor = EventProcessor::new("bank", store.clone(), checkpoints.clone())
        .with_projection(balances.clone());
    processor.catch_up().await.unwrap();
    assert_eq!(balances.read(|p| p.balance("1")).await, Some(5.into()));

    // A new process: the processor resumes after its checkpoint, and its
    // fresh in-memory projection is folded up to there first.
    repo.execute(
        "1",
        AccountCommand::Deposit { amount: 2.into() },
        CommandMeta::new(),
    )
    .await
    .unwrap();
    let fresh = SharedProjection::new(Typed::new(AccountBalanceProjection::new()));
    let mut restarted = EventProcessor::new("bank", store.clone(), checkpoints.clone())
        .with_projection(fresh.clone());
    let report = restarted.catch_up().await.unwrap();
    assert_eq!(report.events, 1, "only the new event is processed");
    assert_eq!(fresh.read(|p| p.balance("1")).await, Some(7.into()));
    assert_eq!(
        fresh.progress().position,
        store.head_position().await.unwrap()
    );
}
