//! The Node.js KurrentDB client (`@kurrent/kurrentdb-client`, pinned in
//! `node/package.json` and `node/package-lock.json`) against
//! `strata_grpc::serve` over memory stores, through `node/e2e.mjs`.
//!
//! `.ci/run` installs the locked packages into a directory under `target/`
//! and names it in `STRATA_KURRENTDB_NODE`; the runner copies `e2e.mjs` there
//! (so the script finds the packages) and runs it with `node`. Without the
//! variable the test skips loudly, unless `STRATA_REQUIRE_INTEROP=1`, when
//! it fails.
//!
//! Every section of the script runs here.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;

use common::{admin_keys, client_from_env, crate_dir, run, serve};
use strata_server::ApiKeys;

/// The directory with the locked Node packages installed.
const NODE_ENV: &str = "STRATA_KURRENTDB_NODE";

/// The script's sections this server passes.
const SECTIONS: &[&str] = &[
    "append",
    "read",
    "all",
    "delete",
    "tombstone",
    "auth",
    "subscribe",
    "metadata",
    "allBackwards",
    "multiAppend",
    "appendRecords",
];

/// Space-separated sections to run instead of [`SECTIONS`] (to try one
/// whose capability is landing).
const SECTIONS_ENV: &str = "STRATA_KURRENTDB_NODE_SECTIONS";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_client_passes_the_end_to_end_script() {
    let test = "node_client_passes_the_end_to_end_script";
    let Some(dir) = client_from_env(test, NODE_ENV, "the locked Node packages installed") else {
        return;
    };
    std::fs::copy(
        crate_dir().join("node").join("e2e.mjs"),
        dir.join("e2e.mjs"),
    )
    .unwrap();
    let chosen = std::env::var(SECTIONS_ENV).ok();
    let sections: Vec<&str> = match &chosen {
        Some(list) => list.split_whitespace().collect(),
        None => SECTIONS.to_vec(),
    };
    let open = serve("127.0.0.1:0", ApiKeys::none()).await;
    let keyed = serve("127.0.0.1:0", admin_keys()).await;
    let mut command = Command::new("node");
    command
        .current_dir(&dir)
        .arg("e2e.mjs")
        .args(&sections)
        .env(
            "STRATA_KURRENTDB_URI",
            format!("kurrentdb://{open}?tls=false"),
        )
        .env(
            "STRATA_KURRENTDB_KEYED_URI",
            format!("kurrentdb://{keyed}?tls=false"),
        );
    let log_dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let done = run(command, &log_dir, "kurrentdb-node").await;
    let summary = done
        .output
        .lines()
        .rev()
        .find(|l| l.contains(" passed, "))
        .unwrap_or("no summary")
        .to_string();
    println!("node client: {summary} (sections: {})", sections.join(" "));
    assert!(
        done.status.success() && summary == format!("{} passed, 0 failed", sections.len()),
        "node e2e.mjs {}: {summary} ({}); output:\n{}",
        sections.join(" "),
        done.status,
        done.output
    );
}
