//! Serving the services: cleartext HTTP/2 with prior knowledge (the
//! clients' `tls=false`), or TLS.

use std::future::Future;
use std::sync::Arc;

use strata_core::group::ConsumerGroups;
use strata_core::EventStore;
use strata_server::{ApiKeys, TlsAcceptor};
use tokio::net::TcpListener;
use tonic::transport::server::Router;
use tonic::transport::Server;

use crate::auth::Auth;
use crate::conn;
use crate::features::Features;
use crate::persistent::PersistentService;
use crate::proto::features::server_features_server::ServerFeaturesServer;
use crate::proto::persistent::persistent_subscriptions_server::PersistentSubscriptionsServer;
use crate::proto::streams::streams_server::StreamsServer;
use crate::proto::v2::streams_service_server::StreamsServiceServer;
use crate::streams::StreamsService;
use crate::v2::V2StreamsService;

/// The largest message a call may send or receive.
pub const MAX_MESSAGE_BYTES: usize = 64 << 20;

/// The most calls one connection may have open at once (HTTP/2 streams).
pub const MAX_CALLS_PER_CONNECTION: u32 = 1_024;

/// Bytes a client may send on one call before the server's window update:
/// a 100-event append goes out whole instead of in window-sized steps.
pub const STREAM_WINDOW_BYTES: u32 = 1 << 20;

/// The same for all calls of one connection together (many appenders
/// share one connection).
pub const CONNECTION_WINDOW_BYTES: u32 = 16 << 20;

/// What the endpoint serves: the store, its consumer groups (persistent
/// subscriptions) when it has them, and the keys callers must present.
#[derive(Clone)]
pub struct Services {
    /// The store every call reads and writes.
    pub store: Arc<dyn EventStore>,
    /// The store's consumer groups; without them persistent subscriptions
    /// are not served.
    pub groups: Option<Arc<dyn ConsumerGroups>>,
    /// The API keys callers authenticate with (none: loopback, open).
    pub keys: ApiKeys,
}

impl Services {
    /// `store` alone, without consumer groups, open to every caller.
    pub fn new(store: Arc<dyn EventStore>) -> Self {
        Self {
            store,
            groups: None,
            keys: ApiKeys::none(),
        }
    }

    /// The same, serving `groups` as persistent subscriptions.
    #[must_use]
    pub fn with_groups(mut self, groups: Arc<dyn ConsumerGroups>) -> Self {
        self.groups = Some(groups);
        self
    }

    /// The same, checking callers against `keys`.
    #[must_use]
    pub fn with_keys(mut self, keys: ApiKeys) -> Self {
        self.keys = keys;
        self
    }
}

/// Serves `services` on `listener` in cleartext (HTTP/2 with prior
/// knowledge) until `shutdown` completes; calls still open then are ended.
pub async fn serve<F>(listener: TcpListener, services: Services, shutdown: F) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let incoming = received(conn::cleartext(listener));
    router(services)
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
        .map_err(std::io::Error::other)
}

/// The same over TLS (ALPN `h2`: see `strata_server::tls_acceptor_h2`).
pub async fn serve_tls<F>(
    listener: TcpListener,
    services: Services,
    acceptor: TlsAcceptor,
    shutdown: F,
) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let incoming = received(conn::tls(listener, acceptor));
    router(services)
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
        .map_err(std::io::Error::other)
}

fn received<T: Send + 'static>(
    rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures::Stream<Item = T> + Send + 'static {
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) })
}

/// The services, each with the message size limit.
fn router(services: Services) -> Router {
    let auth = Auth::new(services.keys);
    let streams = StreamsServer::new(StreamsService::new(
        Arc::clone(&services.store),
        auth.clone(),
    ))
    .max_decoding_message_size(MAX_MESSAGE_BYTES)
    .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let v2 = StreamsServiceServer::new(V2StreamsService::new(
        Arc::clone(&services.store),
        auth.clone(),
    ))
    .max_decoding_message_size(MAX_MESSAGE_BYTES)
    .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let features = Features {
        persistent: services.groups.is_some(),
    };
    let persistent = services.groups.map(|groups| {
        let service = PersistentService::new(Arc::clone(&services.store), groups, auth.clone());
        PersistentSubscriptionsServer::new(service)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
    });
    Server::builder()
        .max_concurrent_streams(Some(MAX_CALLS_PER_CONNECTION))
        .initial_stream_window_size(Some(STREAM_WINDOW_BYTES))
        .initial_connection_window_size(Some(CONNECTION_WINDOW_BYTES))
        .add_service(ServerFeaturesServer::new(features))
        .add_optional_service(persistent)
        .add_service(streams)
        .add_service(v2)
}
