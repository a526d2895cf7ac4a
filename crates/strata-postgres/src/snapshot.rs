//! [`PgSnapshotStore`]: aggregate snapshots in the schema's `snapshots` table.

use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use strata_core::{async_trait, Error, Result, Snapshot, SnapshotStore, StreamId, Version};

use crate::database::{db_error, Database};
use crate::migrate::to_i64;
use crate::read::corrupt;
use crate::store::PostgresStore;

/// Snapshots kept per stream (newest first); older ones are pruned on save.
pub const MAX_SNAPSHOTS_PER_STREAM: i64 = 16;

/// Snapshots in PostgreSQL, sharing the store's pool and schema.
///
/// ```no_run
/// # async fn run(store: strata_postgres::PostgresStore) -> strata_core::Result<()> {
/// use strata_core::{SnapshotStore, StreamId};
/// let snapshots = store.snapshots();
/// let newest = snapshots.load(&StreamId::new("account-1")?, u64::MAX).await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct PgSnapshotStore {
    database: Arc<Database>,
}

impl PostgresStore {
    /// The snapshot store in this store's schema.
    pub fn snapshots(&self) -> PgSnapshotStore {
        PgSnapshotStore {
            database: self.database().clone(),
        }
    }
}

#[async_trait]
impl SnapshotStore for PgSnapshotStore {
    async fn save(&self, snapshot: Snapshot) -> Result<()> {
        let sql = &self.database.sql;
        let snapshot = &snapshot;
        self.database
            .read("saving a snapshot", |client| async move {
                let save = client
                    .prepare_cached(&sql.snapshot_save)
                    .await
                    .map_err(db_error("saving a snapshot"))?;
                let prune = client
                    .prepare_cached(&sql.snapshot_prune)
                    .await
                    .map_err(db_error("saving a snapshot"))?;
                let schema_version = i32::try_from(snapshot.schema_version).map_err(|_| {
                    Error::invalid(format!(
                        "snapshot schema version {} does not fit PostgreSQL's integer",
                        snapshot.schema_version
                    ))
                })?;
                // Saving twice is harmless, so a dropped connection is retried.
                client
                    .execute(
                        &save,
                        &[
                            &snapshot.stream.as_str(),
                            &to_i64(snapshot.version),
                            &snapshot.aggregate_type,
                            &schema_version,
                            &&snapshot.state[..],
                            &snapshot.taken_at,
                        ],
                    )
                    .await
                    .map_err(db_error("saving a snapshot"))?;
                client
                    .execute(
                        &prune,
                        &[&snapshot.stream.as_str(), &MAX_SNAPSHOTS_PER_STREAM],
                    )
                    .await
                    .map_err(db_error("pruning snapshots"))?;
                Ok(())
            })
            .await
    }

    async fn load(&self, stream: &StreamId, max_version: Version) -> Result<Option<Snapshot>> {
        let sql = &self.database.sql;
        let name = stream.as_str();
        let max = to_i64(max_version);
        let rows = self
            .database
            .read("loading a snapshot", |client| async move {
                let stmt = client
                    .prepare_cached(&sql.snapshot_load)
                    .await
                    .map_err(db_error("loading a snapshot"))?;
                client
                    .query(&stmt, &[&name, &max])
                    .await
                    .map_err(db_error("loading a snapshot"))
            })
            .await?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        let version: i64 = row.try_get(1).map_err(corrupt("snapshots.version"))?;
        let aggregate_type: String = row
            .try_get(2)
            .map_err(corrupt("snapshots.aggregate_type"))?;
        let schema_version: i32 = row
            .try_get(3)
            .map_err(corrupt("snapshots.schema_version"))?;
        let state: Vec<u8> = row.try_get(4).map_err(corrupt("snapshots.state"))?;
        let taken_at: DateTime<Utc> = row.try_get(5).map_err(corrupt("snapshots.taken_at"))?;
        let bad = |what: &str| Error::Corrupt {
            location: format!("snapshots of `{stream}`"),
            reason: format!("negative {what}"),
        };
        Ok(Some(Snapshot {
            stream: stream.clone(),
            aggregate_type,
            version: u64::try_from(version).map_err(|_| bad("version"))?,
            schema_version: u32::try_from(schema_version).map_err(|_| bad("schema version"))?,
            state: Bytes::from(state),
            taken_at,
        }))
    }

    async fn delete(&self, stream: &StreamId) -> Result<()> {
        let sql = &self.database.sql;
        let name = stream.as_str();
        self.database
            .read("deleting snapshots", |client| async move {
                let stmt = client
                    .prepare_cached(&sql.snapshot_delete)
                    .await
                    .map_err(db_error("deleting snapshots"))?;
                client
                    .execute(&stmt, &[&name])
                    .await
                    .map_err(db_error("deleting snapshots"))?;
                Ok(())
            })
            .await
    }
}
