//! The data commands directly on the PostgreSQL store: an export of a log
//! store imported into a fresh schema (exact, then a no-op), read back,
//! tailed and counted.
//!
//! Reads `STRATA_TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`), uses a schema of its own and
//! drops it. With no server answering it prints a loud SKIPPED message and
//! passes, unless `STRATA_REQUIRE_PG=1`, when it fails (the same rule as
//! tests/postgres.rs).

// Tests may unwrap (STYLE.md); the helpers here are test code too.
#![allow(clippy::unwrap_used)]

mod common;

use common::pg::{pg_available, spec_with_schema, SchemaGuard};

use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn strata(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run strata");
    let input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        use std::io::Write;
        let mut input = input;
        input.write_all(text.as_bytes()).unwrap();
    }
    child.wait_with_output().unwrap()
}

fn ok(o: Output, what: &str) -> Output {
    assert!(
        o.status.success(),
        "{what} failed ({:?})\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

fn lines(o: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Everything an import keeps: all but position and time.
fn portable(events: &[Value]) -> Vec<Value> {
    events
        .iter()
        .map(|e| {
            let mut e = e.clone();
            let o = e.as_object_mut().unwrap();
            o.remove("position");
            o.remove("recorded_at");
            e
        })
        .collect()
}

#[test]
fn export_from_a_log_store_imports_into_postgres() {
    if !pg_available("export_from_a_log_store_imports_into_postgres") {
        return;
    }
    let guard = SchemaGuard::new("cli_data");
    let schema = guard.0.clone();
    let pg = spec_with_schema(&schema);

    let dir = tempfile::tempdir().unwrap();
    let log = format!("log:{}", dir.path().display());
    let stdin = concat!(
        "{\"type\":\"Opened\",\"data\":{\"owner\": \"ada\"},\"metadata\":{\"correlation_id\":\"c-1\"}}\n",
        "{\"type\":\"Blob\",\"content_type\":\"binary\",\"data\":\"AP8K\"}\n",
    );
    ok(
        strata(
            &["append", "acct-1", "--stdin", "--store", &log],
            Some(stdin),
        ),
        "append",
    );
    ok(
        strata(
            &[
                "append", "acct-2", "--type", "Opened", "--data", "{}", "--store", &log,
            ],
            None,
        ),
        "append",
    );
    let export = ok(strata(&["export", "--store", &log], None), "export");
    let exported = lines(&export);
    assert_eq!(exported.len(), 3);
    let text = String::from_utf8(export.stdout).unwrap();

    let o = ok(strata(&["import", "--store", &pg], Some(&text)), "import");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("3 written, 0 already present"), "{err}");
    let o = ok(
        strata(&["import", "--store", &pg], Some(&text)),
        "re-import",
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("0 written, 3 already present"), "{err}");

    let all = lines(&ok(strata(&["all", "--store", &pg], None), "all"));
    assert_eq!(portable(&all), portable(&exported));
    let read = lines(&ok(
        strata(&["read", "acct-1", "--store", &pg], None),
        "read",
    ));
    assert_eq!(read.len(), 2);
    assert_eq!(read[1]["data"], "AP8K");
    let tailed = lines(&ok(
        strata(&["tail", "--limit", "3", "--store", &pg], None),
        "tail",
    ));
    assert_eq!(portable(&tailed), portable(&exported));

    // The PostgreSQL store is counted by a walk of `$all`.
    let stats: Value = serde_json::from_slice(
        &ok(strata(&["stats", "--json", "--store", &pg], None), "stats").stdout,
    )
    .unwrap();
    assert_eq!(stats["events"], 3);
    assert_eq!(stats["streams"], 2);
    assert_eq!(stats["head_position"], all[2]["position"]);
}
