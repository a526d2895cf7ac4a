//! # strata-log
//!
//! Strata's embedded durable event store, the default backend: append-only
//! segment files of checksummed frames, one writer thread with group commit,
//! per-segment indexes persisted when a segment is sealed, crash recovery
//! that cuts a torn tail and never an acknowledged append. The on-disk format
//! is described in `docs/log-format.md`.
//!
//! Where things are: `store` is the `LogStore` face; `recovery` opens a
//! directory (replay, the torn-tail rule); `state` owns what the writer,
//! readers and background threads share; `writer` commits batches in stages
//! (decide, encode, commit, seal); `read` serves streams, `$all` and
//! subscription pages; `background` writes sealed indexes and compresses
//! sealed segments. The bytes on disk are `format` (segments, frames,
//! records), `index` (per-segment index files), `compress` (compressed
//! segments) and `streams` (the stream checkpoint); each decodes through
//! `decode`, whose errors are typed and whose reads are bounds-checked.
//! `backup` copies a store while it is in use, and restores it.

#![cfg_attr(not(test), deny(clippy::unwrap_used))]

mod admin;
mod background;
pub mod backup;
pub mod checkpoint;
pub mod compress;
pub mod config;
mod dcb;
pub mod decode;
pub mod format;
#[doc(hidden)]
pub mod fuzzing;
pub mod index;
pub mod inspect;
pub mod io;
pub mod powercut;
mod read;
mod recovery;
pub mod scavenge;
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
