//! A consumer group's name and settings, and their limits.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::filter::ReadFilter;
use crate::stream_id::StreamId;
use crate::version::{Position, Version};

/// The longest group or consumer name, in bytes.
pub const MAX_NAME_BYTES: usize = 128;
/// The most messages one consumer may hold leased at once.
pub const MAX_IN_FLIGHT_LIMIT: u32 = 10_000;
/// The shortest `ack_timeout_ms`.
pub const MIN_ACK_TIMEOUT_MS: u64 = 100;
/// The longest `ack_timeout_ms`: one hour.
pub const MAX_ACK_TIMEOUT_MS: u64 = 3_600_000;
/// The most retries before an event is parked.
pub const MAX_RETRIES_LIMIT: u32 = 1_000;
/// The longest back-off before a retried event is offered again: one minute.
pub const MAX_RETRY_BACKOFF_MS: u64 = 60_000;

/// The most labels one group carries.
pub const MAX_LABELS: usize = 16;
/// The most bytes of one label's name.
pub const MAX_LABEL_NAME_BYTES: usize = 64;
/// The most bytes of a group's labels, names and values together.
pub const MAX_LABELS_BYTES: usize = 16 * 1024;

/// Default [`GroupSettings::max_in_flight`].
pub const DEFAULT_MAX_IN_FLIGHT: u32 = 100;
/// Default [`GroupSettings::ack_timeout_ms`].
pub const DEFAULT_ACK_TIMEOUT_MS: u64 = 30_000;
/// Default [`GroupSettings::max_retries`].
pub const DEFAULT_MAX_RETRIES: u32 = 10;
/// Default [`GroupSettings::retry_backoff_ms`].
pub const DEFAULT_RETRY_BACKOFF_MS: u64 = 100;

/// Checks a group or consumer name: 1 to [`MAX_NAME_BYTES`] bytes of ASCII
/// letters, digits, `-`, `_` and `.`, so it is safe in a URL path, a
/// system stream's name and a database key.
fn check_name(what: &str, name: &str) -> Result<()> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if name.is_empty() || name.len() > MAX_NAME_BYTES || !name.chars().all(ok_char) {
        return Err(Error::InvalidInput {
            reason: format!(
                "{what} name {name:?} must be 1 to {MAX_NAME_BYTES} of the characters A-Z a-z 0-9 - _ ."
            ),
        });
    }
    Ok(())
}

/// The name of a consumer group.
///
/// ```
/// use strata_core::group::GroupName;
/// assert!(GroupName::new("billing.v2").is_ok());
/// assert!(GroupName::new("no spaces").is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct GroupName(String);

impl GroupName {
    /// Checks and wraps a group name.
    pub fn new(name: impl Into<String>) -> Result<Self> {
        let name = name.into();
        check_name("group", &name)?;
        Ok(Self(name))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for GroupName {
    type Error = Error;
    fn try_from(name: String) -> Result<Self> {
        Self::new(name)
    }
}

impl From<GroupName> for String {
    fn from(name: GroupName) -> String {
        name.0
    }
}

impl std::fmt::Display for GroupName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The name a consumer gives itself; leases are held by it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ConsumerId(std::sync::Arc<str>);

impl ConsumerId {
    /// Checks and wraps a consumer name.
    pub fn new(name: impl Into<String>) -> Result<Self> {
        let name = name.into();
        check_name("consumer", &name)?;
        Ok(Self(name.into()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ConsumerId {
    type Error = Error;
    fn try_from(name: String) -> Result<Self> {
        Self::new(name)
    }
}

impl From<ConsumerId> for String {
    fn from(name: ConsumerId) -> String {
        name.0.to_string()
    }
}

impl std::fmt::Display for ConsumerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a group delivers: one stream, or `$all` through a filter. Events of
/// system streams (names starting with `$`) are never delivered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupSource {
    /// The events of one stream, in version order.
    Stream(StreamId),
    /// `$all`, through this filter.
    All(ReadFilter),
}

/// Where a new group starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupStart {
    /// From the first event.
    Start,
    /// From events committed after the group is created.
    End,
    /// After this position of `$all` (exclusive).
    AfterPosition(Position),
    /// At this version of the source stream (inclusive); only for a stream
    /// source.
    FromVersion(Version),
}

/// How a group hands events to its consumers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Any consumer takes any available event, oldest first.
    RoundRobin,
    /// A stream's events go to one consumer while it lives, and never two
    /// of a stream's events are in flight at once: per-stream order holds.
    Pinned,
    /// One consumer at a time receives everything; the next takes over when
    /// it leaves or times out.
    Single,
}

/// A group's definition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupSettings {
    /// What the group delivers.
    pub source: GroupSource,
    /// Where it starts when created (ignored by an update).
    #[serde(default = "default_start")]
    pub start: GroupStart,
    /// How events are handed out.
    #[serde(default = "default_strategy")]
    pub strategy: Strategy,
    /// The most unsettled messages one consumer holds at once.
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: u32,
    /// How long a consumer may hold a message unsettled before its lease
    /// goes back to the group, in milliseconds.
    #[serde(default = "default_ack_timeout_ms")]
    pub ack_timeout_ms: u64,
    /// How many times an event is retried before it is parked.
    #[serde(default = "default_max_retries")]
    pub max_retries: u32,
    /// The back-off before a retried event is offered again, in
    /// milliseconds; it doubles with each retry, up to
    /// [`MAX_RETRY_BACKOFF_MS`].
    #[serde(default = "default_retry_backoff_ms")]
    pub retry_backoff_ms: u64,
    /// Labels that programs keep with the group, which Strata stores and
    /// returns but does not read (the KurrentDB protocol keeps a
    /// subscription's filter and tuning here). Names are 1 to
    /// [`MAX_LABEL_NAME_BYTES`] of `A-Z a-z 0-9 - _ .`; at most
    /// [`MAX_LABELS`] labels of [`MAX_LABELS_BYTES`] in all. An update
    /// replaces them with its own.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

fn default_start() -> GroupStart {
    GroupStart::Start
}
fn default_strategy() -> Strategy {
    Strategy::RoundRobin
}
fn default_max_in_flight() -> u32 {
    DEFAULT_MAX_IN_FLIGHT
}
fn default_ack_timeout_ms() -> u64 {
    DEFAULT_ACK_TIMEOUT_MS
}
fn default_max_retries() -> u32 {
    DEFAULT_MAX_RETRIES
}
fn default_retry_backoff_ms() -> u64 {
    DEFAULT_RETRY_BACKOFF_MS
}

impl GroupSettings {
    /// A group over `source` with every other setting at its default.
    pub fn new(source: GroupSource) -> Self {
        Self {
            source,
            start: default_start(),
            strategy: default_strategy(),
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            ack_timeout_ms: DEFAULT_ACK_TIMEOUT_MS,
            max_retries: DEFAULT_MAX_RETRIES,
            retry_backoff_ms: DEFAULT_RETRY_BACKOFF_MS,
            labels: BTreeMap::new(),
        }
    }

    /// Checks every setting against its limit.
    pub fn validate(&self) -> Result<()> {
        let bad = |reason: String| Err(Error::InvalidInput { reason });
        match &self.source {
            GroupSource::Stream(s) if s.is_system() => {
                return bad(format!("a group cannot follow the system stream `{s}`"))
            }
            GroupSource::All(filter) => filter.validate()?,
            GroupSource::Stream(_) => {}
        }
        if matches!(self.start, GroupStart::FromVersion(_))
            && !matches!(self.source, GroupSource::Stream(_))
        {
            return bad("start from_version needs a stream source".into());
        }
        if self.max_in_flight == 0 || self.max_in_flight > MAX_IN_FLIGHT_LIMIT {
            return bad(format!(
                "max_in_flight must be 1 to {MAX_IN_FLIGHT_LIMIT}, got {}",
                self.max_in_flight
            ));
        }
        if !(MIN_ACK_TIMEOUT_MS..=MAX_ACK_TIMEOUT_MS).contains(&self.ack_timeout_ms) {
            return bad(format!(
                "ack_timeout_ms must be {MIN_ACK_TIMEOUT_MS} to {MAX_ACK_TIMEOUT_MS}, got {}",
                self.ack_timeout_ms
            ));
        }
        if self.max_retries > MAX_RETRIES_LIMIT {
            return bad(format!(
                "max_retries must be at most {MAX_RETRIES_LIMIT}, got {}",
                self.max_retries
            ));
        }
        if self.retry_backoff_ms > MAX_RETRY_BACKOFF_MS {
            return bad(format!(
                "retry_backoff_ms must be at most {MAX_RETRY_BACKOFF_MS}, got {}",
                self.retry_backoff_ms
            ));
        }
        self.check_labels()
    }

    fn check_labels(&self) -> Result<()> {
        let bad = |reason: String| Err(Error::InvalidInput { reason });
        if self.labels.len() > MAX_LABELS {
            return bad(format!(
                "a group carries at most {MAX_LABELS} labels, got {}",
                self.labels.len()
            ));
        }
        let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
        let mut total = 0usize;
        for (name, value) in &self.labels {
            if name.is_empty() || name.len() > MAX_LABEL_NAME_BYTES || !name.chars().all(ok_char) {
                return bad(format!(
                    "label name {name:?} must be 1 to {MAX_LABEL_NAME_BYTES} of the characters A-Z a-z 0-9 - _ ."
                ));
            }
            total = total.saturating_add(name.len()).saturating_add(value.len());
        }
        if total > MAX_LABELS_BYTES {
            return bad(format!(
                "a group's labels hold at most {MAX_LABELS_BYTES} bytes, got {total}"
            ));
        }
        Ok(())
    }

    /// The back-off before the retry that follows delivery `count` (1 for
    /// the first delivery): `retry_backoff_ms` doubled per earlier retry,
    /// at most [`MAX_RETRY_BACKOFF_MS`].
    pub fn backoff_ms(&self, count: u32) -> u64 {
        let doublings = count.saturating_sub(1).min(20);
        self.retry_backoff_ms
            .saturating_mul(1 << doublings)
            .min(MAX_RETRY_BACKOFF_MS)
    }

    /// Whether an event of `stream` (of `$all`, or of the source stream) is
    /// one the group delivers.
    pub fn delivers(&self, event: &crate::event::RecordedEvent) -> bool {
        if event.stream_id.is_system() {
            return false;
        }
        match &self.source {
            GroupSource::Stream(s) => &event.stream_id == s,
            GroupSource::All(filter) => filter.matches(event),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_defaults_and_limits() {
        let s: GroupSettings = serde_json::from_str(r#"{"source":{"all":{"category":"order"}}}"#)
            .expect("minimal settings parse");
        assert_eq!(s.strategy, Strategy::RoundRobin);
        assert_eq!(s.start, GroupStart::Start);
        assert_eq!(s.max_in_flight, DEFAULT_MAX_IN_FLIGHT);
        s.validate().expect("defaults are valid");
        let s: GroupSettings = serde_json::from_str(
            r#"{"source":{"stream":"order-1"},"start":{"from_version":3},"strategy":"pinned"}"#,
        )
        .expect("stream settings parse");
        assert_eq!(s.start, GroupStart::FromVersion(3));
        s.validate().expect("valid");
        for bad in [
            GroupSettings {
                max_in_flight: 0,
                ..s.clone()
            },
            GroupSettings {
                ack_timeout_ms: 1,
                ..s.clone()
            },
            GroupSettings {
                max_retries: MAX_RETRIES_LIMIT + 1,
                ..s.clone()
            },
            GroupSettings {
                start: GroupStart::FromVersion(1),
                ..GroupSettings::new(GroupSource::All(ReadFilter::all()))
            },
        ] {
            assert_eq!(bad.validate().unwrap_err().kind(), "invalid_input");
        }
        assert!(serde_json::from_str::<GroupSettings>(r#"{"source":{"all":{}},"x":1}"#).is_err());
    }

    #[test]
    fn backoff_doubles_up_to_the_limit() {
        let s = GroupSettings::new(GroupSource::All(ReadFilter::all()));
        assert_eq!(s.backoff_ms(1), DEFAULT_RETRY_BACKOFF_MS);
        assert_eq!(s.backoff_ms(2), DEFAULT_RETRY_BACKOFF_MS * 2);
        assert_eq!(s.backoff_ms(100), MAX_RETRY_BACKOFF_MS);
    }

    #[test]
    fn labels_round_trip_and_have_limits() {
        let mut s = GroupSettings::new(GroupSource::All(ReadFilter::all()));
        let json = serde_json::to_string(&s).unwrap();
        assert!(!json.contains("labels"), "no labels, no field: {json}");
        s.labels.insert("app.filter".into(), "{\"a\":1}".into());
        let back: GroupSettings =
            serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(back, s);
        assert!(s.validate().is_ok());
        let mut bad = s.clone();
        bad.labels.insert("no spaces".into(), String::new());
        assert!(bad.validate().is_err());
        let mut big = s.clone();
        big.labels
            .insert("big".into(), "x".repeat(MAX_LABELS_BYTES));
        assert!(big.validate().is_err());
        let mut many = s;
        for i in 0..MAX_LABELS {
            many.labels.insert(format!("l{i}"), String::new());
        }
        assert!(many.validate().is_err());
    }
}
