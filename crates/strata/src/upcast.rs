//! Upcasters: bring an old event's JSON to the schema version the code reads,
//! before it is deserialized.
//!
//! An upcaster is registered for one `(event type, from schema version)` and
//! turns a payload of that version into one of the next version. Upcasters
//! chain: a v1 event is read by v3 code through v1→v2 and then v2→v3. Stored
//! events never change; upcasting happens on every read of an old event.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use serde_json::Value;
use strata_core::RecordedEvent;

use crate::error::DecodeError;
use crate::event::{self, DomainEvent};
use crate::ContentType;

/// Turns a payload of one schema version into the next; an `Err` text says
/// why the payload cannot be upcast.
type UpcastFn = dyn Fn(Value) -> Result<Value, String> + Send + Sync;

/// Most upcast steps one event may take: a guard against a registry that
/// loops (it cannot, since every step raises the version, but the bound is cheap).
pub const MAX_UPCAST_STEPS: u32 = 1_000;

/// The registered upcasters of a repository (empty by default).
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use serde_json::json;
/// use strata::{DomainEvent, Upcasters};
///
/// #[derive(Debug, PartialEq, Serialize, Deserialize)]
/// enum Ev {
///     // v1: {"amount": 5}; v2: {"amount": "5"}; v3: {"amount": "5", "currency": "EUR"}
///     Deposited { amount: String, currency: String },
/// }
/// impl DomainEvent for Ev {
///     fn schema_version(_: &str) -> u32 { 3 }
/// }
///
/// let upcasters = Upcasters::new()
///     .register("Deposited", 1, |mut v| {
///         let n = v["amount"].as_i64().ok_or("amount is not a number")?;
///         v["amount"] = json!(n.to_string());
///         Ok(v)
///     })
///     .register("Deposited", 2, |mut v| {
///         v["currency"] = json!("EUR");
///         Ok(v)
///     });
///
/// let ev: Ev = upcasters.decode_json("Deposited", 1, json!({"amount": 5})).unwrap();
/// assert_eq!(ev, Ev::Deposited { amount: "5".into(), currency: "EUR".into() });
/// ```
#[derive(Clone, Default)]
pub struct Upcasters {
    steps: HashMap<(String, u32), Arc<UpcastFn>>,
}

impl fmt::Debug for Upcasters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut keys: Vec<_> = self.steps.keys().collect();
        keys.sort();
        f.debug_struct("Upcasters").field("steps", &keys).finish()
    }
}

impl Upcasters {
    /// No upcasters.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers the step that turns a `event_type` payload of schema version
    /// `from_version` into one of version `from_version + 1` (replacing an
    /// earlier registration for the same pair).
    pub fn register<F>(mut self, event_type: impl Into<String>, from_version: u32, step: F) -> Self
    where
        F: Fn(Value) -> Result<Value, String> + Send + Sync + 'static,
    {
        self.steps
            .insert((event_type.into(), from_version), Arc::new(step));
        self
    }

    /// Whether nothing is registered.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Brings `data`, a `event_type` payload of schema version `from`, to
    /// version `to`.
    ///
    /// Fails with [`DecodeError::Upcast`] naming the type and the version
    /// where the chain stops when a step is missing or fails, or when `from`
    /// is newer than `to` (the event was written by newer code).
    pub fn upcast(
        &self,
        event_type: &str,
        from: u32,
        to: u32,
        mut data: Value,
    ) -> Result<Value, DecodeError> {
        if from > to {
            return Err(DecodeError::Upcast {
                event_type: event_type.to_owned(),
                schema_version: from,
                reason: format!(
                    "the event was written with schema version {from} but this code reads version {to}; \
                     deploy code that knows version {from}"
                ),
            });
        }
        if to - from > MAX_UPCAST_STEPS {
            return Err(DecodeError::Upcast {
                event_type: event_type.to_owned(),
                schema_version: from,
                reason: format!(
                    "{} steps to version {to} exceed the limit of {MAX_UPCAST_STEPS}",
                    to - from
                ),
            });
        }
        let mut version = from;
        let mut key = (event_type.to_owned(), from);
        while version < to {
            key.1 = version;
            let Some(step) = self.steps.get(&key) else {
                return Err(DecodeError::Upcast {
                    event_type: event_type.to_owned(),
                    schema_version: version,
                    reason: format!(
                        "no upcaster is registered from version {version} to {} (this code reads \
                         version {to}); register one with `Upcasters::register(\"{event_type}\", {version}, ..)`",
                        version + 1
                    ),
                });
            };
            data = step(data).map_err(|reason| DecodeError::Upcast {
                event_type: event_type.to_owned(),
                schema_version: version,
                reason: format!("the upcaster from version {version} failed: {reason}"),
            })?;
            version += 1;
        }
        Ok(data)
    }

    /// Decodes a JSON payload of `event_type` at schema version `version`,
    /// upcasting it first if the code reads a newer version.
    pub fn decode_json<E: DomainEvent>(
        &self,
        event_type: &str,
        version: u32,
        data: Value,
    ) -> Result<E, DecodeError> {
        let current = E::schema_version(event_type);
        let data = self.upcast(event_type, version, current, data)?;
        let bytes = serde_json::to_vec(&data).map_err(|source| DecodeError::Upcast {
            event_type: event_type.to_owned(),
            schema_version: current,
            reason: format!("the upcast payload does not serialize: {source}"),
        })?;
        event::decode(event_type, &bytes).map_err(|source| DecodeError::Upcast {
            event_type: event_type.to_owned(),
            schema_version: current,
            reason: format!("the upcast payload does not match the code's schema: {source}"),
        })
    }

    /// Decodes a recorded event into the domain event type, upcasting its
    /// payload when its schema version is older than the code's.
    ///
    /// Events at the code's version are deserialized straight from the
    /// stored bytes; only old ones go through `serde_json::Value`.
    pub fn decode<E: DomainEvent>(&self, event: &RecordedEvent) -> Result<E, DecodeError> {
        let invalid = |reason: String| DecodeError::Invalid {
            stream: event.stream_id.clone(),
            version: event.version,
            event_type: event.event_type.clone(),
            reason,
        };
        if event.content_type != ContentType::Json {
            return Err(invalid(
                "its content type is binary; framework events are JSON".to_owned(),
            ));
        }
        let stored = event::schema_version_of(&event.metadata).map_err(invalid)?;
        let current = E::schema_version(&event.event_type);
        let serialization = |source| DecodeError::Serialization {
            stream: event.stream_id.clone(),
            version: event.version,
            event_type: event.event_type.clone(),
            source,
        };
        if stored == current {
            return event::decode(&event.event_type, &event.data).map_err(serialization);
        }
        let value: Value = serde_json::from_slice(&event.data).map_err(serialization)?;
        self.decode_json(&event.event_type, stored, value)
    }
}
