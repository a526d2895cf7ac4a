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
//! started as a child process ([`super::server_child`]). The run's result
//! is durable as the server's store makes it; `syncs` are the server's and
//! not visible here (the fdatasync probe still runs, in the store's
//! directory).
//!
//! Unless `--no-subscriber`, one SSE subscriber on
//! `/subscribe/all?after=<head at start>&prefix=<the run's streams>`
//! measures delivery latency (send time stamped in each event, see
//! [`super::delivery`]) and checks every event arrives once and in position
//! order. If the server drops it as a slow consumer it reconnects with
//! `Last-Event-ID` (counted in `sub_reconnects`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::header::CONTENT_TYPE;
use strata_server::ServerConfig;
use tokio::sync::{oneshot, watch};

use super::delivery::{now_us, stamps, AckLog, Delivery, DeliveryCheck};
use super::server_child::{health, quote, ServerChild};
use super::store_sub::{drain_deadline, WritersDone};
use super::target::Target;
use super::{
    payload, report, run_tasks, BenchArgs, BenchError, Defaults, Measurement, Params, Tally,
    WorkloadName,
};
use strata_client::sse::SseParser;
use crate::store_spec::StoreSpec;

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
/// Most times the subscriber reconnects after the server dropped it as a
/// slow consumer. The server drops a subscriber as soon as
/// `subscription_buffer_messages` (1,024) messages wait for it, and it fills
/// that buffer a store page (512 events) at a time without waiting, so under
/// 100,000s of events per second on a busy machine drops are routine; each
/// reconnect still delivers more events, see the next limit.
const MAX_SUBSCRIBER_RECONNECTS: u64 = 10_000;
/// Most reconnects in a row that deliver no new event before the subscriber
/// gives up.
const MAX_SUBSCRIBER_RECONNECTS_WITHOUT_PROGRESS: u64 = 10;
/// Bytes reserved per event when a request body is built (an event's JSON
/// is ~[`payload::EVENT_DATA_BYTES`] of data plus its type).
const BODY_BYTES_PER_EVENT: usize = payload::EVENT_DATA_BYTES + 64;

/// Runs `strata bench http-append` start to end and prints the result.
pub async fn run(args: &BenchArgs) -> Result<(), BenchError> {
    if args.compress {
        return Err(
            "--compress is not an option of http-append (the server opens the store)".into(),
        );
    }
    let params = Params::resolve_with(args, ServerConfig::default().max_events_per_request)?;
    let key = args.key.as_deref();
    let control = client(None)?;
    let (target, probe_tmp) = match &args.server {
        Some(_) if args.in_place || args.keep => {
            return Err(
                "--in-place and --keep are about the store the bench creates, not --server's"
                    .into(),
            )
        }
        Some(_) => (None, Some(tempfile::tempdir()?)),
        None => (Some(Target::prepare(args)?), None),
    };
    let probe_dir = match (&target, &probe_tmp) {
        (Some(t), _) => t.probe_dir().to_path_buf(),
        (None, Some(d)) => d.path().to_path_buf(),
        (None, None) => std::env::temp_dir(),
    };
    if let Some(dir) = target.as_ref().and_then(Target::log_dir) {
        eprintln!(
            "benchmarking the log store in {} through a child `strata serve`",
            dir.display()
        );
    }
    if let Some(schema) = target.as_ref().and_then(Target::pg_schema) {
        eprintln!(
            "benchmarking the PostgreSQL store in schema {schema} through a child `strata serve`"
        );
    }
    let probe = super::probe_fsync(&probe_dir, args.fsync_probe_ms).await?;

    let durability = args.durability.to_string();
    let (server, url, head, store_label, durability_label) = match &args.server {
        Some(url) => {
            let url = url.trim_end_matches('/').to_string();
            let head = health(&control, &url, key).await?;
            (None, url.clone(), head, url, "n/a".to_string())
        }
        None => {
            let (spec, store_label, durability_label) = match &target {
                Some(t) => (
                    t.serve_spec(),
                    t.spec().to_string(),
                    match t.spec() {
                        StoreSpec::Log(_) => durability.clone(),
                        _ => "n/a".to_string(),
                    },
                ),
                None => return Err("http-append needs --server or a store".into()),
            };
            let (child, head) = match ServerChild::start(&spec, &durability, &control, key).await {
                Ok(s) => s,
                Err(e) => {
                    if let Err(f) = t_finish(target, args.keep).await {
                        eprintln!("warning: {f}");
                    }
                    return Err(e);
                }
            };
            if let Some(pid) = child.pid() {
                eprintln!("strata serve (pid {pid}) is up on {}", child.url());
            }
            let url = child.url().to_string();
            (Some(child), url, head, store_label, durability_label)
        }
    };

    let outcome = measure(&params, &url, key, head).await;
    let stopped = match server {
        Some(s) => s.stop().await,
        None => Ok(()),
    };
    let kept = t_finish(target, args.keep).await;
    let m = outcome?;
    stopped?;
    let results = vec![report::BenchResult::new(
        WorkloadName::HttpAppend.as_str(),
        store_label,
        &durability_label,
        m,
        probe.as_ref(),
    )];
    report::print(&results, probe.as_ref(), args.json);
    match kept {
        Ok(Some(place)) => eprintln!("kept the benchmark's data in {place}"),
        Ok(None) => {}
        Err(e) => eprintln!("warning: {e}"),
    }
    Ok(())
}

async fn t_finish(target: Option<Target>, keep: bool) -> Result<Option<String>, String> {
    match target {
        Some(t) => t.finish(keep).await,
        None => Ok(None),
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

/// Appends `--events` through the server at `url` whose head is `head`,
/// with the subscriber when asked for.
async fn measure(
    p: &Params,
    url: &str,
    key: Option<&str>,
    head: u64,
) -> Result<Measurement, BenchError> {
    let batch = p.batch as u64;
    let total_events = p.events;
    let appends = total_events.div_ceil(batch);
    let run_id = payload::run_id();
    let prefix = payload::stream_prefix(&run_id);
    let (writers_done, done) = WritersDone::new();
    let subscriber = if p.subscriber {
        Some(HttpSubscriber::start(url, key, head, &prefix, total_events, done).await?)
    } else {
        None
    };
    let stamped = p.subscriber;
    let acks = Arc::new(if stamped {
        AckLog::new(appends, total_events)
    } else {
        AckLog::default()
    });
    let next_append = Arc::new(AtomicU64::new(0));
    // Parsed once: a writer only swaps the path per request (parsing the
    // whole URL, host included, every time costs more than the path).
    let base = reqwest::Url::parse(url).map_err(|e| format!("bad server URL {url}: {e}"))?;
    let base_path: Arc<str> = Arc::from(base.path().trim_end_matches('/'));
    let base = Arc::new(base);
    let key: Option<Arc<str>> = key.map(Arc::from);
    let prefix: Arc<str> = Arc::from(prefix);
    let started = Instant::now();
    let written = run_tasks(p.writers, |writer| {
        let next_append = next_append.clone();
        let acks = acks.clone();
        let base = base.clone();
        let base_path = base_path.clone();
        let key = key.clone();
        let prefix = prefix.clone();
        let streams = p.streams;
        async move {
            let client = client(Some(Duration::from_secs(REQUEST_TIMEOUT_SECS)))?;
            let mut rng = StdRng::seed_from_u64(writer as u64);
            let mut t = Tally::default();
            loop {
                let i = next_append.fetch_add(1, Ordering::Relaxed);
                if i >= appends {
                    break;
                }
                let first = i * batch;
                let n = batch.min(total_events - first);
                let mut stream_url = reqwest::Url::clone(&base);
                stream_url.set_path(&format!(
                    "{base_path}/streams/{prefix}{}",
                    rng.gen_range(0..streams)
                ));
                let mut body = String::with_capacity(BODY_BYTES_PER_EVENT * n as usize + 64);
                let t0 = Instant::now();
                append_body(&mut body, first, n, stamped.then(now_us));
                let mut req = client
                    .post(stream_url.clone())
                    .header(CONTENT_TYPE, "application/json")
                    .body(body);
                if let Some(k) = &key {
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
                    return Err(
                        format!("POST {stream_url} answered {status}: {}", quote(&answer)).into(),
                    );
                }
                if stamped {
                    acks.acked(i, now_us());
                }
                t.latency.record(t0.elapsed());
                t.ops += 1;
                t.events += n;
            }
            Ok(t)
        }
    })
    .await;
    let elapsed = started.elapsed();
    writers_done.done();
    let (tally, delivery) = match (written, subscriber) {
        (Ok(t), None) => (t, None),
        (Ok(t), Some(sub)) => {
            let mut d = sub.join().await?;
            d.add_after_ack(&acks, batch);
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
        variant: None,
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
    })
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

/// Opens `/subscribe/all` after `after` (or, resuming, after `Last-Event-ID`)
/// for the streams starting with `prefix`; the response once it is 200.
async fn open_subscription(
    client: &reqwest::Client,
    url: &str,
    key: Option<&str>,
    after: u64,
    prefix: &str,
    resume: Option<u64>,
) -> Result<reqwest::Response, BenchError> {
    let sub_url = format!("{url}/subscribe/all?after={after}&prefix={prefix}");
    let mut req = client.get(&sub_url);
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    if let Some(last) = resume {
        req = req.header("last-event-id", last.to_string());
    }
    let resp = req
        .send()
        .await
        .map_err(|e| format!("GET {sub_url}: {e}"))?;
    let status = resp.status();
    if !status.is_success() {
        let body = resp.bytes().await.unwrap_or_default();
        return Err(format!("GET {sub_url} answered {status}: {}", quote(&body)).into());
    }
    Ok(resp)
}

/// The SSE subscriber, on its own thread (see [`HttpSubscriber::start`]).
struct HttpSubscriber {
    result: oneshot::Receiver<Result<Delivery, BenchError>>,
    /// Dropping it stops the thread's loop.
    _cancel: oneshot::Sender<()>,
}

impl HttpSubscriber {
    /// Opens the subscription (so it is live before the first append) on a
    /// thread of its own with a single-threaded runtime, which reads it until
    /// `expected` events arrived. Its own thread because the server drops a
    /// subscriber whose buffer of `subscription_buffer_messages` fills: a
    /// reader queued behind the writer tasks of a shared runtime on a busy
    /// machine would be dropped for scheduling delays alone.
    async fn start(
        url: &str,
        key: Option<&str>,
        head: u64,
        prefix: &str,
        expected: u64,
        done: watch::Receiver<bool>,
    ) -> Result<HttpSubscriber, BenchError> {
        let (ready_tx, ready_rx) = oneshot::channel::<Result<(), BenchError>>();
        let (result_tx, result_rx) = oneshot::channel();
        let (cancel_tx, cancel_rx) = oneshot::channel::<()>();
        let url = url.to_string();
        let key = key.map(str::to_string);
        let prefix = prefix.to_string();
        std::thread::Builder::new()
            .name("bench-subscriber".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx
                            .send(Err(
                                format!("cannot start the subscriber's runtime: {e}").into()
                            ));
                        return;
                    }
                };
                rt.block_on(async move {
                    let sub = Subscriber::open(url, key, head, prefix).await;
                    let sub = match sub {
                        Ok(s) => {
                            let _ = ready_tx.send(Ok(()));
                            s
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    tokio::select! {
                        r = sub.run(expected, done) => {
                            let _ = result_tx.send(r);
                        }
                        _ = cancel_rx => {}
                    }
                });
            })
            .map_err(|e| format!("cannot start the subscriber thread: {e}"))?;
        ready_rx
            .await
            .map_err(|_| "the subscriber thread stopped before subscribing")??;
        Ok(HttpSubscriber {
            result: result_rx,
            _cancel: cancel_tx,
        })
    }

    /// Waits for what the subscriber measured.
    async fn join(self) -> Result<Delivery, BenchError> {
        self.result
            .await
            .map_err(|_| "the subscriber thread stopped without a result")?
    }
}

/// An open `/subscribe/all` and what it needs to reconnect.
struct Subscriber {
    client: reqwest::Client,
    resp: reqwest::Response,
    url: String,
    key: Option<String>,
    head: u64,
    prefix: String,
}

impl Subscriber {
    async fn open(
        url: String,
        key: Option<String>,
        head: u64,
        prefix: String,
    ) -> Result<Subscriber, BenchError> {
        let client = client(None)?;
        let resp = open_subscription(&client, &url, key.as_deref(), head, &prefix, None).await?;
        Ok(Subscriber {
            client,
            resp,
            url,
            key,
            head,
            prefix,
        })
    }

    /// Reads until `expected` events arrived (or the drain deadline after
    /// `done` passed), reconnecting when dropped as a slow consumer.
    async fn run(
        mut self,
        expected: u64,
        done: watch::Receiver<bool>,
    ) -> Result<Delivery, BenchError> {
        let mut check = DeliveryCheck::new(expected);
        let mut parser = SseParser::new();
        let mut messages = Vec::new();
        let mut last_drop_position = None;
        let mut stalled = 0u64;
        let deadline = drain_deadline(done);
        tokio::pin!(deadline);
        while !check.is_complete() {
            let chunk = tokio::select! {
                chunk = self.resp.chunk() => chunk,
                () = &mut deadline => break,
            };
            let chunk = chunk.map_err(|e| format!("reading the subscription: {e}"))?;
            let Some(chunk) = chunk else {
                return Err("the server ended the subscription without an error event".into());
            };
            let now = now_us();
            parser.feed(&chunk, &mut messages)?;
            let mut dropped = None;
            for m in messages.drain(..) {
                match m.event.as_deref() {
                    None => {
                        let position = m
                            .id
                            .as_deref()
                            .and_then(|id| id.parse::<u64>().ok())
                            .ok_or_else(|| {
                                format!("a subscription event without a position id: {}", m.data)
                            })?;
                        check.record(position, stamps(m.data.as_bytes()), now)?;
                    }
                    Some("error") => dropped = Some(m.data),
                    Some(_) => {}
                }
            }
            if let Some(error) = dropped {
                let slow = error.contains("\"slow_consumer\"");
                let progressed = check.last_position() != last_drop_position;
                stalled = if progressed { 0 } else { stalled + 1 };
                last_drop_position = check.last_position();
                if !slow
                    || check.reconnects() >= MAX_SUBSCRIBER_RECONNECTS
                    || stalled >= MAX_SUBSCRIBER_RECONNECTS_WITHOUT_PROGRESS
                {
                    return Err(format!(
                        "the server ended the subscription after {} reconnects: {error}",
                        check.reconnects()
                    )
                    .into());
                }
                let resume = check.last_position().unwrap_or(self.head);
                self.resp = open_subscription(
                    &self.client,
                    &self.url,
                    self.key.as_deref(),
                    self.head,
                    &self.prefix,
                    Some(resume),
                )
                .await?;
                parser = SseParser::new();
                check.reconnected();
            }
        }
        Ok(check.finish()?)
    }
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
