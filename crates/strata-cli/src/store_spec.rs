//! `--store` specifications: the one place that turns a string into a store.
//!
//! | spec | store |
//! |---|---|
//! | `log:DIR` | the embedded durable store in `DIR` (the default: `log:./strata-data`) |
//! | `log:` | the embedded store in its command's default place (see each command) |
//! | `memory:` | everything in memory, gone at exit |
//! | `postgres://…` | the PostgreSQL store (not built yet) |

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use strata_core::{EventStore, MemoryStore};
use strata_log::{Durability, LogConfig, LogStore};

/// The data directory used when no `--store` is given.
pub const DEFAULT_LOG_DIR: &str = "./strata-data";

/// The `--store` default of the commands that work on persistent data.
pub const DEFAULT_STORE: &str = "log:./strata-data";

/// A parsed `--store` value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreSpec {
    /// `memory:` — everything in memory, gone at exit.
    Memory,
    /// `log:DIR` — the embedded durable store. `None` is a bare `log:`,
    /// whose meaning each command chooses (its default directory, or a
    /// fresh temporary one for `bench`).
    Log(Option<PathBuf>),
    /// `postgres://…` or `postgresql://…` — the PostgreSQL store.
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
fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((user_info, host)) => match user_info.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{path}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

/// Why a store could not be opened.
#[derive(Debug)]
pub enum OpenError {
    /// The spec names a backend this build does not have.
    NotBuilt(String),
    /// The backend refused to open.
    Store(strata_core::Error),
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::NotBuilt(what) => f.write_str(what),
            OpenError::Store(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for OpenError {}

impl From<strata_core::Error> for OpenError {
    fn from(e: strata_core::Error) -> Self {
        OpenError::Store(e)
    }
}

/// How to open a store: which one and, for the log store, in what mode.
#[derive(Clone, Debug)]
pub struct OpenOptions {
    /// Durability of the log store (ignored by the others).
    pub durability: Durability,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            durability: Durability::Always,
        }
    }
}

impl StoreSpec {
    /// The log directory this spec names, with a bare `log:` meaning `default`.
    pub fn log_dir_or(&self, default: &Path) -> Option<PathBuf> {
        match self {
            StoreSpec::Log(Some(dir)) => Some(dir.clone()),
            StoreSpec::Log(None) => Some(default.to_path_buf()),
            _ => None,
        }
    }

    /// Opens the store; a bare `log:` opens [`DEFAULT_LOG_DIR`].
    pub async fn open(&self, options: &OpenOptions) -> Result<OpenStore, OpenError> {
        match self {
            StoreSpec::Memory => Ok(OpenStore::memory()),
            StoreSpec::Log(dir) => {
                let dir = dir
                    .clone()
                    .unwrap_or_else(|| PathBuf::from(DEFAULT_LOG_DIR));
                OpenStore::log(&dir, options.durability).await
            }
            StoreSpec::Postgres(_) => Err(self.not_built_error()),
        }
    }

    /// The error for a backend this build does not have yet.
    pub fn not_built_error(&self) -> OpenError {
        OpenError::NotBuilt(format!(
            "the PostgreSQL store is not built yet (asked for {self}); use `log:DIR` or `memory:`"
        ))
    }
}

/// An open store: usable as an [`EventStore`] and closed cleanly at the end.
///
/// The log store's `close` syncs, writes the stream checkpoint and stops its
/// writer; it consumes the store, so this keeps the concrete handle beside
/// the shared trait object and calls it from [`OpenStore::close`].
pub struct OpenStore {
    store: Arc<dyn EventStore>,
    log: Option<Arc<LogStore>>,
}

impl OpenStore {
    /// A fresh in-memory store.
    pub fn memory() -> Self {
        OpenStore {
            store: Arc::new(MemoryStore::new()),
            log: None,
        }
    }

    /// Opens (or creates) the log store in `dir`.
    pub async fn log(dir: &Path, durability: Durability) -> Result<Self, OpenError> {
        Self::log_with(LogConfig::new(dir).durability(durability)).await
    }

    /// Opens the log store with a full configuration.
    pub async fn log_with(config: LogConfig) -> Result<Self, OpenError> {
        let log = Arc::new(LogStore::open(config).await?);
        Ok(OpenStore {
            store: log.clone(),
            log: Some(log),
        })
    }

    /// The store, to share between tasks.
    pub fn store(&self) -> Arc<dyn EventStore> {
        self.store.clone()
    }

    /// The log store, when this is one.
    pub fn log_store(&self) -> Option<&LogStore> {
        self.log.as_deref()
    }

    /// Closes the store: for the log store, syncs everything, writes the
    /// stream checkpoint and stops the writer.
    ///
    /// Every clone handed out by [`OpenStore::store`] must be dropped first;
    /// if one is still alive the data is synced (`flush`) but the checkpoint
    /// is left for the next open to rebuild.
    pub async fn close(self) -> Result<(), strata_core::Error> {
        let OpenStore { store, log } = self;
        drop(store);
        let Some(log) = log else { return Ok(()) };
        match Arc::try_unwrap(log) {
            Ok(log) => log.close().await,
            Err(shared) => shared.flush().await,
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

    #[tokio::test]
    async fn postgres_is_not_built_yet() {
        let spec = StoreSpec::Postgres("postgres://localhost/x".into());
        let err = spec.open(&OpenOptions::default()).await.err();
        let msg = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(msg.contains("not built yet"), "{msg}");
        assert!(!msg.contains('\n'));
    }
}
