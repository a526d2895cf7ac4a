//! The v2 `StreamsService`: `AppendSession` and `AppendRecords`, the
//! multi-stream appends of the newer clients, over the store's atomic
//! multi-stream append (ADR 0023 has the mapping).

mod append_records;
mod errors;
mod parts;
mod records;
mod session;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use strata_core::{EventStore, Position};
use tonic::{Request, Response, Status, Streaming};

pub use errors::{ERRORS_PACKAGE, TYPE_URL_PREFIX};

use crate::auth::Auth;
use crate::proto::v2::streams_service_server::StreamsService;
use crate::proto::v2::{
    AppendRecordsRequest, AppendRecordsResponse, AppendRequest, AppendSessionResponse,
};

/// The v2 streams service over one store.
#[derive(Clone)]
pub struct V2StreamsService {
    store: Arc<dyn EventStore>,
    auth: Auth,
}

impl V2StreamsService {
    /// The service over `store`, checking callers with `auth`.
    pub fn new(store: Arc<dyn EventStore>, auth: Auth) -> Self {
        Self { store, auth }
    }
}

#[tonic::async_trait]
impl StreamsService for V2StreamsService {
    async fn append_session(
        &self,
        request: Request<Streaming<AppendRequest>>,
    ) -> Result<Response<AppendSessionResponse>, Status> {
        let caller = self.auth.caller(request.metadata())?;
        let answer =
            session::append_session(self.store.as_ref(), &caller, request.into_inner()).await?;
        Ok(Response::new(answer))
    }

    async fn append_records(
        &self,
        request: Request<AppendRecordsRequest>,
    ) -> Result<Response<AppendRecordsResponse>, Status> {
        let caller = self.auth.caller(request.metadata())?;
        let answer =
            append_records::append_records(self.store.as_ref(), &caller, request.into_inner())
                .await?;
        Ok(Response::new(answer))
    }
}

/// A position as the v2 protocol's signed commit position.
fn wire_position(position: Position) -> i64 {
    i64::try_from(crate::mapping::commit_position(position)).unwrap_or(i64::MAX)
}
