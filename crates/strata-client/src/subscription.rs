//! Subscriptions: server-sent events over one connection at a time, resumed
//! after the last event seen when the connection is lost.
//!
//! Every event's SSE id is its position, and a reconnect sends the last one
//! as `Last-Event-ID`; the server then sends exactly the events after it.
//! So a resumed subscription has no gap and no duplicate.

use std::collections::VecDeque;
use std::time::Duration;

use strata_core::{RecordedEvent, StreamId, SubscribeFrom};
use strata_wire::{kind, CaughtUp, ErrorBody, SubscribeStreamQuery, WireEvent};

use crate::client::{check_status, decode, set_query, Client, REQUEST_TIMEOUT_MS};
use crate::error::{transport, ClientError};
use crate::filter::AllFilter;
use crate::sse::{self, SseParser};

/// Longest a subscription may stay silent (the server sends a heartbeat
/// every 15 s by default) before its connection is considered dead.
pub const SSE_IDLE_TIMEOUT_MS: u64 = 60_000;
/// Default of [`ResumePolicy::max_losses_in_a_row`].
pub const MAX_LOSSES_IN_A_ROW: u32 = 5;
/// Default of [`ResumePolicy::delay`], in milliseconds.
pub const RESUME_DELAY_MS: u64 = 500;

/// When a lost subscription is resumed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResumePolicy {
    /// Losses in a row, without an event in between, after which
    /// [`Subscription::next`] fails with [`ClientError::SubscriptionLost`].
    pub max_losses_in_a_row: u32,
    /// Pause before each reconnect.
    pub delay: Duration,
    /// Whether a server's `shutting_down` end is resumed too (reconnecting
    /// until a server is back on the address); by default it ends the
    /// subscription with [`ClientError::Ended`].
    pub after_shutdown: bool,
}

impl Default for ResumePolicy {
    fn default() -> Self {
        ResumePolicy {
            max_losses_in_a_row: MAX_LOSSES_IN_A_ROW,
            delay: Duration::from_millis(RESUME_DELAY_MS),
            after_shutdown: false,
        }
    }
}

/// What a subscription delivers.
// Events are the common case and are moved, not copied in bulk; boxing them
// to shrink the rare variants would only add an allocation per event.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum SubscriptionMessage {
    /// An event.
    Event(RecordedEvent),
    /// Everything recorded up to this position was sent; live events follow.
    /// (Sent again after each reconnect.)
    CaughtUp(u64),
    /// The connection was lost; the next call reconnects and resumes after
    /// position `after` (from where the subscription started when `None`).
    Resuming {
        /// Why the connection was lost.
        reason: String,
        /// The last position delivered.
        after: Option<u64>,
    },
}

/// A live subscription to `$all` or to one stream, resumed after a lost
/// connection (see [`ResumePolicy`]).
pub struct Subscription {
    client: Client,
    stream: Option<StreamId>,
    filter: AllFilter,
    after: Option<u64>,
    conn: Option<Connection>,
    policy: ResumePolicy,
    losses: u32,
}

impl Client {
    /// Follows `$all` through `filter`, from `from`
    /// (`GET /subscribe/all`). The first connection is made here, so a
    /// refused key fails at once.
    ///
    /// ```no_run
    /// # async fn f(client: strata_client::Client) -> Result<(), strata_client::ClientError> {
    /// use strata_client::{AllFilter, SubscriptionMessage};
    /// use strata_core::SubscribeFrom;
    /// let mut sub = client.subscribe_all(SubscribeFrom::Start, AllFilter::default()).await?;
    /// loop {
    ///     match sub.next().await? {
    ///         SubscriptionMessage::Event(e) => println!("{} {}", e.position, e.event_type),
    ///         SubscriptionMessage::CaughtUp(p) => println!("live from {p}"),
    ///         SubscriptionMessage::Resuming { reason, .. } => eprintln!("resuming: {reason}"),
    ///     }
    /// }
    /// # }
    /// ```
    pub async fn subscribe_all(
        &self,
        from: SubscribeFrom,
        filter: AllFilter,
    ) -> Result<Subscription, ClientError> {
        self.open_subscription(None, from, filter).await
    }

    /// Follows one stream from `from` (a position in `$all`; `Start` is the
    /// whole stream) (`GET /subscribe/streams/{stream}`).
    ///
    /// ```no_run
    /// # async fn f(client: strata_client::Client) -> Result<(), strata_client::ClientError> {
    /// use strata_client::SubscriptionMessage;
    /// use strata_core::{StreamId, SubscribeFrom};
    /// let stream = StreamId::new("account-42").unwrap();
    /// let mut sub = client.subscribe_stream(&stream, SubscribeFrom::End).await?;
    /// loop {
    ///     if let SubscriptionMessage::Event(e) = sub.next().await? {
    ///         println!("version {}", e.version);
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn subscribe_stream(
        &self,
        stream: &StreamId,
        from: SubscribeFrom,
    ) -> Result<Subscription, ClientError> {
        self.open_subscription(Some(stream.clone()), from, AllFilter::default())
            .await
    }

    async fn open_subscription(
        &self,
        stream: Option<StreamId>,
        from: SubscribeFrom,
        filter: AllFilter,
    ) -> Result<Subscription, ClientError> {
        let after = match from {
            SubscribeFrom::Start => None,
            SubscribeFrom::After(p) => Some(p.0),
            // The server has no "from the end": start after its head, once,
            // so that a resume starts from the same place.
            SubscribeFrom::End => Some(self.head_position().await?),
        };
        let conn = Connection::open(self, stream.as_ref(), after, &filter).await?;
        Ok(Subscription {
            client: self.clone(),
            stream,
            filter,
            after,
            conn: Some(conn),
            policy: ResumePolicy::default(),
            losses: 0,
        })
    }
}

impl Subscription {
    /// Resumes by `policy` instead of [`ResumePolicy::default`].
    ///
    /// ```no_run
    /// # async fn f(client: strata_client::Client) -> Result<(), strata_client::ClientError> {
    /// use strata_client::{AllFilter, ResumePolicy};
    /// let sub = client
    ///     .subscribe_all(strata_core::SubscribeFrom::Start, AllFilter::default())
    ///     .await?
    ///     .with_resume(ResumePolicy { after_shutdown: true, ..ResumePolicy::default() });
    /// # Ok(()) }
    /// ```
    pub fn with_resume(mut self, policy: ResumePolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The position of the last event delivered (or the start's).
    ///
    /// ```no_run
    /// # async fn f(sub: strata_client::Subscription) {
    /// println!("at {:?}", sub.position());
    /// # }
    /// ```
    pub fn position(&self) -> Option<u64> {
        self.after
    }

    /// The next message. A lost connection gives
    /// [`SubscriptionMessage::Resuming`], and the call after it reconnects.
    ///
    /// ```no_run
    /// # async fn f(mut sub: strata_client::Subscription) -> Result<(), strata_client::ClientError> {
    /// if let strata_client::SubscriptionMessage::Event(e) = sub.next().await? {
    ///     println!("{}", e.event_type);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn next(&mut self) -> Result<SubscriptionMessage, ClientError> {
        let conn = match &mut self.conn {
            Some(c) => c,
            None => {
                tokio::time::sleep(self.policy.delay).await;
                let opened =
                    Connection::open(&self.client, self.stream.as_ref(), self.after, &self.filter)
                        .await;
                match opened {
                    Ok(c) => self.conn.insert(c),
                    Err(e @ ClientError::Transport { .. }) => return self.lose(e.to_string()),
                    Err(e) => return Err(e),
                }
            }
        };
        match conn.next().await {
            Ok(Some(Raw::Event(e))) => {
                self.after = Some(e.position.0);
                self.losses = 0;
                Ok(SubscriptionMessage::Event(e))
            }
            Ok(Some(Raw::CaughtUp(p))) => Ok(SubscriptionMessage::CaughtUp(p)),
            Ok(Some(Raw::Ended { kind, message })) => {
                let ended = ClientError::Ended { kind, message };
                if self.resumes(&ended) {
                    self.lose(ended.to_string())
                } else {
                    Err(ended)
                }
            }
            Ok(None) => self.lose("the server closed the subscription".into()),
            Err(e @ ClientError::Transport { .. }) => self.lose(e.to_string()),
            Err(e) => Err(e),
        }
    }

    fn resumes(&self, ended: &ClientError) -> bool {
        match ended.api_kind() {
            // Both ends drop what the server had queued; a new subscription
            // from the last event seen misses nothing still readable.
            Some(kind::SLOW_CONSUMER | kind::STREAMS_ERASED) => true,
            Some(kind::SHUTTING_DOWN) => self.policy.after_shutdown,
            _ => false,
        }
    }

    /// Drops the connection and counts the loss.
    fn lose(&mut self, reason: String) -> Result<SubscriptionMessage, ClientError> {
        self.conn = None;
        if self.losses >= self.policy.max_losses_in_a_row {
            return Err(ClientError::SubscriptionLost {
                attempts: self.losses,
                reason,
            });
        }
        self.losses += 1;
        Ok(SubscriptionMessage::Resuming {
            reason,
            after: self.after,
        })
    }
}

/// What one connection delivers.
#[allow(clippy::large_enum_variant)]
enum Raw {
    Event(RecordedEvent),
    CaughtUp(u64),
    Ended { kind: String, message: String },
}

/// One open `text/event-stream` response, parsed as it arrives.
struct Connection {
    response: reqwest::Response,
    url: reqwest::Url,
    parser: SseParser,
    /// Messages parsed from the chunks read so far, not yet returned.
    ready: VecDeque<sse::SseMessage>,
}

impl Connection {
    async fn open(
        client: &Client,
        stream: Option<&StreamId>,
        after: Option<u64>,
        filter: &AllFilter,
    ) -> Result<Connection, ClientError> {
        let mut url = match stream {
            Some(s) => client.url(&["subscribe", "streams", s.as_str()]),
            None => client.url(&["subscribe", "all"]),
        };
        match stream {
            Some(_) => set_query(&mut url, &SubscribeStreamQuery::default())?,
            None => set_query(&mut url, &filter.subscribe_query())?,
        }
        let mut rb = client
            .request(reqwest::Method::GET, url.clone())
            .header("Accept", "text/event-stream");
        if let Some(p) = after {
            rb = rb.header("Last-Event-ID", p.to_string());
        }
        let response = tokio::time::timeout(Duration::from_millis(REQUEST_TIMEOUT_MS), rb.send())
            .await
            .map_err(|_| ClientError::Transport {
                url: url.to_string(),
                reason: format!("no answer within {REQUEST_TIMEOUT_MS} ms"),
            })?
            .map_err(|e| transport(&url, &e))?;
        let response = check_status(response, &url).await?;
        Ok(Connection {
            response,
            url,
            parser: SseParser::new(),
            ready: VecDeque::new(),
        })
    }

    /// The next message; `Ok(None)` when the server closed the stream.
    async fn next(&mut self) -> Result<Option<Raw>, ClientError> {
        loop {
            while let Some(fields) = self.ready.pop_front() {
                if let Some(m) = self.dispatch(fields)? {
                    return Ok(Some(m));
                }
            }
            let chunk = tokio::time::timeout(
                Duration::from_millis(SSE_IDLE_TIMEOUT_MS),
                self.response.chunk(),
            )
            .await
            .map_err(|_| ClientError::Transport {
                url: self.url.to_string(),
                reason: format!(
                    "the subscription was silent for {SSE_IDLE_TIMEOUT_MS} ms (not even a heartbeat)"
                ),
            })?
            .map_err(|e| transport(&self.url, &e))?;
            let Some(bytes) = chunk else {
                return Ok(None);
            };
            let mut parsed = Vec::new();
            self.parser
                .feed(&bytes, &mut parsed)
                .map_err(|e| decode(&self.url, e.to_string()))?;
            self.ready.extend(parsed);
        }
    }

    /// Turns a parsed message into what the connection delivers; `id`
    /// repeats the position, which the data carries too.
    fn dispatch(&self, fields: sse::SseMessage) -> Result<Option<Raw>, ClientError> {
        let bad = |what: &str, e: &dyn std::fmt::Display| decode(&self.url, format!("{what}: {e}"));
        match fields.event.as_deref() {
            None | Some("message") => {
                let wire: WireEvent<'static> =
                    serde_json::from_str(&fields.data).map_err(|e| bad("event data", &e))?;
                let event = wire.into_recorded().map_err(|e| bad("event", &e))?;
                Ok(Some(Raw::Event(event)))
            }
            Some("caught_up") => {
                let c: CaughtUp =
                    serde_json::from_str(&fields.data).map_err(|e| bad("caught_up data", &e))?;
                Ok(Some(Raw::CaughtUp(c.position)))
            }
            Some("error") => {
                let b: ErrorBody =
                    serde_json::from_str(&fields.data).map_err(|e| bad("error data", &e))?;
                Ok(Some(Raw::Ended {
                    kind: b.error,
                    message: b.message,
                }))
            }
            Some(_) => Ok(None),
        }
    }
}
