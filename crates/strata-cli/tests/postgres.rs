//! The `strata` binary on PostgreSQL: `demo`, `migrate` and `bench`.
//!
//! The tests read `STRATA_TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`), use schemas of their own and
//! drop them. With no server answering they print a loud SKIPPED message and
//! pass, unless `STRATA_REQUIRE_PG=1`, when they fail.

// Tests may unwrap (STYLE.md); the helpers here are test code too.
#![allow(clippy::unwrap_used)]

mod common;

use common::pg::{database_url, pg_available, query, spec_with_schema, unique_schema, SchemaGuard};

use common::run::{assert_ok, stderr, stdout, strata};

fn schema_exists(schema: &str) -> bool {
    !query(&format!(
        "SELECT nspname FROM pg_namespace WHERE nspname = '{schema}'"
    ))
    .is_empty()
}

#[test]
fn demo_on_postgres_in_its_own_schema() {
    if !pg_available("demo_on_postgres_in_its_own_schema") {
        return;
    }
    let guard = SchemaGuard(unique_schema("cli_demo"));
    let spec = spec_with_schema(&guard.0);
    let first = strata(&["demo", "--store", &spec]);
    assert_ok(&first, "first demo");
    let out = stdout(&first);
    assert!(out.contains("appended 3 events"), "{out}");
    assert!(out.contains("AccountOpened"), "{out}");
    assert!(
        out.contains("by correlation id") && out.contains(": 3 events"),
        "{out}"
    );
    assert!(out.contains("$all head position: 3"), "{out}");
    // The events are in the schema, and a second run appends after them.
    let second = strata(&["demo", "--store", &spec]);
    assert_ok(&second, "second demo");
    assert!(stdout(&second).contains("$all head position: 6"));
    let counted = query(&format!("SELECT count(*) FROM \"{}\".events", guard.0));
    assert_eq!(counted, vec!["6".to_string()]);
}

#[test]
fn migrate_twice_is_idempotent() {
    if !pg_available("migrate_twice_is_idempotent") {
        return;
    }
    let guard = SchemaGuard(unique_schema("cli_migrate"));
    let spec = spec_with_schema(&guard.0);
    let first = strata(&["migrate", "--store", &spec]);
    assert_ok(&first, "first migrate");
    let out = stdout(&first);
    assert!(out.contains("applied migration 1 (0001_core.sql)"), "{out}");
    assert!(
        out.contains("applied migration 2 (0002_events_plain.sql)"),
        "{out}"
    );
    assert!(
        out.contains("applied migration 3 (0003_stream_metadata.sql)"),
        "{out}"
    );
    assert!(
        out.contains("applied migration 4 (0004_groups.sql)"),
        "{out}"
    );
    assert!(
        out.contains("applied migration 5 (0005_event_tags.sql)"),
        "{out}"
    );
    assert!(
        out.contains("applied migration 6 (0006_stream_names.sql)"),
        "{out}"
    );
    assert!(out.contains("now at version 6"), "{out}");
    let second = strata(&["migrate", "--store", &spec]);
    assert_ok(&second, "second migrate");
    let out = stdout(&second);
    assert!(out.contains("already at version 6"), "{out}");
    assert!(out.contains("nothing to do"), "{out}");
    assert!(!out.contains("applied"), "{out}");
    let ledger = query(&format!(
        "SELECT count(*) FROM \"{}\".schema_migrations",
        guard.0
    ));
    assert_eq!(ledger, vec!["5".to_string()]);
    // The migrated schema is usable.
    assert_ok(&strata(&["demo", "--store", &spec]), "demo after migrate");
}

#[test]
fn migrate_can_create_a_partitioned_schema() {
    if !pg_available("migrate_can_create_a_partitioned_schema") {
        return;
    }
    let guard = SchemaGuard(unique_schema("cli_migrate_part"));
    let spec = spec_with_schema(&guard.0);
    let first = strata(&["migrate", "--store", &spec, "--partition-positions", "1000"]);
    assert_ok(&first, "partitioned migrate");
    let out = stdout(&first);
    assert!(
        out.contains("applied migration 2 (0002_events_partitioned.sql)"),
        "{out}"
    );
    assert!(
        out.contains("partitioned, 1000 positions per partition"),
        "{out}"
    );
    // The events table is a partitioned table with its first partitions.
    let kind = query(&format!(
        "SELECT c.relkind::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = '{}' AND c.relname = 'events'",
        guard.0
    ));
    assert_eq!(kind, vec!["p".to_string()]);
    // Asking again for another size changes nothing and says so.
    let again = strata(&["migrate", "--store", &spec, "--partition-positions", "5"]);
    assert_ok(&again, "second migrate");
    let out = stdout(&again);
    assert!(out.contains("nothing to do"), "{out}");
    assert!(
        out.contains("applies only when a schema is created"),
        "{out}"
    );
    // Zero positions per partition is refused before connecting.
    let zero = strata(&["migrate", "--store", &spec, "--partition-positions", "0"]);
    assert!(!zero.status.success());
    // The schema works: the demo appends across it.
    assert_ok(&strata(&["demo", "--store", &spec]), "demo after migrate");
}

#[test]
fn bench_append_on_postgres_reports_the_raw_insert_baseline() {
    if !pg_available("bench_append_on_postgres_reports_the_raw_insert_baseline") {
        return;
    }
    let url = database_url();
    let o = strata(&[
        "bench",
        "append",
        "--store",
        &url,
        "--events",
        "500",
        "--writers",
        "4",
        "--json",
        "--fsync-probe-ms",
        "0",
    ]);
    assert_ok(&o, "bench append");
    let lines: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect();
    assert_eq!(lines.len(), 2, "{}", stdout(&o));
    let (append, raw) = (&lines[0], &lines[1]);
    assert_eq!(append["workload"], "append");
    assert_eq!(raw["workload"], "raw-insert");
    for r in [append, raw] {
        assert_eq!(r["events"], 500, "{r}");
        assert_eq!(r["writers"], 4, "{r}");
        assert_eq!(r["errors"], 0, "{r}");
        assert_eq!(r["durability"], "n/a", "{r}");
        assert!(r["events_per_sec"].as_f64().unwrap() > 0.0, "{r}");
        assert!(r["store"].as_str().unwrap().starts_with("postgres"), "{r}");
    }
    assert_eq!(raw["op"], "insert");
    let ratio = append["ratio_to_raw_insert"].as_f64().unwrap();
    let expected =
        append["events_per_sec"].as_f64().unwrap() / raw["events_per_sec"].as_f64().unwrap();
    assert!(
        (ratio - expected).abs() <= 0.01 * expected.max(1.0),
        "{ratio} vs {expected}"
    );
    assert!(raw["ratio_to_raw_insert"].is_null());
    let err = stderr(&o);
    assert!(err.contains("ratio: append"), "{err}");
    // The fresh schema is named on stderr and gone afterwards.
    let schema = err
        .lines()
        .find_map(|l| l.split(" in schema ").nth(1))
        .map(str::trim)
        .expect("the schema is named")
        .to_owned();
    assert!(schema.starts_with("strata_bench_"), "{schema}");
    assert!(!schema_exists(&schema), "{schema} was not dropped");
}

#[test]
fn bench_workloads_run_on_postgres_and_keep_keeps_the_schema() {
    if !pg_available("bench_workloads_run_on_postgres_and_keep_keeps_the_schema") {
        return;
    }
    let url = database_url();
    for (workload, extra) in [
        ("raw-insert", &["--events", "200", "--writers", "2"][..]),
        ("read-all", &["--events", "1000", "--batch", "300"][..]),
        (
            "commands",
            &["--events", "200", "--streams", "20", "--writers", "4"][..],
        ),
    ] {
        let mut args = vec![
            "bench",
            workload,
            "--store",
            &url,
            "--json",
            "--duration",
            "0.2",
            "--fsync-probe-ms",
            "0",
        ];
        args.extend_from_slice(extra);
        let o = strata(&args);
        assert_ok(&o, workload);
        let line: serde_json::Value =
            serde_json::from_str(stdout(&o).lines().next().unwrap()).unwrap();
        assert_eq!(line["workload"], workload, "{line}");
        assert_eq!(line["errors"], 0, "{line}");
        assert!(line["events"].as_u64().unwrap() > 0, "{line}");
    }
    let o = strata(&[
        "bench",
        "append",
        "--store",
        &url,
        "--events",
        "50",
        "--keep",
        "--fsync-probe-ms",
        "0",
    ]);
    assert_ok(&o, "bench --keep");
    let err = stderr(&o);
    let schema = err
        .lines()
        .find_map(|l| l.strip_prefix("kept the benchmark's data in schema "))
        .and_then(|l| l.split_whitespace().next())
        .expect("the kept schema is named")
        .to_owned();
    let _guard = SchemaGuard(schema.clone());
    let n = query(&format!("SELECT count(*) FROM \"{schema}\".events"));
    assert_eq!(n, vec!["50".to_string()]);
}

#[test]
fn erase_and_scavenge_on_postgres() {
    if !pg_available("erase_and_scavenge_on_postgres") {
        return;
    }
    let guard = SchemaGuard(unique_schema("cli_erase"));
    let spec = spec_with_schema(&guard.0);
    assert_ok(&strata(&["demo", "--store", &spec]), "demo");
    let streams = query(&format!(
        "SELECT DISTINCT stream_id FROM \"{}\".events ORDER BY stream_id",
        guard.0
    ));
    let stream = streams.first().expect("the demo wrote a stream").clone();
    let erased = strata(&["erase", &stream, "--yes", "--store", &spec]);
    assert_ok(&erased, "erase");
    let rows = query(&format!(
        "SELECT count(*) FROM \"{}\".events WHERE stream_id = '{stream}'",
        guard.0
    ));
    assert_eq!(rows, vec!["0".to_string()], "the rows go at once");
    // A soft-deleted stream's rows go at the next scavenge.
    let other = strata(&["demo", "--store", &spec]);
    assert_ok(&other, "second demo");
    let scavenged = strata(&["scavenge", "--store", &spec]);
    assert_ok(&scavenged, "scavenge");
    let out = stdout(&scavenged);
    assert!(
        out.starts_with("scavenged: ") && out.contains("events removed"),
        "{out}"
    );
    assert!(!stderr(&scavenged).contains("only the log store"));
}
