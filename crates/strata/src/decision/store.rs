//! What a [`DecisionRunner`](super::DecisionRunner) needs of a store: a
//! query read that also gives the head, and a conditional append. Every
//! [`EventStore`] is one; a remote server (`POST /dcb/read`,
//! `POST /dcb/append`) can be one too, so the same decisions run in-process
//! or over HTTP.

use std::future::Future;

use strata_core::dcb::{AppendCondition, Query};
use strata_core::{AppendResult, EventStore, Position, RecordedEvent, Result, StreamAppend};

/// Where decisions read their boundary and append what they decided.
pub trait DecisionStore: Send + Sync + 'static {
    /// At most `limit` events matching `query` after `after`, oldest first
    /// (fewer only when no more match), and the store's head when the read
    /// began: events past it may be in the page, and a decision over the
    /// page appends with the condition after the head.
    fn read_boundary(
        &self,
        query: &Query,
        after: Position,
        limit: usize,
    ) -> impl Future<Output = Result<(Vec<RecordedEvent>, Position)>> + Send;

    /// Appends every part, all or none, if no event after the condition's
    /// position matches its query ([`EventStore::append_if`]); a failed
    /// condition is [`strata_core::Error::ConditionFailed`].
    fn append_decided(
        &self,
        appends: Vec<StreamAppend>,
        condition: &AppendCondition,
    ) -> impl Future<Output = Result<Vec<AppendResult>>> + Send;
}

impl<S: EventStore> DecisionStore for S {
    async fn read_boundary(
        &self,
        query: &Query,
        after: Position,
        limit: usize,
    ) -> Result<(Vec<RecordedEvent>, Position)> {
        let head = self.head_position().await?;
        let events = self.read_query(query, after, limit).await?;
        Ok((events, head))
    }

    async fn append_decided(
        &self,
        appends: Vec<StreamAppend>,
        condition: &AppendCondition,
    ) -> Result<Vec<AppendResult>> {
        self.append_if(appends, condition).await
    }
}
