//! The JSON shapes of the API: what requests carry and how events are shown.
//!
//! Event `data` travels verbatim: JSON events carry their payload as JSON
//! (byte for byte as appended, so decimal strings and key order survive);
//! binary events carry it as a standard base64 string, with
//! `"content_type": "binary"` saying so.

use std::fmt;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use chrono::SecondsFormat;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};
use strata_core::{
    ContentType, EventId, ExpectedVersion, Metadata, NewEvent, RecordedEvent,
    EXPECTED_VERSION_SYNTAX,
};
use utoipa::ToSchema;

use crate::error::ApiError;

/// An `expected_version` as the API spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExpectedVersionArg(pub ExpectedVersion);

impl Default for ExpectedVersionArg {
    fn default() -> Self {
        ExpectedVersionArg(ExpectedVersion::Any)
    }
}

/// Parses `any`, `no_stream`, `exists` or a number.
pub fn parse_expected_version(s: &str) -> Result<ExpectedVersion, String> {
    s.parse()
}

/// How an `ExpectedVersion` is shown in error bodies: the request syntax.
pub fn expected_version_json(e: ExpectedVersion) -> Value {
    match e {
        ExpectedVersion::Any => json!("any"),
        ExpectedVersion::NoStream => json!("no_stream"),
        ExpectedVersion::StreamExists => json!("exists"),
        ExpectedVersion::Exact(v) => json!(v),
    }
}

impl<'de> Deserialize<'de> for ExpectedVersionArg {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ExpectedVersionArg;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(EXPECTED_VERSION_SYNTAX)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(ExpectedVersionArg(ExpectedVersion::Exact(v)))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                parse_expected_version(s)
                    .map(ExpectedVersionArg)
                    .map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// Body of `POST /streams/{stream}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AppendBody {
    /// The guard: `"any"` (default), `"no_stream"`, `"exists"` or a version.
    #[serde(default)]
    #[schema(value_type = Value)]
    pub expected_version: ExpectedVersionArg,
    /// The events, in order.
    pub events: Vec<EventIn>,
}

/// Body of `POST /multi`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MultiBody {
    /// One part per stream.
    pub streams: Vec<MultiPart>,
}

/// One stream's part of `POST /multi`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MultiPart {
    /// The stream's name.
    pub stream: String,
    /// Its guard: `"any"` (default), `"no_stream"`, `"exists"` or a version.
    #[serde(default)]
    #[schema(value_type = Value)]
    pub expected_version: ExpectedVersionArg,
    /// Its events.
    pub events: Vec<EventIn>,
}

/// An event in a request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventIn {
    /// A UUID, for idempotent retries; the store makes one when absent.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub id: Option<EventId>,
    /// The type name.
    #[serde(rename = "type")]
    pub event_type: String,
    /// `json` (default) or `binary` (then `data` is a base64 string).
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub content_type: ContentType,
    /// The payload, kept as the exact bytes sent.
    #[schema(value_type = Value)]
    pub data: Box<RawValue>,
    /// `correlation_id`, `causation_id`, `user_id`, `source`; any other
    /// string pair goes into `extra`.
    #[serde(default)]
    #[schema(value_type = Option<std::collections::BTreeMap<String, String>>)]
    pub metadata: Option<Map<String, Value>>,
}

impl EventIn {
    /// Turns the wire form into a `NewEvent`; `index` names it in errors.
    pub fn into_new_event(self, index: usize) -> Result<NewEvent, ApiError> {
        let data: Vec<u8> = match self.content_type {
            ContentType::Json => self.data.get().as_bytes().to_vec(),
            ContentType::Binary => {
                let text: String = serde_json::from_str(self.data.get()).map_err(|_| {
                    ApiError::invalid(format!(
                        "event {index}: binary data must be a base64 string"
                    ))
                })?;
                BASE64.decode(text.as_bytes()).map_err(|e| {
                    ApiError::invalid(format!("event {index}: data is not valid base64: {e}"))
                })?
            }
        };
        let metadata = match self.metadata {
            Some(m) => metadata_from_json(index, m)?,
            None => Metadata::default(),
        };
        Ok(NewEvent {
            id: self.id,
            event_type: self.event_type,
            data: data.into(),
            content_type: self.content_type,
            metadata,
        })
    }
}

fn metadata_from_json(index: usize, m: Map<String, Value>) -> Result<Metadata, ApiError> {
    let mut out = Metadata::default();
    for (k, v) in m {
        let Value::String(s) = v else {
            return Err(ApiError::invalid(format!(
                "event {index}: metadata `{k}` must be a string"
            )));
        };
        match k.as_str() {
            "correlation_id" => out.correlation_id = Some(s),
            "causation_id" => out.causation_id = Some(s),
            "user_id" => out.user_id = Some(s),
            "source" => out.source = Some(s),
            _ => {
                out.extra.insert(k, s);
            }
        }
    }
    Ok(out)
}

/// Metadata as one flat object, the same shape a request sends.
fn metadata_to_json(m: &Metadata) -> Map<String, Value> {
    let mut out = Map::new();
    // Extra pairs first so that a named field wins should a (non-HTTP) writer
    // have put one of the reserved names into `extra`.
    for (k, v) in &m.extra {
        out.insert(k.clone(), json!(v));
    }
    let named = [
        ("correlation_id", &m.correlation_id),
        ("causation_id", &m.causation_id),
        ("user_id", &m.user_id),
        ("source", &m.source),
    ];
    for (k, v) in named {
        if let Some(v) = v {
            out.insert(k.into(), json!(v));
        }
    }
    out
}

/// An event in a response (reads and subscriptions).
#[derive(Debug, Serialize)]
pub struct EventOut<'a> {
    id: String,
    stream: &'a str,
    version: u64,
    position: u64,
    #[serde(rename = "type")]
    event_type: &'a str,
    content_type: ContentType,
    data: Box<RawValue>,
    metadata: Map<String, Value>,
    recorded_at: String,
}

impl<'a> EventOut<'a> {
    /// The wire form of a recorded event.
    pub fn new(e: &'a RecordedEvent) -> Self {
        let json_data = match e.content_type {
            ContentType::Json => std::str::from_utf8(&e.data)
                .ok()
                .and_then(|s| RawValue::from_string(s.to_owned()).ok()),
            ContentType::Binary => None,
        };
        let (content_type, data) = match json_data {
            Some(raw) => (ContentType::Json, raw),
            None => {
                if e.content_type == ContentType::Json {
                    // Stores check JSON on append, so this is a store bug;
                    // show the bytes rather than refuse the whole page.
                    tracing::warn!(position = e.position.0, "stored JSON event does not parse");
                }
                let text = BASE64.encode(&e.data);
                let raw = serde_json::value::to_raw_value(&text)
                    .unwrap_or_else(|_| RawValue::NULL.to_owned());
                (ContentType::Binary, raw)
            }
        };
        EventOut {
            id: e.id.to_string(),
            stream: e.stream_id.as_str(),
            version: e.version,
            position: e.position.0,
            event_type: &e.event_type,
            content_type,
            data,
            metadata: metadata_to_json(&e.metadata),
            recorded_at: e.recorded_at.to_rfc3339_opts(SecondsFormat::Micros, true),
        }
    }
}

/// A page of a read: the events and where the next page starts (`null` when
/// the page was short, that is, the end was reached).
#[derive(Debug, Serialize)]
pub struct Page<'a> {
    /// The events.
    pub events: Vec<EventOut<'a>>,
    /// `from=` (stream reads) or `after=` (`/all`) for the next page.
    pub next: Option<u64>,
}
