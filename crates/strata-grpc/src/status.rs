//! Strata's errors as the gRPC statuses the clients map to their own
//! errors (the `exception` trailer names the case, as the clients expect).

use strata_core::{CurrentVersion, Error, ExpectedVersion, StreamId};
use tonic::metadata::MetadataValue;
use tonic::{Code, Status};

use crate::mapping;

/// The trailer that names the failure for the clients.
pub const EXCEPTION: &str = "exception";
/// The trailer naming the stream a failure is about.
pub const STREAM_NAME: &str = "stream-name";
/// The trailer carrying a failed guard's expected revision (wire form).
pub const EXPECTED_VERSION: &str = "expected-version";
/// The trailer carrying the stream's revision when a guard failed (absent
/// when the stream had no live events).
pub const ACTUAL_VERSION: &str = "actual-version";

/// The wire's expected revision for a stream that must not exist.
pub const WIRE_NO_STREAM: i64 = -1;
/// The wire's expected revision for no check.
pub const WIRE_ANY: i64 = -2;
/// The wire's expected revision for a stream that must exist.
pub const WIRE_STREAM_EXISTS: i64 = -4;

/// The `exception` of a create for a persistent subscription that exists.
pub const SUBSCRIPTION_EXISTS: &str = "persistent-subscription-exists";
/// The `exception` of a call for a persistent subscription that does not
/// exist.
pub const SUBSCRIPTION_MISSING: &str = "persistent-subscription-does-not-exist";
/// The `exception` of a persistent subscription read the server ends.
pub const SUBSCRIPTION_DROPPED: &str = "persistent-subscription-dropped";
/// The `exception` of a persistent subscription read refused because the
/// subscription has as many readers as it takes.
pub const MAXIMUM_SUBSCRIBERS_REACHED: &str = "maximum-subscribers-reached";
/// The `exception` of an append over the store's size limits.
pub const MAXIMUM_APPEND_SIZE_EXCEEDED: &str = "maximum-append-size-exceeded";

/// A status with an `exception` trailer.
pub fn with_exception(code: Code, message: impl Into<String>, exception: &'static str) -> Status {
    let mut status = Status::new(code, message);
    status
        .metadata_mut()
        .insert(EXCEPTION, MetadataValue::from_static(exception));
    status
}

/// The status for a store error.
pub fn from_error(e: &Error) -> Status {
    let message = e.to_string();
    match e {
        Error::StreamDeleted { stream } => {
            // The clients recognise a deleted stream by these words.
            let message = format!("Event stream '{stream}' is deleted ({message})");
            let mut s = with_exception(Code::FailedPrecondition, message, "stream-deleted");
            insert(&mut s, STREAM_NAME, stream.as_str());
            s
        }
        Error::StreamNotFound { .. } => with_exception(Code::NotFound, message, "stream-not-found"),
        Error::WrongExpectedVersion {
            stream,
            expected,
            actual,
        } => wrong_expected_version(stream, *expected, *actual),
        Error::InvalidInput { .. } | Error::IdempotencyConflict { .. } => {
            with_exception(Code::InvalidArgument, message, "invalid-argument")
        }
        Error::TooLarge { .. } => {
            with_exception(Code::InvalidArgument, message, MAXIMUM_APPEND_SIZE_EXCEEDED)
        }
        Error::ConditionFailed { .. } => Status::failed_precondition(message),
        Error::GroupNotFound { .. } => {
            with_exception(Code::NotFound, message, SUBSCRIPTION_MISSING)
        }
        Error::Overloaded { .. } => Status::resource_exhausted(message),
        Error::Timeout { .. } => Status::deadline_exceeded(message),
        Error::Unsupported { .. } => Status::unimplemented(message),
        Error::Closed => Status::unavailable(message),
        _ => Status::internal(message),
    }
}

/// A failed guard of a delete or tombstone (appends answer theirs in the
/// body). The clients read the revisions from the trailers or from the
/// message, which therefore has their fixed form: `WrongExpectedVersion…
/// Stream: NAME, Expected version: N, Actual version: N`, revisions 0-based,
/// -1 for no stream, -2 for any, -4 for stream exists.
fn wrong_expected_version(
    stream: &StreamId,
    expected: ExpectedVersion,
    actual: CurrentVersion,
) -> Status {
    let expected = wire_expected(expected);
    let actual = match actual {
        CurrentVersion::NoStream => None,
        CurrentVersion::Current(v) => Some(wire_revision(v)),
    };
    let message = format!(
        "WrongExpectedVersion: the stream is not at the expected revision. \
         Stream: {stream}, Expected version: {expected}, Actual version: {}",
        actual.unwrap_or(WIRE_NO_STREAM)
    );
    let mut s = with_exception(Code::FailedPrecondition, message, "wrong-expected-version");
    insert(&mut s, STREAM_NAME, stream.as_str());
    insert(&mut s, EXPECTED_VERSION, &expected.to_string());
    if let Some(actual) = actual {
        insert(&mut s, ACTUAL_VERSION, &actual.to_string());
    }
    s
}

/// A guard in the wire's signed form: a 0-based revision, or -1 for no
/// stream, -2 for any, -4 for stream exists.
pub fn wire_expected(expected: ExpectedVersion) -> i64 {
    match expected {
        ExpectedVersion::Any => WIRE_ANY,
        ExpectedVersion::NoStream | ExpectedVersion::Exact(0) => WIRE_NO_STREAM,
        ExpectedVersion::StreamExists => WIRE_STREAM_EXISTS,
        ExpectedVersion::Exact(v) => wire_revision(v),
    }
}

/// A stream's current version in the wire's signed form: its 0-based
/// revision, or -1 when it has no live events.
pub fn wire_current(current: CurrentVersion) -> i64 {
    match current {
        CurrentVersion::NoStream => WIRE_NO_STREAM,
        CurrentVersion::Current(v) => wire_revision(v),
    }
}

/// A 1-based version as a signed 0-based wire revision.
pub fn wire_revision(version: strata_core::Version) -> i64 {
    i64::try_from(mapping::revision(version)).unwrap_or(i64::MAX)
}

/// Adds a trailer when `value` is valid metadata text.
fn insert(status: &mut Status, key: &'static str, value: &str) {
    if let Ok(v) = MetadataValue::try_from(value) {
        status.metadata_mut().insert(key, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trailer<'a>(s: &'a Status, key: &str) -> Option<&'a str> {
        s.metadata().get(key).map(|v| v.to_str().unwrap())
    }

    #[test]
    fn an_append_over_a_size_limit_says_so_and_bad_input_stays_invalid() {
        let s = from_error(&Error::too_large(
            "event 0 (`A`) is 11 bytes, the limit is 10",
        ));
        assert_eq!(s.code(), Code::InvalidArgument);
        assert_eq!(trailer(&s, EXCEPTION), Some(MAXIMUM_APPEND_SIZE_EXCEEDED));
        assert!(s.message().contains("the limit is 10"), "{s:?}");
        let s = from_error(&Error::invalid("event 0 has an empty type"));
        assert_eq!(s.code(), Code::InvalidArgument);
        assert_eq!(trailer(&s, EXCEPTION), Some("invalid-argument"));
    }

    #[test]
    fn a_failed_guard_names_stream_and_revisions_as_the_clients_parse_them() {
        let stream = StreamId::new("orders-1").unwrap();
        let s = from_error(&Error::WrongExpectedVersion {
            stream: stream.clone(),
            expected: ExpectedVersion::Exact(1),
            actual: CurrentVersion::Current(2),
        });
        assert_eq!(s.code(), Code::FailedPrecondition);
        assert!(s.message().starts_with("WrongExpectedVersion"), "{s:?}");
        assert!(
            s.message()
                .ends_with(". Stream: orders-1, Expected version: 0, Actual version: 1"),
            "{s:?}"
        );
        assert_eq!(trailer(&s, EXCEPTION), Some("wrong-expected-version"));
        assert_eq!(trailer(&s, STREAM_NAME), Some("orders-1"));
        assert_eq!(trailer(&s, EXPECTED_VERSION), Some("0"));
        assert_eq!(trailer(&s, ACTUAL_VERSION), Some("1"));

        for (expected, wire) in [
            (ExpectedVersion::Any, "-2"),
            (ExpectedVersion::NoStream, "-1"),
            (ExpectedVersion::Exact(0), "-1"),
            (ExpectedVersion::StreamExists, "-4"),
        ] {
            let s = from_error(&Error::WrongExpectedVersion {
                stream: stream.clone(),
                expected,
                actual: CurrentVersion::NoStream,
            });
            assert_eq!(trailer(&s, EXPECTED_VERSION), Some(wire));
            assert_eq!(trailer(&s, ACTUAL_VERSION), None, "no stream: no trailer");
            assert!(
                s.message()
                    .ends_with(&format!("Expected version: {wire}, Actual version: -1")),
                "{s:?}"
            );
        }
    }

    #[test]
    fn a_deleted_stream_says_it_is_deleted() {
        let s = from_error(&Error::StreamDeleted {
            stream: StreamId::new("orders-1").unwrap(),
        });
        assert_eq!(s.code(), Code::FailedPrecondition);
        assert!(s.message().contains("is deleted"), "{s:?}");
        assert_eq!(trailer(&s, EXCEPTION), Some("stream-deleted"));
        assert_eq!(trailer(&s, STREAM_NAME), Some("orders-1"));
    }
}
