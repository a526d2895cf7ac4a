//! The `EventStore` contract every backend implements.

use async_trait::async_trait;

use crate::append::{AppendResult, StreamAppend};
use crate::dcb::{AppendCondition, Query};
use crate::error::{Error, Result};
use crate::event::{NewEvent, RecordedEvent};
use crate::filter::ReadFilter;
use crate::limits::Limits;
use crate::metadata::{metadata_stream, StreamMetadata, VersionedMetadata};
use crate::read::Direction;
use crate::read::FROM_END;
use crate::stream_id::StreamId;
use crate::stream_info::StreamInfo;
use crate::stream_list::{StreamListQuery, StreamPage};
use crate::subscription::{SubscribeFrom, Subscription};
use crate::version::{ExpectedVersion, Position, Version};

/// The event store contract.
///
/// Every backend implements it and passes the conformance suite in
/// `strata-testkit`. All methods are safe to call concurrently.
///
/// ```
/// # use strata_core::*;
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let store = MemoryStore::new();
/// let stream = StreamId::new("account-1").unwrap();
/// let event = NewEvent::json("Opened", &serde_json::json!({"owner": "ada"})).unwrap();
/// let r = store.append(&stream, ExpectedVersion::NoStream, vec![event]).await.unwrap();
/// assert_eq!(r.next_expected_version, 1);
/// let read = store.read_stream(&stream, 1, 10, Direction::Forward).await.unwrap();
/// assert_eq!(read[0].event_type, "Opened");
/// # });
/// ```
#[async_trait]
pub trait EventStore: Send + Sync + 'static {
    /// Appends `events` to `stream` if `expected` holds, atomically: all or none.
    ///
    /// Re-sending events whose ids are already recorded in this stream, in the
    /// same order, returns the original result and writes nothing, whatever
    /// `expected` says; reusing recorded ids any other way is an
    /// [`Error::IdempotencyConflict`](crate::Error::IdempotencyConflict).
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult>;

    /// Appends to several streams atomically: if any guard fails, nothing is
    /// written anywhere. Results come back in the order of `appends`; the
    /// events get consecutive positions in that order.
    async fn append_multi(&self, appends: Vec<StreamAppend>) -> Result<Vec<AppendResult>>;

    /// Reads up to `max_count` events of a stream starting at version `from`
    /// (inclusive): upward when `Forward`, downward when `Backward` (use
    /// [`FROM_END`] to start from the last event).
    ///
    /// Fails with `StreamNotFound` when the stream has no readable events and
    /// with `StreamDeleted` when it was tombstoned.
    async fn read_stream(
        &self,
        stream: &StreamId,
        from: Version,
        max_count: usize,
        direction: Direction,
    ) -> Result<Vec<RecordedEvent>>;

    /// Reads up to `max_count` events of `$all` that pass `filter`, with
    /// positions `>= from`, in position order. Events of deleted streams stay
    /// in `$all`.
    async fn read_all(
        &self,
        from: Position,
        max_count: usize,
        filter: &ReadFilter,
    ) -> Result<Vec<RecordedEvent>>;

    /// Reads `$all` backwards: up to `max_count` events that pass `filter`,
    /// with positions strictly below `before`, newest first.
    /// [`Position::END`] reads from the end of `$all`.
    ///
    /// The bound is exclusive so that paging is one rule: the next page
    /// of a backward read is `before = last.position` of the previous
    /// page, and it ends with an empty page. (`before =
    /// Position::START` reads nothing.) Everything else is as in
    /// [`read_all`](Self::read_all): events of deleted streams stay,
    /// events that retention cuts or erasure removed are not returned,
    /// `max_count` is checked against
    /// [`Limits::max_read_count`](crate::Limits) and `0` reads nothing,
    /// and a bad filter is `InvalidInput`. Every store answers it from
    /// its end of the log, without reading what comes before the page.
    ///
    /// ```
    /// # use strata_core::*;
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let store = MemoryStore::new();
    /// let stream = StreamId::new("account-1").unwrap();
    /// let events = (0..3).map(|n| NewEvent::json("Deposited", &n).unwrap()).collect();
    /// store.append(&stream, ExpectedVersion::Any, events).await.unwrap();
    /// let all = ReadFilter::all();
    /// let newest = store.read_all_backward(Position::END, 2, &all).await.unwrap();
    /// assert_eq!(newest.iter().map(|e| e.version).collect::<Vec<_>>(), vec![3, 2]);
    /// let rest = store.read_all_backward(newest[1].position, 2, &all).await.unwrap();
    /// assert_eq!(rest.iter().map(|e| e.version).collect::<Vec<_>>(), vec![1]);
    /// # });
    /// ```
    async fn read_all_backward(
        &self,
        before: Position,
        max_count: usize,
        filter: &ReadFilter,
    ) -> Result<Vec<RecordedEvent>>;

    /// Follows `$all` (through `filter`): first the events already recorded
    /// after `from`, then a `CaughtUp` marker, then new events as they commit.
    /// Memory is bounded: a slow subscriber re-reads from the store.
    async fn subscribe(&self, from: SubscribeFrom, filter: ReadFilter) -> Result<Subscription>;

    /// What the store knows about a stream; `None` if it was never written,
    /// deleted or tombstoned.
    async fn stream_info(&self, stream: &StreamId) -> Result<Option<StreamInfo>>;

    /// One page of the streams the store holds, in ascending byte order of
    /// their names, starting strictly after `query.after`
    /// ([`crate::stream_list`]). Each stream is described as
    /// [`stream_info`](Self::stream_info) describes it: live, deleted and
    /// tombstoned streams (erased ones among them) are listed; system
    /// streams only with `include_system`. At most
    /// [`MAX_LIST_STREAMS`](crate::MAX_LIST_STREAMS) streams come back,
    /// whatever `limit` asks; `next` is set when more may follow. A
    /// `limit` of 0 or a NUL in the prefix or category is `InvalidInput`.
    ///
    /// The default refuses with [`Error::Unsupported`].
    async fn list_streams(&self, query: &StreamListQuery) -> Result<StreamPage> {
        let _ = query;
        Err(Error::Unsupported {
            what: "listing streams".into(),
        })
    }

    /// Soft-deletes a stream if `expected` holds: its events become unreadable
    /// through `read_stream`; a later append re-creates it and its versions
    /// continue. Fails with `StreamNotFound` if it has no live events.
    async fn delete_stream(&self, stream: &StreamId, expected: ExpectedVersion) -> Result<()>;

    /// Hard-deletes a stream if `expected` holds: every later read or append
    /// fails with `StreamDeleted`.
    async fn tombstone_stream(&self, stream: &StreamId, expected: ExpectedVersion) -> Result<()>;

    /// The position of the last committed event (`Position::START` if none).
    async fn head_position(&self) -> Result<Position>;

    /// Erases `stream` if `expected` holds: it is tombstoned (its name can
    /// never be written again), and so is its metadata stream (its
    /// metadata reads as never set and cannot be set again,
    /// [`crate::metadata::erased_metadata_stream`]); the events' data of
    /// both is removed physically, at once where the store can (memory,
    /// PostgreSQL) and at the next scavenge on the log store (which
    /// `--erased-only` forces). From the moment this returns, no read
    /// returns their events, `$all` included.
    /// Snapshots and checkpoints kept in other stores are theirs to remove;
    /// backups and read models built from the stream are not reached.
    ///
    /// The default refuses with [`Error::Unsupported`].
    async fn erase_stream(&self, stream: &StreamId, expected: ExpectedVersion) -> Result<()> {
        let _ = (stream, expected);
        Err(Error::Unsupported {
            what: "erasing streams".into(),
        })
    }

    /// Reads up to `limit` events matching `query` with positions after
    /// `after`, in position order ([`crate::dcb`]). Events of system
    /// streams never match; what `$all` hides (retention, erasure) is
    /// hidden here too.
    ///
    /// The default pages through [`read_all`](Self::read_all) and filters;
    /// a backend with a tag index answers from it.
    async fn read_query(
        &self,
        query: &Query,
        after: Position,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>> {
        crate::dcb::check_read(query, limit, self.limits())?;
        let page = crate::dcb::QUERY_SCAN_PAGE.min(self.limits().max_read_count);
        let mut from = Position(after.0.saturating_add(1));
        let mut out = Vec::new();
        while out.len() < limit {
            let events = self.read_all(from, page, &ReadFilter::all()).await?;
            let Some(last) = events.last().map(|e| e.position) else {
                break;
            };
            out.extend(
                events
                    .into_iter()
                    .filter(|e| query.matches(e))
                    .take(limit - out.len()),
            );
            from = Position(last.0 + 1);
        }
        Ok(out)
    }

    /// Appends to several streams atomically, as
    /// [`append_multi`](Self::append_multi) does (every part's guard
    /// applies), and only if no event after `condition.after` matches
    /// `condition.fail_if_events_match`; otherwise writes nothing and fails
    /// with [`Error::ConditionFailed`] naming the first matching position.
    /// The check and the write are one atomic step with respect to every
    /// other append. An exact retry answers with the original result
    /// without checking the condition again.
    ///
    /// The default refuses with [`Error::Unsupported`].
    async fn append_if(
        &self,
        appends: Vec<StreamAppend>,
        condition: &AppendCondition,
    ) -> Result<Vec<AppendResult>> {
        let _ = (appends, condition);
        Err(Error::Unsupported {
            what: "conditional appends".into(),
        })
    }

    /// Sets `stream`'s metadata (retention and custom settings) if its
    /// metadata version matches `expected` (`NoStream`: never set); returns
    /// the new metadata version. The stream itself need not exist. Reads
    /// honour the settings at once.
    ///
    /// The default appends a `$metadata` event to the metadata stream
    /// `$$NAME` (see [`crate::metadata`]), which is how every backend keeps it.
    async fn set_stream_metadata(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        metadata: &StreamMetadata,
    ) -> Result<Version> {
        let meta = metadata_stream(stream)?;
        let r = self
            .append(&meta, expected, vec![metadata.to_event()?])
            .await?;
        Ok(r.next_expected_version)
    }

    /// `stream`'s metadata and its version, if it was ever set (and not
    /// erased with the stream: see [`erase_stream`](Self::erase_stream)).
    async fn stream_metadata(&self, stream: &StreamId) -> Result<Option<VersionedMetadata>> {
        let meta = metadata_stream(stream)?;
        match self
            .read_stream(&meta, FROM_END, 1, Direction::Backward)
            .await
        {
            Ok(events) => events.first().map(StreamMetadata::from_event).transpose(),
            // Only an erasure tombstones a metadata stream.
            Err(Error::StreamNotFound { .. } | Error::StreamDeleted { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The limits this store enforces.
    fn limits(&self) -> &Limits;

    /// How many times the store has made appended data durable since it was
    /// opened — `fdatasync` calls for the log store, committed flushing
    /// transactions for PostgreSQL — or `None` for a store that does not
    /// count them (memory). For operators: `/metrics` exports it.
    fn durable_syncs(&self) -> Option<u64> {
        None
    }

    /// A liveness answer that costs no I/O and no database round trip, for
    /// health checks: `Ok(Some(head))` with the head as last known,
    /// `Ok(None)` when the store cannot tell without a round trip, or the
    /// error that keeps it from serving (closed, refusing writes, a database
    /// it has lost). The default is `Ok(None)`.
    fn health(&self) -> Result<Option<Position>> {
        Ok(None)
    }
}

#[async_trait]
impl<S: EventStore + ?Sized> EventStore for std::sync::Arc<S> {
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult> {
        (**self).append(stream, expected, events).await
    }

    async fn append_multi(&self, appends: Vec<StreamAppend>) -> Result<Vec<AppendResult>> {
        (**self).append_multi(appends).await
    }

    async fn read_stream(
        &self,
        stream: &StreamId,
        from: Version,
        max_count: usize,
        direction: Direction,
    ) -> Result<Vec<RecordedEvent>> {
        (**self)
            .read_stream(stream, from, max_count, direction)
            .await
    }

    async fn read_all(
        &self,
        from: Position,
        max_count: usize,
        filter: &ReadFilter,
    ) -> Result<Vec<RecordedEvent>> {
        (**self).read_all(from, max_count, filter).await
    }

    async fn read_all_backward(
        &self,
        before: Position,
        max_count: usize,
        filter: &ReadFilter,
    ) -> Result<Vec<RecordedEvent>> {
        (**self).read_all_backward(before, max_count, filter).await
    }

    async fn subscribe(&self, from: SubscribeFrom, filter: ReadFilter) -> Result<Subscription> {
        (**self).subscribe(from, filter).await
    }

    async fn stream_info(&self, stream: &StreamId) -> Result<Option<StreamInfo>> {
        (**self).stream_info(stream).await
    }

    async fn list_streams(&self, query: &StreamListQuery) -> Result<StreamPage> {
        (**self).list_streams(query).await
    }

    async fn delete_stream(&self, stream: &StreamId, expected: ExpectedVersion) -> Result<()> {
        (**self).delete_stream(stream, expected).await
    }

    async fn tombstone_stream(&self, stream: &StreamId, expected: ExpectedVersion) -> Result<()> {
        (**self).tombstone_stream(stream, expected).await
    }

    async fn head_position(&self) -> Result<Position> {
        (**self).head_position().await
    }

    async fn set_stream_metadata(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        metadata: &StreamMetadata,
    ) -> Result<Version> {
        (**self)
            .set_stream_metadata(stream, expected, metadata)
            .await
    }

    async fn stream_metadata(&self, stream: &StreamId) -> Result<Option<VersionedMetadata>> {
        (**self).stream_metadata(stream).await
    }

    async fn erase_stream(&self, stream: &StreamId, expected: ExpectedVersion) -> Result<()> {
        (**self).erase_stream(stream, expected).await
    }

    async fn read_query(
        &self,
        query: &Query,
        after: Position,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>> {
        (**self).read_query(query, after, limit).await
    }

    async fn append_if(
        &self,
        appends: Vec<StreamAppend>,
        condition: &AppendCondition,
    ) -> Result<Vec<AppendResult>> {
        (**self).append_if(appends, condition).await
    }

    fn limits(&self) -> &Limits {
        (**self).limits()
    }

    fn durable_syncs(&self) -> Option<u64> {
        (**self).durable_syncs()
    }

    fn health(&self) -> Result<Option<Position>> {
        (**self).health()
    }
}
