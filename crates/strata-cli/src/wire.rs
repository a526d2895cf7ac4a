//! The JSON shape of events as the CLI prints, exports and imports them.
//!
//! It is the HTTP API's event shape (docs/http-api.md, "Events on the wire"),
//! so a line printed by `strata read` or `strata export` looks exactly like
//! an event in a server response, and the same parser reads both:
//!
//! ```json
//! {"id":"…","stream":"account-42","version":3,"position":17,"type":"Deposited",
//!  "content_type":"json","data":{"amount":"10.00"},"metadata":{},"recorded_at":"…"}
//! ```
//!
//! `data` of a JSON event is the payload byte for byte (kept as a raw JSON
//! value, never re-serialized); a binary event, or a "JSON" event whose bytes
//! do not parse, is a standard base64 string with `"content_type": "binary"`.

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use strata_core::{
    AppendResult, ContentType, EventId, ExpectedVersion, Metadata, NewEvent, Position,
    RecordedEvent, StreamId,
};

/// Why a wire value could not be turned into an event.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// `data` of a binary event is not a base64 string.
    #[error("binary data must be a standard base64 string: {0}")]
    Base64(String),
    /// A JSON event's data is not JSON (or not UTF-8).
    #[error("data is not valid JSON: {0}")]
    Json(String),
    /// The stream name is not valid.
    #[error("{0}")]
    Stream(String),
    /// `recorded_at` is not RFC 3339.
    #[error("recorded_at `{value}` is not an RFC 3339 time: {reason}")]
    Time {
        /// The value sent.
        value: String,
        /// The parser's complaint.
        reason: String,
    },
}

/// An event as printed and exported: the HTTP API's response shape.
#[derive(Debug, Serialize, Deserialize)]
pub struct WireEvent {
    /// The event id.
    pub id: EventId,
    /// Its stream.
    pub stream: String,
    /// Its version in the stream (1-based).
    pub version: u64,
    /// Its position in `$all` (of the store it was read from).
    #[serde(default)]
    pub position: u64,
    /// Its type name.
    #[serde(rename = "type")]
    pub event_type: String,
    /// `json` or `binary` (then `data` is base64).
    #[serde(default)]
    pub content_type: ContentType,
    /// The payload: raw JSON, or a base64 string for binary data.
    pub data: Box<RawValue>,
    /// One flat object of strings.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// When the source store recorded it (RFC 3339 UTC, microseconds).
    #[serde(default)]
    pub recorded_at: Option<String>,
}

impl WireEvent {
    /// The wire form of a recorded event.
    pub fn from_recorded(e: &RecordedEvent) -> WireEvent {
        let (content_type, data) = data_to_raw(e.content_type, &e.data);
        WireEvent {
            id: e.id,
            stream: e.stream_id.as_str().to_string(),
            version: e.version,
            position: e.position.0,
            event_type: e.event_type.clone(),
            content_type,
            data,
            metadata: metadata_to_map(&e.metadata),
            recorded_at: Some(e.recorded_at.to_rfc3339_opts(SecondsFormat::Micros, true)),
        }
    }

    /// The event as the store types it (what a server response decodes to).
    pub fn into_recorded(self) -> Result<RecordedEvent, WireError> {
        let stream_id = stream_id(&self.stream)?;
        let data = raw_to_data(self.content_type, &self.data)?;
        let recorded_at = match &self.recorded_at {
            Some(t) => DateTime::parse_from_rfc3339(t)
                .map_err(|e| WireError::Time {
                    value: t.clone(),
                    reason: e.to_string(),
                })?
                .with_timezone(&Utc),
            None => DateTime::<Utc>::default(),
        };
        Ok(RecordedEvent {
            id: self.id,
            stream_id,
            version: self.version,
            position: Position(self.position),
            event_type: self.event_type,
            data: data.into(),
            content_type: self.content_type,
            metadata: metadata_from_map(self.metadata),
            recorded_at,
        })
    }

    /// The event to append again (import): id, type, data and metadata kept;
    /// version, position and time are the target store's to assign.
    pub fn to_new_event(&self) -> Result<NewEvent, WireError> {
        let data = raw_to_data(self.content_type, &self.data)?;
        Ok(NewEvent {
            id: Some(self.id),
            event_type: self.event_type.clone(),
            data: data.into(),
            content_type: self.content_type,
            metadata: metadata_from_map(self.metadata.clone()),
        })
    }
}

/// An event in an append request (`POST /streams/{s}`, `/multi`, `append --stdin`).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventIn {
    /// An id for idempotent retries; the store makes one when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<EventId>,
    /// The type name.
    #[serde(rename = "type")]
    pub event_type: String,
    /// `json` (default) or `binary` (then `data` is base64).
    #[serde(default)]
    pub content_type: ContentType,
    /// The payload.
    pub data: Box<RawValue>,
    /// Flat string pairs.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
}

impl EventIn {
    /// The wire form of an event to append.
    pub fn from_new(e: &NewEvent) -> EventIn {
        let (content_type, data) = data_to_raw(e.content_type, &e.data);
        EventIn {
            id: e.id,
            event_type: e.event_type.clone(),
            content_type,
            data,
            metadata: metadata_to_map(&e.metadata),
        }
    }

    /// The event to append.
    pub fn into_new_event(self) -> Result<NewEvent, WireError> {
        let data = raw_to_data(self.content_type, &self.data)?;
        Ok(NewEvent {
            id: self.id,
            event_type: self.event_type,
            data: data.into(),
            content_type: self.content_type,
            metadata: metadata_from_map(self.metadata),
        })
    }
}

/// An append's answer, as the server sends it and `append --json` prints it.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct AppendOut {
    /// The stream's version after the append.
    pub next_expected_version: u64,
    /// Position of the first event appended.
    pub first_position: u64,
    /// Position of the last event appended.
    pub last_position: u64,
}

impl From<AppendResult> for AppendOut {
    fn from(r: AppendResult) -> Self {
        AppendOut {
            next_expected_version: r.next_expected_version,
            first_position: r.first_position.0,
            last_position: r.last_position.0,
        }
    }
}

impl From<AppendOut> for AppendResult {
    fn from(r: AppendOut) -> Self {
        AppendResult {
            next_expected_version: r.next_expected_version,
            first_position: Position(r.first_position),
            last_position: Position(r.last_position),
        }
    }
}

/// A user stream name, or a system one (`$…`) as found in an export.
pub fn stream_id(name: &str) -> Result<StreamId, WireError> {
    let id = if name.starts_with('$') {
        StreamId::system(name)
    } else {
        StreamId::new(name)
    };
    id.map_err(|e| WireError::Stream(e.to_string()))
}

/// Parses `any`, `no_stream`, `exists` or a version number (the API's
/// spelling, shared with the server through `strata_core`).
pub fn parse_expected_version(s: &str) -> Result<ExpectedVersion, String> {
    s.parse()
}

/// The API's spelling of an expected version.
pub fn expected_version_json(e: ExpectedVersion) -> serde_json::Value {
    match e {
        ExpectedVersion::Any => serde_json::json!("any"),
        ExpectedVersion::NoStream => serde_json::json!("no_stream"),
        ExpectedVersion::StreamExists => serde_json::json!("exists"),
        ExpectedVersion::Exact(v) => serde_json::json!(v),
    }
}

/// A payload as a raw JSON value: verbatim when it is JSON, else base64
/// (and the content type it must then be shown with).
fn data_to_raw(content_type: ContentType, data: &[u8]) -> (ContentType, Box<RawValue>) {
    if content_type == ContentType::Json {
        if let Some(raw) = std::str::from_utf8(data)
            .ok()
            .and_then(|s| RawValue::from_string(s.to_owned()).ok())
        {
            return (ContentType::Json, raw);
        }
    }
    let text = BASE64.encode(data);
    // A JSON string of base64 characters always serializes.
    let raw = serde_json::value::to_raw_value(&text).unwrap_or_else(|_| RawValue::NULL.to_owned());
    (ContentType::Binary, raw)
}

/// The payload bytes of a raw wire value.
fn raw_to_data(content_type: ContentType, raw: &RawValue) -> Result<Vec<u8>, WireError> {
    match content_type {
        ContentType::Json => Ok(raw.get().as_bytes().to_vec()),
        ContentType::Binary => {
            let text: String =
                serde_json::from_str(raw.get()).map_err(|e| WireError::Base64(e.to_string()))?;
            BASE64
                .decode(text.as_bytes())
                .map_err(|e| WireError::Base64(e.to_string()))
        }
    }
}

/// Checks that `text` is one JSON value and keeps it verbatim.
pub fn raw_json(text: &str) -> Result<Box<RawValue>, WireError> {
    RawValue::from_string(text.to_owned()).map_err(|e| WireError::Json(e.to_string()))
}

/// Metadata as one flat map, the shape the API uses.
pub fn metadata_to_map(m: &Metadata) -> BTreeMap<String, String> {
    let mut out = m.extra.clone();
    let named = [
        ("correlation_id", &m.correlation_id),
        ("causation_id", &m.causation_id),
        ("user_id", &m.user_id),
        ("source", &m.source),
    ];
    for (k, v) in named {
        if let Some(v) = v {
            out.insert(k.to_string(), v.clone());
        }
    }
    out
}

/// The inverse of [`metadata_to_map`].
pub fn metadata_from_map(map: BTreeMap<String, String>) -> Metadata {
    let mut out = Metadata::default();
    for (k, v) in map {
        match k.as_str() {
            "correlation_id" => out.correlation_id = Some(v),
            "causation_id" => out.causation_id = Some(v),
            "user_id" => out.user_id = Some(v),
            "source" => out.source = Some(v),
            _ => {
                out.extra.insert(k, v);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn recorded(content_type: ContentType, data: &[u8]) -> RecordedEvent {
        RecordedEvent {
            id: EventId::new(),
            stream_id: StreamId::new("account-1").unwrap(),
            version: 2,
            position: Position(9),
            event_type: "Deposited".into(),
            data: data.to_vec().into(),
            content_type,
            metadata: Metadata::default()
                .with_correlation_id("c-1")
                .with("tenant", "t"),
            recorded_at: Utc::now(),
        }
    }

    #[test]
    fn json_data_travels_byte_for_byte() {
        let e = recorded(ContentType::Json, br#"{"b": 1.50,  "a":"x"}"#);
        let line = serde_json::to_string(&WireEvent::from_recorded(&e)).unwrap();
        assert!(line.contains(r#""data":{"b": 1.50,  "a":"x"}"#), "{line}");
        let back: WireEvent = serde_json::from_str(&line).unwrap();
        let back = back.into_recorded().unwrap();
        assert_eq!(back.data, e.data);
        assert_eq!(back.metadata, e.metadata);
        assert_eq!(back.id, e.id);
        assert_eq!(back.version, 2);
        assert_eq!(back.position, Position(9));
    }

    #[test]
    fn binary_data_is_base64() {
        let e = recorded(ContentType::Binary, &[0, 159, 255, 10]);
        let w = WireEvent::from_recorded(&e);
        assert_eq!(w.content_type, ContentType::Binary);
        assert_eq!(w.data.get(), "\"AJ//Cg==\"");
        let n = w.to_new_event().unwrap();
        assert_eq!(&n.data[..], &[0, 159, 255, 10]);
        assert_eq!(n.id, Some(e.id));
    }

    #[test]
    fn expected_versions_parse() {
        assert_eq!(parse_expected_version("any"), Ok(ExpectedVersion::Any));
        assert_eq!(parse_expected_version("7"), Ok(ExpectedVersion::Exact(7)));
        assert!(parse_expected_version("seven").is_err());
    }
}
