//! `strata backup` and `strata restore` from the command line: of a closed
//! store, of a store a running `strata serve` holds, and `POST
//! /admin/backup` on that server; each restored store passes `strata verify`
//! and holds the events the backup says.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::run::{assert_ok, stderr, strata};

/// The store's events as `strata export` prints them (one JSON line each).
fn exported(dir: &Path) -> Vec<String> {
    let out = assert_ok(
        &strata(&["export", "--store", &format!("log:{}", dir.display())]),
        "export",
    );
    out.lines().map(str::to_string).collect()
}

/// The position a backup or restore summary names.
fn position_in(summary: &str) -> u64 {
    summary
        .split("up to position ")
        .nth(1)
        .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok())
        .unwrap_or_else(|| panic!("no position in {summary}"))
}

fn position_of(line: &str) -> u64 {
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    v["position"].as_u64().unwrap()
}

fn restore_and_verify(dest: &Path, to: &Path) -> String {
    let out = assert_ok(
        &strata(&[
            "restore",
            "--from",
            dest.to_str().unwrap(),
            "--to",
            to.to_str().unwrap(),
        ]),
        "restore",
    );
    let verified = assert_ok(
        &strata(&["verify", "--store", &format!("log:{}", to.display())]),
        "verify of the restored store",
    );
    assert!(verified.contains("ok: no problems found"), "{verified}");
    out
}

#[test]
fn backup_restore_and_verify_a_closed_store() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, dest) = (tmp.path().join("data"), tmp.path().join("backup"));
    let spec = format!("log:{}", dir.display());
    for _ in 0..3 {
        assert_ok(&strata(&["demo", "--store", &spec]), "demo");
    }
    let dest_arg = dest.to_str().unwrap();
    let first = assert_ok(
        &strata(&["backup", "--store", &spec, "--to", dest_arg]),
        "backup",
    );
    assert!(first.starts_with("backup of log:"), "{first}");
    assert!(
        first.contains(" files, ") && first.contains(" copied ("),
        "{first}"
    );
    assert_eq!(first.lines().count(), 1, "one line: {first}");
    let restored = tmp.path().join("restored");
    let out = restore_and_verify(&dest, &restored);
    assert!(out.starts_with("restored "), "{out}");
    assert_eq!(position_in(&out), position_in(&first));
    assert_eq!(exported(&restored), exported(&dir));

    // More events, then an incremental backup: restores to the new end.
    assert_ok(&strata(&["demo", "--store", &spec]), "demo");
    let second = assert_ok(
        &strata(&["backup", "--store", &spec, "--to", dest_arg]),
        "second backup",
    );
    assert!(position_in(&second) > position_in(&first), "{second}");
    let restored2 = tmp.path().join("restored-2");
    restore_and_verify(&dest, &restored2);
    assert_eq!(exported(&restored2), exported(&dir));

    // A restore into a directory that holds anything is refused.
    let o = strata(&[
        "restore",
        "--from",
        dest_arg,
        "--to",
        restored.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("not empty"), "{}", stderr(&o));
}

#[test]
fn stores_without_files_to_copy_are_refused_with_what_to_use_instead() {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("backup");
    let dest_arg = dest.to_str().unwrap();
    let o = strata(&["backup", "--store", "memory:", "--to", dest_arg]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("strata export"), "{}", stderr(&o));
    let o = strata(&[
        "backup",
        "--store",
        "postgres://strata@127.0.0.1:5432/test?schema=orders",
        "--to",
        dest_arg,
    ]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("pg_dump --schema=orders") && err.contains("pg_basebackup"),
        "{err}"
    );
    let o = strata(&[
        "backup",
        "--store",
        &format!("log:{}", tmp.path().join("nothing").display()),
        "--to",
        dest_arg,
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("no log store"), "{}", stderr(&o));
    assert!(!dest.exists(), "nothing written");
}

/// A running `strata serve`; killed when dropped.
struct Server {
    child: Child,
    addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(spec: &str, backup_dir: &Path) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args([
            "serve",
            "--store",
            spec,
            "--listen",
            "127.0.0.1:0",
            "--backup-dir",
            backup_dir.to_str().unwrap(),
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
    // Keep draining stderr so the server never blocks on it.
    std::thread::spawn(move || for _ in lines {});
    Server { child, addr }
}

/// Appends `n` events to `stream` over HTTP, one request each.
fn append(addr: &str, stream: &str, n: usize) {
    for i in 0..n {
        let body =
            format!(r#"{{"expected_version":"any","events":[{{"type":"T","data":{{"i":{i}}}}}]}}"#);
        let (status, body) = http(addr, "POST", &format!("/streams/{stream}"), &body);
        assert_eq!(status, 200, "{body}");
    }
}

#[test]
fn a_store_held_by_a_running_server_is_backed_up_both_ways() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let (dest, server_dest) = (tmp.path().join("backup"), tmp.path().join("server-backup"));
    let spec = format!("log:{}", dir.display());
    let server = serve(&spec, &server_dest);
    append(&server.addr, "orders-1", 40);
    append(&server.addr, "orders-2", 25);

    // The server holds LOCK: `strata backup` copies the files without it.
    let out = assert_ok(
        &strata(&["backup", "--store", &spec, "--to", dest.to_str().unwrap()]),
        "backup of a served store",
    );
    assert!(out.contains("open in another process"), "{out}");
    let restored = tmp.path().join("restored");
    restore_and_verify(&dest, &restored);
    let events = exported(&restored);
    assert_eq!(
        events.len(),
        65,
        "every acknowledged append is in the backup"
    );
    assert_eq!(position_of(events.last().unwrap()), position_in(&out));

    // POST /admin/backup on the running server, twice: the second copies less.
    append(&server.addr, "orders-3", 10);
    let (status, body) = http(&server.addr, "POST", "/admin/backup", "");
    assert_eq!(status, 200, "{body}");
    let first: serde_json::Value = serde_json::from_str(&body).unwrap();
    append(&server.addr, "orders-3", 5);
    let (status, body) = http(&server.addr, "POST", "/admin/backup", "");
    assert_eq!(status, 200, "{body}");
    let second: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(
        second["position"].as_u64() > first["position"].as_u64(),
        "{second}"
    );
    assert!(
        second["bytes_copied"].as_u64().unwrap() < first["bytes_copied"].as_u64().unwrap(),
        "{first} {second}"
    );
    let restored2 = tmp.path().join("restored-2");
    restore_and_verify(&server_dest, &restored2);
    let events = exported(&restored2);
    assert_eq!(events.len(), 80);
    assert_eq!(
        position_of(events.last().unwrap()),
        second["position"].as_u64().unwrap()
    );
    drop(server);
    // The server's store itself is intact after all this.
    let verified = assert_ok(&strata(&["verify", "--store", &spec]), "verify");
    assert!(verified.contains("ok: no problems found"), "{verified}");
    assert_eq!(exported(&dir).len(), 80);
}

/// One HTTP/1.1 request with `Connection: close`; returns status and body.
fn http(addr: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
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
