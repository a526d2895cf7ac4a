//! A real `strata-server` on a loopback port over a `MemoryStore`.

#![allow(dead_code, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use strata_core::group::LocalGroups;
use strata_core::{EventStore, MemoryStore};
use strata_server::{router_with_backing, serve_with, Backing, ServerConfig, TlsAcceptor};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub struct TestServer {
    pub addr: SocketAddr,
    pub url: String,
    pub store: Arc<MemoryStore>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::with(ServerConfig::default(), None).await
    }

    pub async fn with(config: ServerConfig, tls: Option<TlsAcceptor>) -> Self {
        let store = Arc::new(MemoryStore::new());
        Self::on(store, "127.0.0.1:0".parse().unwrap(), config, tls).await
    }

    /// A server over `store` listening on `addr`.
    pub async fn on(
        store: Arc<MemoryStore>,
        addr: SocketAddr,
        config: ServerConfig,
        tls: Option<TlsAcceptor>,
    ) -> Self {
        let scheme = if tls.is_some() { "https" } else { "http" };
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let store_dyn = store.clone() as Arc<dyn EventStore>;
        let backing = Backing {
            groups: Some(Arc::new(LocalGroups::new(store_dyn.clone()))),
            ..Backing::default()
        };
        let app = router_with_backing(store_dyn, backing, config.clone());
        let task = tokio::spawn(async move {
            serve_with(listener, app, &config, tls, async {
                let _ = rx.await;
            })
            .await
        });
        TestServer {
            addr,
            url: format!("{scheme}://{}", addr),
            store,
            stop: Some(tx),
            task: Some(task),
        }
    }

    /// Shuts the server down gracefully and waits for it.
    pub async fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }
}

/// A file of `strata-server`'s test data (the localhost certificate).
pub fn server_test_data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../strata-server/tests/data")
        .join(name)
}
