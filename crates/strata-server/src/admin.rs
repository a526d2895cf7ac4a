//! `POST /admin/backup` (a consistent backup of the store while it serves,
//! into the directory the server was configured with) and `POST
//! /admin/scavenge` (reclaiming the space of events no read returns),
//! through the store's [`StoreAdmin`](strata_core::StoreAdmin) face (the
//! server names no backend).

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use strata_core::{BackupReport, Error, ScavengeOptions, ScavengeReport};
use strata_wire::kind;

use crate::auth::{Access, Role};
use crate::error::ApiError;
use crate::state::AppState;

/// `POST /admin/backup`: needs the `admin` role when keys are configured.
/// Brings the backup in `ServerConfig::backup_dir` up to date (copying only
/// what is new since the last one) and answers with what it did. Calls are
/// taken one at a time; a second waits for the first. Not under the request
/// timeout: a first backup of a large store takes a while.
#[utoipa::path(
    post,
    path = "/admin/backup",
    tag = "admin",
    responses(
        (status = 200, description = "The backup is complete and durable", body = crate::openapi::BackupReportDoc),
        (status = 401, description = "No or unknown API key", body = crate::openapi::ErrorBody),
        (status = 403, description = "The key is not `admin`", body = crate::openapi::ErrorBody),
        (status = 422, description = "The backup directory holds something else (another store's backup, other files)", body = crate::openapi::ErrorBody),
        (status = 501, description = "No backup directory is configured, or the store offers no backups", body = crate::openapi::ErrorBody)
    )
)]
pub(crate) async fn backup(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
) -> Result<Json<BackupReport>, ApiError> {
    access.require_role(Role::Admin)?;
    let Some(admin) = state.admin.as_ref() else {
        return Err(Error::Unsupported {
            what: "backups through the server: back it up with its own tools".into(),
        }
        .into());
    };
    let Some(dir) = state.config.backup_dir.as_ref() else {
        return Err(ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            kind::UNSUPPORTED,
            "no backup directory is configured: start the server with --backup-dir DIR (ServerConfig::backup_dir)",
        ));
    };
    let _one_at_a_time = state.backup_running.lock().await;
    let report = admin.backup(dir).await?;
    tracing::info!(
        dir = %dir.display(),
        position = report.position.0,
        bytes_copied = report.bytes_copied,
        "backup done"
    );
    Ok(Json(report))
}

/// Query of `POST /admin/scavenge`.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct ScavengeQuery {
    /// Only rewrite segments holding events of erased streams.
    #[serde(default)]
    erased_only: bool,
}

/// `POST /admin/scavenge`: needs the `admin` role when keys are configured.
/// Reclaims the space of events no read can return (deleted, tombstoned
/// and erased streams, retention): the log store rewrites the sealed
/// segments that hold them, throttled so that appends and reads go on;
/// PostgreSQL deletes their rows in bounded batches. Answers with what it
/// did. One runs at a
/// time (a second call gets 422). Not under the request timeout.
#[utoipa::path(
    post,
    path = "/admin/scavenge",
    tag = "admin",
    params(ScavengeQuery),
    responses(
        (status = 200, description = "The scavenge is done", body = crate::openapi::ScavengeReportDoc),
        (status = 401, description = "No or unknown API key", body = crate::openapi::ErrorBody),
        (status = 403, description = "The key is not `admin`", body = crate::openapi::ErrorBody),
        (status = 422, description = "A scavenge is already running", body = crate::openapi::ErrorBody),
        (status = 501, description = "The store does not scavenge", body = crate::openapi::ErrorBody)
    )
)]
pub(crate) async fn scavenge(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    q: Result<axum::extract::Query<ScavengeQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<ScavengeReport>, ApiError> {
    access.require_role(Role::Admin)?;
    let q = crate::body::query(q)?;
    let Some(admin) = state.admin.as_ref() else {
        return Err(Error::Unsupported {
            what: "scavenging (the memory store keeps nothing on disk)".into(),
        }
        .into());
    };
    let options = ScavengeOptions {
        erased_only: q.erased_only,
    };
    let report = admin.scavenge(options).await?;
    tracing::info!(
        segments = report.segments_rewritten,
        events = report.events_removed,
        reclaimed = report.bytes_before.saturating_sub(report.bytes_after),
        "scavenge done"
    );
    Ok(Json(report))
}
