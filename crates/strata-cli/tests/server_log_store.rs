//! The server over a durable store: what is acknowledged over HTTP before a
//! graceful shutdown is in the log store after it is closed and reopened,
//! and a client's subscription resumes across the restart with no gap and no
//! duplicate; a stream erased over HTTP loses its snapshots at once and its
//! data at the next scavenge, so no file holds a byte of it. (The server's
//! own tests run over a MemoryStore; only the CLI composes it with a
//! backend.)

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use strata_client::{AllFilter, Client, ResumePolicy, SubscriptionMessage};
use strata_core::{EventStore, ExpectedVersion, NewEvent, StreamId, SubscribeFrom};
use strata_log::{LogConfig, LogStore};
use strata_server::{router, serve_with, ServerConfig};
use tokio::sync::oneshot;

const WAIT: Duration = Duration::from_secs(30);

struct Running {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    store: Arc<LogStore>,
}

async fn start(dir: &std::path::Path, addr: std::net::SocketAddr) -> (Running, String) {
    let store = Arc::new(LogStore::open(LogConfig::new(dir)).await.unwrap());
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = router(
        store.clone() as Arc<dyn EventStore>,
        ServerConfig::default(),
    );
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        serve_with(listener, app, &ServerConfig::default(), None, async {
            let _ = stopped.await;
        })
        .await
    });
    (Running { stop, task, store }, url)
}

/// Shuts the server down, then closes the store (as `strata serve` does).
async fn stop(r: Running) {
    r.stop.send(()).unwrap();
    r.task.await.unwrap().unwrap();
    let mut store = r.store;
    let store = loop {
        match Arc::try_unwrap(store) {
            Ok(s) => break s,
            Err(still_shared) => {
                store = still_shared;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    };
    store.close().await.unwrap();
}

async fn next_event(sub: &mut strata_client::Subscription) -> strata_core::RecordedEvent {
    loop {
        match tokio::time::timeout(WAIT, sub.next())
            .await
            .unwrap()
            .unwrap()
        {
            SubscriptionMessage::Event(e) => return e,
            SubscriptionMessage::CaughtUp(_) | SubscriptionMessage::Resuming { .. } => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_appends_survive_a_shutdown_and_a_subscription_resumes_across_it() {
    let dir = tempfile::tempdir().unwrap();
    let (running, url) = start(dir.path(), "127.0.0.1:0".parse().unwrap()).await;
    let addr = url.trim_start_matches("http://").parse().unwrap();
    let client = Client::new(&url).unwrap();
    let s = StreamId::new("durable-1").unwrap();
    let events: Vec<NewEvent> = (0..3)
        .map(|i| NewEvent::json("Tick", &serde_json::json!({ "i": i })).unwrap())
        .collect();
    client
        .append(&s, ExpectedVersion::NoStream, &events)
        .await
        .unwrap();
    let mut sub = client
        .subscribe_all(SubscribeFrom::Start, AllFilter::default())
        .await
        .unwrap()
        .with_resume(ResumePolicy {
            after_shutdown: true,
            delay: Duration::from_millis(100),
            max_losses_in_a_row: 100,
        });
    for v in 1..=3 {
        assert_eq!(next_event(&mut sub).await.version, v);
    }

    stop(running).await;
    let (running, _) = start(dir.path(), addr).await;
    // The reopened store has every acknowledged event.
    let page = client
        .read_stream(&s, None, 10, strata_core::Direction::Forward)
        .await
        .unwrap();
    assert_eq!(page.events.len(), 3);
    let more = vec![NewEvent::json("Tick", &serde_json::json!({ "i": 3 })).unwrap()];
    client
        .append(&s, ExpectedVersion::Exact(3), &more)
        .await
        .unwrap();
    // The subscription resumed after version 3: the next is 4, not 1.
    assert_eq!(next_event(&mut sub).await.version, 4);
    stop(running).await;
}

/// The files under `dir` whose bytes (a compressed segment's decompressed)
/// hold `needle`.
fn files_holding(dir: &std::path::Path, needle: &str) -> Vec<std::path::PathBuf> {
    strata_log::inspect::files_holding(dir, needle.as_bytes()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_erased_over_http_leaves_no_byte_after_a_scavenge() {
    use strata_core::{ScavengeOptions, Snapshot, SnapshotStore, StoreAdmin};
    use strata_log::snapshot::LogSnapshotStore;
    const SECRET: &str = "SECRET-SERVED-0b6e";
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        LogStore::open(LogConfig::new(dir.path()).max_segment_bytes(16 * 1024))
            .await
            .unwrap(),
    );
    let path = dir.path().to_path_buf();
    let snapshots = Arc::new(
        tokio::task::spawn_blocking(move || LogSnapshotStore::open(path))
            .await
            .unwrap()
            .unwrap(),
    );
    let backing = strata_server::Backing {
        admin: Some(store.clone() as Arc<dyn StoreAdmin>),
        snapshots: Some(snapshots.clone()),
        groups: None,
    };
    let app = strata_server::router_with_backing(
        store.clone() as Arc<dyn EventStore>,
        backing,
        ServerConfig::default(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop_tx, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        serve_with(listener, app, &ServerConfig::default(), None, async {
            let _ = stopped.await;
        })
        .await
    });
    let client = Client::new(&url).unwrap();
    let person = StreamId::new("person-7").unwrap();
    let other = StreamId::new("other-1").unwrap();
    for i in 0..120 {
        let (s, marker) = if i % 2 == 0 {
            (&person, SECRET)
        } else {
            (&other, "kept")
        };
        let e = NewEvent::json(
            "Noted",
            &serde_json::json!({ "note": format!("{marker}-{i}"), "pad": "p".repeat(200) }),
        )
        .unwrap();
        client.append(s, ExpectedVersion::Any, &[e]).await.unwrap();
    }
    for (s, marker) in [(&person, SECRET), (&other, "kept")] {
        snapshots
            .save(Snapshot {
                stream: s.clone(),
                aggregate_type: "person".into(),
                version: 60,
                schema_version: 1,
                state: format!("{{\"name\":\"{marker}\"}}").into_bytes().into(),
                taken_at: strata_core::clock::from_micros(1_700_000_000_000_000),
            })
            .await
            .unwrap();
    }
    assert!(files_holding(dir.path(), SECRET).len() >= 3);

    client
        .erase(&person, ExpectedVersion::Exact(60))
        .await
        .unwrap();
    assert_eq!(snapshots.load(&person, u64::MAX).await.unwrap(), None);
    assert!(snapshots.load(&other, u64::MAX).await.unwrap().is_some());
    let report = store
        .scavenge(ScavengeOptions { erased_only: true })
        .await
        .unwrap();
    assert_eq!(report.events_removed, 60, "{report:?}");
    stop_tx.send(()).unwrap();
    task.await.unwrap().unwrap();
    drop(snapshots);
    let mut store = store;
    let store = loop {
        match Arc::try_unwrap(store) {
            Ok(s) => break s,
            Err(still_shared) => {
                store = still_shared;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    };
    store.close().await.unwrap();
    assert_eq!(
        files_holding(dir.path(), SECRET),
        Vec::<std::path::PathBuf>::new(),
        "the erased stream's data is still in these files"
    );
    assert!(!files_holding(dir.path(), "kept").is_empty());
    let snapshots = tokio::task::spawn_blocking({
        let path = dir.path().to_path_buf();
        move || LogSnapshotStore::open(path)
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(snapshots.load(&person, u64::MAX).await.unwrap(), None);
    let report = strata_log::verify::verify(dir.path(), &strata_log::io::FsStorage).unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);
}
