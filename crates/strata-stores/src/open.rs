//! Opening a store: the one place that turns a [`StoreSpec`] into a running
//! store, and closes it cleanly at the end.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use strata_core::{EventStore, MemoryStore, StoreAdmin};
use strata_log::{Durability, LogConfig, LogStore};
use strata_postgres::{PgConfig, PostgresStore};

use crate::error::OpenError;
use crate::spec::{split_postgres_spec, StoreSpec, DEFAULT_LOG_DIR};

/// How to open a store: which one and, for the log store, in what mode.
#[derive(Clone, Debug)]
pub struct OpenOptions {
    /// Durability of the log store (ignored by the others).
    pub durability: Durability,
    /// Open a damaged log store read-only instead of refusing it (see
    /// `LogConfig::allow_damaged`; ignored by the others).
    pub allow_damaged: bool,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            durability: Durability::Always,
            allow_damaged: false,
        }
    }
}

impl StoreSpec {
    /// Opens the store; a bare `log:` opens [`DEFAULT_LOG_DIR`].
    pub async fn open(&self, options: &OpenOptions) -> Result<OpenStore, OpenError> {
        match self {
            StoreSpec::Memory => Ok(OpenStore::memory()),
            StoreSpec::Log(dir) => {
                let dir = dir
                    .clone()
                    .unwrap_or_else(|| PathBuf::from(DEFAULT_LOG_DIR));
                OpenStore::log_with(
                    LogConfig::new(dir)
                        .durability(options.durability)
                        .allow_damaged(options.allow_damaged),
                )
                .await
            }
            StoreSpec::Postgres(spec) => {
                let (url, schema) = split_postgres_spec(spec)?;
                let config = PgConfig::new(url).schema(schema).application_name("strata");
                OpenStore::postgres(self, config).await
            }
        }
    }
}

/// An open store: usable as an [`EventStore`] and closed cleanly at the end.
///
/// The log store's `close` syncs, writes the stream checkpoint and stops its
/// writer; it consumes the store, so this keeps the concrete handle beside
/// the shared trait object and calls it from [`OpenStore::close`]. The
/// PostgreSQL store's `close` finishes queued appends, stops its writer and
/// listener and closes the pool.
pub struct OpenStore {
    store: Arc<dyn EventStore>,
    log: Option<Arc<LogStore>>,
    pg: Option<PostgresStore>,
}

impl OpenStore {
    /// A fresh in-memory store.
    pub fn memory() -> Self {
        OpenStore {
            store: Arc::new(MemoryStore::new()),
            log: None,
            pg: None,
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
            pg: None,
        })
    }

    /// Connects to PostgreSQL (running the migrations as needed). `spec` is
    /// only for the error message, whose password is masked.
    pub async fn postgres(spec: &StoreSpec, config: PgConfig) -> Result<Self, OpenError> {
        let schema = config.schema_name().to_string();
        let pg = PostgresStore::connect_with(config).await.map_err(|e| {
            OpenError::Postgres(format!(
                "cannot open the PostgreSQL store {spec} (schema `{schema}`): {e}"
            ))
        })?;
        Ok(OpenStore {
            store: Arc::new(pg.clone()),
            log: None,
            pg: Some(pg),
        })
    }

    /// The store, to share between tasks.
    pub fn store(&self) -> Arc<dyn EventStore> {
        self.store.clone()
    }

    /// Backups (and the other maintenance) the store offers through the
    /// backend-neutral [`StoreAdmin`], for the server and the CLI: the log
    /// store's; `None` for the memory store, and for PostgreSQL, which is
    /// backed up with the database's own tools (docs/postgres.md).
    pub fn admin(&self) -> Option<Arc<dyn StoreAdmin>> {
        self.log
            .as_ref()
            .map(|log| Arc::clone(log) as Arc<dyn StoreAdmin>)
    }

    /// The log store, when this is one.
    pub fn log_store(&self) -> Option<&LogStore> {
        self.log.as_deref()
    }

    /// The PostgreSQL store, when this is one.
    pub fn postgres_store(&self) -> Option<&PostgresStore> {
        self.pg.as_ref()
    }

    /// Closes the store: for the log store, syncs everything, writes the
    /// stream checkpoint and stops the writer.
    ///
    /// Every clone handed out by [`OpenStore::store`] must be dropped first;
    /// if one is still alive the data is synced (`flush`) but the checkpoint
    /// is left for the next open to rebuild.
    pub async fn close(self) -> Result<(), strata_core::Error> {
        let OpenStore { store, log, pg } = self;
        drop(store);
        if let Some(pg) = pg {
            return pg.close().await;
        }
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

    #[tokio::test]
    async fn a_bad_postgres_schema_is_one_line() {
        let spec = StoreSpec::Postgres("postgres://u:secret@localhost/x?schema=1bad".into());
        let msg = spec
            .open(&OpenOptions::default())
            .await
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(msg.contains("schema name"), "{msg}");
        assert!(!msg.contains('\n') && !msg.contains("secret"), "{msg}");
    }
}
