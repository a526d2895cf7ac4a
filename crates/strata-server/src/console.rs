//! The web console: `GET /ui` (the page), `GET /ui/` (the same) and
//! `GET /ui/{asset}` (its scripts and style sheet), served from files
//! embedded in the binary (`crates/strata-server/ui/`). There is no build
//! step: the files are plain ES modules, HTML and CSS, served as written.
//!
//! The console holds no data: it calls the API with the key its user types,
//! so these routes need no key. Every answer carries a strict
//! Content-Security-Policy (no inline script, no `eval`, nothing from
//! another origin), `X-Content-Type-Options: nosniff`, and an ETag; assets
//! are revalidated on each load (`Cache-Control: no-cache`) and answered 304
//! when unchanged. See `docs/console.md` and ADR 0027.

use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, IF_NONE_MATCH, REFERRER_POLICY,
    X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// The policy on every console response: scripts, styles, images and API
/// calls from this origin only (images may also be `data:` URLs); no inline
/// script or `eval`, no plugins, no `<base>`, no form posts elsewhere, and
/// no framing.
pub(crate) const CONTENT_SECURITY_POLICY_VALUE: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// One embedded file: its name under `/ui/`, content type and bytes.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const JS: &str = "text/javascript; charset=utf-8";

/// The page itself (`/ui`, `/ui/` and `/ui/index.html`).
const INDEX: &str = "index.html";

/// Every file of the console.
const ASSETS: &[Asset] = &[
    asset(
        INDEX,
        "text/html; charset=utf-8",
        include_str!("../ui/index.html"),
    ),
    asset(
        "console.css",
        "text/css; charset=utf-8",
        include_str!("../ui/console.css"),
    ),
    asset("app.js", JS, include_str!("../ui/app.js")),
    asset("api.js", JS, include_str!("../ui/api.js")),
    asset("session.js", JS, include_str!("../ui/session.js")),
    asset("dom.js", JS, include_str!("../ui/dom.js")),
    asset("events.js", JS, include_str!("../ui/events.js")),
    asset("metrics.js", JS, include_str!("../ui/metrics.js")),
    asset("chart.js", JS, include_str!("../ui/chart.js")),
    asset("page-streams.js", JS, include_str!("../ui/page-streams.js")),
    asset("page-stream.js", JS, include_str!("../ui/page-stream.js")),
    asset("page-all.js", JS, include_str!("../ui/page-all.js")),
    asset("page-append.js", JS, include_str!("../ui/page-append.js")),
    asset("page-health.js", JS, include_str!("../ui/page-health.js")),
    asset("page-groups.js", JS, include_str!("../ui/page-groups.js")),
];

const fn asset(name: &'static str, content_type: &'static str, body: &'static str) -> Asset {
    Asset {
        name,
        content_type,
        body,
    }
}

/// Each asset's ETag (a quoted prefix of its SHA-256), in [`ASSETS`] order.
fn etags() -> &'static [String] {
    static ETAGS: OnceLock<Vec<String>> = OnceLock::new();
    ETAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| {
                let digest = Sha256::digest(a.body.as_bytes());
                let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
                format!("\"{hex}\"")
            })
            .collect()
    })
}

/// `GET /ui` and `GET /ui/`: the console's page.
#[utoipa::path(
    get,
    path = "/ui",
    tag = "server",
    security(()),
    responses((status = 200, description = "The web console's page (it calls this API with the key its user enters)", content_type = "text/html"))
)]
pub(crate) async fn page(headers: HeaderMap) -> Response {
    serve(INDEX, &headers)
}

/// `GET /ui/{asset}`: one of the console's files.
#[utoipa::path(
    get,
    path = "/ui/{asset}",
    tag = "server",
    security(()),
    params(("asset" = String, Path, description = "A file of the console, e.g. app.js")),
    responses(
        (status = 200, description = "The file", content_type = "text/javascript"),
        (status = 304, description = "Unchanged since the ETag sent in If-None-Match"),
        (status = 404, description = "No such file", content_type = "text/plain")
    )
)]
pub(crate) async fn file(Path(name): Path<String>, headers: HeaderMap) -> Response {
    serve(&name, &headers)
}

/// The asset `name`, 304 when `If-None-Match` holds its ETag, or 404.
fn serve(name: &str, headers: &HeaderMap) -> Response {
    let Some(i) = ASSETS.iter().position(|a| a.name == name) else {
        return guarded(
            (
                StatusCode::NOT_FOUND,
                [(CONTENT_TYPE, "text/plain; charset=utf-8")],
                "no such console file",
            )
                .into_response(),
        );
    };
    let (asset, etag) = (&ASSETS[i], &etags()[i]);
    let fresh = headers
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut resp = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(CONTENT_TYPE, asset.content_type)], asset.body).into_response()
    };
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(etag) {
        h.insert(ETAG, v);
    }
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    guarded(resp)
}

/// Adds the security headers every console response carries.
fn guarded(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY_VALUE),
    );
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_module_the_scripts_import_is_embedded() {
        for a in ASSETS.iter().filter(|a| a.name.ends_with(".js")) {
            for line in a.body.lines().filter(|l| l.starts_with("import ")) {
                let Some(from) = line.split("from './").nth(1) else {
                    continue;
                };
                let target = from.split('\'').next().unwrap();
                assert!(
                    ASSETS.iter().any(|x| x.name == target),
                    "{} imports {target}, which is not embedded",
                    a.name
                );
            }
        }
    }

    #[test]
    fn no_script_writes_html() {
        // Data must reach the page as text only.
        for a in ASSETS.iter().filter(|a| a.name.ends_with(".js")) {
            for banned in [
                "innerHTML",
                "outerHTML",
                "insertAdjacentHTML",
                "document.write",
                "eval(",
                "new Function",
            ] {
                assert!(!a.body.contains(banned), "{} uses {banned}", a.name);
            }
        }
    }

    #[test]
    fn the_page_has_no_inline_script_or_style() {
        let page = ASSETS[0].body;
        assert!(!page.contains("<script>"));
        assert!(!page.contains("style="));
        assert!(!page.contains("<style"));
    }
}
