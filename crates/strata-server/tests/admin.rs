//! `POST /admin/backup` and `POST /admin/scavenge`: the admin role, 501
//! without a backup directory or without a store that offers them, the
//! report as JSON, and the scavenge gauges in `/metrics`. The store's
//! backups are faked here (the server names no backend; the log store's
//! own backups are tested in its crate and over `strata serve`).

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::request;
use std::sync::Mutex;
use strata_core::{
    async_trait, BackupReport, EventStore, MemoryStore, Position, ScavengeOptions, ScavengeReport,
    ScavengeStatus, StoreAdmin,
};
use strata_server::{
    router_with_admin, serve_with, sha256_hex, ApiKey, ApiKeys, Role, ServerConfig,
};

const ADMIN: &str = "admin-secret";
const WRITER: &str = "writer-secret";

/// Backups that record where they were asked to go.
#[derive(Default)]
struct FakeAdmin {
    calls: Mutex<Vec<PathBuf>>,
    scavenges: Mutex<Vec<ScavengeOptions>>,
}

#[async_trait]
impl StoreAdmin for FakeAdmin {
    async fn backup(&self, dest: &Path) -> strata_core::Result<BackupReport> {
        self.calls.lock().unwrap().push(dest.to_path_buf());
        Ok(BackupReport {
            position: Position(42),
            files: 3,
            files_copied: 2,
            bytes: 3000,
            bytes_copied: 1000,
            millis: 7,
        })
    }

    async fn scavenge(&self, options: ScavengeOptions) -> strata_core::Result<ScavengeReport> {
        self.scavenges.lock().unwrap().push(options);
        Ok(ScavengeReport {
            segments_scanned: 5,
            segments_rewritten: 2,
            bytes_before: 2000,
            bytes_after: 500,
            events_removed: 30,
            millis: 9,
        })
    }

    fn scavenge_status(&self) -> Option<ScavengeStatus> {
        Some(ScavengeStatus {
            segments_rewritten: 2,
            events_removed: 30,
            bytes_reclaimed: 1500,
            ..Default::default()
        })
    }
}

fn keys() -> ApiKeys {
    let k = |name: &str, secret: &str, role| {
        ApiKey::new(name, &sha256_hex(secret), role, vec!["*".into()]).unwrap()
    };
    ApiKeys::new(vec![
        k("admin", ADMIN, Role::Admin),
        k("writer", WRITER, Role::Write),
    ])
    .unwrap()
}

/// A server over a memory store with `admin` and `config`; its address.
async fn start(admin: Option<Arc<dyn StoreAdmin>>, config: ServerConfig) -> std::net::SocketAddr {
    let store: Arc<dyn EventStore> = Arc::new(MemoryStore::new());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = router_with_admin(store, admin, config.clone());
    tokio::spawn(
        async move { serve_with(listener, app, &config, None, std::future::pending()).await },
    );
    addr
}

fn bearer(key: &str) -> String {
    format!("Bearer {key}")
}

#[tokio::test]
async fn a_backup_needs_an_admin_key_and_answers_with_its_report() {
    let fake = Arc::new(FakeAdmin::default());
    let dir = PathBuf::from("/backups/strata");
    let config = ServerConfig {
        api_keys: keys(),
        backup_dir: Some(dir.clone()),
        ..ServerConfig::default()
    };
    let addr = start(Some(fake.clone()), config).await;

    request(addr, "POST", "/admin/backup", &[], None)
        .await
        .assert_error(401, "unauthorized");
    let writer = bearer(WRITER);
    request(
        addr,
        "POST",
        "/admin/backup",
        &[("Authorization", &writer)],
        None,
    )
    .await
    .assert_error(403, "forbidden");
    assert!(
        fake.calls.lock().unwrap().is_empty(),
        "no backup without the admin role"
    );

    let admin = bearer(ADMIN);
    let r = request(
        addr,
        "POST",
        "/admin/backup",
        &[("Authorization", &admin)],
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["position"], 42);
    assert_eq!(v["files"], 3);
    assert_eq!(v["files_copied"], 2);
    assert_eq!(v["bytes"], 3000);
    assert_eq!(v["bytes_copied"], 1000);
    assert_eq!(v["millis"], 7);
    assert_eq!(*fake.calls.lock().unwrap(), vec![dir]);
    // Only POST.
    request(
        addr,
        "GET",
        "/admin/backup",
        &[("Authorization", &admin)],
        None,
    )
    .await
    .assert_error(405, "method_not_allowed");
}

#[tokio::test]
async fn without_a_backup_directory_or_backups_the_answer_is_501() {
    let fake = Arc::new(FakeAdmin::default());
    let addr = start(Some(fake.clone()), ServerConfig::default()).await;
    let v = request(addr, "POST", "/admin/backup", &[], None)
        .await
        .assert_error(501, "unsupported");
    assert!(
        v["message"].as_str().unwrap().contains("--backup-dir"),
        "{v}"
    );
    assert!(fake.calls.lock().unwrap().is_empty());

    let config = ServerConfig {
        backup_dir: Some(PathBuf::from("/backups/strata")),
        ..ServerConfig::default()
    };
    let addr = start(None, config).await;
    let v = request(addr, "POST", "/admin/backup", &[], None)
        .await
        .assert_error(501, "unsupported");
    assert!(v["message"].as_str().unwrap().contains("backups"), "{v}");
}

#[tokio::test]
async fn a_scavenge_needs_an_admin_key_and_shows_in_metrics() {
    let fake = Arc::new(FakeAdmin::default());
    let config = ServerConfig {
        api_keys: keys(),
        ..ServerConfig::default()
    };
    let addr = start(Some(fake.clone()), config).await;
    let writer = bearer(WRITER);
    request(
        addr,
        "POST",
        "/admin/scavenge",
        &[("Authorization", &writer)],
        None,
    )
    .await
    .assert_error(403, "forbidden");
    let admin = bearer(ADMIN);
    let r = request(
        addr,
        "POST",
        "/admin/scavenge?erased_only=true",
        &[("Authorization", &admin)],
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(
        (
            v["segments_rewritten"].as_u64(),
            v["events_removed"].as_u64()
        ),
        (Some(2), Some(30))
    );
    assert_eq!(v["bytes_before"], 2000);
    assert_eq!(v["bytes_after"], 500);
    assert_eq!(
        *fake.scavenges.lock().unwrap(),
        vec![ScavengeOptions { erased_only: true }]
    );
    let m = request(addr, "GET", "/metrics", &[("Authorization", &admin)], None).await;
    let text = m.text();
    assert!(
        text.contains("strata_scavenge_bytes_reclaimed_total 1500\n"),
        "{text}"
    );
    assert!(text.contains("strata_scavenge_running 0\n"), "{text}");
}

#[tokio::test]
async fn a_store_that_does_not_scavenge_answers_501() {
    let addr = start(None, ServerConfig::default()).await;
    request(addr, "POST", "/admin/scavenge", &[], None)
        .await
        .assert_error(501, "unsupported");
}
