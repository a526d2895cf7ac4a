//! A small typed client of the HTTP API (docs/http-api.md), for the data
//! commands' `--server URL` mode.
//!
//! Requests carry `Authorization: Bearer <key>` when a key is given; HTTPS
//! servers are trusted through the CA certificates given with `--ca-cert`
//! (rustls with the ring provider and no built-in roots). Every call has a
//! bounded wait; subscriptions have an idle limit instead of a total one.

use std::collections::VecDeque;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use strata_core::{AppendResult, Direction, ExpectedVersion, NewEvent, RecordedEvent, StreamId};

use strata_client::sse::SseParser;
use crate::wire::{expected_version_json, AppendOut, EventIn, WireEvent};

/// Longest wait for a TCP (and TLS) connection.
pub const CONNECT_TIMEOUT_MS: u64 = 10_000;
/// Longest wait for a whole request/response (not subscriptions).
pub const REQUEST_TIMEOUT_MS: u64 = 60_000;
/// Longest a subscription may stay silent (the server sends a heartbeat
/// every 15 s by default) before it is considered dead.
pub const SSE_IDLE_TIMEOUT_MS: u64 = 60_000;
/// Largest error body kept for the message.
const ERROR_BODY_MAX_BYTES: usize = 4 * 1024;

/// What went wrong talking to a server.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// `--server` is not an http(s) URL.
    #[error("invalid server URL `{url}`: {reason}")]
    InvalidUrl {
        /// The URL given.
        url: String,
        /// Why it is refused.
        reason: String,
    },
    /// The CA certificate file could not be used.
    #[error("cannot use CA certificate {path}: {reason}")]
    CaCert {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The request did not complete (connection refused, TLS, timeout, ...).
    #[error("request to {url} failed: {reason}")]
    Transport {
        /// The URL requested.
        url: String,
        /// The error and its causes, on one line.
        reason: String,
    },
    /// The server answered with an error body.
    #[error("server refused ({status} {kind}): {message}")]
    Api {
        /// The HTTP status.
        status: u16,
        /// The API's stable error kind (`wrong_expected_version`, ...).
        kind: String,
        /// The server's message.
        message: String,
    },
    /// The server ended a subscription with a final `error` event
    /// (`slow_consumer`, `shutting_down`, or the store's error kind).
    #[error("the server ended the subscription ({kind}): {message}")]
    Ended {
        /// The error kind.
        kind: String,
        /// The server's message.
        message: String,
    },
    /// The answer is not what the API documents.
    #[error("unexpected answer from {url}: {reason}")]
    Decode {
        /// The URL requested.
        url: String,
        /// What did not fit.
        reason: String,
    },
}

impl ClientError {
    /// The API error kind, when the server sent one.
    pub fn api_kind(&self) -> Option<&str> {
        match self {
            ClientError::Api { kind, .. } | ClientError::Ended { kind, .. } => Some(kind),
            _ => None,
        }
    }
}

/// One line for an error and its causes (reqwest nests the useful part).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out.replace('\n', " ")
}

/// A page of events and where the next one starts (`None` at the end).
#[derive(Debug)]
pub struct Page {
    /// The events.
    pub events: Vec<RecordedEvent>,
    /// `from` (stream reads) or `after` (`/all`) of the next page.
    pub next: Option<u64>,
}

#[derive(Deserialize)]
struct PageBody {
    events: Vec<WireEvent>,
    next: Option<u64>,
}

/// Body of an append (also one part of `/multi`). Typed rather than built
/// with `json!`, which would re-encode the raw payloads and lose their bytes.
#[derive(Serialize)]
struct AppendBody<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    stream: Option<&'a str>,
    expected_version: serde_json::Value,
    events: Vec<EventIn>,
}

impl<'a> AppendBody<'a> {
    fn new(stream: Option<&'a str>, expected: ExpectedVersion, events: &[NewEvent]) -> Self {
        AppendBody {
            stream,
            expected_version: expected_version_json(expected),
            events: events.iter().map(EventIn::from_new).collect(),
        }
    }
}

#[derive(Serialize)]
struct MultiBody<'a> {
    streams: Vec<AppendBody<'a>>,
}

#[derive(Deserialize)]
struct HealthBody {
    head_position: u64,
}

#[derive(Deserialize)]
struct MultiOut {
    results: Vec<AppendOut>,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: String,
    #[serde(default)]
    message: String,
}

/// The `$all` filter as query parameters.
#[derive(Clone, Debug, Default)]
pub struct AllFilter {
    /// Event types (any of).
    pub types: Vec<String>,
    /// Stream name prefix.
    pub prefix: Option<String>,
    /// Stream category.
    pub category: Option<String>,
    /// Correlation id.
    pub correlation_id: Option<String>,
}

impl AllFilter {
    fn query(&self) -> Vec<(&'static str, String)> {
        let mut q = Vec::new();
        if !self.types.is_empty() {
            q.push(("types", self.types.join(",")));
        }
        if let Some(p) = &self.prefix {
            q.push(("prefix", p.clone()));
        }
        if let Some(c) = &self.category {
            q.push(("category", c.clone()));
        }
        if let Some(c) = &self.correlation_id {
            q.push(("correlation_id", c.clone()));
        }
        q
    }
}

/// A client of one server.
#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
    base: reqwest::Url,
    key: Option<String>,
}

impl Client {
    /// A client of `url` (`http://` or `https://`), sending `key` as a bearer
    /// token and trusting the PEM certificates in `ca_cert` for HTTPS.
    pub fn new(
        url: &str,
        key: Option<String>,
        ca_cert: Option<&Path>,
    ) -> Result<Self, ClientError> {
        let invalid = |reason: String| ClientError::InvalidUrl {
            url: url.to_string(),
            reason,
        };
        let base = reqwest::Url::parse(url).map_err(|e| invalid(e.to_string()))?;
        if base.scheme() != "http" && base.scheme() != "https" {
            return Err(invalid(format!(
                "the scheme must be http or https, not `{}`",
                base.scheme()
            )));
        }
        if base.host_str().is_none_or(str::is_empty) {
            return Err(invalid("no host".into()));
        }
        if base.query().is_some() || base.fragment().is_some() {
            return Err(invalid("no query or fragment allowed".into()));
        }
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .connect_timeout(Duration::from_millis(CONNECT_TIMEOUT_MS));
        if let Some(path) = ca_cert {
            let ca_error = |reason: String| ClientError::CaCert {
                path: path.display().to_string(),
                reason,
            };
            let pem = std::fs::read(path).map_err(|e| ca_error(e.to_string()))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| ca_error(error_chain(&e)))?;
            if certs.is_empty() {
                return Err(ca_error("no PEM certificate in the file".into()));
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder.build().map_err(|e| ClientError::Transport {
            url: url.to_string(),
            reason: error_chain(&e),
        })?;
        Ok(Client { http, base, key })
    }

    /// The server's URL.
    pub fn base(&self) -> &reqwest::Url {
        &self.base
    }

    /// The URL of `segments` under the base (each segment percent-encoded).
    fn url(&self, segments: &[&str]) -> reqwest::Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty();
            for s in segments {
                path.push(s);
            }
        }
        url
    }

    fn request(&self, method: reqwest::Method, url: reqwest::Url) -> reqwest::RequestBuilder {
        let rb = self.http.request(method, url);
        match &self.key {
            Some(k) => rb.bearer_auth(k),
            None => rb,
        }
    }

    /// Sends a request and reads a JSON answer, turning error bodies into
    /// [`ClientError::Api`].
    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        rb: reqwest::RequestBuilder,
        url: &reqwest::Url,
    ) -> Result<T, ClientError> {
        let response = rb
            .timeout(Duration::from_millis(REQUEST_TIMEOUT_MS))
            .send()
            .await
            .map_err(|e| transport(url, &e))?;
        let response = check_status(response, url).await?;
        let bytes = response.bytes().await.map_err(|e| transport(url, &e))?;
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode {
            url: url.to_string(),
            reason: e.to_string(),
        })
    }

    /// `POST /streams/{stream}`.
    pub async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: &[NewEvent],
    ) -> Result<AppendResult, ClientError> {
        let url = self.url(&["streams", stream.as_str()]);
        let body = AppendBody::new(None, expected, events);
        let out: AppendOut = self
            .call(
                self.request(reqwest::Method::POST, url.clone()).json(&body),
                &url,
            )
            .await?;
        Ok(out.into())
    }

    /// `POST /multi`: several streams, atomically.
    pub async fn append_multi(
        &self,
        parts: &[(StreamId, ExpectedVersion, Vec<NewEvent>)],
    ) -> Result<Vec<AppendResult>, ClientError> {
        let url = self.url(&["multi"]);
        let body = MultiBody {
            streams: parts
                .iter()
                .map(|(s, e, events)| AppendBody::new(Some(s.as_str()), *e, events))
                .collect(),
        };
        let out: MultiOut = self
            .call(
                self.request(reqwest::Method::POST, url.clone()).json(&body),
                &url,
            )
            .await?;
        if out.results.len() != parts.len() {
            return Err(ClientError::Decode {
                url: url.to_string(),
                reason: format!("{} results for {} streams", out.results.len(), parts.len()),
            });
        }
        Ok(out.results.into_iter().map(Into::into).collect())
    }

    /// `GET /streams/{stream}`: a page from version `from` (`None`: the
    /// start, or the end when backward).
    pub async fn read_stream(
        &self,
        stream: &StreamId,
        from: Option<u64>,
        limit: usize,
        direction: Direction,
    ) -> Result<Page, ClientError> {
        let mut url = self.url(&["streams", stream.as_str()]);
        {
            let mut q = url.query_pairs_mut();
            if let Some(f) = from {
                q.append_pair("from", &f.to_string());
            }
            q.append_pair("limit", &limit.to_string());
            if direction == Direction::Backward {
                q.append_pair("direction", "backward");
            }
        }
        let body: PageBody = self
            .call(self.request(reqwest::Method::GET, url.clone()), &url)
            .await?;
        page(body, &url)
    }

    /// `GET /all`: a page of events after position `after` that pass `filter`.
    pub async fn read_all(
        &self,
        after: u64,
        limit: usize,
        filter: &AllFilter,
    ) -> Result<Page, ClientError> {
        let mut url = self.url(&["all"]);
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("after", &after.to_string());
            q.append_pair("limit", &limit.to_string());
            for (k, v) in filter.query() {
                q.append_pair(k, &v);
            }
        }
        let body: PageBody = self
            .call(self.request(reqwest::Method::GET, url.clone()), &url)
            .await?;
        page(body, &url)
    }

    /// `GET /health`: the head position.
    pub async fn head_position(&self) -> Result<u64, ClientError> {
        let url = self.url(&["health"]);
        let body: HealthBody = self
            .call(self.request(reqwest::Method::GET, url.clone()), &url)
            .await?;
        Ok(body.head_position)
    }

    /// Opens `GET /subscribe/all` (no `stream`) or
    /// `GET /subscribe/streams/{stream}`, resuming after position `after`
    /// (sent as `Last-Event-ID`) when given.
    pub async fn subscribe(
        &self,
        stream: Option<&StreamId>,
        after: Option<u64>,
        filter: &AllFilter,
    ) -> Result<SseStream, ClientError> {
        let mut url = match stream {
            Some(s) => self.url(&["subscribe", "streams", s.as_str()]),
            None => self.url(&["subscribe", "all"]),
        };
        if stream.is_none() {
            let q = filter.query();
            if !q.is_empty() {
                let mut pairs = url.query_pairs_mut();
                for (k, v) in q {
                    pairs.append_pair(k, &v);
                }
            }
        }
        let mut rb = self
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
        Ok(SseStream {
            response,
            url,
            parser: SseParser::new(),
            ready: VecDeque::new(),
        })
    }
}

fn transport(url: &reqwest::Url, e: &reqwest::Error) -> ClientError {
    // reqwest's own message repeats the URL ("error sending request for url
    // (…)"); the causes say what happened.
    let reason = match std::error::Error::source(e) {
        Some(cause) if e.is_request() || e.is_connect() => error_chain(cause),
        _ => error_chain(e),
    };
    let reason = if e.is_timeout() && !reason.contains("timed out") {
        format!("timed out: {reason}")
    } else {
        reason
    };
    ClientError::Transport {
        url: url.to_string(),
        reason,
    }
}

fn page(body: PageBody, url: &reqwest::Url) -> Result<Page, ClientError> {
    let events = body
        .events
        .into_iter()
        .map(WireEvent::into_recorded)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ClientError::Decode {
            url: url.to_string(),
            reason: e.to_string(),
        })?;
    Ok(Page {
        events,
        next: body.next,
    })
}

/// Passes a success through; turns an error status into [`ClientError::Api`].
async fn check_status(
    response: reqwest::Response,
    url: &reqwest::Url,
) -> Result<reqwest::Response, ClientError> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let bytes = response.bytes().await.unwrap_or_default();
    let (kind, message) = match serde_json::from_slice::<ErrorBody>(&bytes) {
        Ok(b) => (b.error, b.message),
        Err(_) => {
            let text = String::from_utf8_lossy(&bytes[..bytes.len().min(ERROR_BODY_MAX_BYTES)])
                .replace('\n', " ");
            let text = if text.trim().is_empty() {
                format!("no error body from {url}")
            } else {
                text
            };
            ("http".to_string(), text)
        }
    };
    Err(ClientError::Api {
        status: status.as_u16(),
        kind,
        message,
    })
}

/// What a subscription delivers.
#[derive(Debug)]
pub enum SseMessage {
    /// An event (its position is the SSE id).
    Event(RecordedEvent),
    /// Everything recorded up to this position was sent; live events follow.
    CaughtUp(u64),
    /// The server ended the subscription (`slow_consumer`, `shutting_down`, ...).
    Ended {
        /// The error kind.
        kind: String,
        /// Its message.
        message: String,
    },
}

/// An open subscription: server-sent events parsed as they arrive.
pub struct SseStream {
    response: reqwest::Response,
    url: reqwest::Url,
    parser: SseParser,
    /// Messages parsed from the chunks read so far, not yet returned.
    ready: VecDeque<strata_client::sse::SseMessage>,
}

impl SseStream {
    /// The next message; `Ok(None)` when the server closed the stream.
    pub async fn next(&mut self) -> Result<Option<SseMessage>, ClientError> {
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
                .map_err(|e| self.decode(e.to_string()))?;
            self.ready.extend(parsed);
        }
    }

    fn decode(&self, reason: String) -> ClientError {
        ClientError::Decode {
            url: self.url.to_string(),
            reason,
        }
    }

    /// Turns a parsed message into what the subscription delivers; `id`
    /// repeats the position, which the data carries too.
    fn dispatch(&self, fields: strata_client::sse::SseMessage) -> Result<Option<SseMessage>, ClientError> {
        match fields.event.as_deref() {
            None | Some("message") => {
                let wire: WireEvent = serde_json::from_str(&fields.data)
                    .map_err(|e| self.decode(format!("event data: {e}")))?;
                let event = wire
                    .into_recorded()
                    .map_err(|e| self.decode(e.to_string()))?;
                Ok(Some(SseMessage::Event(event)))
            }
            Some("caught_up") => {
                #[derive(Deserialize)]
                struct CaughtUp {
                    position: u64,
                }
                let c: CaughtUp = serde_json::from_str(&fields.data)
                    .map_err(|e| self.decode(format!("caught_up data: {e}")))?;
                Ok(Some(SseMessage::CaughtUp(c.position)))
            }
            Some("error") => {
                let b: ErrorBody = serde_json::from_str(&fields.data)
                    .map_err(|e| self.decode(format!("error data: {e}")))?;
                Ok(Some(SseMessage::Ended {
                    kind: b.error,
                    message: b.message,
                }))
            }
            Some(_) => Ok(None),
        }
    }
}
