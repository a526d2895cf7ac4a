//! `Streams.Delete` (soft) and `Streams.Tombstone` (hard).

use strata_core::{EventStore, ExpectedVersion};
use strata_server::Role;
use tonic::Status;

use crate::auth::Caller;
use crate::mapping;
use crate::mapping::ExpectedRevision;
use crate::proto::shared::StreamIdentifier;
use crate::proto::streams::{delete_resp, tombstone_resp};
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
    let expected = options.expected_stream_revision.guard();
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
    let expected = options.expected_stream_revision.guard();
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
