//! Time travel: the state of an aggregate as of a version, a
//! global position or a time — `rebuild(E, t) = fold(filter(E, ts(e) ≤ t), S₀)`.
//!
//! A position or a time is first turned into the stream version of the last
//! event at or before it, by a binary search over the stream (positions and
//! record times never decrease along a stream); then the
//! aggregate is loaded up to that version, starting from the newest usable
//! snapshot at or before it (`rebuild_optimized`).

use chrono::{DateTime, Utc};
use strata_core::{Position, Version};

/// Which past state to load. Every bound is inclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AsOf {
    /// After the events up to this stream version (clamped to the stream's
    /// current version).
    Version(Version),
    /// After the stream's events whose position in `$all` is at or before this.
    Position(Position),
    /// After the stream's events recorded at or before this time.
    Time(DateTime<Utc>),
}

impl From<Position> for AsOf {
    fn from(p: Position) -> Self {
        AsOf::Position(p)
    }
}

impl From<DateTime<Utc>> for AsOf {
    fn from(t: DateTime<Utc>) -> Self {
        AsOf::Time(t)
    }
}
