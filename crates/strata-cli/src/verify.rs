//! `strata verify`: check every checksum and index entry of a log store,
//! and with `--repair` cut a damaged one back to its last good frame.

use std::io::{BufRead, Write};
use std::path::Path;

use strata_log::io::FsStorage;
use strata_log::verify::{plan_repair, verify, RepairPlan, VerifyReport};

use strata_stores::{StoreSpec, DEFAULT_LOG_DIR};

/// What `verify` concluded, for the exit code.
pub enum Verdict {
    /// No problem found.
    Clean,
    /// At least one problem found (all printed).
    Problems(usize),
}

/// Verifies the log store named by `spec` and prints a summary and every
/// problem (file and offset). With `repair`, a damaged store is then cut
/// back to its last good frame once the user confirms (or `yes`).
pub fn run(
    spec: &StoreSpec,
    repair: bool,
    yes: bool,
) -> Result<Verdict, Box<dyn std::error::Error>> {
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
    if repair && !report.is_clean() {
        return run_repair(&dir, &report, yes);
    }
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

/// Plans the repair, asks, applies it and verifies again.
fn run_repair(
    dir: &Path,
    report: &VerifyReport,
    yes: bool,
) -> Result<Verdict, Box<dyn std::error::Error>> {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        .to_string();
    let Some(plan) = plan_repair(dir, &FsStorage, report, &stamp)
        .map_err(|e| format!("cannot plan a repair of {}: {e}", dir.display()))?
    else {
        println!("repair: the log itself is sound; nothing to cut (opening the store rebuilds its indexes)");
        return Ok(Verdict::Problems(report.problems.len()));
    };
    print_plan(&plan);
    if !yes && !confirmed()? {
        println!("repair: not confirmed; nothing was changed");
        return Ok(Verdict::Problems(report.problems.len()));
    }
    let done = plan
        .apply(&FsStorage)
        .map_err(|e| format!("repair of {} failed: {e}", dir.display()))?;
    for f in &done.kept {
        println!("repair: kept {}", f.display());
    }
    let after =
        verify(dir, &FsStorage).map_err(|e| format!("cannot verify {}: {e}", dir.display()))?;
    println!("after the repair:");
    print_report(dir, &after);
    Ok(if after.is_clean() {
        Verdict::Clean
    } else {
        Verdict::Problems(after.problems.len())
    })
}

fn print_plan(plan: &RepairPlan) {
    let d = &plan.damage;
    println!(
        "repair: cuts the log at {} offset {}: {} bytes of that segment and {} later segment(s), holding {} readable event(s) after the damage",
        d.file.display(),
        d.offset,
        plan.cut_bytes,
        plan.later_segments.len(),
        d.events_after
    );
    println!(
        "repair: every cut byte is kept in {}",
        plan.side_dir.display()
    );
}

/// Asks on stdin; only `yes` goes on.
fn confirmed() -> Result<bool, Box<dyn std::error::Error>> {
    print!("type yes to cut the log: ");
    std::io::stdout().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim() == "yes")
}
