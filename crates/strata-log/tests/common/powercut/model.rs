//! What the workload was told: acknowledged appends, snapshots and
//! checkpoints, and the one operation whose outcome the power cut left in
//! doubt.

use std::collections::BTreeMap;

use strata_core::{EventId, Position, StreamId};

use crate::common::Acked;

/// An operation that failed because the power went off: it may or may not
/// have happened, but if it did, it happened whole.
#[derive(Clone, Debug)]
pub enum Doubt {
    /// An append (single or multi-stream): each part's stream and event ids.
    Append(Vec<(StreamId, Vec<EventId>)>),
    /// A snapshot save (`Some(version)`) or delete (`None`) of a stream.
    Snapshot(StreamId, Option<u64>),
    /// A checkpoint save (`Some`) or reset (`None`).
    Checkpoint(String, Option<Position>),
}

/// Everything a reopened store must show.
#[derive(Clone, Debug, Default)]
pub struct Model {
    /// Every acknowledged append that must survive: all of them in
    /// `Durability::Always`, those a flush covered in `Durability::None`.
    pub acked: Vec<Acked>,
    /// `Durability::None`: appends acknowledged since the last flush, in
    /// order. A power cut keeps a prefix of them, each whole.
    pub unflushed: Vec<Acked>,
    /// Whether the store runs with `Durability::Always`.
    pub always: bool,
    /// Each stream's version: what the workload passes as expected.
    pub versions: BTreeMap<StreamId, u64>,
    /// Each stream's newest acknowledged snapshot version (`None` after a
    /// delete).
    pub snapshots: BTreeMap<StreamId, Option<u64>>,
    /// Each checkpoint's acknowledged position (`None` after a reset).
    pub checkpoints: BTreeMap<String, Option<Position>>,
    /// The operation in doubt, if the last round ended in a failed one.
    pub doubt: Option<Doubt>,
    /// The head position the workload last saw.
    pub head: Position,
}

impl Model {
    /// The stream's version as the workload knows it.
    pub fn version(&self, stream: &StreamId) -> u64 {
        self.versions.get(stream).copied().unwrap_or(0)
    }
}
