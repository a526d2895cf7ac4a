//! `http-append`'s own server: `strata serve` (the `strata` program the host
//! names) as a child process, so that server and load generator are separate processes as in
//! a real deployment (they still share the machine's cores).
//!
//! The child listens on a free loopback port, is considered up once
//! `GET /health` answers 200, and is stopped with SIGTERM (sent by the
//! system's `kill` command: this crate has no libc binding), which makes it
//! finish in-flight requests and close the store; it gets
//! [`SERVER_STOP_TIMEOUT_SECS`] for that before it is killed. A child that
//! is still running when its [`ServerChild`] is dropped (an error path) is
//! killed outright.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::BenchError;

/// How long the child may take to answer `/health`, in seconds (opening a
/// PostgreSQL store creates its schema first).
pub const SERVER_START_TIMEOUT_SECS: u64 = 60;
/// How long the child may take to stop after SIGTERM, in seconds (closing
/// the log store syncs and writes a checkpoint).
pub const SERVER_STOP_TIMEOUT_SECS: u64 = 120;
/// How often the child is polled while starting and stopping, in milliseconds.
const SERVER_POLL_INTERVAL_MS: u64 = 20;
/// Longest a single `/health` request may take, in milliseconds.
const HEALTH_REQUEST_TIMEOUT_MS: u64 = 2_000;
/// Most bytes of an error response quoted in an error message.
pub const MAX_QUOTED_BODY_BYTES: usize = 300;

/// A running `strata serve` child process.
#[derive(Debug)]
pub struct ServerChild {
    child: Option<Child>,
    url: String,
}

impl ServerChild {
    /// Starts `<program> serve --store <store> --durability <durability>`
    /// on a free loopback port and waits until `/health` answers; returns it
    /// and the store's head position.
    pub async fn start(
        program: &Path,
        store: &str,
        durability: &str,
        client: &reqwest::Client,
        key: Option<&str>,
    ) -> Result<(ServerChild, u64), BenchError> {
        let port = free_port()?;
        let listen = format!("127.0.0.1:{port}");
        let child = Command::new(program)
            .args([
                "serve",
                "--store",
                store,
                "--durability",
                durability,
                "--listen",
                &listen,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start `{} serve`: {e}", program.display()))?;
        let mut server = ServerChild {
            child: Some(child),
            url: format!("http://{listen}"),
        };
        let started = Instant::now();
        let limit = Duration::from_secs(SERVER_START_TIMEOUT_SECS);
        loop {
            if let Some(status) = server.try_wait()? {
                server.child = None;
                return Err(format!(
                    "`strata serve` exited with {status} before it answered /health on {}",
                    server.url
                )
                .into());
            }
            match health(client, &server.url, key).await {
                Ok(head) => return Ok((server, head)),
                Err(e) if started.elapsed() > limit => {
                    return Err(format!(
                        "`strata serve` did not answer /health on {} within {SERVER_START_TIMEOUT_SECS} s: {e}",
                        server.url
                    )
                    .into());
                }
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(SERVER_POLL_INTERVAL_MS)).await;
                }
            }
        }
    }

    /// The server's base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The child's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    fn try_wait(&mut self) -> Result<Option<std::process::ExitStatus>, BenchError> {
        match self.child.as_mut() {
            Some(c) => c
                .try_wait()
                .map_err(|e| format!("cannot watch `strata serve`: {e}").into()),
            None => Ok(None),
        }
    }

    /// Sends SIGTERM and waits for the child to close the store and exit;
    /// an error if it does not exit cleanly within [`SERVER_STOP_TIMEOUT_SECS`].
    pub async fn stop(mut self) -> Result<(), BenchError> {
        let Some(pid) = self.pid() else {
            return Ok(());
        };
        let sent = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .stdin(Stdio::null())
            .status()
            .map_err(|e| format!("cannot run `kill -TERM {pid}` to stop `strata serve`: {e}"))?;
        if !sent.success() {
            return Err(format!("`kill -TERM {pid}` failed ({sent})").into());
        }
        let started = Instant::now();
        loop {
            if let Some(status) = self.try_wait()? {
                self.child = None;
                if status.success() {
                    return Ok(());
                }
                return Err(format!("`strata serve` exited with {status} after SIGTERM").into());
            }
            if started.elapsed() > Duration::from_secs(SERVER_STOP_TIMEOUT_SECS) {
                return Err(format!(
                    "`strata serve` (pid {pid}) did not stop within {SERVER_STOP_TIMEOUT_SECS} s of SIGTERM; killing it"
                )
                .into());
            }
            tokio::time::sleep(Duration::from_millis(SERVER_POLL_INTERVAL_MS)).await;
        }
    }
}

impl Drop for ServerChild {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A loopback port nobody listens on right now.
fn free_port() -> Result<u16, BenchError> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| format!("cannot find a free loopback port: {e}"))?;
    Ok(l.local_addr()?.port())
}

/// `GET {url}/health`: the store's head position when it answers 200.
pub async fn health(
    client: &reqwest::Client,
    url: &str,
    key: Option<&str>,
) -> Result<u64, BenchError> {
    let mut req = client
        .get(format!("{url}/health"))
        .timeout(Duration::from_millis(HEALTH_REQUEST_TIMEOUT_MS));
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    let resp = req.send().await?;
    let status = resp.status();
    let body = resp.bytes().await?;
    if !status.is_success() {
        return Err(format!("GET /health answered {status}: {}", quote(&body)).into());
    }
    let v: Value = serde_json::from_slice(&body)
        .map_err(|e| format!("GET /health answered {}: {e}", quote(&body)))?;
    v.get("head_position")
        .and_then(Value::as_u64)
        .ok_or_else(|| format!("GET /health has no head_position: {}", quote(&body)).into())
}

/// At most [`MAX_QUOTED_BODY_BYTES`] of a response body, for an error message.
pub fn quote(body: &[u8]) -> String {
    let s = String::from_utf8_lossy(&body[..body.len().min(MAX_QUOTED_BODY_BYTES)]);
    if body.len() > MAX_QUOTED_BODY_BYTES {
        format!("{s}…")
    } else {
        s.into_owned()
    }
}
