//! Store specs: which store a string names.
//!
//! | spec | store |
//! |---|---|
//! | `log:DIR` | the embedded durable store in `DIR` (the default: `log:./strata-data`) |
//! | `log:` | the embedded store in its command's default place (see each command) |
//! | `memory:` | everything in memory, gone at exit |
//! | `postgres://…[?schema=NAME]` | the PostgreSQL store, in schema `NAME` (default `strata`) |
//!
//! The schema is a `schema` query parameter of the URL, taken out before the
//! URL reaches the driver; passwords (`user:secret@`, `password=`) are masked
//! whenever a spec is printed.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use strata_postgres::PgConfig;

use crate::error::OpenError;

/// The data directory used when no `--store` is given.
pub const DEFAULT_LOG_DIR: &str = "./strata-data";

/// The `--store` default of the commands that work on persistent data.
pub const DEFAULT_STORE: &str = "log:./strata-data";

/// The PostgreSQL schema used when the URL names none.
pub const DEFAULT_PG_SCHEMA: &str = strata_postgres::DEFAULT_SCHEMA;

/// The query parameter of a `postgres://` spec that names the schema.
pub const SCHEMA_PARAM: &str = "schema";

/// A parsed store spec (the `--store` value of the `strata` command).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreSpec {
    /// `memory:` — everything in memory, gone at exit.
    Memory,
    /// `log:DIR` — the embedded durable store. `None` is a bare `log:`,
    /// whose meaning each command chooses (its default directory, or a
    /// fresh temporary one for `bench`).
    Log(Option<PathBuf>),
    /// `postgres://…` or `postgresql://…` — the PostgreSQL store (the URL
    /// as given, `?schema=` included).
    Postgres(String),
}

impl FromStr for StoreSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "memory:" || s == "memory" {
            return Ok(StoreSpec::Memory);
        }
        if let Some(dir) = s.strip_prefix("log:") {
            return Ok(StoreSpec::Log(if dir.is_empty() {
                None
            } else {
                Some(PathBuf::from(dir))
            }));
        }
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            return Ok(StoreSpec::Postgres(s.to_string()));
        }
        Err(format!(
            "unknown store `{s}`: expected `log:DIR`, `memory:` or `postgres://…`"
        ))
    }
}

impl fmt::Display for StoreSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreSpec::Memory => f.write_str("memory:"),
            StoreSpec::Log(None) => f.write_str("log:"),
            StoreSpec::Log(Some(dir)) => write!(f, "log:{}", dir.display()),
            StoreSpec::Postgres(url) => f.write_str(&redact_password(url)),
        }
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`, so a
/// URL can be printed in reports and errors.
pub(crate) fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((user_info, host)) => match user_info.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => authority.to_string(),
        },
        None => authority.to_string(),
    };
    let path = match path.split_once('?') {
        Some((before, query)) => {
            let params: Vec<String> = query
                .split('&')
                .map(|kv| match kv.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                    _ => kv.to_string(),
                })
                .collect();
            format!("{before}?{}", params.join("&"))
        }
        None => path.to_string(),
    };
    format!("{scheme}://{authority}{path}")
}

/// Splits a `postgres://` spec into the URL for the driver (without the
/// `schema` parameter) and the schema (default [`DEFAULT_PG_SCHEMA`]).
pub fn split_postgres_spec(spec: &str) -> Result<(String, String), OpenError> {
    let (base, query) = match spec.split_once('?') {
        Some((b, q)) => (b, q),
        None => (spec, ""),
    };
    let mut schema = None;
    let mut rest = Vec::new();
    for kv in query.split('&').filter(|kv| !kv.is_empty()) {
        match kv.split_once('=') {
            Some((k, v)) if k == SCHEMA_PARAM => {
                if schema.replace(v.to_string()).is_some() {
                    return Err(OpenError::Invalid(format!(
                        "`{SCHEMA_PARAM}` is given twice in {}",
                        redact_password(spec)
                    )));
                }
            }
            _ => rest.push(kv),
        }
    }
    let schema = schema.unwrap_or_else(|| DEFAULT_PG_SCHEMA.to_string());
    strata_postgres::validate_schema_name(&schema)
        .map_err(|e| OpenError::Invalid(e.to_string()))?;
    let url = if rest.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", rest.join("&"))
    };
    Ok((url, schema))
}

impl StoreSpec {
    /// The kind of store: `memory`, `log` or `postgres`.
    ///
    /// ```
    /// let spec: strata_stores::StoreSpec = "log:/tmp/x".parse().unwrap();
    /// assert_eq!(spec.kind(), "log");
    /// ```
    pub fn kind(&self) -> &'static str {
        match self {
            StoreSpec::Memory => "memory",
            StoreSpec::Log(_) => "log",
            StoreSpec::Postgres(_) => "postgres",
        }
    }

    /// The log directory this spec names, with a bare `log:` meaning `default`.
    pub fn log_dir_or(&self, default: &Path) -> Option<PathBuf> {
        match self {
            StoreSpec::Log(Some(dir)) => Some(dir.clone()),
            StoreSpec::Log(None) => Some(default.to_path_buf()),
            _ => None,
        }
    }

    /// The PostgreSQL configuration this spec names (URL and schema), with
    /// defaults otherwise; `None` for the other stores.
    pub fn pg_config(&self) -> Result<Option<PgConfig>, OpenError> {
        match self {
            StoreSpec::Postgres(spec) => {
                let (url, schema) = split_postgres_spec(spec)?;
                Ok(Some(
                    PgConfig::new(url).schema(schema).application_name("strata"),
                ))
            }
            _ => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_kind() {
        assert_eq!("memory:".parse::<StoreSpec>(), Ok(StoreSpec::Memory));
        assert_eq!("log:".parse::<StoreSpec>(), Ok(StoreSpec::Log(None)));
        assert_eq!(
            "log:/tmp/x".parse::<StoreSpec>(),
            Ok(StoreSpec::Log(Some(PathBuf::from("/tmp/x"))))
        );
        assert!(matches!(
            "postgres://u@h/db".parse::<StoreSpec>(),
            Ok(StoreSpec::Postgres(_))
        ));
        assert!("mysql://x".parse::<StoreSpec>().is_err());
        assert!("./data".parse::<StoreSpec>().is_err());
    }

    #[test]
    fn display_round_trips_and_hides_passwords() {
        for s in ["memory:", "log:", "log:./strata-data"] {
            assert_eq!(s.parse::<StoreSpec>().map(|p| p.to_string()), Ok(s.into()));
        }
        let pg: StoreSpec = "postgres://ada:secret@db:5432/strata"
            .parse()
            .unwrap_or(StoreSpec::Memory);
        assert_eq!(pg.to_string(), "postgres://ada:***@db:5432/strata");
    }

    #[test]
    fn postgres_schema_comes_from_the_query() {
        let split = |s: &str| split_postgres_spec(s).map_err(|e| e.to_string());
        assert_eq!(
            split("postgres://u@h/db"),
            Ok(("postgres://u@h/db".into(), "strata".into()))
        );
        assert_eq!(
            split("postgres://u@h/db?schema=billing"),
            Ok(("postgres://u@h/db".into(), "billing".into()))
        );
        assert_eq!(
            split("postgres://u@h/db?sslmode=disable&schema=t_1&connect_timeout=3"),
            Ok((
                "postgres://u@h/db?sslmode=disable&connect_timeout=3".into(),
                "t_1".into()
            ))
        );
        assert!(split("postgres://u@h/db?schema=a-b").is_err());
        assert!(split("postgres://u@h/db?schema=a&schema=b").is_err());
    }

    #[test]
    fn postgres_passwords_are_masked_everywhere() {
        let show = |s: &str| s.parse::<StoreSpec>().map(|p| p.to_string());
        assert_eq!(
            show("postgres://ada:secret@db/x?schema=s"),
            Ok("postgres://ada:***@db/x?schema=s".into())
        );
        assert_eq!(
            show("postgresql://ada@db/x?password=secret&schema=s"),
            Ok("postgresql://ada@db/x?password=***&schema=s".into())
        );
        assert_eq!(
            show("postgres://ada:secret@db?schema=s"),
            Ok("postgres://ada:***@db?schema=s".into())
        );
    }
}
