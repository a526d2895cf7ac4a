//! The aggregate root: decides on commands, evolves by events.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::event::DomainEvent;

/// An aggregate: a consistency boundary whose state is the fold of its events
/// (`state = fold(apply, S₀, events)`), with `S₀ = Default::default()`.
///
/// Each instance lives in its own stream, named `{TYPE}-{id}`; `TYPE` is the
/// stream's category. The state is `Serialize + DeserializeOwned` so that it
/// can be [snapshotted](crate::snapshot).
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use strata::{Aggregate, DomainEvent};
///
/// #[derive(Default, Serialize, Deserialize)]
/// struct Counter { value: u64 }
///
/// enum CounterCommand { Add(u64) }
///
/// #[derive(Debug, PartialEq, Serialize, Deserialize)]
/// enum CounterEvent { Added { n: u64 } }
/// impl DomainEvent for CounterEvent {}
///
/// #[derive(Debug, thiserror::Error)]
/// #[error("the counter would overflow")]
/// struct Overflow;
///
/// impl Aggregate for Counter {
///     const TYPE: &'static str = "counter";
///     type Command = CounterCommand;
///     type Event = CounterEvent;
///     type Error = Overflow;
///
///     fn handle(&self, command: &CounterCommand) -> Result<Vec<CounterEvent>, Overflow> {
///         match *command {
///             CounterCommand::Add(0) => Ok(vec![]), // nothing to record
///             CounterCommand::Add(n) => {
///                 self.value.checked_add(n).ok_or(Overflow)?;
///                 Ok(vec![CounterEvent::Added { n }])
///             }
///         }
///     }
///
///     fn apply(&mut self, event: &CounterEvent) {
///         match event {
///             CounterEvent::Added { n } => self.value += n,
///         }
///     }
/// }
///
/// let c = Counter::from_events(&[CounterEvent::Added { n: 2 }, CounterEvent::Added { n: 3 }]);
/// assert_eq!(c.value, 5);
/// assert!(c.handle(&CounterCommand::Add(u64::MAX)).is_err());
/// ```
pub trait Aggregate: Default + Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The aggregate's stable type name, used as its streams' category
    /// (`account` gives `account-42`). It must be non-empty, must not contain
    /// `-` and must not start with `$`.
    const TYPE: &'static str;

    /// The version of the state's serialized shape. Raise it whenever the
    /// state's fields change: snapshots of another version are then ignored
    /// (and replaced at the next snapshot point) instead of misread.
    const SNAPSHOT_SCHEMA_VERSION: u32 = 1;

    /// What callers ask for.
    type Command: Send + Sync + 'static;

    /// What happened.
    type Event: DomainEvent;

    /// Why a command is refused.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Decides what `command` means for the current state, without side
    /// effects: the events to record (none is fine: nothing is written), or
    /// the reason for refusing it.
    ///
    /// It may be called more than once for one command, when the
    /// [`Repository`](crate::Repository) retries after losing a concurrency race.
    fn handle(&self, command: &Self::Command) -> Result<Vec<Self::Event>, Self::Error>;

    /// Evolves the state by one event. It must not fail: the event already
    /// happened; anything to refuse was refused in [`handle`](Aggregate::handle).
    fn apply(&mut self, event: &Self::Event);

    /// The state after applying `events` to the initial state.
    fn from_events<'a>(events: impl IntoIterator<Item = &'a Self::Event>) -> Self {
        let mut state = Self::default();
        for e in events {
            state.apply(e);
        }
        state
    }
}
