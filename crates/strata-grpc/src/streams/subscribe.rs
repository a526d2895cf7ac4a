//! `Streams.Read` with a subscription: a confirmation, the events already
//! recorded after the start, `caught_up`, then new events as they commit.
//!
//! Starts are exclusive, as the clients resume: from revision `r` the first
//! event sent is revision `r + 1`; from position `p`, the first event after
//! `p`. A stream subscription catches up by reading the stream, then
//! follows `$all` through the stream's filter from the head it took before
//! reading, dropping revisions it already sent; a `$all` subscription is
//! the store's own catch-up-then-live subscription. Filtered `$all`
//! subscriptions send a checkpoint every so many events examined, so a
//! client whose filter matches little can still resume near the head.

use std::time::SystemTime;

use strata_core::{
    Direction, Error, EventStore, Position, ReadFilter, RecordedEvent, StreamId, SubscribeFrom,
    Subscription, SubscriptionMessage,
};
use tokio::sync::OwnedSemaphorePermit;
use tonic::Status;

use super::read::{send_event, Plan, Sender};
use crate::proto::streams::read_resp::{self, CaughtUp};
use crate::proto::streams::ReadResp;
use crate::status;

/// Where a subscription starts.
#[derive(Clone, Copy, Debug)]
pub enum Start {
    /// From the first event.
    First,
    /// After this stream version (Strata's 1-based version of the client's
    /// revision), or after this `$all` position.
    After(u64),
    /// Only what commits after subscribing.
    End,
}

/// Runs one subscription until the client hangs up or the store closes.
/// `_permit` holds its place among the open subscriptions.
pub async fn run(
    store: &dyn EventStore,
    plan: &Plan,
    stream: Option<&StreamId>,
    start: Start,
    tx: &Sender,
    _permit: OwnedSemaphorePermit,
) -> Result<(), Status> {
    let confirmation = read_resp::Content::Confirmation(read_resp::SubscriptionConfirmation {
        subscription_id: uuid::Uuid::new_v4().to_string(),
    });
    if !answer(tx, confirmation).await {
        return Ok(());
    }
    match stream {
        Some(stream) => follow_stream(store, plan, stream, start, tx).await,
        None => follow_all(store, plan, start, tx).await,
    }
}

async fn answer(tx: &Sender, content: read_resp::Content) -> bool {
    tx.send(Ok(ReadResp {
        content: Some(content),
    }))
    .await
    .is_ok()
}

fn now() -> prost_types::Timestamp {
    prost_types::Timestamp::from(SystemTime::now())
}

/// Catches up on one stream from `start`, then follows it live.
async fn follow_stream(
    store: &dyn EventStore,
    plan: &Plan,
    stream: &StreamId,
    start: Start,
    tx: &Sender,
) -> Result<(), Status> {
    // Every event at or below this head is visible to the reads below;
    // everything committed later is above it and reaches the live part.
    let head = store
        .head_position()
        .await
        .map_err(|e| status::from_error(&e))?;
    let mut sent = match start {
        Start::First => 0,
        Start::After(version) => version,
        Start::End => u64::MAX,
    };
    if sent != u64::MAX {
        match catch_up_stream(store, plan, stream, sent, tx).await? {
            Some(last) => sent = last,
            None => return Ok(()),
        }
    }
    let mut sub = store
        .subscribe(
            SubscribeFrom::After(head),
            ReadFilter::all().stream(stream.clone()),
        )
        .await
        .map_err(|e| status::from_error(&e))?;
    while let Some(message) = next_message(&mut sub, tx).await? {
        match message {
            SubscriptionMessage::Event(e) => {
                if sent != u64::MAX && e.version <= sent {
                    continue; // sent while catching up
                }
                sent = e.version;
                if !send_event(plan, &e, tx).await {
                    return Ok(());
                }
            }
            SubscriptionMessage::CaughtUp(_) => {
                let revision = (sent != 0 && sent != u64::MAX)
                    .then(|| i64::try_from(crate::mapping::revision(sent)).unwrap_or(i64::MAX));
                let caught_up = read_resp::Content::CaughtUp(CaughtUp {
                    timestamp: Some(now()),
                    stream_revision: revision,
                    position: None,
                });
                if !answer(tx, caught_up).await {
                    return Ok(());
                }
            }
        }
    }
    Ok(())
}

/// Sends the stream's events after version `after`; the last version sent
/// (or `after`), or `None` when the client hung up.
async fn catch_up_stream(
    store: &dyn EventStore,
    plan: &Plan,
    stream: &StreamId,
    after: u64,
    tx: &Sender,
) -> Result<Option<u64>, Status> {
    let mut last = after;
    loop {
        let want = super::read::page_size(store, u64::MAX);
        let page = match store
            .read_stream(stream, last + 1, want, Direction::Forward)
            .await
        {
            Ok(page) => page,
            // Nothing to catch up on: wait for the stream's first events.
            Err(Error::StreamNotFound { .. }) => return Ok(Some(last)),
            Err(e) => return Err(status::from_error(&e)),
        };
        let short = page.len() < want;
        for event in &page {
            if !send_event(plan, event, tx).await {
                return Ok(None);
            }
            last = event.version;
        }
        if short {
            return Ok(Some(last));
        }
    }
}

/// Follows `$all` from `start`, through the plan's filter and the caller's
/// reach, with checkpoints when the filter asks for them.
async fn follow_all(
    store: &dyn EventStore,
    plan: &Plan,
    start: Start,
    tx: &Sender,
) -> Result<(), Status> {
    let from = match start {
        Start::First => SubscribeFrom::Start,
        Start::After(p) => SubscribeFrom::After(Position(p)),
        Start::End => SubscribeFrom::End,
    };
    let mut sub = store
        .subscribe(from, ReadFilter::all())
        .await
        .map_err(|e| status::from_error(&e))?;
    let mut examined: u64 = 0;
    while let Some(message) = next_message(&mut sub, tx).await? {
        match message {
            SubscriptionMessage::Event(e) => {
                if passes(plan, &e) && !send_event(plan, &e, tx).await {
                    return Ok(());
                }
                examined += 1;
                if plan.checkpoint_every.is_some_and(|every| examined >= every) {
                    examined = 0;
                    if !checkpoint(tx, e.position).await {
                        return Ok(());
                    }
                }
            }
            SubscriptionMessage::CaughtUp(at) => {
                let position = (at > Position::START).then(|| read_resp::Position {
                    commit_position: crate::mapping::commit_position(at),
                    prepare_position: crate::mapping::commit_position(at),
                });
                let caught_up = read_resp::Content::CaughtUp(CaughtUp {
                    timestamp: Some(now()),
                    stream_revision: None,
                    position,
                });
                if !answer(tx, caught_up).await {
                    return Ok(());
                }
            }
        }
    }
    Ok(())
}

/// The subscription's next message; `None` once the client has hung up
/// or the store has closed.
async fn next_message(
    sub: &mut Subscription,
    tx: &Sender,
) -> Result<Option<SubscriptionMessage>, Status> {
    tokio::select! {
        m = sub.next() => m.transpose().map_err(|e| status::from_error(&e)),
        () = tx.closed() => Ok(None),
    }
}

fn passes(plan: &Plan, event: &RecordedEvent) -> bool {
    plan.filter.passes(event) && plan.caller.can_see(event.stream_id.as_str())
}

async fn checkpoint(tx: &Sender, at: Position) -> bool {
    let position = crate::mapping::commit_position(at);
    let content = read_resp::Content::Checkpoint(read_resp::Checkpoint {
        commit_position: position,
        prepare_position: position,
        timestamp: Some(now()),
    });
    answer(tx, content).await
}
