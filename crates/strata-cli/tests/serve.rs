//! `strata serve`: serves the HTTP API on loopback, refuses other addresses
//! without keys, and on SIGTERM finishes, closes the store and keeps every
//! acknowledged append; an erasure through it erases the stream's snapshots
//! kept in `DIR/snapshots` too.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::serve::announced_addr;

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
    let addr = announced_addr(&first);

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

/// Starts `strata serve` on `store`; the child and its address.
fn serve(
    store: &str,
) -> (
    std::process::Child,
    String,
    std::io::Lines<BufReader<std::process::ChildStderr>>,
) {
    let mut child = strata()
        .args(["serve", "--store", store, "--listen", "127.0.0.1:0"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let addr = announced_addr(&first);
    (child, addr, lines)
}

#[test]
fn an_erasure_through_serve_erases_the_snapshots_kept_beside_the_store() {
    use strata_core::{Snapshot, SnapshotStore, StreamId};
    use strata_log::snapshot::LogSnapshotStore;
    const SECRET: &str = "SECRET-SERVE-77d2";
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let snapshot = |stream: &str, marker: &str| Snapshot {
        stream: StreamId::new(stream).unwrap(),
        aggregate_type: "person".into(),
        version: 1,
        schema_version: 1,
        state: format!("{{\"name\":\"{marker}\"}}").into_bytes().into(),
        taken_at: strata_core::clock::from_micros(1_700_000_000_000_000),
    };
    rt.block_on(async {
        let snapshots = LogSnapshotStore::open(dir.path()).unwrap();
        snapshots.save(snapshot("person-7", SECRET)).await.unwrap();
        snapshots.save(snapshot("other-1", "kept")).await.unwrap();
    });
    let store = format!("log:{}", dir.path().display());
    let (mut child, addr, lines) = serve(&store);
    let (status, body) = http(
        &addr,
        "POST",
        "/streams/person-7",
        &format!(r#"{{"events":[{{"type":"Noted","data":{{"note":"{SECRET}"}}}}]}}"#),
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = http(&addr, "DELETE", "/streams/person-7?erase=true", "");
    assert_eq!(status, 204, "{body}");
    let (status, body) = http(&addr, "POST", "/admin/scavenge?erased_only=true", "");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"events_removed\":1"), "{body}");
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    assert!(child.wait().unwrap().success());
    drop(lines);

    let mut holding = Vec::new();
    let mut todo = vec![dir.path().to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else if p.extension().is_some_and(|x| x == "snap") {
                let b = std::fs::read(&p).unwrap();
                if b.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()) {
                    holding.push(p);
                }
            }
        }
    }
    assert_eq!(holding, Vec::<std::path::PathBuf>::new());
    rt.block_on(async {
        let snapshots = LogSnapshotStore::open(dir.path()).unwrap();
        let person = StreamId::new("person-7").unwrap();
        assert_eq!(snapshots.load(&person, u64::MAX).await.unwrap(), None);
        let other = StreamId::new("other-1").unwrap();
        assert_eq!(
            snapshots.load(&other, u64::MAX).await.unwrap(),
            Some(snapshot("other-1", "kept"))
        );
    });
    let verify = strata()
        .args(["verify", "--store", &store])
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
}

#[test]
fn serve_scavenges_on_a_schedule() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("log:{}", dir.path().join("store").display());
    let mut child = strata()
        .args([
            "serve",
            "--store",
            &store,
            "--listen",
            "127.0.0.1:0",
            "--scavenge-every",
            "1",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut runs = 0;
    for line in lines {
        let line = line.unwrap();
        if line.starts_with("strata: scheduled scavenge: ") {
            runs += 1;
            if runs == 2 {
                break;
            }
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(runs, 2, "two scheduled runs were reported");
    let bad = strata()
        .args(["serve", "--store", "memory:", "--scavenge-every", "5"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("does not scavenge"), "{err}");
}
