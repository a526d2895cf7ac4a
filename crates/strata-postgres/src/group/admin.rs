//! Group definitions, status and the parked list.

use std::collections::HashMap;

use deadpool_postgres::GenericClient;
use strata_core::group::{
    GroupName, GroupSettings, GroupSource, GroupStart, GroupStatus, ParkedMessage,
};
use strata_core::{Direction, EventStore, Position, RecordedEvent, Result};

use super::{big, db, invalid, not_found, pos, settings_from, settings_json, PgGroups};
use crate::read::event_from_row;

const STATUS: &str = "\
SELECT g.name, g.settings::text, g.acked_total,
       greatest(g.checkpoint, least(f.frontier, coalesce(
           (SELECT min(l.position) - 1 FROM {schema}.group_leases l WHERE l.group_name = g.name),
           f.frontier))) AS checkpoint,
       (SELECT count(*) FROM {schema}.group_leases l
         WHERE l.group_name = g.name AND l.consumer IS NOT NULL AND l.lease_expires > now()),
       (SELECT count(*) FROM {schema}.group_leases l WHERE l.group_name = g.name),
       (SELECT count(*) FROM {schema}.group_parked p WHERE p.group_name = g.name),
       (SELECT count(*) FROM {schema}.group_consumers c WHERE c.group_name = g.name
         AND c.last_seen > now() - (g.settings->>'ack_timeout_ms')::bigint * interval '1 millisecond'),
       (SELECT min(l.position) FROM {schema}.group_leases l WHERE l.group_name = g.name),
       CASE WHEN g.rate_second = floor(r.t) THEN (g.prev_count + g.rate_count) / (1 + r.t - floor(r.t))
            WHEN g.rate_second = floor(r.t) - 1 THEN g.rate_count / (1 + r.t - floor(r.t))
            ELSE 0 END::float8
FROM (SELECT extract(epoch FROM now())::float8 AS t) r,
     {schema}.groups g JOIN {schema}.group_frontiers f ON f.group_name = g.name
WHERE $1::text IS NULL OR g.name = $1
ORDER BY g.name";

/// The age of the event at one position: a statement of its own, planned
/// with the position known, so a partitioned `events` is pruned to one
/// partition (a position from a subquery would lock every partition).
const AGE_AT: &str = "\
SELECT extract(epoch FROM now() - e.recorded_at)::float8 FROM {schema}.events e WHERE e.position = $1";

const EVENTS_AT: &str = "\
SELECT e.position, e.event_id, e.stream_id, e.version, e.event_type, e.content_type, e.data,
       e.metadata::text, e.recorded_at, e.tags
FROM {schema}.events e WHERE e.position = ANY($1) ORDER BY e.position";

impl PgGroups {
    /// The group's settings, read in `client`'s transaction (or
    /// `GroupNotFound`).
    pub(super) async fn settings_of(
        &self,
        client: &impl GenericClient,
        name: &GroupName,
    ) -> Result<GroupSettings> {
        let row = client
            .query_opt(
                &self
                    .prepared(
                        client,
                        "SELECT settings::text FROM {schema}.groups WHERE name = $1",
                    )
                    .await?,
                &[&name.as_str()],
            )
            .await
            .map_err(db("reading the definition"))?
            .ok_or_else(|| not_found(name))?;
        settings_from(row.get(0))
    }

    /// The events at `positions`, by position (missing ones left out).
    pub(super) async fn events_at(
        &self,
        client: &impl GenericClient,
        positions: &[i64],
    ) -> Result<HashMap<i64, RecordedEvent>> {
        let rows = client
            // Not prepared: planned with the positions known, a
            // partitioned `events` is pruned to their partitions.
            .query(&self.sql(EVENTS_AT), &[&positions])
            .await
            .map_err(db("reading leased events"))?;
        let mut out = HashMap::with_capacity(rows.len());
        for row in &rows {
            let e = event_from_row(row, 0)?;
            out.insert(big(e.position.0), e);
        }
        Ok(out)
    }

    pub(super) async fn put(
        &self,
        name: &GroupName,
        settings: GroupSettings,
    ) -> Result<GroupStatus> {
        settings.validate()?;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db("starting a put"))?;
        let existing = tx
            .query_opt(
                &self.sql("SELECT settings::text FROM {schema}.groups WHERE name = $1 FOR UPDATE"),
                &[&name.as_str()],
            )
            .await
            .map_err(db("reading the definition"))?;
        if let Some(row) = existing {
            let old = settings_from(row.get(0))?;
            if old.source != settings.source {
                return Err(invalid(format!(
                    "group `{name}` exists with another source; delete it to change the source"
                )));
            }
            // The start is ignored by an update: the claims go on from
            // where they are, with the start the group was made with.
            let json = settings_json(&GroupSettings {
                start: old.start,
                ..settings
            })?;
            tx.execute(
                &self.sql("UPDATE {schema}.groups SET settings = $2::text::jsonb WHERE name = $1"),
                &[&name.as_str(), &json],
            )
            .await
            .map_err(db("updating the definition"))?;
        } else {
            let json = settings_json(&settings)?;
            let start = big(self.start_position(&settings).await?.0);
            tx.execute(
                &self.sql(
                    "INSERT INTO {schema}.groups (name, settings, checkpoint) \
                     VALUES ($1, $2::text::jsonb, $3)",
                ),
                &[&name.as_str(), &json, &start],
            )
            .await
            .map_err(db("creating the group"))?;
            tx.execute(
                &self.sql(
                    "INSERT INTO {schema}.group_frontiers (group_name, frontier) VALUES ($1, $2)",
                ),
                &[&name.as_str(), &start],
            )
            .await
            .map_err(db("creating the group's cursor"))?;
        }
        tx.commit().await.map_err(db("committing a put"))?;
        let status = self.statuses(Some(name)).await?.into_iter().next();
        status.ok_or_else(|| not_found(name))
    }

    /// The position a new group's checkpoint starts at.
    async fn start_position(&self, settings: &GroupSettings) -> Result<Position> {
        Ok(match (settings.start, &settings.source) {
            (GroupStart::Start, _) => Position::START,
            (GroupStart::End, _) => self.store.head_position().await?,
            (GroupStart::AfterPosition(p), _) => p,
            (GroupStart::FromVersion(v), GroupSource::Stream(s)) if v > 1 => {
                // Events below `v` are also skipped by the claim, so a
                // stream shorter than `v - 1` today is still cut right.
                match self
                    .store
                    .read_stream(s, v - 1, 1, Direction::Forward)
                    .await
                {
                    Ok(events) => events.first().map_or(Position::START, |e| e.position),
                    Err(strata_core::Error::StreamNotFound { .. }) => Position::START,
                    Err(e) => return Err(e),
                }
            }
            (GroupStart::FromVersion(_), _) => Position::START,
        })
    }

    pub(super) async fn statuses(&self, only: Option<&GroupName>) -> Result<Vec<GroupStatus>> {
        let client = self.client().await?;
        let only = only.map(GroupName::as_str);
        let rows = client
            .query(&self.sql(STATUS), &[&only])
            .await
            .map_err(db("reading status"))?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let count = |i: usize| u64::try_from(row.get::<_, i64>(i)).unwrap_or(0);
            let unsettled = count(5);
            out.push(GroupStatus {
                name: GroupName::new(row.get::<_, String>(0))?,
                settings: settings_from(row.get(1))?,
                checkpoint: pos(row.get(3)),
                lag_events: unsettled,
                lag_seconds: self.age_at(&client, row.get(8)).await?,
                in_flight: count(4),
                parked: count(6),
                consumers: count(7),
                acked_total: count(2),
                acked_per_second: row.get::<_, Option<f64>>(9).unwrap_or(0.0),
            });
        }
        Ok(out)
    }

    /// Seconds since the event at `position` was recorded (0 for none).
    async fn age_at(&self, client: &impl GenericClient, position: Option<i64>) -> Result<f64> {
        let Some(position) = position else {
            return Ok(0.0);
        };
        let row = client
            .query_opt(&self.sql(AGE_AT), &[&position])
            .await
            .map_err(db("reading the oldest event's age"))?;
        Ok(row
            .and_then(|r| r.get::<_, Option<f64>>(0))
            .unwrap_or(0.0)
            .max(0.0))
    }

    pub(super) async fn delete(&self, name: &GroupName) -> Result<bool> {
        let client = self.client().await?;
        let n = client
            .execute(
                &self.sql("DELETE FROM {schema}.groups WHERE name = $1"),
                &[&name.as_str()],
            )
            .await
            .map_err(db("deleting the group"))?;
        Ok(n > 0)
    }

    pub(super) async fn parked_list(
        &self,
        name: &GroupName,
        limit: usize,
    ) -> Result<Vec<ParkedMessage>> {
        let client = self.client().await?;
        self.settings_of(&client, name).await?;
        let rows = client
            .query(
                &self.sql(
                    "SELECT position, reason, delivery_count, parked_at FROM {schema}.group_parked \
                     WHERE group_name = $1 ORDER BY position LIMIT $2",
                ),
                &[&name.as_str(), &big(limit as u64)],
            )
            .await
            .map_err(db("listing parked messages"))?;
        let positions: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
        let mut events = self.events_at(&client, &positions).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let Some(event) = events.remove(&row.get::<_, i64>(0)) else {
                continue; // erased since
            };
            out.push(ParkedMessage {
                event,
                reason: row.get(1),
                delivery_count: u32::try_from(row.get::<_, i32>(2)).unwrap_or(0),
                parked_at: row.get(3),
            });
        }
        Ok(out)
    }

    pub(super) async fn replay(&self, name: &GroupName, limit: usize) -> Result<u64> {
        let mut client = self.client().await?;
        let tx = client
            .transaction()
            .await
            .map_err(db("starting a replay"))?;
        self.settings_of(&tx, name).await?;
        let rows = tx
            .query(
                &self.sql(
                    "UPDATE {schema}.group_parked SET replaying = true \
                     WHERE group_name = $1 AND position IN ( \
                       SELECT position FROM {schema}.group_parked \
                       WHERE group_name = $1 AND NOT replaying \
                       ORDER BY position LIMIT $2 FOR UPDATE SKIP LOCKED) \
                     RETURNING position",
                ),
                &[&name.as_str(), &big(limit as u64)],
            )
            .await
            .map_err(db("marking parked messages for replay"))?;
        let positions: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
        tx.execute(
            &self.sql(
                "INSERT INTO {schema}.group_leases (group_name, position, stream_id) \
                 SELECT $1, e.position, e.stream_id FROM {schema}.events e \
                 WHERE e.position = ANY($2) ON CONFLICT DO NOTHING",
            ),
            &[&name.as_str(), &positions],
        )
        .await
        .map_err(db("offering parked messages again"))?;
        tx.commit().await.map_err(db("committing a replay"))?;
        Ok(positions.len() as u64)
    }

    pub(super) async fn unpark(&self, name: &GroupName, positions: &[Position]) -> Result<u64> {
        let client = self.client().await?;
        self.settings_of(&client, name).await?;
        let positions: Vec<i64> = positions.iter().map(|p| big(p.0)).collect();
        let n = client
            .execute(
                &self.sql("DELETE FROM {schema}.group_parked WHERE group_name = $1 AND position = ANY($2)"),
                &[&name.as_str(), &positions],
            )
            .await
            .map_err(db("deleting parked messages"))?;
        Ok(n)
    }
}
