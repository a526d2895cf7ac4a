//! `strata`: run, inspect and benchmark Strata event stores.

mod demo;
mod store_spec;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use store_spec::StoreSpec;

/// Strata, an event-sourcing database.
#[derive(Parser)]
#[command(name = "strata", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Append a few events to a store and read them back.
    Demo {
        /// Which store: `memory:`.
        #[arg(long, default_value = "memory:")]
        store: StoreSpec,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
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
    let result = runtime.block_on(async {
        match cli.command {
            Command::Demo { store } => demo::run(store).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
