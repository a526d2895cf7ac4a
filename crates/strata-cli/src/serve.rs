//! `strata serve`: the HTTP/JSON API over any store, until SIGINT or SIGTERM.

use std::net::SocketAddr;

use strata_server::ServerConfig;

use crate::store_spec::{OpenOptions, StoreSpec};

/// Where the server listens unless told otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7700";

/// Serves `spec` on `listen` until a signal, then stops accepting, lets
/// in-flight requests finish and closes the store (sync and checkpoint).
pub async fn run(
    spec: StoreSpec,
    options: OpenOptions,
    listen: SocketAddr,
) -> Result<(), Box<dyn std::error::Error>> {
    // API keys are not built yet, so only a loopback address is allowed: an
    // open server must never be reachable from another machine.
    if !listen.ip().is_loopback() {
        return Err(format!(
            "refusing to listen on {listen}: without API keys the server only starts on a loopback address (127.0.0.1 or ::1)"
        )
        .into());
    }
    let open = spec.open(&options).await?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let local = listener.local_addr()?;
    eprintln!("strata serving {spec} on http://{local} (Ctrl-C or SIGTERM to stop)");
    let router = strata_server::router(open.store(), ServerConfig::default());
    strata_server::serve(listener, router, shutdown_signal()).await?;
    eprintln!("strata: stopped accepting; closing the store");
    open.close().await?;
    eprintln!("strata: store closed");
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
