//! What a benchmark run needs from the program that hosts it: where its
//! text goes, and the `strata` program for the workloads that start one.
//!
//! The library never prints: results and notes go to the host's
//! [`Console`], which the `strata` command writes to stdout and stderr.

use std::path::PathBuf;

/// Where a run's text goes.
pub trait Console: Send + Sync {
    /// One line of the results: the table, or one JSON object per line
    /// (`strata bench` prints it on stdout).
    fn result(&self, line: &str);

    /// A note on the run: what is benchmarked where, a ratio, a warning
    /// (`strata bench` prints it on stderr).
    fn note(&self, line: &str);

    /// Whether progress bars may be drawn (on stderr, when it is a
    /// terminal). None by default.
    fn show_progress(&self) -> bool {
        false
    }
}

/// The program hosting a run.
pub struct Host<'a> {
    /// Where the results and notes go.
    pub console: &'a dyn Console,
    /// The `strata` program: `http-append` without `--server` starts it as
    /// `strata serve`, and `scale` on the log store as the writer it kills.
    /// `None` when there is none; those workloads then fail.
    pub strata_program: Option<PathBuf>,
}

impl Host<'_> {
    /// The `strata` program, or an error saying what needed it.
    pub(crate) fn strata_program(&self, purpose: &str) -> Result<&std::path::Path, String> {
        self.strata_program
            .as_deref()
            .ok_or_else(|| format!("cannot find the `strata` program to {purpose}"))
    }
}
