//! The crash test: a child process appends through the store in durable mode
//! and reports each acknowledged append on stdout; the parent SIGKILLs it at
//! random moments, reopens the store and checks that every acknowledged
//! append is there with its version and position, that nothing partial is
//! visible, that versions are contiguous and that `verify` is clean.
//!
//! CI runs 20 kills; `STRATA_CRASH_KILLS=500` runs the long version.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;
use rand::Rng;
use strata_core::{EventId, EventStore, ExpectedVersion, Position, StreamAppend, StreamId};
use strata_log::LogStore;

const CHILD_DIR_ENV: &str = "STRATA_CRASH_CHILD_DIR";
const WRITERS: usize = 8;
const STREAMS_PER_WRITER: usize = 4;
/// How long the parent waits for the child's first acknowledgement.
const FIRST_ACK_TIMEOUT: Duration = Duration::from_secs(30);

/// Not a test on its own: the body of the child process.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_DIR_ENV) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let store = std::sync::Arc::new(LogStore::open(config(dir.as_ref())).await.unwrap());
        let mut tasks = Vec::new();
        for w in 0..WRITERS {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let streams: Vec<StreamId> = (0..STREAMS_PER_WRITER)
                    .map(|j| StreamId::new(format!("w{w}-{j}")).unwrap())
                    .collect();
                let mut versions = Vec::new();
                for s in &streams {
                    versions.push(store.stream_info(s).await.unwrap().map_or(0, |i| i.version));
                }
                let mut i = 0usize;
                loop {
                    i += 1;
                    let a = i % STREAMS_PER_WRITER;
                    if i.is_multiple_of(7) {
                        // A multi-stream append across two of this writer's streams.
                        let b = (a + 1) % STREAMS_PER_WRITER;
                        let pa: Vec<_> = (0..2).map(|k| event(i * 10 + k)).collect();
                        let pb: Vec<_> = (0..1).map(|k| event(i * 10 + 5 + k)).collect();
                        let ids_a: Vec<EventId> = pa.iter().map(|e| e.id.unwrap()).collect();
                        let ids_b: Vec<EventId> = pb.iter().map(|e| e.id.unwrap()).collect();
                        let r = store
                            .append_multi(vec![
                                StreamAppend::new(
                                    streams[a].clone(),
                                    ExpectedVersion::Exact(versions[a]),
                                    pa,
                                ),
                                StreamAppend::new(
                                    streams[b].clone(),
                                    ExpectedVersion::Exact(versions[b]),
                                    pb,
                                ),
                            ])
                            .await
                            .unwrap();
                        report(&streams[a], versions[a] + 1, &r[0], &ids_a);
                        report(&streams[b], versions[b] + 1, &r[1], &ids_b);
                        versions[a] = r[0].next_expected_version;
                        versions[b] = r[1].next_expected_version;
                    } else {
                        let n = 1 + i % 3;
                        let evs: Vec<_> = (0..n).map(|k| event(i * 10 + k)).collect();
                        let ids: Vec<EventId> = evs.iter().map(|e| e.id.unwrap()).collect();
                        let r = store
                            .append(&streams[a], ExpectedVersion::Exact(versions[a]), evs)
                            .await
                            .unwrap();
                        report(&streams[a], versions[a] + 1, &r, &ids);
                        versions[a] = r.next_expected_version;
                    }
                }
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
    });
}

fn report(stream: &StreamId, first_version: u64, r: &strata_core::AppendResult, ids: &[EventId]) {
    let ids: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
    println!(
        "ACK {} {} {} {} {}",
        stream,
        first_version,
        r.first_position.0,
        r.last_position.0,
        ids.join(",")
    );
}

fn parse_ack(line: &str) -> Option<Acked> {
    let mut parts = line.strip_prefix("ACK ")?.split(' ');
    let stream = StreamId::new(parts.next()?).ok()?;
    let first_version = parts.next()?.parse().ok()?;
    let first_position = Position(parts.next()?.parse().ok()?);
    let last_position = Position(parts.next()?.parse().ok()?);
    let ids = parts
        .next()?
        .split(',')
        .map(|s| s.parse().ok())
        .collect::<Option<Vec<EventId>>>()?;
    Some(Acked {
        stream,
        first_version,
        ids,
        first_position,
        last_position,
    })
}

#[test]
fn acknowledged_appends_survive_sigkill() {
    let kills: usize = std::env::var("STRATA_CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut acked: Vec<Acked> = Vec::new();
    let mut rng = rand::thread_rng();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    for kill in 0..kills {
        let mut child = Command::new(&exe)
            .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
            .env(CHILD_DIR_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel::<String>();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                match line {
                    Ok(l) => {
                        if tx.send(l).is_err() {
                            return;
                        }
                    }
                    Err(_) => return,
                }
            }
        });
        // Wait for the first acknowledgement, then let it run a random while.
        let start = Instant::now();
        let mut new = Vec::new();
        loop {
            let left = FIRST_ACK_TIMEOUT.saturating_sub(start.elapsed());
            match rx.recv_timeout(left) {
                Ok(l) => {
                    let is_ack = l.starts_with("ACK ");
                    new.push(l);
                    if is_ack {
                        break;
                    }
                }
                Err(_) => panic!(
                    "kill {kill}: the child acknowledged nothing within {FIRST_ACK_TIMEOUT:?}"
                ),
            }
        }
        std::thread::sleep(Duration::from_millis(rng.gen_range(5..300)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        reader.join().unwrap();
        new.extend(rx.try_iter());
        // A line cut by the kill is not an acknowledgement we can trust to
        // have been complete; every complete line is.
        let before = acked.len();
        acked.extend(new.iter().filter_map(|l| parse_ack(l)));
        assert!(
            acked.len() > before,
            "kill {kill}: no acknowledgements parsed"
        );

        rt.block_on(async {
            let store = LogStore::open(config(dir.path())).await.unwrap();
            check_acked(&store, &acked).await;
            store.close().await.unwrap();
        });
        assert_verify_clean(dir.path());
        if (kill + 1) % 25 == 0 {
            eprintln!(
                "crash test: {} kills, {} acknowledged appends verified so far",
                kill + 1,
                acked.len()
            );
        }
    }
    eprintln!(
        "crash test: {kills} kills, {} acknowledged appends verified",
        acked.len()
    );
}
