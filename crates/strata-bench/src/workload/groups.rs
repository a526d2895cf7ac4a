//! `groups`: consumer groups in-process. Fills `--events` events over
//! `--streams` streams (in runs of 10 events per stream), then `--writers` consumers of one group read
//! `--batch` messages at a time and ack them until every event is acked:
//! once with `round_robin`, once with `pinned`. Then the redelivery latency:
//! one consumer takes a lease and dies silently, and the time until another
//! consumer receives its events is reported.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use strata_core::group::{
    ConsumerGroups, ConsumerId, GroupName, GroupSettings, GroupSource, GroupStart, LocalGroups,
    Strategy,
};
use strata_core::{EventStore, ReadFilter};

use super::fill;
use crate::args::Defaults;
use crate::context::{run_tasks, BenchCtx, Tally};
use crate::report::Measurement;
use crate::BenchError;

/// `groups` defaults: 4 consumers, 500 messages per read, 100,000 events
/// over 1,000 streams.
pub const DEFAULTS: Defaults = Defaults {
    writers: 4,
    batch: 500,
    events: 100_000,
    streams: 1_000,
};

/// The ack timeout of the redelivery measurement's group.
const REDELIVERY_ACK_TIMEOUT_MS: u64 = 1_000;
/// Events per append while filling: streams interleave in `$all` in runs
/// this long, as many writers' streams do, so `pinned` has streams to share.
const FILL_RUN_EVENTS: u64 = 10;
/// How long a consumer waits for messages per read.
const READ_WAIT: Duration = Duration::from_millis(100);

type Groups = Arc<LocalGroups<Arc<dyn EventStore>>>;

/// Runs the workload.
pub async fn run(ctx: &BenchCtx<'_>) -> Result<Vec<Measurement>, BenchError> {
    let p = ctx.params;
    let start = ctx.store().head_position().await?;
    fill::random_streams_by(ctx, 0, p.events, FILL_RUN_EVENTS).await?;
    let groups: Groups = Arc::new(LocalGroups::new(ctx.store()));
    let mut out = Vec::new();
    for (variant, strategy) in [
        ("round_robin", Strategy::RoundRobin),
        ("pinned", Strategy::Pinned),
    ] {
        let name = GroupName::new(format!("bench-{variant}-{}", ctx.run_id))?;
        let settings = GroupSettings {
            start: GroupStart::AfterPosition(start),
            strategy,
            max_in_flight: (p.batch as u32).clamp(1, strata_core::group::MAX_IN_FLIGHT_LIMIT),
            ..GroupSettings::new(GroupSource::All(ReadFilter::all()))
        };
        groups.put_group(&name, settings).await?;
        let began = Instant::now();
        let tally = consume_all(ctx, &groups, &name).await?;
        out.push(Measurement {
            workload: None,
            variant: Some(variant),
            op: "read+ack",
            writers: p.writers,
            batch: p.batch,
            events: tally.events,
            ops: tally.ops,
            elapsed: began.elapsed(),
            latency: tally.latency,
            syncs: None,
            errors: tally.errors,
            dataset_events: None,
            subscriber: None,
            pipeline: None,
        });
        groups.delete_group(&name).await?;
    }
    redelivery(ctx, &groups, start).await?;
    Ok(out)
}

/// `--writers` consumers read and ack until `--events` events are acked.
async fn consume_all(
    ctx: &BenchCtx<'_>,
    groups: &Groups,
    name: &GroupName,
) -> Result<Tally, BenchError> {
    let p = ctx.params;
    let acked = Arc::new(AtomicU64::new(0));
    run_tasks(p.writers, |i| {
        let (groups, name, acked) = (Arc::clone(groups), name.clone(), Arc::clone(&acked));
        let (batch, total) = (p.batch, p.events);
        async move {
            let me = ConsumerId::new(format!("c{i}"))?;
            let mut t = Tally::default();
            while acked.load(Ordering::Relaxed) < total {
                let t0 = Instant::now();
                let got = groups.read(&name, &me, batch, READ_WAIT).await?;
                if got.is_empty() {
                    continue;
                }
                let ids: Vec<u64> = got.iter().map(|d| d.delivery_id).collect();
                let r = groups.ack(&name, &me, &ids).await?;
                t.latency.record(t0.elapsed());
                t.ops += 1;
                t.events += r.settled;
                acked.fetch_add(r.settled, Ordering::Relaxed);
            }
            Ok(t)
        }
    })
    .await
}

/// One consumer leases and goes silent; how long until another has its
/// events.
async fn redelivery(
    ctx: &BenchCtx<'_>,
    groups: &Groups,
    start: strata_core::Position,
) -> Result<(), BenchError> {
    let name = GroupName::new(format!("bench-redelivery-{}", ctx.run_id))?;
    let settings = GroupSettings {
        start: GroupStart::AfterPosition(start),
        ack_timeout_ms: REDELIVERY_ACK_TIMEOUT_MS,
        ..GroupSettings::new(GroupSource::All(ReadFilter::all()))
    };
    groups.put_group(&name, settings).await?;
    let (dead, alive) = (ConsumerId::new("dead")?, ConsumerId::new("alive")?);
    let mut held = Vec::new();
    while held.is_empty() {
        held = groups.read(&name, &dead, 100, READ_WAIT).await?;
    }
    let leased_at = Instant::now();
    let wanted = held[0].event.position;
    'wait: loop {
        for d in groups.read(&name, &alive, 1_000, READ_WAIT).await? {
            if d.event.position == wanted {
                break 'wait;
            }
        }
    }
    let waited = leased_at.elapsed();
    ctx.note(&format!(
        "redelivery after a consumer dies: {:.0} ms with ack_timeout_ms {REDELIVERY_ACK_TIMEOUT_MS} ({:.0} ms past the timeout)",
        waited.as_secs_f64() * 1000.0,
        (waited.as_secs_f64() * 1000.0 - REDELIVERY_ACK_TIMEOUT_MS as f64).max(0.0)
    ));
    groups.delete_group(&name).await?;
    Ok(())
}
