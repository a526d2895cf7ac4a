//! `strata stats`: head position, event and stream counts, and the log
//! store's disk usage.

use std::collections::HashSet;
use std::path::Path;

use clap::Args;
use serde::Serialize;

use super::{print, progress, DataError, READ_PAGE_EVENTS};
use crate::data::store_or_server::{Target, TargetArgs};
use strata_client::AllFilter;

/// Most distinct stream names a `$all` walk remembers to count streams;
/// past it the stream count is reported as unknown.
pub const STATS_MAX_TRACKED_STREAMS: usize = 10_000_000;
/// Deepest directory nesting walked to size a data directory.
const DIR_WALK_MAX_DEPTH: usize = 8;

/// `strata stats` options.
#[derive(Args, Debug)]
pub struct StatsArgs {
    /// Where: `--store` or `--server`.
    #[command(flatten)]
    pub target: TargetArgs,
    /// Count events and streams by reading all of `$all` (what the
    /// PostgreSQL and memory stores and a server need for counts; the log
    /// store knows them without it).
    #[arg(long)]
    pub scan: bool,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// What `stats` reports; unknown values are left out.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct Stats {
    /// The store spec or server URL.
    pub target: String,
    /// Position of the last committed event.
    pub head_position: u64,
    /// Events stored (of live and deleted streams).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events: Option<u64>,
    /// Streams known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub streams: Option<u64>,
    /// The log store's directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<String>,
    /// Its segment files.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segments: Option<u64>,
    /// Segment bytes before compression.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segment_bytes: Option<u64>,
    /// Segment bytes on disk.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segment_bytes_on_disk: Option<u64>,
    /// Every file of the data directory (segments, indexes, checkpoint, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir_bytes: Option<u64>,
}

/// Runs `strata stats`.
pub async fn run(target: &Target, args: StatsArgs) -> Result<(), DataError> {
    let stats = collect(target, args.scan).await?;
    if args.json {
        let line = serde_json::to_string(&stats).map_err(|e| DataError::Input(e.to_string()))?;
        return print(&format!("{line}\n"));
    }
    let show =
        |v: Option<u64>| v.map_or_else(|| "unknown (use --scan)".to_string(), |n| n.to_string());
    let mut text = format!(
        "target:        {}\nhead position: {}\nevents:        {}\nstreams:       {}\n",
        stats.target,
        stats.head_position,
        show(stats.events),
        show(stats.streams)
    );
    if let Some(dir) = &stats.data_dir {
        let n = |v: Option<u64>| v.unwrap_or(0);
        text.push_str(&format!(
            "data dir:      {dir}\nsegments:      {}\nsegment bytes: {} ({} on disk)\ndir bytes:     {}\n",
            n(stats.segments),
            n(stats.segment_bytes),
            n(stats.segment_bytes_on_disk),
            n(stats.data_dir_bytes)
        ));
    }
    print(&text)?;
    Ok(())
}

/// Gathers the figures.
pub async fn collect(target: &Target, scan: bool) -> Result<Stats, DataError> {
    let mut stats = Stats {
        target: target.describe(),
        head_position: target.head_position().await?,
        ..Stats::default()
    };
    let log = target.store().and_then(|s| s.log_store());
    if let Some(log) = log {
        let usage = log
            .disk_usage()
            .map_err(crate::data::store_or_server::TargetError::from)?;
        let dir = log.dir();
        stats.events = Some(usage.events);
        stats.streams = Some(usage.streams);
        stats.data_dir = Some(dir.display().to_string());
        stats.segment_bytes = Some(usage.segment_bytes);
        stats.segment_bytes_on_disk = Some(usage.segment_bytes_on_disk);
        let seg_dir = dir.join("segments");
        let numbers =
            strata_log::segment::list_segment_numbers(&strata_log::io::FsStorage, &seg_dir)
                .map_err(|e| DataError::io(format!("listing {}", seg_dir.display()), e))?;
        stats.segments = Some(numbers.len() as u64);
        stats.data_dir_bytes = Some(dir_bytes(dir, 0)?);
    }
    let direct_without_counts = target.store().is_some() && log.is_none();
    if scan || direct_without_counts {
        let (events, streams) = walk_all(target, stats.head_position).await?;
        stats.events = Some(events);
        stats.streams = streams;
    }
    Ok(stats)
}

/// Counts events and distinct streams of `$all` up to `head`.
async fn walk_all(target: &Target, head: u64) -> Result<(u64, Option<u64>), DataError> {
    let bar = progress(Some(head), "scanning");
    let filter = AllFilter::default();
    let mut streams: Option<HashSet<String>> = Some(HashSet::new());
    let mut events = 0u64;
    let mut after = 0u64;
    loop {
        let (page, next) = target.read_all(after, READ_PAGE_EVENTS, &filter).await?;
        for e in &page {
            if e.position.0 > head {
                break;
            }
            events += 1;
            if let Some(set) = &mut streams {
                if !set.contains(e.stream_id.as_str()) {
                    if set.len() >= STATS_MAX_TRACKED_STREAMS {
                        streams = None;
                    } else {
                        set.insert(e.stream_id.as_str().to_string());
                    }
                }
            }
        }
        if let Some(last) = page.last() {
            bar.set_position(last.position.0.min(head));
        }
        match next {
            Some(n) if n > after && n < head => after = n,
            _ => break,
        }
    }
    bar.finish_and_clear();
    Ok((events, streams.map(|s| s.len() as u64)))
}

/// Bytes of every file under `dir`.
fn dir_bytes(dir: &Path, depth: usize) -> Result<u64, DataError> {
    let mut total = 0;
    let entries = std::fs::read_dir(dir)
        .map_err(|e| DataError::io(format!("listing {}", dir.display()), e))?;
    for entry in entries {
        let entry = entry.map_err(|e| DataError::io(format!("listing {}", dir.display()), e))?;
        let meta = entry
            .metadata()
            .map_err(|e| DataError::io(format!("sizing {}", entry.path().display()), e))?;
        if meta.is_dir() {
            if depth < DIR_WALK_MAX_DEPTH {
                total += dir_bytes(&entry.path(), depth + 1)?;
            }
        } else {
            total += meta.len();
        }
    }
    Ok(total)
}
