//! # strata-bench
//!
//! Strata's benchmark workloads, the program behind `strata bench`
//! (benchmarks are programs, never timed asserts), in a crate of their own
//! so the libraries' public APIs carry no workload or baseline code.
//!
//! - [`BenchArgs`] are the options of `strata bench` (a clap [`Args`]
//!   struct the command embeds); [`run`] runs one workload and reports to
//!   the [`Host`]'s [`Console`].
//! - One module per workload (`append`, `http-append`, `read-all`,
//!   `read-stream`, `commands`, `rehydrate`, `scale`, `project`,
//!   `raw-insert`; see [`WorkloadName`]). A workload gets the open store
//!   and the resolved [`Params`] and returns its measurements; the driver
//!   adds what every result line shares (store, durability, memory, the
//!   machine's fdatasync rate) and reports them.
//! - [`catch_up`]: the projection measurements behind `project` (and the
//!   `project_throughput` example).
//! - [`baseline`]: the PostgreSQL raw-insert baseline (`raw-insert`, and the
//!   `pg_throughput` example).
//!
//! The examples (`repository_throughput`, `project_throughput`,
//! `pg_throughput`) are quick probes of one hot path each.
//!
//! [`Args`]: clap::Args

#![cfg_attr(not(test), deny(clippy::unwrap_used))]

mod args;
pub mod baseline;
mod bench_store;
pub mod catch_up;
mod context;
mod delivery;
mod driver;
mod fsync;
mod host;
mod latency;
mod payload;
mod report;
mod store_sub;
mod workload;

pub use args::{
    BenchArgs, Defaults, Params, WorkloadName, MAX_DURATION_SECS, MAX_EVENTS, MAX_STREAMS,
    MAX_WRITERS,
};
pub use driver::run;
pub use host::{Console, Host};

/// Errors of a benchmark run: any error, as one line.
pub type BenchError = Box<dyn std::error::Error + Send + Sync>;
