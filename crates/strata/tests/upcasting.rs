//! Upcasters: old event payloads are brought to the code's schema version
//! before deserialization, through a chain of steps; a gap is a clear error.

// Helpers outside `#[test]` functions unwrap too; clippy.toml only exempts the tests.
#![allow(clippy::unwrap_used)]

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use strata::{
    Aggregate, AggregateError, CommandMeta, EventStore, ExpectedVersion, MemoryStore, Metadata,
    NewEvent, Repository, StreamId, Upcasters,
};

/// A thermometer whose `Measured` event is at schema version 3:
/// - v1: `{"temp": 21}` (whole degrees)
/// - v2: `{"celsius": 21.0}` (renamed, fractional)
/// - v3: `{"celsius": 21.0, "probe": "main"}` (which probe)
#[derive(Default, Serialize, Deserialize)]
struct Thermometer {
    readings: Vec<(f64, String)>,
    resets: u32,
}

enum Measure {
    Now(f64),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum ThermoEvent {
    Measured { celsius: f64, probe: String },
    Reset,
}

impl strata::DomainEvent for ThermoEvent {
    fn schema_version(event_type: &str) -> u32 {
        match event_type {
            "Measured" => 3,
            _ => 1,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("never")]
struct Never;

impl Aggregate for Thermometer {
    const TYPE: &'static str = "thermo";
    type Command = Measure;
    type Event = ThermoEvent;
    type Error = Never;

    fn handle(&self, c: &Measure) -> Result<Vec<ThermoEvent>, Never> {
        let Measure::Now(celsius) = *c;
        Ok(vec![ThermoEvent::Measured {
            celsius,
            probe: "main".into(),
        }])
    }

    fn apply(&mut self, e: &ThermoEvent) {
        match e {
            ThermoEvent::Measured { celsius, probe } => {
                self.readings.push((*celsius, probe.clone()))
            }
            ThermoEvent::Reset => self.resets += 1,
        }
    }
}

fn v1_to_v2(mut v: Value) -> Result<Value, String> {
    let obj = v.as_object_mut().ok_or("not an object")?;
    let temp = obj.remove("temp").ok_or("no `temp`")?;
    let temp = temp.as_i64().ok_or("`temp` is not an integer")?;
    obj.insert("celsius".into(), json!(temp as f64));
    Ok(v)
}

fn v2_to_v3(mut v: Value) -> Result<Value, String> {
    v["probe"] = json!("legacy");
    Ok(v)
}

fn full_chain() -> Upcasters {
    Upcasters::new()
        .register("Measured", 1, v1_to_v2)
        .register("Measured", 2, v2_to_v3)
}

/// Writes raw events to `thermo-1` as old code would have.
async fn write_old(store: &MemoryStore, events: Vec<(&str, Option<&str>, Value)>) {
    let stream = StreamId::new("thermo-1").unwrap();
    let events = events
        .into_iter()
        .map(|(ty, schema, data)| {
            let mut meta = Metadata::default();
            if let Some(s) = schema {
                meta = meta.with("schema", s);
            }
            NewEvent::json(ty, &data).unwrap().with_metadata(meta)
        })
        .collect();
    store
        .append(&stream, ExpectedVersion::Any, events)
        .await
        .unwrap();
}

fn readings(t: &Thermometer) -> Vec<(f64, &str)> {
    t.readings.iter().map(|(c, p)| (*c, p.as_str())).collect()
}

#[tokio::test]
async fn a_chain_brings_v1_and_v2_events_to_v3() {
    let store = MemoryStore::new();
    write_old(
        &store,
        vec![
            ("Measured", None, json!({"temp": 20})), // no schema recorded: v1
            ("Measured", Some("1"), json!({"temp": 21})),
            ("Measured", Some("2"), json!({"celsius": 21.5})),
            (
                "Measured",
                Some("3"),
                json!({"celsius": 22.5, "probe": "attic"}),
            ),
            ("Reset", None, json!({})),
        ],
    )
    .await;
    let repo = Repository::<Thermometer, _>::new(store.clone()).with_upcasters(full_chain());
    let t = repo.load("1").await.unwrap();
    assert_eq!(t.version, 5);
    assert_eq!(
        readings(&t.state),
        [
            (20.0, "legacy"),
            (21.0, "legacy"),
            (21.5, "legacy"),
            (22.5, "attic")
        ]
    );
    assert_eq!(t.state.resets, 1);

    // New events are written at the current version, and read back as is.
    repo.execute("1", Measure::Now(23.0), CommandMeta::new())
        .await
        .unwrap();
    let stored = store
        .read_stream(
            &StreamId::new("thermo-1").unwrap(),
            6,
            1,
            strata::Direction::Forward,
        )
        .await
        .unwrap();
    assert_eq!(
        stored[0].metadata.extra.get("schema").map(String::as_str),
        Some("3")
    );
    assert_eq!(&stored[0].data[..], br#"{"celsius":23.0,"probe":"main"}"#);
    let t = repo.load("1").await.unwrap();
    assert_eq!(t.state.readings.len(), 5);
}

#[tokio::test]
async fn a_missing_step_names_the_type_and_version() {
    let store = MemoryStore::new();
    write_old(&store, vec![("Measured", Some("1"), json!({"temp": 20}))]).await;
    // Only v1→v2 is registered: v2→v3 is missing.
    let repo = Repository::<Thermometer, _>::new(store)
        .with_upcasters(Upcasters::new().register("Measured", 1, v1_to_v2));
    let err = repo.load("1").await.err().unwrap();
    match &err {
        AggregateError::Upcast {
            event_type,
            schema_version,
            reason,
        } => {
            assert_eq!(event_type, "Measured");
            assert_eq!(*schema_version, 2);
            assert!(reason.contains("no upcaster"), "{reason}");
        }
        other => panic!("expected an upcast error, got {other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains("`Measured`") && text.contains("version 2"),
        "{text}"
    );
}

#[tokio::test]
async fn no_upcasters_at_all_fails_at_the_stored_version() {
    let store = MemoryStore::new();
    write_old(&store, vec![("Measured", None, json!({"temp": 20}))]).await;
    let repo = Repository::<Thermometer, _>::new(store);
    let err = repo
        .execute("1", Measure::Now(1.0), CommandMeta::new())
        .await
        .err()
        .unwrap();
    assert!(
        matches!(&err, AggregateError::Upcast { event_type, schema_version: 1, .. } if event_type == "Measured"),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_event_from_newer_code_is_refused() {
    let store = MemoryStore::new();
    write_old(
        &store,
        vec![(
            "Measured",
            Some("4"),
            json!({"celsius": 1.0, "probe": "x", "new": 1}),
        )],
    )
    .await;
    let repo = Repository::<Thermometer, _>::new(store).with_upcasters(full_chain());
    let err = repo.load("1").await.err().unwrap();
    match err {
        AggregateError::Upcast {
            schema_version,
            reason,
            ..
        } => {
            assert_eq!(schema_version, 4);
            assert!(
                reason.contains("newer") || reason.contains("reads version 3"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_failing_step_reports_why() {
    let store = MemoryStore::new();
    write_old(
        &store,
        vec![("Measured", Some("1"), json!({"temp": "warm"}))],
    )
    .await;
    let repo = Repository::<Thermometer, _>::new(store).with_upcasters(full_chain());
    match repo.load("1").await.err().unwrap() {
        AggregateError::Upcast {
            schema_version,
            reason,
            ..
        } => {
            assert_eq!(schema_version, 1);
            assert!(reason.contains("not an integer"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn unknown_types_and_bad_payloads_are_serialization_errors() {
    let store = MemoryStore::new();
    write_old(&store, vec![("Exploded", None, json!({}))]).await;
    let repo = Repository::<Thermometer, _>::new(store.clone()).with_upcasters(full_chain());
    let err = repo.load("1").await.err().unwrap();
    assert!(
        matches!(err, AggregateError::Serialization { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("Exploded"), "{err}");

    let store = MemoryStore::new();
    write_old(
        &store,
        vec![("Measured", Some("3"), json!({"celsius": "hot"}))],
    )
    .await;
    let repo = Repository::<Thermometer, _>::new(store).with_upcasters(full_chain());
    let err = repo.load("1").await.err().unwrap();
    assert!(
        matches!(err, AggregateError::Serialization { .. }),
        "{err:?}"
    );
}

#[test]
fn the_registry_upcasts_plain_json() {
    let u = full_chain();
    assert_eq!(
        u.upcast("Measured", 1, 3, json!({"temp": 7})).unwrap(),
        json!({"celsius": 7.0, "probe": "legacy"})
    );
    assert_eq!(
        u.upcast("Measured", 3, 3, json!({"x": 1})).unwrap(),
        json!({"x": 1})
    );
    assert!(u.upcast("Other", 1, 2, json!({})).is_err());
}
