//! What the Python and Node.js runners share: the servers the clients talk
//! to, the environment that says where the clients are installed, and a
//! child process run within a time limit with its output kept.

#![allow(dead_code, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use strata_core::{EventStore, MemoryStore};
use strata_server::{sha256_hex, ApiKey, ApiKeys, Role, ALL_STREAMS};
use tokio::net::TcpListener;

/// Set to `1` (as `.ci/run` does) to fail, instead of skip, when a
/// client's environment variable is missing.
pub const REQUIRE_ENV: &str = "STRATA_REQUIRE_INTEROP";

/// The API key name the keyed servers know (the Basic user name).
pub const KEY_NAME: &str = "admin";
/// That key's secret (the Basic password).
pub const KEY_SECRET: &str = "changeit";

/// The longest one client run may take before it is killed and the test
/// fails.
pub const CLIENT_RUN_LIMIT: Duration = Duration::from_secs(600);

/// How often a running client is checked for having exited.
pub const CLIENT_POLL: Duration = Duration::from_millis(100);

/// The path in `var`, or `None` after a loud skip message; panics instead
/// under `STRATA_REQUIRE_INTEROP=1`.
pub fn client_from_env(test: &str, var: &str, what: &str) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(var).filter(|v| !v.is_empty()) {
        let path = PathBuf::from(path);
        assert!(
            path.exists(),
            "{test}: {var}={} does not exist",
            path.display()
        );
        return Some(path);
    }
    if std::env::var(REQUIRE_ENV).as_deref() == Ok("1") {
        panic!("{test}: {var} is not set and {REQUIRE_ENV}=1 ({what}; .ci/run sets it up)");
    }
    eprintln!(
        "\n!!! SKIPPED {test}: {var} is not set ({what}; .ci/run sets it up, \
         or set {REQUIRE_ENV}=1 to fail instead) !!!\n"
    );
    None
}

/// The API keys of the keyed servers: one admin key for every stream.
pub fn admin_keys() -> ApiKeys {
    ApiKeys::new(vec![ApiKey::new(
        KEY_NAME,
        &sha256_hex(KEY_SECRET),
        Role::Admin,
        vec![ALL_STREAMS.to_string()],
    )
    .unwrap()])
    .unwrap()
}

/// Serves a fresh memory store, with consumer groups (persistent
/// subscriptions), with `keys` on `addr` (port 0: any free port); the
/// address bound.
pub async fn serve(addr: &str, keys: ApiKeys) -> SocketAddr {
    let memory = MemoryStore::new();
    let groups: Arc<dyn strata_core::group::ConsumerGroups> =
        Arc::new(strata_core::group::LocalGroups::new(memory.clone()));
    let store: Arc<dyn EventStore> = Arc::new(memory);
    let listener = TcpListener::bind(addr)
        .await
        .unwrap_or_else(|e| panic!("cannot listen on {addr}: {e}"));
    let bound = listener.local_addr().unwrap();
    let services = strata_grpc::Services::new(store)
        .with_groups(groups)
        .with_keys(keys);
    tokio::spawn(strata_grpc::serve(
        listener,
        services,
        std::future::pending(),
    ));
    bound
}

/// What a client run left: its exit status and everything it printed.
pub struct Run {
    /// How the child exited.
    pub status: ExitStatus,
    /// Its standard output and error, interleaved.
    pub output: String,
}

/// Runs `command` to completion on a blocking thread, killing it after
/// [`CLIENT_RUN_LIMIT`]; its output goes through a file under `log_dir`.
pub async fn run(mut command: Command, log_dir: &Path, name: &str) -> Run {
    let log = log_dir.join(format!("{name}.log"));
    let out = std::fs::File::create(&log).unwrap();
    let err = out.try_clone().unwrap();
    command
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err));
    let describe = format!("{command:?}");
    tokio::task::spawn_blocking(move || {
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {describe}: {e}"));
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > CLIENT_RUN_LIMIT {
                let _ = child.kill();
                let _ = child.wait();
                let output = std::fs::read_to_string(&log).unwrap_or_default();
                panic!(
                    "{describe} ran longer than {CLIENT_RUN_LIMIT:?} and was killed; \
                     its output:\n{output}"
                );
            }
            std::thread::sleep(CLIENT_POLL);
        };
        let output = std::fs::read_to_string(&log).unwrap_or_default();
        Run { status, output }
    })
    .await
    .unwrap()
}

/// This crate's directory (where `python/` and `node/` are).
pub fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A list file's entries: `ENTRY  # reason` one a line; blank lines and
/// lines starting with `#` are skipped. Every entry must give its reason.
pub fn list_entries(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut entries = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (entry, reason) = line.split_once('#').unwrap_or((line, ""));
        assert!(
            !reason.trim().is_empty(),
            "{}: `{line}` gives no reason after `#`",
            path.display()
        );
        entries.push(entry.trim().to_string());
    }
    entries
}
