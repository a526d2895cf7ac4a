//! What an append asks for and what it reports.

use serde::{Deserialize, Serialize};

use crate::event::NewEvent;
use crate::stream_id::StreamId;
use crate::version::{ExpectedVersion, Position, Version};

/// What a successful append reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AppendResult {
    /// The stream's version after the append: pass it as `Exact(..)` next time.
    pub next_expected_version: Version,
    /// Position of the append's first event in `$all`.
    pub first_position: Position,
    /// Position of the append's last event in `$all`.
    pub last_position: Position,
}

/// One stream's part of a multi-stream append.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamAppend {
    /// The stream to append to.
    pub stream: StreamId,
    /// Its guard.
    pub expected: ExpectedVersion,
    /// Its events, in order.
    pub events: Vec<NewEvent>,
}

impl StreamAppend {
    /// Bundles a stream, a guard and events.
    pub fn new(stream: StreamId, expected: ExpectedVersion, events: Vec<NewEvent>) -> Self {
        StreamAppend {
            stream,
            expected,
            events,
        }
    }
}
