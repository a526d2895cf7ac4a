//! Test harness: a server on a loopback port over a MemoryStore (or a store
//! that wraps one),
//! and a tiny HTTP/1.1 client over `tokio::net::TcpStream`.
//!
//! The client is hand-written (about a hundred lines) rather than `reqwest` or
//! hyper-util's client: the tests need raw control anyway (wrong content
//! types, truncated bodies, a socket with a tiny receive buffer that is not
//! read) and SSE is line-oriented text over a chunked body, which is easy to
//! decode by hand. It adds no dependency.

#![allow(dead_code, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;

use serde_json::Value;
use strata_core::group::LocalGroups;
use strata_core::{EventStore, Limits, MemoryStore};
use strata_server::{router_with_backing, serve_with, Backing, ServerConfig, TlsAcceptor};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use strata_core::{
    async_trait, AppendResult, Direction, ExpectedVersion, NewEvent, Position, ReadFilter,
    RecordedEvent, Result, StreamAppend, StreamId, StreamInfo, StreamListQuery, StreamPage,
    SubscribeFrom, Subscription, Version,
};
use tokio::sync::{Notify, Semaphore};

/// Runs each named `async fn(Harness)` over a MemoryStore. (The server names
/// no backend; a store's own behaviour is its crate's to test.)
#[macro_export]
macro_rules! memory_store {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn memory() {
                super::$name($crate::common::Harness::memory().await).await
            }
        }
    )*};
}

/// Which backend a harness runs on, so a test can build a second one alike.
#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Memory,
    /// A MemoryStore behind [`SyncCountingStore`], which reports durable
    /// syncs as a durable store does.
    SyncCounting,
}

pub struct Harness {
    pub addr: SocketAddr,
    pub store: Arc<dyn EventStore>,
    pub backend: Backend,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
    _dir: Option<tempfile::TempDir>,
}

impl Harness {
    pub async fn memory() -> Self {
        Self::with(Backend::Memory, Limits::default(), ServerConfig::default()).await
    }

    pub async fn sync_counting() -> Self {
        Self::with(
            Backend::SyncCounting,
            Limits::default(),
            ServerConfig::default(),
        )
        .await
    }

    /// Another server of the same backend with other limits.
    pub async fn like(&self, limits: Limits, config: ServerConfig) -> Self {
        Self::with(self.backend, limits, config).await
    }

    pub async fn with(backend: Backend, limits: Limits, config: ServerConfig) -> Self {
        let (store, dir): (Arc<dyn EventStore>, _) = match backend {
            Backend::Memory => (Arc::new(MemoryStore::with_limits(limits)), None),
            Backend::SyncCounting => (
                Arc::new(SyncCountingStore(MemoryStore::with_limits(limits))),
                None,
            ),
        };
        Self::serve(store, backend, config, dir).await
    }

    pub async fn serve(
        store: Arc<dyn EventStore>,
        backend: Backend,
        config: ServerConfig,
        dir: Option<tempfile::TempDir>,
    ) -> Self {
        Self::serve_tls(store, backend, config, None, dir).await
    }

    /// Like `serve`, through `serve_with`: the config's connection limits
    /// apply, and TLS when an acceptor is given.
    pub async fn serve_tls(
        store: Arc<dyn EventStore>,
        backend: Backend,
        config: ServerConfig,
        tls: Option<TlsAcceptor>,
        dir: Option<tempfile::TempDir>,
    ) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        // Consumer groups over the same store, as `strata serve` hands over.
        let backing = Backing {
            groups: Some(Arc::new(LocalGroups::new(store.clone()))),
            ..Backing::default()
        };
        let app = router_with_backing(store.clone(), backing, config.clone());
        let task = tokio::spawn(async move {
            serve_with(listener, app, &config, tls, async {
                let _ = rx.await;
            })
            .await
        });
        Harness {
            addr,
            store,
            backend,
            shutdown: Some(tx),
            task: Some(task),
            _dir: dir,
        }
    }

    /// Starts a graceful shutdown; `finished` waits for `serve` to return.
    pub fn begin_shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }

    pub async fn finished(&mut self) {
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }

    pub async fn head(&self) -> u64 {
        self.store.head_position().await.unwrap().0
    }

    pub async fn get(&self, path: &str) -> Resp {
        request(self.addr, "GET", path, &[], None).await
    }

    pub async fn request_method(&self, method: &str, path: &str) -> Resp {
        request(self.addr, method, path, &[], None).await
    }

    pub async fn delete(&self, path: &str) -> Resp {
        request(self.addr, "DELETE", path, &[], None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Resp {
        let bytes = serde_json::to_vec(body).unwrap();
        request(
            self.addr,
            "POST",
            path,
            &[("Content-Type", "application/json")],
            Some(&bytes),
        )
        .await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Resp {
        let bytes = serde_json::to_vec(body).unwrap();
        request(
            self.addr,
            "PUT",
            path,
            &[("Content-Type", "application/json")],
            Some(&bytes),
        )
        .await
    }

    pub async fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Resp {
        request(self.addr, "GET", path, headers, None).await
    }

    pub async fn delete_with(&self, path: &str, headers: &[(&str, &str)]) -> Resp {
        request(self.addr, "DELETE", path, headers, None).await
    }

    pub async fn post_with(&self, path: &str, body: &Value, headers: &[(&str, &str)]) -> Resp {
        let bytes = serde_json::to_vec(body).unwrap();
        let mut all = vec![("Content-Type", "application/json")];
        all.extend_from_slice(headers);
        request(self.addr, "POST", path, &all, Some(&bytes)).await
    }

    pub async fn post_raw(&self, path: &str, content_type: &str, body: &[u8]) -> Resp {
        request(
            self.addr,
            "POST",
            path,
            &[("Content-Type", content_type)],
            Some(body),
        )
        .await
    }
}

pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "status {} body is not JSON ({e}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Asserts an error status with a JSON body naming `kind` and a message.
    #[track_caller]
    pub fn assert_error(&self, status: u16, kind: &str) -> Value {
        assert_eq!(self.status, status, "body: {}", self.text());
        let v = self.json();
        assert_eq!(v["error"], kind, "body: {v}");
        let message = v["message"].as_str().unwrap_or("");
        assert!(!message.is_empty(), "no message in {v}");
        v
    }
}

async fn write_request(
    stream: &mut TcpStream,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
    close: bool,
) {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\n");
    if close {
        head.push_str("Connection: close\r\n");
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(b) = body {
        head.push_str(&format!("Content-Length: {}\r\n", b.len()));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    if let Some(b) = body {
        stream.write_all(b).await.unwrap();
    }
}

async fn read_head<R: AsyncBufReadExt + Unpin>(r: &mut R) -> (u16, Vec<(String, String)>) {
    let mut line = String::new();
    r.read_line(&mut line).await.unwrap();
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .unwrap_or_else(|| panic!("bad status line {line:?}"))
        .parse()
        .unwrap();
    let mut headers = Vec::new();
    loop {
        line.clear();
        r.read_line(&mut line).await.unwrap();
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let (k, v) = l.split_once(':').unwrap();
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    (status, headers)
}

fn is_chunked(headers: &[(String, String)]) -> bool {
    headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    })
}

/// Reads one chunk of a chunked body; `None` at the last (empty) chunk.
async fn read_chunk<R: AsyncBufReadExt + Unpin>(r: &mut R) -> Option<Vec<u8>> {
    let mut line = String::new();
    if r.read_line(&mut line).await.unwrap() == 0 {
        return None;
    }
    let size = usize::from_str_radix(line.trim().split(';').next().unwrap(), 16).unwrap();
    let mut data = vec![0; size];
    r.read_exact(&mut data).await.unwrap();
    let mut crlf = [0u8; 2];
    r.read_exact(&mut crlf).await.unwrap();
    if size == 0 {
        None
    } else {
        Some(data)
    }
}

/// One request on a fresh connection (`Connection: close`).
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Resp {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    write_request(&mut stream, method, path, headers, body, true).await;
    let mut r = BufReader::new(stream);
    let (status, headers) = read_head(&mut r).await;
    let mut body = Vec::new();
    if is_chunked(&headers) {
        while let Some(c) = read_chunk(&mut r).await {
            body.extend(c);
        }
    } else {
        r.read_to_end(&mut body).await.unwrap();
    }
    Resp {
        status,
        headers,
        body,
    }
}

/// How long an SSE read may wait before the test fails instead of hanging.
const STALL_SECS: u64 = 60;

/// One server-sent message.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SseMessage {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: String,
    /// Comment lines (heartbeats) that came with this block.
    pub comments: Vec<String>,
}

impl SseMessage {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data).unwrap()
    }
    pub fn is_event(&self) -> bool {
        self.event.is_none() && !self.data.is_empty()
    }
}

pub struct SseClient {
    reader: BufReader<TcpStream>,
    text: String,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// Error body when the status is not 200.
    pub error: Option<Value>,
}

impl SseClient {
    pub async fn connect(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Self {
        Self::connect_with(addr, path, headers, None).await
    }

    /// `recv_buffer_bytes` pins the client's socket receive buffer (which
    /// also stops the kernel growing it), so a test can fill it quickly.
    pub async fn connect_with(
        addr: SocketAddr,
        path: &str,
        headers: &[(&str, &str)],
        recv_buffer_bytes: Option<u32>,
    ) -> Self {
        let socket = TcpSocket::new_v4().unwrap();
        if let Some(n) = recv_buffer_bytes {
            socket.set_recv_buffer_size(n).unwrap();
        }
        let mut stream = socket.connect(addr).await.unwrap();
        let mut all = vec![("Accept", "text/event-stream")];
        all.extend_from_slice(headers);
        write_request(&mut stream, "GET", path, &all, None, false).await;
        let mut reader = BufReader::new(stream);
        let (status, headers) = read_head(&mut reader).await;
        let mut client = SseClient {
            reader,
            text: String::new(),
            status,
            headers,
            error: None,
        };
        if status != 200 {
            let mut body = Vec::new();
            if is_chunked(&client.headers) {
                while let Some(c) = read_chunk(&mut client.reader).await {
                    body.extend(c);
                }
            } else {
                let len: usize = client
                    .headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                    .map(|(_, v)| v.parse().unwrap())
                    .unwrap_or(0);
                body.resize(len, 0);
                client.reader.read_exact(&mut body).await.unwrap();
            }
            client.error = Some(serde_json::from_slice(&body).unwrap());
        }
        client
    }

    /// The next message block (event, named event or heartbeat comment);
    /// `None` when the server ends the stream.
    pub async fn next_block(&mut self) -> Option<SseMessage> {
        loop {
            if let Some(i) = self.text.find("\n\n") {
                let block: String = self.text.drain(..i + 2).collect();
                let mut m = SseMessage::default();
                let mut data = Vec::new();
                for line in block.lines() {
                    if let Some(c) = line.strip_prefix(':') {
                        m.comments.push(c.trim().to_string());
                    } else if let Some((k, v)) = line.split_once(':') {
                        let v = v.strip_prefix(' ').unwrap_or(v);
                        match k {
                            "id" => m.id = Some(v.to_string()),
                            "event" => m.event = Some(v.to_string()),
                            "data" => data.push(v.to_string()),
                            _ => {}
                        }
                    }
                }
                m.data = data.join("\n");
                return Some(m);
            }
            // A generous bound turns a lost event into a failure, not a hung test.
            let chunk = tokio::time::timeout(
                std::time::Duration::from_secs(STALL_SECS),
                read_chunk(&mut self.reader),
            )
            .await
            .unwrap_or_else(|_| panic!("no SSE data for {STALL_SECS} s"))?;
            self.text.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    /// The next block that is not only a heartbeat.
    pub async fn next_message(&mut self) -> Option<SseMessage> {
        loop {
            let m = self.next_block().await?;
            if m.data.is_empty() && m.event.is_none() {
                continue;
            }
            return Some(m);
        }
    }
}

/// A store whose appends wait at a gate, so a test can hold a request in
/// flight without timing. It also shows the server takes any `EventStore`.
pub struct GatedStore {
    pub inner: Arc<dyn EventStore>,
    pub entered: Notify,
    pub gate: Semaphore,
    /// When set, `health` fails with a `Corrupt` error naming this location.
    pub unwell: std::sync::Mutex<Option<String>>,
    /// When set, appends fail with `Overloaded` (before the gate).
    pub overloaded: std::sync::atomic::AtomicBool,
}

#[async_trait]
impl EventStore for GatedStore {
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult> {
        if self.overloaded.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(strata_core::Error::Overloaded {
                queued: 1,
                adding: 1,
                limit: 1,
            });
        }
        self.entered.notify_one();
        let _pass = self.gate.acquire().await.unwrap();
        self.inner.append(stream, expected, events).await
    }
    async fn append_multi(&self, appends: Vec<StreamAppend>) -> Result<Vec<AppendResult>> {
        self.inner.append_multi(appends).await
    }
    async fn read_stream(
        &self,
        stream: &StreamId,
        from: Version,
        max_count: usize,
        direction: Direction,
    ) -> Result<Vec<RecordedEvent>> {
        self.inner
            .read_stream(stream, from, max_count, direction)
            .await
    }
    async fn read_all(
        &self,
        from: Position,
        max_count: usize,
        filter: &ReadFilter,
    ) -> Result<Vec<RecordedEvent>> {
        self.inner.read_all(from, max_count, filter).await
    }
    async fn read_all_backward(
        &self,
        before: Position,
        max_count: usize,
        filter: &ReadFilter,
    ) -> Result<Vec<RecordedEvent>> {
        self.inner
            .read_all_backward(before, max_count, filter)
            .await
    }
    async fn subscribe(&self, from: SubscribeFrom, filter: ReadFilter) -> Result<Subscription> {
        self.inner.subscribe(from, filter).await
    }
    async fn stream_info(&self, stream: &StreamId) -> Result<Option<StreamInfo>> {
        self.inner.stream_info(stream).await
    }
    async fn list_streams(&self, query: &StreamListQuery) -> Result<StreamPage> {
        self.inner.list_streams(query).await
    }
    async fn delete_stream(&self, stream: &StreamId, expected: ExpectedVersion) -> Result<()> {
        self.inner.delete_stream(stream, expected).await
    }
    async fn tombstone_stream(&self, stream: &StreamId, expected: ExpectedVersion) -> Result<()> {
        self.inner.tombstone_stream(stream, expected).await
    }
    async fn head_position(&self) -> Result<Position> {
        self.inner.head_position().await
    }
    fn limits(&self) -> &Limits {
        self.inner.limits()
    }
    fn health(&self) -> Result<Option<Position>> {
        match self.unwell.lock().unwrap().clone() {
            Some(location) => Err(strata_core::Error::Corrupt {
                location,
                reason: "a checksum does not match".into(),
            }),
            None => self.inner.health(),
        }
    }
}

impl GatedStore {
    /// A gate that starts closed: appends wait until `gate.add_permits`.
    pub fn new(inner: Arc<dyn EventStore>) -> Arc<Self> {
        Arc::new(GatedStore {
            inner,
            entered: Notify::new(),
            gate: Semaphore::new(0),
            unwell: std::sync::Mutex::new(None),
            overloaded: std::sync::atomic::AtomicBool::new(false),
        })
    }
}

/// A MemoryStore that reports durable syncs (always 0), as a durable store
/// does: what `/metrics` shows depends only on what `durable_syncs` says.
pub struct SyncCountingStore(pub MemoryStore);

#[async_trait]
impl EventStore for SyncCountingStore {
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult> {
        self.0.append(stream, expected, events).await
    }
    async fn append_multi(&self, appends: Vec<StreamAppend>) -> Result<Vec<AppendResult>> {
        self.0.append_multi(appends).await
    }
    async fn read_stream(
        &self,
        stream: &StreamId,
        from: Version,
        max_count: usize,
        direction: Direction,
    ) -> Result<Vec<RecordedEvent>> {
        self.0.read_stream(stream, from, max_count, direction).await
    }
    async fn read_all(
        &self,
        from: Position,
        max_count: usize,
        filter: &ReadFilter,
    ) -> Result<Vec<RecordedEvent>> {
        self.0.read_all(from, max_count, filter).await
    }
    async fn read_all_backward(
        &self,
        before: Position,
        max_count: usize,
        filter: &ReadFilter,
    ) -> Result<Vec<RecordedEvent>> {
        self.0.read_all_backward(before, max_count, filter).await
    }
    async fn subscribe(&self, from: SubscribeFrom, filter: ReadFilter) -> Result<Subscription> {
        self.0.subscribe(from, filter).await
    }
    async fn stream_info(&self, stream: &StreamId) -> Result<Option<StreamInfo>> {
        self.0.stream_info(stream).await
    }
    async fn list_streams(&self, query: &StreamListQuery) -> Result<StreamPage> {
        self.0.list_streams(query).await
    }
    async fn delete_stream(&self, stream: &StreamId, expected: ExpectedVersion) -> Result<()> {
        self.0.delete_stream(stream, expected).await
    }
    async fn tombstone_stream(&self, stream: &StreamId, expected: ExpectedVersion) -> Result<()> {
        self.0.tombstone_stream(stream, expected).await
    }
    async fn head_position(&self) -> Result<Position> {
        self.0.head_position().await
    }
    fn limits(&self) -> &Limits {
        self.0.limits()
    }
    fn durable_syncs(&self) -> Option<u64> {
        Some(0)
    }
}

/// An API key named `name` whose secret is `secret`, with `role` over
/// `prefixes`.
pub fn api_key(
    name: &str,
    secret: &str,
    role: strata_server::Role,
    prefixes: &[&str],
) -> strata_server::ApiKey {
    strata_server::ApiKey::new(
        name,
        &strata_server::sha256_hex(secret),
        role,
        prefixes.iter().map(|p| p.to_string()).collect(),
    )
    .unwrap()
}
