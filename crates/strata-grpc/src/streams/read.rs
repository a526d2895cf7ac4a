//! `Streams.Read`: one stream or `$all`, forwards or backwards, filtered,
//! sent page by page through a bounded channel (the client's pace is the
//! reader's). A read with a subscription instead of a count goes on in
//! [`super::subscribe`].

use std::sync::Arc;

use strata_core::{Direction, Error, EventStore, Position, ReadFilter, RecordedEvent, FROM_END};
use strata_server::Role;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tonic::Status;

use super::subscribe::{self, Start};
use super::Answers;
use crate::auth::Caller;
use crate::filter::EventFilter;
use crate::mapping;
use crate::proto::streams::read_req::options::{
    self, all_options::AllOption, stream_options::RevisionOption, CountOption, ReadDirection,
    StreamOption,
};
use crate::proto::streams::read_resp::{self, read_event, ReadEvent};
use crate::proto::streams::{ReadReq, ReadResp};
use crate::status;

/// Events read from the store per page.
pub const READ_PAGE_EVENTS: usize = 500;

/// Answers buffered between the reader task and the client.
pub const READ_CHANNEL_MESSAGES: usize = 64;

/// The most subscriptions one endpoint keeps open at once; one more is
/// refused with `ResourceExhausted`.
pub const MAX_OPEN_SUBSCRIPTIONS: usize = 4_096;

/// What one read call asked for.
pub(super) struct Plan {
    source: Source,
    backwards: bool,
    /// `None`: a subscription.
    count: Option<u64>,
    structured_ids: bool,
    /// The client reads `first_stream_position`/`last_stream_position`
    /// (its control option's compatibility is 1 or more).
    stream_positions: bool,
    pub(super) filter: EventFilter,
    /// Under a filter, the events a subscription examines between
    /// checkpoints.
    pub(super) checkpoint_every: Option<u64>,
    pub(super) caller: Caller,
}

/// What is read, and from where: `from` is where a read with a count
/// begins (inclusive); `start` is where a subscription begins (exclusive).
enum Source {
    Stream {
        stream: strata_core::StreamId,
        from: u64,
        start: Start,
    },
    All {
        from: Position,
        start: Start,
    },
}

/// Starts one read call.
/// A subscription takes a permit of `open` for as long as it runs.
pub async fn read(
    store: Arc<dyn EventStore>,
    caller: Caller,
    request: ReadReq,
    open: &Arc<Semaphore>,
) -> Result<Answers<ReadResp>, Status> {
    let options = request
        .options
        .ok_or_else(|| Status::invalid_argument("a read needs its options"))?;
    let plan = plan(options, caller)?;
    let permit = match plan.count {
        Some(_) => None,
        None => Some(Arc::clone(open).try_acquire_owned().map_err(|_| {
            Status::resource_exhausted(format!(
                "this server keeps at most {MAX_OPEN_SUBSCRIPTIONS} subscriptions open"
            ))
        })?),
    };
    let (tx, rx) = mpsc::channel(READ_CHANNEL_MESSAGES);
    tokio::spawn(async move {
        if let Err(status) = run(store.as_ref(), &plan, &tx, permit).await {
            let _ = tx.send(Err(status)).await;
        }
    });
    Ok(Box::pin(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|answer| (answer, rx))
    })))
}

fn plan(o: crate::proto::streams::read_req::Options, caller: Caller) -> Result<Plan, Status> {
    let backwards = o.read_direction == ReadDirection::Backwards as i32;
    let count = match o.count_option {
        Some(CountOption::Count(n)) => Some(n),
        Some(CountOption::Subscription(_)) if backwards => {
            return Err(Status::invalid_argument("a subscription reads forwards"))
        }
        Some(CountOption::Subscription(_)) => None,
        None => return Err(Status::invalid_argument("a read needs a count")),
    };
    let stream_positions = o.control_option.is_some_and(|c| c.compatibility >= 1);
    let structured_ids = matches!(
        o.uuid_option.and_then(|u| u.content),
        Some(options::uuid_option::Content::Structured(_))
    );
    let (filter, checkpoint_every) = match o.filter_option {
        Some(options::FilterOption::Filter(f)) => (
            EventFilter::from_options(&f)?,
            Some(EventFilter::checkpoint_interval(&f)),
        ),
        _ => (EventFilter::none(), None),
    };
    let source = match o.stream_option {
        Some(StreamOption::Stream(s)) => {
            let stream = mapping::readable_stream_id(s.stream_identifier.as_ref())?;
            let target = crate::metadata::target(stream.as_str())?;
            caller.require(Role::Read, target.as_ref().unwrap_or(&stream).as_str())?;
            let (from, start) = match s.revision_option {
                Some(RevisionOption::Revision(r)) => {
                    (mapping::version(r), Start::After(mapping::version(r)))
                }
                Some(RevisionOption::End(_)) => (FROM_END, Start::End),
                Some(RevisionOption::Start(_)) | None => (1, Start::First),
            };
            Source::Stream {
                stream,
                from,
                start,
            }
        }
        Some(StreamOption::All(a)) => {
            // Backwards, a position is an exclusive upper bound and the end
            // is `Position::END`; forwards, a position is where reading
            // begins.
            let (from, start) = match a.all_option {
                Some(AllOption::Position(p)) => {
                    (Position(p.commit_position), Start::After(p.commit_position))
                }
                Some(AllOption::End(_)) => (Position::END, Start::End),
                Some(AllOption::Start(_)) | None => (Position::START, Start::First),
            };
            Source::All { from, start }
        }
        None => return Err(Status::invalid_argument("a read names a stream or $all")),
    };
    Ok(Plan {
        source,
        backwards,
        count,
        structured_ids,
        stream_positions,
        filter,
        checkpoint_every,
        caller,
    })
}

/// Where the reader task sends its answers.
pub(super) type Sender = mpsc::Sender<Result<ReadResp, Status>>;

async fn run(
    store: &dyn EventStore,
    plan: &Plan,
    tx: &Sender,
    permit: Option<OwnedSemaphorePermit>,
) -> Result<(), Status> {
    let (count, permit) = match (plan.count, permit) {
        (Some(count), _) => (count, None),
        (None, Some(permit)) => (0, Some(permit)),
        (None, None) => return Err(Status::internal("a subscription without a permit")),
    };
    if let Some(permit) = permit {
        return subscribe_from(store, plan, tx, permit).await;
    }
    match &plan.source {
        Source::Stream { stream, from, .. } => {
            read_stream(store, plan, stream, *from, count, tx).await
        }
        Source::All { from, .. } => read_all(store, plan, *from, count, tx).await,
    }
}

/// A subscription: its start from the read's options, exclusive.
async fn subscribe_from(
    store: &dyn EventStore,
    plan: &Plan,
    tx: &Sender,
    permit: OwnedSemaphorePermit,
) -> Result<(), Status> {
    match &plan.source {
        Source::Stream { stream, start, .. } => {
            subscribe::run(store, plan, Some(stream), *start, tx, permit).await
        }
        Source::All { start, .. } => subscribe::run(store, plan, None, *start, tx, permit).await,
    }
}

async fn read_stream(
    store: &dyn EventStore,
    plan: &Plan,
    stream: &strata_core::StreamId,
    from: u64,
    count: u64,
    tx: &Sender,
) -> Result<(), Status> {
    let direction = if plan.backwards {
        Direction::Backward
    } else {
        Direction::Forward
    };
    if !plan.backwards && from == FROM_END {
        return Ok(());
    }
    let (mut next, mut left) = (from, count);
    while left > 0 {
        let want = page_size(store, left);
        let page = match store.read_stream(stream, next, want, direction).await {
            Ok(page) => page,
            Err(Error::StreamNotFound { .. }) => {
                let answer = read_resp::Content::StreamNotFound(read_resp::StreamNotFound {
                    stream_identifier: Some(mapping::identifier(stream)),
                });
                let _ = tx
                    .send(Ok(ReadResp {
                        content: Some(answer),
                    }))
                    .await;
                return Ok(());
            }
            Err(e) => return Err(status::from_error(&e)),
        };
        let Some(last) = page.last() else {
            return Ok(());
        };
        next = if plan.backwards {
            match last.version.checked_sub(1) {
                Some(0) | None => 0,
                Some(v) => v,
            }
        } else {
            last.version + 1
        };
        let short = page.len() < want;
        for event in &page {
            if !send_event(plan, event, tx).await {
                return Ok(());
            }
            left -= 1;
        }
        if short || next == 0 {
            ended(plan, last.version, tx).await;
            return Ok(());
        }
    }
    Ok(())
}

/// A read that reached the stream's end in its direction tells a client
/// that asks the revision there: the last (forwards) or the first kept
/// (backwards).
async fn ended(plan: &Plan, version: u64, tx: &Sender) {
    if !plan.stream_positions {
        return;
    }
    let revision = mapping::revision(version);
    let content = if plan.backwards {
        read_resp::Content::FirstStreamPosition(revision)
    } else {
        read_resp::Content::LastStreamPosition(revision)
    };
    let _ = tx
        .send(Ok(ReadResp {
            content: Some(content),
        }))
        .await;
}

async fn read_all(
    store: &dyn EventStore,
    plan: &Plan,
    from: Position,
    count: u64,
    tx: &Sender,
) -> Result<(), Status> {
    let (mut next, mut left) = (from, count);
    while left > 0 {
        let want = page_size(store, left);
        let page = if plan.backwards {
            store
                .read_all_backward(next, want, &ReadFilter::all())
                .await
        } else {
            store.read_all(next, want, &ReadFilter::all()).await
        }
        .map_err(|e| status::from_error(&e))?;
        let Some(last) = page.last() else {
            return Ok(());
        };
        next = if plan.backwards {
            last.position
        } else {
            last.position.next()
        };
        let short = page.len() < want;
        for event in page.iter().filter(|e| plan.filter.passes(e)) {
            if !plan.caller.can_see(event.stream_id.as_str()) {
                continue;
            }
            if !send_event(plan, event, tx).await {
                return Ok(());
            }
            left -= 1;
            if left == 0 {
                return Ok(());
            }
        }
        if short {
            return Ok(());
        }
    }
    Ok(())
}

/// Events to ask the store for: `left`, at most a page.
pub(super) fn page_size(store: &dyn EventStore, left: u64) -> usize {
    let cap = READ_PAGE_EVENTS.min(store.limits().max_read_count).max(1);
    usize::try_from(left).map_or(cap, |l| l.min(cap))
}

/// Sends one event; false when the client has gone.
pub(super) async fn send_event(plan: &Plan, event: &RecordedEvent, tx: &Sender) -> bool {
    let answer = ReadEvent {
        event: Some(mapping::recorded_event(event, plan.structured_ids)),
        link: None,
        position: Some(read_event::Position::CommitPosition(
            mapping::commit_position(event.position),
        )),
    };
    tx.send(Ok(ReadResp {
        content: Some(read_resp::Content::Event(answer)),
    }))
    .await
    .is_ok()
}
