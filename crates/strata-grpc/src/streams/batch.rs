//! `Streams.BatchAppend`: many appends over one call. Each append arrives
//! in one or more chunks under its correlation id (options with the first,
//! `is_final` on the last), is appended atomically once complete, and is
//! answered under the same id: success with the stream's revision and
//! position, or a `google.rpc.Status` whose details name the failure as
//! the clients decode it (wrong expected version, stream deleted, access
//! denied, timeout, too large). Appends of one call run concurrently, up
//! to a limit; one failing append never ends the call.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use prost::Message;
use strata_core::{CurrentVersion, Error, EventStore, ExpectedVersion, Limits, NewEvent, StreamId};
use strata_server::Role;
use tokio::sync::{mpsc, Semaphore};
use tonic::{Code, Status, Streaming};

use super::Answers;
use crate::auth::Caller;
use crate::mapping::{self, ExpectedRevision};
use crate::proto::google::rpc;
use crate::proto::shared;
use crate::proto::streams::batch_append_req::options::{DeadlineOption, ExpectedStreamPosition};
use crate::proto::streams::batch_append_req::{self, ProposedMessage};
use crate::proto::streams::batch_append_resp::{self, success};
use crate::proto::streams::{BatchAppendReq, BatchAppendResp};

/// Appends one call may be assembling at once (sent in part, not final);
/// a chunk opening one more is answered `ResourceExhausted`.
pub const MAX_OPEN_BATCHES: usize = 256;

/// Complete appends of one call written to the store at once; the call
/// reads no further chunks while this many are running.
pub const MAX_BATCH_APPENDS_IN_FLIGHT: usize = 64;

/// Answers buffered between the call's appends and the client.
pub const BATCH_ANSWER_MESSAGES: usize = 256;

/// An append being assembled.
struct Pending {
    correlation: shared::Uuid,
    options: batch_append_req::Options,
    events: Vec<NewEvent>,
    bytes: usize,
}

/// One failed append, as the answer's status and its details.
struct Failure {
    code: Code,
    message: String,
    details: Option<prost_types::Any>,
}

impl Failure {
    fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            details: None,
        }
    }

    /// Names the failure with one of the protocol's shared messages.
    fn detail<M: Message>(mut self, name: &str, detail: &M) -> Self {
        self.details = Some(prost_types::Any {
            type_url: format!("type.googleapis.com/event_store.client.{name}"),
            value: detail.encode_to_vec(),
        });
        self
    }
}

type Sender = mpsc::Sender<Result<BatchAppendResp, Status>>;

/// Starts one batch append call.
pub fn batch_append(
    store: Arc<dyn EventStore>,
    caller: Caller,
    requests: Streaming<BatchAppendReq>,
) -> Answers<BatchAppendResp> {
    let (tx, rx) = mpsc::channel(BATCH_ANSWER_MESSAGES);
    tokio::spawn(run(store, caller, requests, tx));
    Box::pin(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|answer| (answer, rx))
    }))
}

async fn run(
    store: Arc<dyn EventStore>,
    caller: Caller,
    mut requests: Streaming<BatchAppendReq>,
    tx: Sender,
) {
    let caller = Arc::new(caller);
    let running = Arc::new(Semaphore::new(MAX_BATCH_APPENDS_IN_FLIGHT));
    let mut open: HashMap<Vec<u8>, Pending> = HashMap::new();
    loop {
        let request = match requests.message().await {
            Ok(Some(request)) => request,
            Ok(None) => break,
            Err(status) => {
                let _ = tx.send(Err(status)).await;
                break;
            }
        };
        let pending = match accept(store.as_ref(), &mut open, request) {
            Ok(Some(pending)) => pending,
            Ok(None) => continue,
            Err((correlation, options, failure)) => {
                let answer = failed(correlation, options.as_ref(), failure);
                if tx.send(Ok(answer)).await.is_err() {
                    return;
                }
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&running).acquire_owned().await else {
            return;
        };
        let (store, caller, tx) = (Arc::clone(&store), Arc::clone(&caller), tx.clone());
        tokio::spawn(async move {
            let answer = append(store.as_ref(), &caller, pending).await;
            let _ = tx.send(Ok(answer)).await;
            drop(permit);
        });
    }
    // Let running appends answer before the call ends.
    let _ = running
        .acquire_many(u32::try_from(MAX_BATCH_APPENDS_IN_FLIGHT).unwrap_or(u32::MAX))
        .await;
}

type Refusal = (
    Option<shared::Uuid>,
    Option<batch_append_req::Options>,
    Failure,
);

/// Adds one chunk to its append; the append when the chunk was its last.
fn accept(
    store: &dyn EventStore,
    open: &mut HashMap<Vec<u8>, Pending>,
    request: BatchAppendReq,
) -> Result<Option<Pending>, Refusal> {
    let Some(correlation) = request.correlation_id else {
        let failure = Failure::new(
            Code::InvalidArgument,
            "a batch append names its correlation id",
        );
        return Err((None, request.options, failure));
    };
    let key = correlation.encode_to_vec();
    let pending = match open.remove(&key) {
        Some(pending) => pending,
        None => {
            let Some(options) = request.options else {
                let failure = Failure::new(
                    Code::InvalidArgument,
                    "the first chunk of a batch append carries its options",
                );
                return Err((Some(correlation), None, failure));
            };
            if open.len() >= MAX_OPEN_BATCHES {
                let failure = Failure::new(
                    Code::ResourceExhausted,
                    format!("a call assembles at most {MAX_OPEN_BATCHES} batch appends at once"),
                );
                return Err((Some(correlation), Some(options), failure));
            }
            Pending {
                correlation,
                options,
                events: Vec::new(),
                bytes: 0,
            }
        }
    };
    let mut pending = pending;
    if let Err(failure) = add(store, &mut pending, request.proposed_messages) {
        return Err((Some(pending.correlation), Some(pending.options), failure));
    }
    if request.is_final {
        return Ok(Some(pending));
    }
    open.insert(key, pending);
    Ok(None)
}

/// Adds proposed messages to an append, within the store's append limits.
fn add(
    store: &dyn EventStore,
    pending: &mut Pending,
    messages: Vec<ProposedMessage>,
) -> Result<(), Failure> {
    let limits = store.limits();
    for m in messages {
        pending.bytes = pending
            .bytes
            .saturating_add(m.data.len() + m.custom_metadata.len());
        if pending.events.len() >= limits.max_events_per_append
            || pending.bytes > limits.max_append_bytes
        {
            return Err(too_large(
                format!(
                    "an append holds at most {} events and {} bytes",
                    limits.max_events_per_append, limits.max_append_bytes
                ),
                limits,
            ));
        }
        let event = mapping::new_event(m.id.as_ref(), &m.metadata, &m.custom_metadata, m.data)
            .map_err(|s| {
                Failure::new(Code::InvalidArgument, s.message()).detail(
                    "BadRequest",
                    &shared::BadRequest {
                        message: s.message().to_string(),
                    },
                )
            })?;
        pending.events.push(event);
    }
    Ok(())
}

/// Appends one complete batch; its answer.
async fn append(store: &dyn EventStore, caller: &Caller, pending: Pending) -> BatchAppendResp {
    let Pending {
        correlation,
        options,
        events,
        ..
    } = pending;
    match try_append(store, caller, &options, events).await {
        Ok((version, position)) => BatchAppendResp {
            correlation_id: Some(correlation),
            result: Some(batch_append_resp::Result::Success(success_of(
                version, position,
            ))),
            stream_identifier: options.stream_identifier.clone(),
            expected_stream_position: echo(options.expected_stream_position),
        },
        Err(failure) => failed(Some(correlation), Some(&options), failure),
    }
}

async fn try_append(
    store: &dyn EventStore,
    caller: &Caller,
    options: &batch_append_req::Options,
    events: Vec<NewEvent>,
) -> Result<(Option<u64>, Option<strata_core::Position>), Failure> {
    let invalid = |s: Status| Failure::new(Code::InvalidArgument, s.message());
    let name = mapping::stream_name(options.stream_identifier.as_ref()).map_err(invalid)?;
    let target = crate::metadata::target(name).map_err(invalid)?;
    let stream =
        mapping::readable_stream_id(options.stream_identifier.as_ref()).map_err(invalid)?;
    let role = if target.is_some() {
        Role::Admin
    } else {
        Role::Write
    };
    let checked = target.as_ref().unwrap_or(&stream);
    if caller.require(role, checked.as_str()).is_err() {
        return Err(Failure::new(Code::PermissionDenied, "access denied")
            .detail("AccessDenied", &shared::AccessDenied {}));
    }
    if deadline(options).is_some_and(|d| SystemTime::now() > d) {
        return Err(
            Failure::new(Code::DeadlineExceeded, "the append's deadline passed")
                .detail("Timeout", &shared::Timeout {}),
        );
    }
    let expected = options.expected_stream_position.guard();
    super::append::write(store, &stream, target.as_ref(), expected, events)
        .await
        .map_err(|e| failure_of(&e, &stream, store.limits()))
}

/// The client's deadline: a time since the epoch, in either form.
fn deadline(options: &batch_append_req::Options) -> Option<SystemTime> {
    let since_epoch = match options.deadline_option.as_ref()? {
        DeadlineOption::Deadline(d) => {
            Duration::new(u64::try_from(d.seconds).ok()?, u32::try_from(d.nanos).ok()?)
        }
        DeadlineOption::Deadline21100(t) => {
            Duration::new(u64::try_from(t.seconds).ok()?, u32::try_from(t.nanos).ok()?)
        }
    };
    SystemTime::UNIX_EPOCH.checked_add(since_epoch)
}

fn echo(
    expected: Option<ExpectedStreamPosition>,
) -> Option<batch_append_resp::ExpectedStreamPosition> {
    use batch_append_resp::ExpectedStreamPosition as Out;
    expected.map(|e| match e {
        ExpectedStreamPosition::StreamPosition(r) => Out::StreamPosition(r),
        ExpectedStreamPosition::NoStream(_) => Out::NoStream(()),
        ExpectedStreamPosition::Any(_) => Out::Any(()),
        ExpectedStreamPosition::StreamExists(_) => Out::StreamExists(()),
    })
}

/// The failure of an append over the store's size limits, with the
/// detail the clients recognise.
fn too_large(message: String, limits: &Limits) -> Failure {
    let max = u32::try_from(limits.max_append_bytes).unwrap_or(u32::MAX);
    Failure::new(Code::InvalidArgument, message).detail(
        "MaximumAppendSizeExceeded",
        &shared::MaximumAppendSizeExceeded {
            max_append_size: max,
        },
    )
}

fn failure_of(e: &Error, stream: &StreamId, limits: &Limits) -> Failure {
    let message = e.to_string();
    match e {
        Error::WrongExpectedVersion {
            expected, actual, ..
        } => Failure::new(Code::FailedPrecondition, message)
            .detail("WrongExpectedVersion", &wrong_version(*expected, *actual)),
        Error::StreamDeleted { .. } => Failure::new(Code::FailedPrecondition, message).detail(
            "StreamDeleted",
            &shared::StreamDeleted {
                stream_identifier: Some(mapping::identifier(stream)),
            },
        ),
        Error::TooLarge { .. } => too_large(message, limits),
        Error::InvalidInput { .. } | Error::IdempotencyConflict { .. } => {
            Failure::new(Code::InvalidArgument, message.clone())
                .detail("BadRequest", &shared::BadRequest { message })
        }
        Error::Overloaded { .. } => Failure::new(Code::ResourceExhausted, message),
        Error::Timeout { .. } => {
            Failure::new(Code::DeadlineExceeded, message).detail("Timeout", &shared::Timeout {})
        }
        Error::Closed => Failure::new(Code::Unavailable, message),
        _ => Failure::new(Code::Internal, message).detail("Unknown", &shared::Unknown {}),
    }
}

fn wrong_version(
    expected: ExpectedVersion,
    actual: CurrentVersion,
) -> shared::WrongExpectedVersion {
    use shared::wrong_expected_version::{
        CurrentStreamRevisionOption as Current, ExpectedStreamPositionOption as Expected,
    };
    let current = match mapping::current_revision(actual) {
        Some(r) => Current::CurrentStreamRevision(r),
        None => Current::CurrentNoStream(()),
    };
    let expected = match expected {
        ExpectedVersion::Exact(v) => Expected::ExpectedStreamPosition(mapping::revision(v)),
        ExpectedVersion::NoStream => Expected::ExpectedNoStream(()),
        ExpectedVersion::StreamExists => Expected::ExpectedStreamExists(()),
        ExpectedVersion::Any => Expected::ExpectedAny(()),
    };
    shared::WrongExpectedVersion {
        current_stream_revision_option: Some(current),
        expected_stream_position_option: Some(expected),
    }
}

fn success_of(
    version: Option<u64>,
    position: Option<strata_core::Position>,
) -> batch_append_resp::Success {
    let revision = match version {
        Some(v) => success::CurrentRevisionOption::CurrentRevision(mapping::revision(v)),
        None => success::CurrentRevisionOption::NoStream(()),
    };
    let position = match position {
        Some(p) => success::PositionOption::Position(shared::AllStreamPosition {
            commit_position: mapping::commit_position(p),
            prepare_position: mapping::commit_position(p),
        }),
        None => success::PositionOption::NoPosition(()),
    };
    batch_append_resp::Success {
        current_revision_option: Some(revision),
        position_option: Some(position),
    }
}

fn failed(
    correlation: Option<shared::Uuid>,
    options: Option<&batch_append_req::Options>,
    failure: Failure,
) -> BatchAppendResp {
    BatchAppendResp {
        correlation_id: correlation,
        result: Some(batch_append_resp::Result::Error(rpc::Status {
            code: failure.code as i32,
            message: failure.message,
            details: failure.details,
        })),
        stream_identifier: options.and_then(|o| o.stream_identifier.clone()),
        expected_stream_position: options.and_then(|o| echo(o.expected_stream_position)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_refusal_over_a_size_limit_carries_the_maximum_append_size() {
        let stream = StreamId::new("orders-1").unwrap();
        let limits = Limits {
            max_append_bytes: 4096,
            ..Limits::default()
        };
        let f = failure_of(&Error::too_large("too big"), &stream, &limits);
        assert_eq!(f.code, Code::InvalidArgument);
        let detail = f.details.expect("a detail");
        assert!(
            detail.type_url.ends_with(".MaximumAppendSizeExceeded"),
            "{detail:?}"
        );
        let decoded = shared::MaximumAppendSizeExceeded::decode(&detail.value[..]).unwrap();
        assert_eq!(decoded.max_append_size, 4096);
        let f = failure_of(&Error::invalid("no type"), &stream, &limits);
        assert!(f.details.unwrap().type_url.ends_with(".BadRequest"));
    }
}
