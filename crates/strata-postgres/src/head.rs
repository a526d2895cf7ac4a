//! The committed head position, as subscriptions see it.

use std::sync::atomic::{AtomicBool, Ordering};

use strata_core::Position;
use tokio::sync::watch;

/// The committed head, as subscriptions see it.
#[derive(Debug)]
pub(crate) struct HeadFeed {
    tx: watch::Sender<Position>,
    /// Whether the listener's last contact with the database (connecting
    /// to listen, or polling the head) succeeded: what `/health` reports,
    /// without a round trip of its own.
    reachable: AtomicBool,
}

impl HeadFeed {
    pub(crate) fn new(at: Position) -> Self {
        HeadFeed {
            tx: watch::channel(at).0,
            reachable: AtomicBool::new(true),
        }
    }

    /// Raises the head to `p` (never lowers it). Callers only publish
    /// positions below which every event is committed and visible.
    pub(crate) fn publish(&self, p: Position) {
        self.tx.send_if_modified(|h| {
            if p > *h {
                *h = p;
                true
            } else {
                false
            }
        });
    }

    pub(crate) fn current(&self) -> Position {
        *self.tx.borrow()
    }

    /// Records whether the database just answered.
    pub(crate) fn set_reachable(&self, reachable: bool) {
        self.reachable.store(reachable, Ordering::Relaxed);
    }

    /// Whether the database answered the listener's last contact.
    pub(crate) fn reachable(&self) -> bool {
        self.reachable.load(Ordering::Relaxed)
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<Position> {
        self.tx.subscribe()
    }
}
