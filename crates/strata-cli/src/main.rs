//! `strata`: run, inspect and benchmark Strata event stores.

mod backup;
mod bench;
mod data;
mod demo;
mod group;
mod migrate;
mod scavenge;
mod scavenge_schedule;
mod serve;
mod snapshots;
mod verify;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use strata_stores::{StoreSpec, DEFAULT_STORE};

/// Strata, an event-sourcing database.
///
/// Stores (`--store`): `log:DIR` is the embedded durable store in DIR (the
/// default, `log:./strata-data`); `memory:` keeps everything in memory until
/// exit; `postgres://user[:password]@host[:port]/db[?schema=NAME]` is the
/// PostgreSQL store in schema NAME (default `strata`; created and migrated on
/// first use). Passwords are masked whenever a store is printed.
#[derive(Parser)]
#[command(name = "strata", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a demo: with no scenario, append a few events to a fresh stream
    /// and read them back; `trading`, `game` and `audit` run the seed's
    /// scenarios with a generated load.
    Demo(demo::DemoArgs),
    /// Check every checksum and index entry of a log store; exits non-zero
    /// if anything is wrong.
    Verify {
        /// The store to check: `log:DIR`.
        #[arg(long, default_value = DEFAULT_STORE)]
        store: StoreSpec,
        /// Cut a damaged store back to its last good frame, keeping the cut
        /// bytes in DIR/repair-UNIXSECONDS/ (asks for confirmation).
        #[arg(long)]
        repair: bool,
        /// With --repair: do not ask for confirmation.
        #[arg(long, requires = "repair")]
        yes: bool,
    },
    /// Bring a PostgreSQL schema up to this build's version (idempotent) and
    /// print what was applied.
    Migrate(migrate::MigrateArgs),
    /// Run a benchmark workload and print a table (or JSON lines).
    Bench(bench::BenchArgs),
    /// Reclaim the space of deleted, tombstoned, erased and expired events
    /// of a log store (positions of the rest never change) and print a
    /// summary.
    Scavenge(scavenge::ScavengeArgs),
    /// Serve the HTTP/JSON API (see docs/http-api.md) until SIGINT or SIGTERM.
    Serve(serve::ServeArgs),
    /// The data commands (docs/cli.md): on a store (`--store`) or a server
    /// (`--server URL --key K`).
    #[command(flatten)]
    Data(data::DataCommand),
    /// Consumer groups (docs/cli.md): create, list, show, delete, parked,
    /// replay, delete-parked, and `consume` (a reference consumer).
    Group(group::GroupArgs),
    /// `backup` and `restore` of a log store (docs/backup.md).
    #[command(flatten)]
    Backup(backup::BackupCommand),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // Help and version go to stdout as usual.
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => {
            // Errors are one line: clap's message lines (a missing-argument
            // error lists the arguments below its first line) are joined,
            // its tips and usage dropped.
            let text = e.to_string();
            let parts: Vec<&str> = text
                .lines()
                .take_while(|l| !l.starts_with("Usage:"))
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with("tip:"))
                .collect();
            let line = if parts.is_empty() {
                "error: invalid arguments".to_string()
            } else {
                parts.join(" ")
            };
            eprintln!("{line} (see `strata --help`)");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result: Result<ExitCode, String> = runtime.block_on(async {
        match cli.command {
            Command::Demo(args) => demo::run(args)
                .await
                .map(|()| ExitCode::SUCCESS)
                .map_err(|e| e.to_string()),
            Command::Verify { store, repair, yes } => match verify::run(&store, repair, yes) {
                Ok(verify::Verdict::Clean) => Ok(ExitCode::SUCCESS),
                Ok(verify::Verdict::Problems(n)) => {
                    eprintln!("error: verify found {n} problem(s) in {store}");
                    Ok(ExitCode::FAILURE)
                }
                Err(e) => Err(e.to_string()),
            },
            Command::Migrate(args) => migrate::run(args)
                .await
                .map(|()| ExitCode::SUCCESS)
                .map_err(|e| e.to_string()),
            Command::Serve(args) => serve::run(args)
                .await
                .map(|()| ExitCode::SUCCESS)
                .map_err(|e| e.to_string()),
            Command::Scavenge(args) => scavenge::run(args)
                .await
                .map(|()| ExitCode::SUCCESS)
                .map_err(|e| e.to_string()),
            Command::Bench(args) => bench::run(args)
                .await
                .map(|()| ExitCode::SUCCESS)
                .map_err(|e| e.to_string()),
            Command::Data(command) => data::run(command)
                .await
                .map(|()| ExitCode::SUCCESS)
                .map_err(|e| e.to_string()),
            Command::Group(args) => group::run(args)
                .await
                .map(|()| ExitCode::SUCCESS)
                .map_err(|e| e.to_string()),
            Command::Backup(command) => backup::run(command)
                .await
                .map(|()| ExitCode::SUCCESS)
                .map_err(|e| e.to_string()),
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            // One line: a multi-line error is folded so scripts can grep it.
            eprintln!("error: {}", e.replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}
