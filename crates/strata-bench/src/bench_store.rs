//! Where a benchmark runs: a fresh directory for the log store or a fresh
//! schema for PostgreSQL (so a benchmark never touches real data unless
//! asked to), or memory.

use std::path::{Path, PathBuf};

use strata_log::Durability;
use tempfile::TempDir;

use strata_postgres::PgConfig;
use strata_stores::{split_postgres_spec, OpenError, OpenStore, StoreSpec};

use crate::args::BenchArgs;
use crate::{payload, BenchError};

/// Prefix of the fresh directories `bench` creates.
const BENCH_DIR_PREFIX: &str = "strata-bench-";
/// Prefix of the fresh PostgreSQL schemas `bench` creates.
pub const BENCH_SCHEMA_PREFIX: &str = "strata_bench_";
/// Most pooled connections of the PostgreSQL store under test (readers
/// share them; appends use one at a time).
const MAX_BENCH_POOL: usize = 32;

enum Place {
    /// `memory:`; the directory is only for the fdatasync probe.
    Memory(TempDir),
    /// A fresh log directory, removed at the end unless kept.
    Fresh(TempDir),
    /// The user's own log directory (`--in-place`), never removed.
    Own(PathBuf),
    /// A PostgreSQL schema: a fresh one dropped at the end unless kept, or
    /// the URL's own (`--in-place`). The directory is only for the
    /// fdatasync probe.
    Postgres {
        probe: TempDir,
        url: String,
        schema: String,
        fresh: bool,
        pool_size: usize,
    },
}

/// The store a benchmark runs against, and where it lives.
pub struct BenchStore {
    spec: StoreSpec,
    place: Place,
}

impl BenchStore {
    /// Creates the benchmark's directory as `--store` and `--in-place` say.
    pub fn prepare(args: &BenchArgs) -> Result<BenchStore, BenchError> {
        let spec = args.store.clone();
        let place = match &spec {
            StoreSpec::Memory => Place::Memory(fresh_dir(&std::env::temp_dir(), BENCH_DIR_PREFIX)?),
            StoreSpec::Log(None) if args.in_place => {
                return Err("--in-place needs a directory: --store log:DIR".into())
            }
            StoreSpec::Log(None) => {
                Place::Fresh(fresh_dir(&std::env::temp_dir(), BENCH_DIR_PREFIX)?)
            }
            StoreSpec::Log(Some(dir)) if args.in_place => {
                std::fs::create_dir_all(dir)
                    .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
                Place::Own(dir.clone())
            }
            StoreSpec::Log(Some(dir)) => {
                let parent = match dir.parent() {
                    Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                    _ => PathBuf::from("."),
                };
                let name = dir
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .filter(|n| !n.is_empty() && n != "." && n != "..")
                    .unwrap_or_else(|| "strata".to_string());
                Place::Fresh(fresh_dir(&parent, &format!("{name}.bench-"))?)
            }
            StoreSpec::Postgres(given) => {
                let (url, own_schema) = split_postgres_spec(given)?;
                let schema = if args.in_place {
                    own_schema
                } else {
                    format!("{BENCH_SCHEMA_PREFIX}{}", payload::run_id())
                };
                Place::Postgres {
                    probe: fresh_dir(&std::env::temp_dir(), BENCH_DIR_PREFIX)?,
                    url,
                    schema,
                    fresh: !args.in_place,
                    pool_size: args
                        .writers
                        .unwrap_or(0)
                        .clamp(strata_postgres::DEFAULT_POOL_SIZE, MAX_BENCH_POOL),
                }
            }
        };
        Ok(BenchStore { spec, place })
    }

    /// The `--store` the user gave.
    pub fn spec(&self) -> &StoreSpec {
        &self.spec
    }

    /// The log directory in use, if any.
    pub fn log_dir(&self) -> Option<&Path> {
        match &self.place {
            Place::Memory(_) | Place::Postgres { .. } => None,
            Place::Fresh(d) => Some(d.path()),
            Place::Own(d) => Some(d),
        }
    }

    /// Where to measure the fdatasync rate: the store's directory, or a
    /// temporary one for `memory:`.
    pub fn probe_dir(&self) -> &Path {
        match &self.place {
            Place::Memory(d) | Place::Fresh(d) => d.path(),
            Place::Postgres { probe, .. } => probe.path(),
            Place::Own(d) => d,
        }
    }

    /// A `--store` value naming this very place, for a `strata serve`
    /// child process (`http-append`). A PostgreSQL URL comes back as given
    /// (password included) with `schema=` set to the schema in use.
    pub fn serve_spec(&self) -> String {
        match &self.place {
            Place::Memory(_) => "memory:".to_string(),
            Place::Fresh(d) => format!("log:{}", d.path().display()),
            Place::Own(d) => format!("log:{}", d.display()),
            Place::Postgres { url, schema, .. } => {
                let sep = if url.contains('?') { '&' } else { '?' };
                format!("{url}{sep}schema={schema}")
            }
        }
    }

    /// The PostgreSQL schema in use, if any.
    pub fn pg_schema(&self) -> Option<&str> {
        match &self.place {
            Place::Postgres { schema, .. } => Some(schema),
            _ => None,
        }
    }

    /// Opens the store.
    pub async fn open(
        &self,
        durability: Durability,
        compress: bool,
    ) -> Result<OpenStore, OpenError> {
        if let Place::Postgres {
            url,
            schema,
            pool_size,
            ..
        } = &self.place
        {
            let config = PgConfig::new(url.clone())
                .schema(schema.clone())
                .pool_size(*pool_size)
                .application_name("strata bench");
            return OpenStore::postgres(&self.spec, config).await;
        }
        match self.log_dir() {
            None => Ok(OpenStore::memory()),
            Some(dir) => {
                let compression = compress.then(strata_log::compress::Compression::default);
                OpenStore::log_with(
                    strata_log::LogConfig::new(dir)
                        .durability(durability)
                        .compression(compression),
                )
                .await
            }
        }
    }

    /// Removes the fresh directory or drops the fresh schema, or keeps it
    /// and returns where it is. The store must be closed first.
    pub async fn finish(self, keep: bool) -> Result<Option<String>, String> {
        match self.place {
            Place::Fresh(d) if keep => Ok(Some(d.keep().display().to_string())),
            Place::Postgres {
                schema,
                fresh: true,
                ..
            } if keep => Ok(Some(format!("schema {schema} of {}", self.spec))),
            Place::Postgres {
                url,
                schema,
                fresh: true,
                ..
            } => drop_schema(&url, &schema)
                .await
                .map(|()| None)
                .map_err(|e| format!("could not drop the benchmark's schema {schema}: {e}")),
            _ => Ok(None),
        }
    }
}

/// Drops `schema` and everything in it.
async fn drop_schema(url: &str, schema: &str) -> Result<(), BenchError> {
    strata_postgres::validate_schema_name(schema)?;
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });
    let dropped = client
        .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
        .await;
    drop(client);
    let _ = driver.await;
    dropped?;
    Ok(())
}

fn fresh_dir(parent: &Path, prefix: &str) -> Result<TempDir, BenchError> {
    std::fs::create_dir_all(parent)
        .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(parent)
        .map_err(|e| format!("cannot create a directory in {}: {e}", parent.display()).into())
}
