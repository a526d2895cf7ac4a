//! A damaged log store from the command line: `strata verify --repair` asks
//! before it cuts and keeps what it cuts; `strata serve --allow-damaged`
//! serves everything outside the damage read-only.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::run::{assert_ok, stdout, strata};

/// A store of a few demo runs with one byte flipped in the middle of its
/// segment: later frames prove the damaged one durable.
fn damaged_store(dir: &Path) -> String {
    let spec = format!("log:{}", dir.display());
    for _ in 0..4 {
        assert_ok(&strata(&["demo", "--store", &spec]), "demo");
    }
    let seg = dir.join("segments").join("00000000.seg");
    let mut bytes = std::fs::read(&seg).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&seg, bytes).unwrap();
    spec
}

/// Runs `strata ARGS` with `input` on stdin.
fn strata_with_input(args: &[&str], input: &str) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn repair_dirs(dir: &Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("repair-")
        })
        .collect()
}

#[test]
fn verify_repair_asks_then_cuts_and_keeps_the_cut_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let spec = damaged_store(&dir);
    let seg = dir.join("segments").join("00000000.seg");
    let before = std::fs::read(&seg).unwrap();

    // Not confirmed: nothing changes.
    let o = strata_with_input(&["verify", "--store", &spec, "--repair"], "no\n");
    assert!(!o.status.success());
    let out = stdout(&o);
    assert!(out.contains("repair: cuts the log at"), "{out}");
    assert!(out.contains("not confirmed"), "{out}");
    assert_eq!(std::fs::read(&seg).unwrap(), before);
    assert!(repair_dirs(&dir).is_empty());

    // Confirmed: cut, kept aside, clean.
    let o = strata_with_input(&["verify", "--store", &spec, "--repair"], "yes\n");
    let out = assert_ok(&o, "verify --repair");
    assert!(out.contains("repair: kept"), "{out}");
    assert!(out.contains("ok: no problems found"), "{out}");
    let aside = repair_dirs(&dir);
    assert_eq!(aside.len(), 1);
    let kept = std::fs::read(aside[0].join("00000000.seg")).unwrap();
    assert_eq!(kept, before, "the whole damaged segment is kept aside");
    let now = std::fs::read(&seg).unwrap();
    assert!(now.len() < before.len() && before.starts_with(&now));
    assert_ok(
        &strata(&["verify", "--store", &spec]),
        "verify after repair",
    );
}

#[test]
fn serve_allow_damaged_serves_both_sides_of_the_damage_read_only() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let spec = damaged_store(&dir);
    // Without the flag the server does not start.
    let o = strata(&["serve", "--store", &spec, "--listen", "127.0.0.1:0"]);
    assert!(!o.status.success());
    let mut child = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args([
            "serve",
            "--store",
            &spec,
            "--listen",
            "127.0.0.1:0",
            "--allow-damaged",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = lines
        .find_map(|l| {
            let l = l.ok()?;
            Some(l.split("http://").nth(1)?.split(' ').next()?.to_string())
        })
        .expect("listening line");
    let (status, body) = http(&addr, "GET", "/all?limit=1000", "");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"events\""), "{body}");
    // Reading on past the last readable event names the damage.
    let last: u64 = body
        .split("\"position\":")
        .skip(1)
        .filter_map(|r| r.split([',', '}']).next()?.trim().parse().ok())
        .max()
        .expect("events before the damage are served");
    let (status, body) = http(&addr, "GET", &format!("/all?after={last}&limit=1000"), "");
    assert!(status >= 400, "{status} {body}");
    assert!(body.contains("00000000.seg"), "{body}");
    // ... and says where reading goes on: everything after the damage is served.
    let resume: u64 = body
        .split("reading can go on from position ")
        .nth(1)
        .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok())
        .unwrap_or_else(|| panic!("no resume position in {body}"));
    assert!(resume > last);
    let (status, body) = http(&addr, "GET", &format!("/all?after={resume}&limit=1000"), "");
    assert_eq!(status, 200, "{body}");
    let after: Vec<u64> = body
        .split("\"position\":")
        .skip(1)
        .filter_map(|r| r.split([',', '}']).next()?.trim().parse().ok())
        .collect();
    assert!(
        !after.is_empty(),
        "events after the damage are served: {body}"
    );
    assert!(after.iter().all(|p| *p > resume), "{after:?}");
    let (status, body) = http(
        &addr,
        "POST",
        "/streams/new-1",
        r#"{"expected_version":"any","events":[{"type":"T","data":{}}]}"#,
    );
    assert!(status >= 500, "a write must be refused: {status} {body}");
    child.kill().unwrap();
    child.wait().unwrap();
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
