//! Streams erased while subscriptions are open.
//!
//! The server keeps no cache or snapshot of any stream; the one place its
//! memory can hold a stream's events is an open subscription: events the
//! store handed over before the erasure, waiting in the subscription's
//! pump or framed in its connection queue. From the moment
//! `DELETE /streams/{s}?erase=true` answers, none of them may be sent.
//!
//! So each subscription registers an [`Erased`] set here, and an erasure
//! adds the stream to every open subscription's set before it answers. The
//! pump drops events of those streams, and the connection's body drops
//! frames of them still queued (their budget shares are given back).
//! Events the store reads after the erasure never include the stream, so a
//! set only ever grows while its subscription lives; past
//! [`MAX_ERASED_PER_SUBSCRIPTION`] the subscription is ended instead (error
//! kind `streams_erased`), dropping what it had queued, and the client
//! resumes with `Last-Event-ID`.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use serde_json::json;
use strata_core::StreamId;
use strata_wire::kind;
use tokio::sync::Notify;

use crate::sse;

/// Most streams erased during one subscription's life that the server holds
/// back from it; one more ends the subscription (`streams_erased`).
pub const MAX_ERASED_PER_SUBSCRIPTION: usize = 1_024;

/// The open subscriptions' sets, to add an erased stream to.
#[derive(Default)]
pub(crate) struct Erasures {
    /// One entry per open subscription (at most `max_open_subscriptions`
    /// live ones; closed ones are pruned on every registration).
    open: Mutex<Vec<Weak<Erased>>>,
}

impl Erasures {
    /// A set for a new subscription; `only` names its stream when it
    /// follows one stream (erasures of other streams do not concern it).
    pub(crate) fn register(&self, only: Option<StreamId>) -> Arc<Erased> {
        let erased = Arc::new(Erased {
            only,
            any: AtomicBool::new(false),
            overflowed: AtomicBool::new(false),
            overflow: Notify::new(),
            streams: Mutex::new(HashSet::new()),
        });
        let mut open = lock(&self.open);
        open.retain(|w| w.strong_count() > 0);
        open.push(Arc::downgrade(&erased));
        erased
    }

    /// Holds `stream`'s events back from every open subscription.
    pub(crate) fn erased(&self, stream: &StreamId) {
        let open: Vec<Arc<Erased>> = lock(&self.open).iter().filter_map(Weak::upgrade).collect();
        for e in open {
            e.add(stream);
        }
    }
}

/// The streams erased since one subscription opened.
pub(crate) struct Erased {
    only: Option<StreamId>,
    /// Set once any stream was added: the common case checks no set.
    any: AtomicBool,
    /// Set once more than [`MAX_ERASED_PER_SUBSCRIPTION`] streams were
    /// erased: the subscription must end.
    overflowed: AtomicBool,
    /// Wakes the connection's body when `overflowed` is set.
    overflow: Notify,
    streams: Mutex<HashSet<StreamId>>,
}

impl Erased {
    fn add(&self, stream: &StreamId) {
        if self.only.as_ref().is_some_and(|only| only != stream) {
            return;
        }
        let mut streams = lock(&self.streams);
        if streams.len() >= MAX_ERASED_PER_SUBSCRIPTION {
            if !self.overflowed.swap(true, Ordering::SeqCst) {
                // One waiter, the body: a permit is kept if it is not waiting.
                self.overflow.notify_one();
            }
        } else {
            streams.insert(stream.clone());
        }
        self.any.store(true, Ordering::SeqCst);
    }

    /// Whether events of `stream` must not be sent.
    pub(crate) fn hides(&self, stream: &str) -> bool {
        self.any.load(Ordering::SeqCst) && lock(&self.streams).contains(stream)
    }

    /// Whether the subscription must end: it can no longer tell which
    /// queued events are of erased streams.
    pub(crate) fn overflowed(&self) -> bool {
        self.overflowed.load(Ordering::SeqCst)
    }

    /// Resolves once `overflowed` is set (at once if it was set while
    /// nobody waited).
    pub(crate) async fn overflowing(&self) {
        while !self.overflowed() {
            self.overflow.notified().await;
        }
    }
}

/// A lock whose holder cannot leave its data half-changed (each critical
/// section is one call on a `Vec` or a `HashSet`), so a poisoned one is
/// used as it is.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The final `error` event of a subscription whose set overflowed.
pub(crate) fn overflow_frame() -> Vec<u8> {
    let data = json!(strata_wire::ErrorBody::new(
        kind::STREAMS_ERASED,
        format!(
            "more than {MAX_ERASED_PER_SUBSCRIPTION} streams were erased while this subscription \
             was open; reconnect with Last-Event-ID"
        ),
    ))
    .to_string();
    sse::frame(Some("error"), None, &data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(name: &str) -> StreamId {
        StreamId::new(name).unwrap()
    }

    #[test]
    fn an_erasure_reaches_the_open_subscriptions_it_concerns() {
        let all = Erasures::default();
        let whole = all.register(None);
        let one = all.register(Some(s("a-1")));
        let other = all.register(Some(s("b-1")));
        assert!(!whole.hides("a-1"));
        all.erased(&s("a-1"));
        assert!(whole.hides("a-1") && one.hides("a-1"));
        assert!(!other.hides("a-1") && !whole.hides("b-1"));
        drop(other);
        let later = all.register(None);
        assert_eq!(lock(&all.open).len(), 3, "closed ones are pruned");
        assert!(!later.hides("a-1"));
    }

    #[test]
    fn past_the_limit_the_subscription_must_end() {
        let all = Erasures::default();
        let e = all.register(None);
        for i in 0..MAX_ERASED_PER_SUBSCRIPTION {
            all.erased(&s(&format!("x-{i}")));
        }
        assert!(!e.overflowed());
        all.erased(&s("y-1"));
        assert!(e.overflowed());
        let frame = String::from_utf8(overflow_frame()).unwrap();
        assert!(frame.starts_with("event: error\n") && frame.contains("streams_erased"));
    }
}
