//! `strata serve`: serves the HTTP API on loopback, refuses other addresses
//! without keys, and on SIGTERM finishes, closes the store and keeps every
//! acknowledged append.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

fn strata() -> Command {
    Command::new(env!("CARGO_BIN_EXE_strata"))
}

/// One HTTP/1.1 request with `Connection: close`; returns status and body.
fn http(addr: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}

#[test]
fn serve_appends_then_stops_on_sigterm_and_keeps_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("log:{}", dir.path().display());
    let mut child = strata()
        .args(["serve", "--store", &store, "--listen", "127.0.0.1:0"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let addr = first
        .split("http://")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .unwrap_or_else(|| panic!("no address in `{first}`"))
        .to_string();

    let (status, body) = http(&addr, "GET", "/health", "");
    assert_eq!(status, 200, "{body}");
    let (status, body) = http(
        &addr,
        "POST",
        "/streams/account-1",
        r#"{"expected_version":"no_stream","events":[{"type":"Opened","data":{"owner":"ada"}}]}"#,
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"next_expected_version\":1"), "{body}");

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "serve exited with {status}");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(
        rest.iter().any(|l| l.contains("store closed")),
        "serve must close the store: {rest:?}"
    );

    // The acknowledged append is there, and the store is clean.
    let verify = strata()
        .args(["verify", "--store", &store])
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
    let out = String::from_utf8_lossy(&verify.stdout);
    assert!(out.contains(", 1 events,"), "{out}");
}

#[test]
fn serve_refuses_a_non_loopback_address_without_keys() {
    let out = strata()
        .args(["serve", "--store", "memory:", "--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("loopback"), "{err}");
}
