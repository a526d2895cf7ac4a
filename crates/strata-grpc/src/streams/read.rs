//! `Streams.Read` with a count: one stream or `$all`, forwards or
//! backwards, filtered, sent page by page through a bounded channel (the
//! client's pace is the reader's).

use std::sync::Arc;

use strata_core::{Direction, Error, EventStore, Position, ReadFilter, RecordedEvent, FROM_END};
use strata_server::Role;
use tokio::sync::mpsc;
use tonic::Status;

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

/// What one read call asked for.
struct Plan {
    source: Source,
    backwards: bool,
    count: u64,
    structured_ids: bool,
    filter: EventFilter,
    caller: Caller,
}

enum Source {
    Stream {
        stream: strata_core::StreamId,
        from: u64,
    },
    All {
        from: Position,
    },
}

/// Starts one read call.
pub async fn read(
    store: Arc<dyn EventStore>,
    caller: Caller,
    request: ReadReq,
) -> Result<Answers<ReadResp>, Status> {
    let options = request
        .options
        .ok_or_else(|| Status::invalid_argument("a read needs its options"))?;
    let plan = plan(options, caller)?;
    let (tx, rx) = mpsc::channel(READ_CHANNEL_MESSAGES);
    tokio::spawn(async move {
        if let Err(status) = run(store.as_ref(), &plan, &tx).await {
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
        Some(CountOption::Count(n)) => n,
        Some(CountOption::Subscription(_)) => {
            return Err(Status::unimplemented("subscriptions are not served yet"))
        }
        None => return Err(Status::invalid_argument("a read needs a count")),
    };
    let structured_ids = matches!(
        o.uuid_option.and_then(|u| u.content),
        Some(options::uuid_option::Content::Structured(_))
    );
    let filter = match o.filter_option {
        Some(options::FilterOption::Filter(f)) => EventFilter::from_options(&f)?,
        _ => EventFilter::none(),
    };
    let source = match o.stream_option {
        Some(StreamOption::Stream(s)) => {
            let stream = mapping::stream_id(s.stream_identifier.as_ref())?;
            caller.require(Role::Read, stream.as_str())?;
            let from = match s.revision_option {
                Some(RevisionOption::Revision(r)) => mapping::version(r),
                Some(RevisionOption::End(_)) if backwards => FROM_END,
                Some(RevisionOption::End(_)) => FROM_END,
                Some(RevisionOption::Start(_)) | None => 1,
            };
            Source::Stream { stream, from }
        }
        Some(StreamOption::All(a)) => {
            if backwards {
                return Err(Status::unimplemented(
                    "reading $all backwards is not served yet",
                ));
            }
            let from = match a.all_option {
                Some(AllOption::Position(p)) => Position(p.commit_position),
                Some(AllOption::End(_)) => Position(u64::MAX),
                Some(AllOption::Start(_)) | None => Position::START,
            };
            Source::All { from }
        }
        None => return Err(Status::invalid_argument("a read names a stream or $all")),
    };
    Ok(Plan {
        source,
        backwards,
        count,
        structured_ids,
        filter,
        caller,
    })
}

type Sender = mpsc::Sender<Result<ReadResp, Status>>;

async fn run(store: &dyn EventStore, plan: &Plan, tx: &Sender) -> Result<(), Status> {
    match &plan.source {
        Source::Stream { stream, from } => read_stream(store, plan, stream, *from, tx).await,
        Source::All { from } => read_all(store, plan, *from, tx).await,
    }
}

async fn read_stream(
    store: &dyn EventStore,
    plan: &Plan,
    stream: &strata_core::StreamId,
    from: u64,
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
    let (mut next, mut left) = (from, plan.count);
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
            if !send(plan, event, tx).await {
                return Ok(());
            }
            left -= 1;
        }
        if short || next == 0 {
            return Ok(());
        }
    }
    Ok(())
}

async fn read_all(
    store: &dyn EventStore,
    plan: &Plan,
    from: Position,
    tx: &Sender,
) -> Result<(), Status> {
    let (mut next, mut left) = (from, plan.count);
    while left > 0 {
        let want = page_size(store, left);
        let page = store
            .read_all(next, want, &ReadFilter::all())
            .await
            .map_err(|e| status::from_error(&e))?;
        let Some(last) = page.last() else {
            return Ok(());
        };
        next = last.position.next();
        let short = page.len() < want;
        for event in page.iter().filter(|e| plan.filter.passes(e)) {
            if !plan.caller.can_see(event.stream_id.as_str()) {
                continue;
            }
            if !send(plan, event, tx).await {
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

fn page_size(store: &dyn EventStore, left: u64) -> usize {
    let cap = READ_PAGE_EVENTS.min(store.limits().max_read_count).max(1);
    usize::try_from(left).map_or(cap, |l| l.min(cap))
}

/// Sends one event; false when the client has gone.
async fn send(plan: &Plan, event: &RecordedEvent, tx: &Sender) -> bool {
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
