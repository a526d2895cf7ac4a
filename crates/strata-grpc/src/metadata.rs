//! Stream metadata as the clients write it: a `$metadata` event appended to
//! the stream `$$NAME`, a JSON object with `$maxCount`, `$maxAge` (seconds),
//! `$tb` (truncate before, a revision) and any custom keys.
//!
//! Strata keeps a stream's metadata the same way, in `$$NAME`, in its own
//! JSON form ([`StreamMetadata`]); this module translates between the two.
//! An append to `$$NAME` becomes [`EventStore::set_stream_metadata`], so
//! retention applies at once; a read of `$$NAME` (or of `$all`) shows the
//! clients' form. `$acl` and `$cacheControl` are kept with the custom keys
//! and read back as written; they do not change who may read a stream (API
//! keys do, ADR 0023).

use serde_json::{Map, Value};
use strata_core::metadata::{metadata_stream, metadata_target, METADATA_EVENT_TYPE};
use strata_core::{
    Direction, Error, EventStore, ExpectedVersion, NewEvent, Position, RecordedEvent, StreamId,
    StreamMetadata, FROM_END,
};
use tonic::Status;

/// The clients' key for the most events a stream keeps.
pub const MAX_COUNT: &str = "$maxCount";
/// The clients' key for the longest an event is kept, in seconds.
pub const MAX_AGE: &str = "$maxAge";
/// The clients' key for the first revision kept (truncate before).
pub const TRUNCATE_BEFORE: &str = "$tb";
/// Where a custom value that is not an object is kept on the wire.
pub const CUSTOM_VALUE: &str = "$strataCustom";

/// The stream whose metadata `name` holds, when `name` is `$$NAME`.
pub fn target(name: &str) -> Result<Option<StreamId>, Status> {
    match metadata_target(name) {
        Some(target) => StreamId::new(target)
            .map(Some)
            .map_err(|e| Status::invalid_argument(e.to_string())),
        None => Ok(None),
    }
}

/// An append to `$$NAME`: one `$metadata` event, set as `target`'s
/// metadata if the metadata stream's version is `expected`. The metadata
/// stream's new version and the event's position, as an append answers.
pub async fn set(
    store: &dyn EventStore,
    target: &StreamId,
    expected: ExpectedVersion,
    events: Vec<NewEvent>,
) -> strata_core::Result<(Option<u64>, Option<Position>)> {
    let [event] = <[NewEvent; 1]>::try_from(events).map_err(|_| {
        Error::invalid("an append to a metadata stream holds exactly one $metadata event")
    })?;
    if event.event_type != METADATA_EVENT_TYPE {
        return Err(Error::invalid(format!(
            "a metadata stream takes {METADATA_EVENT_TYPE} events, not {}",
            event.event_type
        )));
    }
    let metadata = from_wire(&event.data).map_err(|s| Error::invalid(s.message()))?;
    let version = store
        .set_stream_metadata(target, expected, &metadata)
        .await?;
    let last = store
        .read_stream(&metadata_stream(target)?, FROM_END, 1, Direction::Backward)
        .await?;
    Ok((Some(version), last.first().map(|e| e.position)))
}

/// The clients' JSON as Strata's metadata.
pub fn from_wire(data: &[u8]) -> Result<StreamMetadata, Status> {
    let value: Value = serde_json::from_slice(data)
        .map_err(|e| Status::invalid_argument(format!("stream metadata is not JSON: {e}")))?;
    let Value::Object(mut fields) = value else {
        return Err(Status::invalid_argument("stream metadata is a JSON object"));
    };
    let max_count = take_count(&mut fields, MAX_COUNT)?;
    let max_age = take_count(&mut fields, MAX_AGE)?;
    let truncate_before = take_count(&mut fields, TRUNCATE_BEFORE)?.map(crate::mapping::version);
    let custom = match fields.remove(CUSTOM_VALUE) {
        Some(value) if fields.is_empty() => Some(value),
        _ if fields.is_empty() => None,
        _ => Some(Value::Object(fields)),
    };
    let metadata = StreamMetadata {
        max_count,
        max_age,
        truncate_before,
        custom,
    };
    metadata
        .validate()
        .map_err(|e| Status::invalid_argument(e.to_string()))?;
    Ok(metadata)
}

/// A non-negative whole number under `key`, if present (null: absent).
fn take_count(fields: &mut Map<String, Value>, key: &str) -> Result<Option<u64>, Status> {
    match fields.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_u64().map(Some).ok_or_else(|| {
            Status::invalid_argument(format!("{key} is a whole number of at least 0: {v}"))
        }),
    }
}

/// Strata's metadata as the clients' JSON.
pub fn to_wire(metadata: &StreamMetadata) -> Vec<u8> {
    let mut fields = Map::new();
    if let Some(n) = metadata.max_count {
        fields.insert(MAX_COUNT.into(), n.into());
    }
    if let Some(a) = metadata.max_age {
        fields.insert(MAX_AGE.into(), a.into());
    }
    if let Some(t) = metadata.truncate_before {
        fields.insert(TRUNCATE_BEFORE.into(), crate::mapping::revision(t).into());
    }
    match &metadata.custom {
        Some(Value::Object(custom)) => {
            for (k, v) in custom {
                fields.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        Some(other) => {
            fields.insert(CUSTOM_VALUE.into(), other.clone());
        }
        None => {}
    }
    serde_json::to_vec(&Value::Object(fields)).unwrap_or_else(|_| b"{}".to_vec())
}

/// The data a reader sees for `event`: a metadata event in the clients'
/// form, any other event as stored.
pub fn wire_data(event: &RecordedEvent) -> Option<Vec<u8>> {
    if event.event_type != METADATA_EVENT_TYPE
        || metadata_target(event.stream_id.as_str()).is_none()
    {
        return None;
    }
    let metadata = StreamMetadata::from_json(&event.data).ok()?;
    Some(to_wire(&metadata))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clients_keys_map_to_strata_and_back() {
        let wire = br#"{"$maxCount":5,"$maxAge":60,"$tb":3,"$acl":{"$r":"ops"},"team":"billing"}"#;
        let m = from_wire(wire).unwrap();
        assert_eq!(m.max_count, Some(5));
        assert_eq!(m.max_age, Some(60));
        assert_eq!(m.truncate_before, Some(4), "revision 3 is version 4");
        let back: Value = serde_json::from_slice(&to_wire(&m)).unwrap();
        let sent: Value = serde_json::from_slice(wire).unwrap();
        assert_eq!(back, sent);
    }

    #[test]
    fn bad_metadata_is_refused_with_a_reason() {
        for bad in [
            &b"[1]"[..],
            b"{\"$maxCount\":-1}",
            b"{\"$maxCount\":0}",
            b"nope",
        ] {
            let e = from_wire(bad).unwrap_err();
            assert_eq!(e.code(), tonic::Code::InvalidArgument, "{bad:?}");
        }
    }

    #[test]
    fn a_custom_value_that_is_not_an_object_round_trips() {
        let m = StreamMetadata {
            custom: Some(Value::String("x".into())),
            ..StreamMetadata::default()
        };
        assert_eq!(from_wire(&to_wire(&m)).unwrap(), m);
    }
}
