//! The client of one server: requests, with bounded waits.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::DeserializeOwned;
use strata_core::{AppendResult, Direction, ExpectedVersion, NewEvent, StreamId};
use strata_wire::{
    expected, AppendBody, AppendOut, DeleteQuery, ErrorBody, EventIn, HealthBody, MultiBody,
    MultiOut, MultiPart, ReadStreamQuery, WireEvent,
};

use crate::error::{error_chain, transport, ClientError};
use crate::filter::AllFilter;

/// Longest wait for a TCP (and TLS) connection.
pub const CONNECT_TIMEOUT_MS: u64 = 10_000;
/// Longest wait for a whole request/response (not subscriptions).
pub const REQUEST_TIMEOUT_MS: u64 = 60_000;
/// Largest error body kept for the message.
const ERROR_BODY_MAX_BYTES: usize = 4 * 1024;

/// A page of events and where the next one starts (`None` at the end).
#[derive(Debug)]
pub struct Page {
    /// The events.
    pub events: Vec<strata_core::RecordedEvent>,
    /// `from` (stream reads) or `after` (`$all`) of the next page.
    pub next: Option<u64>,
}

/// How to reach a server: its URL, an API key, CA certificates to trust.
#[derive(Clone, Debug)]
pub struct ClientBuilder {
    url: String,
    key: Option<String>,
    ca_cert: Option<PathBuf>,
}

impl ClientBuilder {
    /// Sends `key` as `Authorization: Bearer <key>` on every request.
    ///
    /// ```
    /// let client = strata_client::Client::builder("http://127.0.0.1:7700")
    ///     .api_key("k-123")
    ///     .build()?;
    /// # Ok::<(), strata_client::ClientError>(())
    /// ```
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Trusts the PEM certificate(s) in `path` for an `https://` server (a
    /// self-signed server's own certificate works). There are no built-in
    /// roots.
    ///
    /// ```no_run
    /// let client = strata_client::Client::builder("https://strata.example:7700")
    ///     .ca_cert("ca.pem")
    ///     .build()?;
    /// # Ok::<(), strata_client::ClientError>(())
    /// ```
    pub fn ca_cert(mut self, path: impl AsRef<Path>) -> Self {
        self.ca_cert = Some(path.as_ref().to_path_buf());
        self
    }

    /// Checks the URL, reads the CA file and builds the client. Nothing is
    /// sent yet.
    ///
    /// ```
    /// assert!(strata_client::Client::builder("ftp://x").build().is_err());
    /// ```
    pub fn build(self) -> Result<Client, ClientError> {
        let url = self.url.as_str();
        let base = parse_base(url)?;
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .connect_timeout(Duration::from_millis(CONNECT_TIMEOUT_MS));
        if let Some(path) = &self.ca_cert {
            for cert in read_ca(path)? {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder.build().map_err(|e| ClientError::Transport {
            url: url.to_string(),
            reason: error_chain(&e),
        })?;
        Ok(Client {
            http,
            base,
            key: self.key,
        })
    }
}

fn parse_base(url: &str) -> Result<reqwest::Url, ClientError> {
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
    Ok(base)
}

fn read_ca(path: &Path) -> Result<Vec<reqwest::Certificate>, ClientError> {
    let ca_error = |reason: String| ClientError::CaCert {
        path: path.display().to_string(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| ca_error(e.to_string()))?;
    let certs =
        reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| ca_error(error_chain(&e)))?;
    if certs.is_empty() {
        return Err(ca_error("no PEM certificate in the file".into()));
    }
    Ok(certs)
}

/// A client of one `strata serve`. Cheap to clone (clones share connections).
#[derive(Clone, Debug)]
pub struct Client {
    pub(crate) http: reqwest::Client,
    base: reqwest::Url,
    key: Option<String>,
}

impl Client {
    /// A client of `url` (`http://` or `https://`) without a key.
    ///
    /// ```
    /// let client = strata_client::Client::new("http://127.0.0.1:7700")?;
    /// assert_eq!(client.base().as_str(), "http://127.0.0.1:7700/");
    /// # Ok::<(), strata_client::ClientError>(())
    /// ```
    pub fn new(url: &str) -> Result<Self, ClientError> {
        Self::builder(url).build()
    }

    /// A builder, for an API key or a CA certificate.
    ///
    /// ```
    /// let client = strata_client::Client::builder("http://127.0.0.1:7700").build()?;
    /// # Ok::<(), strata_client::ClientError>(())
    /// ```
    pub fn builder(url: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            url: url.into(),
            key: None,
            ca_cert: None,
        }
    }

    /// The server's URL.
    ///
    /// ```
    /// let client = strata_client::Client::new("http://localhost:7700")?;
    /// assert_eq!(client.base().port(), Some(7700));
    /// # Ok::<(), strata_client::ClientError>(())
    /// ```
    pub fn base(&self) -> &reqwest::Url {
        &self.base
    }

    /// The URL of `segments` under the base (each segment percent-encoded).
    pub(crate) fn url(&self, segments: &[&str]) -> reqwest::Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty();
            for s in segments {
                path.push(s);
            }
        }
        url
    }

    pub(crate) fn request(
        &self,
        method: reqwest::Method,
        url: reqwest::Url,
    ) -> reqwest::RequestBuilder {
        let rb = self.http.request(method, url);
        match &self.key {
            Some(k) => rb.bearer_auth(k),
            None => rb,
        }
    }

    /// Sends a request and returns the successful response.
    pub(crate) async fn send(
        &self,
        rb: reqwest::RequestBuilder,
        url: &reqwest::Url,
    ) -> Result<reqwest::Response, ClientError> {
        self.send_within(rb, url, Duration::from_millis(REQUEST_TIMEOUT_MS))
            .await
    }

    /// [`Client::send`] with its own timeout (a group read that waits).
    pub(crate) async fn send_within(
        &self,
        rb: reqwest::RequestBuilder,
        url: &reqwest::Url,
        timeout: Duration,
    ) -> Result<reqwest::Response, ClientError> {
        let response = rb
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| transport(url, &e))?;
        check_status(response, url).await
    }

    /// Sends a request and reads a JSON answer.
    pub(crate) async fn call<T: DeserializeOwned>(
        &self,
        rb: reqwest::RequestBuilder,
        url: &reqwest::Url,
    ) -> Result<T, ClientError> {
        self.call_within(rb, url, Duration::from_millis(REQUEST_TIMEOUT_MS))
            .await
    }

    /// [`Client::call`] with its own timeout.
    pub(crate) async fn call_within<T: DeserializeOwned>(
        &self,
        rb: reqwest::RequestBuilder,
        url: &reqwest::Url,
        timeout: Duration,
    ) -> Result<T, ClientError> {
        let response = self.send_within(rb, url, timeout).await?;
        let bytes = response.bytes().await.map_err(|e| transport(url, &e))?;
        serde_json::from_slice(&bytes).map_err(|e| decode(url, e.to_string()))
    }

    /// Appends `events` to `stream` if it is at `expected`
    /// (`POST /streams/{stream}`).
    ///
    /// ```no_run
    /// # async fn f(client: strata_client::Client) -> Result<(), strata_client::ClientError> {
    /// use strata_core::{ExpectedVersion, NewEvent, StreamId};
    /// let stream = StreamId::new("account-42").unwrap();
    /// let event = NewEvent::json("Opened", &serde_json::json!({"owner": "ada"})).unwrap();
    /// let r = client.append(&stream, ExpectedVersion::NoStream, &[event]).await?;
    /// assert_eq!(r.next_expected_version, 1);
    /// # Ok(()) }
    /// ```
    pub async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: &[NewEvent],
    ) -> Result<AppendResult, ClientError> {
        let url = self.url(&["streams", stream.as_str()]);
        let body = AppendBody {
            expected_version: expected,
            events: events.iter().map(EventIn::from_new).collect(),
        };
        let rb = self.request(reqwest::Method::POST, url.clone()).json(&body);
        let out: AppendOut = self.call(rb, &url).await?;
        Ok(out.into())
    }

    /// Appends to several streams atomically, all parts or none
    /// (`POST /multi`); one result per part, in order.
    ///
    /// ```no_run
    /// # async fn f(client: strata_client::Client) -> Result<(), strata_client::ClientError> {
    /// use strata_core::{ExpectedVersion, NewEvent, StreamId};
    /// let from = StreamId::new("account-1").unwrap();
    /// let to = StreamId::new("account-2").unwrap();
    /// let out = NewEvent::json("Withdrawn", &serde_json::json!({"amount": "5"})).unwrap();
    /// let inn = NewEvent::json("Deposited", &serde_json::json!({"amount": "5"})).unwrap();
    /// let results = client
    ///     .append_multi(&[
    ///         (from, ExpectedVersion::StreamExists, vec![out]),
    ///         (to, ExpectedVersion::Any, vec![inn]),
    ///     ])
    ///     .await?;
    /// assert_eq!(results.len(), 2);
    /// # Ok(()) }
    /// ```
    pub async fn append_multi(
        &self,
        parts: &[(StreamId, ExpectedVersion, Vec<NewEvent>)],
    ) -> Result<Vec<AppendResult>, ClientError> {
        let url = self.url(&["multi"]);
        let body = MultiBody {
            streams: parts
                .iter()
                .map(|(s, e, events)| MultiPart {
                    stream: s.as_str().to_string(),
                    expected_version: *e,
                    events: events.iter().map(EventIn::from_new).collect(),
                })
                .collect(),
        };
        let rb = self.request(reqwest::Method::POST, url.clone()).json(&body);
        let out: MultiOut = self.call(rb, &url).await?;
        if out.results.len() != parts.len() {
            let reason = format!("{} results for {} streams", out.results.len(), parts.len());
            return Err(decode(&url, reason));
        }
        Ok(out.results.into_iter().map(Into::into).collect())
    }

    /// A page of a stream from version `from` (`None`: the start, or the end
    /// when backward), at most `limit` events (`GET /streams/{stream}`).
    ///
    /// ```no_run
    /// # async fn f(client: strata_client::Client) -> Result<(), strata_client::ClientError> {
    /// use strata_core::{Direction, StreamId};
    /// let stream = StreamId::new("account-42").unwrap();
    /// let mut from = None;
    /// loop {
    ///     let page = client.read_stream(&stream, from, 100, Direction::Forward).await?;
    ///     for e in &page.events {
    ///         println!("{} {}", e.version, e.event_type);
    ///     }
    ///     match page.next {
    ///         Some(n) => from = Some(n),
    ///         None => break,
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn read_stream(
        &self,
        stream: &StreamId,
        from: Option<u64>,
        limit: usize,
        direction: Direction,
    ) -> Result<Page, ClientError> {
        let mut url = self.url(&["streams", stream.as_str()]);
        let query = ReadStreamQuery {
            from,
            limit: Some(limit),
            direction: (direction == Direction::Backward).then_some(direction),
        };
        set_query(&mut url, &query)?;
        let rb = self.request(reqwest::Method::GET, url.clone());
        let body: strata_wire::Page<'static> = self.call(rb, &url).await?;
        page(body, &url)
    }

    /// A page of `$all` after position `after` through `filter`, at most
    /// `limit` events (`GET /all`). A key scoped to some streams sees only
    /// theirs, so a page may be short and still not the end: follow `next`.
    ///
    /// ```no_run
    /// # async fn f(client: strata_client::Client) -> Result<(), strata_client::ClientError> {
    /// let filter = strata_client::AllFilter {
    ///     category: Some("account".into()),
    ///     ..Default::default()
    /// };
    /// let page = client.read_all(0, 500, &filter).await?;
    /// println!("{} events; next page after {:?}", page.events.len(), page.next);
    /// # Ok(()) }
    /// ```
    pub async fn read_all(
        &self,
        after: u64,
        limit: usize,
        filter: &AllFilter,
    ) -> Result<Page, ClientError> {
        let mut url = self.url(&["all"]);
        set_query(&mut url, &filter.read_query(after, limit))?;
        let rb = self.request(reqwest::Method::GET, url.clone());
        let body: strata_wire::Page<'static> = self.call(rb, &url).await?;
        page(body, &url)
    }

    /// A page of `$all` backwards, newest first, through `filter`: at most
    /// `limit` events with positions below `before` (`None`: from the end)
    /// (`GET /all?direction=backward`). The next page is `before =
    /// page.next`; `next` is `None` at the start of `$all`. As with
    /// [`read_all`](Self::read_all), a key scoped to some streams sees
    /// only theirs, so a page may be short and still not the end.
    ///
    /// ```no_run
    /// # async fn f(client: strata_client::Client) -> Result<(), strata_client::ClientError> {
    /// let filter = strata_client::AllFilter::default();
    /// let newest = client.read_all_backward(None, 10, &filter).await?;
    /// if let Some(before) = newest.next {
    ///     let older = client.read_all_backward(Some(before), 10, &filter).await?;
    ///     println!("{} older events", older.events.len());
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn read_all_backward(
        &self,
        before: Option<u64>,
        limit: usize,
        filter: &AllFilter,
    ) -> Result<Page, ClientError> {
        let mut url = self.url(&["all"]);
        set_query(&mut url, &filter.read_backward_query(before, limit))?;
        let rb = self.request(reqwest::Method::GET, url.clone());
        let body: strata_wire::Page<'static> = self.call(rb, &url).await?;
        page(body, &url)
    }

    /// Soft-deletes a stream if it is at `expected`: reads say "not found",
    /// and appending re-creates it (`DELETE /streams/{stream}`).
    ///
    /// ```no_run
    /// # async fn f(client: strata_client::Client) -> Result<(), strata_client::ClientError> {
    /// use strata_core::{ExpectedVersion, StreamId};
    /// client.delete(&StreamId::new("cart-7").unwrap(), ExpectedVersion::Any).await?;
    /// # Ok(()) }
    /// ```
    pub async fn delete(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
    ) -> Result<(), ClientError> {
        self.delete_with(stream, expected, false).await
    }

    /// Tombstones a stream if it is at `expected`: every later read or write
    /// of it fails with [`ClientError::StreamDeleted`]
    /// (`DELETE /streams/{stream}?hard=true`).
    ///
    /// ```no_run
    /// # async fn f(client: strata_client::Client) -> Result<(), strata_client::ClientError> {
    /// use strata_core::{ExpectedVersion, StreamId};
    /// client.tombstone(&StreamId::new("cart-7").unwrap(), ExpectedVersion::Exact(3)).await?;
    /// # Ok(()) }
    /// ```
    pub async fn tombstone(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
    ) -> Result<(), ClientError> {
        self.delete_with(stream, expected, true).await
    }

    /// Erases a stream if it is at `expected` (`DELETE
    /// /streams/{stream}?erase=true`, which needs an `admin` key): it is
    /// tombstoned for ever, and its events' data is removed physically (at
    /// once, or at the log store's next scavenge). A tombstoned or erased
    /// stream may be erased again with [`ExpectedVersion::Any`]; a store
    /// that cannot erase answers 501 ([`ClientError::Api`] of kind
    /// `unsupported`).
    ///
    /// ```no_run
    /// # async fn f(client: strata_client::Client) -> Result<(), strata_client::ClientError> {
    /// use strata_core::{ExpectedVersion, StreamId};
    /// client.erase(&StreamId::new("person-7").unwrap(), ExpectedVersion::Any).await?;
    /// # Ok(()) }
    /// ```
    pub async fn erase(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
    ) -> Result<(), ClientError> {
        let mut url = self.url(&["streams", stream.as_str()]);
        let query = DeleteQuery {
            expected_version: Some(expected::to_param(expected)),
            erase: true,
            ..DeleteQuery::default()
        };
        set_query(&mut url, &query)?;
        let rb = self.request(reqwest::Method::DELETE, url.clone());
        self.send(rb, &url).await.map(drop)
    }

    async fn delete_with(
        &self,
        stream: &StreamId,
        guard: ExpectedVersion,
        hard: bool,
    ) -> Result<(), ClientError> {
        let mut url = self.url(&["streams", stream.as_str()]);
        let query = DeleteQuery {
            expected_version: Some(expected::to_param(guard)),
            hard,
            erase: false,
        };
        set_query(&mut url, &query)?;
        let rb = self.request(reqwest::Method::DELETE, url.clone());
        self.send(rb, &url).await.map(drop)
    }

    /// A stream's metadata and its version, `None` when never set
    /// (`GET /streams/{stream}/metadata`).
    ///
    /// ```no_run
    /// # async fn f(client: strata_client::Client) -> Result<(), strata_client::ClientError> {
    /// let m = client.metadata(&strata_core::StreamId::new("cart-7").unwrap()).await?;
    /// println!("{m:?}");
    /// # Ok(()) }
    /// ```
    pub async fn metadata(
        &self,
        stream: &StreamId,
    ) -> Result<Option<strata_core::VersionedMetadata>, ClientError> {
        let url = self.url(&["streams", stream.as_str(), "metadata"]);
        let rb = self.request(reqwest::Method::GET, url.clone());
        let out: strata_wire::MetadataOut = self.call(rb, &url).await?;
        Ok(out.into_versioned())
    }

    /// Sets a stream's metadata if its metadata version is `expected`;
    /// returns the new version (`PUT /streams/{stream}/metadata`, an
    /// `admin` key).
    ///
    /// ```no_run
    /// # async fn f(client: strata_client::Client) -> Result<(), strata_client::ClientError> {
    /// use strata_core::{ExpectedVersion, StreamId, StreamMetadata};
    /// let m = StreamMetadata { max_count: Some(100), ..Default::default() };
    /// let v = client.set_metadata(&StreamId::new("cart-7").unwrap(), ExpectedVersion::NoStream, &m).await?;
    /// assert_eq!(v, 1);
    /// # Ok(()) }
    /// ```
    pub async fn set_metadata(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        metadata: &strata_core::StreamMetadata,
    ) -> Result<u64, ClientError> {
        let url = self.url(&["streams", stream.as_str(), "metadata"]);
        let body = strata_wire::MetadataBody::new(expected, metadata);
        let rb = self.request(reqwest::Method::PUT, url.clone()).json(&body);
        let out: strata_wire::MetadataOut = self.call(rb, &url).await?;
        Ok(out.metadata_version)
    }

    /// The position of the last committed event (`GET /health`).
    ///
    /// ```no_run
    /// # async fn f(client: strata_client::Client) -> Result<(), strata_client::ClientError> {
    /// let head = client.head_position().await?;
    /// println!("the server's store is at position {head}");
    /// # Ok(()) }
    /// ```
    pub async fn head_position(&self) -> Result<u64, ClientError> {
        let url = self.url(&["health"]);
        let rb = self.request(reqwest::Method::GET, url.clone());
        let body: HealthBody = self.call(rb, &url).await?;
        body.head_position
            .ok_or_else(|| decode(&url, "no head_position".into()))
    }
}

/// Sets `url`'s query string from a wire query struct.
pub(crate) fn set_query<T: serde::Serialize>(
    url: &mut reqwest::Url,
    query: &T,
) -> Result<(), ClientError> {
    let text = query_string(query).map_err(|e| decode(url, e))?;
    url.set_query((!text.is_empty()).then_some(text.as_str()));
    Ok(())
}

/// A query struct as `a=1&b=x`, through its JSON form (numbers, strings and
/// booleans only, which is all the API's queries hold).
fn query_string<T: serde::Serialize>(query: &T) -> Result<String, String> {
    let value = serde_json::to_value(query).map_err(|e| e.to_string())?;
    let serde_json::Value::Object(map) = value else {
        return Err("a query must be an object".into());
    };
    let mut out = reqwest::Url::parse("http://q/").map_err(|e| e.to_string())?;
    {
        let mut pairs = out.query_pairs_mut();
        for (k, v) in map {
            match v {
                serde_json::Value::String(s) => pairs.append_pair(&k, &s),
                other => pairs.append_pair(&k, &other.to_string()),
            };
        }
    }
    Ok(out.query().unwrap_or_default().to_string())
}

pub(crate) fn decode(url: &reqwest::Url, reason: String) -> ClientError {
    ClientError::Decode {
        url: url.to_string(),
        reason,
    }
}

fn page(body: strata_wire::Page<'static>, url: &reqwest::Url) -> Result<Page, ClientError> {
    let events = body
        .events
        .into_iter()
        .map(WireEvent::into_recorded)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| decode(url, e.to_string()))?;
    Ok(Page {
        events,
        next: body.next,
    })
}

/// Passes a success through; turns an error status into the typed error.
pub(crate) async fn check_status(
    response: reqwest::Response,
    url: &reqwest::Url,
) -> Result<reqwest::Response, ClientError> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let bytes = response.bytes().await.unwrap_or_default();
    let body = serde_json::from_slice::<ErrorBody>(&bytes).unwrap_or_else(|_| {
        let text = String::from_utf8_lossy(&bytes[..bytes.len().min(ERROR_BODY_MAX_BYTES)])
            .replace('\n', " ");
        let text = if text.trim().is_empty() {
            format!("no error body from {url}")
        } else {
            text
        };
        ErrorBody::new("http", text)
    });
    Err(ClientError::from_body(status.as_u16(), body))
}
