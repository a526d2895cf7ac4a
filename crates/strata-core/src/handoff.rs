//! The hand-off from a caller to a store's writer task or thread: a request
//! carries its own reply channel through a bounded queue, and the caller
//! waits for the reply. Written once here so every backend closes, queues and
//! answers the same way.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

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

/// The bytes of requests a store holds queued for its writer, bounded: a
/// request that would go over the limit is refused at once with
/// [`Error::Overloaded`] instead of waiting in the queue, so many callers
/// with large appends cannot make a store buffer without bound.
///
/// ```
/// use strata_core::handoff::QueuedBytes;
/// let queued = QueuedBytes::new(100);
/// let first = queued.take(80).unwrap();
/// assert_eq!(queued.take(30).unwrap_err().kind(), "overloaded");
/// drop(first);
/// assert!(queued.take(30).is_ok());
/// ```
#[derive(Clone, Debug)]
pub struct QueuedBytes {
    queued: Arc<AtomicUsize>,
    limit: usize,
}

/// Bytes counted as queued until this is dropped (when the writer has
/// answered).
#[derive(Debug)]
pub struct QueuedPermit {
    queued: Arc<AtomicUsize>,
    bytes: usize,
}

impl QueuedBytes {
    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> Self {
        QueuedBytes {
            queued: Arc::new(AtomicUsize::new(0)),
            limit,
        }
    }

    /// Counts `bytes` as queued, or refuses with `Overloaded` when that
    /// would go over the limit. A request larger than the whole limit is
    /// let through when nothing else is queued, so it can never be stuck.
    pub fn take(&self, bytes: usize) -> Result<QueuedPermit> {
        let mut queued = self.queued.load(Ordering::Relaxed);
        loop {
            let after = queued.saturating_add(bytes);
            if after > self.limit && queued > 0 {
                return Err(Error::Overloaded {
                    queued,
                    adding: bytes,
                    limit: self.limit,
                });
            }
            match self.queued.compare_exchange_weak(
                queued,
                after,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    return Ok(QueuedPermit {
                        queued: Arc::clone(&self.queued),
                        bytes,
                    })
                }
                Err(now) => queued = now,
            }
        }
    }

    /// Bytes queued now.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }
}

impl Drop for QueuedPermit {
    fn drop(&mut self) {
        self.queued.fetch_sub(self.bytes, Ordering::AcqRel);
    }
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
