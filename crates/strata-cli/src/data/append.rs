//! `strata append STREAM --type T --data JSON` (or `--stdin`).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::Read;

use clap::Args;
use strata_core::{ContentType, EventId, ExpectedVersion, NewEvent, Tag};

use super::{parse_stream, print, DataError};
use crate::data::store_or_server::{Target, TargetArgs};
use strata_wire::{self as wire, AppendOut, EventIn};

/// Most events `append --stdin` takes: they go in one atomic append (the
/// stores' default `max_events_per_append`); `import` loads more.
pub const APPEND_STDIN_MAX_EVENTS: usize = 10_000;
/// Most bytes `append --stdin` reads (the server's default body limit).
pub const APPEND_STDIN_MAX_BYTES: u64 = 16 * 1024 * 1024;

/// `strata append` options.
#[derive(Args, Debug)]
pub struct AppendArgs {
    /// Where: `--store` or `--server`.
    #[command(flatten)]
    pub target: TargetArgs,
    /// The stream to append to.
    pub stream: String,
    /// The event type.
    #[arg(
        long = "type",
        required_unless_present = "stdin",
        conflicts_with = "stdin"
    )]
    pub event_type: Option<String>,
    /// The payload, a JSON value (kept byte for byte).
    #[arg(long, required_unless_present = "stdin", conflicts_with = "stdin")]
    pub data: Option<String>,
    /// Metadata, a JSON object of strings (`correlation_id`, `causation_id`,
    /// `user_id`, `source` or any other key).
    #[arg(long, conflicts_with = "stdin")]
    pub metadata: Option<String>,
    /// The event id (a UUID), to make a retry idempotent.
    #[arg(long, conflicts_with = "stdin")]
    pub id: Option<EventId>,
    /// A tag for dynamic consistency boundaries (`key:value`); repeat for
    /// more.
    #[arg(long = "tag", conflicts_with = "stdin")]
    pub tags: Vec<Tag>,
    /// Read the events from stdin instead, one JSON object a line:
    /// `{"id"?, "type", "content_type"?, "data", "metadata"?, "tags"?}`; all
    /// of them go in one atomic append.
    #[arg(long)]
    pub stdin: bool,
    /// The guard: `any`, `no_stream`, `exists` or the stream's current version.
    #[arg(long, default_value = "any")]
    pub expected_version: ExpectedVersion,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `strata append`.
pub async fn run(target: &Target, args: AppendArgs) -> Result<(), DataError> {
    let stream = parse_stream(&args.stream)?;
    let events = if args.stdin {
        events_from_stdin()?
    } else {
        vec![event_from_flags(&args)?]
    };
    let n = events.len();
    let result = target
        .append(&stream, args.expected_version, events)
        .await?;
    let out = AppendOut::from(result);
    let text = if args.json {
        let line = serde_json::to_string(&out).map_err(|e| DataError::Input(e.to_string()))?;
        format!("{line}\n")
    } else {
        format!(
            "appended {n} event(s) to {stream}: next expected version {}, positions {}..={}\n",
            out.next_expected_version, out.first_position, out.last_position
        )
    };
    print(&text)?;
    Ok(())
}

fn event_from_flags(args: &AppendArgs) -> Result<NewEvent, DataError> {
    let (Some(event_type), Some(data)) = (&args.event_type, &args.data) else {
        return Err(DataError::Input(
            "give --type and --data, or --stdin".into(),
        ));
    };
    let data = wire::raw_json(data).map_err(|e| DataError::Input(format!("--data: {e}")))?;
    let metadata: BTreeMap<String, String> = match &args.metadata {
        Some(m) => serde_json::from_str(m).map_err(|e| {
            DataError::Input(format!("--metadata must be a JSON object of strings: {e}"))
        })?,
        None => BTreeMap::new(),
    };
    EventIn {
        id: args.id,
        event_type: event_type.clone(),
        content_type: ContentType::Json,
        data: Cow::Owned(data),
        metadata: (!metadata.is_empty()).then(|| {
            metadata
                .into_iter()
                .map(|(k, v)| (k, serde_json::Value::String(v)))
                .collect()
        }),
        tags: args.tags.clone(),
    }
    .into_new_event()
    .map_err(|e| DataError::Input(e.to_string()))
}

/// Reads JSON events from stdin (one per line; any whitespace works).
fn events_from_stdin() -> Result<Vec<NewEvent>, DataError> {
    let mut text = String::new();
    let read = std::io::stdin()
        .lock()
        .take(APPEND_STDIN_MAX_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| DataError::io("reading stdin", e))?;
    if read as u64 > APPEND_STDIN_MAX_BYTES {
        return Err(DataError::Input(format!(
            "stdin is over {APPEND_STDIN_MAX_BYTES} bytes: one append is bounded; use `strata import` for bulk loads"
        )));
    }
    parse_events(&text)
}

/// Parses a sequence of JSON events (`EventIn`), naming the bad one.
pub fn parse_events(text: &str) -> Result<Vec<NewEvent>, DataError> {
    let mut events = Vec::new();
    for (i, item) in serde_json::Deserializer::from_str(text)
        .into_iter::<EventIn>()
        .enumerate()
    {
        let e = item.map_err(|e| {
            DataError::Input(format!("stdin event {} (line {}): {e}", i + 1, e.line()))
        })?;
        if events.len() == APPEND_STDIN_MAX_EVENTS {
            return Err(DataError::Input(format!(
                "more than {APPEND_STDIN_MAX_EVENTS} events on stdin: one append is bounded; use `strata import` for bulk loads"
            )));
        }
        events.push(
            e.into_new_event()
                .map_err(|e| DataError::Input(format!("stdin event {}: {e}", i + 1)))?,
        );
    }
    if events.is_empty() {
        return Err(DataError::Input("no events on stdin".into()));
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn stdin_events_parse_and_errors_name_the_event() {
        let events = parse_events(
            "{\"type\":\"A\",\"data\":{\"x\": 1}}\n{\"type\":\"B\",\"content_type\":\"binary\",\"data\":\"AAE=\",\"metadata\":{\"user_id\":\"ada\"}}\n",
        )
        .unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(&events[0].data[..], b"{\"x\": 1}");
        assert_eq!(&events[1].data[..], &[0, 1]);
        assert_eq!(events[1].metadata.user_id.as_deref(), Some("ada"));

        let err = parse_events("{\"type\":\"A\",\"data\":1}\n{\"type\":\"A\"}\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("stdin event 2"), "{err}");
        assert!(parse_events("  \n").is_err());
    }
}
