//! The raw-insert baseline of the benchmarks (`strata bench raw-insert`, the
//! `pg_throughput` example): a table shaped like `events` — same columns and
//! indexes, a plain `bigserial` position — into which single rows are
//! inserted with no checks, so the store's rate can be given as a ratio of
//! what the database does on its own.

use tokio_postgres::Client;

use crate::config::validate_schema_name;
use crate::error::PgError;
use crate::sql::render;

/// Creates `raw_events` in `schema` (which must exist) unless it is there.
pub async fn create_raw_events_table(client: &Client, schema: &str) -> Result<(), PgError> {
    validate_schema_name(schema)?;
    client
        .batch_execute(&render(include_str!("baseline/raw_events.sql"), schema))
        .await
        .map_err(|e| PgError::db(format!("creating {schema}.raw_events"), e))
}

/// The single-row insert into `raw_events`; its parameters are `event_id
/// uuid`, `stream_id text`, `version bigint`, `event_type text`,
/// `content_type smallint` and `data bytea` (`metadata` stays NULL and
/// `recorded_at` is `now()`).
pub fn raw_insert_sql(schema: &str) -> Result<String, PgError> {
    validate_schema_name(schema)?;
    Ok(render(
        "INSERT INTO {schema}.raw_events \
         (event_id, stream_id, version, event_type, content_type, data) \
         VALUES ($1, $2, $3, $4, $5, $6)",
        schema,
    ))
}
