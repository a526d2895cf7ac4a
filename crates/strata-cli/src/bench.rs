//! `strata bench`: the workloads live in `strata-bench`; this hands them
//! the `strata` program (for the workloads that start one) and prints what
//! they report: results on stdout, notes on stderr.

use strata_bench::{BenchError, Console, Host};

pub use strata_bench::BenchArgs;

/// Prints a run's results on stdout and its notes on stderr.
struct StdConsole;

impl Console for StdConsole {
    fn result(&self, line: &str) {
        println!("{line}");
    }

    fn note(&self, line: &str) {
        eprintln!("{line}");
    }

    fn show_progress(&self) -> bool {
        true
    }
}

/// Runs `strata bench`.
pub async fn run(args: BenchArgs) -> Result<(), BenchError> {
    let host = Host {
        console: &StdConsole,
        strata_program: std::env::current_exe().ok(),
    };
    strata_bench::run(args, &host).await
}
