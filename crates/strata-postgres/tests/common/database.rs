//! The PostgreSQL test database, for every test crate that runs on it: the
//! server's address, the skip-or-fail rule and per-test schemas. Test crates
//! outside strata-postgres include this file with `#[path]`, so the rule is
//! written once.
//!
//! Every test uses its own schema (`t_<pid>_<n>_<nanos>`), so tests run in
//! parallel against one database; schemas are dropped at the end, best-effort.
//! With no server answering, tests print a loud message and pass, unless
//! `STRATA_REQUIRE_PG=1`, when they fail.

#![allow(dead_code, clippy::unwrap_used)]

use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use strata_postgres::tokio_postgres;
use strata_postgres::PgConfig;

/// The test database.
pub fn database_url() -> String {
    std::env::var("STRATA_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

fn require_pg() -> bool {
    std::env::var("STRATA_REQUIRE_PG").is_ok_and(|v| v == "1")
}

/// Whether the server answers (checked once per test binary).
fn server_answers() -> bool {
    static ANSWERS: OnceLock<bool> = OnceLock::new();
    *ANSWERS.get_or_init(|| {
        let url = database_url();
        let Ok(config) = url.parse::<tokio_postgres::Config>() else {
            return false;
        };
        let host = match config.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            _ => "127.0.0.1".to_owned(),
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let Ok(addrs) = (host.as_str(), port).to_socket_addrs() else {
            return false;
        };
        addrs
            .into_iter()
            .any(|a| TcpStream::connect_timeout(&a, Duration::from_secs(3)).is_ok())
    })
}

/// `true` when the test should run; prints a loud skip message (or panics
/// under `STRATA_REQUIRE_PG=1`) when no server answers.
pub fn pg_available(test: &str) -> bool {
    if server_answers() {
        return true;
    }
    if require_pg() {
        panic!(
            "{test}: no PostgreSQL server answers at {} and STRATA_REQUIRE_PG=1",
            database_url()
        );
    }
    eprintln!(
        "\n!!! SKIPPED {test}: no PostgreSQL server answers at {} \
         (set STRATA_TEST_DATABASE_URL, or STRATA_REQUIRE_PG=1 to fail instead) !!!\n",
        database_url()
    );
    false
}

/// A schema name no other test uses.
pub fn unique_schema(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}_{}_{n}_{nanos}", std::process::id())
}

/// A raw connection for test setup and inspection.
pub async fn raw_client() -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(&database_url(), tokio_postgres::NoTls)
        .await
        .expect("connect to the test database");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

/// Drops schemas, best-effort, from a thread of its own (usable in `Drop`).
pub fn drop_schemas(schemas: Vec<String>) {
    if schemas.is_empty() {
        return;
    }
    let _ = std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async move {
            let Ok((client, connection)) =
                tokio_postgres::connect(&database_url(), tokio_postgres::NoTls).await
            else {
                return;
            };
            tokio::spawn(async move {
                let _ = connection.await;
            });
            for s in schemas {
                if let Err(e) = client
                    .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{s}\" CASCADE"))
                    .await
                {
                    eprintln!("could not drop schema {s}: {e}");
                }
            }
        });
    })
    .join();
}

/// A schema dropped when this guard is.
pub struct SchemaGuard(pub String);

impl SchemaGuard {
    pub fn new(prefix: &str) -> Self {
        SchemaGuard(unique_schema(prefix))
    }

    pub fn config(&self) -> PgConfig {
        PgConfig::new(database_url()).schema(&self.0).pool_size(4)
    }
}

impl Drop for SchemaGuard {
    fn drop(&mut self) {
        drop_schemas(vec![self.0.clone()]);
    }
}
