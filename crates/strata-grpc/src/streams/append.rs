//! `Streams.Append`: options first, then the proposed messages, within the
//! store's append limits; a failed guard is answered in the body.

use strata_core::{Error, EventStore, ExpectedVersion, NewEvent, StreamId};
use strata_server::Role;
use tonic::{Status, Streaming};

use crate::auth::Caller;
use crate::mapping;
use crate::mapping::ExpectedRevision;
use crate::proto::shared::Empty;
use crate::proto::streams::append_req;
use crate::proto::streams::append_resp::{self, success, wrong_expected_version as wev};
use crate::proto::streams::{AppendReq, AppendResp};
use crate::status;

/// Runs one append call.
pub async fn append(
    store: &dyn EventStore,
    caller: &Caller,
    mut messages: Streaming<AppendReq>,
) -> Result<AppendResp, Status> {
    let options = match messages.message().await?.and_then(|m| m.content) {
        Some(append_req::Content::Options(o)) => o,
        _ => {
            return Err(Status::invalid_argument(
                "an append starts with its options",
            ))
        }
    };
    let name = mapping::stream_name(options.stream_identifier.as_ref())?;
    let target = crate::metadata::target(name)?;
    let stream = match &target {
        Some(target) => {
            caller.require(Role::Admin, target.as_str())?;
            mapping::readable_stream_id(options.stream_identifier.as_ref())?
        }
        None => {
            let stream = mapping::stream_id(options.stream_identifier.as_ref())?;
            caller.require(Role::Write, stream.as_str())?;
            stream
        }
    };
    let expected = options.expected_stream_revision.guard();
    let events = proposed(store, &mut messages).await?;
    let outcome = write(store, &stream, target.as_ref(), expected, events).await;
    match outcome {
        Ok((version, position)) => Ok(success(version, position)),
        Err(Error::WrongExpectedVersion {
            expected, actual, ..
        }) => Ok(wrong_version(expected, mapping::current_revision(actual))),
        Err(e) => Err(status::from_error(&e)),
    }
}

/// Appends `events` to `stream`, or sets `target`'s metadata when
/// `stream` is its metadata stream; no events checks the guard alone.
/// The stream's new version and the last event's position.
pub(super) async fn write(
    store: &dyn EventStore,
    stream: &StreamId,
    target: Option<&StreamId>,
    expected: ExpectedVersion,
    events: Vec<NewEvent>,
) -> strata_core::Result<(Option<u64>, Option<strata_core::Position>)> {
    if events.is_empty() {
        return check_only(store, stream, expected).await;
    }
    if let Some(target) = target {
        return crate::metadata::set(store, target, expected, events).await;
    }
    store
        .append(stream, expected, events)
        .await
        .map(|r| (Some(r.next_expected_version), Some(r.last_position)))
}

/// The proposed messages as events, refusing more than the store takes in
/// one append (by count or bytes) before reading further.
async fn proposed(
    store: &dyn EventStore,
    messages: &mut Streaming<AppendReq>,
) -> Result<Vec<NewEvent>, Status> {
    let limits = store.limits();
    let (mut events, mut bytes) = (Vec::new(), 0usize);
    while let Some(message) = messages.message().await? {
        let Some(append_req::Content::ProposedMessage(m)) = message.content else {
            return Err(Status::invalid_argument("options come once, first"));
        };
        bytes = bytes.saturating_add(m.data.len() + m.custom_metadata.len());
        if events.len() >= limits.max_events_per_append || bytes > limits.max_append_bytes {
            return Err(status::with_exception(
                tonic::Code::InvalidArgument,
                format!(
                    "an append holds at most {} events and {} bytes",
                    limits.max_events_per_append, limits.max_append_bytes
                ),
                status::MAXIMUM_APPEND_SIZE_EXCEEDED,
            ));
        }
        events.push(mapping::new_event(
            m.id.as_ref(),
            &m.metadata,
            &m.custom_metadata,
            m.data,
        )?);
    }
    Ok(events)
}

/// An append of no events: the guard alone, against the stream as it is.
async fn check_only(
    store: &dyn EventStore,
    stream: &StreamId,
    expected: ExpectedVersion,
) -> strata_core::Result<(Option<u64>, Option<strata_core::Position>)> {
    let info = store.stream_info(stream).await?;
    let current = match &info {
        Some(i) => strata_core::CurrentVersion::Current(i.version),
        None => strata_core::CurrentVersion::NoStream,
    };
    if !expected.accepts(current) {
        return Err(Error::WrongExpectedVersion {
            stream: stream.clone(),
            expected,
            actual: current,
        });
    }
    Ok((info.map(|i| i.version), None))
}

fn success(version: Option<u64>, position: Option<strata_core::Position>) -> AppendResp {
    let revision = match version {
        Some(v) => success::CurrentRevisionOption::CurrentRevision(mapping::revision(v)),
        None => success::CurrentRevisionOption::NoStream(Empty {}),
    };
    let position = match position {
        Some(p) => success::PositionOption::Position(append_resp::Position {
            commit_position: mapping::commit_position(p),
            prepare_position: mapping::commit_position(p),
        }),
        None => success::PositionOption::NoPosition(Empty {}),
    };
    AppendResp {
        result: Some(append_resp::Result::Success(append_resp::Success {
            current_revision_option: Some(revision),
            position_option: Some(position),
        })),
    }
}

/// A wrong-expected-version answer, with both the current and the older
/// pair of oneofs set (clients read either).
fn wrong_version(expected: ExpectedVersion, current: Option<u64>) -> AppendResp {
    let (current_new, current_old) = match current {
        Some(r) => (
            wev::CurrentRevisionOption::CurrentRevision(r),
            wev::CurrentRevisionOption2060::CurrentRevision2060(r),
        ),
        None => (
            wev::CurrentRevisionOption::CurrentNoStream(Empty {}),
            wev::CurrentRevisionOption2060::NoStream2060(Empty {}),
        ),
    };
    let (expected_new, expected_old) = match expected {
        ExpectedVersion::Exact(v) => (
            wev::ExpectedRevisionOption::ExpectedRevision(mapping::revision(v)),
            wev::ExpectedRevisionOption2060::ExpectedRevision2060(mapping::revision(v)),
        ),
        ExpectedVersion::NoStream => (
            wev::ExpectedRevisionOption::ExpectedNoStream(Empty {}),
            wev::ExpectedRevisionOption2060::Any2060(Empty {}),
        ),
        ExpectedVersion::StreamExists => (
            wev::ExpectedRevisionOption::ExpectedStreamExists(Empty {}),
            wev::ExpectedRevisionOption2060::StreamExists2060(Empty {}),
        ),
        ExpectedVersion::Any => (
            wev::ExpectedRevisionOption::ExpectedAny(Empty {}),
            wev::ExpectedRevisionOption2060::Any2060(Empty {}),
        ),
    };
    AppendResp {
        result: Some(append_resp::Result::WrongExpectedVersion(
            append_resp::WrongExpectedVersion {
                current_revision_option_20_6_0: Some(current_old),
                expected_revision_option_20_6_0: Some(expected_old),
                current_revision_option: Some(current_new),
                expected_revision_option: Some(expected_new),
            },
        )),
    }
}
