//! `Streams.Delete` (soft) and `Streams.Tombstone` (hard).

use strata_core::{EventStore, ExpectedVersion};
use strata_server::Role;
use tonic::Status;

use crate::auth::Caller;
use crate::mapping;
use crate::proto::shared::StreamIdentifier;
use crate::proto::streams::{delete_req, delete_resp, tombstone_req, tombstone_resp};
use crate::proto::streams::{DeleteReq, DeleteResp, TombstoneReq, TombstoneResp};
use crate::status;

/// Soft-deletes a stream; answers the head position after it.
pub async fn delete(
    store: &dyn EventStore,
    caller: &Caller,
    request: DeleteReq,
) -> Result<DeleteResp, Status> {
    let options = request
        .options
        .ok_or_else(|| Status::invalid_argument("a delete needs its options"))?;
    use delete_req::options::ExpectedStreamRevision as E;
    let expected = match options.expected_stream_revision {
        Some(E::Revision(r)) => mapping::expected(Some(r), false, false),
        Some(E::NoStream(_)) => ExpectedVersion::NoStream,
        Some(E::StreamExists(_)) => ExpectedVersion::StreamExists,
        Some(E::Any(_)) | None => ExpectedVersion::Any,
    };
    let position = remove(
        store,
        caller,
        options.stream_identifier.as_ref(),
        expected,
        false,
    )
    .await?;
    Ok(DeleteResp {
        position_option: Some(delete_resp::PositionOption::Position(
            delete_resp::Position {
                commit_position: position,
                prepare_position: position,
            },
        )),
    })
}

/// Tombstones a stream; answers the head position after it.
pub async fn tombstone(
    store: &dyn EventStore,
    caller: &Caller,
    request: TombstoneReq,
) -> Result<TombstoneResp, Status> {
    let options = request
        .options
        .ok_or_else(|| Status::invalid_argument("a tombstone needs its options"))?;
    use tombstone_req::options::ExpectedStreamRevision as E;
    let expected = match options.expected_stream_revision {
        Some(E::Revision(r)) => mapping::expected(Some(r), false, false),
        Some(E::NoStream(_)) => ExpectedVersion::NoStream,
        Some(E::StreamExists(_)) => ExpectedVersion::StreamExists,
        Some(E::Any(_)) | None => ExpectedVersion::Any,
    };
    let position = remove(
        store,
        caller,
        options.stream_identifier.as_ref(),
        expected,
        true,
    )
    .await?;
    Ok(TombstoneResp {
        position_option: Some(tombstone_resp::PositionOption::Position(
            tombstone_resp::Position {
                commit_position: position,
                prepare_position: position,
            },
        )),
    })
}

async fn remove(
    store: &dyn EventStore,
    caller: &Caller,
    identifier: Option<&StreamIdentifier>,
    expected: ExpectedVersion,
    hard: bool,
) -> Result<u64, Status> {
    let stream = mapping::stream_id(identifier)?;
    caller.require(Role::Admin, stream.as_str())?;
    let done = if hard {
        store.tombstone_stream(&stream, expected).await
    } else {
        store.delete_stream(&stream, expected).await
    };
    done.map_err(|e| status::from_error(&e))?;
    let head = store
        .head_position()
        .await
        .map_err(|e| status::from_error(&e))?;
    Ok(mapping::commit_position(head))
}
