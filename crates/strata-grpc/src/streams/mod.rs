//! The `Streams` service: append, read, delete and tombstone.

mod append;
mod batch;
mod delete;
mod read;
mod subscribe;

use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use strata_core::EventStore;
use tokio::sync::Semaphore;
use tonic::{Request, Response, Status, Streaming};

pub use batch::{BATCH_ANSWER_MESSAGES, MAX_BATCH_APPENDS_IN_FLIGHT, MAX_OPEN_BATCHES};
pub use read::{MAX_OPEN_SUBSCRIPTIONS, READ_CHANNEL_MESSAGES, READ_PAGE_EVENTS};

use crate::auth::Auth;
use crate::proto::streams::streams_server::Streams;
use crate::proto::streams::{
    AppendReq, AppendResp, BatchAppendReq, BatchAppendResp, DeleteReq, DeleteResp, ReadReq,
    ReadResp, TombstoneReq, TombstoneResp,
};

/// A boxed stream of answers, as the generated trait wants it.
pub type Answers<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// The `Streams` service over one store.
#[derive(Clone)]
pub struct StreamsService {
    store: Arc<dyn EventStore>,
    auth: Auth,
    /// Permits for open subscriptions ([`MAX_OPEN_SUBSCRIPTIONS`]).
    subscriptions: Arc<Semaphore>,
}

impl StreamsService {
    /// The service over `store`, checking callers with `auth`.
    pub fn new(store: Arc<dyn EventStore>, auth: Auth) -> Self {
        Self {
            store,
            auth,
            subscriptions: Arc::new(Semaphore::new(MAX_OPEN_SUBSCRIPTIONS)),
        }
    }
}

#[tonic::async_trait]
impl Streams for StreamsService {
    type ReadStream = Answers<ReadResp>;

    async fn read(&self, request: Request<ReadReq>) -> Result<Response<Self::ReadStream>, Status> {
        let caller = self.auth.caller(request.metadata())?;
        let answers = read::read(
            Arc::clone(&self.store),
            caller,
            request.into_inner(),
            &self.subscriptions,
        )
        .await?;
        Ok(Response::new(answers))
    }

    async fn append(
        &self,
        request: Request<Streaming<AppendReq>>,
    ) -> Result<Response<AppendResp>, Status> {
        let caller = self.auth.caller(request.metadata())?;
        let answer = append::append(self.store.as_ref(), &caller, request.into_inner()).await?;
        Ok(Response::new(answer))
    }

    async fn delete(&self, request: Request<DeleteReq>) -> Result<Response<DeleteResp>, Status> {
        let caller = self.auth.caller(request.metadata())?;
        let answer = delete::delete(self.store.as_ref(), &caller, request.into_inner()).await?;
        Ok(Response::new(answer))
    }

    async fn tombstone(
        &self,
        request: Request<TombstoneReq>,
    ) -> Result<Response<TombstoneResp>, Status> {
        let caller = self.auth.caller(request.metadata())?;
        let answer = delete::tombstone(self.store.as_ref(), &caller, request.into_inner()).await?;
        Ok(Response::new(answer))
    }

    type BatchAppendStream = Answers<BatchAppendResp>;

    async fn batch_append(
        &self,
        request: Request<Streaming<BatchAppendReq>>,
    ) -> Result<Response<Self::BatchAppendStream>, Status> {
        let caller = self.auth.caller(request.metadata())?;
        let answers = batch::batch_append(Arc::clone(&self.store), caller, request.into_inner());
        Ok(Response::new(answers))
    }
}
