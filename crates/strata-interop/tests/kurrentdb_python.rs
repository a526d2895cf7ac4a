//! The Python KurrentDB client (`kurrentdbclient`, the version pinned in
//! `.ci/run`) against `strata_grpc::serve` over memory stores.
//!
//! `.ci/run` installs the client and pytest in a virtual environment and
//! names its interpreter in `STRATA_KURRENTDB_PYTHON`. Without it the test
//! skips loudly, unless `STRATA_REQUIRE_INTEROP=1`, when it fails.
//!
//! Two suites run through the same runner:
//! - `python/test_strata.py`, this repository's tests of the client, always;
//! - the client's own test suite, when `STRATA_KURRENTDB_PYTHON_SUITE` names a
//!   checkout of it (its `tests/` directory is not in the client's package,
//!   so CI does not have it). Its tests reach the server at the fixed
//!   `localhost:2113`, which this runner then binds.
//!
//! Each suite has its lists beside it: `skipped` (tests that do not apply to
//! Strata, with the reason) and `pending` (tests that need a server
//! capability still being added, naming it). Listed tests are deselected.
//! The runner prints how many tests ran, passed and were skipped or pending,
//! and the client's whole output when anything failed.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{admin_keys, client_from_env, crate_dir, list_entries, run, serve};
use strata_server::ApiKeys;

/// The virtual environment's interpreter (with the client and pytest).
const PYTHON_ENV: &str = "STRATA_KURRENTDB_PYTHON";

/// A checkout of the client's repository whose own tests to run as well.
const SUITE_ENV: &str = "STRATA_KURRENTDB_PYTHON_SUITE";

/// Where the client's own tests expect a cleartext server.
const SUITE_ADDR: &str = "127.0.0.1:2113";

/// What pytest's closing line counted.
#[derive(Debug, Default)]
struct Counts {
    passed: u64,
    failed: u64,
    errors: u64,
    skipped: u64,
    deselected: u64,
}

impl Counts {
    /// The counts in pytest's closing line (`3 passed, 1 deselected in 0.5s`).
    fn parse(output: &str) -> Option<Counts> {
        const OUTCOMES: [&str; 5] = ["passed", "failed", "error", "skipped", "deselected"];
        let line = output
            .lines()
            .rev()
            .find(|l| l.contains(" in ") && OUTCOMES.iter().any(|o| l.contains(o)))?;
        let mut counts = Counts::default();
        let words: Vec<&str> = line
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|w| !w.is_empty())
            .collect();
        for pair in words.windows(2) {
            let Ok(n) = pair[0].parse::<u64>() else {
                continue;
            };
            match pair[1] {
                "passed" => counts.passed = n,
                "failed" => counts.failed = n,
                "error" | "errors" => counts.errors = n,
                "skipped" => counts.skipped = n,
                "deselected" => counts.deselected = n,
                _ => {}
            }
        }
        Some(counts)
    }

    fn ran(&self) -> u64 {
        self.passed + self.failed + self.errors
    }
}

/// Runs pytest on `targets` with the listed tests deselected; panics with
/// the output unless every selected test passed.
async fn pytest(
    python: &Path,
    suite: &str,
    dir: &Path,
    targets: &[&str],
    lists: &Path,
    env: &[(&str, String)],
) {
    let skipped = list_entries(&lists.join("skipped.txt"));
    let pending = list_entries(&lists.join("pending.txt"));
    let mut command = Command::new(python);
    command
        .current_dir(dir)
        .args(["-m", "pytest", "-p", "no:cacheprovider", "-q", "-rfE"])
        .args(targets);
    for test in skipped.iter().chain(&pending) {
        command.arg("--deselect").arg(test);
    }
    for (k, v) in env {
        command.env(k, v);
    }
    let log_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let done = run(command, &log_dir, &format!("kurrentdb-python-{suite}")).await;
    let counts = Counts::parse(&done.output);
    let Some(counts) = counts else {
        panic!(
            "{suite}: no pytest summary ({}); output:\n{}",
            done.status, done.output
        );
    };
    println!(
        "python client, {suite}: ran {}, passed {}, skipped by the suite {}, deselected {} \
         (skipped.txt {} entries, pending.txt {} entries)",
        counts.ran(),
        counts.passed,
        counts.skipped,
        counts.deselected,
        skipped.len(),
        pending.len()
    );
    assert!(
        done.status.success() && counts.failed == 0 && counts.errors == 0 && counts.passed > 0,
        "{suite}: {counts:?} ({}); output:\n{}",
        done.status,
        done.output
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_client_passes_strata_tests() {
    let test = "python_client_passes_strata_tests";
    let Some(python) =
        client_from_env(test, PYTHON_ENV, "a Python with kurrentdbclient and pytest")
    else {
        return;
    };
    let open = serve("127.0.0.1:0", ApiKeys::none()).await;
    let keyed = serve("127.0.0.1:0", admin_keys()).await;
    let dir = crate_dir().join("python");
    pytest(
        &python,
        "strata",
        &dir,
        &["test_strata.py"],
        &dir,
        &[
            ("STRATA_KURRENTDB_URI", format!("kdb://{open}?tls=false")),
            (
                "STRATA_KURRENTDB_KEYED_URI",
                format!("kdb://{keyed}?tls=false"),
            ),
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_client_passes_its_own_suite() {
    let Some(checkout) = std::env::var_os(SUITE_ENV).filter(|v| !v.is_empty()) else {
        eprintln!(
            "python_client_passes_its_own_suite: {SUITE_ENV} is not set \
             (a checkout of the client's repository); not run"
        );
        return;
    };
    let Some(python) = client_from_env(
        "python_client_passes_its_own_suite",
        PYTHON_ENV,
        "a Python with kurrentdbclient and pytest",
    ) else {
        return;
    };
    serve(SUITE_ADDR, ApiKeys::none()).await;
    let lists = crate_dir().join("python").join("suite");
    pytest(
        &python,
        "own-suite",
        Path::new(&checkout),
        &["tests/test_client.py"],
        &lists,
        &[],
    )
    .await;
}
