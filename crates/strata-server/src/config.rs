//! The server's named limits (STYLE.md: every limit has a name and a unit),
//! its API keys and its backup directory.

use std::path::PathBuf;

use crate::auth::ApiKeys;

/// What one server allows. Every field is a limit with its unit in its name;
/// the defaults are safe for a shared server.
///
/// ```
/// use strata_server::ServerConfig;
/// let config = ServerConfig {
///     max_open_subscriptions: 16,
///     ..ServerConfig::default()
/// };
/// assert_eq!(config.max_open_subscriptions, 16);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerConfig {
    /// Largest request body, in bytes; larger bodies get 413. Default 16 MiB.
    pub max_body_bytes: usize,
    /// Most events in one `POST /streams/{stream}`, `POST /multi` or
    /// `POST /dcb/append`; more get 413. The store's own
    /// `max_events_per_append` also applies, and also answers 413. Default
    /// 10,000.
    pub max_events_per_request: usize,
    /// Longest a non-streaming request may take, body upload included; slower
    /// ones get 503. Subscriptions are exempt. Default 30 s.
    pub request_timeout_ms: u64,
    /// Most subscriptions open at once across all clients; more get 503.
    /// Default 1,024.
    pub max_open_subscriptions: usize,
    /// Messages (events, `caught_up`) buffered per subscription connection
    /// while the client reads; a client that lets the buffer fill is dropped
    /// with a final `error` event. Default 1,024.
    pub subscription_buffer_messages: usize,
    /// Bytes of encoded events buffered per subscription connection (at
    /// least one event): the same slow-consumer rule applies when they are
    /// used up, so a subscription over large events holds about this much.
    /// Default 8 MiB.
    pub subscription_buffer_bytes: usize,
    /// Bytes of encoded events all subscriptions together may hold buffered
    /// (in their queues and in their connections' write buffers). A
    /// subscription that finds it full waits, since other subscriptions
    /// hold it, for up to the slow-consumer timeout plus the write timeout
    /// (by then stalled subscribers have been dropped and closed), then
    /// ends with an `overloaded` event. Default 64 MiB.
    pub subscription_buffers_total_bytes: usize,
    /// How long a subscription whose buffer is full waits for its client to
    /// read before dropping it with a final `slow_consumer` event, in ms. A
    /// client that pauses for less keeps its subscription; memory stays
    /// bounded by the buffer either way. Default 5,000.
    pub slow_consumer_timeout_ms: u64,
    /// How often an idle subscription sends a heartbeat comment. Default 15 s.
    pub heartbeat_interval_ms: u64,
    /// Events in a read page when the request gives no `limit`. Default 100.
    pub default_page_events: usize,
    /// About how many bytes of events one read page holds: a page stops at
    /// the event that reaches it (always at least one event) and returns
    /// `next`, so a page of large events never loads more than this (plus
    /// one event) into memory. Default 16 MiB.
    pub max_page_bytes: usize,
    /// Bytes all read pages in flight may hold together, from the read until
    /// the response is written; an event counts twice (its bytes and its
    /// JSON). A read that finds the budget spent waits for it, under the
    /// request timeout. Default 128 MiB: four pages of large events at once.
    pub max_read_bytes_in_flight: usize,
    /// Longest a write to a client may wait without the client reading any
    /// of it; then the connection is closed. A stalled reader (of a page or
    /// of a subscription dropped as a slow consumer) so gives back its
    /// socket, its buffers and its place under `max_connections`. Default
    /// 10 s.
    pub write_timeout_ms: u64,
    /// The API keys; none (the default) turns authentication off, and then
    /// the server must only listen on loopback ([`check_listen`](crate::check_listen)).
    pub api_keys: ApiKeys,
    /// Most subscriptions one API key may hold open at once; more get 429.
    /// Default 64. (With authentication off only `max_open_subscriptions` applies.)
    pub max_subscriptions_per_key: usize,
    /// Longest a client may take to send a request's head (request line and
    /// headers) once the server starts waiting for it; slower connections are
    /// closed without an answer (slowloris). The clock starts when the server
    /// waits for the next request, so this is also how long an idle keep-alive
    /// connection stays open. Also bounds the TLS handshake. Default 10 s.
    pub header_read_timeout_ms: u64,
    /// After shutdown begins, how long in-flight requests and open
    /// connections get before the server drops them and returns anyway.
    /// Default 10 s.
    pub shutdown_grace_ms: u64,
    /// Most client connections open at once; further ones wait in the
    /// kernel's accept queue until one closes. Default 4,096.
    pub max_connections: usize,
    /// Largest request head (request line and headers), in bytes; a larger
    /// one gets 431 and the connection is closed. At least 8,192 (smaller
    /// values are raised to it). Default 64 KiB.
    pub max_request_head_bytes: usize,
    /// Where `POST /admin/backup` writes: every call brings the backup in
    /// this directory up to date, copying only what is new since the last
    /// one. `None` (the default) answers that endpoint with 501.
    pub backup_dir: Option<PathBuf>,
    /// What kind of store the server serves (say `log`, `memory`,
    /// `postgres`), as the caller that opened it names it; `/metrics` shows
    /// it in `strata_store_info`. `None` (the default) shows `unknown`.
    pub store_kind: Option<String>,
    /// The directory the store keeps its files in, if it has one: `/metrics`
    /// reports the bytes of the files under it as `strata_store_disk_bytes`.
    /// `None` (the default) leaves that series out.
    pub store_dir: Option<PathBuf>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_body_bytes: 16 * 1024 * 1024,
            max_events_per_request: 10_000,
            request_timeout_ms: 30_000,
            max_open_subscriptions: 1_024,
            subscription_buffer_messages: 1_024,
            subscription_buffer_bytes: 8 * 1024 * 1024,
            subscription_buffers_total_bytes: 64 * 1024 * 1024,
            slow_consumer_timeout_ms: 5_000,
            heartbeat_interval_ms: 15_000,
            default_page_events: 100,
            max_page_bytes: 16 * 1024 * 1024,
            max_read_bytes_in_flight: 128 * 1024 * 1024,
            write_timeout_ms: 10_000,
            api_keys: ApiKeys::none(),
            max_subscriptions_per_key: 64,
            header_read_timeout_ms: 10_000,
            shutdown_grace_ms: 10_000,
            max_connections: 4_096,
            max_request_head_bytes: 64 * 1024,
            backup_dir: None,
            store_kind: None,
            store_dir: None,
        }
    }
}
