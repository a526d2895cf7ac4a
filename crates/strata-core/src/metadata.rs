//! Stream metadata: per-stream retention settings (`max_count`, `max_age`,
//! `truncate_before`) and free-form custom JSON, and the retention rule
//! every backend applies to reads.
//!
//! Metadata is kept as events of its own, in the system stream `$$NAME`
//! beside stream `NAME` (event type `$metadata`, data the JSON of
//! [`StreamMetadata`]): durable and ordered like any event, guarded by the
//! metadata stream's version (the *metadata version*), and carried by
//! exports and backups with the log. A metadata stream keeps only its
//! latest event readable (an implicit `max_count` of 1). See
//! `docs/adr/0017-stream-metadata-retention-and-scavenging.md`.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::append_rules::StreamHead;
use crate::error::{Error, Result};
use crate::event::{NewEvent, RecordedEvent};
use crate::stream_id::StreamId;
use crate::version::Version;

/// The event type of a metadata event.
pub const METADATA_EVENT_TYPE: &str = "$metadata";
/// The prefix that turns a stream's name into its metadata stream's name.
pub const METADATA_STREAM_PREFIX: &str = "$$";
/// The most bytes of JSON one stream's metadata may take.
pub const MAX_METADATA_BYTES: usize = 64 * 1024;

/// One stream's settings. Every field is optional; an absent one sets nothing.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamMetadata {
    /// Keep only the newest `max_count` events readable (at least 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_count: Option<u64>,
    /// Keep only events recorded within the last `max_age` seconds readable
    /// (at least 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<u64>,
    /// Versions below this one are not readable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncate_before: Option<Version>,
    /// Anything the application wants to keep with the stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom: Option<serde_json::Value>,
}

/// Metadata as stored: the settings and the metadata version that wrote them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VersionedMetadata {
    /// The metadata stream's version: 1 for the first setting.
    pub version: Version,
    /// The settings.
    pub metadata: StreamMetadata,
}

impl StreamMetadata {
    /// Checks the settings: counts and ages of at least 1, a bounded size.
    pub fn validate(&self) -> Result<()> {
        if self.max_count == Some(0) {
            return Err(Error::invalid("max_count must be at least 1"));
        }
        if self.max_age == Some(0) {
            return Err(Error::invalid("max_age must be at least 1 second"));
        }
        if self.max_age.is_some_and(|a| a > MAX_AGE_SECONDS) {
            return Err(Error::invalid(format!(
                "max_age must be at most {MAX_AGE_SECONDS} seconds"
            )));
        }
        let len = serde_json::to_vec(self).map_or(usize::MAX, |b| b.len());
        if len > MAX_METADATA_BYTES {
            return Err(Error::invalid(format!(
                "stream metadata takes {len} bytes of JSON, over the limit of {MAX_METADATA_BYTES}"
            )));
        }
        Ok(())
    }

    /// Whether any retention setting is present.
    pub fn has_retention(&self) -> bool {
        self.max_count.is_some() || self.max_age.is_some() || self.truncate_before.is_some()
    }

    /// The metadata event that stores these settings.
    pub fn to_event(&self) -> Result<NewEvent> {
        self.validate()?;
        NewEvent::json(METADATA_EVENT_TYPE, self)
            .map_err(|e| Error::invalid(format!("stream metadata: {e}")))
    }

    /// The settings a metadata event's data holds.
    pub fn from_json(data: &[u8]) -> Result<Self> {
        if data.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(Error::invalid("stream metadata must be a JSON object"));
        }
        serde_json::from_slice(data)
            .map_err(|e| Error::invalid(format!("stream metadata is not valid: {e}")))
    }

    /// The settings and version a recorded metadata event holds.
    pub fn from_event(event: &RecordedEvent) -> Result<VersionedMetadata> {
        Ok(VersionedMetadata {
            version: event.version,
            metadata: Self::from_json(&event.data)?,
        })
    }
}

/// The largest `max_age`: 100 years.
pub const MAX_AGE_SECONDS: u64 = 100 * 365 * 24 * 3600;

/// The metadata stream of `stream` (`$$NAME`).
pub fn metadata_stream(stream: &StreamId) -> Result<StreamId> {
    StreamId::system(format!("{METADATA_STREAM_PREFIX}{}", stream.as_str()))
}

/// The metadata stream an erasure of `stream` erases with it (its settings
/// and custom JSON may hold the same person's data): `$$NAME` for a stream
/// `NAME`, `None` when `stream` is itself a metadata stream. Every backend
/// tombstones it and removes its events together with `stream`'s, so after
/// an erasure `stream_metadata` reads `None` and setting it again fails
/// with `StreamDeleted` (`docs/adr/0019-postgres-scavenging.md`).
pub fn erased_metadata_stream(stream: &StreamId) -> Option<StreamId> {
    if metadata_target(stream.as_str()).is_some() {
        return None;
    }
    metadata_stream(stream).ok()
}

/// The stream whose metadata stream is `name`, if `name` is one.
pub fn metadata_target(name: &str) -> Option<&str> {
    name.strip_prefix(METADATA_STREAM_PREFIX)
        .filter(|rest| !rest.is_empty())
}

/// What retention leaves readable of one stream: versions from
/// `first_version` on that were recorded at or after `not_before`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    /// The first version not cut by deletion, `truncate_before` or `max_count`.
    pub first_version: Version,
    /// Events recorded before this are cut by `max_age`.
    pub not_before: Option<DateTime<Utc>>,
}

impl Retention {
    /// Nothing cut but what deletion cut.
    pub fn of_head(head: &StreamHead) -> Self {
        Retention {
            first_version: head.deleted_through + 1,
            not_before: None,
        }
    }

    /// What stream `name`, at `head`, with `metadata`, leaves readable at
    /// `now`. A metadata stream keeps its latest event only.
    pub fn new(
        name: &str,
        head: &StreamHead,
        metadata: Option<&StreamMetadata>,
        now: DateTime<Utc>,
    ) -> Self {
        let mut r = Self::of_head(head);
        let implicit = metadata_target(name).map(|_| 1);
        let max_count = metadata.and_then(|m| m.max_count).or(implicit);
        if let Some(n) = max_count {
            r.first_version = r.first_version.max((head.version + 1).saturating_sub(n));
        }
        if let Some(m) = metadata {
            if let Some(t) = m.truncate_before {
                r.first_version = r.first_version.max(t);
            }
            r.not_before = m.max_age.map(|a| now - Duration::seconds(a as i64));
        }
        r
    }

    /// Whether the event at `version`, recorded at `recorded_at`, is readable.
    pub fn keeps(&self, version: Version, recorded_at: DateTime<Utc>) -> bool {
        version >= self.first_version && self.not_before.is_none_or(|t| recorded_at >= t)
    }

    /// Whether `event` is readable.
    pub fn keeps_event(&self, event: &RecordedEvent) -> bool {
        self.keeps(event.version, event.recorded_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(version: Version, deleted_through: Version) -> StreamHead {
        StreamHead {
            version,
            deleted_through,
            ..StreamHead::default()
        }
    }

    #[test]
    fn the_strictest_cut_wins() {
        let now = Utc::now();
        let m = StreamMetadata {
            max_count: Some(3),
            truncate_before: Some(5),
            ..Default::default()
        };
        // 10 events: max_count keeps 8..=10, truncate_before 5..: 8 wins.
        assert_eq!(
            Retention::new("a-1", &head(10, 0), Some(&m), now).first_version,
            8
        );
        // 5 events: max_count keeps 3..=5, truncate_before 5..: 5 wins.
        assert_eq!(
            Retention::new("a-1", &head(5, 0), Some(&m), now).first_version,
            5
        );
        // Deletion through 9 beats both.
        assert_eq!(
            Retention::new("a-1", &head(10, 9), Some(&m), now).first_version,
            10
        );
        assert_eq!(
            Retention::new("a-1", &head(10, 0), None, now).first_version,
            1
        );
    }

    #[test]
    fn metadata_streams_keep_their_latest_event() {
        let r = Retention::new("$$a-1", &head(4, 0), None, Utc::now());
        assert_eq!(r.first_version, 4);
    }

    #[test]
    fn max_age_cuts_by_time() {
        let now = Utc::now();
        let m = StreamMetadata {
            max_age: Some(60),
            ..Default::default()
        };
        let r = Retention::new("a-1", &head(2, 0), Some(&m), now);
        assert!(r.keeps(1, now - Duration::seconds(59)));
        assert!(!r.keeps(1, now - Duration::seconds(61)));
    }

    #[test]
    fn settings_are_checked() {
        let bad = [
            StreamMetadata {
                max_count: Some(0),
                ..Default::default()
            },
            StreamMetadata {
                max_age: Some(0),
                ..Default::default()
            },
            StreamMetadata {
                custom: Some(serde_json::json!("x".repeat(MAX_METADATA_BYTES))),
                ..Default::default()
            },
        ];
        for m in bad {
            assert_eq!(m.validate().unwrap_err().kind(), "invalid_input");
        }
        assert!(StreamMetadata::from_json(br#"{"max_count": 1, "nope": 2}"#).is_err());
        assert!(StreamMetadata::from_json(b"[]").is_err());
        assert!(StreamMetadata::from_json(b" {}").is_ok());
        assert_eq!(metadata_target("$$a-1"), Some("a-1"));
        assert_eq!(metadata_target("a-1"), None);
        let s = StreamId::new("a-1").unwrap();
        assert_eq!(metadata_stream(&s).unwrap().as_str(), "$$a-1");
    }
}
