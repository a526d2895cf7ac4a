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
//! `docs/http-api.md`; `GET /openapi.json` serves the same as OpenAPI 3.1.
//! API keys ([`ApiKeys`] in [`ServerConfig::api_keys`]), TLS
//! ([`tls_acceptor`], [`serve_with`]) and the connection limits are covered
//! there too and in ADR 0006.

#![cfg_attr(not(test), deny(clippy::unwrap_used))]

mod admin;
mod auth;
mod body;
mod budget;
mod config;
mod conn;
mod console;
mod dcb;
mod disk;
mod erasures;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod groups;
mod held;
mod metrics;
mod openapi;
mod page;
mod queue;
mod service;
mod sse;
mod state;
mod stream_list;
mod stream_metadata;
mod streams;
mod subscribe;
mod tls;
mod whoami;
mod write_timeout;

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Extension, Router};
use strata_core::group::ConsumerGroups;
use strata_core::{EventStore, SnapshotStore, StoreAdmin};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

pub use auth::{
    sha256_hex, ApiKey, ApiKeys, KeyConfigError, Role, ALL_STREAMS, API_KEYS_ENV, API_KEY_HEADER,
    MAX_API_KEYS, MAX_PREFIXES_PER_KEY,
};
pub use config::ServerConfig;
pub use erasures::MAX_ERASED_PER_SUBSCRIPTION;
pub use error::ApiError;
pub use openapi::openapi_json;
pub use stream_list::MAX_STREAMS_EXAMINED;
pub use tls::{tls_acceptor, tls_acceptor_h2, TlsAcceptor, TlsConfigError};

use metrics::Metrics;
use state::AppState;
use subscribe::ShutdownSignal;

/// The API's routes over `store`, with the limits and keys of `config`.
///
/// Serve it with [`serve`] or [`serve_with`] (which also end open
/// subscriptions on shutdown) or nest it into a larger `axum` application.
/// `POST /admin/backup` answers 501 here; see [`router_with_admin`].
pub fn router(store: Arc<dyn EventStore>, config: ServerConfig) -> Router {
    router_with_admin(store, None, config)
}

/// [`router`], with the backups `admin` offers (the caller, which knows the
/// backend, hands them over): `POST /admin/backup` writes into
/// [`ServerConfig::backup_dir`].
pub fn router_with_admin(
    store: Arc<dyn EventStore>,
    admin: Option<Arc<dyn StoreAdmin>>,
    config: ServerConfig,
) -> Router {
    router_with_backing(
        store,
        Backing {
            admin,
            ..Backing::default()
        },
        config,
    )
}

/// What the caller, which knows the backend, hands the server beside the
/// store.
#[derive(Clone, Default)]
pub struct Backing {
    /// Backups and scavenging (`POST /admin/backup`, `POST /admin/scavenge`).
    pub admin: Option<Arc<dyn StoreAdmin>>,
    /// The snapshot store kept with the store, if any: erasing a stream
    /// (`DELETE /streams/{s}?erase=true`) erases its snapshots there too.
    pub snapshots: Option<Arc<dyn SnapshotStore>>,
    /// The consumer groups over the store (`/groups/...`, which answer 501
    /// without them).
    pub groups: Option<Arc<dyn ConsumerGroups>>,
}

impl std::fmt::Debug for Backing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backing")
            .field("admin", &self.admin.is_some())
            .field("snapshots", &self.snapshots.is_some())
            .field("groups", &self.groups.is_some())
            .finish()
    }
}

/// [`router`], with what `backing` offers.
pub fn router_with_backing(
    store: Arc<dyn EventStore>,
    backing: Backing,
    config: ServerConfig,
) -> Router {
    let Backing {
        admin,
        snapshots,
        groups,
    } = backing;
    let key_subscriptions: HashMap<String, Arc<Semaphore>> = config
        .api_keys
        .iter()
        .map(|k| {
            (
                k.name().to_string(),
                Arc::new(Semaphore::new(config.max_subscriptions_per_key)),
            )
        })
        .collect();
    let keys = Arc::new(config.api_keys.clone());
    let metrics = Arc::new(Metrics::default());
    let state = AppState {
        store,
        admin,
        snapshots,
        groups,
        backup_running: Arc::new(tokio::sync::Mutex::new(())),
        subscriptions: Arc::new(Semaphore::new(config.max_open_subscriptions)),
        key_subscriptions: Arc::new(key_subscriptions),
        subscription_bytes: Arc::new(budget::Pool::new(
            config.subscription_buffers_total_bytes,
            Duration::from_millis(
                config
                    .slow_consumer_timeout_ms
                    .saturating_add(config.write_timeout_ms),
            ),
        )),
        read_budget: Arc::new(page::ReadBudget::new(config.max_read_bytes_in_flight)),
        metrics: metrics.clone(),
        erasures: Arc::new(erasures::Erasures::default()),
        config: Arc::new(config),
    };
    let timeout_ms = state.config.request_timeout_ms;
    let requests = Router::new()
        .route("/", get(service::index))
        .route("/health", get(service::health))
        .route("/metrics", get(metrics::metrics))
        .route("/openapi.json", get(openapi::serve_openapi))
        .route("/ui", get(console::page))
        .route("/ui/", get(console::page))
        .route("/ui/{asset}", get(console::file))
        .route("/auth/whoami", get(whoami::whoami))
        .route("/streams", get(stream_list::list_streams))
        .route(
            "/streams/{stream}",
            post(streams::append)
                .get(streams::read_stream)
                .delete(streams::delete),
        )
        .route(
            "/streams/{stream}/metadata",
            get(stream_metadata::get_metadata).put(stream_metadata::put_metadata),
        )
        .route("/multi", post(streams::append_multi))
        .route("/all", get(streams::read_all))
        .route("/dcb/read", post(dcb::read))
        .route("/dcb/append", post(dcb::append))
        .route("/groups", get(groups::list_groups))
        .route(
            "/groups/{group}",
            put(groups::put_group)
                .get(groups::get_group)
                .delete(groups::delete_group),
        )
        .route("/groups/{group}/ack", post(groups::ack))
        .route("/groups/{group}/nack", post(groups::nack))
        .route("/groups/{group}/parked", get(groups::parked))
        .route("/groups/{group}/parked/replay", post(groups::replay))
        .route("/groups/{group}/parked/delete", post(groups::delete_parked))
        .layer(middleware::from_fn_with_state(timeout_ms, with_timeout));
    // Subscriptions last as long as the client wants: no request timeout.
    // A group read waits up to its `wait_ms` (at most
    // `strata_core::group::MAX_READ_WAIT`) instead of the request timeout.
    let subscriptions = Router::new()
        .route("/groups/{group}/read", post(groups::read))
        .route("/groups/{group}/subscribe", get(groups::subscribe))
        .route("/subscribe/all", get(subscribe::subscribe_all))
        .route("/dcb/subscribe", get(subscribe::subscribe_dcb))
        .route(
            "/subscribe/streams/{stream}",
            get(subscribe::subscribe_stream),
        );
    // A backup takes as long as the store is large: no request timeout.
    let maintenance = Router::new()
        .route("/admin/backup", post(admin::backup))
        .route("/admin/scavenge", post(admin::scavenge));
    requests
        .merge(subscriptions)
        .merge(maintenance)
        .fallback(service::not_found)
        .method_not_allowed_fallback(service::method_not_allowed)
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes))
        .layer(middleware::from_fn_with_state(keys, auth::authenticate))
        .layer(middleware::from_fn_with_state(
            metrics,
            metrics::count_requests,
        ))
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

/// Refusing to listen where an open server could be reached.
#[derive(Debug, thiserror::Error)]
#[error("refusing to listen on {addr}: without API keys the server only starts on a loopback address (127.0.0.1 or ::1); give keys with --keys FILE or STRATA_API_KEYS")]
pub struct ListenRefused {
    /// The address asked for.
    pub addr: SocketAddr,
}

/// The rule for where a server may listen: anywhere with API keys, only on
/// a loopback address without.
///
/// ```
/// use strata_server::{check_listen, ApiKeys};
/// assert!(check_listen("127.0.0.1:7700".parse().unwrap(), &ApiKeys::none()).is_ok());
/// assert!(check_listen("0.0.0.0:7700".parse().unwrap(), &ApiKeys::none()).is_err());
/// ```
pub fn check_listen(addr: SocketAddr, keys: &ApiKeys) -> Result<(), ListenRefused> {
    if keys.is_empty() && !addr.ip().is_loopback() {
        return Err(ListenRefused { addr });
    }
    Ok(())
}

/// Serves `router` on `listener` with the default connection limits and no
/// TLS; see [`serve_with`].
pub async fn serve<F>(listener: TcpListener, router: Router, shutdown: F) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    serve_with(listener, router, &ServerConfig::default(), None, shutdown).await
}

/// Serves `router` on `listener`, over TLS when `tls` is given, with the
/// connection limits of `config` (`header_read_timeout_ms`,
/// `max_request_head_bytes`, `max_connections`, `shutdown_grace_ms`), until
/// `shutdown` completes.
///
/// Then it stops accepting connections, ends open subscriptions with a final
/// `error` event (`shutting_down`), lets in-flight requests finish for at
/// most `shutdown_grace_ms`, drops whatever is still open, and returns. The
/// caller closes the store after it returns, so every acknowledged append
/// is in the store before it closes.
pub async fn serve_with<F>(
    listener: TcpListener,
    router: Router,
    config: &ServerConfig,
    tls: Option<TlsAcceptor>,
    shutdown: F,
) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let (stopping_tx, stopping_rx) = watch::channel(false);
    let app = router.layer(Extension(ShutdownSignal(stopping_rx)));
    let limits = conn::ConnLimits {
        header_read_timeout: Duration::from_millis(config.header_read_timeout_ms.max(1)),
        shutdown_grace: Duration::from_millis(config.shutdown_grace_ms),
        max_connections: config.max_connections,
        max_request_head_bytes: config.max_request_head_bytes,
        write_timeout: Duration::from_millis(config.write_timeout_ms.max(1)),
    };
    conn::run(listener, app, tls, limits, stopping_tx, shutdown).await
}
