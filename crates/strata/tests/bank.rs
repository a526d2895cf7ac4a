//! A bank account: its rules through the given/when/then
//! harness, and its life through a repository on `MemoryStore`.

// Helpers outside `#[test]` functions unwrap too; clippy.toml only exempts the tests.
#![allow(clippy::unwrap_used)]

mod common;

use common::InstrumentedStore;
use rust_decimal::Decimal;
use strata::bank::{AccountCommand, AccountError, AccountEvent, AccountStatus, BankAccount};
use strata::testing::{given, given_no_events};
use strata::{
    AggregateError, CommandMeta, Direction, EventStore, MemoryStore, Repository, StreamId, Uuid,
};

fn d(units: i64, scale: u32) -> Decimal {
    Decimal::new(units, scale)
}

fn opened() -> AccountEvent {
    AccountEvent::Opened {
        owner: "ada".into(),
    }
}

#[test]
fn opening_a_new_account() {
    given_no_events::<BankAccount>()
        .when(AccountCommand::Open {
            owner: "ada".into(),
        })
        .then_expect_events([opened()])
        .then_state(|a| {
            assert_eq!(a.status(), AccountStatus::Open);
            assert_eq!(a.owner(), "ada");
            assert_eq!(a.balance(), Decimal::ZERO);
        });
}

#[test]
fn opening_twice_or_without_owner_is_refused() {
    given::<BankAccount>([opened()])
        .when(AccountCommand::Open {
            owner: "bob".into(),
        })
        .then_expect_error(AccountError::AlreadyOpen);
    given_no_events::<BankAccount>()
        .when(AccountCommand::Open { owner: " ".into() })
        .then_expect_error(AccountError::MissingOwner);
}

#[test]
fn deposits_and_withdrawals_are_exact_decimals() {
    given::<BankAccount>([opened(), AccountEvent::Deposited { amount: d(10, 1) }])
        .when(AccountCommand::Deposit { amount: d(20, 2) })
        .then_expect_events([AccountEvent::Deposited { amount: d(20, 2) }])
        .and_when(AccountCommand::Withdraw { amount: d(120, 2) })
        .then_expect_events([AccountEvent::Withdrawn { amount: d(120, 2) }])
        .then_state(|a| assert_eq!(a.balance(), Decimal::ZERO));
}

#[test]
fn withdrawing_more_than_the_balance_is_insufficient_funds() {
    given::<BankAccount>([opened(), AccountEvent::Deposited { amount: d(5, 0) }])
        .when(AccountCommand::Withdraw { amount: d(501, 2) })
        .then_expect_error(AccountError::InsufficientFunds {
            balance: d(5, 0),
            requested: d(501, 2),
        });
}

#[test]
fn zero_and_negative_amounts_are_refused() {
    for amount in [Decimal::ZERO, d(-1, 0), d(-1, 28)] {
        given::<BankAccount>([opened()])
            .when(AccountCommand::Deposit { amount })
            .then_expect_error(AccountError::InvalidAmount { amount });
        given::<BankAccount>([opened(), AccountEvent::Deposited { amount: d(9, 0) }])
            .when(AccountCommand::Withdraw { amount })
            .then_expect_error(AccountError::InvalidAmount { amount });
    }
}

#[test]
fn a_deposit_that_would_overflow_is_refused() {
    given::<BankAccount>([
        opened(),
        AccountEvent::Deposited {
            amount: Decimal::MAX,
        },
    ])
    .when(AccountCommand::Deposit {
        amount: Decimal::MAX,
    })
    .then_expect_error_matching(|e| matches!(e, AccountError::BalanceOverflow { .. }));
}

#[test]
fn nothing_works_on_an_account_that_is_not_open() {
    for command in [
        AccountCommand::Deposit { amount: d(1, 0) },
        AccountCommand::Withdraw { amount: d(1, 0) },
        AccountCommand::Close,
    ] {
        given_no_events::<BankAccount>()
            .when(command.clone())
            .then_expect_error(AccountError::NotOpen);
        given::<BankAccount>([opened(), AccountEvent::Closed])
            .when(command)
            .then_expect_error(AccountError::Closed);
    }
    given::<BankAccount>([opened(), AccountEvent::Closed])
        .when(AccountCommand::Open {
            owner: "ada".into(),
        })
        .then_expect_error(AccountError::Closed);
}

#[test]
fn only_an_empty_account_closes() {
    given::<BankAccount>([opened(), AccountEvent::Deposited { amount: d(3, 0) }])
        .when(AccountCommand::Close)
        .then_expect_error(AccountError::NonZeroBalance { balance: d(3, 0) });
    given::<BankAccount>([
        opened(),
        AccountEvent::Deposited { amount: d(3, 0) },
        AccountEvent::Withdrawn { amount: d(3, 0) },
    ])
    .when(AccountCommand::Close)
    .then_expect_events([AccountEvent::Closed])
    .then_state(|a| assert_eq!(a.status(), AccountStatus::Closed));
}

#[test]
#[should_panic(expected = "expected events")]
fn the_harness_reports_unexpected_events() {
    given::<BankAccount>([opened()])
        .when(AccountCommand::Deposit { amount: d(1, 0) })
        .then_expect_events([AccountEvent::Deposited { amount: d(2, 0) }]);
}

#[test]
#[should_panic(expected = "was accepted")]
fn the_harness_reports_a_missing_error() {
    given::<BankAccount>([opened()])
        .when(AccountCommand::Deposit { amount: d(1, 0) })
        .then_expect_error(AccountError::Closed);
}

#[tokio::test]
async fn an_account_lives_through_a_repository() {
    let repo = Repository::<BankAccount, _>::new(MemoryStore::new());
    let meta = CommandMeta::new;
    repo.execute(
        "42",
        AccountCommand::Open {
            owner: "ada".into(),
        },
        meta(),
    )
    .await
    .unwrap();
    repo.execute(
        "42",
        AccountCommand::Deposit {
            amount: d(10050, 2),
        },
        meta(),
    )
    .await
    .unwrap();
    repo.execute("42", AccountCommand::Withdraw { amount: d(50, 2) }, meta())
        .await
        .unwrap();
    let refused = repo
        .execute(
            "42",
            AccountCommand::Withdraw { amount: d(1000, 0) },
            meta(),
        )
        .await
        .unwrap_err();
    assert_eq!(
        refused.rejection(),
        Some(&AccountError::InsufficientFunds {
            balance: d(100, 0),
            requested: d(1000, 0)
        })
    );
    repo.execute("42", AccountCommand::Withdraw { amount: d(100, 0) }, meta())
        .await
        .unwrap();
    let closed = repo
        .execute("42", AccountCommand::Close, meta())
        .await
        .unwrap();
    assert_eq!(closed.version, 5);
    let after = repo
        .execute("42", AccountCommand::Deposit { amount: d(1, 0) }, meta())
        .await;
    assert!(matches!(
        after,
        Err(AggregateError::Rejected(AccountError::Closed))
    ));

    let account = repo.load("42").await.unwrap();
    assert_eq!(account.version, 5);
    assert_eq!(account.state.status(), AccountStatus::Closed);

    // What the store holds: stable type names, variant content only, and no
    // schema metadata (version 1 is implied).
    let stream = StreamId::new("account-42").unwrap();
    let events = repo
        .store()
        .read_stream(&stream, 1, 100, Direction::Forward)
        .await
        .unwrap();
    let types: Vec<_> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        [
            "AccountOpened",
            "MoneyDeposited",
            "MoneyWithdrawn",
            "MoneyWithdrawn",
            "AccountClosed"
        ]
    );
    assert_eq!(&events[1].data[..], br#"{"amount":"100.50"}"#);
    assert_eq!(&events[4].data[..], b"{}");
    assert!(events
        .iter()
        .all(|e| !e.metadata.extra.contains_key("schema")));
}

#[tokio::test]
async fn events_carry_correlation_and_causation_ids() {
    let repo = Repository::<BankAccount, _>::new(MemoryStore::new());
    let command_id = Uuid::now_v7();
    let opened = repo
        .execute(
            "7",
            AccountCommand::Open {
                owner: "ada".into(),
            },
            CommandMeta::new()
                .with_command_id(command_id)
                .with_correlation_id("signup-1")
                .with_user_id("u-1")
                .with_source("tests")
                .with("tenant", "t1")
                .with("schema", "7"), // reserved: dropped
        )
        .await
        .unwrap();
    assert_eq!(opened.command_id, command_id);
    assert_eq!(opened.correlation_id, "signup-1");
    // Without a correlation id, the command starts its own correlation.
    let deposited = repo
        .execute(
            "7",
            AccountCommand::Deposit { amount: d(1, 0) },
            CommandMeta::new(),
        )
        .await
        .unwrap();
    assert_eq!(deposited.correlation_id, deposited.command_id.to_string());

    let stream = StreamId::new("account-7").unwrap();
    let events = repo
        .store()
        .read_stream(&stream, 1, 10, Direction::Forward)
        .await
        .unwrap();
    let m = &events[0].metadata;
    assert_eq!(m.correlation_id.as_deref(), Some("signup-1"));
    assert_eq!(m.causation_id, Some(command_id.to_string()));
    assert_eq!(m.user_id.as_deref(), Some("u-1"));
    assert_eq!(m.source.as_deref(), Some("tests"));
    assert_eq!(m.extra.get("tenant").map(String::as_str), Some("t1"));
    assert!(!m.extra.contains_key("schema"));
    let m = &events[1].metadata;
    assert_eq!(m.causation_id, Some(deposited.command_id.to_string()));
    assert_eq!(m.correlation_id, m.causation_id);
}

/// An aggregate whose commands may decide that nothing needs to happen.
mod idempotent_light {
    use serde::{Deserialize, Serialize};
    use strata::{Aggregate, DomainEvent};

    #[derive(Default, Serialize, Deserialize)]
    pub struct Light {
        pub on: bool,
    }
    pub enum Switch {
        On,
    }
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    pub enum LightEvent {
        SwitchedOn,
    }
    impl DomainEvent for LightEvent {}
    #[derive(Debug, thiserror::Error)]
    #[error("never")]
    pub struct Never;
    impl Aggregate for Light {
        const TYPE: &'static str = "light";
        type Command = Switch;
        type Event = LightEvent;
        type Error = Never;
        fn handle(&self, _: &Switch) -> Result<Vec<LightEvent>, Never> {
            Ok(if self.on {
                vec![]
            } else {
                vec![LightEvent::SwitchedOn]
            })
        }
        fn apply(&mut self, _: &LightEvent) {
            self.on = true;
        }
    }
}

#[tokio::test]
async fn commands_that_decide_nothing_write_nothing() {
    use idempotent_light::{Light, Switch};
    let store = InstrumentedStore::new();
    let repo = Repository::<Light, _>::new(store.clone()).with_cache(10);
    let first = repo
        .execute("hall", Switch::On, CommandMeta::new())
        .await
        .unwrap();
    assert_eq!(first.version, 1);
    let second = repo
        .execute("hall", Switch::On, CommandMeta::new())
        .await
        .unwrap();
    assert!(second.is_empty());
    assert_eq!(second.version, 1);
    assert_eq!(second.positions, None);
    assert_eq!(store.appends.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(store.inner.len(), 1);
}

#[tokio::test]
async fn a_cached_aggregate_reads_nothing_from_the_store() {
    let store = InstrumentedStore::new();
    let repo = Repository::<BankAccount, _>::new(store.clone()).with_cache(1_000);
    repo.execute(
        "1",
        AccountCommand::Open {
            owner: "ada".into(),
        },
        CommandMeta::new(),
    )
    .await
    .unwrap();
    let reads_after_first = store.reads();
    assert!(reads_after_first >= 1);
    for _ in 0..100 {
        repo.execute(
            "1",
            AccountCommand::Deposit { amount: d(1, 0) },
            CommandMeta::new(),
        )
        .await
        .unwrap();
    }
    assert_eq!(store.reads(), reads_after_first, "cache hits must not read");
    let stats = repo.stats();
    assert_eq!(stats.cache_hits, 100);
    assert_eq!(stats.cache_misses, 1);

    // Evicted, it loads again.
    repo.evict("1");
    repo.execute(
        "1",
        AccountCommand::Deposit { amount: d(1, 0) },
        CommandMeta::new(),
    )
    .await
    .unwrap();
    assert!(store.reads() > reads_after_first);
    assert_eq!(repo.load("1").await.unwrap().state.balance(), d(101, 0));
}

#[tokio::test]
async fn a_tombstoned_aggregate_reports_the_store_error() {
    let repo = Repository::<BankAccount, _>::new(MemoryStore::new());
    repo.execute(
        "9",
        AccountCommand::Open {
            owner: "ada".into(),
        },
        CommandMeta::new(),
    )
    .await
    .unwrap();
    let stream = StreamId::new("account-9").unwrap();
    repo.store()
        .tombstone_stream(&stream, strata::ExpectedVersion::Any)
        .await
        .unwrap();
    let err = repo
        .execute(
            "9",
            AccountCommand::Deposit { amount: d(1, 0) },
            CommandMeta::new(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            AggregateError::Store(strata::Error::StreamDeleted { .. })
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn invalid_ids_are_refused() {
    let repo = Repository::<BankAccount, _>::new(MemoryStore::new());
    let err = repo
        .execute(
            "a\nb",
            AccountCommand::Open { owner: "x".into() },
            CommandMeta::new(),
        )
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        AggregateError::Store(strata::Error::InvalidInput { .. })
    ));
}
