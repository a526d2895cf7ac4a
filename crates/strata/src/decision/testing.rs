//! Given / when / then for decisions, without a store.

use std::fmt::Debug;

use super::Decision;
use crate::event::DomainEvent;

/// A decision test: the events already recorded, a command, and what the
/// decision must answer. Only the given events the command's query selects
/// (by type and [`Decision::tags`]) are folded, as a store would select
/// them.
///
/// ```
/// use strata::decision::usernames::{Register, Usernames, UsernameEvent, UsernameTaken};
/// use strata::decision::DecisionTest;
/// DecisionTest::<Usernames>::given(vec![UsernameEvent::Registered { username: "ada".into(), user: "u1".into() }])
///     .when(Register { username: "ada".into(), user: "u2".into() })
///     .then_rejected(|e: &UsernameTaken| e.username == "ada");
/// ```
pub struct DecisionTest<D: Decision> {
    given: Vec<D::Event>,
    command: Option<D::Command>,
}

impl<D: Decision> DecisionTest<D> {
    /// The events recorded before the command, oldest first.
    pub fn given(events: Vec<D::Event>) -> Self {
        DecisionTest {
            given: events,
            command: None,
        }
    }

    /// The command.
    pub fn when(mut self, command: D::Command) -> Self {
        self.command = Some(command);
        self
    }

    fn run(&self) -> Result<Vec<D::Event>, D::Error> {
        let command = self
            .command
            .as_ref()
            .unwrap_or_else(|| panic!("DecisionTest: call `when` before `then`"));
        let query = D::query(command);
        let mut state = D::initial(command);
        for e in &self.given {
            let tags = strata_core::dcb::tag_set(D::tags(e));
            if query.matches_parts(e.event_type(), &tags) {
                D::evolve(&mut state, e);
            }
        }
        D::decide(&state, command)
    }

    /// Asserts the decision records exactly `expected`.
    #[track_caller]
    pub fn then(self, expected: Vec<D::Event>)
    where
        D::Event: PartialEq + Debug,
        D::Error: Debug,
    {
        match self.run() {
            Ok(events) => assert_eq!(events, expected, "the decision recorded other events"),
            Err(e) => panic!("expected events {expected:?}, the decision refused: {e:?}"),
        }
    }

    /// Asserts the decision refuses, with an error `check` accepts.
    #[track_caller]
    pub fn then_rejected(self, check: impl FnOnce(&D::Error) -> bool)
    where
        D::Event: Debug,
        D::Error: Debug,
    {
        match self.run() {
            Ok(events) => panic!("expected a refusal, the decision recorded {events:?}"),
            Err(e) => assert!(check(&e), "the decision refused with another error: {e:?}"),
        }
    }
}
