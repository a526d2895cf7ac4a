//! The accept loop: plain TCP or TLS, hyper's HTTP/1.1 with a header read
//! timeout, a cap on open connections, and a bounded graceful shutdown.
//!
//! `axum::serve` offers none of the timeouts, so connections are driven here
//! with `hyper::server::conn::http1` directly.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::write_timeout::WriteTimeout;

/// hyper's smallest read buffer: `max_request_head_bytes` is raised to it.
const MIN_REQUEST_HEAD_BYTES: usize = 8 * 1024;

/// How long the accept loop pauses after an error that is not about one
/// connection (say, out of file descriptors), so it does not spin.
const ACCEPT_ERROR_BACKOFF_MS: u64 = 100;

/// The connection limits of one server.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ConnLimits {
    pub header_read_timeout: Duration,
    pub shutdown_grace: Duration,
    pub max_connections: usize,
    pub max_request_head_bytes: usize,
    pub write_timeout: Duration,
}

/// Accepts until `shutdown`, then asks every connection to finish (idle
/// ones close at once, in-flight requests complete, subscriptions are ended
/// through `stopping`), and after `shutdown_grace` drops whatever is left.
pub(crate) async fn run<F>(
    listener: TcpListener,
    app: Router,
    tls: Option<TlsAcceptor>,
    limits: ConnLimits,
    stopping_tx: watch::Sender<bool>,
    shutdown: F,
) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let open = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut conns = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            biased;
            _ = &mut shutdown => break,
            p = open.clone().acquire_owned() => match p {
                Ok(p) => p,
                // The semaphore is never closed.
                Err(_) => break,
            },
        };
        let (tcp, peer) = tokio::select! {
            biased;
            _ = &mut shutdown => break,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(ACCEPT_ERROR_BACKOFF_MS)).await;
                    continue;
                }
            },
        };
        while conns.try_join_next().is_some() {}
        conns.spawn(connection(
            tcp,
            peer,
            app.clone(),
            tls.clone(),
            limits,
            stopping_tx.subscribe(),
            permit,
        ));
    }
    drop(listener);
    tracing::info!(
        connections = conns.len(),
        grace_ms = limits.shutdown_grace.as_millis() as u64,
        "shutting down: finishing in-flight requests"
    );
    let _ = stopping_tx.send(true);
    let drained = tokio::time::timeout(limits.shutdown_grace, async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            connections = conns.len(),
            "shutdown grace is over: dropping the connections still open"
        );
        conns.shutdown().await;
    }
    Ok(())
}

async fn connection(
    tcp: TcpStream,
    peer: SocketAddr,
    app: Router,
    tls: Option<TlsAcceptor>,
    limits: ConnLimits,
    stopping: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
) {
    let _ = tcp.set_nodelay(true);
    match tls {
        None => drive(tcp, app, limits, stopping).await,
        Some(acceptor) => {
            // The handshake gets the header read timeout too: a client that
            // stalls in it holds a connection just like a slow header.
            match tokio::time::timeout(limits.header_read_timeout, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => drive(stream, app, limits, stopping).await,
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        }
    }
}

async fn drive<S>(io: S, app: Router, limits: ConnLimits, mut stopping: watch::Receiver<bool>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let mut app = app.clone();
        async move { tower_service::Service::call(&mut app, req.map(axum::body::Body::new)).await }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_request_head_bytes.max(MIN_REQUEST_HEAD_BYTES))
        .keep_alive(true);
    let io = WriteTimeout::new(io, limits.write_timeout);
    let conn = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        }
        _ = stopped(&mut stopping) => {
            conn.as_mut().graceful_shutdown();
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error while stopping");
            }
        }
    }
}

/// Resolves once shutdown begins (or the server is gone).
async fn stopped(stopping: &mut watch::Receiver<bool>) {
    loop {
        if *stopping.borrow_and_update() {
            return;
        }
        if stopping.changed().await.is_err() {
            return;
        }
    }
}
