//! Strata's errors as the gRPC statuses the clients map to their own
//! errors (the `exception` trailer names the case, as the clients expect).

use strata_core::Error;
use tonic::metadata::MetadataValue;
use tonic::{Code, Status};

/// The trailer that names the failure for the clients.
pub const EXCEPTION: &str = "exception";

/// The `exception` of a create for a persistent subscription that exists.
pub const SUBSCRIPTION_EXISTS: &str = "persistent-subscription-exists";
/// The `exception` of a call for a persistent subscription that does not
/// exist.
pub const SUBSCRIPTION_MISSING: &str = "persistent-subscription-does-not-exist";
/// The `exception` of a persistent subscription read the server ends.
pub const SUBSCRIPTION_DROPPED: &str = "persistent-subscription-dropped";

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
            let mut s = with_exception(Code::FailedPrecondition, message, "stream-deleted");
            if let Ok(v) = MetadataValue::try_from(stream.as_str()) {
                s.metadata_mut().insert("stream-name", v);
            }
            s
        }
        Error::StreamNotFound { .. } => with_exception(Code::NotFound, message, "stream-not-found"),
        Error::WrongExpectedVersion { .. } => {
            with_exception(Code::FailedPrecondition, message, "wrong-expected-version")
        }
        Error::InvalidInput { .. } | Error::IdempotencyConflict { .. } => {
            with_exception(Code::InvalidArgument, message, "invalid-argument")
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
