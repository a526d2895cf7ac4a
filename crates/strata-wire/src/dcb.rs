//! Dynamic consistency boundaries on the wire: `POST /dcb/read` and
//! `POST /dcb/append` (`docs/http-api.md`).

use std::borrow::Cow;
use std::collections::BTreeMap;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use strata_core::dcb::{default_stream, parts_by_stream, AppendCondition, Query};
use strata_core::{ContentType, EventId, NewEvent, StreamAppend, StreamId, Tag};

use crate::answer::AppendOut;
use crate::error::WireError;
use crate::event::{EventIn, WireEvent};

/// How many events `POST /dcb/read` returns when the body names no limit.
pub const DEFAULT_DCB_READ_LIMIT: usize = 1_000;

/// `POST /dcb/read`.
#[derive(Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DcbReadBody {
    /// `{"items": [{"types": [...], "tags": [...]}]}`; no items match every
    /// event.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Value))]
    pub query: Query,
    /// Only events after this position.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<u64>,
    /// The most events (default [`DEFAULT_DCB_READ_LIMIT`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
}

/// The answer of `POST /dcb/read`.
#[derive(Debug, Serialize, Deserialize)]
pub struct DcbReadOut<'a> {
    /// The matching events, in position order.
    pub events: Vec<WireEvent<'a>>,
    /// The store's head when the read began: a decision over these events
    /// appends with the condition `after` this (when `events` is not
    /// cut short by the limit).
    pub head: u64,
}

/// Query string of `GET /dcb/subscribe`. A `Last-Event-ID` header, when
/// sent, wins over `after`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DcbSubscribeQuery {
    /// The query as JSON (`{"items": [...]}`), URL-encoded; absent matches
    /// every event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// Position to start after (default: the start).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<u64>,
    /// `true`: events go out as `events` messages, each carrying as many
    /// events as are queued for the subscriber (one or more) as a JSON
    /// array, its `id` the last one's position ([`crate::SSE_BATCH_EVENT`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub batch: bool,
}

/// An event of `POST /dcb/append`: an [`EventIn`] with, optionally, its
/// stream (default: `dcb-` and its first tag, or `dcb`).
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DcbEventIn<'a> {
    /// The stream; [`default_stream`] of the tags when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    /// A UUID, for idempotent retries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub id: Option<EventId>,
    /// The type name.
    #[serde(rename = "type")]
    pub event_type: String,
    /// `json` (default) or `binary`.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub content_type: ContentType,
    /// The payload, borrowed from the request's text when decoded (see
    /// [`EventIn`]).
    #[serde(borrow, deserialize_with = "crate::event::borrowed_raw")]
    #[cfg_attr(feature = "openapi", schema(value_type = Value))]
    pub data: Cow<'a, RawValue>,
    /// Metadata, an object of strings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = Option<std::collections::BTreeMap<String, String>>)
    )]
    pub metadata: Option<Map<String, Value>>,
    /// Tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub tags: Vec<Tag>,
}

impl DcbEventIn<'_> {
    /// The wire form of `event`, bound for `stream` (or the default).
    pub fn from_new(stream: Option<&StreamId>, event: &NewEvent) -> DcbEventIn<'static> {
        let e = EventIn::from_new(event);
        DcbEventIn {
            stream: stream.map(|s| s.as_str().to_owned()),
            id: e.id,
            event_type: e.event_type,
            content_type: e.content_type,
            data: e.data,
            metadata: e.metadata,
            tags: e.tags,
        }
    }

    /// The length of its payload's text when it is JSON, else 0 (see
    /// [`EventIn::json_payload_len`]).
    pub fn json_payload_len(&self) -> usize {
        crate::event::json_payload_len(self.content_type, &self.data)
    }

    /// Its stream and the event to append; a payload borrowed from the
    /// request's text is copied.
    pub fn into_parts(self) -> Result<(StreamId, NewEvent), WireError> {
        self.into_parts_in(&Bytes::new())
    }

    /// [`into_parts`](Self::into_parts) for an event decoded from `source`:
    /// a payload borrowed from it is shared, not copied
    /// ([`EventIn::into_new_event_in`]).
    pub fn into_parts_in(self, source: &Bytes) -> Result<(StreamId, NewEvent), WireError> {
        let stream = match &self.stream {
            Some(s) => StreamId::new(s),
            None => default_stream(&self.tags),
        }
        .map_err(|e| WireError::Stream(e.to_string()))?;
        let event = EventIn {
            id: self.id,
            event_type: self.event_type,
            content_type: self.content_type,
            data: self.data,
            metadata: self.metadata,
            tags: self.tags,
        }
        .into_new_event_in(source)?;
        Ok((stream, event))
    }
}

/// `POST /dcb/append`.
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DcbAppendBody<'a> {
    /// The events; those of one stream keep their order, and streams are
    /// written in the order they first appear.
    #[serde(borrow)]
    pub events: Vec<DcbEventIn<'a>>,
    /// `{"fail_if_events_match": query, "after": P}`; none appends
    /// unconditionally.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Value>))]
    pub condition: Option<AppendCondition>,
    /// Stream guards, by stream name: `"any"`, `"no_stream"`, `"exists"` or
    /// a version; streams not named are `any`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[cfg_attr(feature = "openapi", schema(value_type = BTreeMap<String, Value>))]
    pub expected_versions: BTreeMap<String, Value>,
}

impl DcbAppendBody<'_> {
    /// Its events' JSON payload text, in bytes (see
    /// [`crate::payload_source`]).
    pub fn json_payload_len(&self) -> usize {
        self.events.iter().map(DcbEventIn::json_payload_len).sum()
    }

    /// The per-stream parts of the append, in the order streams first
    /// appear, each with its guard; and the condition, if any. Payloads
    /// borrowed from the request's text are copied.
    pub fn into_parts(self) -> Result<(Vec<StreamAppend>, Option<AppendCondition>), WireError> {
        self.into_parts_in(&Bytes::new())
    }

    /// [`into_parts`](Self::into_parts) for a body decoded from `source`:
    /// payloads borrowed from it are shared, not copied.
    pub fn into_parts_in(
        self,
        source: &Bytes,
    ) -> Result<(Vec<StreamAppend>, Option<AppendCondition>), WireError> {
        let events = self
            .events
            .into_iter()
            .map(|e| e.into_parts_in(source))
            .collect::<Result<Vec<_>, _>>()?;
        let mut parts = parts_by_stream(events);
        for p in &mut parts {
            if let Some(v) = self.expected_versions.get(p.stream.as_str()) {
                p.expected = crate::expected::from_json(v).ok_or_else(|| WireError::Guard {
                    stream: p.stream.as_str().to_owned(),
                    value: v.to_string(),
                })?;
            }
        }
        for name in self.expected_versions.keys() {
            if !parts.iter().any(|p| p.stream.as_str() == name) {
                return Err(WireError::Stream(format!(
                    "a guard names stream `{name}`, which no event goes to"
                )));
            }
        }
        Ok((parts, self.condition))
    }
}

/// The answer of `POST /dcb/append`.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct DcbAppendOut {
    /// The first position written.
    pub first_position: u64,
    /// The last position written.
    pub last_position: u64,
    /// Each stream's result, in the order written.
    pub streams: Vec<DcbStreamOut>,
}

/// One stream's part of a [`DcbAppendOut`].
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct DcbStreamOut {
    /// The stream.
    pub stream: String,
    /// Its result.
    #[serde(flatten)]
    pub result: AppendOut,
}
