//! `strata demo`: the smallest round trip through a store.

use serde_json::json;
use strata_core::{Direction, ExpectedVersion, Metadata, NewEvent, ReadFilter, StreamId};

use crate::store_spec::StoreSpec;

/// Appends a short account history and prints it back from the stream and `$all`.
pub async fn run(spec: StoreSpec) -> Result<(), Box<dyn std::error::Error>> {
    let store = spec.open().await?;
    let stream = StreamId::new(format!("account-{}", uuid_suffix()))?;
    let correlation = format!("demo-{}", uuid_suffix());
    let meta = Metadata::default()
        .with_correlation_id(&correlation)
        .with_source("strata demo");
    let events = vec![
        NewEvent::json("AccountOpened", &json!({"owner": "Ada", "currency": "EUR"}))?
            .with_metadata(meta.clone()),
        NewEvent::json("Deposited", &json!({"amount": "100.00"}))?.with_metadata(meta.clone()),
        NewEvent::json("Withdrawn", &json!({"amount": "30.00"}))?.with_metadata(meta),
    ];
    let result = store
        .append(&stream, ExpectedVersion::NoStream, events)
        .await?;
    println!(
        "appended 3 events to {stream} (store {spec}): version {}, positions {}..={}",
        result.next_expected_version, result.first_position, result.last_position
    );
    println!("read back from the stream:");
    for e in store
        .read_stream(&stream, 1, 100, Direction::Forward)
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
            100,
            &ReadFilter::all().correlation_id(&correlation),
        )
        .await?;
    println!(
        "read back from $all by correlation id {correlation}: {} events",
        by_correlation.len()
    );
    Ok(())
}

fn uuid_suffix() -> String {
    let id = strata_core::EventId::new().to_string();
    id[id.len() - 8..].to_string()
}
