//! `strata tail [STREAM]`: follows a live subscription, one JSON line per
//! event, until Ctrl-C or `--limit` events.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use clap::Args;

use super::read::FilterArgs;
use super::{parse_stream, write_event, DataError};
use crate::target::{FeedItem, TailFrom, Target, TargetArgs};

/// How many times in a row `tail` reconnects after the server dropped it as
/// a slow consumer (or closed the connection) without an event in between.
pub const TAIL_MAX_RECONNECTS: u32 = 5;
/// Pause before such a reconnect.
pub const TAIL_RECONNECT_DELAY_MS: u64 = 500;

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
    let mut from = match (args.after, args.from_end) {
        (Some(p), _) => TailFrom::After(p),
        (None, true) => TailFrom::End,
        (None, false) => TailFrom::Start,
    };
    let limit = args.limit.unwrap_or(u64::MAX);
    if limit == 0 {
        return Ok(());
    }
    if from == TailFrom::End && matches!(target, Target::Server(_)) {
        // Pin "the end" once, so that a reconnect resumes from the same place.
        from = TailFrom::After(target.head_position().await?);
    }
    let show_status = std::io::stderr().is_terminal();
    let mut out = std::io::stdout().lock();
    let mut printed = 0u64;
    let mut reconnects = 0u32;
    let mut feed = target.subscribe(stream.as_ref(), from, &filter).await?;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        let item = tokio::select! {
            _ = &mut ctrl_c => break,
            item = feed.next() => item,
        };
        match item {
            Ok(Some(FeedItem::Event(e))) => {
                reconnects = 0;
                from = TailFrom::After(e.position.0);
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
            Ok(None) => {
                // A store closes only when we close it; a server that ends
                // the stream without an error event was cut off in between.
                if matches!(target, Target::Store(_)) {
                    break;
                }
                eprintln!(
                    "strata: the server closed the subscription; resuming {}",
                    resume_point(from)
                );
                reconnects = reconnect(reconnects, "the server closed the subscription").await?;
                feed = target.subscribe(stream.as_ref(), from, &filter).await?;
            }
            Err(e) if e.kind() == "slow_consumer" => {
                eprintln!("strata: {e}; resuming {}", resume_point(from));
                reconnects = reconnect(reconnects, &e.to_string()).await?;
                feed = target.subscribe(stream.as_ref(), from, &filter).await?;
            }
            Err(e) => return Err(e.into()),
        }
    }
    out.flush().map_err(|e| DataError::io("writing stdout", e))
}

/// Where a resumed subscription starts, in words.
fn resume_point(from: TailFrom) -> String {
    match from {
        TailFrom::After(p) => format!("after position {p}"),
        TailFrom::Start | TailFrom::End => "where it started".to_string(),
    }
}

/// Counts a reconnect, refusing past [`TAIL_MAX_RECONNECTS`], and waits a bit.
async fn reconnect(done: u32, why: &str) -> Result<u32, DataError> {
    if done >= TAIL_MAX_RECONNECTS {
        return Err(DataError::Input(format!(
            "subscription lost {TAIL_MAX_RECONNECTS} times in a row without progress: {why}"
        )));
    }
    tokio::time::sleep(Duration::from_millis(TAIL_RECONNECT_DELAY_MS)).await;
    Ok(done + 1)
}
