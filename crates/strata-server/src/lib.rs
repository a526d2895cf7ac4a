//! # strata-server
//!
//! Strata's HTTP/JSON API over any [`EventStore`], with server-sent-event
//! subscriptions. It names no backend: the caller (the `strata` binary)
//! builds a store and hands it over.
//!
//! ```no_run
//! # use std::sync::Arc;
//! # async fn run() -> std::io::Result<()> {
//! let store = Arc::new(strata_core::MemoryStore::new());
//! let app = strata_server::router(store, strata_server::ServerConfig::default());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! # drop(stop);
//! // Send on `stop` (say, on Ctrl-C) to shut down gracefully.
//! strata_server::serve(listener, app, async {
//!     let _ = stopped.await;
//! })
//! .await
//! # }
//! ```
//!
//! The endpoints, their bodies and status codes are described in
//! `docs/http-api.md`.

#![cfg_attr(not(test), deny(clippy::unwrap_used))]

mod body;
mod config;
mod error;
mod pages;
mod state;
mod streams;
mod subscribe;
mod wire;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use strata_core::EventStore;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

pub use config::ServerConfig;
pub use error::ApiError;

use state::AppState;
use subscribe::ShutdownSignal;

/// The API's routes over `store`, with the limits of `config`.
///
/// Serve it with [`serve`] (which also ends open subscriptions on shutdown)
/// or nest it into a larger `axum` application.
pub fn router(store: Arc<dyn EventStore>, config: ServerConfig) -> Router {
    let state = AppState {
        store,
        subscriptions: Arc::new(Semaphore::new(config.max_open_subscriptions)),
        config: Arc::new(config),
    };
    let timeout_ms = state.config.request_timeout_ms;
    let requests = Router::new()
        .route("/", get(pages::index))
        .route("/health", get(pages::health))
        .route(
            "/streams/{stream}",
            post(streams::append)
                .get(streams::read_stream)
                .delete(streams::delete),
        )
        .route("/multi", post(streams::append_multi))
        .route("/all", get(streams::read_all))
        .layer(middleware::from_fn_with_state(timeout_ms, with_timeout));
    // Subscriptions last as long as the client wants: no request timeout.
    let subscriptions = Router::new()
        .route("/subscribe/all", get(subscribe::subscribe_all))
        .route(
            "/subscribe/streams/{stream}",
            get(subscribe::subscribe_stream),
        );
    requests
        .merge(subscriptions)
        .fallback(pages::not_found)
        .method_not_allowed_fallback(pages::method_not_allowed)
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes))
        .with_state(state)
}

/// Answers 503 when a request (body upload included) takes longer than
/// `request_timeout_ms`. An append cut off this way may still commit: retry
/// it with the same event ids, which is always safe.
async fn with_timeout(State(timeout_ms): State<u64>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(Duration::from_millis(timeout_ms), next.run(req)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            format!("the request took longer than {timeout_ms} ms"),
        )
        .into_response(),
    }
}

/// Serves `router` on `listener` until `shutdown` completes, then stops
/// accepting connections, ends open subscriptions with a final
/// `error` event (`shutting_down`), lets in-flight requests finish, and returns.
pub async fn serve<F>(listener: TcpListener, router: Router, shutdown: F) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let (stopping_tx, stopping_rx) = watch::channel(false);
    let app = router.layer(Extension(ShutdownSignal(stopping_rx)));
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            tracing::info!("shutting down: finishing in-flight requests");
            let _ = stopping_tx.send(true);
        })
        .await
}
