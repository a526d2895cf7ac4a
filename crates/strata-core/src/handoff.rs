//! The hand-off from a caller to a store's writer task or thread: a request
//! carries its own reply channel through a bounded queue, and the caller
//! waits for the reply. Written once here so every backend closes, queues and
//! answers the same way.

use tokio::sync::{mpsc, oneshot};

use crate::error::{Error, Result};

/// Where a worker sends the outcome of one request.
pub type Reply<T> = oneshot::Sender<Result<T>>;

/// Queues the request `make` builds around a fresh reply channel, then waits
/// for the worker's reply. A full queue makes the caller wait (back-pressure);
/// a worker that has stopped, or that drops the reply unanswered, gives
/// [`Error::Closed`].
///
/// ```
/// use strata_core::handoff::{request, Reply};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let (tx, mut rx) = tokio::sync::mpsc::channel::<(u32, Reply<u32>)>(4);
/// tokio::spawn(async move {
///     while let Some((n, reply)) = rx.recv().await {
///         let _ = reply.send(Ok(n * 2));
///     }
/// });
/// assert_eq!(request(&tx, |reply| (21, reply)).await.unwrap(), 42);
/// # });
/// ```
pub async fn request<R, T>(queue: &mpsc::Sender<R>, make: impl FnOnce(Reply<T>) -> R) -> Result<T> {
    let (reply, outcome) = oneshot::channel();
    queue.send(make(reply)).await.map_err(|_| Error::Closed)?;
    outcome.await.map_err(|_| Error::Closed)?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_stopped_worker_reads_as_closed() {
        let (tx, rx) = mpsc::channel::<Reply<()>>(1);
        drop(rx);
        assert!(matches!(request(&tx, |r| r).await, Err(Error::Closed)));
    }

    #[tokio::test]
    async fn an_unanswered_request_reads_as_closed() {
        let (tx, mut rx) = mpsc::channel::<Reply<()>>(1);
        let worker = tokio::spawn(async move { drop(rx.recv().await) });
        assert!(matches!(request(&tx, |r| r).await, Err(Error::Closed)));
        worker.await.unwrap();
    }
}
