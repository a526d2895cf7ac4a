//! `strata bench http-append` (a child `strata serve`, writers over HTTP, an
//! SSE subscriber) and `strata bench append --subscriber`: the JSON result
//! line has the rates, latencies and the subscriber's delivery figures, and
//! the subscriber saw every event.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Output;

use common::run::strata;
use common::serve::ServeChild;
use serde_json::Value;

/// A `strata serve` over `memory:` that knows one API key, `secret`, with
/// the `write` role on every stream.
fn server_with_key(secret: &str) -> ServeChild {
    let sha = strata_server::sha256_hex(secret);
    let keys = format!(
        r#"key = [{{name = "bench", sha256 = "{sha}", role = "write", prefixes = ["*"]}}]"#
    );
    ServeChild::start("memory:", "127.0.0.1:0", &[("STRATA_API_KEYS", &keys)])
}

/// The one JSON result line of `workload` on stdout.
fn result_line(o: &Output, workload: &str) -> Value {
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        o.status.success(),
        "exit {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        o.status
    );
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("`{l}` is not JSON: {e}")))
        .filter(|v: &Value| v["workload"] == workload)
        .collect();
    assert_eq!(lines.len(), 1, "one {workload} line in:\n{stdout}");
    lines.into_iter().next().unwrap()
}

fn assert_rates_and_latency(v: &Value, events: u64, ops: u64) {
    assert_eq!(v["events"], events, "{v}");
    assert_eq!(v["ops"], ops, "{v}");
    assert_eq!(v["samples"], ops, "{v}");
    assert_eq!(v["errors"], 0, "{v}");
    assert!(v["events_per_sec"].as_f64().unwrap() > 0.0, "{v}");
    let p50 = v["p50_us"].as_f64().unwrap();
    let p99 = v["p99_us"].as_f64().unwrap();
    assert!(p50 > 0.0 && p99 >= p50, "{v}");
}

fn assert_subscriber_saw(v: &Value, events: u64) {
    assert_eq!(v["sub_events"], events, "{v}");
    let p50 = v["sub_p50_us"].as_f64().unwrap();
    let p99 = v["sub_p99_us"].as_f64().unwrap();
    let max = v["sub_max_us"].as_f64().unwrap();
    assert!(p50 > 0.0 && p99 >= p50 && max >= p99, "{v}");
    assert!(v["sub_reconnects"].as_u64().is_some(), "{v}");
    // Delivery after the append's acknowledgement is at most from its send.
    let after_ack = v["sub_after_ack_p99_us"].as_f64().unwrap();
    assert!(after_ack >= 0.0 && after_ack <= max, "{v}");
}

#[test]
fn http_append_through_a_child_server_with_a_subscriber() {
    let o = strata(&[
        "bench",
        "http-append",
        "--writers",
        "2",
        "--batch",
        "5",
        "--events",
        "200",
        "--json",
        "--fsync-probe-ms",
        "0",
    ]);
    let v = result_line(&o, "http-append");
    assert_rates_and_latency(&v, 200, 40);
    assert_eq!(v["writers"], 2, "{v}");
    assert_eq!(v["batch"], 5, "{v}");
    assert_eq!(v["store"], "log:", "{v}");
    assert_eq!(v["durability"], "always", "{v}");
    assert_subscriber_saw(&v, 200);

    // The child server ran on a fresh directory that is gone afterwards.
    let stderr = String::from_utf8_lossy(&o.stderr);
    let dir = stderr
        .lines()
        .find_map(|l| l.strip_prefix("benchmarking the log store in "))
        .and_then(|rest| rest.split(" through").next())
        .unwrap_or_else(|| panic!("no store directory in:\n{stderr}"));
    assert!(!std::path::Path::new(dir).exists(), "{dir} must be removed");
}

#[test]
fn http_append_without_subscriber_on_memory() {
    let o = strata(&[
        "bench",
        "http-append",
        "--store",
        "memory:",
        "--writers",
        "3",
        "--events",
        "30",
        "--no-subscriber",
        "--json",
        "--fsync-probe-ms",
        "0",
    ]);
    let v = result_line(&o, "http-append");
    assert_rates_and_latency(&v, 30, 30);
    assert_eq!(v["store"], "memory:", "{v}");
    assert!(v["sub_events"].is_null(), "{v}");
}

#[test]
fn http_append_pipelined_with_a_subscriber_and_odd_batches() {
    // 203 events in batches of 10 (the last has 3), up to 4 requests in
    // flight on each of 3 connections: every append answered once, and the
    // subscriber saw every event in order.
    let o = strata(&[
        "bench",
        "http-append",
        "--writers",
        "3",
        "--batch",
        "10",
        "--events",
        "203",
        "--pipeline",
        "4",
        "--json",
        "--fsync-probe-ms",
        "0",
    ]);
    let v = result_line(&o, "http-append");
    assert_rates_and_latency(&v, 203, 21);
    assert_eq!(v["variant"], "pipelined", "{v}");
    assert_eq!(v["pipeline"], 4, "{v}");
    assert_subscriber_saw(&v, 203);
}

#[test]
fn pipeline_depth_is_checked() {
    for (args, expected) in [
        (
            &["http-append", "--pipeline", "0"][..],
            "--pipeline must be between 1 and 64",
        ),
        (
            &["http-append", "--pipeline", "65"][..],
            "--pipeline must be between 1 and 64",
        ),
        (
            &["append", "--store", "memory:", "--pipeline", "2"][..],
            "--pipeline is an option of http-append",
        ),
    ] {
        assert_refused(args, expected);
    }
}

/// `strata bench ARGS` (no fsync probe) fails, saying `expected`.
fn assert_refused(args: &[&str], expected: &str) {
    let mut all = vec!["bench"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--fsync-probe-ms", "0"]);
    let o = strata(&all);
    assert!(!o.status.success(), "{args:?}");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains(expected), "{args:?}: {stderr}");
}

#[test]
fn append_on_memory_with_a_subscriber() {
    let o = strata(&[
        "bench",
        "append",
        "--store",
        "memory:",
        "--writers",
        "2",
        "--batch",
        "5",
        "--events",
        "200",
        "--subscriber",
        "--json",
        "--fsync-probe-ms",
        "0",
    ]);
    let v = result_line(&o, "append");
    assert_rates_and_latency(&v, 200, 40);
    assert_subscriber_saw(&v, 200);
}

#[test]
fn append_on_the_log_store_with_a_subscriber_and_odd_batches() {
    // 203 events in batches of 10: the last append has 3.
    let o = strata(&[
        "bench",
        "append",
        "--writers",
        "4",
        "--batch",
        "10",
        "--events",
        "203",
        "--subscriber",
        "--json",
        "--fsync-probe-ms",
        "0",
    ]);
    let v = result_line(&o, "append");
    assert_rates_and_latency(&v, 203, 21);
    assert_subscriber_saw(&v, 203);
}

#[test]
fn http_append_with_a_batched_subscriber() {
    // The subscriber asks for several events to a message: it still sees
    // every event once, in order, with its delivery time.
    let o = strata(&[
        "bench",
        "http-append",
        "--store",
        "memory:",
        "--writers",
        "3",
        "--batch",
        "10",
        "--events",
        "203",
        "--sse-batch",
        "--json",
        "--fsync-probe-ms",
        "0",
    ]);
    let v = result_line(&o, "http-append");
    assert_rates_and_latency(&v, 203, 21);
    assert_subscriber_saw(&v, 203);
}

#[test]
fn subscriber_options_belong_to_their_workloads() {
    for (workload, option, expected) in [
        (
            "read-all",
            "--subscriber",
            "--subscriber is an option of append",
        ),
        (
            "append",
            "--no-subscriber",
            "--no-subscriber is an option of http-append",
        ),
        (
            "append",
            "--sse-batch",
            "--sse-batch is an option of http-append",
        ),
    ] {
        assert_refused(&[workload, "--store", "memory:", option], expected);
    }
}

#[test]
fn http_groups_through_a_child_server_acks_every_event_and_removes_its_store() {
    let o = strata(&[
        "bench",
        "http-groups",
        "--writers",
        "2",
        "--batch",
        "50",
        "--events",
        "300",
        "--streams",
        "10",
        "--json",
    ]);
    let v = result_line(&o, "http-groups");
    assert_eq!(v["events"], 300, "{v}");
    assert_eq!(v["errors"], 0, "{v}");
    assert_eq!(v["writers"], 2, "{v}");
    assert_eq!(v["store"], "log:", "{v}");
    assert!(v["events_per_sec"].as_f64().unwrap() > 0.0, "{v}");
    assert!(v["ops"].as_u64().unwrap() >= 300 / 50, "{v}");
    let stderr = String::from_utf8_lossy(&o.stderr);
    let dir = stderr
        .lines()
        .find_map(|l| l.strip_prefix("benchmarking the log store in "))
        .and_then(|rest| rest.split(" through").next())
        .unwrap_or_else(|| panic!("no store directory in:\n{stderr}"));
    assert!(!std::path::Path::new(dir).exists(), "{dir} must be removed");
}

#[test]
fn keep_and_in_place_are_refused_with_server_by_both_http_workloads() {
    for workload in ["http-append", "http-groups"] {
        for flag in ["--keep", "--in-place"] {
            assert_refused(
                &[workload, "--server", "http://127.0.0.1:9", flag],
                "--in-place and --keep are about the store the bench creates",
            );
        }
    }
}

/// The `dcb` result lines (one writer, then `writers`) of a run, checked:
/// decisions timed, some committed, none failing on conflicts; and the
/// conflict note of each round on stderr.
fn assert_dcb_rounds(o: &Output, writers: u64) -> Vec<Value> {
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        o.status.success(),
        "exit {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        o.status
    );
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("`{l}` is not JSON: {e}")))
        .collect();
    assert_eq!(lines.len(), 2, "two dcb lines in:\n{stdout}");
    for (v, w) in lines.iter().zip([1, writers]) {
        assert_eq!(v["workload"], "dcb", "{v}");
        assert_eq!(v["op"], "decision", "{v}");
        assert_eq!(v["writers"], w, "{v}");
        assert_eq!(v["errors"], 0, "{v}");
        let ops = v["ops"].as_u64().unwrap();
        assert!(ops > 0 && v["samples"] == ops, "{v}");
        assert!(v["events"].as_u64().unwrap() > 0, "{v}");
        assert!(v["ops_per_sec"].as_f64().unwrap() > 0.0, "{v}");
        let p50 = v["p50_us"].as_f64().unwrap();
        let p99 = v["p99_us"].as_f64().unwrap();
        assert!(p50 > 0.0 && p99 >= p50, "{v}");
        let note = format!("dcb with {w} writer(s): {ops} decisions (");
        let line = stderr
            .lines()
            .find(|l| l.starts_with(&note))
            .unwrap_or_else(|| panic!("no `{note}` in:\n{stderr}"));
        assert!(
            line.contains(" conflicts retried (") && line.ends_with("% of decisions)"),
            "{line}"
        );
    }
    lines
}

#[test]
fn dcb_through_a_child_server_on_the_log_store() {
    let o = strata(&[
        "bench",
        "dcb",
        "--server",
        "--writers",
        "4",
        "--streams",
        "50",
        "--duration",
        "0.3",
        "--json",
        "--fsync-probe-ms",
        "0",
    ]);
    let lines = assert_dcb_rounds(&o, 4);
    assert_eq!(lines[1]["store"], "log:", "{}", lines[1]);
    assert_eq!(lines[1]["durability"], "always", "{}", lines[1]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    let dir = stderr
        .lines()
        .find_map(|l| l.strip_prefix("benchmarking the log store in "))
        .and_then(|rest| rest.split(" through").next())
        .unwrap_or_else(|| panic!("no store directory in:\n{stderr}"));
    assert!(!std::path::Path::new(dir).exists(), "{dir} must be removed");
}

#[test]
fn dcb_against_a_server_url_with_a_key() {
    let server = server_with_key("dcb-secret");
    let url = server.url.clone();
    let run = |key: &str| {
        strata(&[
            "bench",
            "dcb",
            "--server",
            &url,
            "--key",
            key,
            "--writers",
            "3",
            "--streams",
            "20",
            "--duration",
            "0.2",
            "--json",
            "--fsync-probe-ms",
            "0",
        ])
    };
    let o = with_right_then_wrong_key(server, "dcb-secret", run);
    let lines = assert_dcb_rounds(&o, 3);
    assert_eq!(lines[0]["store"], url.as_str(), "{}", lines[0]);
}

#[test]
fn dcb_takes_a_key_only_with_a_server() {
    let o = strata(&[
        "bench",
        "dcb",
        "--store",
        "memory:",
        "--key",
        "k",
        "--fsync-probe-ms",
        "0",
    ]);
    assert!(!o.status.success());
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("--key is an option of dcb with --server"),
        "{stderr}"
    );
}

#[test]
fn http_append_pipelined_against_a_server_url_with_a_key() {
    let server = server_with_key("pipe-secret");
    let url = format!("{}/", server.url);
    // Batches of 500 events (~130 KB a request), 8 in flight: a refused
    // pipeline is far more than the server reads before it answers 401.
    let run = |key: &str| {
        strata(&[
            "bench",
            "http-append",
            "--server",
            &url,
            "--key",
            key,
            "--writers",
            "2",
            "--batch",
            "500",
            "--events",
            "20000",
            "--pipeline",
            "8",
            "--json",
            "--fsync-probe-ms",
            "0",
        ])
    };
    let o = with_right_then_wrong_key(server, "pipe-secret", run);
    let v = result_line(&o, "http-append");
    assert_rates_and_latency(&v, 20000, 40);
    assert_eq!(v["pipeline"], 8, "{v}");
    assert_subscriber_saw(&v, 20000);
}

/// Runs `run` with `key`, then with a wrong key, against `server`, then
/// stops it; checks that the wrong key was refused with a 401 and returns
/// the first run's output.
fn with_right_then_wrong_key(
    server: ServeChild,
    key: &str,
    run: impl Fn(&str) -> Output,
) -> Output {
    let o = run(key);
    let refused = run("wrong");
    drop(server);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("401"), "{stderr}");
    o
}
