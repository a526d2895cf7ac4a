//! `AppendSession`: the client streams one request per stream (its
//! records and an optional expected revision) and half-closes; the
//! requests are then appended as one atomic multi-stream append, so a
//! guard that fails on one stream writes nothing to any.

use futures::{Stream, StreamExt};
use strata_core::{AppendResult, EventStore};
use tonic::Status;

use super::parts::Parts;
use super::{errors, records, wire_position};
use crate::auth::Caller;
use crate::proto::v2::{AppendRequest, AppendResponse, AppendSessionResponse};

/// Runs one session over `requests`.
///
/// A stream named twice is refused (`StreamAlreadyInAppendSession`), as
/// is a request with no records: the store's multi-stream append takes
/// one part per stream, each with events.
pub async fn append_session<S>(
    store: &dyn EventStore,
    caller: &Caller,
    mut requests: S,
) -> Result<AppendSessionResponse, Status>
where
    S: Stream<Item = Result<AppendRequest, Status>> + Unpin,
{
    let mut parts = Parts::new(store.limits().clone(), caller);
    while let Some(request) = requests.next().await {
        gather(&mut parts, request?)?;
    }
    if parts.is_empty() {
        return Err(errors::no_requests());
    }
    let parts = parts.into_parts();
    let streams: Vec<String> = parts
        .iter()
        .map(|p| p.stream.as_str().to_string())
        .collect();
    let results = store
        .append_multi(parts)
        .await
        .map_err(|e| errors::from_error(&e))?;
    Ok(answer(&streams, &results))
}

/// Adds one request's stream, guard and records.
fn gather(parts: &mut Parts<'_>, request: AppendRequest) -> Result<(), Status> {
    let stream = records::stream(&request.stream)?;
    if parts.find(&stream).is_some() {
        return Err(errors::already_in_session(&stream));
    }
    if request.records.is_empty() {
        return Err(Status::invalid_argument(format!(
            "the request for stream `{stream}` has no records"
        )));
    }
    if let Some(other) = request
        .records
        .iter()
        .find(|r| !r.stream.is_empty() && r.stream != request.stream)
    {
        return Err(Status::invalid_argument(format!(
            "a record for stream `{}` in the request for stream `{stream}`",
            other.stream
        )));
    }
    let expected = records::expected(request.expected_revision)?;
    let part = parts.open(stream, expected)?;
    for record in request.records {
        parts.push(part, record)?;
    }
    Ok(())
}

/// One answer per request, in order, and the position of the last event.
fn answer(streams: &[String], results: &[AppendResult]) -> AppendSessionResponse {
    let output = streams
        .iter()
        .zip(results)
        .map(|(stream, r)| AppendResponse {
            stream: stream.clone(),
            stream_revision: crate::status::wire_revision(r.next_expected_version),
            position: Some(wire_position(r.last_position)),
        })
        .collect();
    let position = results
        .iter()
        .map(|r| r.last_position)
        .max()
        .map_or(0, wire_position);
    AppendSessionResponse { output, position }
}
