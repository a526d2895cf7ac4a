//! A given/when/then harness for aggregates: given past events, when a
//! command arrives, then expect these events (or that error).
//!
//! It runs [`Aggregate::handle`] directly — no store, no async — so a
//! domain's rules are tested in microseconds. Expected events are also
//! checked to survive the framework's storage encoding (encode, then decode
//! to an equal event), which catches serde mistakes before a store sees them.
//!
//! ```
//! use rust_decimal::Decimal;
//! use strata::bank::{AccountCommand, AccountError, AccountEvent, BankAccount};
//! use strata::testing::given;
//!
//! given::<BankAccount>([
//!     AccountEvent::Opened { owner: "ada".into() },
//!     AccountEvent::Deposited { amount: Decimal::new(100, 0) },
//! ])
//! .when(AccountCommand::Withdraw { amount: Decimal::new(30, 0) })
//! .then_expect_events([AccountEvent::Withdrawn { amount: Decimal::new(30, 0) }])
//! .then_state(|account| assert_eq!(account.balance(), Decimal::new(70, 0)));
//!
//! given::<BankAccount>([AccountEvent::Opened { owner: "ada".into() }])
//!     .when(AccountCommand::Withdraw { amount: Decimal::ONE })
//!     .then_expect_error(AccountError::InsufficientFunds {
//!         balance: Decimal::ZERO,
//!         requested: Decimal::ONE,
//!     });
//! ```

use std::fmt::Debug;

use crate::{event, Aggregate};

/// Starts a scenario from the state these events build.
pub fn given<A: Aggregate>(events: impl IntoIterator<Item = A::Event>) -> Given<A> {
    let history: Vec<A::Event> = events.into_iter().collect();
    let state = A::from_events(&history);
    Given { state, history }
}

/// Starts a scenario from the initial state (no events).
pub fn given_no_events<A: Aggregate>() -> Given<A> {
    given(std::iter::empty())
}

/// Starts a scenario from an explicit state (a snapshot, say).
pub fn given_state<A: Aggregate>(state: A) -> Given<A> {
    Given {
        state,
        history: Vec::new(),
    }
}

/// The "given" part: a state and the events that built it.
pub struct Given<A: Aggregate> {
    state: A,
    history: Vec<A::Event>,
}

impl<A: Aggregate> Given<A> {
    /// The state the given events built.
    pub fn state(&self) -> &A {
        &self.state
    }

    /// The given events.
    pub fn history(&self) -> &[A::Event] {
        &self.history
    }

    /// Handles `command` on the given state.
    pub fn when(self, command: A::Command) -> When<A> {
        let result = self.state.handle(&command);
        When {
            state: self.state,
            history: self.history,
            result,
        }
    }
}

/// The "when" part: what the aggregate decided.
pub struct When<A: Aggregate> {
    state: A,
    history: Vec<A::Event>,
    result: Result<Vec<A::Event>, A::Error>,
}

impl<A: Aggregate> When<A> {
    /// What `handle` returned.
    pub fn result(&self) -> &Result<Vec<A::Event>, A::Error> {
        &self.result
    }

    /// What `handle` returned, by value.
    pub fn into_result(self) -> Result<Vec<A::Event>, A::Error> {
        self.result
    }

    /// Asserts that the command was accepted with exactly `expected`, and
    /// that each event survives the storage encoding. Returns the state after
    /// applying them, for further checks.
    #[track_caller]
    pub fn then_expect_events(self, expected: impl IntoIterator<Item = A::Event>) -> Then<A>
    where
        A::Event: PartialEq + Debug,
        A::Error: Debug,
    {
        let expected: Vec<A::Event> = expected.into_iter().collect();
        let events = match self.result {
            Ok(events) => events,
            Err(error) => panic!(
                "expected events {expected:#?}\nbut the command was rejected: {error:#?}\n\
                 given: {:#?}",
                self.history
            ),
        };
        assert!(
            events == expected,
            "expected events {expected:#?}\nbut got {events:#?}\ngiven: {:#?}",
            self.history
        );
        for e in &events {
            assert_roundtrips(e);
        }
        let mut state = self.state;
        for e in &events {
            state.apply(e);
        }
        Then {
            state,
            history: self.history,
            events,
        }
    }

    /// Asserts that the command was accepted and decided nothing should happen.
    #[track_caller]
    pub fn then_expect_no_events(self) -> Then<A>
    where
        A::Event: PartialEq + Debug,
        A::Error: Debug,
    {
        self.then_expect_events([])
    }

    /// Asserts that the command was rejected with exactly `expected`.
    #[track_caller]
    pub fn then_expect_error(self, expected: A::Error)
    where
        A::Event: Debug,
        A::Error: PartialEq + Debug,
    {
        match self.result {
            Err(error) => assert!(
                error == expected,
                "expected error {expected:#?}\nbut got error {error:#?}\ngiven: {:#?}",
                self.history
            ),
            Ok(events) => panic!(
                "expected error {expected:#?}\nbut the command was accepted with {events:#?}\n\
                 given: {:#?}",
                self.history
            ),
        }
    }

    /// Asserts that the command was rejected with an error for which
    /// `matches` is true (for error types without `PartialEq`).
    #[track_caller]
    pub fn then_expect_error_matching(self, matches: impl FnOnce(&A::Error) -> bool)
    where
        A::Event: Debug,
        A::Error: Debug,
    {
        match self.result {
            Err(error) => assert!(
                matches(&error),
                "the error {error:#?} does not match\ngiven: {:#?}",
                self.history
            ),
            Ok(events) => panic!(
                "expected an error but the command was accepted with {events:#?}\ngiven: {:#?}",
                self.history
            ),
        }
    }
}

/// The "then" part of an accepted command: the state after its events.
pub struct Then<A: Aggregate> {
    state: A,
    history: Vec<A::Event>,
    events: Vec<A::Event>,
}

impl<A: Aggregate> Then<A> {
    /// Runs checks on the state after the new events.
    pub fn then_state(self, check: impl FnOnce(&A)) -> Self {
        check(&self.state);
        self
    }

    /// The state after the new events.
    pub fn state(&self) -> &A {
        &self.state
    }

    /// The new events.
    pub fn events(&self) -> &[A::Event] {
        &self.events
    }

    /// Continues the scenario: the new events become part of the history.
    pub fn and_when(self, command: A::Command) -> When<A> {
        let mut history = self.history;
        history.extend(self.events);
        let result = self.state.handle(&command);
        When {
            state: self.state,
            history,
            result,
        }
    }
}

/// Asserts that `e` encodes to a stored event and decodes back to itself.
#[track_caller]
pub fn assert_roundtrips<E: crate::DomainEvent + PartialEq + Debug>(e: &E) {
    let encoded = match event::encode(e) {
        Ok(encoded) => encoded,
        Err(err) => panic!("event {e:#?} does not encode: {err}"),
    };
    let decoded: E = match event::decode(encoded.event_type, &encoded.data) {
        Ok(d) => d,
        Err(err) => panic!(
            "event {e:#?} encodes as `{}` {} but does not decode back: {err}",
            encoded.event_type,
            String::from_utf8_lossy(&encoded.data)
        ),
    };
    assert!(
        &decoded == e,
        "event {e:#?} decodes back as a different event {decoded:#?}"
    );
}
