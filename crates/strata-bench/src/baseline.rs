//! The raw-insert baseline of the PostgreSQL benchmarks (`strata bench
//! raw-insert`, the `pg_throughput` example): a table shaped like the
//! store's `events` — same columns and indexes, a plain `bigserial`
//! position — into which single rows are inserted with no checks, so the
//! store's rate can be given as a ratio of what the database does on its own.

use strata_core::error::error_chain;
use tokio_postgres::Client;

/// Why the baseline's table could not be made, or its insert written.
#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    /// The schema name is not one the store accepts.
    #[error(transparent)]
    Schema(#[from] strata_postgres::PgError),
    /// The database refused.
    #[error("PostgreSQL error while {what}: {}", error_chain(source))]
    Db {
        /// What was being done.
        what: String,
        /// The driver's error.
        #[source]
        source: tokio_postgres::Error,
    },
}

/// Creates `raw_events` in `schema` (which must exist) unless it is there.
pub async fn create_raw_events_table(client: &Client, schema: &str) -> Result<(), BaselineError> {
    strata_postgres::validate_schema_name(schema)?;
    client
        .batch_execute(&render(include_str!("baseline/raw_events.sql"), schema))
        .await
        .map_err(|source| BaselineError::Db {
            what: format!("creating {schema}.raw_events"),
            source,
        })
}

/// The single-row insert into `raw_events`; its parameters are `event_id
/// uuid`, `stream_id text`, `version bigint`, `event_type text`,
/// `content_type smallint` and `data bytea` (`metadata` stays NULL and
/// `recorded_at` is `now()`).
pub fn raw_insert_sql(schema: &str) -> Result<String, BaselineError> {
    strata_postgres::validate_schema_name(schema)?;
    Ok(render(
        "INSERT INTO {schema}.raw_events \
         (event_id, stream_id, version, event_type, content_type, data) \
         VALUES ($1, $2, $3, $4, $5, $6)",
        schema,
    ))
}

/// Replaces `{schema}` by the quoted identifier. The name was validated
/// (`[A-Za-z0-9_]`), so quoting cannot be escaped; it is still quoted so a
/// reserved word works.
fn render(template: &str, schema: &str) -> String {
    template.replace("{schema}", &format!("\"{schema}\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_insert_names_the_quoted_schema_and_bad_names_are_refused() {
        let sql = raw_insert_sql("bench_1").unwrap();
        assert!(
            sql.starts_with("INSERT INTO \"bench_1\".raw_events "),
            "{sql}"
        );
        assert!(raw_insert_sql("1bad").is_err());
        assert!(raw_insert_sql("a\"b").is_err());
    }
}
