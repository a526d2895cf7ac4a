//! `strata verify`: check every checksum and index entry of a log store.

use std::path::Path;

use strata_log::io::FsStorage;
use strata_log::verify::{verify, VerifyReport};

use strata_stores::{StoreSpec, DEFAULT_LOG_DIR};

/// What `verify` concluded, for the exit code.
pub enum Verdict {
    /// No problem found.
    Clean,
    /// At least one problem found (all printed).
    Problems(usize),
}

/// Verifies the log store named by `spec` and prints a summary and every
/// problem (file and offset).
pub fn run(spec: &StoreSpec) -> Result<Verdict, Box<dyn std::error::Error>> {
    let Some(dir) = spec.log_dir_or(Path::new(DEFAULT_LOG_DIR)) else {
        return Err(format!(
            "verify checks log stores only; `{spec}` is not one (use --store log:DIR)"
        )
        .into());
    };
    if !dir.is_dir() {
        return Err(format!("no store to verify: {} does not exist", dir.display()).into());
    }
    if !dir.join("segments").is_dir() {
        return Err(format!(
            "{} is not a Strata log store: it has no segments/ directory",
            dir.display()
        )
        .into());
    }
    let report =
        verify(&dir, &FsStorage).map_err(|e| format!("cannot verify {}: {e}", dir.display()))?;
    print_report(&dir, &report);
    Ok(if report.is_clean() {
        Verdict::Clean
    } else {
        Verdict::Problems(report.problems.len())
    })
}

fn print_report(dir: &Path, report: &VerifyReport) {
    println!(
        "verified log:{}: {} segments, {} frames, {} events, {} index entries",
        dir.display(),
        report.segments,
        report.frames,
        report.events,
        report.index_entries
    );
    for p in &report.problems {
        println!("problem: {p}");
    }
    match report.problems.len() {
        0 => println!("ok: no problems found"),
        1 => println!("1 problem found"),
        n => println!("{n} problems found"),
    }
}
