//! Decisions: the aggregate's counterpart for rules that cross aggregates
//! (dynamic consistency boundaries, `docs/adr/0022-dynamic-consistency-boundaries.md`).
//!
//! A [`Decision`] declares the [`Query`] of the events its rule depends on,
//! folds the matching events into a state, and decides a command into new
//! events, each tagged. The [`DecisionRunner`] reads the boundary up to the
//! store's head, decides, and appends with the condition "no event matching
//! the query after the head", retrying on conflict with the
//! [`RetryPolicy`]; it runs over any [`DecisionStore`]: every event store,
//! or a server reached over HTTP. [`DecisionTest`] tests a decision with given / when /
//! then, without a store.
//!
//! The course-subscription rule ([`courses`]) and unique usernames
//! ([`usernames`]) are worked examples.

pub mod courses;
mod runner;
mod store;
mod testing;
pub mod usernames;

use strata_core::dcb::{Query, Tag};

use crate::event::DomainEvent;

pub use runner::{DecisionError, DecisionOutcome, DecisionRunner, MAX_BOUNDARY_EVENTS};
pub use store::DecisionStore;
pub use testing::DecisionTest;

/// A rule over the events a query selects.
pub trait Decision: Send + Sync + 'static {
    /// What callers ask for.
    type Command: Send + Sync;
    /// The events the rule reads and writes.
    type Event: DomainEvent;
    /// What the rule knows after folding the boundary's events.
    type State: Send;
    /// Why a command is refused.
    type Error: std::error::Error + Send + Sync + 'static;

    /// The events that decide `command`: its consistency boundary.
    fn query(command: &Self::Command) -> Query;

    /// The tags an event carries (what later queries find it by).
    fn tags(event: &Self::Event) -> Vec<Tag>;

    /// The state before any event is folded: a rule may keep what it needs
    /// of the command (which course, which student) to fold by.
    fn initial(command: &Self::Command) -> Self::State;

    /// Folds one event of the boundary into the state.
    fn evolve(state: &mut Self::State, event: &Self::Event);

    /// Decides: the events to record (none is fine), or why not. It may run
    /// more than once for one command, when the runner retries.
    fn decide(
        state: &Self::State,
        command: &Self::Command,
    ) -> Result<Vec<Self::Event>, Self::Error>;
}
