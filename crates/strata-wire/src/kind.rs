//! The `error` kinds of error bodies (and of a subscription's final `error`
//! event). A client matches on these strings; the server only ever sends
//! kinds listed here or the store's own (`strata_core::Error::kind`), which
//! are listed here too.

/// 409: the stream is not at the version the request expected.
pub const WRONG_EXPECTED_VERSION: &str = "wrong_expected_version";
/// 409: an event id was already used for another event.
pub const IDEMPOTENCY_CONFLICT: &str = "idempotency_conflict";
/// 409: a conditional append's condition failed (the body's `position`
/// names the first matching event).
pub const CONDITION_FAILED: &str = "condition_failed";
/// 410: the stream was tombstoned.
pub const STREAM_DELETED: &str = "stream_deleted";
/// 404: no such stream.
pub const STREAM_NOT_FOUND: &str = "stream_not_found";
/// 404: no such consumer group.
pub const GROUP_NOT_FOUND: &str = "group_not_found";
/// 422: the request parsed but is not valid.
pub const INVALID_INPUT: &str = "invalid_input";
/// 413: the request is over a size limit.
pub const PAYLOAD_TOO_LARGE: &str = "payload_too_large";
/// 401: no API key, or an unknown one.
pub const UNAUTHORIZED: &str = "unauthorized";
/// 403: the key's role or prefixes do not allow the request.
pub const FORBIDDEN: &str = "forbidden";
/// 400: the body is not JSON.
pub const MALFORMED_JSON: &str = "malformed_json";
/// 400: the body is not `application/json`.
pub const UNSUPPORTED_CONTENT_TYPE: &str = "unsupported_content_type";
/// 400: the body could not be read.
pub const BAD_BODY: &str = "bad_body";
/// 400: the query string does not parse.
pub const INVALID_QUERY: &str = "invalid_query";
/// 400: a path segment does not decode (e.g. `/streams/%FF`, not UTF-8).
pub const INVALID_PATH: &str = "invalid_path";
/// 400: `Last-Event-ID` is not a position.
pub const INVALID_LAST_EVENT_ID: &str = "invalid_last_event_id";
/// 404: no such endpoint.
pub const NOT_FOUND: &str = "not_found";
/// 405: the endpoint does not take this method.
pub const METHOD_NOT_ALLOWED: &str = "method_not_allowed";
/// 429: the key has its maximum of open subscriptions.
pub const TOO_MANY_SUBSCRIPTIONS_FOR_KEY: &str = "too_many_subscriptions_for_key";
/// 503: the server has its maximum of open subscriptions.
pub const TOO_MANY_SUBSCRIPTIONS: &str = "too_many_subscriptions";
/// 503: the request took longer than the server's request timeout, or the
/// store timed out.
pub const TIMEOUT: &str = "timeout";
/// Subscription end: the client did not read fast enough.
pub const SLOW_CONSUMER: &str = "slow_consumer";
/// Subscription end: the server is shutting down.
pub const SHUTTING_DOWN: &str = "shutting_down";
/// Subscription end: more streams were erased while the subscription was
/// open than the server tracks per subscription, so it could no longer hold
/// their events back; reconnect with `Last-Event-ID` (a new subscription
/// never sees erased events).
pub const STREAMS_ERASED: &str = "streams_erased";
/// 501: the store does not offer the operation (a backup of a store that
/// has none, for example).
pub const UNSUPPORTED: &str = "unsupported";
/// 503, or a subscription end: the store was closed.
pub const CLOSED: &str = "closed";
/// 503 with `Retry-After`: the store has as many bytes of appends queued
/// as its limit allows; retry later.
pub const OVERLOADED: &str = "overloaded";
/// 503: the store refuses writes after an I/O failure.
pub const POISONED: &str = "poisoned";
/// 500: the server failed.
pub const INTERNAL: &str = "internal";
