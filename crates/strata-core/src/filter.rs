//! Filters for `read_all` and subscriptions.

use serde::{Deserialize, Serialize};

use crate::event::RecordedEvent;
use crate::stream_id::{category_of, StreamId};

/// Which events of `$all` a reader wants. Every field that is set must match
/// (they combine with AND); `event_types` matches any one of its entries.
///
/// ```
/// use strata_core::ReadFilter;
/// let f = ReadFilter::all().category("account").event_types(["Deposited", "Withdrawn"]);
/// assert!(!f.is_all());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadFilter {
    /// Only this stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<StreamId>,
    /// Only streams whose name starts with this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_prefix: Option<String>,
    /// Only streams of this category (`account` matches `account-42`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// Only events of one of these types; empty means every type.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub event_types: Vec<String>,
    /// Only events with this correlation id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
}

impl ReadFilter {
    /// Every event.
    pub fn all() -> Self {
        Self::default()
    }

    /// Whether this filter lets every event through.
    pub fn is_all(&self) -> bool {
        self.stream.is_none()
            && self.stream_prefix.is_none()
            && self.category.is_none()
            && self.event_types.is_empty()
            && self.correlation_id.is_none()
    }

    /// Checks the filter's strings: none may hold a NUL character, which no
    /// stream name, event type or id holds and which databases refuse in
    /// text. Stores call this before they read, so a bad filter is
    /// `InvalidInput` on every backend.
    ///
    /// ```
    /// use strata_core::ReadFilter;
    /// assert!(ReadFilter::all().stream_prefix("tenant-").validate().is_ok());
    /// let bad = ReadFilter::all().event_types(["Deposited\0"]);
    /// assert_eq!(bad.validate().unwrap_err().kind(), "invalid_input");
    /// ```
    pub fn validate(&self) -> crate::Result<()> {
        let fields = [
            ("stream prefix", self.stream_prefix.as_deref()),
            ("category", self.category.as_deref()),
            ("correlation id", self.correlation_id.as_deref()),
        ];
        let types = self
            .event_types
            .iter()
            .map(|t| ("event type", Some(t.as_str())));
        for (what, value) in fields.into_iter().chain(types) {
            if value.is_some_and(|v| v.contains('\0')) {
                return Err(crate::Error::invalid(format!(
                    "the filter's {what} contains a NUL character"
                )));
            }
        }
        Ok(())
    }

    /// Restricts to one stream.
    pub fn stream(mut self, stream: StreamId) -> Self {
        self.stream = Some(stream);
        self
    }

    /// Restricts to streams whose names start with `prefix`.
    pub fn stream_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.stream_prefix = Some(prefix.into());
        self
    }

    /// Restricts to one category.
    pub fn category(mut self, category: impl Into<String>) -> Self {
        self.category = Some(category.into());
        self
    }

    /// Restricts to these event types.
    pub fn event_types<I, S>(mut self, types: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.event_types = types.into_iter().map(Into::into).collect();
        self
    }

    /// Restricts to one correlation id.
    pub fn correlation_id(mut self, id: impl Into<String>) -> Self {
        self.correlation_id = Some(id.into());
        self
    }

    /// Whether the stream-name parts of the filter accept `stream`.
    pub fn matches_stream(&self, stream: &str) -> bool {
        if let Some(s) = &self.stream {
            if s.as_str() != stream {
                return false;
            }
        }
        if let Some(p) = &self.stream_prefix {
            if !stream.starts_with(p.as_str()) {
                return false;
            }
        }
        if let Some(c) = &self.category {
            if category_of(stream) != c {
                return false;
            }
        }
        true
    }

    /// Whether the type part of the filter accepts `event_type`.
    pub fn matches_type(&self, event_type: &str) -> bool {
        self.event_types.is_empty() || self.event_types.iter().any(|t| t == event_type)
    }

    /// Whether `event` passes the whole filter.
    pub fn matches(&self, event: &RecordedEvent) -> bool {
        self.matches_stream(event.stream_id.as_str())
            && self.matches_type(&event.event_type)
            && match &self.correlation_id {
                Some(c) => event.metadata.correlation_id.as_deref() == Some(c.as_str()),
                None => true,
            }
    }
}
