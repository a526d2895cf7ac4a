//! `http-groups`: consumer groups through the HTTP API. Fills `--events`
//! events over `--streams` streams through the server, then `--writers`
//! consumers (each its own client, so its own keep-alive connection) of one
//! `round_robin` group on `$all` read `--batch` messages at a time
//! (`POST /groups/{group}/read`) and ack them (`POST /groups/{group}/ack`)
//! until every event is acked; reports events acked per second. The server
//! is `--server URL` or `strata serve` over `--store` as a child process,
//! as for `http-append`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use strata_client::Client;
use strata_core::group::{GroupName, GroupSettings, GroupSource, GroupStart, Strategy};
use strata_core::{ExpectedVersion, NewEvent, Position, ReadFilter, StreamId};
use strata_server::ServerConfig;

use super::server_run::{run_through_server, FsyncProbe, Target};
use crate::args::{BenchArgs, Defaults, Params, WorkloadName};
use crate::context::{run_tasks, Tally};
use crate::host::Host;
use crate::report::Measurement;
use crate::{payload, BenchError};

/// `http-groups` defaults: 4 consumers, 500 messages per read, 100,000
/// events over 1,000 streams.
pub const DEFAULTS: Defaults = Defaults {
    writers: 4,
    batch: 500,
    events: 100_000,
    streams: 1_000,
};

/// Events per fill request (`POST /multi`).
const FILL_EVENTS_PER_REQUEST: u64 = 1_000;
/// How long one read waits for a first message.
const READ_WAIT: Duration = Duration::from_millis(100);

/// Runs `strata bench http-groups` start to end and reports the result.
pub async fn run(args: &BenchArgs, host: &Host<'_>) -> Result<(), BenchError> {
    let params = Params::resolve_with(args, ServerConfig::default().max_events_per_request)?;
    run_through_server(
        args,
        host,
        WorkloadName::HttpGroups,
        FsyncProbe::Skip,
        async |t: Target<'_>| Ok(vec![measure(&params, t.url, t.key, t.head).await?]),
    )
    .await
}

fn http_client(url: &str, key: Option<&str>) -> Result<Client, BenchError> {
    let mut b = Client::builder(url);
    if let Some(k) = key {
        b = b.api_key(k);
    }
    Ok(b.build()?)
}

/// Fills the events, then consumes them all through one group.
async fn measure(
    p: &Params,
    url: &str,
    key: Option<&str>,
    head: u64,
) -> Result<Measurement, BenchError> {
    let control = http_client(url, key)?;
    let run_id = payload::run_id();
    fill(&control, p, &payload::stream_prefix(&run_id)).await?;
    let name = GroupName::new(format!("bench-http-{run_id}"))?;
    let settings = GroupSettings {
        start: GroupStart::AfterPosition(Position(head)),
        strategy: Strategy::RoundRobin,
        max_in_flight: (p.batch as u32).clamp(1, strata_core::group::MAX_IN_FLIGHT_LIMIT),
        ..GroupSettings::new(GroupSource::All(ReadFilter::all()))
    };
    control.put_group(&name, &settings).await?;
    let began = Instant::now();
    let acked = Arc::new(AtomicU64::new(0));
    let (batch, total) = (p.batch, p.events);
    let tally = run_tasks(p.writers, |i| {
        let (name, acked) = (name.clone(), Arc::clone(&acked));
        let c = http_client(url, key);
        async move {
            let c = c?;
            let me = format!("c{i}");
            let mut t = Tally::default();
            while acked.load(Ordering::Relaxed) < total {
                let t0 = Instant::now();
                let got = c.read_group(&name, Some(&me), batch, READ_WAIT).await?;
                if got.deliveries.is_empty() {
                    continue;
                }
                let ids: Vec<u64> = got.deliveries.iter().map(|d| d.delivery_id).collect();
                let r = c.ack(&name, Some(&me), &ids).await?;
                t.latency.record(t0.elapsed());
                t.ops += 1;
                t.events += r.settled;
                acked.fetch_add(r.settled, Ordering::Relaxed);
            }
            Ok(t)
        }
    })
    .await?;
    let elapsed = began.elapsed();
    control.delete_group(&name).await?;
    Ok(Measurement {
        workload: None,
        variant: Some("round_robin"),
        op: "read+ack",
        writers: p.writers,
        batch: p.batch,
        events: tally.events,
        ops: tally.ops,
        elapsed,
        latency: tally.latency,
        syncs: None,
        errors: tally.errors,
        dataset_events: None,
        subscriber: None,
        pipeline: None,
    })
}

/// Appends `--events` small JSON events over `--streams` streams.
async fn fill(c: &Client, p: &Params, prefix: &str) -> Result<(), BenchError> {
    let mut done = 0u64;
    while done < p.events {
        let n = (p.events - done).min(FILL_EVENTS_PER_REQUEST);
        let mut parts: Vec<(StreamId, ExpectedVersion, Vec<NewEvent>)> = Vec::new();
        for i in done..done + n {
            let s = StreamId::new(format!("{prefix}{}", i % p.streams as u64))?;
            let e = NewEvent::json("Bench", &serde_json::json!({ "i": i }))?;
            match parts.iter_mut().find(|(id, _, _)| *id == s) {
                Some(part) => part.2.push(e),
                None => parts.push((s, ExpectedVersion::Any, vec![e])),
            }
        }
        c.append_multi(&parts).await?;
        done += n;
    }
    Ok(())
}
