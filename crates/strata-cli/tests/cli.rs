//! The `strata` binary, run as a user runs it.

// Tests may unwrap (STYLE.md); the helpers here are test code too.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Output;

mod common;

use common::run::{assert_ok, stderr, stdout, strata};

/// Asserts a failure with exactly one line on stderr containing `needle`.
fn assert_one_line_error(o: &Output, needle: &str) {
    assert!(!o.status.success(), "expected failure, got success");
    let err = stderr(o);
    assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err:?}");
    assert!(err.contains(needle), "{err:?} lacks {needle:?}");
}

fn head_position(demo_stdout: &str) -> u64 {
    demo_stdout
        .lines()
        .find_map(|l| l.strip_prefix("$all head position: "))
        .and_then(|p| p.trim().parse().ok())
        .expect("head position line")
}

fn log_spec(dir: &Path) -> String {
    format!("log:{}", dir.display())
}

#[test]
fn demo_on_memory() {
    let o = strata(&["demo", "--store", "memory:"]);
    assert_ok(&o, "demo");
    let out = stdout(&o);
    assert!(out.contains("appended 3 events"), "{out}");
    assert!(out.contains("AccountOpened"), "{out}");
    assert!(out.contains("by correlation id"), "{out}");
}

#[test]
fn demo_on_log_persists_and_verifies() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let spec = log_spec(&dir);

    let first = strata(&["demo", "--store", &spec]);
    assert_ok(&first, "first demo");
    let second = strata(&["demo", "--store", &spec]);
    assert_ok(&second, "second demo");
    // The second run appends after the first run's events: they persisted.
    assert!(head_position(&stdout(&second)) > head_position(&stdout(&first)));

    let verified = strata(&["verify", "--store", &spec]);
    assert_ok(&verified, "verify");
    let out = stdout(&verified);
    assert!(out.contains("6 events"), "{out}");
    assert!(out.contains("no problems"), "{out}");

    // A damaged copy: one byte flipped in the middle of the first segment.
    let damaged = tmp.path().join("damaged");
    copy_dir(&dir, &damaged);
    let seg = damaged.join("segments").join("00000000.seg");
    let mut bytes = std::fs::read(&seg).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&seg, bytes).unwrap();
    let o = strata(&["verify", "--store", &log_spec(&damaged)]);
    assert!(!o.status.success(), "verify passed a damaged store");
    let all = format!("{}{}", stdout(&o), stderr(&o));
    assert!(all.contains("00000000.seg"), "{all}");
    assert!(all.contains("problem"), "{all}");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn verify_of_a_missing_directory_is_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let o = strata(&["verify", "--store", &log_spec(&tmp.path().join("nope"))]);
    assert_one_line_error(&o, "does not exist");
}

#[test]
fn bad_store_is_one_line() {
    let o = strata(&["demo", "--store", "mysql://x"]);
    assert_one_line_error(&o, "unknown store");
    let o = strata(&["bench", "append", "--store", "nonsense"]);
    assert_one_line_error(&o, "unknown store");
    // No server listens on port 1: refused at once, one line, password masked.
    let o = strata(&["demo", "--store", "postgres://u:secret@127.0.0.1:1/db"]);
    assert_one_line_error(&o, "cannot open the PostgreSQL store");
    assert!(!stderr(&o).contains("secret"), "{}", stderr(&o));
    assert!(stderr(&o).contains("u:***@"), "{}", stderr(&o));
    let o = strata(&["migrate", "--store", "postgres://u:secret@127.0.0.1:1/db"]);
    assert_one_line_error(&o, "cannot migrate");
    assert!(!stderr(&o).contains("secret"), "{}", stderr(&o));
    let o = strata(&[
        "demo",
        "--store",
        "postgres://u@localhost/db?schema=no-dashes",
    ]);
    assert_one_line_error(&o, "schema name");
    let o = strata(&["demo", "--store", "postgres://u@localhost:notaport/db"]);
    assert_one_line_error(&o, "cannot open the PostgreSQL store");
}

#[test]
fn migrate_is_only_for_postgres() {
    for store in ["memory:", "log:./somewhere"] {
        let o = strata(&["migrate", "--store", store]);
        assert_one_line_error(&o, "migrations are only for PostgreSQL");
    }
    assert!(!Path::new("./somewhere").exists());
}

#[test]
fn raw_insert_needs_postgres() {
    let o = strata(&[
        "bench",
        "raw-insert",
        "--store",
        "memory:",
        "--fsync-probe-ms",
        "0",
    ]);
    assert_one_line_error(&o, "needs --store postgres://");
}

const REQUIRED_KEYS: [&str; 10] = [
    "workload",
    "store",
    "writers",
    "batch",
    "events",
    "seconds",
    "events_per_sec",
    "p50_us",
    "p99_us",
    "rss_mib",
];

fn json_lines(o: &Output) -> Vec<serde_json::Value> {
    stdout(o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect()
}

#[test]
fn bench_append_json_on_memory() {
    let o = strata(&[
        "bench",
        "append",
        "--store",
        "memory:",
        "--events",
        "2000",
        "--json",
        "--fsync-probe-ms",
        "50",
    ]);
    assert_ok(&o, "bench");
    let lines = json_lines(&o);
    assert_eq!(lines.len(), 1);
    let r = &lines[0];
    for key in REQUIRED_KEYS {
        assert!(r.get(key).is_some(), "missing {key} in {r}");
    }
    assert_eq!(r["workload"], "append");
    assert_eq!(r["store"], "memory:");
    assert_eq!(r["events"], 2000);
    assert!(r["events_per_sec"].as_f64().unwrap() > 0.0);
    assert!(r["p99_us"].as_f64().unwrap() >= r["p50_us"].as_f64().unwrap());
    assert!(r["fdatasync_per_sec"].as_f64().unwrap() > 0.0);
}

#[test]
fn every_workload_runs_on_memory() {
    for (workload, extra) in [
        (
            "append",
            &["--events", "500", "--writers", "4", "--batch", "10"][..],
        ),
        ("read-all", &["--events", "3000", "--batch", "1000"][..]),
        ("read-stream", &["--events", "100"][..]),
        (
            "commands",
            &["--events", "400", "--streams", "20", "--writers", "4"][..],
        ),
        ("rehydrate", &["--events", "300"][..]),
        ("dcb", &["--writers", "4", "--streams", "50"][..]),
    ] {
        let mut args = vec![
            "bench",
            workload,
            "--store",
            "memory:",
            "--json",
            "--duration",
            "0.2",
            "--fsync-probe-ms",
            "0",
        ];
        args.extend_from_slice(extra);
        let o = strata(&args);
        assert_ok(&o, workload);
        let lines = json_lines(&o);
        assert!(!lines.is_empty(), "{workload}: no result");
        for r in &lines {
            assert_eq!(r["workload"], workload);
            assert_eq!(r["errors"], 0, "{r}");
            assert!(r["events"].as_u64().unwrap() > 0, "{r}");
        }
        if workload == "rehydrate" {
            assert_eq!(lines.len(), 2);
        }
        if workload == "dcb" {
            // One writer, then four; every decision is timed.
            assert_eq!(lines.len(), 2);
            assert_eq!(lines[1]["writers"], 4);
        }
    }
}

#[test]
fn bench_on_log_leaves_no_data_behind_unless_in_place() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let spec = log_spec(&dir);
    for workload in ["append", "read-all", "read-stream", "commands", "rehydrate"] {
        let o = strata(&[
            "bench",
            workload,
            "--store",
            &spec,
            "--events",
            "200",
            "--streams",
            "10",
            "--writers",
            "2",
            "--batch",
            "10",
            "--duration",
            "0.1",
            "--durability",
            "none",
            "--fsync-probe-ms",
            "20",
        ]);
        assert_ok(&o, workload);
        assert!(stdout(&o).contains("fdatasync:"), "{}", stdout(&o));
        assert!(stdout(&o).contains(workload), "{}", stdout(&o));
    }
    // The fresh directories beside `data` are gone and `data` was never made.
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");

    // In place: the data stays, and it verifies.
    let o = strata(&[
        "bench",
        "append",
        "--store",
        &spec,
        "--in-place",
        "--events",
        "300",
        "--writers",
        "3",
        "--json",
        "--fsync-probe-ms",
        "20",
    ]);
    assert_ok(&o, "bench --in-place");
    assert_eq!(json_lines(&o)[0]["events"], 300);
    let verified = strata(&["verify", "--store", &spec]);
    assert_ok(&verified, "verify after bench");
    assert!(
        stdout(&verified).contains("300 events"),
        "{}",
        stdout(&verified)
    );
}
