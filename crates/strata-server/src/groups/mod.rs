//! Consumer groups over HTTP: `/groups/...`.
//!
//! Managing a group (`PUT`, `GET`, `DELETE`, parked messages) needs the
//! `admin` role. Consuming it (read, subscribe, ack, nack) needs `read` on
//! its source: a stream the key covers, or — for a group on `$all` — a key
//! that covers every stream, since a group's events are handed out to its
//! consumers as a whole and cannot be filtered per key (ADR 0021).
//!
//! A consumer named by no request gets the name `http-<key name>` (or
//! `http` without keys); a push subscription names its own consumer and
//! says so in its first event.

pub(crate) mod consume;
pub(crate) mod manage;
pub(crate) mod subscribe;

use std::sync::Arc;

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use axum::http::StatusCode;
use strata_core::group::{ConsumerGroups, ConsumerId, GroupName, GroupSource, MAX_NAME_BYTES};

use crate::auth::{Access, Role};
use crate::error::ApiError;
use crate::state::AppState;
use strata_wire::kind;

pub(crate) use consume::{ack, nack, read};
pub(crate) use manage::{
    delete_group, delete_parked, get_group, list_groups, parked, put_group, replay,
};
pub(crate) use subscribe::subscribe;

/// The prefix of the consumer name the server picks for a request that
/// names none.
pub const DEFAULT_CONSUMER_PREFIX: &str = "http";

/// The `{group}` segment of a path, checked as a group name (400 when it
/// does not decode, 422 when it is not a valid name).
pub(crate) struct GroupPath(pub GroupName);

impl<S: Send + Sync> FromRequestParts<S> for GroupPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(name) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|r| ApiError::bad_request(kind::INVALID_PATH, r.body_text()))?;
        Ok(GroupPath(GroupName::new(name)?))
    }
}

/// The server's groups, or 501 when the caller gave it none.
pub(crate) fn groups_of(state: &AppState) -> Result<Arc<dyn ConsumerGroups>, ApiError> {
    state.groups.clone().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            kind::UNSUPPORTED,
            "this server offers no consumer groups",
        )
    })
}

/// 404 for a group that does not exist.
pub(crate) fn not_found(name: &GroupName) -> ApiError {
    strata_core::Error::GroupNotFound {
        group: name.as_str().to_owned(),
    }
    .into()
}

/// Checks that `access` may consume the group: `read` on its source. For a
/// key that covers every stream the group is not looked up at all (the
/// settle path stays one call); otherwise 404 for a missing group, 403
/// unless the key covers the source stream, or every stream for `$all`.
pub(crate) async fn require_consume(
    access: &Access,
    groups: &dyn ConsumerGroups,
    name: &GroupName,
) -> Result<(), ApiError> {
    access.require_role(Role::Read)?;
    if access.sees_everything() {
        return Ok(());
    }
    let status = groups
        .group_status(name)
        .await?
        .ok_or_else(|| not_found(name))?;
    match &status.settings.source {
        GroupSource::Stream(s) => access.require(Role::Read, s.as_str()),
        GroupSource::All(_) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            kind::FORBIDDEN,
            format!(
                "group `{name}` follows `$all`; consuming it needs a key that covers every stream"
            ),
        )),
    }
}

/// The consumer a request acts as: the one it names, or the key's default.
pub(crate) fn consumer_of(access: &Access, named: Option<String>) -> Result<ConsumerId, ApiError> {
    match named {
        Some(name) => Ok(ConsumerId::new(name)?),
        None => Ok(ConsumerId::new(default_consumer(access))?),
    }
}

/// `http-<key name>` with characters a consumer name cannot hold replaced
/// by `_`, cut to [`MAX_NAME_BYTES`]; `http` when keys are off.
fn default_consumer(access: &Access) -> String {
    let Some(key) = access.key() else {
        return DEFAULT_CONSUMER_PREFIX.to_owned();
    };
    let safe = |c: char| {
        if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
            c
        } else {
            '_'
        }
    };
    let name: String = format!("{DEFAULT_CONSUMER_PREFIX}-{}", key.name())
        .chars()
        .map(safe)
        .collect();
    name.chars().take(MAX_NAME_BYTES).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{sha256_hex, ApiKey};

    #[test]
    fn default_consumers_are_valid_names() {
        assert_eq!(default_consumer(&Access::Open), "http");
        let key =
            ApiKey::new("ops team/α", &sha256_hex("s"), Role::Read, vec!["*".into()]).expect("key");
        let name = default_consumer(&Access::Key(Arc::new(key)));
        assert_eq!(name, "http-ops_team__");
        assert!(ConsumerId::new(name).is_ok());
    }
}
