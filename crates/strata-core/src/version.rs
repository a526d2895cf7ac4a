//! Versions (place inside a stream), positions (place in the global log) and
//! the optimistic-concurrency guard. See `docs/adr/0001-versions-and-positions.md`.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The 1-based place of an event inside its stream. A stream's version is the
/// number of events ever appended to it; 0 means it has none.
pub type Version = u64;

/// An event's place in the global log `$all`.
///
/// Positions start at 1 and strictly increase in commit order; they need not be
/// contiguous. [`Position::START`] (0) comes before every event, so reading
/// `$all` from it reads everything.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Position(pub u64);

impl Position {
    /// Before the first event.
    pub const START: Position = Position(0);

    /// After the last event, however many are appended: the `before` bound
    /// of [`EventStore::read_all_backward`](crate::EventStore::read_all_backward)
    /// that reads from the end of `$all`. No event has this position.
    pub const END: Position = Position(u64::MAX);

    /// The position right after this one; reading from it reads what follows `self`.
    pub fn next(self) -> Position {
        Position(self.0.saturating_add(1))
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl From<u64> for Position {
    fn from(v: u64) -> Self {
        Position(v)
    }
}

/// The optimistic-concurrency guard of an append or a delete.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ExpectedVersion {
    /// No check.
    Any,
    /// The stream must have no live events: it never existed, or it was
    /// soft-deleted and not written since.
    NoStream,
    /// The stream must have live events.
    StreamExists,
    /// The stream's version must be exactly this. `Exact(0)` is the same as
    /// [`ExpectedVersion::NoStream`].
    Exact(Version),
}

impl ExpectedVersion {
    /// Whether a stream that is at `current` satisfies this guard.
    pub fn accepts(self, current: CurrentVersion) -> bool {
        match (self, current) {
            (ExpectedVersion::Any, _) => true,
            // `Exact(0)` reads "the stream has no events", the same as `NoStream`.
            (ExpectedVersion::NoStream | ExpectedVersion::Exact(0), CurrentVersion::NoStream) => {
                true
            }
            (ExpectedVersion::StreamExists, CurrentVersion::Current(_)) => true,
            (ExpectedVersion::Exact(v), CurrentVersion::Current(c)) => v == c,
            _ => false,
        }
    }
}

impl fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExpectedVersion::Any => f.write_str("any version"),
            ExpectedVersion::NoStream => f.write_str("no stream"),
            ExpectedVersion::StreamExists => f.write_str("an existing stream"),
            ExpectedVersion::Exact(v) => write!(f, "version {v}"),
        }
    }
}

/// The words an expected version is written with in the HTTP API and on
/// the command line, besides a version number.
pub const EXPECTED_VERSION_SYNTAX: &str =
    "expected_version must be \"any\", \"no_stream\", \"exists\" or a version number";

/// Parses the API's spelling: `any`, `no_stream`, `exists` or a version
/// number.
///
/// ```
/// use strata_core::ExpectedVersion;
/// assert_eq!("no_stream".parse(), Ok(ExpectedVersion::NoStream));
/// assert_eq!("7".parse(), Ok(ExpectedVersion::Exact(7)));
/// assert!("seven".parse::<ExpectedVersion>().is_err());
/// ```
impl std::str::FromStr for ExpectedVersion {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "any" => Ok(ExpectedVersion::Any),
            "no_stream" => Ok(ExpectedVersion::NoStream),
            "exists" => Ok(ExpectedVersion::StreamExists),
            n => n
                .parse::<u64>()
                .map(ExpectedVersion::Exact)
                .map_err(|_| format!("{EXPECTED_VERSION_SYNTAX}, got {s:?}")),
        }
    }
}

/// What a stream is when a guard is checked: absent, or at a version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CurrentVersion {
    /// The stream has no live events (never written, or soft-deleted).
    NoStream,
    /// The stream has live events and its last one has this version.
    Current(Version),
}

impl fmt::Display for CurrentVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CurrentVersion::NoStream => f.write_str("no stream"),
            CurrentVersion::Current(v) => write!(f, "version {v}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guards() {
        use CurrentVersion::*;
        use ExpectedVersion as E;
        assert!(E::Any.accepts(NoStream));
        assert!(E::Any.accepts(Current(3)));
        assert!(E::NoStream.accepts(NoStream));
        assert!(!E::NoStream.accepts(Current(1)));
        assert!(!E::StreamExists.accepts(NoStream));
        assert!(E::StreamExists.accepts(Current(1)));
        assert!(E::Exact(3).accepts(Current(3)));
        assert!(!E::Exact(3).accepts(Current(4)));
        assert!(E::Exact(0).accepts(NoStream));
        assert!(!E::Exact(1).accepts(NoStream));
    }
}
