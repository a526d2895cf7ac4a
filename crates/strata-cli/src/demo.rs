//! `strata demo`: the smallest round trip through a store.

use serde_json::json;
use strata_core::{
    Direction, EventStore, ExpectedVersion, Metadata, NewEvent, ReadFilter, StreamId,
};

use crate::store_spec::{OpenOptions, StoreSpec};

/// Most events the demo reads back from one stream.
const DEMO_READ_EVENTS: usize = 100;

/// Appends a short account history to a fresh stream and prints it back from
/// the stream and from `$all`. Each run uses a new stream, so it can be run
/// again and again on the same data directory.
pub async fn run(spec: StoreSpec, options: OpenOptions) -> Result<(), Box<dyn std::error::Error>> {
    let open = spec.open(&options).await?;
    let store = open.store();
    let outcome = round_trip(store.as_ref(), &spec).await;
    drop(store);
    // Close even after a failure, so the log store writes its checkpoint.
    let closed = open.close().await;
    outcome?;
    closed?;
    Ok(())
}

async fn round_trip(
    store: &dyn EventStore,
    spec: &StoreSpec,
) -> Result<(), Box<dyn std::error::Error>> {
    let suffix = unique_suffix();
    let stream = StreamId::new(format!("account-demo{suffix}"))?;
    let correlation = format!("demo-{suffix}");
    let meta = Metadata::default()
        .with_correlation_id(&correlation)
        .with_source("strata demo");
    let events = vec![
        NewEvent::json("AccountOpened", &json!({"owner": "Ada", "currency": "EUR"}))?
            .with_metadata(meta.clone()),
        NewEvent::json("Deposited", &json!({"amount": "100.00"}))?.with_metadata(meta.clone()),
        NewEvent::json("Withdrawn", &json!({"amount": "30.00"}))?.with_metadata(meta),
    ];
    let count = events.len();
    let result = store
        .append(&stream, ExpectedVersion::NoStream, events)
        .await?;
    println!(
        "appended {count} events to {stream} (store {}): version {}, positions {}..={}",
        display_store(spec),
        result.next_expected_version,
        result.first_position,
        result.last_position
    );
    println!("read back from the stream:");
    for e in store
        .read_stream(&stream, 1, DEMO_READ_EVENTS, Direction::Forward)
        .await?
    {
        println!(
            "  v{} @{} {} {} {}",
            e.version,
            e.position,
            e.recorded_at.format("%H:%M:%S%.6f"),
            e.event_type,
            String::from_utf8_lossy(&e.data)
        );
    }
    let by_correlation = store
        .read_all(
            result.first_position,
            DEMO_READ_EVENTS,
            &ReadFilter::all().correlation_id(&correlation),
        )
        .await?;
    println!(
        "read back from $all by correlation id {correlation}: {} events",
        by_correlation.len()
    );
    let head = store.head_position().await?;
    println!("$all head position: {head}");
    Ok(())
}

/// The spec as the user should see it: a bare `log:` is the default directory.
fn display_store(spec: &StoreSpec) -> String {
    match spec {
        StoreSpec::Log(None) => format!("log:{}", crate::store_spec::DEFAULT_LOG_DIR),
        other => other.to_string(),
    }
}

/// The last 8 hex digits of a fresh UUID v7 (its random part): a new stream
/// name for every run.
fn unique_suffix() -> String {
    let id = strata_core::EventId::new().to_string();
    id[id.len() - 8..].to_string()
}
