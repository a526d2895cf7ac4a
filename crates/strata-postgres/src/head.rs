//! The committed head position, as subscriptions see it.

use strata_core::Position;
use tokio::sync::watch;

/// The committed head, as subscriptions see it.
#[derive(Debug)]
pub(crate) struct HeadFeed {
    tx: watch::Sender<Position>,
}

impl HeadFeed {
    pub(crate) fn new(at: Position) -> Self {
        HeadFeed {
            tx: watch::channel(at).0,
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

    pub(crate) fn subscribe(&self) -> watch::Receiver<Position> {
        self.tx.subscribe()
    }
}
