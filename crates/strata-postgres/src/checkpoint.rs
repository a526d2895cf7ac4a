//! [`PgCheckpointStore`]: named checkpoints in the schema's `checkpoints` table.

use std::sync::Arc;

use strata_core::{async_trait, CheckpointStore, Error, Position, Result};

use crate::database::{db_error, Database};
use crate::migrate::to_i64;
use crate::read::corrupt;
use crate::store::PostgresStore;

/// Checkpoints in PostgreSQL, sharing the store's pool and schema. A
/// projection that writes its read model into the same database should use
/// [`PgTransactionalProjection`](crate::PgTransactionalProjection) instead,
/// which commits the checkpoint with the rows.
#[derive(Clone, Debug)]
pub struct PgCheckpointStore {
    database: Arc<Database>,
}

impl PostgresStore {
    /// The checkpoint store in this store's schema.
    pub fn checkpoints(&self) -> PgCheckpointStore {
        PgCheckpointStore {
            database: self.database().clone(),
        }
    }
}

#[async_trait]
impl CheckpointStore for PgCheckpointStore {
    async fn load(&self, name: &str) -> Result<Option<Position>> {
        let sql = &self.database.sql;
        let rows = self
            .database
            .read("loading a checkpoint", |client| async move {
                let stmt = client
                    .prepare_cached(&sql.checkpoint_load)
                    .await
                    .map_err(db_error("loading a checkpoint"))?;
                client
                    .query(&stmt, &[&name])
                    .await
                    .map_err(db_error("loading a checkpoint"))
            })
            .await?;
        match rows.first() {
            None => Ok(None),
            Some(row) => {
                let p: i64 = row.try_get(0).map_err(corrupt("checkpoints.position"))?;
                u64::try_from(p)
                    .map(|p| Some(Position(p)))
                    .map_err(|_| Error::Corrupt {
                        location: format!("checkpoint `{name}`"),
                        reason: format!("negative position {p}"),
                    })
            }
        }
    }

    async fn save(&self, name: &str, position: Position) -> Result<()> {
        let sql = &self.database.sql;
        let p = to_i64(position.0);
        self.database
            .read("saving a checkpoint", |client| async move {
                let stmt = client
                    .prepare_cached(&sql.checkpoint_save)
                    .await
                    .map_err(db_error("saving a checkpoint"))?;
                client
                    .execute(&stmt, &[&name, &p])
                    .await
                    .map_err(db_error("saving a checkpoint"))?;
                Ok(())
            })
            .await
    }

    async fn reset(&self, name: &str) -> Result<()> {
        let sql = &self.database.sql;
        self.database
            .read("resetting a checkpoint", |client| async move {
                let stmt = client
                    .prepare_cached(&sql.checkpoint_reset)
                    .await
                    .map_err(db_error("resetting a checkpoint"))?;
                client
                    .execute(&stmt, &[&name])
                    .await
                    .map_err(db_error("resetting a checkpoint"))?;
                Ok(())
            })
            .await
    }
}
