//! API keys, roles and stream-prefix scopes.
//!
//! A key is never stored: the server keeps the SHA-256 of each key and, for a
//! request, hashes the key it was sent and compares the digests in constant
//! time. Each key has one [`Role`] and a list of stream-name prefixes that
//! bound everything it does. See `docs/http-api.md` ("Authentication") and
//! ADR 0006.
//!
//! The key list is TOML, the same schema in a file and in the
//! `STRATA_API_KEYS` environment variable:
//!
//! ```
//! use strata_server::{ApiKeys, Role};
//! // printf %s 'the-secret-key' | sha256sum
//! let keys = ApiKeys::from_toml_str(r#"
//!     [[key]]
//!     name = "orders-service"
//!     sha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
//!     role = "write"
//!     prefixes = ["orders-"]
//! "#).unwrap();
//! assert_eq!(keys.len(), 1);
//! let key = keys.authenticate("").unwrap(); // the empty key hashes to e3b0…
//! assert_eq!(key.role(), Role::Write);
//! assert!(key.covers("orders-17"));
//! assert!(!key.covers("account-42"));
//! ```

use std::collections::HashSet;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::error::ApiError;

/// The environment variable `strata serve` reads API keys from (TOML text,
/// e.g. `key = [{name = "ops", sha256 = "…", role = "admin", prefixes = ["*"]}]`).
pub const API_KEYS_ENV: &str = "STRATA_API_KEYS";

/// The other header a key may be sent in, besides `Authorization: Bearer`.
pub const API_KEY_HEADER: &str = "x-api-key";

/// The prefix that covers every stream.
pub const ALL_STREAMS: &str = "*";

/// Most keys one configuration may hold (every request compares against each
/// key's digest, so the list is kept short).
pub const MAX_API_KEYS: usize = 1_024;

/// Most prefixes one key may list.
pub const MAX_PREFIXES_PER_KEY: usize = 64;

/// What a key may do, within its prefixes. Each role includes the one before.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Read streams, `/all` and subscriptions (events of covered streams only).
    Read,
    /// `Read`, plus append (`POST /streams/{s}`, `POST /multi`).
    Write,
    /// `Write`, plus delete (soft and hard) and `GET /metrics`.
    Admin,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Read => "read",
            Role::Write => "write",
            Role::Admin => "admin",
        })
    }
}

/// One API key: a name (for logs, metrics and limits), the SHA-256 of the
/// secret, a role and the stream prefixes it covers.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey {
    name: String,
    sha256: [u8; 32],
    role: Role,
    prefixes: Vec<String>,
}

impl fmt::Debug for ApiKey {
    // The digest is left out: logs have no use for it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKey")
            .field("name", &self.name)
            .field("role", &self.role)
            .field("prefixes", &self.prefixes)
            .finish_non_exhaustive()
    }
}

impl ApiKey {
    /// A key from the SHA-256 of its secret (64 hex digits).
    pub fn new(
        name: impl Into<String>,
        sha256_hex: &str,
        role: Role,
        prefixes: Vec<String>,
    ) -> Result<Self, KeyConfigError> {
        let name = name.into();
        if name.is_empty() {
            return Err(KeyConfigError::Invalid("a key has an empty `name`".into()));
        }
        let sha256 = parse_sha256(sha256_hex).ok_or_else(|| {
            KeyConfigError::Invalid(format!(
                "key `{name}`: `sha256` must be 64 hex digits (the SHA-256 of the key, e.g. from `printf %s KEY | sha256sum`)"
            ))
        })?;
        if prefixes.is_empty() {
            return Err(KeyConfigError::Invalid(format!(
                "key `{name}` lists no `prefixes`; use [\"{ALL_STREAMS}\"] for every stream"
            )));
        }
        if prefixes.len() > MAX_PREFIXES_PER_KEY {
            return Err(KeyConfigError::Invalid(format!(
                "key `{name}` lists {} prefixes, the limit is {MAX_PREFIXES_PER_KEY}",
                prefixes.len()
            )));
        }
        if prefixes.iter().any(String::is_empty) {
            return Err(KeyConfigError::Invalid(format!(
                "key `{name}` has an empty prefix; use \"{ALL_STREAMS}\" for every stream"
            )));
        }
        Ok(ApiKey {
            name,
            sha256,
            role,
            prefixes,
        })
    }

    /// The key's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The stream prefixes the key covers (`*` for every stream).
    pub fn prefixes(&self) -> &[String] {
        &self.prefixes
    }

    /// Whether `stream` starts with one of the key's prefixes.
    pub fn covers(&self, stream: &str) -> bool {
        self.prefixes
            .iter()
            .any(|p| p == ALL_STREAMS || stream.starts_with(p.as_str()))
    }

    /// Whether the key covers every stream.
    pub fn covers_all(&self) -> bool {
        self.prefixes.iter().any(|p| p == ALL_STREAMS)
    }
}

/// The configured keys. Empty means authentication is off (then the server
/// must only listen on loopback: see [`check_listen`](crate::check_listen)).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ApiKeys {
    keys: Vec<Arc<ApiKey>>,
}

/// A key configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyConfigError {
    /// The key file could not be read.
    #[error("cannot read the API key file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The text is not TOML of the expected shape.
    #[error("API keys from {origin} are not valid TOML of the form [[key]] name, sha256, role, prefixes: {message}")]
    Parse {
        /// The file or the environment variable.
        origin: String,
        /// The parser's message.
        message: String,
    },
    /// A key is invalid (bad digest, no prefixes, duplicate name, ...).
    #[error("{0}")]
    Invalid(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    #[serde(default)]
    key: Vec<KeyEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyEntry {
    name: String,
    sha256: String,
    role: Role,
    prefixes: Vec<String>,
}

impl ApiKeys {
    /// No keys: authentication off.
    pub fn none() -> Self {
        ApiKeys::default()
    }

    /// The keys given, checked for unique names and digests.
    pub fn new(keys: Vec<ApiKey>) -> Result<Self, KeyConfigError> {
        let mut out = ApiKeys::none();
        out.extend(keys)?;
        Ok(out)
    }

    /// Parses the TOML key list (`[[key]]` tables or `key = [{...}]`).
    pub fn from_toml_str(text: &str) -> Result<Self, KeyConfigError> {
        Self::parse(text, "the key list")
    }

    /// Reads and parses a TOML key file.
    pub fn from_file(path: &Path) -> Result<Self, KeyConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| KeyConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// The keys in the environment variable [`API_KEYS_ENV`], if it is set
    /// and not blank.
    pub fn from_env() -> Result<Option<Self>, KeyConfigError> {
        match std::env::var(API_KEYS_ENV) {
            Ok(text) if !text.trim().is_empty() => Self::parse(&text, API_KEYS_ENV).map(Some),
            _ => Ok(None),
        }
    }

    fn parse(text: &str, origin: &str) -> Result<Self, KeyConfigError> {
        let file: KeyFile = toml::from_str(text).map_err(|e| KeyConfigError::Parse {
            origin: origin.to_string(),
            message: e.message().to_string(),
        })?;
        let keys = file
            .key
            .into_iter()
            .map(|k| ApiKey::new(k.name, &k.sha256, k.role, k.prefixes))
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(keys)
    }

    /// Adds keys (say, the environment's to the file's), keeping names and
    /// digests unique.
    pub fn extend(&mut self, keys: impl IntoIterator<Item = ApiKey>) -> Result<(), KeyConfigError> {
        let mut names: HashSet<String> = self.keys.iter().map(|k| k.name.clone()).collect();
        let mut digests: HashSet<[u8; 32]> = self.keys.iter().map(|k| k.sha256).collect();
        for key in keys {
            if !names.insert(key.name.clone()) {
                return Err(KeyConfigError::Invalid(format!(
                    "two keys are named `{}`",
                    key.name
                )));
            }
            if !digests.insert(key.sha256) {
                return Err(KeyConfigError::Invalid(format!(
                    "key `{}` has the same sha256 as another key",
                    key.name
                )));
            }
            self.keys.push(Arc::new(key));
        }
        if self.keys.len() > MAX_API_KEYS {
            return Err(KeyConfigError::Invalid(format!(
                "{} API keys, the limit is {MAX_API_KEYS}",
                self.keys.len()
            )));
        }
        Ok(())
    }

    /// How many keys there are.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there are none (authentication off).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The keys.
    pub fn iter(&self) -> impl Iterator<Item = &ApiKey> {
        self.keys.iter().map(|k| k.as_ref())
    }

    /// The key whose digest is the SHA-256 of `presented`. Every configured
    /// digest is compared, each in constant time, so the time taken does not
    /// tell which key (or which digest bytes) came close.
    pub fn authenticate(&self, presented: &str) -> Option<&ApiKey> {
        self.find(presented).map(|k| k.as_ref())
    }

    fn find(&self, presented: &str) -> Option<&Arc<ApiKey>> {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut found = None;
        for key in &self.keys {
            if constant_time_eq(&key.sha256, &digest) {
                found = Some(key);
            }
        }
        found
    }
}

/// The SHA-256 of `key` as 64 lowercase hex digits: what a key file holds.
///
/// ```
/// assert_eq!(
///     strata_server::sha256_hex("abc"),
///     "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
/// );
/// ```
pub fn sha256_hex(key: &str) -> String {
    Sha256::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn parse_sha256(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.trim();
    if hex.len() != 64 || !hex.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// Compares two digests without an early exit.
fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let diff = a
        .iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// Who is asking: everyone (authentication off) or one key.
#[derive(Clone, Debug)]
pub(crate) enum Access {
    /// No keys are configured: every request may do everything.
    Open,
    /// The request carried this key.
    Key(Arc<ApiKey>),
}

impl Access {
    /// The key's name, for limits and logs.
    pub fn key(&self) -> Option<&ApiKey> {
        match self {
            Access::Open => None,
            Access::Key(k) => Some(k.as_ref()),
        }
    }

    /// Whether events of `stream` may be shown (read role or more, covered).
    pub fn can_see(&self, stream: &str) -> bool {
        match self {
            Access::Open => true,
            Access::Key(k) => k.covers(stream),
        }
    }

    /// Whether the whole of `$all` is visible (no filtering needed).
    pub fn sees_everything(&self) -> bool {
        match self {
            Access::Open => true,
            Access::Key(k) => k.covers_all(),
        }
    }

    /// 403 unless the role is at least `role` and `stream` is covered.
    pub fn require(&self, role: Role, stream: &str) -> Result<(), ApiError> {
        let Access::Key(k) = self else {
            return Ok(());
        };
        if k.role < role {
            return Err(forbidden(format!(
                "key `{}` has the `{}` role; this needs `{role}`",
                k.name, k.role
            )));
        }
        if !k.covers(stream) {
            return Err(forbidden(format!(
                "key `{}` does not cover stream `{stream}` (its prefixes: {})",
                k.name,
                k.prefixes.join(", ")
            )));
        }
        Ok(())
    }

    /// 403 unless the role is at least `role` (for endpoints not about one
    /// stream, like `/metrics`).
    pub fn require_role(&self, role: Role) -> Result<(), ApiError> {
        match self {
            Access::Key(k) if k.role < role => Err(forbidden(format!(
                "key `{}` has the `{}` role; this needs `{role}`",
                k.name, k.role
            ))),
            _ => Ok(()),
        }
    }
}

fn forbidden(message: String) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
}

/// The key a request carries: `Authorization: Bearer <key>` or `X-API-Key`.
fn presented_key(headers: &HeaderMap) -> Option<&str> {
    if let Some(v) = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let v = v.trim();
        if let Some(scheme) = v.get(..7) {
            if scheme.eq_ignore_ascii_case("bearer ") {
                return v.get(7..).map(str::trim);
            }
        }
    }
    headers
        .get(API_KEY_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// Paths anyone may call even when keys are configured: the page, the
/// health check, the API description and the web console's files hold no
/// data.
fn is_public(path: &str) -> bool {
    matches!(path, "/" | "/health" | "/openapi.json" | "/ui") || path.starts_with("/ui/")
}

/// Middleware: puts an [`Access`] into the request, or answers 401.
pub(crate) async fn authenticate(
    State(keys): State<Arc<ApiKeys>>,
    mut req: Request,
    next: Next,
) -> Response {
    if keys.is_empty() {
        req.extensions_mut().insert(Access::Open);
        return next.run(req).await;
    }
    let found = presented_key(req.headers()).and_then(|k| keys.find(k).cloned());
    match found {
        Some(key) => {
            req.extensions_mut().insert(Access::Key(key));
            next.run(req).await
        }
        None if is_public(req.uri().path()) => next.run(req).await,
        None => {
            let message = if presented_key(req.headers()).is_some() {
                "unknown API key"
            } else {
                "this server needs an API key: send `Authorization: Bearer <key>` or `X-API-Key: <key>`"
            };
            let mut resp =
                ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message).into_response();
            resp.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
            resp
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(role: Role, prefixes: &[&str]) -> ApiKey {
        ApiKey::new(
            "k",
            &sha256_hex("secret"),
            role,
            prefixes.iter().map(|p| p.to_string()).collect(),
        )
        .unwrap()
    }

    #[test]
    fn prefixes_scope_streams() {
        let k = key(Role::Read, &["orders-", "audit-"]);
        assert!(k.covers("orders-1"));
        assert!(k.covers("audit-x"));
        assert!(!k.covers("account-42"));
        assert!(!k.covers("order"));
        assert!(key(Role::Read, &["*"]).covers("anything"));
    }

    #[test]
    fn roles_nest() {
        let a = Access::Key(Arc::new(key(Role::Write, &["orders-"])));
        assert!(a.require(Role::Read, "orders-1").is_ok());
        assert!(a.require(Role::Write, "orders-1").is_ok());
        assert_eq!(
            a.require(Role::Admin, "orders-1").unwrap_err().status(),
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            a.require(Role::Read, "account-42").unwrap_err().status(),
            StatusCode::FORBIDDEN
        );
        assert!(Access::Open.require(Role::Admin, "x").is_ok());
    }

    #[test]
    fn authenticates_by_digest_only() {
        let keys = ApiKeys::new(vec![key(Role::Admin, &["*"])]).unwrap();
        assert_eq!(keys.authenticate("secret").unwrap().name(), "k");
        assert!(keys.authenticate("Secret").is_none());
        assert!(keys.authenticate(&sha256_hex("secret")).is_none());
    }

    #[test]
    fn rejects_bad_configs() {
        let bad_digest = ApiKey::new("a", "abc", Role::Read, vec!["x".into()]);
        assert!(bad_digest
            .unwrap_err()
            .to_string()
            .contains("64 hex digits"));
        let no_prefix = ApiKey::new("a", &sha256_hex("s"), Role::Read, vec![]);
        assert!(no_prefix.unwrap_err().to_string().contains("no `prefixes`"));
        let dup = ApiKeys::new(vec![key(Role::Read, &["x"]), key(Role::Read, &["y"])]);
        assert!(dup.unwrap_err().to_string().contains("two keys are named"));
        let unknown_role =
            ApiKeys::from_toml_str("[[key]]\nname='a'\nsha256='00'\nrole='root'\nprefixes=['*']\n");
        assert!(matches!(unknown_role, Err(KeyConfigError::Parse { .. })));
    }

    #[test]
    fn inline_and_table_forms_parse_alike() {
        let digest = sha256_hex("s");
        let inline = format!(
            r#"key = [{{name = "a", sha256 = "{digest}", role = "read", prefixes = ["p-"]}}]"#
        );
        let table = format!(
            "[[key]]\nname = \"a\"\nsha256 = \"{digest}\"\nrole = \"read\"\nprefixes = [\"p-\"]\n"
        );
        assert_eq!(
            ApiKeys::from_toml_str(&inline).unwrap(),
            ApiKeys::from_toml_str(&table).unwrap()
        );
    }

    #[test]
    fn reads_both_headers() {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, "Bearer abc".parse().unwrap());
        assert_eq!(presented_key(&h), Some("abc"));
        let mut h = HeaderMap::new();
        h.insert(API_KEY_HEADER, "xyz".parse().unwrap());
        assert_eq!(presented_key(&h), Some("xyz"));
        assert_eq!(presented_key(&HeaderMap::new()), None);
    }
}
