//! The v2 append's failures as the clients decode them: a status code and,
//! for the failures the protocol names, a `google.rpc.Status` in the
//! `grpc-status-details-bin` trailer with the same code and message and one
//! packed detail message. No `exception` trailer is set: a client that
//! finds one reads the failure from it instead of from the details.

use bytes::Bytes;
use prost::Message;
use strata_core::{CurrentVersion, Error, ExpectedVersion, StreamId};
use tonic::{Code, Status};

use crate::proto::google::rpc;
use crate::proto::v2::errors::{
    consistency_violation, AppendConsistencyViolationErrorDetails,
    AppendRecordSizeExceededErrorDetails, AppendTransactionSizeExceededErrorDetails,
    ConsistencyViolation, StreamAlreadyInAppendSessionErrorDetails,
    StreamRevisionConflictErrorDetails, StreamTombstonedErrorDetails,
};
use crate::status;

/// The prefix of a packed detail's type URL; the clients look the type up
/// by the name after the last `/`.
pub const TYPE_URL_PREFIX: &str = "type.googleapis.com/";

/// The protocol package the details are declared in.
pub const ERRORS_PACKAGE: &str = "kurrentdb.protocol.v2.streams.errors";

/// A status whose details carry `detail`, named `name` in [`ERRORS_PACKAGE`].
fn with_detail<M: Message>(code: Code, message: String, name: &str, detail: &M) -> Status {
    let rich = rpc::Status {
        code: code as i32,
        message: message.clone(),
        details: Some(prost_types::Any {
            type_url: format!("{TYPE_URL_PREFIX}{ERRORS_PACKAGE}.{name}"),
            value: detail.encode_to_vec(),
        }),
    };
    Status::with_details(code, message, Bytes::from(rich.encode_to_vec()))
}

/// A guard that did not hold: `FailedPrecondition` with
/// `StreamRevisionConflictErrorDetails` (revisions in the wire's signed
/// form; -1 as the actual revision for a stream with no live events).
pub fn revision_conflict(
    stream: &StreamId,
    expected: ExpectedVersion,
    actual: CurrentVersion,
) -> Status {
    let (expected, actual) = (
        status::wire_expected(expected),
        status::wire_current(actual),
    );
    let message = format!(
        "Append failed due to a revision conflict on stream '{stream}'. \
         Expected revision: {expected}. Actual revision: {actual}."
    );
    let detail = StreamRevisionConflictErrorDetails {
        stream: stream.as_str().to_string(),
        expected_revision: expected,
        actual_revision: actual,
    };
    with_detail(
        Code::FailedPrecondition,
        message,
        "StreamRevisionConflictErrorDetails",
        &detail,
    )
}

/// An append to a tombstoned stream: `FailedPrecondition` with
/// `StreamTombstonedErrorDetails`.
pub fn tombstoned(stream: &StreamId) -> Status {
    let detail = StreamTombstonedErrorDetails {
        stream: stream.as_str().to_string(),
    };
    with_detail(
        Code::FailedPrecondition,
        format!("Stream '{stream}' is tombstoned: it takes no more records."),
        "StreamTombstonedErrorDetails",
        &detail,
    )
}

/// A record over the store's event size limit: `InvalidArgument` with
/// `AppendRecordSizeExceededErrorDetails` (sizes in bytes, capped at the
/// field's range).
pub fn record_too_large(stream: &StreamId, record_id: &str, size: usize, max: usize) -> Status {
    let detail = AppendRecordSizeExceededErrorDetails {
        stream: stream.as_str().to_string(),
        record_id: record_id.to_string(),
        size: clamp(size),
        max_size: clamp(max),
    };
    with_detail(
        Code::InvalidArgument,
        format!(
            "Record {record_id} of stream '{stream}' is {size} bytes; the limit is {max} bytes."
        ),
        "AppendRecordSizeExceededErrorDetails",
        &detail,
    )
}

/// An append over the store's append size limit: `Aborted` with
/// `AppendTransactionSizeExceededErrorDetails`.
pub fn transaction_too_large(size: usize, max: usize) -> Status {
    let detail = AppendTransactionSizeExceededErrorDetails {
        size: clamp(size),
        max_size: clamp(max),
    };
    with_detail(
        Code::Aborted,
        format!("The append is at least {size} bytes; the limit is {max} bytes."),
        "AppendTransactionSizeExceededErrorDetails",
        &detail,
    )
}

/// A session naming a stream a second time: `Aborted` with
/// `StreamAlreadyInAppendSessionErrorDetails`.
pub fn already_in_session(stream: &StreamId) -> Status {
    let detail = StreamAlreadyInAppendSessionErrorDetails {
        stream: stream.as_str().to_string(),
    };
    with_detail(
        Code::Aborted,
        format!("Stream '{stream}' appears twice in one append session."),
        "StreamAlreadyInAppendSessionErrorDetails",
        &detail,
    )
}

/// A session the client closed without a request: `FailedPrecondition`,
/// without details (the protocol declares none for it).
pub fn no_requests() -> Status {
    Status::failed_precondition("An append session needs at least one request.")
}

/// A consistency check that did not hold: `FailedPrecondition` with
/// `AppendConsistencyViolationErrorDetails` naming the check by its index
/// in the request.
pub fn consistency_violation(
    check_index: usize,
    stream: &StreamId,
    expected: ExpectedVersion,
    actual: CurrentVersion,
) -> Status {
    state_violation(check_index, stream, expected, status::wire_current(actual))
}

/// The state a consistency violation reports for a tombstoned stream.
pub const WIRE_TOMBSTONED: i64 = -6;

/// A consistency check on a stream that turned out tombstoned.
pub fn tombstoned_violation(
    check_index: usize,
    stream: &StreamId,
    expected: ExpectedVersion,
) -> Status {
    state_violation(check_index, stream, expected, WIRE_TOMBSTONED)
}

/// A stream state check that did not hold, the actual state in wire form.
fn state_violation(
    check_index: usize,
    stream: &StreamId,
    expected: ExpectedVersion,
    actual: i64,
) -> Status {
    let expected = status::wire_expected(expected);
    let violation = ConsistencyViolation {
        check_index: clamp(check_index),
        r#type: Some(consistency_violation::Type::StreamState(
            consistency_violation::StreamStateViolation {
                stream: stream.as_str().to_string(),
                expected_state: expected,
                actual_state: actual,
            },
        )),
    };
    with_detail(
        Code::FailedPrecondition,
        format!(
            "Consistency check {check_index} failed: stream '{stream}' was expected at \
             {expected} and is at {actual}."
        ),
        "AppendConsistencyViolationErrorDetails",
        &AppendConsistencyViolationErrorDetails {
            violations: vec![violation],
        },
    )
}

/// A store error as the v2 clients expect it: a failed guard and a
/// tombstoned stream carry their details; every other error is the status
/// the other calls answer.
pub fn from_error(e: &Error) -> Status {
    match e {
        Error::WrongExpectedVersion {
            stream,
            expected,
            actual,
        } => revision_conflict(stream, *expected, *actual),
        Error::StreamDeleted { stream } => tombstoned(stream),
        other => status::from_error(other),
    }
}

/// A size or index in an `int32` field.
fn clamp(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `google.rpc.Status` a status carries, checked against the
    /// status itself as the clients check it.
    fn rich(s: &Status) -> rpc::Status {
        let rich = rpc::Status::decode(s.details()).unwrap();
        assert_eq!(rich.code, s.code() as i32, "same code");
        assert_eq!(rich.message, s.message(), "same message");
        assert!(s.metadata().get(status::EXCEPTION).is_none());
        rich
    }

    fn detail<M: Message + Default>(s: &Status, name: &str) -> M {
        let any = rich(s).details.unwrap();
        assert_eq!(
            any.type_url,
            format!("type.googleapis.com/kurrentdb.protocol.v2.streams.errors.{name}")
        );
        M::decode(&any.value[..]).unwrap()
    }

    fn stream() -> StreamId {
        StreamId::new("orders-1").unwrap()
    }

    #[test]
    fn a_failed_guard_is_a_revision_conflict_with_wire_revisions() {
        let s = from_error(&Error::WrongExpectedVersion {
            stream: stream(),
            expected: ExpectedVersion::Exact(3),
            actual: CurrentVersion::Current(5),
        });
        assert_eq!(s.code(), Code::FailedPrecondition);
        let d: StreamRevisionConflictErrorDetails =
            detail(&s, "StreamRevisionConflictErrorDetails");
        assert_eq!(d.stream, "orders-1");
        assert_eq!((d.expected_revision, d.actual_revision), (2, 4));

        let s = revision_conflict(
            &stream(),
            ExpectedVersion::StreamExists,
            CurrentVersion::NoStream,
        );
        let d: StreamRevisionConflictErrorDetails =
            detail(&s, "StreamRevisionConflictErrorDetails");
        assert_eq!((d.expected_revision, d.actual_revision), (-4, -1));
    }

    #[test]
    fn a_tombstoned_stream_is_named() {
        let s = from_error(&Error::StreamDeleted { stream: stream() });
        assert_eq!(s.code(), Code::FailedPrecondition);
        let d: StreamTombstonedErrorDetails = detail(&s, "StreamTombstonedErrorDetails");
        assert_eq!(d.stream, "orders-1");
    }

    #[test]
    fn sizes_and_sessions_carry_their_details() {
        let s = record_too_large(&stream(), "0190f1a2-3b4c-7d5e-8f60-718293a4b5c6", 10, 5);
        assert_eq!(s.code(), Code::InvalidArgument);
        let d: AppendRecordSizeExceededErrorDetails =
            detail(&s, "AppendRecordSizeExceededErrorDetails");
        assert_eq!((d.size, d.max_size), (10, 5));
        assert_eq!(d.record_id, "0190f1a2-3b4c-7d5e-8f60-718293a4b5c6");

        let s = transaction_too_large(usize::MAX, 64);
        assert_eq!(s.code(), Code::Aborted);
        let d: AppendTransactionSizeExceededErrorDetails =
            detail(&s, "AppendTransactionSizeExceededErrorDetails");
        assert_eq!((d.size, d.max_size), (i32::MAX, 64));

        let s = already_in_session(&stream());
        assert_eq!(s.code(), Code::Aborted);
        let d: StreamAlreadyInAppendSessionErrorDetails =
            detail(&s, "StreamAlreadyInAppendSessionErrorDetails");
        assert_eq!(d.stream, "orders-1");

        assert_eq!(no_requests().code(), Code::FailedPrecondition);
        assert!(no_requests().details().is_empty());
    }

    #[test]
    fn a_violated_check_names_its_index_and_states() {
        let s = consistency_violation(
            2,
            &stream(),
            ExpectedVersion::NoStream,
            CurrentVersion::Current(1),
        );
        assert_eq!(s.code(), Code::FailedPrecondition);
        let d: AppendConsistencyViolationErrorDetails =
            detail(&s, "AppendConsistencyViolationErrorDetails");
        let [v] = &d.violations[..] else {
            panic!("one violation: {d:?}")
        };
        assert_eq!(v.check_index, 2);
        let Some(consistency_violation::Type::StreamState(state)) = &v.r#type else {
            panic!("a stream state violation: {v:?}")
        };
        assert_eq!(state.stream, "orders-1");
        assert_eq!((state.expected_state, state.actual_state), (-1, 0));

        let s = tombstoned_violation(0, &stream(), ExpectedVersion::Any);
        let d: AppendConsistencyViolationErrorDetails =
            detail(&s, "AppendConsistencyViolationErrorDetails");
        let Some(consistency_violation::Type::StreamState(state)) = &d.violations[0].r#type else {
            panic!("a stream state violation: {d:?}")
        };
        assert_eq!(
            (state.expected_state, state.actual_state),
            (-2, WIRE_TOMBSTONED)
        );
    }

    #[test]
    fn other_errors_are_the_usual_statuses() {
        let s = from_error(&Error::invalid("bad"));
        assert_eq!(s.code(), Code::InvalidArgument);
        assert!(s.details().is_empty());
    }
}
