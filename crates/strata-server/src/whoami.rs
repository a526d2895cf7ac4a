//! `GET /auth/whoami`: what the presented key may do, so a client (the
//! console) shows only what the key may see and offers only what it may do.

use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use strata_wire::WhoAmI;

use crate::auth::{Access, Role};
use crate::openapi::{ErrorBody, WhoAmIDoc};

/// `GET /auth/whoami`.
#[utoipa::path(
    get,
    path = "/auth/whoami",
    tag = "server",
    responses(
        (status = 200, description = "The presented key (or the open server's answer without keys)", body = WhoAmIDoc),
        (status = 401, description = "No or unknown API key", body = ErrorBody)
    )
)]
pub(crate) async fn whoami(Extension(access): Extension<Access>) -> Response {
    Json(who(&access)).into_response()
}

/// The answer for `access`.
fn who(access: &Access) -> WhoAmI {
    match access.key() {
        Some(key) => WhoAmI {
            name: Some(key.name().to_owned()),
            role: key.role().to_string(),
            prefixes: key.prefixes().to_vec(),
            covers_all: key.covers_all(),
            auth: "key".into(),
        },
        None => WhoAmI {
            name: None,
            role: Role::Admin.to_string(),
            prefixes: Vec::new(),
            covers_all: true,
            auth: "none".into(),
        },
    }
}
