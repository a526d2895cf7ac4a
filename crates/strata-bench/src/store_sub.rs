//! The subscriber of `append --subscriber`: one `EventStore::subscribe`
//! consumer following the run's streams while the writers append, measuring
//! delivery latency (see [`crate::delivery`]).

use std::sync::Arc;
use std::time::Duration;

use strata_core::{EventStore, ReadFilter, SubscribeFrom, SubscriptionMessage};
use tokio::sync::watch;

use crate::delivery::{now_us, stamps, Delivery, DeliveryCheck};
use crate::BenchError;

/// How long a subscriber may take, after the last append was acknowledged,
/// to deliver the events it has not delivered yet, in seconds.
pub const SUBSCRIBER_DRAIN_TIMEOUT_SECS: u64 = 60;

/// Tells a subscriber that the writers are done.
#[derive(Debug)]
pub struct WritersDone(watch::Sender<bool>);

impl WritersDone {
    /// A new signal and the receiver the subscriber watches.
    pub fn new() -> (Self, watch::Receiver<bool>) {
        let (tx, rx) = watch::channel(false);
        (WritersDone(tx), rx)
    }

    /// Says so: the subscriber now has [`SUBSCRIBER_DRAIN_TIMEOUT_SECS`] to finish.
    pub fn done(&self) {
        let _ = self.0.send(true);
    }
}

/// Resolves [`SUBSCRIBER_DRAIN_TIMEOUT_SECS`] after the writers are done
/// (or right away if the signal's sender is gone).
pub async fn drain_deadline(mut done: watch::Receiver<bool>) {
    let _ = done.wait_for(|d| *d).await;
    tokio::time::sleep(Duration::from_secs(SUBSCRIBER_DRAIN_TIMEOUT_SECS)).await;
}

/// Subscribes to the store after its current head, to the streams whose
/// names start with `stream_prefix`, and returns the task that checks
/// `expected` events arrive. The subscription is open when this returns.
pub async fn start(
    store: Arc<dyn EventStore>,
    stream_prefix: String,
    expected: u64,
    done: watch::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<Result<Delivery, BenchError>>, BenchError> {
    let head = store.head_position().await?;
    let mut sub = store
        .subscribe(
            SubscribeFrom::After(head),
            ReadFilter::all().stream_prefix(stream_prefix),
        )
        .await?;
    Ok(tokio::spawn(async move {
        let mut check = DeliveryCheck::new(expected);
        let deadline = drain_deadline(done);
        tokio::pin!(deadline);
        while !check.is_complete() {
            let next = tokio::select! {
                next = sub.next() => next,
                () = &mut deadline => break,
            };
            match next {
                Some(Ok(SubscriptionMessage::Event(e))) => {
                    check.record(e.position.0, stamps(&e.data), now_us())?;
                }
                Some(Ok(SubscriptionMessage::CaughtUp(_))) => {}
                Some(Err(e)) => return Err(format!("the subscription failed: {e}").into()),
                None => return Err("the subscription ended: the store closed".into()),
            }
        }
        Ok(check.finish()?)
    }))
}

/// Waits for a subscriber task started by [`start`] (or by the HTTP
/// subscriber) and returns what it measured.
pub async fn join(
    task: tokio::task::JoinHandle<Result<Delivery, BenchError>>,
) -> Result<Delivery, BenchError> {
    task.await
        .map_err(|e| format!("the subscriber task failed: {e}"))?
}
