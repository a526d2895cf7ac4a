//! How a log store is opened.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use strata_core::Limits;

use crate::compress::Compression;
use crate::io::{FsStorage, Storage};

/// When an append is acknowledged relative to `fdatasync`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Durability {
    /// Acknowledge after the batch is on stable storage (the default).
    #[default]
    Always,
    /// Acknowledge after the write reaches the OS; fsync at most this often.
    /// A crash may lose up to one interval of acknowledged appends.
    Interval(Duration),
    /// Acknowledge after the write reaches the OS; fsync only when sealing a
    /// segment and on close. A crash may lose any acknowledged append not yet
    /// synced. For tests and bulk loads.
    None,
}

impl fmt::Display for Durability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Durability::Always => f.write_str("always"),
            Durability::Interval(d) => write!(f, "interval:{}ms", d.as_millis()),
            Durability::None => f.write_str("none"),
        }
    }
}

impl FromStr for Durability {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "always" => Ok(Durability::Always),
            "none" => Ok(Durability::None),
            "interval" => Ok(Durability::Interval(Duration::from_millis(
                DEFAULT_SYNC_INTERVAL_MS,
            ))),
            other => {
                let ms = other
                    .strip_prefix("interval:")
                    .map(|m| m.trim_end_matches("ms"))
                    .and_then(|m| m.parse::<u64>().ok())
                    .ok_or_else(|| {
                        format!(
                            "unknown durability `{other}`: expected always, interval, interval:<ms> or none"
                        )
                    })?;
                Ok(Durability::Interval(Duration::from_millis(ms)))
            }
        }
    }
}

/// Default fsync interval of `Durability::Interval`, in milliseconds.
pub const DEFAULT_SYNC_INTERVAL_MS: u64 = 10;
/// Default maximum segment size: 256 MiB.
pub const DEFAULT_MAX_SEGMENT_BYTES: u64 = 256 * 1024 * 1024;
/// Default of [`LogConfig::scavenge_bytes_per_second`].
pub const DEFAULT_SCAVENGE_BYTES_PER_SECOND: u64 = 256 * 1024 * 1024;
/// Default bound of the writer's queue, in requests.
pub const DEFAULT_WRITE_QUEUE_REQUESTS: usize = 4096;
/// Default cap on the bytes one group commit writes.
pub const DEFAULT_MAX_BATCH_BYTES: usize = 16 * 1024 * 1024;
/// Default: write the stream checkpoint every this many sealed segments.
pub const DEFAULT_STREAM_CHECKPOINT_EVERY_SEGMENTS: u32 = 4;

/// Everything [`LogStore::open`](crate::LogStore::open) needs.
#[derive(Clone)]
pub struct LogConfig {
    /// The data directory.
    pub dir: PathBuf,
    /// When appends are acknowledged.
    pub durability: Durability,
    /// Size at which a segment is sealed and a new one started.
    pub max_segment_bytes: u64,
    /// Input limits.
    pub limits: Limits,
    /// Bound of the writer's request queue; callers wait when it is full.
    pub write_queue_requests: usize,
    /// Most bytes one group commit writes before syncing.
    pub max_batch_bytes: usize,
    /// How often (in sealed segments) the stream index is checkpointed.
    pub stream_checkpoint_every_segments: u32,
    /// The file system (tests inject faults here).
    pub storage: Arc<dyn Storage>,
    /// Compress sealed segments with zstd (off by default: reads of old
    /// events then cost a block decompression).
    pub compression: Option<Compression>,
    /// Open a damaged store read-only instead of refusing it: recovery steps
    /// over each damaged run of bytes to the next frame that passes its
    /// check, everything outside the damage is served, a read that touches
    /// the damage fails with an error naming it (and where reading can go
    /// on), every write is refused, and no segment file is changed.
    pub allow_damaged: bool,
    /// Most bytes of segments a scavenge reads per second (0: no limit), so
    /// appends and reads go on while it runs.
    pub scavenge_bytes_per_second: u64,
}

impl LogConfig {
    /// Defaults for a data directory.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        LogConfig {
            dir: dir.into(),
            durability: Durability::Always,
            max_segment_bytes: DEFAULT_MAX_SEGMENT_BYTES,
            limits: Limits::default(),
            write_queue_requests: DEFAULT_WRITE_QUEUE_REQUESTS,
            max_batch_bytes: DEFAULT_MAX_BATCH_BYTES,
            stream_checkpoint_every_segments: DEFAULT_STREAM_CHECKPOINT_EVERY_SEGMENTS,
            storage: Arc::new(FsStorage),
            compression: None,
            allow_damaged: false,
            scavenge_bytes_per_second: DEFAULT_SCAVENGE_BYTES_PER_SECOND,
        }
    }

    /// Sets [`LogConfig::scavenge_bytes_per_second`].
    pub fn scavenge_bytes_per_second(mut self, n: u64) -> Self {
        self.scavenge_bytes_per_second = n;
        self
    }

    /// Opens a damaged store read-only (see [`LogConfig::allow_damaged`]).
    pub fn allow_damaged(mut self, yes: bool) -> Self {
        self.allow_damaged = yes;
        self
    }

    /// Compresses sealed segments.
    pub fn compression(mut self, c: Option<Compression>) -> Self {
        self.compression = c;
        self
    }

    /// Sets the durability mode.
    pub fn durability(mut self, d: Durability) -> Self {
        self.durability = d;
        self
    }

    /// Sets the segment size.
    pub fn max_segment_bytes(mut self, n: u64) -> Self {
        self.max_segment_bytes = n;
        self
    }

    /// Sets the storage implementation.
    pub fn storage(mut self, s: Arc<dyn Storage>) -> Self {
        self.storage = s;
        self
    }

    /// Sets the input limits.
    pub fn limits(mut self, l: Limits) -> Self {
        self.limits = l;
        self
    }
}

impl fmt::Debug for LogConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogConfig")
            .field("dir", &self.dir)
            .field("durability", &self.durability)
            .field("max_segment_bytes", &self.max_segment_bytes)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// The largest frame `verify` accepts when it does not know the store's
/// configured segment size: the format's limit.
pub const MAX_SEGMENT_BYTES_FOR_VERIFY: u64 = crate::format::MAX_SEGMENT_BYTES_LIMIT;
