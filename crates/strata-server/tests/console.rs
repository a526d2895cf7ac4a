//! `GET /ui`: the web console's files, served without a key, each with its
//! content type, ETag and the strict Content-Security-Policy; and the store
//! facts `/metrics` gives the console's health page.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Backend, Harness};
use strata_core::Limits;
use strata_server::{sha256_hex, ApiKey, ApiKeys, Role, ServerConfig};

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

async fn keyed(config: ServerConfig) -> Harness {
    let keys = ApiKeys::new(vec![ApiKey::new(
        "ops",
        &sha256_hex("ops-secret"),
        Role::Admin,
        vec!["*".into()],
    )
    .unwrap()])
    .unwrap();
    Harness::with(
        Backend::Memory,
        Limits::default(),
        ServerConfig {
            api_keys: keys,
            ..config
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_is_served_without_a_key_with_a_strict_policy() {
    let h = keyed(ServerConfig::default()).await;
    for (path, content_type) in [
        ("/ui", "text/html"),
        ("/ui/", "text/html"),
        ("/ui/index.html", "text/html"),
        ("/ui/app.js", "text/javascript"),
        ("/ui/page-health.js", "text/javascript"),
        ("/ui/console.css", "text/css"),
    ] {
        let r = h.get(path).await;
        assert_eq!(r.status, 200, "{path}");
        assert!(
            r.header("content-type").unwrap().starts_with(content_type),
            "{path}: {:?}",
            r.header("content-type")
        );
        assert_eq!(r.header("content-security-policy"), Some(CSP), "{path}");
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
        assert!(r.header("etag").unwrap().starts_with('"'));
    }
    let page = h.get("/ui").await.text();
    assert!(page.contains(r#"<script type="module" src="/ui/app.js">"#));
    // The data still needs the key.
    assert_eq!(h.get("/all").await.status, 401);
    // The index links the console.
    assert!(h.get("/").await.text().contains(r#"href="/ui""#));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unchanged_file_is_answered_304_and_an_unknown_one_404() {
    let h = keyed(ServerConfig::default()).await;
    let first = h.get("/ui/app.js").await;
    let etag = first.header("etag").unwrap().to_string();
    let again = h.get_with("/ui/app.js", &[("if-none-match", &etag)]).await;
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    assert_eq!(again.header("etag"), Some(etag.as_str()));
    let other = h.get_with("/ui/api.js", &[("if-none-match", &etag)]).await;
    assert_eq!(other.status, 200);
    let missing = h.get("/ui/nothing.js").await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.header("content-security-policy"), Some(CSP));
    assert_eq!(h.get("/ui/../streams/x").await.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_tell_the_store_kind_version_and_disk_use() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("segment"), vec![7u8; 4096]).unwrap();
    let h = Harness::with(
        Backend::Memory,
        Limits::default(),
        ServerConfig {
            store_kind: Some("memory".into()),
            store_dir: Some(dir.path().to_path_buf()),
            ..ServerConfig::default()
        },
    )
    .await;
    let text = h.get("/metrics").await.text();
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        text.contains(&format!(
            "strata_store_info{{kind=\"memory\",version=\"{version}\"}} 1\n"
        )),
        "{text}"
    );
    assert!(text.contains("strata_store_disk_bytes 4096\n"), "{text}");
    // Without a directory there is no disk series, and the kind is unknown.
    let plain = Harness::memory().await.get("/metrics").await.text();
    assert!(plain.contains("strata_store_info{kind=\"unknown\""));
    assert!(!plain.contains("strata_store_disk_bytes"));
}
