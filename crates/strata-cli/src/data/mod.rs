//! The data commands: `append`, `read`, `all`, `tail`, `stats`, `export`,
//! `import`, `meta` and `erase`, each working directly on a store (`--store`) or through a
//! server (`--server URL --key K`), see [`crate::target`].
//!
//! Events are printed one per line in the HTTP API's JSON shape
//! ([`strata_wire::WireEvent`]); messages for people go to stderr.

pub mod append;
pub mod erase;
pub mod export;
pub mod import;
pub mod meta;
pub mod read;
pub mod stats;
pub mod store_or_server;
pub mod tail;

use std::io::{IsTerminal, Write};

use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};
use strata_core::{RecordedEvent, StreamId};

use crate::data::store_or_server::{TargetArgs, TargetError};
use strata_stores::OpenOptions;
use strata_wire::WireEvent;

/// Events asked for per page by `read`, `all`, `export` and `stats`.
pub const READ_PAGE_EVENTS: usize = 1_000;

/// Why a data command failed. Shown as one line by `main`.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The store or server refused or failed.
    #[error("{0}")]
    Target(#[from] TargetError),
    /// A file or stdout/stdin failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Bad input: an argument, an event on stdin, a line of an import file.
    #[error("{0}")]
    Input(String),
}

impl DataError {
    /// Shorthand for [`DataError::Io`].
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        DataError::Io {
            context: context.into(),
            source,
        }
    }

    /// Whether this is stdout closed by its reader (`strata all | head`),
    /// which ends a command quietly rather than as a failure.
    fn is_broken_pipe(&self) -> bool {
        matches!(self, DataError::Io { source, .. } if source.kind() == std::io::ErrorKind::BrokenPipe)
    }
}

/// The data commands (flattened into `strata`'s own).
#[derive(Subcommand, Debug)]
pub enum DataCommand {
    /// Append events to a stream (from flags, or JSON lines on stdin) and
    /// print the new version and positions.
    Append(append::AppendArgs),
    /// Print a stream's events, one JSON line each.
    Read(read::ReadArgs),
    /// Print events of `$all` (optionally filtered), one JSON line each.
    All(read::AllArgs),
    /// Follow `$all` or one stream live, one JSON line per event, until
    /// Ctrl-C (or `--limit` events).
    Tail(tail::TailArgs),
    /// Print the head position, event and stream counts and, for the log
    /// store, its disk usage.
    Stats(stats::StatsArgs),
    /// Write every event as JSON lines (ids kept) to a file or stdout.
    Export(export::ExportArgs),
    /// Append the events of an export, keeping ids and versions; re-running
    /// it writes nothing twice.
    Import(import::ImportArgs),
    /// Show or set a stream's metadata: retention (`max_count`, `max_age`,
    /// `truncate_before`) and custom JSON.
    #[command(subcommand)]
    Meta(meta::MetaCommand),
    /// Erase a stream for good (it needs --yes): it is tombstoned, its
    /// events' data is removed (on a log store at its next `strata scavenge
    /// --erased-only`) and its snapshots are erased.
    Erase(erase::EraseArgs),
}

impl DataCommand {
    /// How to open a store: `import` may relax the log store's per-append
    /// fsync (it syncs at the end); every other command keeps the default.
    fn open_options(&self) -> OpenOptions {
        match self {
            DataCommand::Import(a) => OpenOptions {
                durability: a.durability,
                ..OpenOptions::default()
            },
            _ => OpenOptions::default(),
        }
    }

    fn target(&self) -> &TargetArgs {
        match self {
            DataCommand::Append(a) => &a.target,
            DataCommand::Read(a) => &a.target,
            DataCommand::All(a) => &a.target,
            DataCommand::Tail(a) => &a.target,
            DataCommand::Stats(a) => &a.target,
            DataCommand::Export(a) => &a.target,
            DataCommand::Import(a) => &a.target,
            DataCommand::Meta(m) => m.target(),
            DataCommand::Erase(a) => &a.target,
        }
    }

    /// Refuses what must be confirmed, before the store is opened.
    fn check(&self) -> Result<(), DataError> {
        match self {
            DataCommand::Erase(a) => a.confirmed(),
            _ => Ok(()),
        }
    }
}

/// Runs a data command: opens the store or client, runs, and always closes
/// the store (so the log store writes its checkpoint even after an error).
pub async fn run(command: DataCommand) -> Result<(), DataError> {
    command.check()?;
    let target = command.target().open(&command.open_options()).await?;
    // A summary that may only be shown once the store is closed (synced).
    let mut summary = None;
    let result = match command {
        DataCommand::Append(a) => append::run(&target, a).await,
        DataCommand::Read(a) => read::run_read(&target, a).await,
        DataCommand::All(a) => read::run_all(&target, a).await,
        DataCommand::Tail(a) => tail::run(&target, a).await,
        DataCommand::Stats(a) => stats::run(&target, a).await,
        DataCommand::Export(a) => export::run(&target, a).await,
        DataCommand::Import(a) => import::run(&target, a).await.map(|s| {
            summary = Some(s);
        }),
        DataCommand::Meta(m) => meta::run(&target, m).await,
        DataCommand::Erase(a) => erase::run(&target, a).await,
    };
    let closed = target.close().await;
    match result {
        Err(e) if e.is_broken_pipe() => {}
        Err(e) => return Err(e),
        Ok(()) => {}
    }
    closed.map_err(DataError::from)?;
    if let Some(s) = summary {
        eprintln!("{s}");
    }
    Ok(())
}

/// A stream name from the command line: a user stream, as over HTTP
/// (`$…` names are the system's; only `import` recreates them).
pub fn parse_stream(name: &str) -> Result<StreamId, DataError> {
    StreamId::new(name).map_err(|e| DataError::Input(e.to_string()))
}

/// Prints text on stdout (one or more whole lines), as an error rather than
/// `println!`'s panic when stdout is gone (`strata stats | head -1`).
pub fn print(text: &str) -> Result<(), DataError> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| DataError::io("writing stdout", e))
}

/// Writes one event as a JSON line.
pub fn write_event(out: &mut impl Write, e: &RecordedEvent) -> Result<(), DataError> {
    serde_json::to_writer(&mut *out, &WireEvent::from_recorded(e))
        .map_err(|e| DataError::io("writing an event", std::io::Error::from(e)))?;
    out.write_all(b"\n")
        .map_err(|e| DataError::io("writing an event", e))
}

/// A progress bar on stderr when stderr is a terminal, hidden otherwise.
/// `len` of `None` makes a spinner.
pub fn progress(len: Option<u64>, what: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let (bar, template) = match len {
        Some(n) => (
            ProgressBar::new(n),
            "{msg:>10} [{elapsed_precise}] {wide_bar} {human_pos}/{human_len} ({per_sec}, eta {eta})",
        ),
        None => (
            ProgressBar::new_spinner(),
            "{msg:>10} [{elapsed_precise}] {spinner} {human_pos} ({per_sec})",
        ),
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar.set_message(what.to_string());
    bar
}
