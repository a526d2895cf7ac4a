//! Migration 3's data step: `stream_metadata` rows for the metadata
//! streams a schema already holds. Stream metadata is kept as `$metadata`
//! events by every build; only the table that reads join is new.

use strata_core::metadata::metadata_target;
use strata_core::StreamMetadata;
use tokio_postgres::types::ToSql;
use tokio_postgres::Transaction;

use super::db_error;
use crate::error::PgError;
use crate::metadata::MetadataColumns;
use crate::sql::render;

/// Writes the row of every metadata stream whose latest event holds valid
/// settings, and returns how many it wrote. An event that does not (written
/// by hand, before appends were checked) is logged and sets nothing, as it
/// would have on a store that checks.
pub(super) async fn backfill_stream_metadata(
    tx: &Transaction<'_>,
    schema: &str,
) -> Result<usize, PgError> {
    let rows = tx
        .query(&render(include_str!("0003_backfill_read.sql"), schema), &[])
        .await
        .map_err(db_error(schema, "reading metadata streams"))?;
    let mut found = Vec::with_capacity(rows.len());
    for row in &rows {
        let name: String = row.get(0);
        let version: i64 = row.get(1);
        let data: Vec<u8> = row.get(2);
        let settings = StreamMetadata::from_json(&data).and_then(|m| m.validate().map(|()| m));
        match settings {
            Ok(m) => found.push((name, u64::try_from(version).unwrap_or(0), m)),
            Err(e) => {
                tracing::warn!(schema, stream = %name, error = %e, "metadata stream's latest event sets nothing")
            }
        }
    }
    let mut columns = MetadataColumns::default();
    for (name, version, settings) in &found {
        if let Some(target) = metadata_target(name) {
            columns.push(target, *version, settings);
        }
    }
    let params: [&(dyn ToSql + Sync); 5] = [
        &columns.streams,
        &columns.versions,
        &columns.max_count,
        &columns.max_age,
        &columns.truncate_before,
    ];
    tx.execute(
        &render(include_str!("0003_backfill_write.sql"), schema),
        &params,
    )
    .await
    .map_err(db_error(schema, "writing stream metadata"))?;
    Ok(columns.streams.len())
}
