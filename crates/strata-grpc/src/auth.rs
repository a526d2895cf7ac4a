//! Basic credentials as API keys: the user name is the key's name and the
//! password the key itself. With keys configured a call without valid
//! credentials is `Unauthenticated`, and a key's role and stream prefixes
//! apply as they do over HTTP.

use std::sync::Arc;

use base64::Engine;
use strata_server::{ApiKey, ApiKeys, Role};
use tonic::metadata::MetadataMap;
use tonic::Status;

/// The keys a server checks calls against.
#[derive(Clone, Debug)]
pub struct Auth {
    keys: Arc<ApiKeys>,
}

/// Who is calling.
#[derive(Clone, Debug)]
pub enum Caller {
    /// No keys are configured: every call may do everything.
    Open,
    /// The call carried this key.
    Key(ApiKey),
}

impl Auth {
    /// Checks calls against `keys` (none: every call is allowed).
    pub fn new(keys: ApiKeys) -> Self {
        Self {
            keys: Arc::new(keys),
        }
    }

    /// The caller of a request with `metadata`, or `Unauthenticated`.
    pub fn caller(&self, metadata: &MetadataMap) -> Result<Caller, Status> {
        if self.keys.is_empty() {
            return Ok(Caller::Open);
        }
        let (user, password) = basic_credentials(metadata)
            .ok_or_else(|| Status::unauthenticated("credentials are required"))?;
        match self.keys.authenticate(&password) {
            Some(key) if key.name() == user => Ok(Caller::Key(key.clone())),
            _ => Err(Status::unauthenticated("unknown user or password")),
        }
    }
}

impl Caller {
    /// `PermissionDenied` unless the role is at least `role` and `stream`
    /// is covered.
    pub fn require(&self, role: Role, stream: &str) -> Result<(), Status> {
        let Caller::Key(key) = self else {
            return Ok(());
        };
        if key.role() < role {
            return Err(Status::permission_denied(format!(
                "key `{}` has the `{}` role; this needs `{role}`",
                key.name(),
                key.role()
            )));
        }
        if !key.covers(stream) {
            return Err(Status::permission_denied(format!(
                "key `{}` does not cover stream `{stream}`",
                key.name()
            )));
        }
        Ok(())
    }

    /// `PermissionDenied` unless the role is at least `role`, whatever the
    /// key's streams.
    pub fn require_role(&self, role: Role) -> Result<(), Status> {
        let Caller::Key(key) = self else {
            return Ok(());
        };
        if key.role() < role {
            return Err(Status::permission_denied(format!(
                "key `{}` has the `{}` role; this needs `{role}`",
                key.name(),
                key.role()
            )));
        }
        Ok(())
    }

    /// `PermissionDenied` unless the role is at least `role` and the key
    /// covers every stream (what a whole `$all` consumer group needs).
    pub fn require_every_stream(&self, role: Role) -> Result<(), Status> {
        self.require_role(role)?;
        match self {
            Caller::Key(key) if !key.covers_all() => Err(Status::permission_denied(format!(
                "key `{}` does not cover every stream, which a persistent subscription to $all needs",
                key.name()
            ))),
            _ => Ok(()),
        }
    }

    /// Whether events of `stream` may be shown.
    pub fn can_see(&self, stream: &str) -> bool {
        match self {
            Caller::Open => true,
            Caller::Key(key) => key.covers(stream),
        }
    }
}

/// `(user, password)` of an `authorization: Basic …` header.
fn basic_credentials(metadata: &MetadataMap) -> Option<(String, String)> {
    let value = metadata.get("authorization")?.to_str().ok()?.trim();
    let scheme = value.get(..6)?;
    if !scheme.eq_ignore_ascii_case("basic ") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(value.get(6..)?.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_auth(value: &str) -> MetadataMap {
        let mut m = MetadataMap::new();
        m.insert("authorization", value.parse().unwrap());
        m
    }

    #[test]
    fn basic_credentials_name_the_key_and_carry_it() {
        let keys = ApiKeys::new(vec![ApiKey::new(
            "ops",
            &strata_server::sha256_hex("s3cret-key-value"),
            Role::Write,
            vec!["orders-".into()],
        )
        .unwrap()])
        .unwrap();
        let auth = Auth::new(keys);
        let good = base64::engine::general_purpose::STANDARD.encode("ops:s3cret-key-value");
        let caller = auth.caller(&with_auth(&format!("Basic {good}"))).unwrap();
        assert!(caller.require(Role::Write, "orders-1").is_ok());
        assert!(caller.require(Role::Admin, "orders-1").is_err());
        assert!(caller.require(Role::Read, "users-1").is_err());
        let wrong_user = base64::engine::general_purpose::STANDARD.encode("eve:s3cret-key-value");
        for bad in [
            format!("Basic {wrong_user}"),
            "Basic !!".to_string(),
            "Bearer s3cret-key-value".to_string(),
        ] {
            let e = auth.caller(&with_auth(&bad)).unwrap_err();
            assert_eq!(e.code(), tonic::Code::Unauthenticated);
        }
        let e = auth.caller(&MetadataMap::new()).unwrap_err();
        assert_eq!(e.code(), tonic::Code::Unauthenticated);
    }

    #[test]
    fn without_keys_everyone_may_call() {
        let auth = Auth::new(ApiKeys::none());
        assert!(matches!(auth.caller(&MetadataMap::new()), Ok(Caller::Open)));
    }
}
