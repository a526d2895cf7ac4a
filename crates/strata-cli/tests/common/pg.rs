//! The PostgreSQL test database: its address, the skip-or-fail rule, schemas
//! of a test's own, and raw queries for inspection.
//!
//! Tests read `STRATA_TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`). With no server answering they
//! print a loud SKIPPED message and pass, unless `STRATA_REQUIRE_PG=1`, when
//! they fail.

#![allow(dead_code, clippy::unwrap_used)]

use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use strata_postgres::tokio_postgres;

/// The test database.
pub fn database_url() -> String {
    std::env::var("STRATA_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// `true` when a server answers; otherwise a loud skip message, or a panic
/// under `STRATA_REQUIRE_PG=1`.
pub fn pg_available(test: &str) -> bool {
    let url = database_url();
    let answers = url
        .parse::<tokio_postgres::Config>()
        .ok()
        .and_then(|config| {
            let host = match config.get_hosts().first() {
                Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
                _ => "127.0.0.1".to_owned(),
            };
            let port = config.get_ports().first().copied().unwrap_or(5432);
            (host.as_str(), port).to_socket_addrs().ok()
        })
        .is_some_and(|mut addrs| {
            addrs.any(|a| TcpStream::connect_timeout(&a, Duration::from_secs(3)).is_ok())
        });
    if answers {
        return true;
    }
    if std::env::var("STRATA_REQUIRE_PG").is_ok_and(|v| v == "1") {
        panic!("{test}: no PostgreSQL server answers at {url} and STRATA_REQUIRE_PG=1");
    }
    eprintln!(
        "\n!!! SKIPPED {test}: no PostgreSQL server answers at {url} \
         (set STRATA_TEST_DATABASE_URL, or STRATA_REQUIRE_PG=1 to fail instead) !!!\n"
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

/// The test database's URL with `?schema=`.
pub fn spec_with_schema(schema: &str) -> String {
    let url = database_url();
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}schema={schema}")
}

/// Runs `sql` on the test database; every row's columns as text.
pub fn query_rows(sql: &str) -> Vec<Vec<String>> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (client, connection) = tokio_postgres::connect(&database_url(), tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(async move {
            let _ = connection.await;
        });
        client
            .simple_query(sql)
            .await
            .unwrap()
            .into_iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => Some(
                    (0..r.len())
                        .map(|i| r.get(i).unwrap_or_default().to_owned())
                        .collect(),
                ),
                _ => None,
            })
            .collect()
    })
}

/// Runs `sql` on the test database; the first column of each row as text.
pub fn query(sql: &str) -> Vec<String> {
    query_rows(sql)
        .into_iter()
        .filter_map(|row| row.into_iter().next())
        .collect()
}

/// Drops the schema when dropped, best-effort.
pub struct SchemaGuard(pub String);

impl SchemaGuard {
    /// A guard over a fresh schema name starting with `prefix`.
    pub fn new(prefix: &str) -> Self {
        SchemaGuard(unique_schema(prefix))
    }
}

impl Drop for SchemaGuard {
    fn drop(&mut self) {
        let _ = std::panic::catch_unwind(|| {
            query_rows(&format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.0))
        });
    }
}
