//! # strata-core
//!
//! The vocabulary of Strata, an event-sourcing database: streams, events,
//! versions and positions; the [`EventStore`] contract every backend
//! implements; the [`SnapshotStore`] and [`CheckpointStore`] traits; and
//! [`MemoryStore`], the whole contract in memory.
//!
//! See `docs/adr/0001-versions-and-positions.md` for the numbering
//! conventions.

#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod admin;
pub mod append;
pub mod append_rules;
pub mod checkpoint;
pub mod clock;
pub mod dcb;
pub mod error;
pub mod event;
pub mod filter;
#[doc(hidden)]
pub mod fuzzing;
pub mod group;
pub mod handoff;
pub mod limits;
pub mod memory;
pub mod metadata;
pub mod read;
pub mod snapshot;
pub mod store;
pub mod stream_id;
pub mod stream_info;
pub mod stream_list;
pub mod subscription;
pub mod version;

pub use admin::{BackupReport, ScavengeOptions, ScavengeReport, ScavengeStatus, StoreAdmin};
pub use append::{AppendResult, StreamAppend};
pub use checkpoint::{CheckpointStore, MemoryCheckpointStore};
pub use dcb::{AppendCondition, Query, QueryItem, Tag};
pub use error::{Error, Result};
pub use event::{ContentType, EventId, JsonChecked, Metadata, NewEvent, RecordedEvent};
pub use filter::ReadFilter;
pub use limits::Limits;
pub use memory::MemoryStore;
pub use metadata::{Retention, StreamMetadata, VersionedMetadata};
pub use read::{Direction, ReadWindow, FROM_END};
pub use snapshot::{MemorySnapshotStore, Snapshot, SnapshotStore};
pub use store::EventStore;
pub use stream_id::StreamId;
pub use stream_info::{StreamInfo, StreamState};
pub use stream_list::{StreamListQuery, StreamPage, MAX_LIST_STREAMS};
pub use subscription::{SubscribeFrom, Subscription, SubscriptionMessage, SubscriptionSource};
pub use version::{CurrentVersion, ExpectedVersion, Position, Version, EXPECTED_VERSION_SYNTAX};

/// Re-exported so implementors of the traits use the same macro version.
pub use async_trait::async_trait;
pub use bytes::Bytes;
