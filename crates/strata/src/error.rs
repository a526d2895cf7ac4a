//! The framework's error type.

use strata_core::{CurrentVersion, ExpectedVersion, StreamId, Version};

/// Everything that can go wrong when loading an aggregate or executing a
/// command against it. `E` is the aggregate's own error type, returned by
/// [`Aggregate::handle`](crate::Aggregate::handle) when it rejects a command.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AggregateError<E> {
    /// The aggregate refused the command; nothing was written.
    #[error("command rejected: {0}")]
    Rejected(E),

    /// Other writers kept changing the stream: every attempt allowed by the
    /// [`RetryPolicy`](crate::RetryPolicy) lost the optimistic-concurrency race.
    #[error(
        "stream `{stream}` is at {actual}, expected {expected}, after {attempts} attempt(s): \
         too many concurrent writers on this aggregate; retry the command later"
    )]
    Conflict {
        /// The aggregate's stream.
        stream: StreamId,
        /// The version the last attempt loaded and expected.
        expected: ExpectedVersion,
        /// What the stream actually was when the last attempt appended.
        actual: CurrentVersion,
        /// How many attempts were made.
        attempts: u32,
    },

    /// The event store failed.
    #[error(transparent)]
    Store(#[from] strata_core::Error),

    /// An event or a state could not be turned into JSON or back.
    #[error("cannot (de)serialize {context}: {source}")]
    Serialization {
        /// What was being (de)serialized: `event 7 (`Deposited`) of `account-42``, ...
        context: String,
        /// The serde error.
        #[source]
        source: serde_json::Error,
    },

    /// A stored event's schema version cannot be brought to the version the
    /// code reads.
    #[error(
        "cannot upcast event type `{event_type}` from schema version {schema_version}: {reason}"
    )]
    Upcast {
        /// The stored event's type.
        event_type: String,
        /// The schema version where the upcast chain stopped.
        schema_version: u32,
        /// Why, and what to do.
        reason: String,
    },
}

impl<E> AggregateError<E> {
    /// The domain error, if the aggregate rejected the command.
    pub fn rejection(&self) -> Option<&E> {
        match self {
            AggregateError::Rejected(e) => Some(e),
            _ => None,
        }
    }

    /// Whether this is an exhausted optimistic-concurrency conflict.
    pub fn is_conflict(&self) -> bool {
        matches!(self, AggregateError::Conflict { .. })
    }
}

/// A failure to decode or upcast one stored event, before it is tied to an
/// aggregate's error type.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The payload is not what the event type's schema expects.
    #[error("cannot decode event {version} (`{event_type}`) of `{stream}`: {source}")]
    Serialization {
        /// The event's stream.
        stream: StreamId,
        /// The event's version.
        version: Version,
        /// The event's type.
        event_type: String,
        /// The serde error.
        #[source]
        source: serde_json::Error,
    },
    /// The event is not JSON, or its schema version is unreadable.
    #[error("cannot decode event {version} (`{event_type}`) of `{stream}`: {reason}")]
    Invalid {
        /// The event's stream.
        stream: StreamId,
        /// The event's version.
        version: Version,
        /// The event's type.
        event_type: String,
        /// What is wrong.
        reason: String,
    },
    /// No upcaster path to the code's schema version.
    #[error(
        "cannot upcast event type `{event_type}` from schema version {schema_version}: {reason}"
    )]
    Upcast {
        /// The stored event's type.
        event_type: String,
        /// The schema version where the upcast chain stopped.
        schema_version: u32,
        /// Why, and what to do.
        reason: String,
    },
}

impl<E> From<DecodeError> for AggregateError<E> {
    fn from(e: DecodeError) -> Self {
        match e {
            DecodeError::Serialization {
                stream,
                version,
                event_type,
                source,
            } => AggregateError::Serialization {
                context: format!("event {version} (`{event_type}`) of `{stream}`"),
                source,
            },
            DecodeError::Invalid {
                stream,
                version,
                event_type,
                reason,
            } => AggregateError::Store(strata_core::Error::Corrupt {
                location: format!("event {version} (`{event_type}`) of `{stream}`"),
                reason,
            }),
            DecodeError::Upcast {
                event_type,
                schema_version,
                reason,
            } => AggregateError::Upcast {
                event_type,
                schema_version,
                reason,
            },
        }
    }
}
