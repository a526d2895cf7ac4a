//! The SSE subscriber of `http-append`: one `/subscribe/all` reader on a
//! thread of its own, measuring delivery latency and checking every event
//! arrives once and in position order; it reconnects with `Last-Event-ID`
//! when the server drops it as a slow consumer.

use strata_wire::SSE_BATCH_EVENT;
use tokio::sync::{oneshot, watch};

use super::client;
use super::server_child::quote;
use super::sse_scan::SseScanner;
use crate::delivery::{now_us, stamps, Delivery, DeliveryCheck};
use crate::store_sub::drain_deadline;
use crate::BenchError;

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

/// What the subscriber follows: the events after `head` of the streams
/// starting with `prefix`, several to a message with `batch`.
pub(super) struct Feed {
    /// The store's head before the run.
    pub head: u64,
    /// The run's stream prefix.
    pub prefix: String,
    /// Whether to ask for batched messages (`batch=true`).
    pub batch: bool,
}

/// Opens `/subscribe/all` for `feed` (resuming after `Last-Event-ID` when
/// given); the response once it is 200.
async fn open_subscription(
    client: &reqwest::Client,
    url: &str,
    key: Option<&str>,
    feed: &Feed,
    resume: Option<u64>,
) -> Result<reqwest::Response, BenchError> {
    let Feed {
        head,
        prefix,
        batch,
    } = feed;
    let mut sub_url = format!("{url}/subscribe/all?after={head}&prefix={prefix}");
    if *batch {
        sub_url.push_str("&batch=true");
    }
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

/// What the subscriber reads of each event of a batched message.
#[derive(serde::Deserialize)]
struct BatchedEvent<'a> {
    position: u64,
    #[serde(borrow)]
    data: &'a serde_json::value::RawValue,
}

/// The SSE subscriber, on its own thread (see [`HttpSubscriber::start`]).
pub(super) struct HttpSubscriber {
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
    pub(super) async fn start(
        url: &str,
        key: Option<&str>,
        feed: Feed,
        expected: u64,
        done: watch::Receiver<bool>,
    ) -> Result<HttpSubscriber, BenchError> {
        let (ready_tx, ready_rx) = oneshot::channel::<Result<(), BenchError>>();
        let (result_tx, result_rx) = oneshot::channel();
        let (cancel_tx, cancel_rx) = oneshot::channel::<()>();
        let url = url.to_string();
        let key = key.map(str::to_string);
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
                    let sub = Subscriber::open(url, key, feed).await;
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
    pub(super) async fn join(self) -> Result<Delivery, BenchError> {
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
    feed: Feed,
}

impl Subscriber {
    async fn open(url: String, key: Option<String>, feed: Feed) -> Result<Subscriber, BenchError> {
        let client = client(None)?;
        let resp = open_subscription(&client, &url, key.as_deref(), &feed, None).await?;
        Ok(Subscriber {
            client,
            resp,
            url,
            key,
            feed,
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
        let mut scanner = SseScanner::default();
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
            let mut dropped = None;
            scanner.feed(&chunk, |m| {
                match m.event {
                    None => {
                        let position =
                            m.id.and_then(|id| std::str::from_utf8(id).ok())
                                .and_then(|id| id.parse::<u64>().ok())
                                .ok_or_else(|| {
                                    format!(
                                        "a subscription event without a position id: {}",
                                        String::from_utf8_lossy(&m.data)
                                    )
                                })?;
                        check.record(position, stamps(&m.data), now)?;
                    }
                    Some(event) if event == SSE_BATCH_EVENT.as_bytes() => {
                        let batch: Vec<BatchedEvent<'_>> = serde_json::from_slice(&m.data)
                            .map_err(|e| format!("a batch of events that does not parse: {e}"))?;
                        for e in batch {
                            check.record(e.position, stamps(e.data.get().as_bytes()), now)?;
                        }
                    }
                    Some(b"error") => dropped = Some(String::from_utf8_lossy(&m.data).into_owned()),
                    Some(_) => {}
                }
                Ok(())
            })?;
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
                let resume = check.last_position().unwrap_or(self.feed.head);
                self.resp = open_subscription(
                    &self.client,
                    &self.url,
                    self.key.as_deref(),
                    &self.feed,
                    Some(resume),
                )
                .await?;
                scanner = SseScanner::default();
                check.reconnected();
            }
        }
        Ok(check.finish()?)
    }
}
