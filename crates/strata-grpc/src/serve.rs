//! Serving the services: cleartext HTTP/2 with prior knowledge (the
//! clients' `tls=false`).

use std::future::Future;
use std::sync::Arc;

use strata_core::EventStore;
use strata_server::ApiKeys;
use tokio::net::TcpListener;
use tonic::transport::Server;

use crate::auth::Auth;
use crate::features::Features;
use crate::proto::features::server_features_server::ServerFeaturesServer;
use crate::proto::streams::streams_server::StreamsServer;
use crate::streams::StreamsService;

/// The largest message a call may send or receive.
pub const MAX_MESSAGE_BYTES: usize = 64 << 20;

/// Serves the services over `store` on `listener`, checking callers
/// against `keys`, until `shutdown` completes; calls still open then are
/// ended.
pub async fn serve<F>(
    listener: TcpListener,
    store: Arc<dyn EventStore>,
    keys: ApiKeys,
    shutdown: F,
) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let auth = Auth::new(keys);
    let streams = StreamsServer::new(StreamsService::new(store, auth))
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let server = Server::builder()
        .add_service(ServerFeaturesServer::new(Features))
        .add_service(streams);
    let incoming = futures::stream::unfold(listener, |listener| async move {
        let accepted = listener.accept().await.map(|(conn, _)| {
            let _ = conn.set_nodelay(true);
            conn
        });
        Some((accepted, listener))
    });
    server
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
        .map_err(std::io::Error::other)
}
