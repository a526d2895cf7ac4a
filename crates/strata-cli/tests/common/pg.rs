//! The PostgreSQL test database for the `strata` binary's tests: the
//! address, skip-or-fail rule and per-test schemas written once in
//! strata-postgres's tests, plus the spec and raw queries the CLI's tests
//! use.

#![allow(dead_code, clippy::unwrap_used)]

#[path = "../../../strata-postgres/tests/common/database.rs"]
mod database;

pub use database::*;

use strata_postgres::tokio_postgres;

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
