//! Acks, nacks and leaving: each one transaction.

use deadpool_postgres::Transaction;
use strata_core::group::{
    ConsumerId, DeliveryId, GroupName, GroupSettings, NackAction, SettleReport,
};
use strata_core::Result;

use super::{big, db, PgGroups};

/// Moves the stored checkpoint up to what one snapshot shows settled: below
/// the lowest unsettled row, and at most the claim cursor.
const ADVANCE: &str = "\
UPDATE {schema}.groups g SET acked_total = g.acked_total + $2,
  rate_count = CASE WHEN g.rate_second = s.now THEN g.rate_count + $2 ELSE $2 END,
  prev_count = CASE WHEN g.rate_second = s.now THEN g.prev_count
                    WHEN g.rate_second = s.now - 1 THEN g.rate_count ELSE 0 END,
  rate_second = s.now,
  checkpoint = greatest(g.checkpoint, (
    SELECT least(f.frontier, coalesce(
        (SELECT min(l.position) - 1 FROM {schema}.group_leases l WHERE l.group_name = $1),
        f.frontier))
    FROM {schema}.group_frontiers f WHERE f.group_name = $1))
FROM (SELECT floor(extract(epoch FROM now()))::bigint AS now) s
WHERE g.name = $1";

const PARK: &str = "\
INSERT INTO {schema}.group_parked (group_name, position, reason, delivery_count)
VALUES ($1, $2, $3, $4)
ON CONFLICT (group_name, position) DO UPDATE
SET reason = excluded.reason, delivery_count = excluded.delivery_count,
    parked_at = now(), replaying = false";

impl PgGroups {
    pub(super) async fn advance(
        &self,
        tx: &Transaction<'_>,
        name: &GroupName,
        acked: i64,
    ) -> Result<()> {
        tx.execute(
            &self.prepared(tx, ADVANCE).await?,
            &[&name.as_str(), &acked],
        )
        .await
        .map_err(db("advancing the checkpoint"))?;
        Ok(())
    }

    pub(super) async fn touch(
        &self,
        tx: &Transaction<'_>,
        name: &GroupName,
        consumer: &ConsumerId,
    ) -> Result<()> {
        tx.execute(
            &self
                .prepared(
                    tx,
                    "INSERT INTO {schema}.group_consumers (group_name, consumer, last_seen) \
                 VALUES ($1, $2, now()) ON CONFLICT (group_name, consumer) \
                 DO UPDATE SET last_seen = now()",
                )
                .await?,
            &[&name.as_str(), &consumer.as_str()],
        )
        .await
        .map_err(db("recording the consumer"))?;
        Ok(())
    }

    pub(super) async fn settle_ack(
        &self,
        name: &GroupName,
        consumer: &ConsumerId,
        ids: &[DeliveryId],
    ) -> Result<SettleReport> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db("starting an ack"))?;
        self.settings_of(&tx, name).await?;
        let ids: Vec<i64> = ids.iter().map(|&i| big(i)).collect();
        let rows = tx
            .query(
                &self
                    .prepared(
                        &tx,
                        "DELETE FROM {schema}.group_leases \
                     WHERE group_name = $1 AND consumer = $2 AND delivery_id = ANY($3) \
                     RETURNING position",
                    )
                    .await?,
                &[&name.as_str(), &consumer.as_str(), &ids],
            )
            .await
            .map_err(db("acking"))?;
        let positions: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
        tx.execute(
            &self.prepared(&tx, "DELETE FROM {schema}.group_parked WHERE group_name = $1 AND position = ANY($2)").await?,
            &[&name.as_str(), &positions],
        )
        .await
        .map_err(db("removing replayed messages from the parked list"))?;
        let settled = positions.len() as i64;
        self.touch(&tx, name, consumer).await?;
        self.advance(&tx, name, settled).await?;
        tx.commit().await.map_err(db("committing an ack"))?;
        Ok(SettleReport {
            settled: settled as u64,
            unknown: (ids.len() - positions.len()) as u64,
            parked: 0,
        })
    }

    pub(super) async fn settle_nack(
        &self,
        name: &GroupName,
        consumer: &ConsumerId,
        ids: &[DeliveryId],
        action: NackAction,
        reason: &str,
    ) -> Result<SettleReport> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db("starting a nack"))?;
        let settings = self.settings_of(&tx, name).await?;
        let ids: Vec<i64> = ids.iter().map(|&i| big(i)).collect();
        let rows = tx
            .query(
                &self
                    .prepared(
                        &tx,
                        "SELECT position, delivery_count FROM {schema}.group_leases \
                     WHERE group_name = $1 AND consumer = $2 AND delivery_id = ANY($3) FOR UPDATE",
                    )
                    .await?,
                &[&name.as_str(), &consumer.as_str(), &ids],
            )
            .await
            .map_err(db("finding nacked leases"))?;
        let mut report = SettleReport {
            settled: rows.len() as u64,
            unknown: (ids.len() - rows.len()) as u64,
            parked: 0,
        };
        for row in rows {
            let (position, count): (i64, i32) = (row.get(0), row.get(1));
            let parked = self
                .nack_one(&tx, name, &settings, (position, count), action, reason)
                .await?;
            report.parked += u64::from(parked && action == NackAction::Retry);
        }
        self.touch(&tx, name, consumer).await?;
        self.advance(&tx, name, 0).await?;
        tx.commit().await.map_err(db("committing a nack"))?;
        Ok(report)
    }

    /// Nacks one leased row (`position`, `delivery_count`); whether it was
    /// parked.
    async fn nack_one(
        &self,
        tx: &Transaction<'_>,
        name: &GroupName,
        settings: &GroupSettings,
        (position, count): (i64, i32),
        action: NackAction,
        reason: &str,
    ) -> Result<bool> {
        let used = u32::try_from(count).unwrap_or(0);
        let park = match action {
            NackAction::Skip => false,
            NackAction::Park => true,
            NackAction::Retry if used > settings.max_retries => true,
            NackAction::Retry => {
                let backoff = big(settings.backoff_ms(used));
                self.offer_later(tx, name, position, backoff).await?;
                return Ok(false);
            }
        };
        self.drop_row(tx, name, position).await?;
        let g = name.as_str();
        let done = if park {
            let sql = self.sql(PARK);
            tx.execute(&sql, &[&g, &position, &reason, &count]).await
        } else {
            let sql = self
                .sql("DELETE FROM {schema}.group_parked WHERE group_name = $1 AND position = $2");
            tx.execute(&sql, &[&g, &position]).await
        };
        done.map_err(db("parking or skipping"))?;
        Ok(park)
    }

    async fn offer_later(
        &self,
        tx: &Transaction<'_>,
        name: &GroupName,
        position: i64,
        backoff_ms: i64,
    ) -> Result<()> {
        tx.execute(
            &self
                .prepared(
                    tx,
                    "UPDATE {schema}.group_leases SET consumer = NULL, lease_expires = NULL, \
                 delivery_id = NULL, not_before = now() + $3::bigint * interval '1 millisecond' \
                 WHERE group_name = $1 AND position = $2",
                )
                .await?,
            &[&name.as_str(), &position, &backoff_ms],
        )
        .await
        .map_err(db("scheduling a retry"))?;
        Ok(())
    }

    async fn drop_row(&self, tx: &Transaction<'_>, name: &GroupName, position: i64) -> Result<()> {
        tx.execute(
            &self
                .prepared(
                    tx,
                    "DELETE FROM {schema}.group_leases WHERE group_name = $1 AND position = $2",
                )
                .await?,
            &[&name.as_str(), &position],
        )
        .await
        .map_err(db("settling a nacked message"))?;
        Ok(())
    }

    pub(super) async fn release(&self, name: &GroupName, consumer: &ConsumerId) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db("starting a leave"))?;
        self.settings_of(&tx, name).await?;
        tx.execute(
            &self
                .prepared(
                    &tx,
                    "UPDATE {schema}.group_leases SET consumer = NULL, lease_expires = NULL, \
                 delivery_id = NULL, not_before = now() WHERE group_name = $1 AND consumer = $2",
                )
                .await?,
            &[&name.as_str(), &consumer.as_str()],
        )
        .await
        .map_err(db("handing leases back"))?;
        tx.execute(
            &self
                .prepared(
                    &tx,
                    "DELETE FROM {schema}.group_consumers WHERE group_name = $1 AND consumer = $2",
                )
                .await?,
            &[&name.as_str(), &consumer.as_str()],
        )
        .await
        .map_err(db("removing the consumer"))?;
        tx.commit().await.map_err(db("committing a leave"))?;
        Ok(())
    }
}
