//! The data commands (`append`, `read`, `all`, `tail`, `stats`, `export`,
//! `import`) run as a user runs them: directly on log stores, and through a
//! server started in this process.

// Tests may unwrap (STYLE.md); the helpers here are test code too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use strata_core::{EventStore, ExpectedVersion, MemoryStore, NewEvent, StreamId};

/// Longest a test waits for a child `strata` (a `tail`) to finish by itself.
const CHILD_DEADLINE: Duration = Duration::from_secs(30);

fn strata(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(args)
        .env_remove("STRATA_API_KEY")
        .output()
        .expect("run strata")
}

fn strata_stdin(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run strata");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn ok(o: Output, what: &str) -> Output {
    assert!(
        o.status.success(),
        "{what} failed ({:?})\nstdout:\n{}\nstderr:\n{}",
        o.status,
        stdout(&o),
        stderr(&o)
    );
    o
}

/// Asserts a failure with exactly one line on stderr containing `needle`.
fn assert_one_line_error(o: &Output, needle: &str) {
    assert!(
        !o.status.success(),
        "expected failure, got success: {}",
        stdout(o)
    );
    let err = stderr(o);
    assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err:?}");
    assert!(err.starts_with("error: "), "{err:?}");
    assert!(err.contains(needle), "{err:?} lacks {needle:?}");
}

/// The JSON lines of a command's stdout.
fn json_lines(o: &Output) -> Vec<Value> {
    stdout(o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn log_spec(dir: &Path) -> String {
    format!("log:{}", dir.display())
}

/// `["--store", spec]` or `["--server", url]`.
fn at(target: &[String]) -> Vec<&str> {
    target.iter().map(String::as_str).collect()
}

fn run(target: &[String], args: &[&str]) -> Output {
    let mut all: Vec<&str> = args.to_vec();
    all.extend(at(target));
    strata(&all)
}

fn run_stdin(target: &[String], args: &[&str], stdin: &str) -> Output {
    let mut all: Vec<&str> = args.to_vec();
    all.extend(at(target));
    strata_stdin(&all, stdin)
}

/// A server over `store` on 127.0.0.1:0, running until the runtime drops.
struct TestServer {
    url: String,
    store: Arc<dyn EventStore>,
    /// Send to shut the server down gracefully.
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    _runtime: tokio::runtime::Runtime,
}

fn server() -> TestServer {
    server_with(strata_server::ServerConfig::default(), None)
}

/// A server with API keys and TLS as given.
fn server_with(
    config: strata_server::ServerConfig,
    tls: Option<strata_server::TlsAcceptor>,
) -> TestServer {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let store: Arc<dyn EventStore> = Arc::new(MemoryStore::new());
    let router = strata_server::router(store.clone(), config.clone());
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let scheme = if tls.is_some() { "https" } else { "http" };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    runtime.spawn(async move {
        strata_server::serve_with(listener, router, &config, tls, async {
            let _ = stopped.await;
        })
        .await
    });
    TestServer {
        url: format!("{scheme}://{addr}"),
        store,
        stop: Some(stop),
        _runtime: runtime,
    }
}

fn server_target(s: &TestServer) -> Vec<String> {
    vec!["--server".into(), s.url.clone()]
}

fn store_target(dir: &Path) -> Vec<String> {
    vec!["--store".into(), log_spec(dir)]
}

/// Appends a small mixed history: two interleaved streams, a binary event,
/// metadata, and a stdin batch.
fn seed(target: &[String]) {
    ok(
        run(
            target,
            &[
                "append",
                "account-1",
                "--type",
                "Opened",
                "--data",
                r#"{"owner": "ada",  "limit": 1.50}"#,
                "--metadata",
                r#"{"correlation_id":"c-1","tenant":"t-9"}"#,
                "--expected-version",
                "no_stream",
            ],
        ),
        "append 1",
    );
    ok(
        run(
            target,
            &[
                "append",
                "account-2",
                "--type",
                "Opened",
                "--data",
                r#"{"owner":"bob"}"#,
            ],
        ),
        "append 2",
    );
    ok(
        run_stdin(
            target,
            &["append", "account-1", "--stdin", "--expected-version", "1"],
            concat!(
                "{\"type\":\"Deposited\",\"data\":{\"amount\":\"10.00\"}}\n",
                "{\"type\":\"Blob\",\"content_type\":\"binary\",\"data\":\"AP8K\",\"metadata\":{\"user_id\":\"ada\"}}\n",
            ),
        ),
        "append stdin",
    );
    ok(
        run(
            target,
            &[
                "append",
                "account-2",
                "--type",
                "Deposited",
                "--data",
                "{\"amount\":\"5\"}",
            ],
        ),
        "append 4",
    );
}

/// What an exported event keeps across an import: everything but position
/// and time.
fn portable(e: &Value) -> Value {
    let mut e = e.clone();
    let o = e.as_object_mut().unwrap();
    o.remove("position");
    o.remove("recorded_at");
    e
}

/// The events of `$all`, as JSON.
fn all_events(target: &[String]) -> Vec<Value> {
    json_lines(&ok(run(target, &["all"]), "all"))
}

fn wait_child(mut child: Child) -> Output {
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if start.elapsed() > CHILD_DEADLINE {
            child.kill().unwrap();
            let o = child.wait_with_output().unwrap();
            panic!(
                "child did not finish within {CHILD_DEADLINE:?}; stdout: {} stderr: {}",
                stdout(&o),
                stderr(&o)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn check_read_commands(target: &[String]) {
    seed(target);

    let read = json_lines(&ok(run(target, &["read", "account-1"]), "read"));
    assert_eq!(read.len(), 3);
    let versions: Vec<u64> = read
        .iter()
        .map(|e| e["version"].as_u64().unwrap())
        .collect();
    assert_eq!(versions, [1, 2, 3]);
    assert_eq!(read[0]["type"], "Opened");
    assert_eq!(read[0]["metadata"]["correlation_id"], "c-1");
    assert_eq!(read[0]["metadata"]["tenant"], "t-9");
    // The payload is kept byte for byte.
    assert!(stdout(&run(target, &["read", "account-1", "--limit", "1"]))
        .contains(r#""data":{"owner": "ada",  "limit": 1.50}"#));
    assert_eq!(read[2]["content_type"], "binary");
    assert_eq!(read[2]["data"], "AP8K");
    assert_eq!(read[2]["metadata"]["user_id"], "ada");

    let back = json_lines(&ok(
        run(target, &["read", "account-1", "--backward", "--limit", "2"]),
        "read backward",
    ));
    let versions: Vec<u64> = back
        .iter()
        .map(|e| e["version"].as_u64().unwrap())
        .collect();
    assert_eq!(versions, [3, 2]);
    let from = json_lines(&ok(
        run(target, &["read", "account-1", "--from", "2"]),
        "read --from",
    ));
    assert_eq!(from.len(), 2);

    let all = all_events(target);
    assert_eq!(all.len(), 5);
    let positions: Vec<u64> = all
        .iter()
        .map(|e| e["position"].as_u64().unwrap())
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
    let streams: Vec<&str> = all.iter().map(|e| e["stream"].as_str().unwrap()).collect();
    assert_eq!(
        streams,
        [
            "account-1",
            "account-2",
            "account-1",
            "account-1",
            "account-2"
        ]
    );

    let deposits = json_lines(&ok(
        run(target, &["all", "--types", "Deposited"]),
        "all --types",
    ));
    assert_eq!(deposits.len(), 2);
    let after = positions[2].to_string();
    let tail_part = json_lines(&ok(
        run(target, &["all", "--after", &after, "--limit", "1"]),
        "all --after",
    ));
    assert_eq!(tail_part.len(), 1);
    assert_eq!(tail_part[0]["position"].as_u64(), Some(positions[3]));
    let by_corr = json_lines(&ok(
        run(target, &["all", "--correlation-id", "c-1"]),
        "all --correlation-id",
    ));
    assert_eq!(by_corr.len(), 1);
    let by_prefix = json_lines(&ok(
        run(target, &["all", "--prefix", "account-2"]),
        "all --prefix",
    ));
    assert_eq!(by_prefix.len(), 2);

    // tail over what is recorded, ending by itself.
    let tailed = json_lines(&ok(run(target, &["tail", "--limit", "4"]), "tail"));
    assert_eq!(tailed.len(), 4);
    assert_eq!(portable(&tailed[3]), portable(&all[3]));
    let tailed = json_lines(&ok(
        run(target, &["tail", "account-2", "--limit", "2"]),
        "tail stream",
    ));
    assert_eq!(tailed.len(), 2);
    assert!(tailed.iter().all(|e| e["stream"] == "account-2"));

    // stats
    let stats: Value = serde_json::from_str(&stdout(&ok(
        run(target, &["stats", "--json", "--scan"]),
        "stats",
    )))
    .unwrap();
    assert_eq!(stats["head_position"].as_u64(), positions.last().copied());
    assert_eq!(stats["events"], 5);
    assert_eq!(stats["streams"], 2);

    // errors: one line, non-zero exit
    let o = run(
        target,
        &[
            "append",
            "account-1",
            "--type",
            "X",
            "--data",
            "{}",
            "--expected-version",
            "no_stream",
        ],
    );
    assert_one_line_error(&o, "account-1");
    let o = run(target, &["read", "nobody-7"]);
    assert_one_line_error(&o, "nobody-7");
    let o = run(
        target,
        &["append", "account-1", "--type", "X", "--data", "{not json"],
    );
    assert_one_line_error(&o, "JSON");
    let o = run(target, &["append", "$all", "--type", "X", "--data", "{}"]);
    assert!(!o.status.success(), "a system stream must be refused");
}

#[test]
fn read_commands_on_a_log_store() {
    let dir = tempfile::tempdir().unwrap();
    let target = store_target(dir.path());
    check_read_commands(&target);
    // stats of the log store know counts and disk usage without a scan.
    let stats: Value =
        serde_json::from_str(&stdout(&ok(run(&target, &["stats", "--json"]), "stats"))).unwrap();
    assert_eq!(stats["events"], 5);
    assert_eq!(stats["streams"], 2);
    assert!(stats["segments"].as_u64().unwrap() >= 1, "{stats}");
    assert!(stats["segment_bytes"].as_u64().unwrap() > 0, "{stats}");
    assert!(
        stats["data_dir_bytes"].as_u64().unwrap()
            >= stats["segment_bytes_on_disk"].as_u64().unwrap(),
        "{stats}"
    );
    let human = stdout(&ok(run(&target, &["stats"]), "stats"));
    assert!(human.contains("head position:"), "{human}");
    // The store closed cleanly: it verifies.
    ok(
        strata(&["verify", "--store", &log_spec(dir.path())]),
        "verify",
    );
}

#[test]
fn read_commands_through_a_server() {
    let s = server();
    check_read_commands(&server_target(&s));
    // Without --scan a server only knows its head.
    let stats: Value = serde_json::from_str(&stdout(&ok(
        run(&server_target(&s), &["stats", "--json"]),
        "stats",
    )))
    .unwrap();
    assert!(stats.get("events").is_none(), "{stats}");
    assert!(stats["head_position"].as_u64().unwrap() > 0);
}

fn check_export_import(source: &[String], target: &[String], work: &Path) {
    seed(source);
    let file = work.join("export.jsonl");
    let file_s = file.display().to_string();
    let o = ok(run(source, &["export", "--out", &file_s]), "export");
    assert!(stderr(&o).contains("exported 5 event(s)"), "{}", stderr(&o));
    let exported: Vec<Value> = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(exported.len(), 5);
    assert_eq!(
        exported.iter().map(portable).collect::<Vec<_>>(),
        all_events(source).iter().map(portable).collect::<Vec<_>>()
    );

    let o = ok(run(target, &["import", "--in", &file_s]), "import");
    assert!(
        stderr(&o).contains("imported 5 event(s)")
            && stderr(&o).contains("5 written, 0 already present"),
        "{}",
        stderr(&o)
    );
    let imported = all_events(target);
    assert_eq!(
        imported.iter().map(portable).collect::<Vec<_>>(),
        exported.iter().map(portable).collect::<Vec<_>>(),
        "ids, streams, versions, types, data and metadata survive"
    );

    // Re-running the same import writes nothing.
    let o = ok(run(target, &["import", "--in", &file_s]), "re-import");
    assert!(
        stderr(&o).contains("0 written, 5 already present"),
        "{}",
        stderr(&o)
    );
    assert_eq!(all_events(target).len(), 5);

    // A longer export (the source grew) imports only the new events, also
    // when batches overlap what is there; from stdin this time.
    ok(
        run(
            source,
            &["append", "account-1", "--type", "Closed", "--data", "{}"],
        ),
        "append more",
    );
    ok(
        run(
            source,
            &["append", "account-3", "--type", "Opened", "--data", "{}"],
        ),
        "append more",
    );
    let full = stdout(&ok(run(source, &["export"]), "export to stdout"));
    assert_eq!(full.lines().count(), 7);
    let o = ok(run_stdin(target, &["import"], &full), "import longer");
    assert!(
        stderr(&o).contains("2 written, 5 already present"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        all_events(target).iter().map(portable).collect::<Vec<_>>(),
        all_events(source).iter().map(portable).collect::<Vec<_>>()
    );

    // An incremental export continues where the first one ended.
    let head = exported.last().unwrap()["position"]
        .as_u64()
        .unwrap()
        .to_string();
    let inc = stdout(&ok(
        run(source, &["export", "--after", &head]),
        "export --after",
    ));
    assert_eq!(inc.lines().count(), 2);
    let o = ok(
        run_stdin(target, &["import"], &inc),
        "import incremental again",
    );
    assert!(
        stderr(&o).contains("0 written, 2 already present"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn export_then_import_between_log_stores_is_exact_and_idempotent() {
    let work = tempfile::tempdir().unwrap();
    let a = work.path().join("a");
    let b = work.path().join("b");
    check_export_import(&store_target(&a), &store_target(&b), work.path());
    ok(
        strata(&["verify", "--store", &log_spec(&b)]),
        "verify target",
    );
}

#[test]
fn export_then_import_through_servers() {
    let work = tempfile::tempdir().unwrap();
    let a = server();
    let b = server();
    check_export_import(&server_target(&a), &server_target(&b), work.path());
}

#[test]
fn import_from_a_server_into_a_log_store() {
    let work = tempfile::tempdir().unwrap();
    let a = server();
    check_export_import(
        &server_target(&a),
        &store_target(&work.path().join("b")),
        work.path(),
    );
}

#[test]
fn import_refuses_a_divergent_stream_and_a_missing_base() {
    let work = tempfile::tempdir().unwrap();
    let source = store_target(&work.path().join("a"));
    let target = store_target(&work.path().join("b"));
    seed(&source);
    let file = work.path().join("export.jsonl");
    let file_s = file.display().to_string();
    ok(run(&source, &["export", "--out", &file_s]), "export");

    // The target already has another event at account-2's version 1.
    ok(
        run(
            &target,
            &["append", "account-2", "--type", "Other", "--data", "{}"],
        ),
        "append",
    );
    let o = run(&target, &["import", "--in", &file_s]);
    assert_one_line_error(&o, "diverges");
    assert!(stderr(&o).contains("account-2"), "{}", stderr(&o));

    // An incremental export into a store without its base.
    let fresh = store_target(&work.path().join("c"));
    let second = all_events(&source)[1]["position"]
        .as_u64()
        .unwrap()
        .to_string();
    let inc = stdout(&ok(
        run(&source, &["export", "--after", &second]),
        "export --after",
    ));
    assert_eq!(inc.lines().count(), 3);
    let o = run_stdin(&fresh, &["import"], &inc);
    assert_one_line_error(&o, "import the earlier events first");

    // A line that is not an event names its place.
    let o = run_stdin(&fresh, &["import"], "{\"id\":\"nope\"}\n");
    assert_one_line_error(&o, "import event 1");
}

#[test]
fn tail_follows_live_events_through_a_server() {
    let s = server();
    let stream = StreamId::new("live-1").unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let append = |n: usize| {
        let events = (0..n)
            .map(|i| NewEvent::json("Tick", &serde_json::json!({ "i": i })).unwrap())
            .collect();
        rt.block_on(s.store.append(&stream, ExpectedVersion::Any, events))
            .unwrap()
    };
    let before = append(2);
    let after = before.last_position.0.to_string();
    let child = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args([
            "tail", "--server", &s.url, "--after", &after, "--limit", "3",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Appended after the position the tail starts from, whether or not it
    // has connected yet: all of them must arrive, and nothing before.
    append(1);
    std::thread::sleep(Duration::from_millis(200));
    append(3);
    let o = wait_child(child);
    let o = ok(o, "tail");
    let lines = json_lines(&o);
    assert_eq!(lines.len(), 3);
    let versions: Vec<u64> = lines
        .iter()
        .map(|e| e["version"].as_u64().unwrap())
        .collect();
    assert_eq!(versions, [3, 4, 5]);
}

#[test]
fn tail_of_a_stream_through_a_server_from_the_end() {
    let s = server();
    let stream = StreamId::new("live-2").unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let append = |ty: &str| {
        rt.block_on(s.store.append(
            &stream,
            ExpectedVersion::Any,
            vec![NewEvent::json(ty, &serde_json::json!({})).unwrap()],
        ))
        .unwrap()
    };
    append("Old");
    let mut child = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args([
            "tail",
            "live-2",
            "--server",
            &s.url,
            "--from-end",
            "--limit",
            "1",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Keep appending until the tail (which pins "the end" when it starts)
    // sees one: it must never print the old event.
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let reader = std::thread::spawn(move || {
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        line
    });
    let start = Instant::now();
    while !reader.is_finished() {
        assert!(start.elapsed() < CHILD_DEADLINE, "tail printed nothing");
        append("New");
        std::thread::sleep(Duration::from_millis(100));
    }
    let line = reader.join().unwrap();
    let e: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(e["type"], "New");
    assert_eq!(e["stream"], "live-2");
    let o = wait_child(child);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn bad_servers_and_arguments_fail_with_one_line() {
    // A missing argument is named on the one line (clap lists it below).
    let o = strata(&["append", "x-1", "--store", "memory:"]);
    assert_one_line_error(&o, "--type");
    assert_eq!(o.status.code(), Some(2));
    let o = strata(&["read", "x-1", "--server", "ftp://localhost"]);
    assert_one_line_error(&o, "http or https");
    let o = strata(&["read", "x-1", "--server", "not a url"]);
    assert_one_line_error(&o, "invalid server URL");
    // Nothing listens on port 1.
    let o = strata(&["all", "--server", "http://127.0.0.1:1"]);
    assert_one_line_error(&o, "127.0.0.1:1");
    let o = strata(&[
        "stats",
        "--store",
        "memory:",
        "--server",
        "http://127.0.0.1:1",
    ]);
    assert_one_line_error(&o, "--store");
    let o = strata(&[
        "read",
        "x-1",
        "--server",
        "https://127.0.0.1:1",
        "--ca-cert",
        "/nonexistent.pem",
    ]);
    assert_one_line_error(&o, "/nonexistent.pem");
}

#[test]
fn the_api_key_is_sent_as_a_bearer_token() {
    // A one-shot listener that records the request head and answers 401.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut head = String::new();
        let mut r = BufReader::new(conn.try_clone().unwrap());
        loop {
            let mut line = String::new();
            if r.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
                break;
            }
            head.push_str(&line);
        }
        let body = r#"{"error":"unauthorized","message":"unknown API key"}"#;
        write!(
            conn,
            "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        head
    });
    let o = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["all", "--server", &format!("http://{addr}")])
        .env("STRATA_API_KEY", "k-123")
        .output()
        .unwrap();
    assert_one_line_error(&o, "unknown API key");
    assert!(stderr(&o).contains("401"), "{}", stderr(&o));
    let head = seen.join().unwrap();
    assert!(
        head.lines()
            .any(|l| l.eq_ignore_ascii_case("authorization: Bearer k-123")),
        "{head}"
    );
}

fn server_test_data(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../strata-server/tests/data")
        .join(name)
        .display()
        .to_string()
}

#[test]
fn https_with_api_keys_and_a_ca_certificate() {
    use strata_server::{sha256_hex, ApiKey, ApiKeys, Role};
    let cert = server_test_data("localhost.cert.pem");
    let key_pem = server_test_data("localhost.key.pem");
    let keys = ApiKeys::new(vec![
        ApiKey::new(
            "writer",
            &sha256_hex("w-secret"),
            Role::Write,
            vec!["*".into()],
        )
        .unwrap(),
        ApiKey::new(
            "reader",
            &sha256_hex("r-secret"),
            Role::Read,
            vec!["*".into()],
        )
        .unwrap(),
    ])
    .unwrap();
    let config = strata_server::ServerConfig {
        api_keys: keys,
        ..strata_server::ServerConfig::default()
    };
    let tls = strata_server::tls_acceptor(Path::new(&cert), Path::new(&key_pem)).unwrap();
    let s = server_with(config, Some(tls));
    let with = |key: &str| -> Vec<String> {
        vec![
            "--server".into(),
            s.url.clone(),
            "--key".into(),
            key.into(),
            "--ca-cert".into(),
            cert.clone(),
        ]
    };
    let writer = with("w-secret");
    let reader = with("r-secret");

    ok(
        run(
            &writer,
            &[
                "append",
                "order-1",
                "--type",
                "Placed",
                "--data",
                "{\"n\":1}",
            ],
        ),
        "append over https",
    );
    let read = json_lines(&ok(run(&reader, &["read", "order-1"]), "read over https"));
    assert_eq!(read.len(), 1);
    assert_eq!(read[0]["type"], "Placed");
    let tailed = json_lines(&ok(
        run(&reader, &["tail", "--limit", "1"]),
        "tail over https",
    ));
    assert_eq!(tailed[0]["id"], read[0]["id"]);
    ok(run(&reader, &["stats"]), "stats over https");

    // A read key may not append; a wrong key is refused; both in one line.
    let o = run(
        &reader,
        &["append", "order-1", "--type", "X", "--data", "{}"],
    );
    assert_one_line_error(&o, "403");
    let o = run(&with("nope"), &["read", "order-1"]);
    assert_one_line_error(&o, "401");
    // Without the CA certificate the server is not trusted.
    let o = strata(&["read", "order-1", "--server", &s.url, "--key", "r-secret"]);
    assert_one_line_error(&o, "certificate");
}

#[test]
fn ctrl_c_ends_a_tail_on_a_log_store_and_closes_it() {
    let dir = tempfile::tempdir().unwrap();
    let target = store_target(dir.path());
    ok(
        run(&target, &["append", "t-1", "--type", "A", "--data", "{}"]),
        "append",
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["tail", "--store", &log_spec(dir.path())])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Once the recorded event is printed, the tail is following live.
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let e: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(e["stream"], "t-1");
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let o = wait_child(child);
    assert!(o.status.success(), "tail after Ctrl-C: {}", stderr(&o));
    // It closed the store: another process can open it, and it verifies.
    ok(
        strata(&["verify", "--store", &log_spec(dir.path())]),
        "verify",
    );
    let all = json_lines(&ok(run(&target, &["all"]), "all"));
    assert_eq!(all.len(), 1);
}

#[test]
fn import_without_per_append_fsync_syncs_before_it_reports() {
    let work = tempfile::tempdir().unwrap();
    let source = store_target(&work.path().join("a"));
    seed(&source);
    let file = stdout(&ok(run(&source, &["export"]), "export"));
    let b = work.path().join("b");
    let target = store_target(&b);
    let o = ok(
        run_stdin(&target, &["import", "--durability", "none"], &file),
        "import --durability none",
    );
    assert!(stderr(&o).contains("5 written"), "{}", stderr(&o));
    ok(strata(&["verify", "--store", &log_spec(&b)]), "verify");
    assert_eq!(
        all_events(&target).iter().map(portable).collect::<Vec<_>>(),
        all_events(&source).iter().map(portable).collect::<Vec<_>>()
    );
    // An unknown durability is refused in one line.
    let o = strata(&["import", "--durability", "sometimes", "--store", "memory:"]);
    assert_one_line_error(&o, "sometimes");
}

#[test]
fn a_server_shutting_down_ends_a_tail_with_one_line() {
    let mut s = server();
    let stream = StreamId::new("sd-1").unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(s.store.append(
        &stream,
        ExpectedVersion::Any,
        vec![NewEvent::json("A", &serde_json::json!({})).unwrap()],
    ))
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["tail", "--server", &s.url])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert!(line.contains("sd-1"), "{line}");
    s.stop.take().unwrap().send(()).unwrap();
    let o = wait_child(child);
    assert_one_line_error(&o, "shutting_down");
}

#[test]
fn a_tail_dropped_as_a_slow_consumer_resumes_without_gaps_or_duplicates() {
    // A small buffer per connection, and a tail whose stdout nobody reads
    // for a while: the server drops it, and it must resume.
    let config = strata_server::ServerConfig {
        subscription_buffer_messages: 16,
        slow_consumer_timeout_ms: 50,
        ..strata_server::ServerConfig::default()
    };
    let s = server_with(config, None);
    let stream = StreamId::new("slow-1").unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    const EVENTS: u64 = 20_000;
    let pad = "x".repeat(300);
    for chunk in 0..(EVENTS / 1_000) {
        let events = (0..1_000)
            .map(|i| {
                NewEvent::json(
                    "Tick",
                    &serde_json::json!({ "i": chunk * 1_000 + i, "pad": pad }),
                )
                .unwrap()
            })
            .collect();
        rt.block_on(s.store.append(&stream, ExpectedVersion::Any, events))
            .unwrap();
    }
    let work = tempfile::tempdir().unwrap();
    let err_path = work.path().join("stderr");
    let limit = EVENTS.to_string();
    let mut child = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["tail", "slow-1", "--server", &s.url, "--limit", &limit])
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    // A watchdog, so that a hang fails the test instead of blocking it.
    let pid = child.id().to_string();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watchdog = {
        let done = done.clone();
        std::thread::spawn(move || {
            let start = Instant::now();
            while start.elapsed() < CHILD_DEADLINE * 2 {
                if done.load(std::sync::atomic::Ordering::Relaxed) {
                    return false;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = Command::new("kill").args(["-9", &pid]).status();
            true
        })
    };
    std::thread::sleep(Duration::from_millis(1_500));
    let out = BufReader::new(child.stdout.take().unwrap());
    let mut next = 1u64;
    for line in out.lines() {
        let e: Value = serde_json::from_str(&line.unwrap()).unwrap();
        assert_eq!(e["version"].as_u64(), Some(next), "a gap or a duplicate");
        next += 1;
    }
    let status = child.wait().unwrap();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(!watchdog.join().unwrap(), "the tail hung and was killed");
    let err = std::fs::read_to_string(&err_path).unwrap();
    assert_eq!(next - 1, EVENTS, "{err}");
    assert!(status.success(), "{err}");
    assert!(
        err.contains("resuming after position"),
        "the server never dropped the tail, so resuming went untested: {err}"
    );
}

fn check_meta_commands(target: &[String]) {
    let got = stdout(&ok(run(target, &["meta", "get", "account-1"]), "meta get"));
    let v: Value = serde_json::from_str(&got).unwrap();
    assert_eq!(v["metadata_version"], 0, "{got}");
    for i in 0..5 {
        ok(
            run(
                target,
                &[
                    "append",
                    "account-1",
                    "--type",
                    "Seen",
                    "--data",
                    &format!("{{\"i\":{i}}}"),
                ],
            ),
            "append",
        );
    }
    let set = stdout(&ok(
        run(
            target,
            &[
                "meta",
                "set",
                "account-1",
                "--max-count",
                "2",
                "--custom",
                r#"{"owner":"ada"}"#,
                "--expected-metadata-version",
                "no_stream",
            ],
        ),
        "meta set",
    ));
    let v: Value = serde_json::from_str(&set).unwrap();
    assert_eq!(v["metadata_version"], 1, "{set}");
    assert_eq!(v["custom"]["owner"], "ada", "{set}");
    let read = json_lines(&ok(run(target, &["read", "account-1"]), "read"));
    let versions: Vec<u64> = read
        .iter()
        .map(|e| e["version"].as_u64().unwrap())
        .collect();
    assert_eq!(versions, vec![4, 5], "retention holds at once");
    let stale = run(
        target,
        &[
            "meta",
            "set",
            "account-1",
            "--max-count",
            "3",
            "--expected-metadata-version",
            "no_stream",
        ],
    );
    assert_one_line_error(&stale, "is at version 1, expected no stream");
    let got = stdout(&ok(run(target, &["meta", "get", "account-1"]), "meta get"));
    let v: Value = serde_json::from_str(&got).unwrap();
    assert_eq!(
        (v["metadata_version"].as_u64(), v["max_count"].as_u64()),
        (Some(1), Some(2))
    );
}

#[test]
fn meta_commands_on_a_log_store() {
    let dir = tempfile::tempdir().unwrap();
    check_meta_commands(&store_target(dir.path()));
}

#[test]
fn meta_commands_through_a_server() {
    let s = server();
    check_meta_commands(&server_target(&s));
}
