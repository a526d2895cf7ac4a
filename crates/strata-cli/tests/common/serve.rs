//! `strata serve` as a child process of a test.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// The `host:port` that `strata serve` announces on its first stderr line
/// (`… http://HOST:PORT …`).
pub fn announced_addr(first_line: &str) -> String {
    first_line
        .split("http://")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .unwrap_or_else(|| panic!("no address in `{first_line}`"))
        .to_string()
}

/// A running `strata serve`, killed when dropped.
pub struct ServeChild {
    /// The process.
    pub child: Child,
    /// Its base URL, `http://HOST:PORT`.
    pub url: String,
}

impl ServeChild {
    /// Starts `strata serve --store STORE --listen LISTEN` with `envs` set
    /// and waits for its address; its stderr is drained from then on, so it
    /// never blocks on it.
    pub fn start(store: &str, listen: &str, envs: &[(&str, &str)]) -> ServeChild {
        let mut child = Command::new(env!("CARGO_BIN_EXE_strata"))
            .args(["serve", "--store", store, "--listen", listen])
            .envs(envs.iter().copied())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start strata serve");
        let mut lines = BufReader::new(child.stderr.take().expect("piped stderr")).lines();
        let first = lines
            .next()
            .expect("strata serve printed nothing")
            .expect("read strata serve's stderr");
        let addr = announced_addr(&first);
        std::thread::spawn(move || for _ in lines {});
        ServeChild {
            child,
            url: format!("http://{addr}"),
        }
    }

    /// Kills it with SIGKILL and waits for it.
    pub fn kill9(&mut self) {
        let status = Command::new("kill")
            .args(["-9", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
        let _ = self.child.wait();
    }
}

impl Drop for ServeChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
