//! The byte budgets of subscriptions' buffers: each subscription's own
//! (`subscription_buffer_bytes`) and the server's, shared by all of them
//! (`subscription_buffers_total_bytes`). A buffered message holds a share of
//! both, counted in KiB, until its bytes are written to the connection.
//!
//! Waiting for the subscription's own budget means its client is not
//! reading: past the slow-consumer timeout it is dropped. Waiting for the
//! server's budget is not the client's doing as such: the other
//! subscriptions hold it, and stalled ones give it back once they are
//! dropped and their connections closed (slow-consumer timeout plus write
//! timeout), so that wait is longer and ends the subscription as
//! `overloaded`. But a subscription whose own bytes are still unwritten
//! after the slow-consumer timeout of that wait is itself stalled, and is
//! dropped as slow then: stalled subscribers do not keep each other alive.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A message's share of both budgets.
pub(crate) struct Share {
    _own: OwnedSemaphorePermit,
    _server: OwnedSemaphorePermit,
}

/// Why no share was given.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The subscription's own budget stayed full for the slow-consumer timeout.
    TooSlow,
    /// The server's budget stayed full for its longer wait.
    Overloaded,
    /// A budget was closed (the server is going away).
    Closed,
}

/// A budget of `bytes` counted in KiB (at least 1): the semaphore and its
/// size.
pub(crate) fn kib_semaphore(bytes: usize) -> (Arc<Semaphore>, u32) {
    let total_kib = u32::try_from((bytes / 1024).max(1)).unwrap_or(u32::MAX);
    (Arc::new(Semaphore::new(total_kib as usize)), total_kib)
}

/// A budget in KiB and how long a share may be waited for.
pub(crate) struct Pool {
    kib: Arc<Semaphore>,
    total_kib: u32,
    wait: Duration,
}

impl Pool {
    /// A budget of `bytes` (at least 1 KiB) with the longest wait for a share.
    pub fn new(bytes: usize, wait: Duration) -> Self {
        let (kib, total_kib) = kib_semaphore(bytes);
        Pool {
            kib,
            total_kib,
            wait,
        }
    }

    /// Another handle on the same budget.
    pub fn share_of(&self) -> Pool {
        Pool {
            kib: self.kib.clone(),
            total_kib: self.total_kib,
            wait: self.wait,
        }
    }

    /// `kib` of the budget (all of it for a message larger than the whole),
    /// waiting at most the pool's wait; `None` when that ran out.
    async fn take(&self, kib: u32) -> Result<Option<OwnedSemaphorePermit>, Refused> {
        let kib = kib.min(self.total_kib);
        if let Ok(p) = self.kib.clone().try_acquire_many_owned(kib) {
            return Ok(Some(p));
        }
        match tokio::time::timeout(self.wait, self.kib.clone().acquire_many_owned(kib)).await {
            Ok(Ok(p)) => Ok(Some(p)),
            Ok(Err(_)) => Err(Refused::Closed),
            Err(_) => Ok(None),
        }
    }

    /// KiB free now.
    #[cfg(test)]
    pub fn available_kib(&self) -> usize {
        self.kib.available_permits()
    }

    /// KiB held by shares now.
    fn held_kib(&self) -> usize {
        (self.total_kib as usize).saturating_sub(self.kib.available_permits())
    }
}

/// What one subscription may hold buffered: its own budget and its part of
/// the server's.
pub(crate) struct BufferBudget {
    pub own: Pool,
    pub server: Pool,
}

impl BufferBudget {
    /// How long the subscription waits for its client before it is dropped.
    pub fn slow(&self) -> Duration {
        self.own.wait
    }

    /// A share of `bytes` of both budgets: the subscription's own first
    /// (waiting for its client), then the server's.
    pub async fn take(&self, bytes: usize) -> Result<Share, Refused> {
        let kib = u32::try_from(bytes / 1024 + 1).unwrap_or(u32::MAX);
        let own = self.own.take(kib).await?.ok_or(Refused::TooSlow)?;
        let server = self.take_server(kib, own.num_permits()).await?;
        Ok(Share {
            _own: own,
            _server: server,
        })
    }

    /// The server's share: waited for in slow-consumer steps, each ending
    /// the wait as slow if this subscription's earlier bytes (all but the
    /// `taking` KiB just taken) are still unwritten, and as overloaded past
    /// the server pool's whole wait.
    async fn take_server(&self, kib: u32, taking: usize) -> Result<OwnedSemaphorePermit, Refused> {
        let kib = kib.min(self.server.total_kib);
        // The usual case, without reading the clock or arming a timer.
        if let Ok(p) = self.server.kib.clone().try_acquire_many_owned(kib) {
            return Ok(p);
        }
        let deadline = tokio::time::Instant::now() + self.server.wait;
        loop {
            let step = (deadline - tokio::time::Instant::now()).min(self.own.wait);
            let waiting = self.server.kib.clone().acquire_many_owned(kib);
            match tokio::time::timeout(step, waiting).await {
                Ok(Ok(p)) => return Ok(p),
                Ok(Err(_)) => return Err(Refused::Closed),
                Err(_) if tokio::time::Instant::now() >= deadline => {
                    return Err(Refused::Overloaded)
                }
                Err(_) if self.own.held_kib() > taking => return Err(Refused::TooSlow),
                Err(_) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn budget(own_kib: usize, server: &Pool) -> BufferBudget {
        BufferBudget {
            own: Pool::new(own_kib * 1024, Duration::from_millis(20)),
            server: server.share_of(),
        }
    }

    fn server(kib: usize) -> Pool {
        Pool::new(kib * 1024, Duration::from_millis(40))
    }

    #[tokio::test]
    async fn an_event_waits_for_its_whole_share() {
        let b = budget(4, &server(100));
        let held = b.take(3 * 1024 - 1).await.unwrap();
        // 1 KiB is left: a 3 KiB event must wait for it, not take the rest.
        assert_eq!(b.take(3 * 1024 - 1).await.err(), Some(Refused::TooSlow));
        drop(held);
        assert!(b.take(3 * 1024 - 1).await.is_ok());
    }

    #[tokio::test]
    async fn an_event_larger_than_the_budget_takes_all_of_it() {
        let b = budget(4, &server(100));
        let all = b.take(100 * 1024).await.unwrap();
        assert_eq!(b.own.available_kib(), 0);
        drop(all);
        assert_eq!(b.own.available_kib(), 4);
    }

    #[tokio::test]
    async fn the_servers_budget_bounds_all_subscriptions_together() {
        let s = server(8);
        let (a, b) = (budget(8, &s), budget(8, &s));
        let held = a.take(6 * 1024).await.unwrap();
        assert_eq!(s.available_kib(), 1);
        // b's own budget is free, so it is not slow: the server is full.
        assert_eq!(b.take(2 * 1024).await.err(), Some(Refused::Overloaded));
        assert_eq!(
            b.own.available_kib(),
            8,
            "a refused share gives back what it took"
        );
        drop(held);
        assert!(b.take(2 * 1024).await.is_ok());
    }

    #[tokio::test]
    async fn a_subscription_with_unwritten_bytes_waiting_for_the_server_is_slow() {
        let s = Pool::new(8 * 1024, Duration::from_millis(400));
        let (a, b) = (budget(8, &s), budget(8, &s));
        let mine = b.take(1024).await.unwrap();
        let others = a.take(5 * 1024).await.unwrap();
        // b's first message is still unwritten 20 ms (its slow timeout)
        // into waiting for the server: b is the stalled one.
        let started = tokio::time::Instant::now();
        assert_eq!(b.take(2 * 1024).await.err(), Some(Refused::TooSlow));
        assert!(started.elapsed() < Duration::from_millis(300));
        drop((mine, others));
    }
}
