//! Accepting connections: a bound on how many are open, and TLS
//! handshakes (with their own time limit) off the accept loop.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use strata_server::TlsAcceptor;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tonic::transport::server::Connected;

/// The most connections the endpoint keeps open; the next waits in the
/// listen backlog until one closes.
pub const MAX_CONNECTIONS: usize = 4_096;

/// The longest a client may take to finish its TLS handshake.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections accepted (and, under TLS, through their handshake) that the
/// server has not picked up yet.
pub const ACCEPTED_QUEUE: usize = 64;

/// One open connection; its permit frees a place when it closes.
pub struct Conn<IO> {
    io: IO,
    _permit: OwnedSemaphorePermit,
}

impl<IO> Connected for Conn<IO> {
    type ConnectInfo = ();

    fn connect_info(&self) -> Self::ConnectInfo {}
}

/// Acknowledges what was read at once instead of after the delayed-ACK
/// timer. A client that leaves Nagle's algorithm on sends a call's headers,
/// then holds its first message until they are acknowledged: with delayed
/// ACKs every call would wait about 40 ms.
pub trait AckNow {
    /// Asks the kernel to acknowledge received data without delay (it may
    /// fall back to delaying later, so this is repeated after each read).
    fn ack_now(&self);
}

impl AckNow for TcpStream {
    #[cfg(target_os = "linux")]
    fn ack_now(&self) {
        let _ = socket2::SockRef::from(self).set_tcp_quickack(true);
    }

    #[cfg(not(target_os = "linux"))]
    fn ack_now(&self) {}
}

impl AckNow for tokio_rustls::server::TlsStream<TcpStream> {
    fn ack_now(&self) {
        self.get_ref().0.ack_now();
    }
}

impl<IO: AsyncRead + AckNow + Unpin> AsyncRead for Conn<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let read = Pin::new(&mut this.io).poll_read(cx, buf);
        if matches!(read, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.io.ack_now();
        }
        read
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Conn<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// A TLS connection, as served.
pub type TlsConn = Conn<tokio_rustls::server::TlsStream<TcpStream>>;

/// The accepted connections of `listener`, at most [`MAX_CONNECTIONS`]
/// open at once.
pub fn cleartext(listener: TcpListener) -> mpsc::Receiver<io::Result<Conn<TcpStream>>> {
    let (tx, rx) = mpsc::channel(ACCEPTED_QUEUE);
    tokio::spawn(async move {
        let open = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        while let Some((stream, permit)) = accept(&listener, &open, &tx).await {
            if tx
                .send(Ok(Conn {
                    io: stream,
                    _permit: permit,
                }))
                .await
                .is_err()
            {
                return;
            }
        }
    });
    rx
}

/// The same, each through its TLS handshake first; a handshake that fails
/// or times out drops that connection alone.
pub fn tls(listener: TcpListener, acceptor: TlsAcceptor) -> mpsc::Receiver<io::Result<TlsConn>> {
    let (tx, rx) = mpsc::channel(ACCEPTED_QUEUE);
    tokio::spawn(async move {
        let open = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        while let Some((stream, permit)) = accept(&listener, &open, &tx).await {
            let (acceptor, tx) = (acceptor.clone(), tx.clone());
            tokio::spawn(async move {
                match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(io)) => {
                        let _ = tx
                            .send(Ok(Conn {
                                io,
                                _permit: permit,
                            }))
                            .await;
                    }
                    Ok(Err(e)) => tracing::debug!(error = %e, "gRPC TLS handshake failed"),
                    Err(_) => tracing::debug!("gRPC TLS handshake timed out"),
                }
            });
        }
    });
    rx
}

/// The next connection and its permit; `None` once the server is gone.
async fn accept<T>(
    listener: &TcpListener,
    open: &Arc<Semaphore>,
    tx: &mpsc::Sender<T>,
) -> Option<(TcpStream, OwnedSemaphorePermit)> {
    let permit = tokio::select! {
        p = Arc::clone(open).acquire_owned() => p.ok()?,
        () = tx.closed() => return None,
    };
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = tx.closed() => return None,
        };
        match accepted {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                return Some((stream, permit));
            }
            // Out of descriptors and the like: wait, then try again.
            Err(e) => {
                tracing::warn!(error = %e, "gRPC accept failed");
                tokio::time::sleep(ACCEPT_RETRY).await;
            }
        }
    }
}

/// How long the accept loop waits after a failed accept.
pub const ACCEPT_RETRY: Duration = Duration::from_millis(100);
