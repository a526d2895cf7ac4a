//! `GET /metrics`: counters kept in atomics, written out in the Prometheus
//! text exposition format (version 0.0.4) by hand. A handful of series does
//! not justify a metrics crate; every label set is bounded (routes, status
//! classes and error kinds are fixed strings), so no series can grow without
//! limit.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use strata_core::EventStore;
use tokio::sync::mpsc;

use crate::auth::{Access, Role};
use crate::error::{ApiError, ErrorKind};
use crate::state::AppState;

/// Upper bounds (seconds) of the append latency histogram's buckets.
const APPEND_LATENCY_BUCKETS_SECONDS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// A queue on one subscription connection, as the lag gauge sees it: a weak
/// handle, so that it never keeps the connection's stream open.
pub(crate) type SubscriptionQueue = mpsc::WeakSender<crate::queue::Buffered>;

/// The server's counters.
#[derive(Default)]
pub(crate) struct Metrics {
    appends_total: AtomicU64,
    events_appended_total: AtomicU64,
    bytes_appended_total: AtomicU64,
    append_latency_buckets: [AtomicU64; APPEND_LATENCY_BUCKETS_SECONDS.len()],
    append_latency_count: AtomicU64,
    append_latency_sum_micros: AtomicU64,
    open_subscriptions: AtomicUsize,
    /// Weak handles on every open subscription's queue and its capacity,
    /// for the lag gauge.
    subscription_queues: Mutex<Vec<(SubscriptionQueue, usize)>>,
    /// Route template → requests by status class (1xx … 5xx). A route's
    /// name is allocated once, at its first request.
    requests: Mutex<BTreeMap<String, [u64; STATUS_CLASSES.len()]>>,
    /// error kind → responses.
    errors: Mutex<BTreeMap<&'static str, u64>>,
}

/// Keeps a subscription counted while it lives.
pub(crate) struct SubscriptionGuard {
    metrics: Arc<Metrics>,
}

impl Drop for SubscriptionGuard {
    fn drop(&mut self) {
        self.metrics
            .open_subscriptions
            .fetch_sub(1, Ordering::Relaxed);
    }
}

impl Metrics {
    /// Counts a committed append of `events` events and `bytes` bytes.
    pub fn record_append(&self, events: usize, bytes: usize, took: Duration) {
        self.appends_total.fetch_add(1, Ordering::Relaxed);
        self.events_appended_total
            .fetch_add(events as u64, Ordering::Relaxed);
        self.bytes_appended_total
            .fetch_add(bytes as u64, Ordering::Relaxed);
        let secs = took.as_secs_f64();
        for (i, bound) in APPEND_LATENCY_BUCKETS_SECONDS.iter().enumerate() {
            if secs <= *bound {
                self.append_latency_buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.append_latency_count.fetch_add(1, Ordering::Relaxed);
        self.append_latency_sum_micros.fetch_add(
            u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// Counts an open subscription whose outgoing queue (of `capacity`
    /// messages) is `queue`, until the guard is dropped.
    pub fn open_subscription(
        self: &Arc<Self>,
        queue: SubscriptionQueue,
        capacity: usize,
    ) -> SubscriptionGuard {
        self.open_subscriptions.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut queues) = self.subscription_queues.lock() {
            queues.retain(|(q, _)| q.strong_count() > 0);
            queues.push((queue, capacity));
        }
        SubscriptionGuard {
            metrics: self.clone(),
        }
    }

    fn record_response(&self, route: &str, status: u16, error: Option<&'static str>) {
        let class = match status {
            100..=199 => 0,
            200..=299 => 1,
            300..=399 => 2,
            400..=499 => 3,
            _ => 4,
        };
        if let Ok(mut r) = self.requests.lock() {
            match r.get_mut(route) {
                Some(counts) => counts[class] += 1,
                None => {
                    let mut counts = [0; STATUS_CLASSES.len()];
                    counts[class] = 1;
                    r.insert(route.to_owned(), counts);
                }
            }
        }
        if let Some(kind) = error {
            if let Ok(mut e) = self.errors.lock() {
                *e.entry(kind).or_insert(0) += 1;
            }
        }
    }

    /// Most messages waiting in one subscription's queue (sent by the store,
    /// not yet taken by the client's connection).
    fn max_subscription_lag(&self) -> usize {
        let Ok(mut queues) = self.subscription_queues.lock() else {
            return 0;
        };
        queues.retain(|(q, _)| q.strong_count() > 0);
        queues
            .iter()
            .filter_map(|(q, cap)| q.upgrade().map(|q| cap.saturating_sub(q.capacity())))
            .max()
            .unwrap_or(0)
    }

    /// The Prometheus text exposition of every series. `head_position` and
    /// `durable_syncs` come from the store, when it answers or counts them.
    pub fn render(&self, head_position: Option<u64>, durable_syncs: Option<u64>) -> String {
        let mut out = String::with_capacity(4096);
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        counter(
            &mut out,
            "strata_appends_total",
            "Appends committed (one per POST /streams/{stream} or POST /multi).",
            load(&self.appends_total),
        );
        counter(
            &mut out,
            "strata_events_appended_total",
            "Events committed by appends.",
            load(&self.events_appended_total),
        );
        counter(
            &mut out,
            "strata_bytes_appended_total",
            "Bytes of event data (the payloads) committed by appends.",
            load(&self.bytes_appended_total),
        );
        self.render_append_latency(&mut out);
        gauge(
            &mut out,
            "strata_open_subscriptions",
            "Subscriptions (server-sent-event connections) open now.",
            self.open_subscriptions.load(Ordering::Relaxed) as u64,
        );
        gauge(
            &mut out,
            "strata_subscription_lag_messages_max",
            "Most messages queued on one subscription and not yet taken by its client; a client is dropped when its queue is full.",
            self.max_subscription_lag() as u64,
        );
        if let Some(syncs) = durable_syncs {
            counter(
                &mut out,
                "strata_store_durable_syncs_total",
                "Times the store made appended data durable (fdatasync calls of the log store, committed flushing transactions on PostgreSQL) since it was opened.",
                syncs,
            );
        }
        if let Some(head) = head_position {
            gauge(
                &mut out,
                "strata_head_position",
                "Position of the last committed event.",
                head,
            );
        }
        self.render_requests_and_errors(&mut out);
        out
    }

    /// The append latency histogram.
    fn render_append_latency(&self, out: &mut String) {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "# HELP strata_append_duration_seconds Time the store took to commit an append."
        );
        let _ = writeln!(out, "# TYPE strata_append_duration_seconds histogram");
        for (i, bound) in APPEND_LATENCY_BUCKETS_SECONDS.iter().enumerate() {
            let _ = writeln!(
                out,
                "strata_append_duration_seconds_bucket{{le=\"{bound}\"}} {}",
                load(&self.append_latency_buckets[i])
            );
        }
        let count = load(&self.append_latency_count);
        let _ = writeln!(
            out,
            "strata_append_duration_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            out,
            "strata_append_duration_seconds_sum {}",
            load(&self.append_latency_sum_micros) as f64 / 1e6
        );
        let _ = writeln!(out, "strata_append_duration_seconds_count {count}");
    }

    /// Responses by route and status class, and errors by kind.
    fn render_requests_and_errors(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "# HELP strata_http_requests_total HTTP responses by route and status class."
        );
        let _ = writeln!(out, "# TYPE strata_http_requests_total counter");
        if let Ok(r) = self.requests.lock() {
            for (route, counts) in r.iter() {
                for (class, n) in STATUS_CLASSES.iter().zip(counts) {
                    if *n > 0 {
                        let _ = writeln!(
                            out,
                            "strata_http_requests_total{{route=\"{}\",status=\"{class}\"}} {n}",
                            escape_label(route)
                        );
                    }
                }
            }
        }
        let _ = writeln!(
            out,
            "# HELP strata_errors_total Error responses by kind (the `error` field of the body)."
        );
        let _ = writeln!(out, "# TYPE strata_errors_total counter");
        if let Ok(e) = self.errors.lock() {
            for (kind, n) in e.iter() {
                let _ = writeln!(out, "strata_errors_total{{kind=\"{kind}\"}} {n}");
            }
        }
    }
}

fn counter(out: &mut String, name: &str, help: &str, value: u64) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} counter");
    let _ = writeln!(out, "{name} {value}");
}

fn gauge(out: &mut String, name: &str, help: &str, value: u64) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} gauge");
    let _ = writeln!(out, "{name} {value}");
}

fn escape_label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The status classes `strata_http_requests_total` counts, in label order.
const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// Middleware: counts every response by route and status class, and error
/// responses by kind.
pub(crate) async fn count_requests(
    State(metrics): State<Arc<Metrics>>,
    req: Request,
    next: Next,
) -> Response {
    // The route template, never the raw path: stream names would make the
    // label set unbounded.
    // (`MatchedPath` is a shared string: cloning it allocates nothing.)
    let route = req.extensions().get::<MatchedPath>().cloned();
    let resp = next.run(req).await;
    let kind = resp.extensions().get::<ErrorKind>().map(|k| k.0);
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    metrics.record_response(route, resp.status().as_u16(), kind);
    resp
}

/// `GET /metrics`: needs the `admin` role when keys are configured.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "server",
    responses(
        (status = 200, description = "Prometheus text exposition format 0.0.4", content_type = "text/plain"),
        (status = 401, description = "No or unknown API key", body = crate::openapi::ErrorBody),
        (status = 403, description = "The key is not `admin`", body = crate::openapi::ErrorBody)
    )
)]
pub(crate) async fn metrics(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
) -> Result<Response, ApiError> {
    access.require_role(Role::Admin)?;
    let head = state.store.head_position().await.ok().map(|p| p.0);
    let mut text = state.metrics.render(head, state.store.durable_syncs());
    render_store(&mut text, &state).await;
    if let Some(s) = state.admin.as_ref().and_then(|a| a.scavenge_status()) {
        render_scavenge(&mut text, &s);
    }
    if let Some(groups) = &state.groups {
        match groups.list_groups().await {
            Ok(list) => render_groups(&mut text, &list),
            Err(e) => tracing::warn!(error = %e, "listing groups for /metrics failed"),
        }
    }
    Ok((
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        text,
    )
        .into_response())
}

/// What store this is (`strata_store_info`, with the server's version) and,
/// when its directory is known, the bytes it uses on disk.
async fn render_store(out: &mut String, state: &AppState) {
    let kind = state.config.store_kind.as_deref().unwrap_or("unknown");
    let _ = writeln!(
        out,
        "# HELP strata_store_info The store's kind and the server's version (always 1)."
    );
    let _ = writeln!(out, "# TYPE strata_store_info gauge");
    let _ = writeln!(
        out,
        "strata_store_info{{kind=\"{}\",version=\"{}\"}} 1",
        escape_label(kind),
        env!("CARGO_PKG_VERSION")
    );
    let Some(dir) = state.config.store_dir.clone() else {
        return;
    };
    // A directory walk is file I/O: off the runtime's workers.
    let bytes = tokio::task::spawn_blocking(move || crate::disk::disk_bytes(&dir))
        .await
        .ok()
        .flatten();
    if let Some(bytes) = bytes {
        gauge(
            out,
            "strata_store_disk_bytes",
            "Bytes of the files in the store's directory.",
            bytes,
        );
    }
}

/// Per consumer group: lag, in flight, parked and acked totals, each one
/// metric with a `group` label.
fn render_groups(out: &mut String, groups: &[strata_core::group::GroupStatus]) {
    type Field = fn(&strata_core::group::GroupStatus) -> String;
    let metrics: [(&str, &str, &str, Field); 5] = [
        (
            "strata_group_lag_events",
            "gauge",
            "Events of the group's source after its checkpoint not yet settled.",
            |g| g.lag_events.to_string(),
        ),
        (
            "strata_group_lag_seconds",
            "gauge",
            "Age of the group's oldest unsettled event, in seconds.",
            |g| g.lag_seconds.to_string(),
        ),
        (
            "strata_group_in_flight",
            "gauge",
            "Messages of the group leased now.",
            |g| g.in_flight.to_string(),
        ),
        (
            "strata_group_parked",
            "gauge",
            "Messages in the group's parked list.",
            |g| g.parked.to_string(),
        ),
        (
            "strata_group_acked_total",
            "counter",
            "Acks of the group since it was loaded.",
            |g| g.acked_total.to_string(),
        ),
    ];
    for (name, kind, help, value) in metrics {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for g in groups {
            let label = escape_label(g.name.as_str());
            let _ = writeln!(out, "{name}{{group=\"{label}\"}} {}", value(g));
        }
    }
}

/// The scavenge's progress and totals, for a store that scavenges.
fn render_scavenge(out: &mut String, s: &strata_core::ScavengeStatus) {
    gauge(
        out,
        "strata_scavenge_running",
        "1 while a scavenge runs.",
        u64::from(s.running),
    );
    gauge(
        out,
        "strata_scavenge_segments_total",
        "Sealed segments the running (or last) scavenge looks at.",
        s.segments_total,
    );
    gauge(
        out,
        "strata_scavenge_segments_done",
        "Of those, how many it has looked at.",
        s.segments_done,
    );
    counter(
        out,
        "strata_scavenge_segments_rewritten_total",
        "Segments rewritten by scavenges since the store opened.",
        s.segments_rewritten,
    );
    counter(
        out,
        "strata_scavenge_events_removed_total",
        "Events removed by scavenges since the store opened.",
        s.events_removed,
    );
    counter(
        out,
        "strata_scavenge_bytes_reclaimed_total",
        "Bytes on disk given back by scavenges since the store opened.",
        s.bytes_reclaimed,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histogram() {
        let m = Metrics::default();
        m.record_append(3, 120, Duration::from_micros(700));
        m.record_response("/streams/{stream}", 409, Some("wrong_expected_version"));
        let text = m.render(Some(3), Some(7));
        assert!(text.contains("strata_appends_total 1\n"));
        assert!(text.contains("strata_events_appended_total 3\n"));
        assert!(text.contains("strata_bytes_appended_total 120\n"));
        assert!(text.contains("strata_append_duration_seconds_bucket{le=\"0.0005\"} 0\n"));
        assert!(text.contains("strata_append_duration_seconds_bucket{le=\"0.001\"} 1\n"));
        assert!(text.contains("strata_append_duration_seconds_count 1\n"));
        assert!(text.contains(
            "strata_http_requests_total{route=\"/streams/{stream}\",status=\"4xx\"} 1\n"
        ));
        assert!(text.contains("strata_errors_total{kind=\"wrong_expected_version\"} 1\n"));
        assert!(text.contains("strata_store_durable_syncs_total 7\n"));
        assert!(text.contains("strata_head_position 3\n"));
        // A store that does not count syncs has no such series.
        assert!(!m
            .render(None, None)
            .contains("strata_store_durable_syncs_total"));
    }
}
