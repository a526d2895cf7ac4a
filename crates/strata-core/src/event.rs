//! Events: what a caller appends ([`NewEvent`]) and what a store records
//! ([`RecordedEvent`]), with their ids and metadata.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use uuid::Uuid;

use crate::dcb::Tag;
use crate::stream_id::StreamId;
use crate::version::{Position, Version};

/// An event's unique id. Stores generate UUID v7 (time-ordered) ids when the
/// caller gives none; callers that want idempotent retries supply their own.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventId(pub Uuid);

impl EventId {
    /// A fresh time-ordered (v7) id.
    pub fn new() -> Self {
        EventId(Uuid::now_v7())
    }

    /// The id as a UUID.
    pub fn as_uuid(&self) -> &Uuid {
        &self.0
    }
}

impl Default for EventId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EventId({})", self.0)
    }
}

impl FromStr for EventId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(EventId)
    }
}

impl From<Uuid> for EventId {
    fn from(u: Uuid) -> Self {
        EventId(u)
    }
}

/// How an event's `data` is encoded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContentType {
    /// UTF-8 JSON; stores refuse data that does not parse.
    #[default]
    Json,
    /// Opaque bytes (protobuf, bincode, ...); stores do not look inside.
    Binary,
}

impl ContentType {
    /// Checks that `data` is one JSON value, as stores require of
    /// [`ContentType::Json`] events (without building the value).
    pub fn check_json(data: &[u8]) -> serde_json::Result<()> {
        serde_json::from_slice::<serde::de::IgnoredAny>(data).map(|_| ())
    }

    /// The one-byte code used by the on-disk formats.
    pub fn code(self) -> u8 {
        match self {
            ContentType::Json => 0,
            ContentType::Binary => 1,
        }
    }

    /// Inverse of [`ContentType::code`].
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(ContentType::Json),
            1 => Some(ContentType::Binary),
            _ => None,
        }
    }
}

/// Who and what caused an event, plus free string pairs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// Groups every event caused, directly or not, by one original request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// The id of the command or event that directly caused this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<String>,
    /// The user on whose behalf the event was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// The program or service that recorded it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Anything else, as string pairs.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, String>,
}

impl Metadata {
    /// Whether every field is empty.
    pub fn is_empty(&self) -> bool {
        self.correlation_id.is_none()
            && self.causation_id.is_none()
            && self.user_id.is_none()
            && self.source.is_none()
            && self.extra.is_empty()
    }

    /// Sets the correlation id.
    pub fn with_correlation_id(mut self, id: impl Into<String>) -> Self {
        self.correlation_id = Some(id.into());
        self
    }

    /// Sets the causation id.
    pub fn with_causation_id(mut self, id: impl Into<String>) -> Self {
        self.causation_id = Some(id.into());
        self
    }

    /// Sets the user id.
    pub fn with_user_id(mut self, id: impl Into<String>) -> Self {
        self.user_id = Some(id.into());
        self
    }

    /// Sets the source.
    pub fn with_source(mut self, source: impl Into<String>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// Adds a free string pair.
    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.extra.insert(key.into(), value.into());
        self
    }

    /// Approximate encoded size in bytes, used for the event size limit.
    pub fn approx_bytes(&self) -> usize {
        let opt = |o: &Option<String>| o.as_ref().map_or(0, |s| s.len());
        opt(&self.correlation_id)
            + opt(&self.causation_id)
            + opt(&self.user_id)
            + opt(&self.source)
            + self
                .extra
                .iter()
                .map(|(k, v)| k.len() + v.len())
                .sum::<usize>()
    }
}

/// An event to append. The store assigns its version, position and time.
///
/// ```
/// use strata_core::NewEvent;
/// let e = NewEvent::json("Deposited", &serde_json::json!({"amount": "10.00"})).unwrap();
/// assert_eq!(e.event_type, "Deposited");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewEvent {
    /// The event's id; `None` lets the store generate a UUID v7. Supply one to
    /// make retries idempotent.
    pub id: Option<EventId>,
    /// The event's type name, such as `Deposited`.
    pub event_type: String,
    /// The payload.
    pub data: Bytes,
    /// How `data` is encoded.
    pub content_type: ContentType,
    /// Correlation, causation and other context.
    pub metadata: Metadata,
    /// Tags for dynamic consistency boundaries ([`crate::dcb`]); the store
    /// keeps them as a set.
    pub tags: Vec<Tag>,
    /// Whether `data` is already known to be one JSON value, so a store
    /// need not parse it again. Set by [`NewEvent::json`],
    /// [`NewEvent::raw_json`] and [`NewEvent::raw_json_in`]; an event built
    /// field by field leaves it [`JsonChecked::NO`].
    pub json_checked: JsonChecked,
}

/// Proof that an event's `data` is one JSON value: it holds the very bytes
/// that were serialized or parsed as JSON, and vouches for an event only
/// while the event's `data` is still those bytes (the same buffer and
/// length; holding them keeps the buffer from being reused). Replacing
/// `data` voids it, so the store parses the new bytes.
///
/// Only this crate makes one that vouches for anything, and only from
/// `serde_json`'s own work: its serializer's output, or a `RawValue` its
/// parser produced. Both trust `serde_json`'s raw-value mechanism, which a
/// `Serialize` impl or a foreign deserializer could misuse on purpose
/// (through its private raw-value name) to pass text that is not JSON; an
/// embedder that does so gets such data stored as JSON. Readers of the
/// HTTP API then see it as binary. It takes no part in comparing events:
/// any two compare equal.
///
/// ```
/// use strata_core::{JsonChecked, NewEvent};
/// let mut e = NewEvent::json("A", &serde_json::json!({"n": 1})).unwrap();
/// assert!(e.json_checked.covers(&e.data));
/// e.data = "{not json".into();
/// assert!(!e.json_checked.covers(&e.data));
/// assert!(!JsonChecked::NO.covers(&e.data));
/// ```
#[derive(Clone, Default)]
pub struct JsonChecked(Option<Bytes>);

impl JsonChecked {
    /// Vouches for nothing: the store parses the data.
    pub const NO: JsonChecked = JsonChecked(None);

    /// Vouches for `data`, which the caller serialized or parsed as JSON.
    fn of(data: &Bytes) -> Self {
        JsonChecked(Some(data.clone()))
    }

    /// Whether this vouches for `data`.
    pub fn covers(&self, data: &Bytes) -> bool {
        self.0
            .as_ref()
            .is_some_and(|c| c.as_ptr() == data.as_ptr() && c.len() == data.len())
    }
}

impl fmt::Debug for JsonChecked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "JsonChecked(yes)"
        } else {
            "JsonChecked(no)"
        })
    }
}

impl PartialEq for JsonChecked {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for JsonChecked {}

impl NewEvent {
    /// An event with raw bytes and an explicit content type.
    pub fn new(
        event_type: impl Into<String>,
        data: impl Into<Bytes>,
        content_type: ContentType,
    ) -> Self {
        NewEvent {
            id: None,
            event_type: event_type.into(),
            data: data.into(),
            content_type,
            metadata: Metadata::default(),
            tags: Vec::new(),
            json_checked: JsonChecked::NO,
        }
    }

    /// A JSON event from any serializable value. The bytes are JSON by
    /// construction, so the store does not parse them again.
    pub fn json<T: Serialize + ?Sized>(
        event_type: impl Into<String>,
        value: &T,
    ) -> Result<Self, serde_json::Error> {
        let data = serde_json::to_vec(value)?;
        Ok(Self::new(event_type, data, ContentType::Json).vouched_json())
    }

    /// A JSON event whose data is `raw`, a value `serde_json` has parsed
    /// (a request body's `data`, say). The text becomes the event's data
    /// without a copy, and the store does not parse it again.
    ///
    /// ```
    /// let raw: Box<serde_json::value::RawValue> =
    ///     serde_json::from_str(r#"{"n": 1}"#).unwrap();
    /// let e = strata_core::NewEvent::raw_json("A", raw);
    /// assert_eq!(&e.data[..], br#"{"n": 1}"#);
    /// assert!(e.json_checked.covers(&e.data));
    /// ```
    pub fn raw_json(event_type: impl Into<String>, raw: Box<RawValue>) -> Self {
        let text: Box<str> = raw.into();
        Self::new(event_type, text.into_boxed_bytes(), ContentType::Json).vouched_json()
    }

    /// A JSON event whose data is `raw`, a value `serde_json` has parsed
    /// while borrowing from `source` (a request body, say). When `raw` lies
    /// inside `source`, the event's data is that part of `source`, shared
    /// rather than copied; otherwise it is a copy of `raw`. Either way the
    /// store does not parse it again.
    ///
    /// Shared data keeps all of `source` in memory for as long as the
    /// event's data lives.
    ///
    /// ```
    /// use bytes::Bytes;
    /// let body = Bytes::from_static(br#"{"data": {"n": 1}}"#);
    /// #[derive(serde::Deserialize)]
    /// struct In<'a> {
    ///     #[serde(borrow)]
    ///     data: &'a serde_json::value::RawValue,
    /// }
    /// let parsed: In<'_> = serde_json::from_slice(&body).unwrap();
    /// let e = strata_core::NewEvent::raw_json_in("A", parsed.data, &body);
    /// assert_eq!(&e.data[..], br#"{"n": 1}"#);
    /// assert_eq!(e.data.as_ptr(), body[9..].as_ptr()); // not copied
    /// assert!(e.json_checked.covers(&e.data));
    /// ```
    pub fn raw_json_in(event_type: impl Into<String>, raw: &RawValue, source: &Bytes) -> Self {
        let text = raw.get().as_bytes();
        let data = if lies_within(text, source) {
            source.slice_ref(text)
        } else {
            Bytes::copy_from_slice(text)
        };
        Self::new(event_type, data, ContentType::Json).vouched_json()
    }

    /// This event, its data vouched for as JSON.
    fn vouched_json(mut self) -> Self {
        debug_assert!(ContentType::check_json(&self.data).is_ok());
        self.json_checked = JsonChecked::of(&self.data);
        self
    }

    /// A JSON event from bytes that are already JSON (checked by the store).
    pub fn json_bytes(event_type: impl Into<String>, data: impl Into<Bytes>) -> Self {
        Self::new(event_type, data, ContentType::Json)
    }

    /// Sets the event id.
    pub fn with_id(mut self, id: EventId) -> Self {
        self.id = Some(id);
        self
    }

    /// Sets the metadata.
    pub fn with_metadata(mut self, metadata: Metadata) -> Self {
        self.metadata = metadata;
        self
    }

    /// Sets the tags.
    pub fn with_tags(mut self, tags: impl IntoIterator<Item = Tag>) -> Self {
        self.tags = tags.into_iter().collect();
        self
    }

    /// Size counted against the event size limit: type + data + metadata +
    /// tags.
    pub fn size_bytes(&self) -> usize {
        self.event_type.len()
            + self.data.len()
            + self.metadata.approx_bytes()
            + tags_bytes(&self.tags)
    }
}

/// Whether `part` is a slice of `whole`'s memory (shared with it, not a
/// copy of its bytes).
///
/// ```
/// let whole = bytes::Bytes::from_static(b"{\"n\": 1}");
/// assert!(strata_core::event::lies_within(&whole.slice(1..4), &whole));
/// assert!(!strata_core::event::lies_within(&whole.to_vec(), &whole));
/// ```
pub fn lies_within(part: &[u8], whole: &[u8]) -> bool {
    let whole_start = whole.as_ptr() as usize;
    let part_start = part.as_ptr() as usize;
    part_start >= whole_start && part_start + part.len() <= whole_start + whole.len()
}

/// An event as the store recorded it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedEvent {
    /// Unique id.
    pub id: EventId,
    /// The stream it belongs to.
    pub stream_id: StreamId,
    /// Its 1-based place in the stream.
    pub version: Version,
    /// Its place in the global log.
    pub position: Position,
    /// Its type name.
    pub event_type: String,
    /// The payload.
    pub data: Bytes,
    /// How `data` is encoded.
    pub content_type: ContentType,
    /// Correlation, causation and other context.
    pub metadata: Metadata,
    /// When the store recorded it (never decreasing along `$all`).
    pub recorded_at: DateTime<Utc>,
    /// Its tags, sorted, each once ([`crate::dcb`]).
    pub tags: Vec<Tag>,
}

impl RecordedEvent {
    /// About how many bytes the event takes when read or sent: its payload,
    /// type and stream name, its metadata, and a fixed allowance for the
    /// rest. What pages and subscriptions budget by.
    pub fn size_bytes(&self) -> usize {
        self.data.len()
            + self.event_type.len()
            + self.stream_id.as_str().len()
            + self.metadata.approx_bytes()
            + tags_bytes(&self.tags)
            + 64
    }

    /// Deserializes a JSON payload.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.data)
    }
}

/// The bytes tags add to an event's size.
fn tags_bytes(tags: &[Tag]) -> usize {
    tags.iter().map(|t| t.as_str().len()).sum()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn raw_json_in_shares_what_lies_in_the_source_and_copies_the_rest() {
        let body = Bytes::from_static(br#"[{"n": 1}, "x"]"#);
        let raws: Vec<&RawValue> = serde_json::from_slice(&body).unwrap();
        let shared = NewEvent::raw_json_in("A", raws[0], &body);
        assert_eq!(&shared.data[..], br#"{"n": 1}"#);
        assert_eq!(shared.data.as_ptr(), body[1..].as_ptr());
        assert!(shared.json_checked.covers(&shared.data));

        let elsewhere = Bytes::from_static(b"[1]");
        let copied = NewEvent::raw_json_in("A", raws[1], &elsewhere);
        assert_eq!(&copied.data[..], br#""x""#);
        assert_ne!(copied.data.as_ptr(), body[11..].as_ptr());
        assert!(copied.json_checked.covers(&copied.data));
    }

    #[test]
    fn lies_within_is_exact_at_the_edges() {
        let whole = [0u8; 8];
        assert!(lies_within(&whole[..], &whole));
        assert!(lies_within(&whole[3..8], &whole));
        assert!(!lies_within(&whole[3..8], &whole[..7]));
        assert!(!lies_within(&whole[..2], &whole[1..]));
    }
}
