//! Reading: claim new events of the source, lease free rows, wait.

use std::time::{Duration, Instant};

use deadpool_postgres::Transaction;
use strata_core::group::{
    ConsumerId, Delivery, GroupName, GroupSettings, GroupSource, GroupStart, Strategy,
};
use strata_core::{EventStore, Position, ReadFilter, RecordedEvent, Result};

use super::{
    big, db, pos, PgGroups, GROUP_CLAIM_EVENTS, GROUP_CLAIM_LOW_WATER, GROUP_FORGET_CONSUMER_SECS,
    GROUP_PINNED_CANDIDATES, GROUP_PINNED_WINDOW, GROUP_WAIT_POLL_MS,
};

/// Under round robin, free rows (new, retry due, or lease expired), oldest
/// first, locked. Pinned reads [`PINNED_CANDIDATES`] unlocked and locks
/// only the rows of its own streams, with [`LOCK_CHOSEN`], so readers do
/// not lock each other's streams away.
const CANDIDATES: &str = "\
SELECT l.position, l.stream_id FROM {schema}.group_leases l
WHERE l.group_name = $1
  AND ((l.consumer IS NULL AND l.not_before <= now()) OR l.lease_expires <= now())
ORDER BY l.position LIMIT $2 FOR UPDATE OF l SKIP LOCKED";

/// Under pinned, the free rows that head their stream, oldest first: one
/// pass over the group's rows in stream order. (A per-row "no earlier row
/// of this stream" probe walked every settled row's dead index entries
/// once per row, and a full window took seconds per read.)
const PINNED_CANDIDATES: &str = "\
SELECT h.position, h.stream_id FROM (
    SELECT DISTINCT ON (l.stream_id) l.position, l.stream_id, l.consumer,
           l.not_before, l.lease_expires
    FROM {schema}.group_leases l WHERE l.group_name = $1
    ORDER BY l.stream_id, l.position) h
WHERE (h.consumer IS NULL AND h.not_before <= now()) OR h.lease_expires <= now()
ORDER BY h.position LIMIT $2";

/// Under pinned, locks those of the rows `$2` still leasable: free, and
/// first of their stream, in a fresh snapshot (another reader may have
/// leased one since the candidates were read).
const LOCK_CHOSEN: &str = "\
SELECT l.position FROM {schema}.group_leases l
WHERE l.group_name = $1 AND l.position = ANY($2)
  AND ((l.consumer IS NULL AND l.not_before <= now()) OR l.lease_expires <= now())
  {pinned}
ORDER BY l.position FOR UPDATE OF l SKIP LOCKED";

const PINNED: &str = "AND NOT EXISTS (SELECT FROM {schema}.group_leases o \
     WHERE o.group_name = l.group_name AND o.stream_id = l.stream_id AND o.position < l.position)";

const LEASE: &str = "\
UPDATE {schema}.group_leases SET consumer = $2,
    lease_expires = now() + $4::bigint * interval '1 millisecond',
    delivery_count = delivery_count + 1, delivery_id = nextval('{schema}.group_delivery_seq')
WHERE group_name = $1 AND position = ANY($3)
RETURNING position, delivery_count, delivery_id";

/// A stable 64-bit FNV-1a hash: every process ranks consumers alike.
fn fnv(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.bytes().chain(std::iter::once(0xff)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

/// The rendezvous owner of `stream` among `live`.
fn owner<'a>(stream: &str, live: &'a [String]) -> Option<&'a String> {
    live.iter().max_by_key(|c| fnv(&[stream, c]))
}

impl PgGroups {
    pub(super) async fn read_waiting(
        &self,
        name: &GroupName,
        consumer: &ConsumerId,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Delivery>> {
        let deadline = Instant::now() + wait;
        let mut head = self.store.head_receiver();
        loop {
            let got = self.lease_once(name, consumer, max).await?;
            let left = deadline.saturating_duration_since(Instant::now());
            if !got.is_empty() || left.is_zero() || max == 0 {
                return Ok(got);
            }
            let nap = left.min(Duration::from_millis(GROUP_WAIT_POLL_MS));
            let _ = tokio::time::timeout(nap, head.changed()).await;
        }
    }

    /// One transaction: record the consumer, claim new events if few are
    /// free, lease what the strategy allows; then load the events.
    async fn lease_once(
        &self,
        name: &GroupName,
        consumer: &ConsumerId,
        max: usize,
    ) -> Result<Vec<Delivery>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db("starting a read"))?;
        let settings = self.settings_of(&tx, name).await?;
        self.touch(&tx, name, consumer).await?;
        let room = self.room(&tx, name, consumer, &settings, max).await?;
        if room == 0 {
            tx.commit().await.map_err(db("committing a read"))?;
            return Ok(Vec::new());
        }
        self.claim_if_low(&tx, name, &settings).await?;
        let chosen = self.choose(&tx, name, consumer, &settings, room).await?;
        let rows = tx
            .query(
                &self.prepared(&tx, LEASE).await?,
                &[
                    &name.as_str(),
                    &consumer.as_str(),
                    &chosen,
                    &big(settings.ack_timeout_ms),
                ],
            )
            .await
            .map_err(db("leasing"))?;
        let positions: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
        let mut events = self.events_at(&tx, &positions).await?;
        let gone: Vec<i64> = positions
            .iter()
            .copied()
            .filter(|p| !events.contains_key(p))
            .collect();
        if !gone.is_empty() {
            // Erased since they were claimed: nothing to deliver.
            tx.execute(
                &self.prepared(&tx, "DELETE FROM {schema}.group_leases WHERE group_name = $1 AND position = ANY($2)").await?,
                &[&name.as_str(), &gone],
            )
            .await
            .map_err(db("dropping erased events"))?;
        }
        tx.commit().await.map_err(db("committing a read"))?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            if let Some(event) = events.remove(&row.get::<_, i64>(0)) {
                out.push(Delivery {
                    delivery_count: u32::try_from(row.get::<_, i32>(1)).unwrap_or(0),
                    delivery_id: u64::try_from(row.get::<_, i64>(2)).unwrap_or(0),
                    event,
                });
            }
        }
        out.sort_by_key(|d| d.event.position);
        Ok(out)
    }

    /// How many more messages `consumer` may hold; 0 when `single` gives
    /// the group to another.
    async fn room(
        &self,
        tx: &Transaction<'_>,
        name: &GroupName,
        consumer: &ConsumerId,
        settings: &GroupSettings,
        max: usize,
    ) -> Result<usize> {
        if settings.strategy == Strategy::Single {
            // One active consumer: deciders of one group take turns (a
            // busy lock means another is deciding: try again later).
            let got: bool = tx
                .query_one(
                    "SELECT pg_try_advisory_xact_lock(hashtext('strata.group.' || $1 || '.' || $2))",
                    &[&self.store.schema(), &name.as_str()],
                )
                .await
                .map_err(db("taking the single-consumer lock"))?
                .get(0);
            let other: bool = tx
                .query_one(
                    &self.prepared(tx, "SELECT EXISTS (SELECT FROM {schema}.group_leases WHERE group_name = $1 \
                         AND consumer <> $2 AND lease_expires > now())").await?,
                    &[&name.as_str(), &consumer.as_str()],
                )
                .await
                .map_err(db("finding the active consumer"))?
                .get(0);
            if !got || other {
                return Ok(0);
            }
        }
        let held: i64 = tx
            .query_one(
                &self
                    .prepared(
                        tx,
                        "SELECT count(*) FROM {schema}.group_leases \
                     WHERE group_name = $1 AND consumer = $2 AND lease_expires > now()",
                    )
                    .await?,
                &[&name.as_str(), &consumer.as_str()],
            )
            .await
            .map_err(db("counting leases"))?
            .get(0);
        let free = i64::from(settings.max_in_flight)
            .saturating_sub(held)
            .max(0);
        Ok(usize::try_from(free).unwrap_or(0).min(max))
    }

    /// The positions to lease to `consumer`, locked.
    async fn choose(
        &self,
        tx: &Transaction<'_>,
        name: &GroupName,
        consumer: &ConsumerId,
        settings: &GroupSettings,
        room: usize,
    ) -> Result<Vec<i64>> {
        let pinned = settings.strategy == Strategy::Pinned;
        let (sql, limit) = if pinned {
            (PINNED_CANDIDATES, GROUP_PINNED_CANDIDATES)
        } else {
            (CANDIDATES, big(room as u64))
        };
        let rows = tx
            .query(&self.prepared(tx, sql).await?, &[&name.as_str(), &limit])
            .await
            .map_err(db("finding free messages"))?;
        if !pinned {
            return Ok(rows.iter().map(|r| r.get(0)).collect());
        }
        let live = self.live_consumers(tx, name, settings).await?;
        let mine: Vec<i64> = rows
            .iter()
            .filter(|r| owner(r.get(1), &live).is_none_or(|o| o == consumer.as_str()))
            .map(|r| r.get(0))
            .take(room)
            .collect();
        if mine.is_empty() {
            return Ok(mine);
        }
        let locked = tx
            .query(
                &self
                    .prepared(tx, &LOCK_CHOSEN.replace("{pinned}", PINNED))
                    .await?,
                &[&name.as_str(), &mine],
            )
            .await
            .map_err(db("locking free messages"))?;
        Ok(locked.iter().map(|r| r.get(0)).collect())
    }

    async fn live_consumers(
        &self,
        tx: &Transaction<'_>,
        name: &GroupName,
        settings: &GroupSettings,
    ) -> Result<Vec<String>> {
        let rows = tx
            .query(
                &self
                    .prepared(
                        tx,
                        "SELECT consumer FROM {schema}.group_consumers WHERE group_name = $1 \
                     AND last_seen > now() - $2::bigint * interval '1 millisecond'",
                    )
                    .await?,
                &[&name.as_str(), &big(settings.ack_timeout_ms)],
            )
            .await
            .map_err(db("listing live consumers"))?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// Claims the next events of the source when few rows are free (under
    /// `pinned`: while the group holds fewer than [`GROUP_PINNED_WINDOW`]
    /// rows) and no other reader is claiming (the cursor row is taken with
    /// SKIP LOCKED).
    async fn claim_if_low(
        &self,
        tx: &Transaction<'_>,
        name: &GroupName,
        settings: &GroupSettings,
    ) -> Result<()> {
        let (count_sql, low_water) = if settings.strategy == Strategy::Pinned {
            // Only a stream's first row is leasable: free rows behind it
            // do not feed a read, so the window counts every row.
            (
                "SELECT count(*) FROM (SELECT FROM {schema}.group_leases \
                 WHERE group_name = $1 LIMIT $2) r",
                GROUP_PINNED_WINDOW,
            )
        } else {
            (
                "SELECT count(*) FROM (SELECT FROM {schema}.group_leases \
                 WHERE group_name = $1 AND consumer IS NULL AND not_before <= now() LIMIT $2) r",
                GROUP_CLAIM_LOW_WATER,
            )
        };
        let held: i64 = tx
            .query_one(
                &self.prepared(tx, count_sql).await?,
                &[&name.as_str(), &low_water],
            )
            .await
            .map_err(db("counting free messages"))?
            .get(0);
        if held >= low_water {
            return Ok(());
        }
        let Some(row) = tx
            .query_opt(
                &self
                    .prepared(
                        tx,
                        "SELECT frontier FROM {schema}.group_frontiers WHERE group_name = $1 \
                     FOR UPDATE SKIP LOCKED",
                    )
                    .await?,
                &[&name.as_str()],
            )
            .await
            .map_err(db("taking the claim cursor"))?
        else {
            return Ok(()); // another reader is claiming
        };
        let frontier = pos(row.get(0));
        let (events, next) = self.source_after(settings, frontier).await?;
        let positions: Vec<i64> = events.iter().map(|e| big(e.position.0)).collect();
        let streams: Vec<&str> = events.iter().map(|e| e.stream_id.as_str()).collect();
        tx.execute(
            &self
                .prepared(
                    tx,
                    "INSERT INTO {schema}.group_leases (group_name, position, stream_id) \
                 SELECT $1, p, s FROM unnest($2::bigint[], $3::text[]) AS t(p, s) \
                 ON CONFLICT DO NOTHING",
                )
                .await?,
            &[&name.as_str(), &positions, &streams],
        )
        .await
        .map_err(db("claiming events"))?;
        tx.execute(
            &self
                .prepared(
                    tx,
                    "UPDATE {schema}.group_frontiers SET frontier = $2 WHERE group_name = $1",
                )
                .await?,
            &[&name.as_str(), &big(next.0)],
        )
        .await
        .map_err(db("moving the claim cursor"))?;
        tx.execute(
            &self
                .prepared(
                    tx,
                    "DELETE FROM {schema}.group_consumers WHERE group_name = $1 \
                 AND last_seen < now() - $2::bigint * interval '1 second'",
                )
                .await?,
            &[&name.as_str(), &GROUP_FORGET_CONSUMER_SECS],
        )
        .await
        .map_err(db("forgetting old consumers"))?;
        Ok(())
    }

    /// The group's events after `frontier` (one page), and the new
    /// frontier: the last position read, or the head taken before reading
    /// when the page came short (every position below a committed head is
    /// final: ADR 0005).
    async fn source_after(
        &self,
        settings: &GroupSettings,
        frontier: Position,
    ) -> Result<(Vec<RecordedEvent>, Position)> {
        let head = self.store.head_position().await?;
        let filter = match &settings.source {
            GroupSource::Stream(s) => ReadFilter::all().stream(s.clone()),
            GroupSource::All(f) => f.clone(),
        };
        let page = self
            .store
            .read_all(frontier.next(), GROUP_CLAIM_EVENTS, &filter)
            .await?;
        let next = match page.last() {
            Some(last) if page.len() == GROUP_CLAIM_EVENTS => last.position,
            Some(last) => last.position.max(head),
            None => head.max(frontier),
        };
        let min_version = match settings.start {
            GroupStart::FromVersion(v) => v,
            _ => 0,
        };
        let events = page
            .into_iter()
            .filter(|e| settings.delivers(e) && e.version >= min_version)
            .collect();
        Ok((events, next))
    }
}
