//! Maintenance a store may offer beyond the [`EventStore`](crate::EventStore)
//! contract: consistent backups and scavenging (reclaiming the space of
//! events no read can return any more). The server and the CLI reach it
//! through [`StoreAdmin`], so neither names a backend.

use std::path::Path;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::version::Position;

/// What a backup did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupReport {
    /// The log position the backup holds everything up to (inclusive).
    pub position: Position,
    /// Files the backup holds.
    pub files: u64,
    /// Files copied (or linked) by this run; the rest were already there.
    pub files_copied: u64,
    /// Bytes of all files the backup holds.
    pub bytes: u64,
    /// Bytes copied by this run (hard links count as none).
    pub bytes_copied: u64,
    /// Wall time, in milliseconds.
    pub millis: u64,
}

/// What to scavenge.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScavengeOptions {
    /// Only rewrite segments that hold events of erased streams.
    pub erased_only: bool,
}

/// What a scavenge did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScavengeReport {
    /// Segments looked at.
    pub segments_scanned: u64,
    /// Segments rewritten.
    pub segments_rewritten: u64,
    /// Bytes the rewritten segments used on disk before.
    pub bytes_before: u64,
    /// Bytes they use after.
    pub bytes_after: u64,
    /// Events whose bytes were removed.
    pub events_removed: u64,
    /// Wall time, in milliseconds.
    pub millis: u64,
}

/// A scavenge's progress and the totals since the store opened, for
/// `/metrics`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScavengeStatus {
    /// Whether a scavenge is running.
    pub running: bool,
    /// Segments the running (or last) scavenge looks at.
    pub segments_total: u64,
    /// Of those, how many it has looked at.
    pub segments_done: u64,
    /// Segments rewritten since the store opened.
    pub segments_rewritten: u64,
    /// Events removed since the store opened.
    pub events_removed: u64,
    /// Bytes on disk given back since the store opened.
    pub bytes_reclaimed: u64,
}

/// Backups and scavenging, where a store offers them. Every method has a
/// default that fails with [`Error::Unsupported`].
#[async_trait]
pub trait StoreAdmin: Send + Sync {
    /// Copies a consistent backup of the store, as of now, into `dest`.
    /// When `dest` holds an earlier backup of the same store, only what is
    /// new is copied.
    async fn backup(&self, dest: &Path) -> Result<BackupReport> {
        let _ = dest;
        Err(Error::Unsupported {
            what: "backups".into(),
        })
    }

    /// Reclaims the space of events no read can return: of deleted,
    /// tombstoned and erased streams, and those retention hides.
    async fn scavenge(&self, options: ScavengeOptions) -> Result<ScavengeReport> {
        let _ = options;
        Err(Error::Unsupported {
            what: "scavenging".into(),
        })
    }

    /// The scavenge progress and totals, where the store scavenges.
    fn scavenge_status(&self) -> Option<ScavengeStatus> {
        None
    }
}
