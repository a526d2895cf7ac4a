//! What a store reports about one stream.

use serde::{Deserialize, Serialize};

use crate::stream_id::StreamId;
use crate::version::{Position, Version};

/// Whether a stream can be read and written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamState {
    /// It has live events.
    Live,
    /// Soft-deleted and not written since: reads say "not found"; appending
    /// re-creates it and its versions continue.
    Deleted,
    /// Hard-deleted: every read and write fails with `StreamDeleted`, for ever.
    Tombstoned,
}

/// What a store knows about one stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamInfo {
    /// The stream.
    pub stream: StreamId,
    /// Version of its last event ever appended (0 if none).
    pub version: Version,
    /// First version a read can return; versions before it were deleted.
    /// Equal to `version + 1` when nothing is readable.
    pub first_readable_version: Version,
    /// Live, deleted or tombstoned.
    pub state: StreamState,
    /// Position of its last event, if it ever had one.
    pub last_position: Option<Position>,
}
