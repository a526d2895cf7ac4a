//! `strata tail [STREAM]`: follows a live subscription, one JSON line per
//! event, until Ctrl-C or `--limit` events.

use std::io::{IsTerminal, Write};

use clap::Args;

use super::read::FilterArgs;
use super::{parse_stream, write_event, DataError};
use crate::data::store_or_server::{FeedItem, TailFrom, Target, TargetArgs};

/// `strata tail` options.
#[derive(Args, Debug)]
pub struct TailArgs {
    /// Where: `--store` or `--server`.
    #[command(flatten)]
    pub target: TargetArgs,
    /// Follow only this stream (default: all of `$all` through the filter).
    pub stream: Option<String>,
    /// Start after this position (exclusive). Default: from the beginning.
    #[arg(long, conflicts_with = "from_end")]
    pub after: Option<u64>,
    /// Only events committed from now on.
    #[arg(long)]
    pub from_end: bool,
    /// Stop after this many events.
    #[arg(long)]
    pub limit: Option<u64>,
    /// Which events (`$all` only).
    #[command(flatten)]
    pub filter: FilterArgs,
}

/// Runs `strata tail`.
pub async fn run(target: &Target, args: TailArgs) -> Result<(), DataError> {
    let stream = args.stream.as_deref().map(parse_stream).transpose()?;
    let filter = args.filter.filter();
    if stream.is_some()
        && (!filter.types.is_empty()
            || filter.prefix.is_some()
            || filter.category.is_some()
            || filter.correlation_id.is_some())
    {
        return Err(DataError::Input(
            "--types, --prefix, --category and --correlation-id filter `$all`; give no STREAM with them".into(),
        ));
    }
    let from = match (args.after, args.from_end) {
        (Some(p), _) => TailFrom::After(p),
        (None, true) => TailFrom::End,
        (None, false) => TailFrom::Start,
    };
    let limit = args.limit.unwrap_or(u64::MAX);
    if limit == 0 {
        return Ok(());
    }
    let show_status = std::io::stderr().is_terminal();
    let mut out = std::io::stdout().lock();
    let mut printed = 0u64;
    // Through a server, a lost connection is resumed by the client after the
    // last event delivered (at most `strata_client::MAX_LOSSES_IN_A_ROW`
    // times in a row without an event); only the note is ours.
    let mut feed = target.subscribe(stream.as_ref(), from, &filter).await?;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        let item = tokio::select! {
            // Ctrl-C first: its handler is installed when it is first
            // polled, which must happen before the first event is printed
            // (a Ctrl-C after that must end the tail, not kill it).
            biased;
            _ = &mut ctrl_c => break,
            item = feed.next() => item,
        };
        match item {
            Ok(Some(FeedItem::Event(e))) => {
                write_event(&mut out, &e)?;
                out.flush()
                    .map_err(|e| DataError::io("writing stdout", e))?;
                printed += 1;
                if printed >= limit {
                    break;
                }
            }
            Ok(Some(FeedItem::CaughtUp(p))) => {
                if show_status {
                    eprintln!(
                        "strata: caught up at position {p}; following new events (Ctrl-C to stop)"
                    );
                }
            }
            Ok(Some(FeedItem::Resuming { reason, after })) => {
                eprintln!("strata: {reason}; resuming {}", resume_point(after));
            }
            // A store closes only when we close it.
            Ok(None) => break,
            Err(e) => return Err(e.into()),
        }
    }
    out.flush().map_err(|e| DataError::io("writing stdout", e))
}

/// Where a resumed subscription starts, in words.
fn resume_point(after: Option<u64>) -> String {
    match after {
        Some(p) => format!("after position {p}"),
        None => "where it started".to_string(),
    }
}
