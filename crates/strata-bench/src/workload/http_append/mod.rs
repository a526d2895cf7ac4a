//! `http-append`: the `append` workload through the HTTP API.
//!
//! `--writers` tasks, each with its own `reqwest::Client` (so its own
//! keep-alive connection and no shared pool lock), POST `--batch` ~200-byte
//! JSON events per request to `/streams/{random stream}` with
//! `expected_version` any. The body is written straight into one string per
//! request (no `serde` on the client's path): the load generator shares the
//! machine with the server, so its CPU per request counts.
//!
//! The server is `--server URL`, or else `strata serve` over `--store`
//! started as a child process ([`server_child`]; [`server_run`] holds what
//! every workload through HTTP does around its measurement). The run's result
//! is durable as the server's store makes it; `syncs` are the server's and
//! not visible here (the fdatasync probe still runs, in the store's
//! directory).
//!
//! With `--pipeline DEPTH` each writer instead keeps up to `DEPTH` requests
//! in flight on one HTTP/1.1 connection of its own, through the lean
//! client of [`pipelined`] (pipelining; `--pipeline 1` is that client one
//! request at a time). The result line's variant is then `pipelined`.
//!
//! Unless `--no-subscriber`, one SSE subscriber on
//! `/subscribe/all?after=<head at start>&prefix=<the run's streams>`
//! measures delivery latency (send time stamped in each event, see
//! [`crate::delivery`]) and checks every event arrives once and in position
//! order. If the server drops it as a slow consumer it reconnects with
//! `Last-Event-ID` (counted in `sub_reconnects`; see [`subscriber`]).

pub(crate) mod groups;
mod pipelined;
mod server_child;
pub(crate) mod server_run;
mod sse_scan;
mod subscriber;

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::header::CONTENT_TYPE;
use strata_server::ServerConfig;

use self::pipelined::{Endpoint, Pipeline, MAX_REFILL_BYTES};
use self::server_child::quote;
use self::server_run::{run_through_server, FsyncProbe, Target};
use self::subscriber::{Feed, HttpSubscriber};
use crate::args::{BenchArgs, Defaults, Params, WorkloadName};
use crate::context::{run_tasks, Tally};
use crate::delivery::{now_us, AckLog};
use crate::host::Host;
use crate::report::Measurement;
use crate::store_sub::WritersDone;
use crate::{payload, BenchError};

/// `http-append` defaults: 16 writers, one event per request, 50,000 events,
/// 1,000 streams.
pub const DEFAULTS: Defaults = Defaults {
    writers: 16,
    batch: 1,
    events: 50_000,
    streams: 1_000,
};

/// Longest one append request may take, in seconds (the server's own
/// request timeout is 30 s).
const REQUEST_TIMEOUT_SECS: u64 = 60;
/// Longest connecting may take, in seconds.
const CONNECT_TIMEOUT_SECS: u64 = 10;
/// Bytes reserved per event when a request body is built (an event's JSON
/// is ~[`payload::EVENT_DATA_BYTES`] of data plus its type).
const BODY_BYTES_PER_EVENT: usize = payload::EVENT_DATA_BYTES + 64;

/// Runs `strata bench http-append` start to end and reports the result.
pub async fn run(args: &BenchArgs, host: &Host<'_>) -> Result<(), BenchError> {
    if args.compress {
        return Err(
            "--compress is not an option of http-append (the server opens the store)".into(),
        );
    }
    let params = Params::resolve_with(args, ServerConfig::default().max_events_per_request)?;
    let pipeline = pipeline_depth(args)?;
    if let (Some(_), Some(url)) = (pipeline, args.server_url()) {
        // A URL the lean client cannot use fails before anything starts.
        Endpoint::parse(url, args.key.as_deref())?;
    }
    run_through_server(
        args,
        host,
        WorkloadName::HttpAppend,
        FsyncProbe::Run,
        async |t: Target<'_>| Ok(vec![measure(&params, pipeline, args.sse_batch, t).await?]),
    )
    .await
}

/// `--pipeline`, checked: requests in flight per connection, if pipelining.
fn pipeline_depth(args: &BenchArgs) -> Result<Option<usize>, BenchError> {
    match args.pipeline {
        None => Ok(None),
        Some(d) if (1..=pipelined::MAX_PIPELINE).contains(&d) => Ok(Some(d)),
        Some(d) => Err(format!(
            "--pipeline must be between 1 and {}, got {d}",
            pipelined::MAX_PIPELINE
        )
        .into()),
    }
}

/// A client: one keep-alive connection per writer, no Nagle delay.
/// `timeout` bounds each whole request (none for the subscription).
fn client(timeout: Option<Duration>) -> Result<reqwest::Client, BenchError> {
    let mut b = reqwest::Client::builder()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(1)
        .connect_timeout(Duration::from_secs(CONNECT_TIMEOUT_SECS));
    if let Some(t) = timeout {
        b = b.timeout(t);
    }
    Ok(b.build()?)
}

/// Appends `--events` through the server `t`, with the subscriber when
/// asked for (taking batched messages with `sse_batch`), `pipeline`
/// requests in flight per writer when given.
async fn measure(
    p: &Params,
    pipeline: Option<usize>,
    sse_batch: bool,
    t: Target<'_>,
) -> Result<Measurement, BenchError> {
    let (url, key, head) = (t.url, t.key, t.head);
    let batch = p.batch as u64;
    let total_events = p.events;
    let appends = total_events.div_ceil(batch);
    let run_id = payload::run_id();
    let prefix = payload::stream_prefix(&run_id);
    let (writers_done, done) = WritersDone::new();
    let subscriber = if p.subscriber {
        let feed = Feed {
            head,
            prefix: prefix.clone(),
            batch: sse_batch,
        };
        Some(HttpSubscriber::start(url, key, feed, total_events, done).await?)
    } else {
        None
    };
    let stamped = p.subscriber;
    // Parsed once: a writer only swaps the path per request (parsing the
    // whole URL, host included, every time costs more than the path).
    let base = reqwest::Url::parse(url).map_err(|e| format!("bad server URL {url}: {e}"))?;
    let load = Arc::new(Load {
        base_path: base.path().trim_end_matches('/').to_string(),
        base,
        key: key.map(str::to_string),
        pipeline: match pipeline {
            Some(depth) => Some((depth, Endpoint::parse(url, key)?)),
            None => None,
        },
        prefix,
        streams: p.streams,
        batch,
        total_events,
        appends,
        stamped,
        next_append: AtomicU64::new(0),
        acks: if stamped {
            AckLog::new(appends, total_events)
        } else {
            AckLog::default()
        },
    });
    let started = Instant::now();
    let written = run_tasks(p.writers, |writer| load.clone().write(writer)).await;
    let elapsed = started.elapsed();
    writers_done.done();
    let (tally, delivery) = match (written, subscriber) {
        (Ok(t), None) => (t, None),
        (Ok(t), Some(sub)) => {
            let mut d = sub.join().await?;
            d.add_after_ack(&load.acks, batch);
            (t, Some(d))
        }
        (Err(e), sub) => {
            // Dropping the subscriber stops its thread.
            drop(sub);
            return Err(e);
        }
    };
    Ok(Measurement {
        workload: None,
        variant: pipeline.map(|_| "pipelined"),
        op: "append",
        writers: p.writers,
        batch: p.batch,
        events: tally.events,
        ops: tally.ops,
        elapsed,
        latency: tally.latency,
        syncs: None,
        errors: tally.errors,
        dataset_events: None,
        subscriber: delivery,
        pipeline,
    })
}

/// What the writers share: where to append, how much, and the next append
/// to take.
struct Load {
    /// The server's base URL.
    base: reqwest::Url,
    /// Its path, without a trailing `/`.
    base_path: String,
    /// The API key, if any.
    key: Option<String>,
    /// Requests in flight per writer and where to send them, when
    /// pipelining.
    pipeline: Option<(usize, Endpoint)>,
    /// The run's stream-name prefix.
    prefix: String,
    /// Streams to spread appends over.
    streams: usize,
    /// Events per append.
    batch: u64,
    /// Events in all.
    total_events: u64,
    /// Appends in all.
    appends: u64,
    /// Whether events carry their send time (for the subscriber).
    stamped: bool,
    /// The next append to take.
    next_append: AtomicU64,
    /// When each append was acknowledged (when stamped).
    acks: AckLog,
}

impl Load {
    /// One writer: takes appends until none are left, on its own client.
    async fn write(self: Arc<Self>, writer: usize) -> Result<Tally, BenchError> {
        if let Some((depth, endpoint)) = &self.pipeline {
            return self.write_pipelined(writer, *depth, endpoint).await;
        }
        let client = client(Some(Duration::from_secs(REQUEST_TIMEOUT_SECS)))?;
        let mut rng = StdRng::seed_from_u64(writer as u64);
        let mut t = Tally::default();
        while let Some((i, first, n)) = self.take_append() {
            let mut stream_url = self.base.clone();
            stream_url.set_path(&format!(
                "{}/streams/{}{}",
                self.base_path,
                self.prefix,
                rng.gen_range(0..self.streams)
            ));
            let mut body = String::with_capacity(BODY_BYTES_PER_EVENT * n as usize + 64);
            let t0 = Instant::now();
            append_body(&mut body, first, n, self.stamped.then(now_us));
            self.post(&client, stream_url, body).await?;
            if self.stamped {
                self.acks.acked(i, now_us());
            }
            t.latency.record(t0.elapsed());
            t.ops += 1;
            t.events += n;
        }
        Ok(t)
    }

    /// The next append to send: its number, its first event and how many
    /// events it has; `None` when all are taken.
    fn take_append(&self) -> Option<(u64, u64, u64)> {
        let i = self.next_append.fetch_add(1, Ordering::Relaxed);
        if i >= self.appends {
            return None;
        }
        let first = i * self.batch;
        Some((i, first, self.batch.min(self.total_events - first)))
    }

    /// One writer over its own pipelined connection: refills the pipeline
    /// up to `depth` requests or [`MAX_REFILL_BYTES`] (one write), then
    /// takes the answers that arrived, until every append is answered.
    async fn write_pipelined(
        &self,
        writer: usize,
        depth: usize,
        endpoint: &Endpoint,
    ) -> Result<Tally, BenchError> {
        let timeout = Duration::from_secs(REQUEST_TIMEOUT_SECS);
        let connect = Duration::from_secs(CONNECT_TIMEOUT_SECS);
        let mut conn = Pipeline::connect(endpoint, connect, timeout).await?;
        let mut rng = StdRng::seed_from_u64(writer as u64);
        let mut t = Tally::default();
        let mut in_flight: VecDeque<(u64, u64, Instant)> = VecDeque::with_capacity(depth);
        let mut requests = Vec::new();
        let mut body = String::new();
        let mut stream = String::new();
        let mut more = true;
        loop {
            requests.clear();
            while more && in_flight.len() < depth && requests.len() < MAX_REFILL_BYTES {
                let Some((i, first, n)) = self.take_append() else {
                    more = false;
                    break;
                };
                let t0 = Instant::now();
                body.clear();
                append_body(&mut body, first, n, self.stamped.then(now_us));
                stream.clear();
                // Writing into a `String` cannot fail.
                let _ = write!(stream, "{}{}", self.prefix, rng.gen_range(0..self.streams));
                endpoint.write_append(&mut requests, &stream, body.as_bytes());
                in_flight.push_back((i, n, t0));
            }
            let Some(&(oldest, _, _)) = in_flight.front() else {
                return Ok(t);
            };
            let at = |e: BenchError| -> BenchError {
                format!("writer {writer}, append {oldest} (the oldest in flight): {e}").into()
            };
            if !requests.is_empty() {
                conn.send(&requests).await.map_err(at)?;
            }
            let answered = conn.take_answers(in_flight.len()).await.map_err(at)?;
            for (i, n, t0) in in_flight.drain(..answered) {
                if self.stamped {
                    self.acks.acked(i, now_us());
                }
                t.latency.record(t0.elapsed());
                t.ops += 1;
                t.events += n;
            }
        }
    }

    /// Sends one append request; an error unless the server accepted it.
    async fn post(
        &self,
        client: &reqwest::Client,
        stream_url: reqwest::Url,
        body: String,
    ) -> Result<(), BenchError> {
        let mut req = client
            .post(stream_url.clone())
            .header(CONTENT_TYPE, "application/json")
            .body(body);
        if let Some(k) = &self.key {
            req = req.bearer_auth(k);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| format!("POST {stream_url}: {e}"))?;
        let status = resp.status();
        let answer = resp
            .bytes()
            .await
            .map_err(|e| format!("POST {stream_url}: reading the answer: {e}"))?;
        if !status.is_success() {
            return Err(format!("POST {stream_url} answered {status}: {}", quote(&answer)).into());
        }
        Ok(())
    }
}

/// Writes the body of `POST /streams/{s}`: events `first..first + n`,
/// `expected_version` any, each event's data stamped with `sent_us` when given.
fn append_body(out: &mut String, first: u64, n: u64, sent_us: Option<u64>) {
    out.push_str(r#"{"expected_version":"any","events":["#);
    for seq in first..first + n {
        if seq > first {
            out.push(',');
        }
        out.push_str(r#"{"type":""#);
        out.push_str(payload::EVENT_TYPE);
        out.push_str(r#"","data":"#);
        payload::write_data(out, seq, sent_us);
        out.push('}');
    }
    out.push_str("]}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_bodies_are_the_api_shape_with_stamped_events() {
        let mut body = String::new();
        append_body(&mut body, 40, 3, Some(777));
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["expected_version"], "any");
        let events = v["events"].as_array().unwrap();
        assert_eq!(events.len(), 3);
        for (i, e) in events.iter().enumerate() {
            assert_eq!(e["type"], payload::EVENT_TYPE);
            assert_eq!(e["data"]["seq"], 40 + i as u64);
            assert_eq!(e["data"]["sent_us"], 777);
        }
        assert!(
            body.len() <= BODY_BYTES_PER_EVENT * 3 + 64,
            "{}",
            body.len()
        );
        let mut plain = String::new();
        append_body(&mut plain, 0, 1, None);
        let v: serde_json::Value = serde_json::from_str(&plain).unwrap();
        assert!(v["events"][0]["data"].get("sent_us").is_none());
    }
}
