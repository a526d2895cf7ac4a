//! The one error type every store returns.

use crate::event::EventId;
use crate::stream_id::StreamId;
use crate::version::{CurrentVersion, ExpectedVersion, Position};

/// Result alias used throughout Strata's store layer.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong when talking to an event store.
///
/// Each variant says what happened and, where it can, what to do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The optimistic-concurrency guard of an append or delete failed.
    #[error("stream `{stream}` is at {actual}, expected {expected}: reload the stream and retry")]
    WrongExpectedVersion {
        /// The stream whose guard failed.
        stream: StreamId,
        /// What the caller expected.
        expected: ExpectedVersion,
        /// What the stream actually was when the guard was checked.
        actual: CurrentVersion,
    },

    /// The stream was tombstoned (hard-deleted): it can never be written or read again.
    #[error("stream `{stream}` was permanently deleted (tombstoned)")]
    StreamDeleted {
        /// The tombstoned stream.
        stream: StreamId,
    },

    /// The stream has no readable events: it never existed or was soft-deleted.
    #[error("stream `{stream}` does not exist")]
    StreamNotFound {
        /// The missing stream.
        stream: StreamId,
    },

    /// The input was refused before anything was written.
    #[error("invalid input: {reason}")]
    InvalidInput {
        /// What is wrong, in words a caller can act on.
        reason: String,
    },

    /// An append is over one of the store's size limits ([`crate::Limits`]):
    /// an event's bytes, the events in one append, or their total bytes.
    /// Nothing was written; split the append, or shrink the event.
    #[error("over a size limit: {reason}")]
    TooLarge {
        /// Which limit, the size found and the limit, in words a caller can
        /// act on.
        reason: String,
    },

    /// An append re-sent event ids that are recorded, but not as this exact append.
    ///
    /// A retry must send the same events, to the same stream, in the same order;
    /// anything else that reuses recorded ids is refused.
    #[error("event id {event_id} is already recorded: {reason}")]
    IdempotencyConflict {
        /// The first offending event id.
        event_id: EventId,
        /// Why this is not an exact retry.
        reason: String,
    },

    /// Stored data failed its checksum or could not be decoded. It is never served.
    #[error("corrupt data in {location}: {reason}")]
    Corrupt {
        /// Where: a file and byte offset, a table and key, ...
        location: String,
        /// What check failed.
        reason: String,
    },

    /// An I/O operation failed.
    #[error("I/O error while {context}: {source}")]
    Io {
        /// What the store was doing.
        context: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },

    /// The store refuses writes after an earlier failure it cannot safely retry
    /// (for example a failed fsync). Reopen the store to recover.
    #[error("store is read-only after an earlier failure ({reason}); reopen it to recover")]
    Poisoned {
        /// The failure that stopped writes.
        reason: String,
    },

    /// The store does not offer this operation (a backup of the memory
    /// store, for example).
    #[error("this store does not support {what}")]
    Unsupported {
        /// The operation.
        what: String,
    },

    /// A conditional append's condition failed: an event recorded after
    /// the condition's position matches its query. Nothing was written.
    #[error("the append condition failed: the event at position {position} matches its query")]
    ConditionFailed {
        /// The first matching event's position.
        position: Position,
    },

    /// No consumer group has this name.
    #[error("there is no consumer group `{group}`")]
    GroupNotFound {
        /// The name asked for.
        group: String,
    },

    /// The store was closed and accepts nothing more.
    #[error("store is closed")]
    Closed,

    /// A wait exceeded its limit.
    #[error("timed out after {millis} ms while {context}")]
    Timeout {
        /// What was being waited for.
        context: String,
        /// The limit that was exceeded.
        millis: u64,
    },

    /// Any other backend failure (database driver, network, ...).
    #[error("backend error: {0}")]
    Backend(String),

    /// The store holds as many bytes of queued appends as its limit
    /// (`Limits::max_queued_append_bytes`) allows; nothing was written.
    /// Retry after a short pause.
    #[error("the store is overloaded: {queued} bytes of appends are queued and this one adds {adding}, over the limit of {limit}; retry later")]
    Overloaded {
        /// Bytes queued when the append came.
        queued: usize,
        /// The append's own bytes.
        adding: usize,
        /// The limit.
        limit: usize,
    },
}

impl Error {
    /// Shorthand for [`Error::InvalidInput`].
    pub fn invalid(reason: impl Into<String>) -> Self {
        Error::InvalidInput {
            reason: reason.into(),
        }
    }

    /// Shorthand for [`Error::TooLarge`].
    pub fn too_large(reason: impl Into<String>) -> Self {
        Error::TooLarge {
            reason: reason.into(),
        }
    }

    /// Shorthand for [`Error::Io`].
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// A short, stable name for the error's kind (`wrong_expected_version`,
    /// `invalid_input`, ...), used in metrics and HTTP bodies.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::WrongExpectedVersion { .. } => "wrong_expected_version",
            Error::StreamDeleted { .. } => "stream_deleted",
            Error::StreamNotFound { .. } => "stream_not_found",
            Error::InvalidInput { .. } => "invalid_input",
            Error::TooLarge { .. } => "payload_too_large",
            Error::IdempotencyConflict { .. } => "idempotency_conflict",
            Error::Corrupt { .. } => "corrupt",
            Error::Io { .. } => "io",
            Error::Poisoned { .. } => "poisoned",
            Error::Unsupported { .. } => "unsupported",
            Error::GroupNotFound { .. } => "group_not_found",
            Error::ConditionFailed { .. } => "condition_failed",
            Error::Closed => "closed",
            Error::Timeout { .. } => "timeout",
            Error::Backend(_) => "backend",
            Error::Overloaded { .. } => "overloaded",
        }
    }
}

/// `e` and each of its sources, as one line joined with `: `, skipping a
/// source whose text the line already holds. Drivers often nest the useful
/// part (a database error's own message says only "db error").
///
/// ```
/// let e = std::io::Error::other("disk full");
/// assert_eq!(strata_core::error::error_chain(&e), "disk full");
/// ```
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}
