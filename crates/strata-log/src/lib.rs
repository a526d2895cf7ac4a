//! # strata-log
//!
//! Strata's embedded durable event store, the default backend: append-only
//! segment files of checksummed frames, one writer thread with group commit,
//! per-segment indexes persisted when a segment is sealed, crash recovery
//! that cuts a torn tail and never an acknowledged append. The on-disk format
//! is described in `docs/log-format.md`.

#![cfg_attr(not(test), deny(clippy::unwrap_used))]

mod background;
pub mod checkpoint;
pub mod compress;
pub mod config;
pub mod decode;
pub mod format;
pub mod index;
pub mod io;
mod read;
mod recovery;
pub mod segment;
pub mod snapshot;
mod state;
pub mod store;
pub mod streams;
#[cfg(feature = "testing")]
pub mod testing;
pub mod verify;
mod writer;

pub use checkpoint::LogCheckpointStore;
pub use config::{Durability, LogConfig};
pub use snapshot::LogSnapshotStore;
pub use store::LogStore;
