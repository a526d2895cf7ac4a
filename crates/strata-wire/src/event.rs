//! Events on the wire: [`EventIn`] in append requests, [`WireEvent`] in
//! reads, subscriptions and `strata export` files.

use std::borrow::Cow;
use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use strata_core::{
    ContentType, EventId, Metadata, NewEvent, Position, RecordedEvent, StreamId, Tag,
};

use crate::error::WireError;
use crate::metadata::{metadata_from_json, metadata_from_map, metadata_to_map};

/// An event in a request.
///
/// A decoded one borrows its payload from the text it was decoded from, so
/// decode it from a `str` or a byte slice held in memory (`serde_json`'s
/// `from_slice`, `from_str`), not from a reader.
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct EventIn<'a> {
    /// A UUID, for idempotent retries; the store makes one when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub id: Option<EventId>,
    /// The type name.
    #[serde(rename = "type")]
    pub event_type: String,
    /// `json` (default) or `binary` (then `data` is a base64 string).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub content_type: ContentType,
    /// The payload, kept as the exact bytes sent: borrowed from the
    /// request's text when decoded, owned when built.
    #[serde(borrow, deserialize_with = "borrowed_raw")]
    #[cfg_attr(feature = "openapi", schema(value_type = Value))]
    pub data: Cow<'a, RawValue>,
    /// `correlation_id`, `causation_id`, `user_id`, `source`; any other
    /// string pair goes into `extra`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = Option<std::collections::BTreeMap<String, String>>)
    )]
    pub metadata: Option<Map<String, Value>>,
    /// Tags for dynamic consistency boundaries (`key:value` by convention).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub tags: Vec<Tag>,
}

impl EventIn<'_> {
    /// The wire form of an event to append.
    ///
    /// ```
    /// let e = strata_core::NewEvent::json("A", &serde_json::json!({"n": 1})).unwrap();
    /// let w = strata_wire::EventIn::from_new(&e);
    /// assert_eq!(w.data.get(), r#"{"n":1}"#);
    /// assert!(w.metadata.is_none());
    /// ```
    pub fn from_new(e: &NewEvent) -> EventIn<'static> {
        let (content_type, data) = data_to_raw(e.content_type, &e.data);
        let map = metadata_to_map(&e.metadata);
        let metadata = (!map.is_empty()).then(|| {
            map.into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect()
        });
        EventIn {
            id: e.id,
            event_type: e.event_type.clone(),
            content_type,
            data: Cow::Owned(data),
            metadata,
            tags: e.tags.clone(),
        }
    }

    /// The event to append: a JSON payload byte for byte, a binary one
    /// decoded from base64.
    ///
    /// ```
    /// let w: strata_wire::EventIn =
    ///     serde_json::from_str(r#"{"type":"B","content_type":"binary","data":"AAE="}"#).unwrap();
    /// assert_eq!(&w.into_new_event().unwrap().data[..], &[0, 1]);
    /// ```
    ///
    /// A JSON payload was parsed with the request, so the event carries it
    /// vouched for ([`NewEvent::raw_json`]): the store does not parse it a
    /// second time. A payload borrowed from the request's text is copied
    /// once here; [`into_new_event_in`](Self::into_new_event_in) shares it
    /// instead.
    pub fn into_new_event(self) -> Result<NewEvent, WireError> {
        self.into_new_event_in(&Bytes::new())
    }

    /// [`into_new_event`](Self::into_new_event) for an event decoded from
    /// `source`: a JSON payload borrowed from `source` becomes the event's
    /// data without a copy, as a shared part of `source`
    /// ([`NewEvent::raw_json_in`]).
    ///
    /// ```
    /// use bytes::Bytes;
    /// let body = Bytes::from_static(br#"{"type":"A","data":{"n": 1}}"#);
    /// let w: strata_wire::EventIn = serde_json::from_slice(&body).unwrap();
    /// let e = w.into_new_event_in(&body).unwrap();
    /// assert_eq!(&e.data[..], br#"{"n": 1}"#);
    /// assert_eq!(e.data.as_ptr(), body[19..].as_ptr());
    /// ```
    pub fn into_new_event_in(self, source: &Bytes) -> Result<NewEvent, WireError> {
        // The data first: of a bad payload and bad metadata, the payload
        // is the error reported.
        let event = payload_event(self.event_type, self.content_type, self.data, source)?;
        let metadata = match self.metadata {
            Some(m) => metadata_from_json(m)?,
            None => Metadata::default(),
        };
        let event = event.with_metadata(metadata).with_tags(self.tags);
        Ok(match self.id {
            Some(id) => event.with_id(id),
            None => event,
        })
    }

    /// The length of its payload's text when it is JSON (what
    /// [`into_new_event_in`](Self::into_new_event_in) may share), else 0.
    pub fn json_payload_len(&self) -> usize {
        json_payload_len(self.content_type, &self.data)
    }
}

/// The length of a JSON payload's text; 0 for a binary one (decoded, so
/// never shared).
pub(crate) fn json_payload_len(content_type: ContentType, data: &RawValue) -> usize {
    match content_type {
        ContentType::Json => data.get().len(),
        ContentType::Binary => 0,
    }
}

/// The buffer a request's payloads may be shared with
/// ([`EventIn::into_new_event_in`]): `body` when its JSON payloads,
/// `json_payload_bytes` in all, make up at least half of it; else an empty
/// buffer, so that they are copied.
///
/// A shared payload keeps the whole body alive until its append is
/// written, while a store budgets its queue by the events' own sizes: the
/// rule keeps what a request holds within twice what it is charged, so a
/// body padded around a tiny payload is not kept whole.
///
/// ```
/// use bytes::Bytes;
/// use strata_wire::{payload_source, EventIn};
/// let body = Bytes::from_static(br#"{"type":"A","data":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16]}"#);
/// let e: EventIn = serde_json::from_slice(&body).unwrap();
/// assert_eq!(payload_source(&body, e.json_payload_len()), body); // shared
///
/// let padded = Bytes::from(format!(r#"{{"type":"A","data":1}}{}"#, " ".repeat(100)));
/// let e: EventIn = serde_json::from_slice(&padded).unwrap();
/// assert!(payload_source(&padded, e.json_payload_len()).is_empty()); // copied
/// ```
pub fn payload_source(body: &Bytes, json_payload_bytes: usize) -> Bytes {
    if json_payload_bytes.saturating_mul(2) >= body.len() {
        body.clone()
    } else {
        Bytes::new()
    }
}

/// An event in a response (reads, subscriptions) and in an export file.
///
/// It borrows the stream name and type from the event it shows, so a server
/// encodes a page without copying them; a decoded one owns them.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WireEvent<'a> {
    /// The event id.
    pub id: EventId,
    /// Its stream.
    pub stream: Cow<'a, str>,
    /// Its version in the stream (1-based).
    pub version: u64,
    /// Its position in `$all` (of the store it was read from).
    #[serde(default)]
    pub position: u64,
    /// Its type name.
    #[serde(rename = "type")]
    pub event_type: Cow<'a, str>,
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
    /// Its tags, sorted, each once; absent when it has none.
    #[serde(default, skip_serializing_if = "<[Tag]>::is_empty")]
    pub tags: Cow<'a, [Tag]>,
}

impl<'a> WireEvent<'a> {
    /// The wire form of a recorded event. A "JSON" event whose bytes do not
    /// parse (which stores refuse on append) is shown as binary.
    ///
    /// ```
    /// # use strata_core::*;
    /// let e = RecordedEvent {
    ///     id: EventId::new(),
    ///     stream_id: StreamId::new("account-1").unwrap(),
    ///     version: 1,
    ///     position: Position(5),
    ///     event_type: "Opened".into(),
    ///     data: br#"{"owner": "ada"}"#.to_vec().into(),
    ///     content_type: ContentType::Json,
    ///     metadata: Metadata::default(),
    ///     recorded_at: chrono::Utc::now(),
    ///     tags: vec![Tag::new("owner:ada").unwrap()],
    /// };
    /// let line = serde_json::to_string(&strata_wire::WireEvent::from_recorded(&e)).unwrap();
    /// assert!(line.contains(r#""data":{"owner": "ada"}"#));
    /// assert!(line.contains(r#""tags":["owner:ada"]"#));
    /// ```
    pub fn from_recorded(e: &'a RecordedEvent) -> WireEvent<'a> {
        let (content_type, data) = data_to_raw(e.content_type, &e.data);
        WireEvent {
            id: e.id,
            stream: Cow::Borrowed(e.stream_id.as_str()),
            version: e.version,
            position: e.position.0,
            event_type: Cow::Borrowed(&e.event_type),
            content_type,
            data,
            metadata: metadata_to_map(&e.metadata),
            recorded_at: Some(e.recorded_at.to_rfc3339_opts(SecondsFormat::Micros, true)),
            tags: Cow::Borrowed(&e.tags),
        }
    }

    /// The event as the store types it (what a server response decodes to).
    /// A missing `recorded_at` reads as the Unix epoch.
    ///
    /// ```
    /// let line = r#"{"id":"0190a3c4-1f2e-7000-8000-000000000001","stream":"s-1","version":1,
    ///   "position":3,"type":"A","content_type":"json","data":{},"metadata":{},
    ///   "recorded_at":"2026-01-02T03:04:05.000006Z"}"#;
    /// let w: strata_wire::WireEvent = serde_json::from_str(line).unwrap();
    /// let e = w.into_recorded().unwrap();
    /// assert_eq!(e.position.0, 3);
    /// ```
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
            event_type: self.event_type.into_owned(),
            data: data.into(),
            content_type: self.content_type,
            metadata: metadata_from_map(self.metadata),
            recorded_at,
            tags: strata_core::dcb::tag_set(self.tags.into_owned()),
        })
    }

    /// The event to append again (an import): id, type, data and metadata
    /// kept; version, position and time are the target store's to assign.
    ///
    /// ```
    /// let line = r#"{"id":"0190a3c4-1f2e-7000-8000-000000000001","stream":"s-1","version":1,
    ///   "type":"A","content_type":"binary","data":"AAE="}"#;
    /// let w: strata_wire::WireEvent = serde_json::from_str(line).unwrap();
    /// assert_eq!(&w.to_new_event().unwrap().data[..], &[0, 1]);
    /// ```
    pub fn to_new_event(&self) -> Result<NewEvent, WireError> {
        let event_type = self.event_type.clone().into_owned();
        let data = Cow::Borrowed(&*self.data);
        let event = payload_event(event_type, self.content_type, data, &Bytes::new())?;
        Ok(event
            .with_id(self.id)
            .with_metadata(metadata_from_map(self.metadata.clone()))
            .with_tags(self.tags.iter().cloned()))
    }
}

/// Appends to `out` the JSON text of [`WireEvent::from_recorded`]`(e)`,
/// byte for byte what `serde_json` writes for it, without parsing or
/// copying the payload twice: a JSON payload's stored bytes go in verbatim.
///
/// Stores refuse a JSON event whose data does not parse
/// ([`ContentType::check_json`] on every append), so the stored bytes are
/// one JSON value; this trusts that check rather than parsing them again
/// for each reader, as [`WireEvent::from_recorded`] does. Used where every
/// event is encoded on its own (a subscription's messages).
///
/// ```
/// # use strata_core::*;
/// let e = RecordedEvent {
///     id: EventId::new(),
///     stream_id: StreamId::new("account-1").unwrap(),
///     version: 1,
///     position: Position(5),
///     event_type: "Opened".into(),
///     data: br#"{"owner": "ada"}"#.to_vec().into(),
///     content_type: ContentType::Json,
///     metadata: Metadata::default(),
///     recorded_at: chrono::Utc::now(),
///     tags: vec![Tag::new("owner:ada").unwrap()],
/// };
/// let mut out = Vec::new();
/// strata_wire::write_recorded_json(&e, &mut out).unwrap();
/// let old = serde_json::to_string(&strata_wire::WireEvent::from_recorded(&e)).unwrap();
/// assert_eq!(out, old.as_bytes());
/// ```
pub fn write_recorded_json(e: &RecordedEvent, out: &mut Vec<u8>) -> Result<(), WireError> {
    let json = |err: serde_json::Error| WireError::Json(err.to_string());
    out.reserve(e.data.len() + e.stream_id.as_str().len() + e.event_type.len() + ENVELOPE_BYTES);
    out.extend_from_slice(b"{\"id\":");
    serde_json::to_writer(&mut *out, &e.id).map_err(json)?;
    out.extend_from_slice(b",\"stream\":");
    serde_json::to_writer(&mut *out, e.stream_id.as_str()).map_err(json)?;
    out.extend_from_slice(b",\"version\":");
    push_u64(out, e.version);
    out.extend_from_slice(b",\"position\":");
    push_u64(out, e.position.0);
    out.extend_from_slice(b",\"type\":");
    serde_json::to_writer(&mut *out, e.event_type.as_str()).map_err(json)?;
    match e.content_type {
        ContentType::Json => {
            out.extend_from_slice(b",\"content_type\":\"json\",\"data\":");
            out.extend_from_slice(trim_json_whitespace(&e.data));
        }
        ContentType::Binary => {
            // Base64 characters need no escaping in a JSON string.
            out.extend_from_slice(b",\"content_type\":\"binary\",\"data\":\"");
            out.extend_from_slice(BASE64.encode(&e.data).as_bytes());
            out.push(b'"');
        }
    }
    out.extend_from_slice(b",\"metadata\":");
    if e.metadata.is_empty() {
        out.extend_from_slice(b"{}");
    } else {
        serde_json::to_writer(&mut *out, &metadata_to_map(&e.metadata)).map_err(json)?;
    }
    // RFC 3339 text has no character JSON escapes.
    out.extend_from_slice(b",\"recorded_at\":\"");
    out.extend_from_slice(
        e.recorded_at
            .to_rfc3339_opts(SecondsFormat::Micros, true)
            .as_bytes(),
    );
    out.push(b'"');
    if !e.tags.is_empty() {
        out.extend_from_slice(b",\"tags\":");
        serde_json::to_writer(&mut *out, &e.tags).map_err(json)?;
    }
    out.push(b'}');
    Ok(())
}

/// `data` without the JSON whitespace around its value (as a raw value
/// parsed from it keeps none).
fn trim_json_whitespace(data: &[u8]) -> &[u8] {
    let ws = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r');
    let start = data.iter().position(|b| !ws(b)).unwrap_or(data.len());
    let end = data.iter().rposition(|b| !ws(b)).map_or(start, |i| i + 1);
    &data[start..end]
}

/// Room reserved for an event's JSON besides its data, stream and type:
/// the field names, the id, two numbers and the time, with some to spare.
const ENVELOPE_BYTES: usize = 192;

/// Appends `n` in decimal.
fn push_u64(out: &mut Vec<u8>, n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut n = n;
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// A user stream name, or a system one (`$…`) as found in an export.
///
/// ```
/// assert!(strata_wire::stream_id("account-1").is_ok());
/// assert!(strata_wire::stream_id("").is_err());
/// ```
pub fn stream_id(name: &str) -> Result<StreamId, WireError> {
    let id = if name.starts_with('$') {
        StreamId::system(name)
    } else {
        StreamId::new(name)
    };
    id.map_err(|e| WireError::Stream(e.to_string()))
}

/// Checks that `text` is one JSON value and keeps it verbatim.
///
/// ```
/// assert_eq!(strata_wire::raw_json(r#"{"a": 1.50}"#).unwrap().get(), r#"{"a": 1.50}"#);
/// assert!(strata_wire::raw_json("{").is_err());
/// ```
pub fn raw_json(text: &str) -> Result<Box<RawValue>, WireError> {
    RawValue::from_string(text.to_owned()).map_err(|e| WireError::Json(e.to_string()))
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

/// An event to append whose payload is `data` as a request carries it: a
/// JSON value, vouched for and taken without a copy when it is owned or
/// lies in `source` ([`NewEvent::raw_json`], [`NewEvent::raw_json_in`]),
/// or a base64 string, decoded.
fn payload_event(
    event_type: String,
    content_type: ContentType,
    data: Cow<'_, RawValue>,
    source: &Bytes,
) -> Result<NewEvent, WireError> {
    Ok(match content_type {
        ContentType::Json => match data {
            Cow::Owned(raw) => NewEvent::raw_json(event_type, raw),
            Cow::Borrowed(raw) => NewEvent::raw_json_in(event_type, raw, source),
        },
        ContentType::Binary => {
            NewEvent::new(event_type, raw_to_data(content_type, &data)?, content_type)
        }
    })
}

/// Decodes a payload as a borrowed raw value: the request's own text, not a
/// copy of it.
pub(crate) fn borrowed_raw<'de: 'a, 'a, D>(d: D) -> Result<Cow<'a, RawValue>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    <&'a RawValue>::deserialize(d).map(Cow::Borrowed)
}

/// The payload bytes of a raw wire value.
fn raw_to_data(content_type: ContentType, raw: &RawValue) -> Result<Vec<u8>, WireError> {
    match content_type {
        ContentType::Json => Ok(raw.get().as_bytes().to_vec()),
        ContentType::Binary => {
            let text: String =
                serde_json::from_str(raw.get()).map_err(|_| WireError::BinaryNotString)?;
            BASE64
                .decode(text.as_bytes())
                .map_err(|e| WireError::Base64(e.to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use strata_core::event::lies_within;

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
            tags: Vec::new(),
        }
    }

    #[test]
    fn json_data_travels_byte_for_byte() {
        let e = recorded(ContentType::Json, br#"{"b": 1.50,  "a":"x"}"#);
        let line = serde_json::to_string(&WireEvent::from_recorded(&e)).unwrap();
        assert!(line.contains(r#""data":{"b": 1.50,  "a":"x"}"#), "{line}");
        assert!(line.contains(&format!(r#""id":"{}""#, e.id)), "{line}");
        let back: WireEvent = serde_json::from_str(&line).unwrap();
        let back = back.into_recorded().unwrap();
        assert_eq!(back.data, e.data);
        assert_eq!(back.metadata, e.metadata);
        assert_eq!(back.id, e.id);
        assert_eq!(back.version, 2);
        assert_eq!(back.position, Position(9));
    }

    /// What `write_recorded_json` must equal: the `WireEvent` encoding.
    fn old_encoding(e: &RecordedEvent) -> String {
        serde_json::to_string(&WireEvent::from_recorded(e)).unwrap()
    }

    fn new_encoding(e: &RecordedEvent) -> String {
        let mut out = b"prefix".to_vec();
        write_recorded_json(e, &mut out).unwrap();
        assert_eq!(&out[..6], b"prefix", "it appends");
        String::from_utf8(out[6..].to_vec()).unwrap()
    }

    #[test]
    fn spliced_json_equals_the_wire_event_encoding() {
        let payloads: [&[u8]; 7] = [
            br#"{"b": 1.50,  "a":"x"}"#,
            b"{\n  \"pretty\": [1, 2,\t3],\r\n  \"n\": null\n}\n",
            r#"{"esc":"\u00e9\ud83d\ude00 \"q\" \\ \/","raw":"é😀"}"#.as_bytes(),
            b"  \"just a string\"  ",
            b"12345678901234567890e-3",
            b"[]",
            b"true",
        ];
        for data in payloads {
            let mut e = recorded(ContentType::Json, data);
            assert_eq!(new_encoding(&e), old_encoding(&e));
            // Without metadata, with tags, odd names and large numbers.
            e.metadata = Metadata::default();
            e.tags = vec![Tag::new("owner:ada").unwrap(), Tag::new("b\"é").unwrap()];
            e.stream_id = StreamId::new("s\"é\\😀-1").unwrap();
            e.event_type = "Ty\"pe\\é".into();
            e.version = u64::MAX;
            e.position = Position(0);
            assert_eq!(new_encoding(&e), old_encoding(&e));
        }
    }

    #[test]
    fn spliced_binary_and_metadata_equal_the_wire_event_encoding() {
        for data in [&[0u8, 159, 255, 10][..], b"", b"{\"looks\":\"json\"}"] {
            let mut e = recorded(ContentType::Binary, data);
            assert_eq!(new_encoding(&e), old_encoding(&e));
            e.metadata = Metadata::default()
                .with_correlation_id("c\"1")
                .with("z-last", "é\n")
                .with("a-first", "\u{7f}");
            e.metadata.causation_id = Some("cause".into());
            e.metadata.user_id = Some("u".into());
            e.metadata.source = Some("src".into());
            assert_eq!(new_encoding(&e), old_encoding(&e));
        }
        // Times at the edges of the microsecond format.
        let mut e = recorded(ContentType::Json, b"{}");
        for t in [
            "2026-01-02T03:04:05Z",
            "1970-01-01T00:00:00.000000999Z",
            "2026-12-31T23:59:59.999999999Z",
        ] {
            e.recorded_at = DateTime::parse_from_rfc3339(t).unwrap().with_timezone(&Utc);
            assert_eq!(new_encoding(&e), old_encoding(&e));
        }
    }

    #[test]
    fn an_event_in_keeps_its_fields_and_vouches_only_for_json() {
        let json: EventIn = serde_json::from_str(
            r#"{"id":"0190a3c4-1f2e-7000-8000-000000000001","type":"A","data":{"n": 1},
               "metadata":{"correlation_id":"c","k":"v"},"tags":["b:2","a:1"]}"#,
        )
        .unwrap();
        let e = json.into_new_event().unwrap();
        assert_eq!(&e.data[..], br#"{"n": 1}"#);
        assert!(e.json_checked.covers(&e.data));
        assert_eq!(
            e.id.unwrap().to_string(),
            "0190a3c4-1f2e-7000-8000-000000000001"
        );
        assert_eq!(e.metadata.correlation_id.as_deref(), Some("c"));
        assert_eq!(e.metadata.extra.get("k").map(String::as_str), Some("v"));
        assert_eq!(e.tags.len(), 2);
        let binary: EventIn =
            serde_json::from_str(r#"{"type":"B","content_type":"binary","data":"AAE="}"#).unwrap();
        let e = binary.into_new_event().unwrap();
        assert_eq!(&e.data[..], &[0, 1]);
        assert!(!e.json_checked.covers(&e.data));
    }

    #[test]
    fn request_payloads_are_shared_with_the_body_not_copied() {
        let body = Bytes::from(
            br#"{"streams":[
                {"stream":"a","events":[{"type":"A","data":{"n": 1}},{"type":"B","data":[1, 2]}]},
                {"stream":"b","events":[{"type":"C","content_type":"binary","data":"AAE="}]}]}"#
                .to_vec(),
        );
        let multi: crate::MultiBody = serde_json::from_slice(&body).unwrap();
        let mut events = Vec::new();
        for part in multi.streams {
            for e in part.events {
                events.push(e.into_new_event_in(&body).unwrap());
            }
        }
        assert_eq!(&events[0].data[..], br#"{"n": 1}"#);
        assert_eq!(&events[1].data[..], b"[1, 2]");
        assert_eq!(&events[2].data[..], &[0, 1]);
        assert!(lies_within(&events[0].data, &body));
        assert!(lies_within(&events[1].data, &body));
        assert!(!lies_within(&events[2].data, &body), "binary is decoded");
        assert!(events[0].json_checked.covers(&events[0].data));
        assert!(events[1].json_checked.covers(&events[1].data));

        let dcb =
            Bytes::from(br#"{"events":[{"type":"A","data":{"k": "v"},"tags":["k:v"]}]}"#.to_vec());
        let body: crate::DcbAppendBody = serde_json::from_slice(&dcb).unwrap();
        let (parts, _) = body.into_parts_in(&dcb).unwrap();
        assert_eq!(&parts[0].events[0].data[..], br#"{"k": "v"}"#);
        assert!(lies_within(&parts[0].events[0].data, &dcb));

        // Decoded from text that is not the source given: copied, still
        // vouched for.
        let text = r#"{"type":"A","data":{"n": 1}}"#;
        let e: EventIn = serde_json::from_str(text).unwrap();
        let e = e.into_new_event_in(&Bytes::from_static(b"{}")).unwrap();
        assert!(!lies_within(&e.data, text.as_bytes()));
        assert!(e.json_checked.covers(&e.data));
    }

    #[test]
    fn a_bad_payload_is_reported_before_bad_metadata() {
        let both_bad: EventIn = serde_json::from_str(
            r#"{"type":"B","content_type":"binary","data":"!!","metadata":{"k":1}}"#,
        )
        .unwrap();
        let err = both_bad.into_new_event().unwrap_err();
        assert!(matches!(err, WireError::Base64(_)), "{err:?}");
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
    fn unparsable_json_is_shown_as_binary() {
        let e = recorded(ContentType::Json, b"{not json");
        let w = WireEvent::from_recorded(&e);
        assert_eq!(w.content_type, ContentType::Binary);
    }

    #[test]
    fn request_events_round_trip_and_name_what_is_wrong() {
        let n = NewEvent::json("A", &serde_json::json!({"x": 1}))
            .unwrap()
            .with_metadata(Metadata::default().with_correlation_id("c"));
        let text = serde_json::to_string(&EventIn::from_new(&n)).unwrap();
        let back: EventIn = serde_json::from_str(&text).unwrap();
        let back = back.into_new_event().unwrap();
        assert_eq!(back.data, n.data);
        assert_eq!(back.metadata, n.metadata);

        let bad: EventIn =
            serde_json::from_str(r#"{"type":"A","data":{},"metadata":{"k":1}}"#).unwrap();
        assert_eq!(
            bad.into_new_event().unwrap_err().to_string(),
            "metadata `k` must be a string"
        );
        let bad: EventIn =
            serde_json::from_str(r#"{"type":"A","content_type":"binary","data":1}"#).unwrap();
        assert_eq!(
            bad.into_new_event().unwrap_err(),
            WireError::BinaryNotString
        );
        let bad: EventIn =
            serde_json::from_str(r#"{"type":"A","content_type":"binary","data":"no!"}"#).unwrap();
        assert!(matches!(bad.into_new_event(), Err(WireError::Base64(_))));
    }
}
