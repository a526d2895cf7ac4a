//! `strata read STREAM` and `strata all`: events as JSON lines on stdout.

use std::io::Write;

use clap::Args;
use strata_core::Direction;

use super::{parse_stream, write_event, DataError, READ_PAGE_EVENTS};
use crate::data::store_or_server::{Target, TargetArgs};
use strata_client::AllFilter;

/// `strata read` options.
#[derive(Args, Debug)]
pub struct ReadArgs {
    /// Where: `--store` or `--server`.
    #[command(flatten)]
    pub target: TargetArgs,
    /// The stream to read.
    pub stream: String,
    /// First version to print (default: the first, or the last with
    /// `--backward`).
    #[arg(long)]
    pub from: Option<u64>,
    /// Print at most this many events (default: all).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Newest first.
    #[arg(long)]
    pub backward: bool,
}

/// The `$all` filter flags, shared by `all` and `tail`.
#[derive(Args, Debug, Clone, Default)]
pub struct FilterArgs {
    /// Only these event types (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub types: Vec<String>,
    /// Only streams whose name starts with this.
    #[arg(long)]
    pub prefix: Option<String>,
    /// Only streams of this category (the name before the first `-`).
    #[arg(long)]
    pub category: Option<String>,
    /// Only events with this correlation id.
    #[arg(long)]
    pub correlation_id: Option<String>,
}

impl FilterArgs {
    /// The filter these flags describe.
    pub fn filter(&self) -> AllFilter {
        AllFilter {
            types: self.types.clone(),
            prefix: self.prefix.clone(),
            category: self.category.clone(),
            correlation_id: self.correlation_id.clone(),
        }
    }
}

/// `strata all` options.
#[derive(Args, Debug)]
pub struct AllArgs {
    /// Where: `--store` or `--server`.
    #[command(flatten)]
    pub target: TargetArgs,
    /// Start after this position (exclusive; default: the beginning).
    #[arg(long, default_value_t = 0)]
    pub after: u64,
    /// Print at most this many events (default: all).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Which events.
    #[command(flatten)]
    pub filter: FilterArgs,
}

/// Runs `strata read`.
pub async fn run_read(target: &Target, args: ReadArgs) -> Result<(), DataError> {
    let stream = parse_stream(&args.stream)?;
    let direction = if args.backward {
        Direction::Backward
    } else {
        Direction::Forward
    };
    let mut remaining = args.limit.unwrap_or(usize::MAX);
    let mut from = args.from;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    while remaining > 0 {
        let page = remaining.min(READ_PAGE_EVENTS);
        let (events, next) = target.read_stream(&stream, from, page, direction).await?;
        for e in &events {
            write_event(&mut out, e)?;
        }
        remaining -= events.len().min(remaining);
        match next {
            Some(n) if !events.is_empty() => from = Some(n),
            _ => break,
        }
    }
    out.flush().map_err(|e| DataError::io("writing stdout", e))
}

/// Runs `strata all`.
pub async fn run_all(target: &Target, args: AllArgs) -> Result<(), DataError> {
    let filter = args.filter.filter();
    let mut remaining = args.limit.unwrap_or(usize::MAX);
    let mut after = args.after;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    while remaining > 0 {
        let page = remaining.min(READ_PAGE_EVENTS);
        let (events, next) = target.read_all(after, page, &filter).await?;
        for e in &events {
            write_event(&mut out, e)?;
        }
        remaining -= events.len().min(remaining);
        match next {
            Some(n) if n > after => after = n,
            _ => break,
        }
    }
    out.flush().map_err(|e| DataError::io("writing stdout", e))
}
