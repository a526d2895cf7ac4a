//! The endpoints about the service rather than its data: `GET /` (the
//! index), `GET /health`, and the JSON answers for an unknown path (404) or
//! method (405).

use axum::extract::State;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use strata_core::EventStore;
use strata_wire::{kind, HealthBody};

use crate::error::ApiError;
use crate::openapi::HealthDoc;
use crate::state::AppState;

const INDEX_HTML: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Strata</title></head>
<body>
<h1>Strata</h1>
<p><a href="/ui">Open the web console</a> (browse streams, follow <code>$all</code> live, watch the server's health).</p>
<p>An event-sourcing database. Its HTTP/JSON API (with API keys configured, send
<code>Authorization: Bearer &lt;key&gt;</code> or <code>X-API-Key</code>):</p>
<ul>
<li><code>POST /streams/{stream}</code> — append events</li>
<li><code>GET /streams/{stream}?from=&amp;limit=&amp;direction=forward|backward</code> — read a stream</li>
<li><a href="/streams"><code>GET /streams?prefix=&amp;category=&amp;after=&amp;limit=&amp;system=</code></a> — list streams by name, with their state and last write</li>
<li><a href="/auth/whoami"><code>GET /auth/whoami</code></a> — the presented key's name, role and prefixes</li>
<li><code>DELETE /streams/{stream}?expected_version=&amp;hard=true</code> — delete a stream (the <code>admin</code> role)</li>
<li><code>DELETE /streams/{stream}?erase=true&amp;expected_version=</code> — erase a stream: tombstoned, its data removed (the <code>admin</code> role)</li>
<li><code>POST /multi</code> — append to several streams atomically</li>
<li><a href="/all"><code>GET /all?after=&amp;limit=&amp;types=&amp;prefix=&amp;correlation_id=</code></a> — read every stream in commit order</li>
<li><a href="/subscribe/all"><code>GET /subscribe/all?after=</code></a> — follow every stream (server-sent events)</li>
<li><code>GET /subscribe/streams/{stream}?after_version=</code> — follow one stream (server-sent events)</li>
<li><a href="/health"><code>GET /health</code></a> — health check</li>
<li><a href="/metrics"><code>GET /metrics</code></a> — Prometheus metrics (the <code>admin</code> role when keys are configured)</li>
<li><code>PUT /groups/{group}</code>, <code>GET /groups</code>, <code>GET|DELETE /groups/{group}</code> — manage consumer groups (the <code>admin</code> role)</li>
<li><code>POST /groups/{group}/read</code>, <code>GET /groups/{group}/subscribe</code> — consume a group (pull, or server-sent events)</li>
<li><code>POST /groups/{group}/ack</code>, <code>POST /groups/{group}/nack</code> — settle messages</li>
<li><code>GET /groups/{group}/parked</code>, <code>POST /groups/{group}/parked/replay</code> — parked messages (the <code>admin</code> role)</li>
<li><code>POST /admin/backup</code> — back the store up into the server's backup directory (the <code>admin</code> role)</li>
<li><a href="/openapi.json"><code>GET /openapi.json</code></a> — this API as OpenAPI 3.1</li>
<li><a href="/ui"><code>GET /ui</code></a> — the web console</li>
</ul>
</body></html>
"#;

/// `GET /`.
#[utoipa::path(
    get,
    path = "/",
    tag = "server",
    security(()),
    responses((status = 200, description = "An HTML page linking the endpoints", content_type = "text/html"))
)]
pub(crate) async fn index() -> Html<&'static str> {
    Html(INDEX_HTML)
}

/// `GET /health`: 200 when the store is serving, 503 when it is not; answered
/// without I/O or a database round trip ([`EventStore::health`]).
#[utoipa::path(
    get,
    path = "/health",
    tag = "server",
    security(()),
    responses(
        (status = 200, description = "The store answers", body = HealthDoc),
        (status = 503, description = "The store does not answer", body = HealthDoc)
    )
)]
pub(crate) async fn health(State(state): State<AppState>) -> Response {
    // No I/O and no database round trip: a health check must answer while
    // readers load the disk or the database pool is exhausted.
    match state.store.health() {
        Ok(head) => Json(HealthBody {
            status: "ok".into(),
            head_position: head.map(|p| p.0),
            error: None,
            message: None,
        })
        .into_response(),
        Err(e) => {
            // The raw error can name files and hosts: it goes to the log,
            // not to a caller who may not be authenticated.
            tracing::warn!(kind = e.kind(), error = %e, "health check: store unavailable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(HealthBody {
                    status: "unavailable".into(),
                    head_position: None,
                    error: Some(e.kind().into()),
                    message: Some("the store is unavailable; the server log says why".into()),
                }),
            )
                .into_response()
        }
    }
}

/// A known path with a method it does not take.
pub(crate) async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        kind::METHOD_NOT_ALLOWED,
        format!(
            "{} does not take {method}; see GET / for the list",
            uri.path()
        ),
    )
}

/// Any other path.
pub(crate) async fn not_found(uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        kind::NOT_FOUND,
        format!("no such endpoint: {}; see GET / for the list", uri.path()),
    )
}
