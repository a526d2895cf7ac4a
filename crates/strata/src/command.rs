//! What a caller sends with a command, and what it gets back.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use strata_core::{Position, StreamId, Version};
use uuid::Uuid;

/// Context of one command: its id and the metadata its events will carry.
///
/// Every event a command records gets `causation_id` = the command id and
/// the caller's `correlation_id` — or, when the caller has none, the command
/// id, which starts a new correlation. `user_id`, `source` and `extra` are
/// copied as they are.
///
/// ```
/// use strata::CommandMeta;
/// let meta = CommandMeta::new()
///     .with_correlation_id("checkout-17")
///     .with_user_id("ada");
/// assert!(meta.command_id.is_none()); // a fresh one is generated
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommandMeta {
    /// The command's id; a UUID v7 is generated when `None` (see [`new_command_id`]).
    pub command_id: Option<Uuid>,
    /// The correlation id of the request this command belongs to.
    pub correlation_id: Option<String>,
    /// The user on whose behalf the command runs.
    pub user_id: Option<String>,
    /// The program or service that sends it.
    pub source: Option<String>,
    /// Anything else, copied into each event's metadata. The key
    /// [`SCHEMA_METADATA_KEY`](crate::event::SCHEMA_METADATA_KEY) is reserved
    /// and dropped from here.
    pub extra: BTreeMap<String, String>,
}

impl CommandMeta {
    /// Empty metadata: a fresh command id, a fresh correlation.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the command id (to make the command traceable from the caller's side).
    pub fn with_command_id(mut self, id: Uuid) -> Self {
        self.command_id = Some(id);
        self
    }

    /// Sets the correlation id.
    pub fn with_correlation_id(mut self, id: impl Into<String>) -> Self {
        self.correlation_id = Some(id.into());
        self
    }

    /// Sets the user id.
    pub fn with_user_id(mut self, id: impl Into<String>) -> Self {
        self.user_id = Some(id.into());
        self
    }

    /// Sets the source.
    pub fn with_source(mut self, source: impl Into<String>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// Adds a free string pair.
    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.extra.insert(key.into(), value.into());
        self
    }
}

/// The outcome of a command that the aggregate accepted.
#[derive(Clone, Debug, PartialEq)]
pub struct Committed<E> {
    /// The aggregate's stream.
    pub stream: StreamId,
    /// The events recorded, in order; empty when the command decided nothing
    /// needed to happen (then nothing was written).
    pub events: Vec<E>,
    /// The stream's version after the command.
    pub version: Version,
    /// Positions in `$all` of the first and last recorded event; `None` when
    /// nothing was written.
    pub positions: Option<(Position, Position)>,
    /// The command's id (the events' causation id).
    pub command_id: Uuid,
    /// The events' correlation id.
    pub correlation_id: String,
    /// How many times the command was handled (1 unless it lost a
    /// concurrency race and was retried).
    pub attempts: u32,
}

impl<E> Committed<E> {
    /// Whether the command recorded no event.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }
}

thread_local! {
    /// SplitMix64 state, seeded once per thread from the OS.
    static ID_RNG: Cell<u64> = Cell::new(Uuid::new_v4().as_u64_pair().0);
}

fn next_random() -> u64 {
    ID_RNG.with(|state| {
        // SplitMix64: a full-period generator with well-mixed output.
        let s = state.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
        state.set(s);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    })
}

/// A fresh, time-ordered command id (UUID v7).
///
/// Unlike `Uuid::now_v7`, which asks the OS for randomness on every call (a
/// system call that dominated the cost of a cached command), its 74 random
/// bits come from a per-thread generator seeded once from the OS. Ids are
/// for tracing and causation, not secrets, so that is random enough.
pub fn new_command_id() -> Uuid {
    uuid_v7_at(unix_millis())
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub(crate) fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A UUID v7 with timestamp `millis` and fresh random bits.
pub(crate) fn uuid_v7_at(millis: u64) -> Uuid {
    let (a, b) = (next_random(), next_random());
    let mut bytes = [0u8; 10];
    bytes[..8].copy_from_slice(&a.to_le_bytes());
    bytes[8..].copy_from_slice(&b.to_le_bytes()[..2]);
    uuid::Builder::from_unix_timestamp_millis(millis, &bytes).into_uuid()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_ids_are_v7_and_distinct() {
        let ids: std::collections::HashSet<Uuid> = (0..10_000).map(|_| new_command_id()).collect();
        assert_eq!(ids.len(), 10_000);
        assert!(ids.iter().all(|id| id.get_version_num() == 7));
    }
}
