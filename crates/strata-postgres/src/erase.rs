//! Erasure on PostgreSQL (`EventStore::erase_stream`): immediate. One
//! transaction locks the stream's row and its metadata stream's (in the
//! writer's order, so it cannot deadlock with a batch), checks the guard
//! with `strata_core::append_rules::check_erase`, tombstones both, and
//! deletes their event rows (and `event_ids` rows), the stream's
//! `stream_metadata` row and its snapshots (`erase/erase.sql`).
//!
//! Removing rows needs nothing from `$all` readers or subscriptions: they
//! never wait for a position (ADR 0005: every snapshot sees a prefix of
//! `$all`, and a page simply has no row where an erased event was), and
//! every other event keeps its position. The rows' bytes stay in the table
//! files as dead tuples until `VACUUM` reclaims them (docs/postgres.md).

use std::collections::BTreeSet;

use strata_core::append_rules::check_erase;
use strata_core::metadata::erased_metadata_stream;
use strata_core::{Error, ExpectedVersion, Result, StreamId};

use crate::database::backoff;
use crate::error::{is_transient, PgError};
use crate::read::head_from_row;
use crate::store::{unknown_outcome, PostgresStore};

/// Attempts of an erasure whose transaction PostgreSQL rolled back as a
/// deadlock or serialization failure (it is then simply run again).
pub const MAX_ERASE_ATTEMPTS: u32 = 4;

/// How one attempt failed.
enum Failure {
    /// Rolled back for sure (deadlock, serialization failure): run again.
    Again(tokio_postgres::Error),
    /// Anything else.
    Fatal(Error),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Fatal(e)
    }
}

impl PostgresStore {
    /// Erases `stream` if `expected` holds (see the module docs).
    pub(crate) async fn erase(&self, stream: &StreamId, expected: ExpectedVersion) -> Result<()> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.erase_once(stream, expected).await {
                Ok(rows) => {
                    tracing::info!(stream = %stream, rows, "stream erased");
                    return Ok(());
                }
                Err(Failure::Again(e)) if attempt < MAX_ERASE_ATTEMPTS => {
                    tracing::warn!(attempt, error = %e, "erasure rolled back; running it again");
                    tokio::time::sleep(backoff(attempt)).await;
                }
                Err(Failure::Again(e)) => return Err(PgError::db("erasing a stream", e).into()),
                Err(Failure::Fatal(e)) => return Err(e),
            }
        }
    }

    /// One attempt; returns how many event rows it deleted.
    async fn erase_once(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
    ) -> Result<u64, Failure> {
        let database = self.database();
        let sql = &database.sql;
        let mut client = database
            .pool
            .get()
            .await
            .map_err(|e| Error::from(PgError::pool("erasing a stream", e)))?;
        let fail = |e: tokio_postgres::Error| {
            if is_transient(&e) {
                Failure::Again(e)
            } else {
                Failure::Fatal(unknown_outcome("erasing a stream", e))
            }
        };
        let meta = erased_metadata_stream(stream);
        // Locked in the writer's order (sorted names), as one batch would.
        let names: Vec<&str> = [Some(stream), meta.as_ref()]
            .into_iter()
            .flatten()
            .map(StreamId::as_str)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let tx = client.transaction().await.map_err(fail)?;
        tx.execute(&sql.ensure_streams, &[&names])
            .await
            .map_err(fail)?;
        let rows = tx.query(&sql.lock_streams, &[&names]).await.map_err(fail)?;
        let mut head = None;
        for row in &rows {
            let name: String = row.try_get(0).map_err(fail)?;
            if name == stream.as_str() {
                head = Some(head_from_row(row, 1)?);
            }
        }
        check_erase(stream, expected, head.as_ref())?;
        let row = tx
            .query_one(&sql.erase, &[&names, &stream.as_str()])
            .await
            .map_err(fail)?;
        let deleted: i64 = row.try_get(0).map_err(fail)?;
        tx.commit().await.map_err(fail)?;
        Ok(u64::try_from(deleted).unwrap_or(0))
    }
}
