//! The web console in headless Chromium: `ui-tests/console.mjs`, driven by
//! `playwright-core` (pinned in `ui-tests/package.json` and its lock file),
//! against a server over a memory store with three API keys (admin, a writer
//! and a reader limited to a prefix).
//!
//! `.ci/run` installs Chromium when missing and the locked packages into a
//! directory under `target/`, which it names in `STRATA_CONSOLE_NODE`; the
//! script is copied there (so it finds the packages) and run with `node`.
//! Without the packages, `node` or Chromium the test skips loudly, unless
//! `STRATA_REQUIRE_BROWSER=1`, when it fails. Screenshots go to
//! `target/console-screenshots/`; the script prints the console's first-load
//! size and time to interactive.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Backend, Harness};
use strata_core::Limits;
use strata_server::{ApiKeys, Role, ServerConfig};

/// The directory with the locked Node packages installed.
const NODE_ENV: &str = "STRATA_CONSOLE_NODE";
/// The Chromium to drive (default [`DEFAULT_CHROMIUM`]).
const CHROMIUM_ENV: &str = "STRATA_CHROMIUM";
/// Debian's Chromium.
const DEFAULT_CHROMIUM: &str = "/usr/bin/chromium";
/// Set to `1` (as `.ci/run` does) to fail, instead of skip, when the browser
/// or the packages are missing.
const REQUIRE_ENV: &str = "STRATA_REQUIRE_BROWSER";
/// The longest the script may run before it is killed and the test fails.
const RUN_LIMIT: Duration = Duration::from_secs(300);
/// How often the running script is checked for having exited.
const POLL: Duration = Duration::from_millis(100);

const ADMIN: &str = "console-admin-secret";
const WRITER: &str = "console-writer-secret";
const READER: &str = "console-reader-secret";

fn keys() -> ApiKeys {
    let key = common::api_key;
    ApiKeys::new(vec![
        key("ops", ADMIN, Role::Admin, &["*"]),
        key("writer", WRITER, Role::Write, &["orders-", "xss-"]),
        key("reader", READER, Role::Read, &["orders-"]),
    ])
    .unwrap()
}

/// What the test needs from the machine, or why it cannot run.
fn environment() -> Result<(PathBuf, PathBuf), String> {
    let node_dir = std::env::var_os(NODE_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .ok_or_else(|| format!("{NODE_ENV} is not set (the locked playwright-core packages)"))?;
    if !node_dir
        .join("node_modules")
        .join("playwright-core")
        .exists()
    {
        return Err(format!(
            "{NODE_ENV}={} has no node_modules/playwright-core",
            node_dir.display()
        ));
    }
    let chromium = std::env::var_os(CHROMIUM_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CHROMIUM));
    if !chromium.exists() {
        return Err(format!("no Chromium at {}", chromium.display()));
    }
    let node = Command::new("node").arg("--version").output();
    if !node.is_ok_and(|o| o.status.success()) {
        return Err("`node` does not run".into());
    }
    Ok((node_dir, chromium))
}

/// `target/console-screenshots`.
fn screenshot_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("console-screenshots")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_works_in_a_browser() {
    let test = "the_console_works_in_a_browser";
    let (node_dir, chromium) = match environment() {
        Ok(found) => found,
        Err(why) if std::env::var(REQUIRE_ENV).as_deref() == Ok("1") => {
            panic!("{test}: {why}, and {REQUIRE_ENV}=1 (.ci/run sets the browser up)")
        }
        Err(why) => {
            eprintln!(
                "\n!!! SKIPPED {test}: {why} (.ci/run sets it up; set {REQUIRE_ENV}=1 to fail instead) !!!\n"
            );
            return;
        }
    };
    let h = Harness::with(
        Backend::Memory,
        Limits::default(),
        ServerConfig {
            api_keys: keys(),
            store_kind: Some("memory".into()),
            ..ServerConfig::default()
        },
    )
    .await;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("ui-tests/console.mjs");
    std::fs::copy(&script, node_dir.join("console.mjs")).unwrap();
    let shots = screenshot_dir();
    let log = Path::new(env!("CARGO_TARGET_TMPDIR")).join("console-browser.log");
    let out = std::fs::File::create(&log).unwrap();
    let mut command = Command::new("node");
    command
        .current_dir(&node_dir)
        .arg("console.mjs")
        .env("STRATA_URL", format!("http://{}", h.addr))
        .env("STRATA_ADMIN_KEY", ADMIN)
        .env("STRATA_WRITER_KEY", WRITER)
        .env("STRATA_READER_KEY", READER)
        .env("STRATA_CHROMIUM", &chromium)
        .env("STRATA_SCREENSHOTS", &shots)
        .stdin(Stdio::null())
        .stdout(Stdio::from(out.try_clone().unwrap()))
        .stderr(Stdio::from(out));
    let status = tokio::task::spawn_blocking(move || {
        let mut child = command.spawn().expect("cannot start node");
        let started = Instant::now();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return Some(status);
            }
            if started.elapsed() > RUN_LIMIT {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(POLL);
        }
    })
    .await
    .unwrap();
    let output = std::fs::read_to_string(&log).unwrap_or_default();
    // The step log, the first-load numbers and the screenshots' place.
    println!("{output}\nscreenshots in {}", shots.display());
    let status =
        status.unwrap_or_else(|| panic!("the script ran longer than {RUN_LIMIT:?}:\n{output}"));
    assert!(
        status.success(),
        "the console script failed ({status}):\n{output}"
    );
    assert!(output.contains("CONSOLE OK"), "{output}");
    for name in [
        "stream.png",
        "event-correlation.png",
        "all-live.png",
        "health.png",
        "groups.png",
        "xss.png",
    ] {
        assert!(shots.join(name).exists(), "no screenshot {name}");
    }
}
