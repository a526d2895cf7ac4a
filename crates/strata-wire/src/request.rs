//! What requests carry: the append bodies and the query strings.

use serde::{Deserialize, Serialize};
use strata_core::{Direction, ExpectedVersion};

use crate::event::EventIn;

/// Body of `POST /streams/{stream}`.
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AppendBody<'a> {
    /// The guard: `"any"` (default), `"no_stream"`, `"exists"` or a version.
    #[serde(
        default = "crate::expected::field::any",
        with = "crate::expected::field"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Value))]
    pub expected_version: ExpectedVersion,
    /// The events, in order.
    #[serde(borrow)]
    pub events: Vec<EventIn<'a>>,
}

/// Body of `POST /multi`.
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct MultiBody<'a> {
    /// One part per stream.
    #[serde(borrow)]
    pub streams: Vec<MultiPart<'a>>,
}

impl AppendBody<'_> {
    /// Its events' JSON payload text, in bytes (see
    /// [`crate::payload_source`]).
    pub fn json_payload_len(&self) -> usize {
        json_payload_total(&self.events)
    }
}

impl MultiBody<'_> {
    /// Its events' JSON payload text, in bytes, over every part (see
    /// [`crate::payload_source`]).
    pub fn json_payload_len(&self) -> usize {
        self.streams
            .iter()
            .map(|p| json_payload_total(&p.events))
            .sum()
    }
}

/// The JSON payload text of `events`, in bytes.
fn json_payload_total(events: &[EventIn<'_>]) -> usize {
    events.iter().map(EventIn::json_payload_len).sum()
}

/// One stream's part of `POST /multi`.
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct MultiPart<'a> {
    /// The stream's name.
    pub stream: String,
    /// Its guard: `"any"` (default), `"no_stream"`, `"exists"` or a version.
    #[serde(
        default = "crate::expected::field::any",
        with = "crate::expected::field"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Value))]
    pub expected_version: ExpectedVersion,
    /// Its events.
    #[serde(borrow)]
    pub events: Vec<EventIn<'a>>,
}

/// Query of `GET /streams/{stream}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadStreamQuery {
    /// First version to read (default 1, or the end when backward).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<u64>,
    /// Page size (default: the server's; capped by the store's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    /// `forward` (default) or `backward`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub direction: Option<Direction>,
}

/// Query of `GET /all`. `types` is comma-separated.
///
/// (The filter fields are written out rather than a flattened struct:
/// serde's `flatten` loses the numbers of a query string.)
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadAllQuery {
    /// Position to start after (default 0); forward reads only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<u64>,
    /// Position to read below (exclusive; default: the end of `$all`);
    /// backward reads only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<u64>,
    /// `forward` (default) or `backward` (newest first).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub direction: Option<Direction>,
    /// Page size (default: the server's; capped by the store's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    /// Event types, comma-separated (any of).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub types: Option<String>,
    /// Stream name prefix.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// Stream category.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// Correlation id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
}

/// Query of `DELETE /streams/{stream}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteQuery {
    /// The guard, as [`crate::expected::to_param`] spells it (default `any`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_version: Option<String>,
    /// `true` for a tombstone (a hard delete).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub hard: bool,
    /// `true` to erase the stream: a tombstone, and its events' data removed
    /// physically (`EventStore::erase_stream`); needs the `admin` role.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub erase: bool,
}

/// The SSE event type of a message carrying several events, sent to a
/// subscription opened with `batch=true`: its `data` is a JSON array of the
/// events, in position order, and its `id` the last one's position.
pub const SSE_BATCH_EVENT: &str = "events";

/// Query of `GET /subscribe/all`. `types` is comma-separated. A
/// `Last-Event-ID` header, when sent, wins over `after`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscribeAllQuery {
    /// Position to start after (default: the start).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<u64>,
    /// Event types, comma-separated (any of).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub types: Option<String>,
    /// Stream name prefix.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// Stream category.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// Correlation id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// `true`: events go out as `events` messages, each carrying as many
    /// events as are queued for the subscriber (one or more) as a JSON
    /// array, its `id` the last one's position ([`SSE_BATCH_EVENT`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub batch: bool,
}

/// Query of `GET /subscribe/streams/{stream}`. A `Last-Event-ID` header
/// (a position), when sent, wins over `after_version`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscribeStreamQuery {
    /// Version to start after (default: the whole stream).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after_version: Option<u64>,
    /// `true`: events go out as `events` messages, each carrying as many
    /// events as are queued for the subscriber (one or more) as a JSON
    /// array, its `id` the last one's position ([`SSE_BATCH_EVENT`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub batch: bool,
}
