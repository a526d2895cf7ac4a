//! Domain events: typed, serde-serializable, with a stable type name and a
//! schema version per type (ADR 0003).
//!
//! A domain event type is a Rust `enum`. Each variant is one event type: the
//! variant's serde name (rename it with `#[serde(rename = "...")]` to keep it
//! stable across refactors) is recorded as the event's `event_type`, and only
//! the variant's content is recorded as the JSON `data`. The schema version of
//! each type is recorded in the event's metadata under
//! [`SCHEMA_METADATA_KEY`], so that [upcasters](crate::upcast) can bring old
//! payloads up to date before they are deserialized.

mod variant;

use serde::de::DeserializeOwned;
use serde::Serialize;
use strata_core::Metadata;

/// The metadata key (in [`Metadata::extra`]) that holds an event's schema
/// version, as a decimal number. An event without it has schema version 1.
pub const SCHEMA_METADATA_KEY: &str = "schema";

/// The schema version of an event that does not record one.
pub const DEFAULT_SCHEMA_VERSION: u32 = 1;

/// A domain event type: an enum whose variants are the event types.
///
/// The variant's serde name is the event type; override
/// [`schema_version`](DomainEvent::schema_version) when a type's payload
/// changes shape, and register an [upcaster](crate::Upcasters) for the old
/// version.
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use strata::DomainEvent;
///
/// #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
/// enum LightEvent {
///     SwitchedOn { by: String },
///     #[serde(rename = "SwitchedOff")]
///     TurnedOff,
/// }
///
/// impl DomainEvent for LightEvent {
///     fn schema_version(event_type: &str) -> u32 {
///         match event_type {
///             "SwitchedOn" => 2, // v1 had no `by`
///             _ => 1,
///         }
///     }
/// }
///
/// let on = LightEvent::SwitchedOn { by: "ada".into() };
/// assert_eq!(on.event_type(), "SwitchedOn");
/// assert_eq!(LightEvent::TurnedOff.event_type(), "SwitchedOff");
///
/// let encoded = strata::event::encode(&on).unwrap();
/// assert_eq!(encoded.data, br#"{"by":"ada"}"#);
/// assert_eq!(encoded.schema_version, 2);
/// let back: LightEvent = strata::event::decode("SwitchedOn", &encoded.data).unwrap();
/// assert_eq!(back, on);
/// ```
pub trait DomainEvent: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The schema version the code writes and reads for `event_type`.
    /// Defaults to 1 for every type; raise it when a payload changes shape.
    fn schema_version(event_type: &str) -> u32 {
        let _ = event_type;
        DEFAULT_SCHEMA_VERSION
    }

    /// This event's type name: its enum variant's serde name.
    ///
    /// Falls back to the Rust type's name if `Self` is not an enum (such a
    /// type cannot be [encoded](encode) either).
    fn event_type(&self) -> &'static str {
        match self.serialize(variant::Split {
            capture_data: false,
        }) {
            Ok((name, _)) => name,
            Err(_) => std::any::type_name::<Self>(),
        }
    }
}

/// An event turned into what a store records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodedEvent {
    /// The event type (the variant's serde name).
    pub event_type: &'static str,
    /// The variant's content as JSON (`{}` for a unit variant).
    pub data: Vec<u8>,
    /// The schema version of `event_type` that the code writes.
    pub schema_version: u32,
}

/// Encodes an event: its type name, its content as JSON, and its schema version.
///
/// Fails when the event does not serialize as an enum variant or its content
/// does not serialize to JSON (a map with non-string keys, for example).
pub fn encode<E: DomainEvent>(event: &E) -> Result<EncodedEvent, serde_json::Error> {
    let (event_type, data) = event.serialize(variant::Split { capture_data: true })?;
    Ok(EncodedEvent {
        event_type,
        data,
        schema_version: E::schema_version(event_type),
    })
}

/// Decodes an event of type `event_type` whose content is the JSON `data`, at
/// the schema version the code reads (see [`Upcasters`](crate::Upcasters) for
/// older versions).
pub fn decode<E: DomainEvent>(event_type: &str, data: &[u8]) -> Result<E, serde_json::Error> {
    E::deserialize(variant::Joined { event_type, data })
}

/// The schema version recorded in `metadata` ([`DEFAULT_SCHEMA_VERSION`] if
/// none), or an error text if it is not a number.
pub fn schema_version_of(metadata: &Metadata) -> Result<u32, String> {
    match metadata.extra.get(SCHEMA_METADATA_KEY) {
        None => Ok(DEFAULT_SCHEMA_VERSION),
        Some(s) => s.parse::<u32>().map_err(|_| {
            format!("metadata `{SCHEMA_METADATA_KEY}` is `{s}`, not a schema version number")
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Inner {
        x: i32,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    enum Ev {
        Unit,
        Newtype(Inner),
        Tuple(i32, String),
        Struct {
            a: u64,
            #[serde(default)]
            b: Option<String>,
        },
        #[serde(rename = "Renamed")]
        Old {
            k: bool,
        },
    }

    impl DomainEvent for Ev {}

    fn roundtrip(e: Ev, json: &str, ty: &str) {
        let enc = encode(&e).unwrap();
        assert_eq!(enc.event_type, ty);
        assert_eq!(std::str::from_utf8(&enc.data).unwrap(), json);
        assert_eq!(e.event_type(), ty);
        let back: Ev = decode(ty, &enc.data).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn every_variant_shape_roundtrips() {
        roundtrip(Ev::Unit, "{}", "Unit");
        roundtrip(Ev::Newtype(Inner { x: 3 }), r#"{"x":3}"#, "Newtype");
        roundtrip(Ev::Tuple(1, "a\"b".into()), r#"[1,"a\"b"]"#, "Tuple");
        roundtrip(
            Ev::Struct {
                a: 7,
                b: Some("q".into()),
            },
            r#"{"a":7,"b":"q"}"#,
            "Struct",
        );
        roundtrip(Ev::Old { k: true }, r#"{"k":true}"#, "Renamed");
    }

    #[test]
    fn decode_errors_are_reported() {
        assert!(decode::<Ev>("Nope", b"{}").is_err());
        assert!(decode::<Ev>("Struct", b"{\"a\":\"x\"}").is_err());
        assert!(decode::<Ev>("Struct", b"{\"a\":1} trailing").is_err());
        // Missing optional field with a default is fine.
        assert_eq!(
            decode::<Ev>("Struct", b"{\"a\":1}").unwrap(),
            Ev::Struct { a: 1, b: None }
        );
    }

    #[test]
    fn non_enums_are_refused() {
        #[derive(Serialize, Deserialize)]
        struct NotAnEnum {
            x: i32,
        }
        impl DomainEvent for NotAnEnum {}
        assert!(encode(&NotAnEnum { x: 1 }).is_err());
        assert!(NotAnEnum { x: 1 }.event_type().contains("NotAnEnum"));
    }

    #[test]
    fn schema_version_from_metadata() {
        assert_eq!(schema_version_of(&Metadata::default()), Ok(1));
        assert_eq!(
            schema_version_of(&Metadata::default().with("schema", "3")),
            Ok(3)
        );
        assert!(schema_version_of(&Metadata::default().with("schema", "x")).is_err());
    }
}
