//! What the scenario examples share: `--store` opened as a store and closed
//! cleanly at the end. `strata demo <name>` does the same through the CLI's
//! own store specs.
//!
//! | `--store` | store |
//! |---|---|
//! | `memory:` | everything in memory (the default) |
//! | `log:DIR` | the embedded durable store in `DIR` |
//! | `postgres://…[?schema=NAME]` | PostgreSQL, schema `NAME` (default `strata`) |

use std::fmt::Display;
use std::path::Path;
use std::sync::Arc;

use strata::{EventStore, MemoryStore};
use strata_log::{LogConfig, LogStore};
use strata_postgres::{PgConfig, PostgresStore};

/// An open store and what closing it needs.
pub struct Opened {
    /// The store, for the demo driver.
    pub store: Arc<dyn EventStore>,
    log: Option<Arc<LogStore>>,
    pg: Option<PostgresStore>,
}

/// Opens `spec` (see the module docs); `default_dir` is used for a bare
/// `log:`.
pub async fn open(spec: &str, default_dir: &str) -> Result<Opened, String> {
    if spec == "memory:" || spec == "memory" {
        return Ok(Opened {
            store: Arc::new(MemoryStore::new()),
            log: None,
            pg: None,
        });
    }
    if let Some(dir) = spec.strip_prefix("log:") {
        let dir = if dir.is_empty() { default_dir } else { dir };
        let log = Arc::new(
            LogStore::open(LogConfig::new(Path::new(dir)))
                .await
                .map_err(|e| format!("cannot open `{spec}`: {e}"))?,
        );
        return Ok(Opened {
            store: log.clone(),
            log: Some(log),
            pg: None,
        });
    }
    if spec.starts_with("postgres://") || spec.starts_with("postgresql://") {
        let (url, schema) = split_schema(spec);
        let mut config = PgConfig::new(url).application_name("strata-example");
        if let Some(schema) = schema {
            config = config.schema(schema);
        }
        let pg = PostgresStore::connect_with(config)
            .await
            .map_err(|e| format!("cannot open the PostgreSQL store: {e}"))?;
        return Ok(Opened {
            store: Arc::new(pg.clone()),
            log: None,
            pg: Some(pg),
        });
    }
    Err(format!(
        "unknown store `{spec}`: use `memory:`, `log:DIR` or `postgres://…[?schema=NAME]`"
    ))
}

/// Takes the `schema` parameter out of a `postgres://` URL.
fn split_schema(spec: &str) -> (String, Option<String>) {
    let Some((base, query)) = spec.split_once('?') else {
        return (spec.to_owned(), None);
    };
    let mut schema = None;
    let rest: Vec<&str> = query
        .split('&')
        .filter(|kv| match kv.strip_prefix("schema=") {
            Some(s) => {
                schema = Some(s.to_owned());
                false
            }
            None => !kv.is_empty(),
        })
        .collect();
    if rest.is_empty() {
        (base.to_owned(), schema)
    } else {
        (format!("{base}?{}", rest.join("&")), schema)
    }
}

impl Opened {
    /// Closes the store: the log store syncs and writes its checkpoint, the
    /// PostgreSQL store finishes queued appends and closes its pool.
    pub async fn close(self) -> Result<(), String> {
        let Opened { store, log, pg } = self;
        drop(store);
        if let Some(pg) = pg {
            return pg.close().await.map_err(|e| e.to_string());
        }
        let Some(log) = log else { return Ok(()) };
        match Arc::try_unwrap(log) {
            Ok(log) => log.close().await.map_err(|e| e.to_string()),
            Err(shared) => shared.flush().await.map_err(|e| e.to_string()),
        }
    }
}

/// Prints what a demo run ended with, once its store is closed: the report
/// (returned, for callers that check more), or the run's error, or the
/// error of closing the store.
pub fn finish<R: Display, E: Display>(
    example: &str,
    outcome: Result<R, E>,
    closed: Result<(), String>,
) -> Option<R> {
    match (outcome, closed) {
        (Ok(report), Ok(())) => {
            println!("{report}");
            Some(report)
        }
        (Err(e), _) => {
            eprintln!("{example} example failed: {e}");
            None
        }
        (Ok(_), Err(e)) => {
            eprintln!("{example} example: closing the store failed: {e}");
            None
        }
    }
}
