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

use std::net::{TcpStream, ToSocketAddrs};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use strata_postgres::tokio_postgres;

fn strata(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(args)
        .output()
        .expect("run strata")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn assert_ok(o: &Output, what: &str) -> String {
    assert!(
        o.status.success(),
        "{what} failed ({:?})\nstdout:\n{}\nstderr:\n{}",
        o.status,
        stdout(o),
        stderr(o)
    );
    stdout(o)
}

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

fn database_url() -> String {
    std::env::var("STRATA_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// `true` when a server answers; otherwise a loud skip message, or a panic
/// under `STRATA_REQUIRE_PG=1`.
fn pg_available(test: &str) -> bool {
    let url = database_url();
    let answers = url
        .parse::<tokio_postgres::Config>()
        .ok()
        .and_then(|config| {
            let host = match config.get_hosts().first() {
                Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
                _ => "127.0.0.1".to_owned(),
            };
            let port = config.get_ports().first().copied().unwrap_or(5432);
            (host.as_str(), port).to_socket_addrs().ok()
        })
        .is_some_and(|mut addrs| {
            addrs.any(|a| TcpStream::connect_timeout(&a, Duration::from_secs(3)).is_ok())
        });
    if answers {
        return true;
    }
    if std::env::var("STRATA_REQUIRE_PG").is_ok_and(|v| v == "1") {
        panic!("{test}: no PostgreSQL server answers at {url} and STRATA_REQUIRE_PG=1");
    }
    eprintln!(
        "\n!!! SKIPPED {test}: no PostgreSQL server answers at {url} \
         (set STRATA_TEST_DATABASE_URL, or STRATA_REQUIRE_PG=1 to fail instead) !!!\n"
    );
    false
}

fn unique_schema(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}_{}_{n}_{nanos}", std::process::id())
}

fn spec_with_schema(schema: &str) -> String {
    let url = database_url();
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}schema={schema}")
}

/// Runs `sql` on the test database; returns every row's columns as text.
fn query(sql: &str) -> Vec<Vec<String>> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (client, connection) = tokio_postgres::connect(&database_url(), tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(async move {
            let _ = connection.await;
        });
        client
            .simple_query(sql)
            .await
            .unwrap()
            .into_iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => Some(
                    (0..r.len())
                        .map(|i| r.get(i).unwrap_or_default().to_owned())
                        .collect(),
                ),
                _ => None,
            })
            .collect()
    })
}

/// Drops the schema when dropped, best-effort.
struct SchemaGuard(String);

impl Drop for SchemaGuard {
    fn drop(&mut self) {
        let _ = std::panic::catch_unwind(|| {
            query(&format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.0))
        });
    }
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
    let rows = query(&format!(
        "SELECT position, event_id, stream_id, version FROM \"{s}\".events \
         WHERE stream_id LIKE 'audit-%' AND event_type = 'UserAction' \
         ORDER BY position OFFSET 50 LIMIT 1"
    ));
    let [position, event_id, stream, version] = &rows[0][..] else {
        panic!("no audit event found: {rows:?}");
    };
    query(&format!(
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
