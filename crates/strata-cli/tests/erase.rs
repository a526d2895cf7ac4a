//! `strata erase` as a user runs it. On a log store: refused without
//! `--yes` (nothing erased), the guard, then the erasure, which erases the
//! stream's snapshots at once; after `strata scavenge --erased-only` no file
//! of the directory (compressed segments decompressed) holds a byte of the
//! stream's data, `strata verify` is clean, and the other streams and
//! snapshots are intact. Through a server: an admin key erases, a write key
//! gets 403, no key 401.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;

use common::run::{assert_ok, stderr, stdout};
use strata_core::{
    Bytes, EventStore, ExpectedVersion, MemoryStore, Metadata, NewEvent, Snapshot, SnapshotStore,
    StreamId,
};
use strata_log::snapshot::LogSnapshotStore;
use strata_log::{LogConfig, LogStore};

const SECRET: &str = "SECRET-CLI-3a8f";
const KEPT: &str = "KEPT-CLI-c41d";

fn strata(args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(args)
        .env_remove("STRATA_API_KEY")
        .output()
        .expect("run strata")
}

/// Asserts a failure with exactly one line on stderr containing `needle`.
fn assert_one_line_error(o: &Output, needle: &str) {
    assert!(!o.status.success(), "expected failure: {}", stdout(o));
    let err = stderr(o);
    assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err:?}");
    assert!(err.starts_with("error: "), "{err:?}");
    assert!(err.contains(needle), "{err:?} lacks {needle:?}");
}

/// The files under `dir` whose bytes (decompressed) hold `needle`.
fn files_holding(dir: &Path, needle: &str) -> Vec<PathBuf> {
    strata_log::inspect::files_holding(dir, needle.as_bytes()).unwrap()
}

fn event(i: usize, marker: &str) -> NewEvent {
    NewEvent::json(
        "Noted",
        &serde_json::json!({ "i": i, "note": format!("{marker}-{i}"), "pad": "z".repeat(300) }),
    )
    .unwrap()
    .with_metadata(Metadata::default().with_user_id(format!("{marker}-user")))
}

fn snapshot(stream: &str, version: u64, marker: &str) -> Snapshot {
    Snapshot {
        stream: StreamId::new(stream).unwrap(),
        aggregate_type: "person".into(),
        version,
        schema_version: 1,
        state: Bytes::from(format!("{{\"name\":\"{marker}\"}}")),
        taken_at: strata_core::clock::from_micros(1_700_000_000_000_000),
    }
}

/// 200 events round-robin over `person-7` (50, carrying SECRET) and three
/// other streams, over several segments; snapshots of `person-7` and
/// `other-1`.
fn fill(dir: &Path) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = LogStore::open(LogConfig::new(dir).max_segment_bytes(32 * 1024))
            .await
            .unwrap();
        for i in 0..200 {
            let (s, marker) = match i % 4 {
                0 => ("person-7".to_string(), SECRET),
                k => (format!("other-{k}"), KEPT),
            };
            store
                .append(
                    &StreamId::new(s).unwrap(),
                    ExpectedVersion::Any,
                    vec![event(i, marker)],
                )
                .await
                .unwrap();
        }
        store.close().await.unwrap();
        let dir = dir.to_path_buf();
        let snapshots = tokio::task::spawn_blocking(move || LogSnapshotStore::open(dir))
            .await
            .unwrap()
            .unwrap();
        for v in [10, 20, 50] {
            snapshots
                .save(snapshot("person-7", v, SECRET))
                .await
                .unwrap();
            snapshots.save(snapshot("other-1", v, KEPT)).await.unwrap();
        }
    });
}

fn load_snapshot(dir: &Path, stream: &str) -> Option<Snapshot> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = dir.to_path_buf();
    rt.block_on(async {
        let store = tokio::task::spawn_blocking(move || LogSnapshotStore::open(dir))
            .await
            .unwrap()
            .unwrap();
        store
            .load(&StreamId::new(stream).unwrap(), u64::MAX)
            .await
            .unwrap()
    })
}

#[test]
fn erase_then_scavenge_leaves_no_byte_of_the_stream_on_a_log_store() {
    let dir = tempfile::tempdir().unwrap();
    fill(dir.path());
    let spec = format!("log:{}", dir.path().display());
    assert!(files_holding(dir.path(), SECRET).len() >= 3);
    let snapshots_dir = dir.path().join("snapshots");
    assert!(!files_holding(&snapshots_dir, SECRET).is_empty());

    // Without --yes nothing is done.
    let o = strata(&["erase", "person-7", "--store", &spec]);
    assert_one_line_error(&o, "--yes");
    assert_ne!(o.status.code(), Some(0));
    let read = assert_ok(&strata(&["read", "person-7", "--store", &spec]), "read");
    assert_eq!(read.lines().count(), 50);
    // A failed guard erases nothing.
    let o = strata(&[
        "erase",
        "person-7",
        "--store",
        &spec,
        "--yes",
        "--expected-version",
        "3",
    ]);
    assert_one_line_error(&o, "expected");
    assert!(load_snapshot(dir.path(), "person-7").is_some());

    let out = assert_ok(
        &strata(&[
            "erase",
            "person-7",
            "--store",
            &spec,
            "--yes",
            "--expected-version",
            "50",
        ]),
        "erase",
    );
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.contains("erased `person-7`"), "{out}");
    assert!(
        out.contains(&format!(
            "strata scavenge --store log:{} --erased-only",
            dir.path().display()
        )),
        "{out}"
    );
    assert!(out.contains("snapshots were erased"), "{out}");
    // The snapshots are gone at once; the events' data waits for a scavenge.
    assert_eq!(files_holding(&snapshots_dir, SECRET), Vec::<PathBuf>::new());
    let o = strata(&["read", "person-7", "--store", &spec]);
    assert_one_line_error(&o, "person-7");
    let all = assert_ok(&strata(&["all", "--store", &spec]), "all");
    assert!(!all.contains(SECRET));
    assert_eq!(all.lines().count(), 150);

    let out = assert_ok(
        &strata(&["scavenge", "--store", &spec, "--erased-only"]),
        "scavenge",
    );
    assert!(out.contains("50 events removed"), "{out}");
    assert_eq!(
        files_holding(dir.path(), SECRET),
        Vec::<PathBuf>::new(),
        "the erased stream's data is still in these files"
    );
    assert_ok(&strata(&["verify", "--store", &spec]), "verify");

    // Everything else is intact.
    let all = assert_ok(&strata(&["all", "--store", &spec]), "all");
    assert_eq!(all.lines().count(), 150);
    assert_eq!(all.matches(KEPT).count(), 300, "note and user of each");
    let kept = load_snapshot(dir.path(), "other-1").unwrap();
    assert_eq!(kept, snapshot("other-1", 50, KEPT));
    assert_eq!(load_snapshot(dir.path(), "person-7"), None);
    // The name stays taken.
    let o = strata(&[
        "append", "person-7", "--type", "X", "--data", "{}", "--store", &spec,
    ]);
    assert_one_line_error(&o, "person-7");
    // Erasing again (an erased stream, `any`) is allowed.
    assert_ok(
        &strata(&["erase", "person-7", "--store", &spec, "--yes"]),
        "erase again",
    );
}

#[test]
fn erase_on_a_memory_store_reserves_the_name() {
    let out = assert_ok(
        &strata(&["erase", "never-1", "--store", "memory:", "--yes"]),
        "erase",
    );
    assert!(out.contains("erased `never-1` in memory:"), "{out}");
    assert!(out.contains("no snapshots are kept beside it"), "{out}");
}

/// A server over a memory store with an admin and a write key.
struct TestServer {
    url: String,
    store: Arc<MemoryStore>,
    _runtime: tokio::runtime::Runtime,
}

const ADMIN: &str = "admin-secret";
const WRITER: &str = "writer-secret";

fn server() -> TestServer {
    use strata_server::{sha256_hex, ApiKey, ApiKeys, Role, ServerConfig};
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let k = |name: &str, secret: &str, role| {
        ApiKey::new(name, &sha256_hex(secret), role, vec!["*".into()]).unwrap()
    };
    let config = ServerConfig {
        api_keys: ApiKeys::new(vec![
            k("admin", ADMIN, Role::Admin),
            k("writer", WRITER, Role::Write),
        ])
        .unwrap(),
        ..ServerConfig::default()
    };
    let store = Arc::new(MemoryStore::new());
    let router = strata_server::router(store.clone() as Arc<dyn EventStore>, config.clone());
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    runtime.spawn(async move {
        strata_server::serve_with(listener, router, &config, None, std::future::pending()).await
    });
    TestServer {
        url,
        store,
        _runtime: runtime,
    }
}

#[test]
fn erase_through_a_server_needs_an_admin_key() {
    let s = server();
    let stream = StreamId::new("person-7").unwrap();
    s._runtime.block_on(async {
        s.store
            .append(&stream, ExpectedVersion::Any, vec![event(0, SECRET)])
            .await
            .unwrap();
    });
    let at = |key: Option<&str>| -> Vec<String> {
        let mut v = vec!["--server".to_string(), s.url.clone()];
        if let Some(k) = key {
            v.extend(["--key".to_string(), k.to_string()]);
        }
        v
    };
    let run = |key: Option<&str>, extra: &[&str]| {
        let mut args = vec!["erase", "person-7"];
        args.extend_from_slice(extra);
        let target = at(key);
        args.extend(target.iter().map(String::as_str));
        strata(&args)
    };
    assert_one_line_error(&run(Some(ADMIN), &[]), "--yes");
    assert_one_line_error(&run(None, &["--yes"]), "401");
    assert_one_line_error(&run(Some("nope"), &["--yes"]), "401");
    assert_one_line_error(&run(Some(WRITER), &["--yes"]), "403");
    assert_one_line_error(
        &run(Some(ADMIN), &["--yes", "--expected-version", "7"]),
        "409",
    );
    let still = s._runtime.block_on(s.store.stream_info(&stream)).unwrap();
    assert!(still.is_some(), "the refusals erased nothing");
    let out = assert_ok(&run(Some(ADMIN), &["--yes"]), "erase");
    assert!(
        out.contains(&format!("erased `person-7` through {}", s.url)),
        "{out}"
    );
    let read = strata(&["read", "person-7", "--server", &s.url, "--key", ADMIN]);
    assert_one_line_error(&read, "410");
}
