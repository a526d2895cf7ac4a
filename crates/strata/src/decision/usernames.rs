//! A username is unique across every user: the boundary is the events
//! tagged with the username, whatever user stream they belong to.

use serde::{Deserialize, Serialize};
use strata_core::dcb::{Query, QueryItem, Tag};

use super::Decision;
use crate::event::DomainEvent;

/// Usernames' events.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum UsernameEvent {
    /// `user` took `username`.
    Registered {
        /// The name.
        username: String,
        /// Who took it.
        user: String,
    },
    /// `user` gave `username` up.
    Released {
        /// The name.
        username: String,
        /// Who held it.
        user: String,
    },
}

impl DomainEvent for UsernameEvent {}

/// Take a username.
#[derive(Clone, Debug)]
pub struct Register {
    /// The name wanted.
    pub username: String,
    /// Who wants it.
    pub user: String,
}

/// The username is held by someone.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("username `{username}` is taken")]
pub struct UsernameTaken {
    /// The name.
    pub username: String,
}

/// The unique-username rule.
pub struct Usernames;

fn username_tag(name: &str) -> Tag {
    // A name with whitespace or control characters cannot be a tag; such
    // names are refused before (`Tag::new` in `query`).
    Tag::new(format!("username:{name}")).unwrap_or_else(|_| {
        Tag::new("username:invalid").unwrap_or_else(|_| unreachable!("a valid tag"))
    })
}

impl Decision for Usernames {
    type Command = Register;
    type Event = UsernameEvent;
    /// Whether the name is held now.
    type State = bool;
    type Error = UsernameTaken;

    fn query(c: &Register) -> Query {
        Query {
            items: vec![QueryItem::new(
                ["Registered", "Released"],
                [username_tag(&c.username)],
            )],
        }
    }

    fn tags(e: &UsernameEvent) -> Vec<Tag> {
        let (UsernameEvent::Registered { username, user }
        | UsernameEvent::Released { username, user }) = e;
        let mut tags = vec![username_tag(username)];
        tags.extend(Tag::new(format!("user:{user}")));
        tags
    }

    fn initial(_: &Register) -> bool {
        false
    }

    fn evolve(held: &mut bool, e: &UsernameEvent) {
        *held = matches!(e, UsernameEvent::Registered { .. });
    }

    fn decide(held: &bool, c: &Register) -> Result<Vec<UsernameEvent>, UsernameTaken> {
        if *held {
            return Err(UsernameTaken {
                username: c.username.clone(),
            });
        }
        Ok(vec![UsernameEvent::Registered {
            username: c.username.clone(),
            user: c.user.clone(),
        }])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::DecisionTest;

    fn registered(username: &str, user: &str) -> UsernameEvent {
        UsernameEvent::Registered {
            username: username.into(),
            user: user.into(),
        }
    }

    fn register(username: &str, user: &str) -> Register {
        Register {
            username: username.into(),
            user: user.into(),
        }
    }

    #[test]
    fn a_free_name_is_registered_and_a_taken_one_refused() {
        DecisionTest::<Usernames>::given(vec![registered("bob", "u1")])
            .when(register("ada", "u2"))
            .then(vec![registered("ada", "u2")]);
        DecisionTest::<Usernames>::given(vec![registered("ada", "u1")])
            .when(register("ada", "u2"))
            .then_rejected(|e| e.username == "ada");
        DecisionTest::<Usernames>::given(vec![
            registered("ada", "u1"),
            UsernameEvent::Released {
                username: "ada".into(),
                user: "u1".into(),
            },
        ])
        .when(register("ada", "u2"))
        .then(vec![registered("ada", "u2")]);
    }
}
