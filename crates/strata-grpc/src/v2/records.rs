//! A v2 record as a Strata event, and the v2 expected revision as a guard.
//!
//! A record goes through the same mapping as a v1 proposed message, so a
//! v1 read returns it as a v1 append of the same event would: the schema
//! name is the event type, the schema format JSON or BYTES the content type
//! (`application/json` or `application/octet-stream`, JSON data checked as
//! the v1 append checks it), the record id the event id, and the
//! properties, as a compact JSON object with its keys in order, the custom
//! metadata (`$correlationId` and `$causationId` among them become the
//! event's correlation and causation ids).

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use strata_core::{ExpectedVersion, NewEvent, StreamId};
use tonic::Status;

use crate::mapping;
use crate::proto::shared;
use crate::proto::v2::{AppendRecord, SchemaFormat};
use crate::status::{WIRE_ANY, WIRE_NO_STREAM, WIRE_STREAM_EXISTS};

/// The guard a wire expected revision asks for: absent or -2 any, -1 no
/// stream, -4 stream exists, n ≥ 0 the stream at 0-based revision n.
pub fn expected(revision: Option<i64>) -> Result<ExpectedVersion, Status> {
    match revision {
        None | Some(WIRE_ANY) => Ok(ExpectedVersion::Any),
        Some(WIRE_NO_STREAM) => Ok(ExpectedVersion::NoStream),
        Some(WIRE_STREAM_EXISTS) => Ok(ExpectedVersion::StreamExists),
        Some(n) => u64::try_from(n)
            .map(|n| ExpectedVersion::Exact(mapping::version(n)))
            .map_err(|_| {
                Status::invalid_argument(format!(
                    "expected revision {n}: a revision is -1 (no stream), -2 (any), \
                     -4 (stream exists) or at least 0"
                ))
            }),
    }
}

/// A stream named by a v2 request. Metadata streams (`$$NAME`) are set
/// through the single-stream append, which knows their form.
pub fn stream(name: &str) -> Result<StreamId, Status> {
    if crate::metadata::target(name)?.is_some() {
        return Err(Status::invalid_argument(format!(
            "`{name}` is a metadata stream: set stream metadata with the single-stream append"
        )));
    }
    StreamId::new(name).map_err(|e| Status::invalid_argument(format!("stream `{name}`: {e}")))
}

/// A record as the event to append.
pub fn new_event(record: AppendRecord) -> Result<NewEvent, Status> {
    let Some(schema) = record.schema else {
        return Err(Status::invalid_argument(
            "a record needs a schema: its name is the event type",
        ));
    };
    if schema.name.is_empty() {
        return Err(Status::invalid_argument(
            "a record's schema name (its event type) is empty",
        ));
    }
    if let Some(id) = schema.id {
        return Err(Status::invalid_argument(format!(
            "schema id `{id}`: registered schemas are not supported; name the schema only"
        )));
    }
    let content_type = match SchemaFormat::try_from(schema.format) {
        Ok(SchemaFormat::Json) => mapping::JSON,
        Ok(SchemaFormat::Bytes) => mapping::OCTET_STREAM,
        Ok(other) => {
            return Err(Status::invalid_argument(format!(
                "schema format {}: records are JSON or BYTES",
                other.as_str_name()
            )))
        }
        Err(_) => {
            return Err(Status::invalid_argument(format!(
                "schema format {} is not one the protocol declares",
                schema.format
            )))
        }
    };
    let id = record.record_id.map(|text| shared::Uuid {
        value: Some(shared::uuid::Value::String(text)),
    });
    let metadata = HashMap::from([
        (mapping::META_TYPE.to_string(), schema.name),
        (
            mapping::META_CONTENT_TYPE.to_string(),
            content_type.to_string(),
        ),
    ]);
    let custom = custom_metadata(&record.properties)?;
    mapping::new_event(id.as_ref(), &metadata, &custom, record.data)
}

/// Record properties as custom metadata bytes: nothing when there are
/// none, else a compact JSON object of them, keys in order.
pub fn custom_metadata(properties: &BTreeMap<String, prost_types::Value>) -> Result<Bytes, Status> {
    if properties.is_empty() {
        return Ok(Bytes::new());
    }
    let mut object = serde_json::Map::new();
    for (key, value) in properties {
        let json =
            json(value).map_err(|e| Status::invalid_argument(format!("property `{key}`: {e}")))?;
        object.insert(key.clone(), json);
    }
    Ok(Bytes::from(serde_json::Value::Object(object).to_string()))
}

/// A protocol value as JSON (a number must be finite).
fn json(value: &prost_types::Value) -> Result<serde_json::Value, String> {
    use prost_types::value::Kind;
    Ok(match &value.kind {
        None | Some(Kind::NullValue(_)) => serde_json::Value::Null,
        Some(Kind::BoolValue(b)) => serde_json::Value::Bool(*b),
        Some(Kind::StringValue(s)) => serde_json::Value::String(s.clone()),
        Some(Kind::NumberValue(n)) => serde_json::Number::from_f64(*n)
            .map(serde_json::Value::Number)
            .ok_or_else(|| format!("{n} is not a JSON number"))?,
        Some(Kind::ListValue(list)) => {
            serde_json::Value::Array(list.values.iter().map(json).collect::<Result<_, _>>()?)
        }
        Some(Kind::StructValue(object)) => serde_json::Value::Object(
            object
                .fields
                .iter()
                .map(|(k, v)| Ok((k.clone(), json(v)?)))
                .collect::<Result<_, String>>()?,
        ),
    })
}

/// The id a record goes by in error details: its event id, or the nil
/// UUID when the client gave none (the store assigns one).
pub fn record_id(event: &NewEvent) -> String {
    event
        .id
        .map(|id| id.as_uuid().hyphenated().to_string())
        .unwrap_or_else(|| uuid::Uuid::nil().hyphenated().to_string())
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use prost_types::value::Kind;
    use strata_core::{ContentType, EventId, Position, RecordedEvent};

    use super::*;
    use crate::proto::v2::SchemaInfo;

    fn string(s: &str) -> prost_types::Value {
        prost_types::Value {
            kind: Some(Kind::StringValue(s.to_string())),
        }
    }

    fn record(format: SchemaFormat, data: &'static [u8]) -> AppendRecord {
        AppendRecord {
            record_id: Some("0190f1a2-3b4c-7d5e-8f60-718293a4b5c6".into()),
            properties: BTreeMap::new(),
            schema: Some(SchemaInfo {
                format: format as i32,
                name: "Placed".into(),
                id: None,
            }),
            data: Bytes::from_static(data),
            stream: String::new(),
        }
    }

    /// The event as a v1 read returns it.
    fn read_back(event: &NewEvent) -> crate::proto::streams::read_resp::read_event::RecordedEvent {
        let recorded = RecordedEvent {
            id: event.id.unwrap_or_default(),
            stream_id: StreamId::new("orders-1").unwrap(),
            version: 1,
            position: Position(1),
            event_type: event.event_type.clone(),
            data: event.data.clone(),
            content_type: event.content_type,
            metadata: event.metadata.clone(),
            recorded_at: Utc::now(),
            tags: Vec::new(),
        };
        mapping::recorded_event(&recorded, false)
    }

    #[test]
    fn expected_revisions_map_to_guards() {
        assert_eq!(expected(None).unwrap(), ExpectedVersion::Any);
        assert_eq!(expected(Some(-2)).unwrap(), ExpectedVersion::Any);
        assert_eq!(expected(Some(-1)).unwrap(), ExpectedVersion::NoStream);
        assert_eq!(expected(Some(-4)).unwrap(), ExpectedVersion::StreamExists);
        assert_eq!(expected(Some(0)).unwrap(), ExpectedVersion::Exact(1));
        assert_eq!(expected(Some(41)).unwrap(), ExpectedVersion::Exact(42));
        for bad in [-3, -5, i64::MIN] {
            let e = expected(Some(bad)).unwrap_err();
            assert_eq!(e.code(), tonic::Code::InvalidArgument);
        }
    }

    #[test]
    fn a_record_reads_back_on_v1_as_the_same_event() {
        let mut r = record(SchemaFormat::Json, b"{\"n\":1}");
        r.properties.insert("b".into(), string("2"));
        r.properties.insert("$correlationId".into(), string("c-1"));
        let event = new_event(r).unwrap();
        assert_eq!(event.event_type, "Placed");
        assert_eq!(event.content_type, ContentType::Json);
        assert_eq!(
            event.id,
            Some(EventId(
                uuid::Uuid::parse_str("0190f1a2-3b4c-7d5e-8f60-718293a4b5c6").unwrap()
            ))
        );
        assert_eq!(event.metadata.correlation_id.as_deref(), Some("c-1"));
        let wire = read_back(&event);
        assert_eq!(wire.metadata[mapping::META_TYPE], "Placed");
        assert_eq!(wire.metadata[mapping::META_CONTENT_TYPE], mapping::JSON);
        assert_eq!(
            &wire.custom_metadata[..],
            br#"{"$correlationId":"c-1","b":"2"}"#,
            "compact, keys in order"
        );
        assert_eq!(&wire.data[..], b"{\"n\":1}");
    }

    #[test]
    fn bytes_and_bad_json_read_back_as_v1_keeps_them() {
        let event = new_event(record(SchemaFormat::Bytes, b"\x00\x01")).unwrap();
        assert_eq!(event.content_type, ContentType::Binary);
        let wire = read_back(&event);
        assert_eq!(
            wire.metadata[mapping::META_CONTENT_TYPE],
            mapping::OCTET_STREAM
        );
        assert!(
            wire.custom_metadata.is_empty(),
            "no properties, no metadata"
        );

        let event = new_event(record(SchemaFormat::Json, b"\x00not json")).unwrap();
        assert_eq!(event.content_type, ContentType::Binary, "kept as binary");
        let wire = read_back(&event);
        assert_eq!(
            wire.metadata[mapping::META_CONTENT_TYPE],
            mapping::JSON,
            "as declared"
        );
    }

    #[test]
    fn property_values_of_every_kind_become_json() {
        let mut properties = BTreeMap::new();
        properties.insert(
            "v".to_string(),
            prost_types::Value {
                kind: Some(Kind::ListValue(prost_types::ListValue {
                    values: vec![
                        prost_types::Value {
                            kind: Some(Kind::NumberValue(1.5)),
                        },
                        prost_types::Value {
                            kind: Some(Kind::BoolValue(true)),
                        },
                        prost_types::Value {
                            kind: Some(Kind::NullValue(0)),
                        },
                    ],
                })),
            },
        );
        assert_eq!(
            &custom_metadata(&properties).unwrap()[..],
            br#"{"v":[1.5,true,null]}"#
        );
        properties.insert(
            "nan".to_string(),
            prost_types::Value {
                kind: Some(Kind::NumberValue(f64::NAN)),
            },
        );
        let e = custom_metadata(&properties).unwrap_err();
        assert!(e.message().contains("property `nan`"), "{e:?}");
    }

    #[test]
    fn unsupported_schemas_and_bad_ids_are_refused() {
        let mut r = record(SchemaFormat::Protobuf, b"");
        assert!(new_event(r.clone()).is_err());
        r.schema.as_mut().unwrap().format = SchemaFormat::Unspecified as i32;
        assert!(new_event(r.clone()).is_err());
        r.schema.as_mut().unwrap().format = 99;
        assert!(new_event(r.clone()).is_err());
        let mut r = record(SchemaFormat::Json, b"{}");
        r.schema.as_mut().unwrap().id = Some("s-1".into());
        assert!(new_event(r).is_err());
        let mut r = record(SchemaFormat::Json, b"{}");
        r.schema.as_mut().unwrap().name.clear();
        assert!(new_event(r).is_err());
        let mut r = record(SchemaFormat::Json, b"{}");
        r.schema = None;
        assert!(new_event(r).is_err());
        let mut r = record(SchemaFormat::Json, b"{}");
        r.record_id = Some("nope".into());
        assert_eq!(
            new_event(r).unwrap_err().code(),
            tonic::Code::InvalidArgument
        );
    }

    #[test]
    fn metadata_streams_are_refused() {
        assert!(stream("orders-1").is_ok());
        assert_eq!(
            stream("$$orders-1").unwrap_err().code(),
            tonic::Code::InvalidArgument
        );
        assert!(stream("").is_err());
    }

    #[test]
    fn record_ids_fall_back_to_nil() {
        let mut event = NewEvent::new("T", Bytes::new(), ContentType::Binary);
        assert_eq!(record_id(&event), "00000000-0000-0000-0000-000000000000");
        let id = uuid::Uuid::parse_str("0190f1a2-3b4c-7d5e-8f60-718293a4b5c6").unwrap();
        event.id = Some(EventId(id));
        assert_eq!(record_id(&event), "0190f1a2-3b4c-7d5e-8f60-718293a4b5c6");
    }
}
