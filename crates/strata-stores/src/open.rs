//! Opening a store: the one place that turns a [`StoreSpec`] into a running
//! store, and closes it cleanly at the end.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use strata_core::group::{ConsumerGroups, LocalGroups};
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
    /// The consumer groups over the store, made on first use so that every
    /// caller shares one (two engines must not serve one group at once).
    groups: OnceLock<Arc<dyn ConsumerGroups>>,
}

impl OpenStore {
    /// A fresh in-memory store.
    pub fn memory() -> Self {
        OpenStore {
            store: Arc::new(MemoryStore::new()),
            log: None,
            pg: None,
            groups: OnceLock::new(),
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
            groups: OnceLock::new(),
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
            groups: OnceLock::new(),
        })
    }

    /// The store, to share between tasks.
    pub fn store(&self) -> Arc<dyn EventStore> {
        self.store.clone()
    }

    /// Backups and scavenging the store offers through the backend-neutral
    /// [`StoreAdmin`], for the server and the CLI: the log store's (both),
    /// PostgreSQL's (scavenging; its backups are the database's own tools,
    /// docs/postgres.md, so `backup` says so); `None` for the memory store.
    pub fn admin(&self) -> Option<Arc<dyn StoreAdmin>> {
        if let Some(log) = &self.log {
            return Some(Arc::clone(log) as Arc<dyn StoreAdmin>);
        }
        self.pg
            .as_ref()
            .map(|pg| Arc::new(pg.clone()) as Arc<dyn StoreAdmin>)
    }

    /// The consumer groups over the store, for the server and the CLI: the
    /// same instance on every call. PostgreSQL gets
    /// [`PgGroups`](strata_postgres::PgGroups) (group state, leases and
    /// checkpoints in the database, shared by every process on it); the
    /// other backends get [`LocalGroups`] (group state kept as events of the
    /// store's system streams, served by this one process).
    pub fn groups(&self) -> Arc<dyn ConsumerGroups> {
        let groups = self.groups.get_or_init(|| match &self.pg {
            // Group state in the database: every process on it shares groups.
            Some(pg) => {
                Arc::new(strata_postgres::PgGroups::new(pg.clone())) as Arc<dyn ConsumerGroups>
            }
            None => Arc::new(LocalGroups::new(Arc::clone(&self.store))) as Arc<dyn ConsumerGroups>,
        });
        Arc::clone(groups)
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
        let OpenStore {
            store,
            log,
            pg,
            groups,
        } = self;
        drop(groups);
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
    use strata_core::ScavengeOptions;

    /// A PostgreSQL store offers its scavenging through `admin()` (and says
    /// where its backups come from). Skipped when no server answers, unless
    /// `STRATA_REQUIRE_PG=1`.
    #[tokio::test]
    async fn a_postgres_store_offers_scavenging() {
        let url = std::env::var("STRATA_TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
        let schema = format!("stores_admin_{}", std::process::id());
        let spec = StoreSpec::Postgres(format!("{url}?schema={schema}"));
        let open = match spec.open(&OpenOptions::default()).await {
            Ok(open) => open,
            Err(e) if std::env::var("STRATA_REQUIRE_PG").is_ok_and(|v| v == "1") => {
                panic!("no PostgreSQL server: {e}")
            }
            Err(e) => {
                eprintln!("SKIPPED a_postgres_store_offers_scavenging: {e}");
                return;
            }
        };
        let admin = open.admin().expect("a PostgreSQL store scavenges");
        let report = admin.scavenge(ScavengeOptions::default()).await;
        let backup = admin.backup(Path::new("unused")).await;
        assert!(admin.scavenge_status().is_some());
        drop(admin);
        let pool = open.postgres_store().map(|pg| pg.pool().clone());
        if let Some(pool) = pool {
            let client = pool.get().await.expect("a connection");
            client
                .batch_execute(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
                .await
                .expect("drop the test schema");
        }
        open.close().await.expect("close");
        assert_eq!(report.expect("an empty store scavenges").events_removed, 0);
        let err = backup.expect_err("backups are pg_dump's");
        assert_eq!(err.kind(), "unsupported");
        assert!(err.to_string().contains("pg_dump"), "{err}");
    }

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
