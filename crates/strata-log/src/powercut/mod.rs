//! A power-cut simulator: a [`Storage`](crate::io::Storage) in memory that
//! knows what a power cut would keep.
//!
//! [`PowerCutDisk`] keeps, for each file, the *durable* content (what the
//! last `sync_data` covered) apart from the writes and size changes made
//! since, as an ordered list of operations; and for each directory the
//! *durable* entries (as of the last `sync_dir` of that directory) apart
//! from the creates, renames and removes made since. Reads see everything
//! written, as a running system's page cache does.
//!
//! At a chosen moment the disk loses power: [`PowerCutDisk::power_off_after`]
//! makes every operation after a given number fail, and
//! [`PowerCutDisk::cut`] builds the disk a machine would find after the
//! reboot and returns it as a fresh disk whose every byte and entry is
//! durable. What survives of the unsynced operations is decided by the
//! [`PowerCut`] mode and a seed: the same operations and the same seed give
//! the same disk, byte for byte (see [`image`] for how the choices are
//! drawn).
//!
//! What it does not model: directories themselves are durable as soon as
//! they are created; a `sync_data` makes a file's content durable but not
//! its name; sectors are never corrupted, only kept, lost (old content, or
//! zeros past the old end) or torn at a sector boundary; advisory lock files
//! (`LOCK`) are taken on the real file system by the stores, not through
//! [`Storage`](crate::io::Storage), so the directory a store is opened in
//! must exist on the real file system. `docs/testing-durability.md`
//! describes the tests built on it.
//!
//! [`planted`] holds storage wrappers that plant durability bugs, so tests
//! can prove the simulator catches them.

mod disk;
mod file;
pub mod image;
mod namespace;
pub mod planted;

pub use disk::{DiskStats, PowerCutDisk};

use std::fmt;
use std::str::FromStr;

/// What a power cut keeps of the operations that were not yet durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PowerCut {
    /// Only what was synced survives: every unsynced write and directory
    /// change is lost.
    SyncedOnly,
    /// Writes reach the disk in the order they were made: for each file a
    /// prefix of its unsynced writes survives, the first one not kept
    /// possibly torn (a prefix of its sectors kept); for each directory a
    /// prefix of its unsynced creates, renames and removes survives.
    InOrder,
    /// Writes reach the disk in any order: each sector of each unsynced
    /// write, each size change and each directory change survives or not on
    /// its own, so a later write may survive an earlier one; a file's new
    /// size may survive while the data written past its old end is lost
    /// (read back as zeros).
    Reordered,
    /// Everything written survives, synced or not: a process crash rather
    /// than a power cut.
    KeepAll,
}

impl PowerCut {
    /// Every mode, in a fixed order.
    pub const ALL: [PowerCut; 4] = [
        PowerCut::SyncedOnly,
        PowerCut::InOrder,
        PowerCut::Reordered,
        PowerCut::KeepAll,
    ];

    /// The mode's name, as [`FromStr`] reads it.
    pub fn name(self) -> &'static str {
        match self {
            PowerCut::SyncedOnly => "synced-only",
            PowerCut::InOrder => "in-order",
            PowerCut::Reordered => "reordered",
            PowerCut::KeepAll => "keep-all",
        }
    }
}

impl fmt::Display for PowerCut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not one of [`PowerCut::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown power-cut mode `{0}`: expected synced-only, in-order, reordered or keep-all")]
pub struct UnknownPowerCut(pub String);

impl FromStr for PowerCut {
    type Err = UnknownPowerCut;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PowerCut::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| UnknownPowerCut(s.to_string()))
    }
}

#[cfg(test)]
mod tests;
