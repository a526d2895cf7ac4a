//! Between the protocol's model and Strata's: revisions and versions,
//! commit positions and positions, UUIDs, times, content types and
//! metadata (ADR 0023).

use std::collections::HashMap;

use base64::Engine;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use strata_core::{
    ContentType, CurrentVersion, EventId, ExpectedVersion, Metadata, NewEvent, Position,
    RecordedEvent, StreamId, Version,
};
use tonic::Status;
use uuid::Uuid;

use crate::proto::shared;
use crate::proto::streams::read_resp::read_event;

/// The metadata key carrying an event's type.
pub const META_TYPE: &str = "type";
/// The metadata key carrying an event's content type.
pub const META_CONTENT_TYPE: &str = "content-type";
/// The metadata key carrying an event's record time (100-ns ticks since
/// the Unix epoch, as decimal text).
pub const META_CREATED: &str = "created";
/// The content type of JSON events.
pub const JSON: &str = "application/json";
/// The content type of every other event.
pub const OCTET_STREAM: &str = "application/octet-stream";

/// Where an event's custom metadata bytes are kept when they are UTF-8.
pub const CUSTOM_METADATA_KEY: &str = "$custom-metadata";
/// Where they are kept, base64, when they are not.
pub const CUSTOM_METADATA_BASE64_KEY: &str = "$custom-metadata-base64";
/// Where the declared content type is kept when the event is stored as
/// binary because its data, declared JSON, does not parse.
pub const DECLARED_CONTENT_TYPE_KEY: &str = "$content-type";
/// The custom-metadata JSON field read as the correlation id.
pub const CORRELATION_FIELD: &str = "$correlationId";
/// The custom-metadata JSON field read as the causation id.
pub const CAUSATION_FIELD: &str = "$causationId";

/// A Strata version (1-based) as a wire revision (0-based).
pub fn revision(version: Version) -> u64 {
    version.saturating_sub(1)
}

/// A wire revision as a Strata version.
pub fn version(revision: u64) -> Version {
    revision.saturating_add(1)
}

/// A Strata position as the wire's commit (and prepare) position.
pub fn commit_position(position: Position) -> u64 {
    position.0
}

/// The guard an `expected_stream_revision` oneof asks for (absent: any).
/// Append, delete, tombstone and batch append each have their own
/// generated oneof of the same four cases.
pub trait ExpectedRevision {
    /// The Strata guard.
    fn guard(self) -> ExpectedVersion;
}

macro_rules! expected_revision {
    ($($oneof:path => $revision:ident),* $(,)?) => {$(
        impl ExpectedRevision for Option<$oneof> {
            fn guard(self) -> ExpectedVersion {
                use $oneof as E;
                match self {
                    Some(E::$revision(r)) => ExpectedVersion::Exact(version(r)),
                    Some(E::NoStream(_)) => ExpectedVersion::NoStream,
                    Some(E::StreamExists(_)) => ExpectedVersion::StreamExists,
                    Some(E::Any(_)) | None => ExpectedVersion::Any,
                }
            }
        }
    )*};
}

expected_revision!(
    crate::proto::streams::append_req::options::ExpectedStreamRevision => Revision,
    crate::proto::streams::delete_req::options::ExpectedStreamRevision => Revision,
    crate::proto::streams::tombstone_req::options::ExpectedStreamRevision => Revision,
    crate::proto::streams::batch_append_req::options::ExpectedStreamPosition => StreamPosition,
);

/// A stream name from the wire's bytes.
pub fn stream_id(identifier: Option<&shared::StreamIdentifier>) -> Result<StreamId, Status> {
    StreamId::new(stream_name(identifier)?).map_err(|e| Status::invalid_argument(e.to_string()))
}

/// The wire's stream name as text, unchecked beyond UTF-8.
pub fn stream_name(identifier: Option<&shared::StreamIdentifier>) -> Result<&str, Status> {
    let Some(identifier) = identifier else {
        return Err(Status::invalid_argument("a stream identifier is required"));
    };
    std::str::from_utf8(&identifier.stream_name)
        .map_err(|_| Status::invalid_argument("a stream name is UTF-8"))
}

/// A stream a caller may read: a stream, or the metadata stream `$$NAME`
/// of one (whose events read in the clients' form).
pub fn readable_stream_id(
    identifier: Option<&shared::StreamIdentifier>,
) -> Result<StreamId, Status> {
    let name = stream_name(identifier)?;
    match crate::metadata::target(name)? {
        Some(target) => strata_core::metadata::metadata_stream(&target)
            .map_err(|e| Status::invalid_argument(e.to_string())),
        None => stream_id(identifier),
    }
}

/// A stream name as the wire's identifier.
pub fn identifier(stream: &StreamId) -> shared::StreamIdentifier {
    shared::StreamIdentifier {
        stream_name: Bytes::copy_from_slice(stream.as_str().as_bytes()),
    }
}

/// An event id in the form the reader asked for.
pub fn wire_uuid(id: &EventId, structured: bool) -> shared::Uuid {
    let value = if structured {
        let (most, least) = id.as_uuid().as_u64_pair();
        shared::uuid::Value::Structured(shared::uuid::Structured {
            most_significant_bits: i64::from_be_bytes(most.to_be_bytes()),
            least_significant_bits: i64::from_be_bytes(least.to_be_bytes()),
        })
    } else {
        shared::uuid::Value::String(id.as_uuid().hyphenated().to_string())
    };
    shared::Uuid { value: Some(value) }
}

/// An event id from either wire form (`None` when the message has none).
pub fn event_id(uuid: Option<&shared::Uuid>) -> Result<Option<EventId>, Status> {
    let Some(value) = uuid.and_then(|u| u.value.as_ref()) else {
        return Ok(None);
    };
    let id = match value {
        shared::uuid::Value::Structured(s) => Uuid::from_u64_pair(
            u64::from_be_bytes(s.most_significant_bits.to_be_bytes()),
            u64::from_be_bytes(s.least_significant_bits.to_be_bytes()),
        ),
        shared::uuid::Value::String(text) => Uuid::parse_str(text)
            .map_err(|e| Status::invalid_argument(format!("event id `{text}`: {e}")))?,
    };
    Ok(Some(EventId(id)))
}

/// A record time as 100-ns ticks since the Unix epoch.
pub fn ticks(at: DateTime<Utc>) -> i64 {
    let seconds = at.timestamp().saturating_mul(10_000_000);
    seconds.saturating_add(i64::from(at.timestamp_subsec_nanos() / 100))
}

/// A proposed message (type, content type, data, custom metadata) as a
/// Strata event.
pub fn new_event(
    id: Option<&shared::Uuid>,
    metadata: &HashMap<String, String>,
    custom_metadata: &[u8],
    data: Bytes,
) -> Result<NewEvent, Status> {
    let Some(event_type) = metadata.get(META_TYPE).filter(|t| !t.is_empty()) else {
        return Err(Status::invalid_argument(
            "an event needs a `type` in its metadata",
        ));
    };
    let declared_json = metadata.get(META_CONTENT_TYPE).map(String::as_str) == Some(JSON);
    // Strata's JSON events always parse; data declared JSON that does not
    // is kept as binary, with the declared type kept to read back.
    let parses = declared_json && ContentType::check_json(&data).is_ok();
    let content_type = if parses {
        ContentType::Json
    } else {
        ContentType::Binary
    };
    let mut event = NewEvent::new(event_type.clone(), data, content_type);
    event.id = event_id(id)?;
    event.metadata = metadata_from_custom(custom_metadata);
    if declared_json && !parses {
        event
            .metadata
            .extra
            .insert(DECLARED_CONTENT_TYPE_KEY.to_string(), JSON.to_string());
    }
    Ok(event)
}

/// Custom metadata bytes as Strata metadata: the bytes are kept exactly,
/// and a JSON object's `$correlationId` and `$causationId` become the
/// event's correlation and causation ids.
pub fn metadata_from_custom(custom: &[u8]) -> Metadata {
    let mut metadata = Metadata::default();
    if custom.is_empty() {
        return metadata;
    }
    match std::str::from_utf8(custom) {
        Ok(text) => {
            if let Ok(serde_json::Value::Object(fields)) = serde_json::from_str(text) {
                let field =
                    |name: &str| fields.get(name).and_then(|v| v.as_str()).map(String::from);
                metadata.correlation_id = field(CORRELATION_FIELD);
                metadata.causation_id = field(CAUSATION_FIELD);
            }
            metadata
                .extra
                .insert(CUSTOM_METADATA_KEY.to_string(), text.to_string());
        }
        Err(_) => {
            let encoded = base64::engine::general_purpose::STANDARD.encode(custom);
            metadata
                .extra
                .insert(CUSTOM_METADATA_BASE64_KEY.to_string(), encoded);
        }
    }
    metadata
}

/// Strata metadata as custom metadata bytes: the bytes a client wrote, or
/// for events written otherwise a JSON object of their correlation,
/// causation and other string pairs (empty when there are none).
pub fn custom_from_metadata(metadata: &Metadata) -> Bytes {
    if let Some(text) = metadata.extra.get(CUSTOM_METADATA_KEY) {
        return Bytes::copy_from_slice(text.as_bytes());
    }
    if let Some(encoded) = metadata.extra.get(CUSTOM_METADATA_BASE64_KEY) {
        if let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(encoded) {
            return Bytes::from(raw);
        }
    }
    let mut fields = serde_json::Map::new();
    let mut put = |key: &str, value: &Option<String>| {
        if let Some(v) = value {
            fields.insert(key.to_string(), serde_json::Value::String(v.clone()));
        }
    };
    put(CORRELATION_FIELD, &metadata.correlation_id);
    put(CAUSATION_FIELD, &metadata.causation_id);
    put("$userId", &metadata.user_id);
    put("$source", &metadata.source);
    for (k, v) in metadata
        .extra
        .iter()
        .filter(|(k, _)| *k != DECLARED_CONTENT_TYPE_KEY)
    {
        fields.insert(k.clone(), serde_json::Value::String(v.clone()));
    }
    if fields.is_empty() {
        return Bytes::new();
    }
    Bytes::from(serde_json::Value::Object(fields).to_string())
}

/// A recorded event as the wire's.
pub fn recorded_event(e: &RecordedEvent, structured_ids: bool) -> read_event::RecordedEvent {
    let content_type = match (
        e.content_type,
        e.metadata.extra.get(DECLARED_CONTENT_TYPE_KEY),
    ) {
        (ContentType::Json, _) => JSON,
        (ContentType::Binary, Some(declared)) => declared.as_str(),
        (ContentType::Binary, None) => OCTET_STREAM,
    };
    let metadata = HashMap::from([
        (META_TYPE.to_string(), e.event_type.clone()),
        (META_CONTENT_TYPE.to_string(), content_type.to_string()),
        (META_CREATED.to_string(), ticks(e.recorded_at).to_string()),
    ]);
    read_event::RecordedEvent {
        id: Some(wire_uuid(&e.id, structured_ids)),
        stream_identifier: Some(identifier(&e.stream_id)),
        stream_revision: revision(e.version),
        prepare_position: commit_position(e.position),
        commit_position: commit_position(e.position),
        metadata,
        custom_metadata: custom_from_metadata(&e.metadata),
        data: crate::metadata::wire_data(e).map_or_else(|| e.data.clone(), Bytes::from),
    }
}

/// A stream's current version as the oneof pair of a wrong-expected-version
/// answer: `Some(revision)`, or `None` for no stream.
pub fn current_revision(current: CurrentVersion) -> Option<u64> {
    match current {
        CurrentVersion::NoStream => None,
        CurrentVersion::Current(v) => Some(revision(v)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revisions_are_versions_less_one() {
        assert_eq!(revision(1), 0);
        assert_eq!(version(0), 1);
        assert_eq!(version(revision(42)), 42);
        use crate::proto::shared::Empty;
        use crate::proto::streams::append_req::options::ExpectedStreamRevision as E;
        assert_eq!(Some(E::Revision(0)).guard(), ExpectedVersion::Exact(1));
        assert_eq!(
            Some(E::NoStream(Empty {})).guard(),
            ExpectedVersion::NoStream
        );
        assert_eq!(
            Some(E::StreamExists(Empty {})).guard(),
            ExpectedVersion::StreamExists
        );
        assert_eq!(Some(E::Any(Empty {})).guard(), ExpectedVersion::Any);
        assert_eq!(None::<E>.guard(), ExpectedVersion::Any);
    }

    #[test]
    fn uuids_round_trip_in_both_forms() {
        let id = EventId(Uuid::parse_str("0190f1a2-3b4c-7d5e-8f60-718293a4b5c6").unwrap());
        for structured in [true, false] {
            let wire = wire_uuid(&id, structured);
            assert_eq!(event_id(Some(&wire)).unwrap(), Some(id));
        }
        let wire = wire_uuid(&id, false);
        assert_eq!(
            wire.value,
            Some(shared::uuid::Value::String(
                "0190f1a2-3b4c-7d5e-8f60-718293a4b5c6".into()
            ))
        );
        assert!(event_id(Some(&shared::Uuid {
            value: Some(shared::uuid::Value::String("nope".into()))
        }))
        .is_err());
    }

    #[test]
    fn ticks_count_100ns_from_the_epoch() {
        let at = DateTime::from_timestamp(1, 500).unwrap();
        assert_eq!(ticks(at), 10_000_005);
    }

    #[test]
    fn data_declared_json_that_does_not_parse_is_kept_as_binary() {
        let declared = HashMap::from([
            (META_TYPE.to_string(), "Raw".to_string()),
            (META_CONTENT_TYPE.to_string(), JSON.to_string()),
        ]);
        let bad = new_event(None, &declared, b"", Bytes::from_static(b"\x00not json")).unwrap();
        assert_eq!(bad.content_type, ContentType::Binary);
        let good = new_event(None, &declared, b"", Bytes::from_static(b"{\"a\":1}")).unwrap();
        assert_eq!(good.content_type, ContentType::Json);
        assert!(good.metadata.extra.is_empty());
        let recorded = RecordedEvent {
            id: EventId::default(),
            stream_id: StreamId::new("raw-1").unwrap(),
            version: 1,
            position: Position(1),
            event_type: bad.event_type.clone(),
            data: bad.data.clone(),
            content_type: bad.content_type,
            metadata: bad.metadata.clone(),
            recorded_at: Utc::now(),
            tags: Vec::new(),
        };
        let wire = recorded_event(&recorded, false);
        assert_eq!(
            wire.metadata[META_CONTENT_TYPE], JSON,
            "read back as declared"
        );
        assert_eq!(&wire.data[..], b"\x00not json");
        assert!(
            wire.custom_metadata.is_empty(),
            "the marker is not custom metadata"
        );
    }

    #[test]
    fn custom_metadata_round_trips_exactly() {
        for raw in [
            &b"{\"$correlationId\":\"c-1\", \"a\": 1}"[..],
            &b"not json"[..],
            &[0xff, 0x00, 0x10][..],
            &b""[..],
        ] {
            let m = metadata_from_custom(raw);
            assert_eq!(&custom_from_metadata(&m)[..], raw);
        }
        let m = metadata_from_custom(b"{\"$correlationId\":\"c-1\",\"$causationId\":\"e-0\"}");
        assert_eq!(m.correlation_id.as_deref(), Some("c-1"));
        assert_eq!(m.causation_id.as_deref(), Some("e-0"));
    }

    #[test]
    fn metadata_written_elsewhere_reads_as_json() {
        let m = Metadata::default().with_correlation_id("c-9");
        let json: serde_json::Value = serde_json::from_slice(&custom_from_metadata(&m)).unwrap();
        assert_eq!(json[CORRELATION_FIELD], "c-9");
    }
}
