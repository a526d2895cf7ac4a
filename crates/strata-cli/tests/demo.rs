//! `strata demo trading|game|audit`, run as a user runs it: on `memory:`, on
//! a log store in a temporary directory and on PostgreSQL (a schema per
//! test), at small sizes. `demo audit --verify` exits 0 on an untouched
//! store and 1, naming the event, after an event was changed behind the
//! store's back.
//!
//! The PostgreSQL tests read `STRATA_TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`); with no server answering they
//! print a loud SKIPPED message and pass, unless `STRATA_REQUIRE_PG=1`.

// Tests may unwrap (STYLE.md); the helpers here are test code too.
#![allow(clippy::unwrap_used)]

mod common;

use common::pg::{pg_available, query_rows, spec_with_schema, unique_schema, SchemaGuard};
use common::run::{assert_ok, stderr, stdout, strata};

fn assert_has(out: &str, needles: &[&str]) {
    for n in needles {
        assert!(out.contains(n), "output lacks {n:?}:\n{out}");
    }
}

/// Runs the three demos on `store` at small sizes and checks their reports.
fn run_all_three(store: &str) {
    let out = assert_ok(
        &strata(&[
            "demo",
            "trading",
            "--orders",
            "400",
            "--concurrency",
            "32",
            "--store",
            store,
        ]),
        "demo trading",
    );
    assert_has(
        &out,
        &[
            "strata demo on ",
            "trading: 400 orders, 32 tasks, seed 42",
            "write: 400 orders",
            "orders/s",
            "project order book:",
            "match a direct recomputation",
            "ACME: best bid",
            "PnL of trader-",
            "ACME as of",
        ],
    );
    // `--store` before the scenario's name works too.
    let out = assert_ok(
        &strata(&[
            "demo", "--store", store, "game", "--games", "30", "--moves", "10", "--tick", "3",
        ]),
        "demo game",
    );
    assert_has(
        &out,
        &[
            "game: 30 games, 10 moves each, 4 processor workers",
            "games/s",
            "0 out of order, 0 parked",
            "check: all 30 boards equal their games loaded from the store",
            "replay of game",
            "+------------+",
        ],
    );
    let out = assert_ok(
        &strata(&[
            "demo",
            "audit",
            "--actions",
            "600",
            "--logs",
            "3",
            "--verify",
            "--store",
            store,
        ]),
        "demo audit",
    );
    assert_has(
        &out,
        &[
            "audit: 600 records over 3 logs",
            "write: 600 chained records",
            "records/s",
            "actions of user-042:",
            "actions on doc-007:",
            "0 tampered",
            "one event modified:",
            "one event removed:",
            "one event reordered:",
        ],
    );
}

#[test]
fn the_three_demos_on_memory() {
    run_all_three("memory:");
    // Without a scenario, `demo` is still the round trip.
    let out = assert_ok(&strata(&["demo", "--store", "memory:"]), "demo");
    assert_has(&out, &["appended 3 events"]);
}

#[test]
fn the_three_demos_on_a_log_store_and_verify_again() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("log:{}", dir.path().display());
    run_all_three(&store);
    // Every chain written so far (this run and nothing else) verifies, with
    // nothing new written; the log's own checks pass too.
    let out = assert_ok(
        &strata(&[
            "demo",
            "audit",
            "--actions",
            "0",
            "--verify",
            "--store",
            &store,
        ]),
        "demo audit --verify",
    );
    assert_has(&out, &["verify: 3 chains, 600 events intact, 0 tampered"]);
    assert_ok(&strata(&["verify", "--store", &store]), "verify");
}

#[test]
fn bad_demo_options_are_one_line_errors() {
    let o = strata(&["demo", "trading", "--orders", "0", "--store", "memory:"]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("orders must be 1 to"), "{err}");
}

#[test]
fn the_three_demos_on_postgres_and_a_tampered_chain_is_named() {
    if !pg_available("the_three_demos_on_postgres_and_a_tampered_chain_is_named") {
        return;
    }
    let schema = SchemaGuard(unique_schema("demo"));
    let store = spec_with_schema(&schema.0);
    run_all_three(&store);
    let out = assert_ok(
        &strata(&[
            "demo",
            "audit",
            "--actions",
            "0",
            "--verify",
            "--store",
            &store,
        ]),
        "demo audit --verify",
    );
    assert_has(&out, &["verify: 3 chains, 600 events intact, 0 tampered"]);

    // Change one user action's resource behind the store's back.
    let s = &schema.0;
    let rows = query_rows(&format!(
        "SELECT position, event_id, stream_id, version FROM \"{s}\".events \
         WHERE stream_id LIKE 'audit-%' AND event_type = 'UserAction' \
         ORDER BY position OFFSET 50 LIMIT 1"
    ));
    let [position, event_id, stream, version] = &rows[0][..] else {
        panic!("no audit event found: {rows:?}");
    };
    query_rows(&format!(
        "UPDATE \"{s}\".events SET data = convert_to(replace(convert_from(data, 'UTF8'), \
         '\"resource\":\"doc-', '\"resource\":\"doc-9'), 'UTF8') WHERE position = {position}"
    ));
    let o = strata(&[
        "demo",
        "audit",
        "--actions",
        "0",
        "--verify",
        "--store",
        &store,
    ]);
    assert_eq!(o.status.code(), Some(1), "{}\n{}", stdout(&o), stderr(&o));
    let err = stderr(&o);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert_has(
        &err,
        &[
            &format!("audit chain {stream} was tampered with"),
            &format!("(version {version}, id {event_id}) was modified"),
        ],
    );
    assert_has(&stdout(&o), &["1 tampered", "TAMPERED"]);
}
