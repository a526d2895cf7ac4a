//! The options of a benchmark run: which workload, on which store, with
//! what sizes; and the same options once defaults are applied and limits
//! checked ([`Params`]).

use std::time::Duration;

use clap::{Args, ValueEnum};
use strata_core::EventStore;
use strata_log::Durability;
use strata_stores::StoreSpec;

use crate::workload::{
    append, commands, dcb, groups, http_append, project, raw_insert, read_all, read_stream,
    rehydrate, scale, scavenge,
};
use crate::BenchError;

/// Most concurrent tasks a workload may start.
pub const MAX_WRITERS: usize = 4096;
/// Most events a workload may be asked for (a bound on run time and memory).
pub const MAX_EVENTS: u64 = 1_000_000_000;
/// Most streams (or accounts) a workload may spread its writes over.
pub const MAX_STREAMS: usize = 100_000_000;
/// Longest measuring time of the repeated-measurement workloads, in seconds.
pub const MAX_DURATION_SECS: f64 = 3600.0;

/// Which workload to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum WorkloadName {
    /// `--writers` tasks append `--batch` events (~200-byte JSON) per append
    /// to random streams among `--streams` with `ExpectedVersion::Any`,
    /// `--events` in all; latency per append. On PostgreSQL, followed by the
    /// `raw-insert` baseline with the same writers (at most 50,000 rows) and
    /// the ratio of the two rates (`ratio_to_raw_insert`).
    Append,
    /// Fills the store up to `--events` events unless it has them, then reads
    /// `$all` warm in pages of `--batch` (default 10,000) with `--writers`
    /// concurrent readers; latency per page.
    ReadAll,
    /// Writes one stream of `--events` events (default 1,000) and reads it
    /// whole, again and again for `--duration` seconds; latency per full read.
    ReadStream,
    /// Bank-account commands through `strata::Repository` with its cache:
    /// `--streams` accounts (default 1,000), `--events` deposits (default
    /// 50,000) from `--writers` tasks (default 16); latency per command.
    Commands,
    /// One command on an account stream of `--events` events (default
    /// 10,000), the cache off so every command loads: without snapshots and
    /// with a snapshot every 100 events; latency per command.
    Rehydrate,
    /// Many events over many streams (default 10,000,000 over 1,000,000, 64
    /// writers × 10 events): append rate of the first and last 10%, memory,
    /// `read-stream` latency (2,000 whole streams) after the first 10% and at
    /// the end, then (log store) reopen time after a clean close and after a
    /// SIGKILL.
    Scale,
    /// Projection catch-up over `--events` events (default 1,000,000): a
    /// counting projection single-threaded, then the event processor over a
    /// working handler with 1 and with `--writers` (default 2) workers.
    Project,
    /// The `append` workload through the HTTP API: `--writers` clients, each
    /// on its own keep-alive connection, POST `--batch` events per request
    /// to random streams among `--streams` (`expected_version` any),
    /// `--events` in all; latency per request. Against `--server URL`, or
    /// else against `strata serve --store <--store>` started as a child
    /// process (a separate process, as deployed) and stopped with SIGTERM at
    /// the end. One SSE subscriber on `/subscribe/all` measures delivery
    /// latency meanwhile (`--no-subscriber` turns it off).
    HttpAppend,
    /// Log store only: fills `--events` events (default 1,000,000) over
    /// `--streams` (default 10,000), deletes half the streams, then runs
    /// `--writers` appenders of `--batch` events and one `$all` reader for
    /// `--duration` seconds without a scavenge and again while one runs;
    /// reports the scavenge's time and segment bytes before and after.
    Scavenge,
    /// PostgreSQL only: `--writers` connections each INSERT one ~200-byte
    /// event row at a time (autocommit, no checks) into a table shaped like
    /// the store's events table, `--events` rows in all: the database's own
    /// rate, the baseline of `append`.
    RawInsert,
    /// Consumer groups in-process: `--writers` consumers (default 4) of one
    /// group read `--batch` messages (default 500) and ack them until
    /// `--events` events (default 100,000, over `--streams`) are acked, with
    /// `round_robin` and with `pinned`; then the redelivery latency after a
    /// consumer dies.
    Groups,
    /// Consumer groups through the HTTP API: `--writers` consumers (default
    /// 4) of one `round_robin` group read `--batch` messages (default 500)
    /// and ack them until `--events` events (default 100,000) are acked,
    /// against `--server URL` or a child `strata serve` over `--store`.
    HttpGroups,
    /// Dynamic consistency boundaries: the course-subscription decision
    /// (read + decide + conditional append) with one writer, then with
    /// `--writers` (default 16), for `--duration` seconds each, over
    /// `--streams` courses (default 10,000); decisions per second, latency,
    /// conflicts. In-process on `--store`, or with `--server` the same
    /// decisions through the HTTP API (`POST /dcb/read`, `POST /dcb/append`):
    /// `--server URL`, or a bare `--server` for a child `strata serve` over
    /// `--store`.
    Dcb,
}

impl WorkloadName {
    /// The name used on the command line and in results.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkloadName::Append => "append",
            WorkloadName::HttpAppend => "http-append",
            WorkloadName::ReadAll => "read-all",
            WorkloadName::ReadStream => "read-stream",
            WorkloadName::Commands => "commands",
            WorkloadName::Rehydrate => "rehydrate",
            WorkloadName::Scale => "scale",
            WorkloadName::Scavenge => "scavenge",
            WorkloadName::Project => "project",
            WorkloadName::RawInsert => raw_insert::WORKLOAD,
            WorkloadName::Groups => "groups",
            WorkloadName::HttpGroups => "http-groups",
            WorkloadName::Dcb => "dcb",
        }
    }

    /// The values used for options the user leaves out.
    pub fn defaults(self) -> Defaults {
        match self {
            WorkloadName::Append => append::DEFAULTS,
            WorkloadName::HttpAppend => http_append::DEFAULTS,
            WorkloadName::ReadAll => read_all::DEFAULTS,
            WorkloadName::ReadStream => read_stream::DEFAULTS,
            WorkloadName::Commands => commands::DEFAULTS,
            WorkloadName::Rehydrate => rehydrate::DEFAULTS,
            WorkloadName::Scale => scale::DEFAULTS,
            WorkloadName::Scavenge => scavenge::DEFAULTS,
            WorkloadName::Project => project::DEFAULTS,
            WorkloadName::RawInsert => raw_insert::DEFAULTS,
            WorkloadName::Groups => groups::DEFAULTS,
            WorkloadName::HttpGroups => http_append::groups::DEFAULTS,
            WorkloadName::Dcb => dcb::DEFAULTS,
        }
    }
}

/// A workload's values for the options the user leaves out.
#[derive(Clone, Copy, Debug)]
pub struct Defaults {
    /// Concurrent tasks.
    pub writers: usize,
    /// Events per operation.
    pub batch: usize,
    /// Events in all (or the stream length, for the stream workloads).
    pub events: u64,
    /// Streams (accounts) written to.
    pub streams: usize,
}

/// `strata bench` options.
#[derive(Args, Debug)]
#[command(after_help = BENCH_AFTER_HELP)]
pub struct BenchArgs {
    /// The workload to run.
    #[arg(value_enum)]
    pub workload: WorkloadName,

    /// The store: `log:` (a fresh temporary directory, removed afterwards),
    /// `log:DIR` (a fresh directory beside DIR, removed afterwards; DIR
    /// itself with --in-place), `memory:`, or `postgres://…` (a fresh schema
    /// `strata_bench_XXXXXXXX`, dropped afterwards; the URL's `?schema=`
    /// itself with --in-place).
    #[arg(long, default_value = "log:")]
    pub store: StoreSpec,

    /// Concurrent tasks (writers, readers or command senders).
    #[arg(long)]
    pub writers: Option<usize>,

    /// Events per operation: per append for `append`, per page for `read-all`.
    #[arg(long)]
    pub batch: Option<usize>,

    /// Events in all (`append`, `read-all`, `commands`), or the stream length
    /// (`read-stream`, `rehydrate`).
    #[arg(long)]
    pub events: Option<u64>,

    /// Streams to spread appends over; accounts for `commands`.
    #[arg(long)]
    pub streams: Option<usize>,

    /// Durability of the log store: always, interval, interval:<ms> or none.
    #[arg(long, default_value = "always")]
    pub durability: Durability,

    /// Seconds of repeated measurement for `read-all`, `read-stream` and `rehydrate`.
    #[arg(long, default_value_t = 2.0)]
    pub duration: f64,

    /// Benchmark the log store in DIR (or the PostgreSQL schema of the URL)
    /// itself instead of a fresh one (its data is kept; `read-all` reuses
    /// events already there).
    #[arg(long)]
    pub in_place: bool,

    /// Keep the fresh log directory or PostgreSQL schema after the run (its
    /// name is printed).
    #[arg(long)]
    pub keep: bool,

    /// Print one JSON object per result on stdout instead of a table.
    #[arg(long)]
    pub json: bool,

    /// Compress sealed segments of the log store (zstd); the run then reports
    /// bytes on disk per event before and after compression.
    #[arg(long)]
    pub compress: bool,

    /// How long to measure this machine's fdatasync rate, in milliseconds (0: skip).
    #[arg(long, default_value_t = 1000)]
    pub fsync_probe_ms: u64,

    /// `http-append`, `http-groups`, `dcb`: the server to load, e.g.
    /// `http://127.0.0.1:7700`; without a URL (or, for `http-append` and
    /// `http-groups`, without the option), `strata serve --store <--store>`
    /// started as a child process. `dcb` without it runs in-process.
    #[arg(long, value_name = "URL", num_args = 0..=1, default_missing_value = "")]
    pub server: Option<String>,

    /// `http-append`, `http-groups`, `dcb --server`: send
    /// `Authorization: Bearer KEY` with every request.
    #[arg(long)]
    pub key: Option<String>,

    /// `append`: one subscriber follows the writes and reports delivery
    /// latency (`sub_p50_us`, `sub_p99_us`) and checks it saw every event
    /// once, in position order (`http-append` has one unless --no-subscriber).
    #[arg(long)]
    pub subscriber: bool,

    /// `http-append`: no SSE subscriber.
    #[arg(long, conflicts_with = "subscriber")]
    pub no_subscriber: bool,

    /// `http-append`: each writer keeps up to DEPTH (1 to 64) requests in
    /// flight on one HTTP/1.1 connection of its own (pipelining), through a
    /// lean client (`--pipeline 1`: that client, one request at a time;
    /// `http://` only). Without it each writer sends one request at a time
    /// through `reqwest`.
    #[arg(long, value_name = "DEPTH")]
    pub pipeline: Option<usize>,

    /// `http-append`: the SSE subscriber asks for several events to a
    /// message (`/subscribe/all?batch=true`).
    #[arg(long, conflicts_with = "no_subscriber")]
    pub sse_batch: bool,
}

const BENCH_AFTER_HELP: &str = "\
Stores:
  --store log:         a fresh temporary directory (under $TMPDIR), removed afterwards
  --store log:DIR      a fresh directory beside DIR (DIR.bench-XXXXXX), removed afterwards,
                       so a benchmark never touches DIR's data; add --in-place to use DIR itself
  --store memory:      in memory
  --store postgres://user@host:port/db
                       a fresh schema strata_bench_XXXXXXXX, dropped afterwards (--keep keeps it);
                       with --in-place the URL's ?schema=NAME (default strata) itself

Examples:
  strata bench append --store log: --writers 64 --events 50000
  strata bench append --store log: --writers 4 --batch 100 --events 1000000 --durability none
  strata bench read-all --store memory: --events 1000000
  strata bench commands --store memory: --json
  strata bench append --store postgres://postgres@127.0.0.1:5432/test --writers 64 --events 50000
  strata bench append --store postgres://postgres@127.0.0.1:5432/test --writers 8 --batch 100 --events 200000 --subscriber
  strata bench http-append --writers 64 --events 50000
  strata bench http-append --writers 4 --batch 100 --events 1000000
  strata bench http-append --writers 64 --events 200000 --pipeline 4 --no-subscriber
  strata bench http-append --server http://127.0.0.1:7700 --key KEY --writers 16
  strata bench dcb --store log: --writers 16 --duration 5
  strata bench dcb --server --store log:/var/tmp/bench --writers 16 --duration 5
  strata bench dcb --server http://127.0.0.1:7700 --key KEY

`http-append` without --server starts `strata serve` (this binary) as a child process on a free
loopback port with the --store given (default: a fresh temporary log directory) and --durability,
waits for /health, runs, then stops it with SIGTERM and waits for it to close the store.
`http-groups` does the same; `dcb` does with a bare --server (and runs in-process without it).

On PostgreSQL, `append` also runs `raw-insert` (single-row INSERTs, same writers, at most
50,000 rows) and gives its rate as a ratio of the database's: a `raw-insert` result line,
the append line's `ratio_to_raw_insert` (JSON) and a `ratio:` line on stderr.";

impl BenchArgs {
    /// `--server`'s URL; `None` when the option is absent or bare (a child
    /// `strata serve` over `--store`).
    pub fn server_url(&self) -> Option<&str> {
        self.server.as_deref().filter(|u| !u.is_empty())
    }
}

/// The options after defaults were applied and limits checked.
#[derive(Clone, Copy, Debug)]
pub struct Params {
    /// Concurrent tasks.
    pub writers: usize,
    /// Events per operation.
    pub batch: usize,
    /// Events in all, or the stream length.
    pub events: u64,
    /// Streams (accounts).
    pub streams: usize,
    /// Measuring time of the repeated-measurement workloads.
    pub duration: Duration,
    /// Whether a subscriber measures delivery latency (`append`, `http-append`).
    pub subscriber: bool,
}

impl Params {
    pub(crate) fn resolve(args: &BenchArgs, store: &dyn EventStore) -> Result<Params, BenchError> {
        let limits = store.limits();
        let max_batch = match args.workload {
            WorkloadName::ReadAll => limits.max_read_count,
            _ => limits.max_events_per_append,
        };
        Self::resolve_with(args, max_batch)
    }

    /// Resolves the options with `max_batch` as the largest `--batch`.
    pub(crate) fn resolve_with(args: &BenchArgs, max_batch: usize) -> Result<Params, BenchError> {
        let d = args.workload.defaults();
        let writers = args.writers.unwrap_or(d.writers);
        let batch = args.batch.unwrap_or(d.batch);
        let events = args.events.unwrap_or(d.events);
        let streams = args.streams.unwrap_or(d.streams);
        if writers == 0 || writers > MAX_WRITERS {
            return Err(
                format!("--writers must be between 1 and {MAX_WRITERS}, got {writers}").into(),
            );
        }
        if events == 0 || events > MAX_EVENTS {
            return Err(
                format!("--events must be between 1 and {MAX_EVENTS}, got {events}").into(),
            );
        }
        if streams == 0 || streams > MAX_STREAMS {
            return Err(
                format!("--streams must be between 1 and {MAX_STREAMS}, got {streams}").into(),
            );
        }
        if batch == 0 || batch > max_batch {
            return Err(format!(
                "--batch must be between 1 and {max_batch} (the store's limit), got {batch}"
            )
            .into());
        }
        if !(args.duration > 0.0 && args.duration <= MAX_DURATION_SECS) {
            return Err(format!(
                "--duration must be more than 0 and at most {MAX_DURATION_SECS} seconds, got {}",
                args.duration
            )
            .into());
        }
        let http = args.workload == WorkloadName::HttpAppend;
        let over_http = http || args.workload == WorkloadName::HttpGroups;
        let dcb = args.workload == WorkloadName::Dcb;
        if !over_http && !dcb && (args.server.is_some() || args.key.is_some()) {
            return Err(
                "--server and --key are options of http-append, http-groups and dcb".into(),
            );
        }
        if dcb && args.server.is_none() && args.key.is_some() {
            return Err("--key is an option of dcb with --server".into());
        }
        if !http && args.pipeline.is_some() {
            return Err("--pipeline is an option of http-append".into());
        }
        if !http && args.no_subscriber {
            return Err("--no-subscriber is an option of http-append".into());
        }
        if !http && args.sse_batch {
            return Err("--sse-batch is an option of http-append".into());
        }
        if args.subscriber && !matches!(args.workload, WorkloadName::Append) && !http {
            return Err(
                "--subscriber is an option of append (http-append has one by default)".into(),
            );
        }
        Ok(Params {
            writers,
            batch,
            events,
            streams,
            duration: Duration::from_secs_f64(args.duration),
            subscriber: if http {
                !args.no_subscriber
            } else {
                args.subscriber
            },
        })
    }
}
