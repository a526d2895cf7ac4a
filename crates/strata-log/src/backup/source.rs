//! The log a backup copies, as of one moment: the sealed segments whole,
//! the last segment up to an end every byte before which is durable (or,
//! for a store another process has open, up to its last whole frame), and
//! the position of the last event before that end.

use std::path::PathBuf;
use std::sync::Arc;

use strata_core::Position;

use crate::io::StorageFile;

/// The log to copy.
pub(crate) struct LogView {
    /// Numbers of the segments before the last one (sealed: immutable).
    pub sealed: Vec<u32>,
    /// The last segment's number.
    pub active: u32,
    /// The last segment's bytes (an open handle: it reads the same bytes
    /// even if the segment is sealed, compressed and removed meanwhile).
    pub active_file: Arc<dyn StorageFile>,
    /// The last segment's file, for messages.
    pub active_path: PathBuf,
    /// Bytes of the last segment to copy: a frame boundary.
    pub end: u64,
    /// The position of the last event before `end` (0 when there is none).
    pub position: Position,
}
