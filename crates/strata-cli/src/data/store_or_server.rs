//! Where a data command works: directly on a store (`--store`) or through a
//! server (`--server URL --key K`). One type, the few operations the
//! commands need, the same results and errors either way.

use std::path::PathBuf;

use clap::Args;
use strata_core::{
    AppendResult, Direction, EventStore, ExpectedVersion, NewEvent, Position, ReadFilter,
    RecordedEvent, StreamAppend, StreamId, StreamMetadata, SubscribeFrom, Subscription,
    SubscriptionMessage, VersionedMetadata,
};

use strata_client::{AllFilter, Client, ClientError, SubscriptionMessage as ServerMessage};
use strata_stores::{OpenError, OpenOptions, OpenStore, StoreSpec, DEFAULT_STORE};

/// Environment variable read when `--key` is not given.
pub const API_KEY_ENV: &str = "STRATA_API_KEY";

/// `--store` or `--server` (with `--key`, `--ca-cert`).
#[derive(Args, Debug, Clone)]
pub struct TargetArgs {
    /// The store to work on directly: `log:DIR`, `memory:` or
    /// `postgres://…[?schema=NAME]` (default `log:./strata-data` unless
    /// `--server` is given).
    #[arg(long, conflicts_with = "server")]
    pub store: Option<StoreSpec>,
    /// A Strata server to work through instead: `http://host:port` or `https://…`.
    #[arg(long)]
    pub server: Option<String>,
    /// API key sent as `Authorization: Bearer <key>` (default: $STRATA_API_KEY).
    #[arg(long, requires = "server")]
    pub key: Option<String>,
    /// PEM file of the CA certificate(s) to trust for an `https://` server
    /// (a self-signed server's own certificate works).
    #[arg(long, requires = "server")]
    pub ca_cert: Option<PathBuf>,
}

/// Why a command could not reach or use its store or server.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// The store could not be opened.
    #[error("{0}")]
    Open(#[from] OpenError),
    /// The store refused or failed.
    #[error("{0}")]
    Store(#[from] strata_core::Error),
    /// The server refused or could not be reached.
    #[error("{0}")]
    Client(#[from] ClientError),
}

impl TargetError {
    /// The stable error kind (`wrong_expected_version`, `idempotency_conflict`,
    /// `stream_not_found`, ...), whichever way the command ran.
    pub fn kind(&self) -> &str {
        match self {
            TargetError::Open(_) => "open",
            TargetError::Store(e) => e.kind(),
            TargetError::Client(e) => e.api_kind().unwrap_or("transport"),
        }
    }
}

/// A store or a server.
pub enum Target {
    /// Directly on a store (closed by [`Target::close`]).
    Store(OpenStore),
    /// Through a server.
    Server(Client),
}

impl TargetArgs {
    /// Opens the store (with `options`) or builds the client.
    pub async fn open(&self, options: &OpenOptions) -> Result<Target, TargetError> {
        if let Some(url) = &self.server {
            let key = self
                .key
                .clone()
                .or_else(|| std::env::var(API_KEY_ENV).ok().filter(|k| !k.is_empty()));
            let mut builder = Client::builder(url.as_str());
            if let Some(key) = key {
                builder = builder.api_key(key);
            }
            if let Some(ca) = &self.ca_cert {
                builder = builder.ca_cert(ca);
            }
            return Ok(Target::Server(builder.build()?));
        }
        let spec = match &self.store {
            Some(s) => s.clone(),
            None => DEFAULT_STORE
                .parse::<StoreSpec>()
                .map_err(OpenError::Invalid)?,
        };
        Ok(Target::Store(spec.open(options).await?))
    }
}

/// A live feed of events from [`Target::subscribe`].
// One feed per command, so its size does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Feed {
    /// A store subscription (filtered to one stream when asked).
    Store(Subscription),
    /// A server subscription (resumed after a lost connection).
    Server(strata_client::Subscription),
}

/// What a [`Feed`] yields.
// Events are the common case and are moved, not copied in bulk; boxing them
// to shrink the rare `CaughtUp` would only add an allocation per event.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum FeedItem {
    /// An event.
    Event(RecordedEvent),
    /// Caught up with everything recorded at subscription time.
    CaughtUp(u64),
    /// The server connection was lost; the next call resumes after `after`
    /// (from where the feed started when `None`).
    Resuming {
        /// Why it was lost.
        reason: String,
        /// The last position delivered.
        after: Option<u64>,
    },
}

impl Feed {
    /// The next item; `None` when the store closed.
    pub async fn next(&mut self) -> Result<Option<FeedItem>, TargetError> {
        match self {
            Feed::Store(sub) => match sub.next().await {
                None => Ok(None),
                Some(Err(e)) => Err(e.into()),
                Some(Ok(SubscriptionMessage::Event(e))) => Ok(Some(FeedItem::Event(e))),
                Some(Ok(SubscriptionMessage::CaughtUp(p))) => Ok(Some(FeedItem::CaughtUp(p.0))),
            },
            Feed::Server(sub) => match sub.next().await? {
                ServerMessage::Event(e) => Ok(Some(FeedItem::Event(e))),
                ServerMessage::CaughtUp(p) => Ok(Some(FeedItem::CaughtUp(p))),
                ServerMessage::Resuming { reason, after } => {
                    Ok(Some(FeedItem::Resuming { reason, after }))
                }
            },
        }
    }
}

/// Where a subscription starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TailFrom {
    /// From the first event.
    Start,
    /// After this position.
    After(u64),
    /// Only events committed from now on.
    End,
}

impl Target {
    /// A short description for messages: the store spec or the server URL.
    pub fn describe(&self) -> String {
        match self {
            Target::Store(s) => match s.log_store() {
                Some(log) => format!("log:{}", log.dir().display()),
                None if s.postgres_store().is_some() => "the PostgreSQL store".into(),
                None => "memory:".into(),
            },
            Target::Server(c) => c.base().to_string(),
        }
    }

    /// The store, in direct mode.
    pub fn store(&self) -> Option<&OpenStore> {
        match self {
            Target::Store(s) => Some(s),
            Target::Server(_) => None,
        }
    }

    /// Appends to one stream.
    pub async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, TargetError> {
        match self {
            Target::Store(s) => Ok(s.store().append(stream, expected, events).await?),
            Target::Server(c) => Ok(c.append(stream, expected, &events).await?),
        }
    }

    /// Appends to several streams atomically.
    pub async fn append_multi(
        &self,
        parts: Vec<(StreamId, ExpectedVersion, Vec<NewEvent>)>,
    ) -> Result<Vec<AppendResult>, TargetError> {
        match self {
            Target::Store(s) => {
                let appends = parts
                    .into_iter()
                    .map(|(stream, expected, events)| StreamAppend::new(stream, expected, events))
                    .collect();
                Ok(s.store().append_multi(appends).await?)
            }
            Target::Server(c) => Ok(c.append_multi(&parts).await?),
        }
    }

    /// Reads up to `limit` events of a stream from version `from` (`None`:
    /// the first, or the last when backward); also returns the `from` of the
    /// next page, `None` at the end.
    pub async fn read_stream(
        &self,
        stream: &StreamId,
        from: Option<u64>,
        limit: usize,
        direction: Direction,
    ) -> Result<(Vec<RecordedEvent>, Option<u64>), TargetError> {
        match self {
            Target::Store(s) => {
                let start = from.unwrap_or(match direction {
                    Direction::Forward => 1,
                    Direction::Backward => strata_core::FROM_END,
                });
                let events = s
                    .store()
                    .read_stream(stream, start, limit, direction)
                    .await?;
                let next = if events.len() < limit {
                    None
                } else {
                    events.last().and_then(|e| match direction {
                        Direction::Forward => e.version.checked_add(1),
                        Direction::Backward => e.version.checked_sub(1).filter(|v| *v > 0),
                    })
                };
                Ok((events, next))
            }
            Target::Server(c) => {
                let page = c.read_stream(stream, from, limit, direction).await?;
                Ok((page.events, page.next))
            }
        }
    }

    /// Reads up to `limit` events of `$all` after position `after` that pass
    /// `filter`; also returns the `after` of the next page, `None` at the end.
    pub async fn read_all(
        &self,
        after: u64,
        limit: usize,
        filter: &AllFilter,
    ) -> Result<(Vec<RecordedEvent>, Option<u64>), TargetError> {
        match self {
            Target::Store(s) => {
                let events = s
                    .store()
                    .read_all(Position(after).next(), limit, &store_filter(filter))
                    .await?;
                let next = if events.len() < limit {
                    None
                } else {
                    events.last().map(|e| e.position.0)
                };
                Ok((events, next))
            }
            Target::Server(c) => {
                let page = c.read_all(after, limit, filter).await?;
                Ok((page.events, page.next))
            }
        }
    }

    /// A stream's metadata, `None` when never set.
    pub async fn metadata(
        &self,
        stream: &StreamId,
    ) -> Result<Option<VersionedMetadata>, TargetError> {
        match self {
            Target::Store(s) => Ok(s.store().stream_metadata(stream).await?),
            Target::Server(c) => Ok(c.metadata(stream).await?),
        }
    }

    /// Sets a stream's metadata if its version is `expected`; returns the
    /// new version.
    pub async fn set_metadata(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        metadata: &StreamMetadata,
    ) -> Result<u64, TargetError> {
        match self {
            Target::Store(s) => Ok(s
                .store()
                .set_stream_metadata(stream, expected, metadata)
                .await?),
            Target::Server(c) => Ok(c.set_metadata(stream, expected, metadata).await?),
        }
    }

    /// The position of the last committed event.
    pub async fn head_position(&self) -> Result<u64, TargetError> {
        match self {
            Target::Store(s) => Ok(s.store().head_position().await?.0),
            Target::Server(c) => Ok(c.head_position().await?),
        }
    }

    /// Follows `$all` through `filter`, or one stream.
    pub async fn subscribe(
        &self,
        stream: Option<&StreamId>,
        from: TailFrom,
        filter: &AllFilter,
    ) -> Result<Feed, TargetError> {
        match self {
            Target::Store(s) => {
                let filter = match stream {
                    Some(st) => ReadFilter::all().stream(st.clone()),
                    None => store_filter(filter),
                };
                let from = match from {
                    TailFrom::Start => SubscribeFrom::Start,
                    TailFrom::After(p) => SubscribeFrom::After(Position(p)),
                    TailFrom::End => SubscribeFrom::End,
                };
                Ok(Feed::Store(s.store().subscribe(from, filter).await?))
            }
            Target::Server(c) => {
                let from = match from {
                    TailFrom::Start => SubscribeFrom::Start,
                    TailFrom::After(p) => SubscribeFrom::After(Position(p)),
                    TailFrom::End => SubscribeFrom::End,
                };
                let sub = match stream {
                    Some(s) => c.subscribe_stream(s, from).await?,
                    None => c.subscribe_all(from, filter.clone()).await?,
                };
                Ok(Feed::Server(sub))
            }
        }
    }

    /// Closes a store (sync and checkpoint for the log store); nothing to
    /// do for a server.
    pub async fn close(self) -> Result<(), TargetError> {
        match self {
            Target::Store(s) => Ok(s.close().await?),
            Target::Server(_) => Ok(()),
        }
    }
}

/// The store's filter for the query-style one.
pub fn store_filter(f: &AllFilter) -> ReadFilter {
    let mut out = ReadFilter::all();
    if !f.types.is_empty() {
        out = out.event_types(f.types.iter().cloned());
    }
    if let Some(p) = &f.prefix {
        out = out.stream_prefix(p.clone());
    }
    if let Some(c) = &f.category {
        out = out.category(c.clone());
    }
    if let Some(c) = &f.correlation_id {
        out = out.correlation_id(c.clone());
    }
    out
}
