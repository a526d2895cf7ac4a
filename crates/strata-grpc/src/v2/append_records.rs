//! `AppendRecords`: records each naming their stream, and consistency
//! checks, in one request, appended as one atomic multi-stream append.
//!
//! Records are grouped per stream in first-appearance order (the store
//! gives each stream's events consecutive positions, so records sent
//! interleaved across streams are written grouped), each stream's records
//! in the order sent. A stream-state check becomes its stream's guard; a
//! check on a stream the request writes no records to would need a guard
//! without a write, which the store's multi-stream append cannot hold in
//! the same atomic step, so it is refused as unimplemented.

use std::collections::HashMap;

use strata_core::{AppendResult, Error, EventStore, ExpectedVersion};
use tonic::Status;

use super::parts::Parts;
use super::{errors, records, wire_position};
use crate::auth::Caller;
use crate::proto::v2::consistency_check::Type as Check;
use crate::proto::v2::{AppendRecordsRequest, AppendRecordsResponse, StreamRevision};

/// Runs one `AppendRecords` call.
pub async fn append_records(
    store: &dyn EventStore,
    caller: &Caller,
    request: AppendRecordsRequest,
) -> Result<AppendRecordsResponse, Status> {
    if request.records.is_empty() {
        return Err(Status::invalid_argument(
            "an append of records needs at least one record",
        ));
    }
    let mut parts = Parts::new(store.limits().clone(), caller);
    for record in request.records {
        let stream = records::stream(&record.stream)?;
        let part = match parts.find(&stream) {
            Some(part) => part,
            None => parts.open(stream, ExpectedVersion::Any)?,
        };
        parts.push(part, record)?;
    }
    let checks = guard(&mut parts, &request.checks)?;
    let parts = parts.into_parts();
    let streams: Vec<String> = parts
        .iter()
        .map(|p| p.stream.as_str().to_string())
        .collect();
    match store.append_multi(parts).await {
        Ok(results) => Ok(answer(&streams, &results)),
        Err(Error::WrongExpectedVersion {
            stream,
            expected,
            actual,
        }) => {
            let index = checks.get(stream.as_str()).map_or(0, |(index, _)| *index);
            Err(errors::consistency_violation(
                index, &stream, expected, actual,
            ))
        }
        Err(Error::StreamDeleted { stream }) => match checks.get(stream.as_str()) {
            Some(&(index, expected)) => Err(errors::tombstoned_violation(index, &stream, expected)),
            None => Err(errors::tombstoned(&stream)),
        },
        Err(e) => Err(errors::from_error(&e)),
    }
}

/// Sets each checked stream's guard; per checked stream, the check's
/// index and guard.
fn guard(
    parts: &mut Parts<'_>,
    checks: &[crate::proto::v2::ConsistencyCheck],
) -> Result<HashMap<String, (usize, ExpectedVersion)>, Status> {
    let mut checked = HashMap::new();
    for (index, check) in checks.iter().enumerate() {
        let Some(Check::StreamState(state)) = &check.r#type else {
            return Err(Status::invalid_argument(format!(
                "consistency check {index} has no kind; a stream state check is supported"
            )));
        };
        let stream = records::stream(&state.stream)?;
        let Some(part) = parts.find(&stream) else {
            return Err(Status::unimplemented(format!(
                "consistency check {index} is on stream `{stream}`, which the request writes no \
                 records to; a check is supported only on a stream the request appends to"
            )));
        };
        let expected = records::expected(Some(state.expected_state))?;
        if checked
            .insert(stream.as_str().to_string(), (index, expected))
            .is_some()
        {
            return Err(Status::invalid_argument(format!(
                "two consistency checks on stream `{stream}`"
            )));
        }
        parts.guard(part, expected);
    }
    Ok(checked)
}

/// Each stream's revision after the append, in first-appearance order, and
/// the position of the last event.
fn answer(streams: &[String], results: &[AppendResult]) -> AppendRecordsResponse {
    let revisions = streams
        .iter()
        .zip(results)
        .map(|(stream, r)| StreamRevision {
            stream: stream.clone(),
            revision: crate::status::wire_revision(r.next_expected_version),
        })
        .collect();
    let position = results
        .iter()
        .map(|r| r.last_position)
        .max()
        .map_or(0, wire_position);
    AppendRecordsResponse {
        revisions,
        position,
    }
}
