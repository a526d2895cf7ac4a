//! A consumer group pushed over server-sent events
//! (`GET /groups/{group}/subscribe`): the connection is one consumer.

use std::collections::VecDeque;
use std::time::Duration;

use strata_core::group::{Delivery, GroupName};
use strata_wire::{DeliveryOut, SubscribeHello};

use crate::client::{check_status, decode, Client};
use crate::error::{transport, ClientError};
use crate::sse::{SseMessage, SseParser};
use crate::subscription::SSE_IDLE_TIMEOUT_MS;

/// An open push subscription to a group. Ack what it yields with
/// [`Client::ack`] and [`GroupSubscription::consumer`]; at most the group's
/// `max_in_flight` messages come unacked. Dropping it closes the
/// connection, and the consumer leaves the group.
pub struct GroupSubscription {
    url: reqwest::Url,
    response: reqwest::Response,
    parser: SseParser,
    ready: VecDeque<SseMessage>,
    consumer: String,
}

impl Client {
    /// Opens a push subscription to `group`; it has announced its consumer
    /// name when this returns.
    ///
    /// ```no_run
    /// # async fn f(client: strata_client::Client) -> Result<(), strata_client::ClientError> {
    /// let group = strata_core::group::GroupName::new("billing").unwrap();
    /// let mut sub = client.subscribe_group(&group).await?;
    /// while let Some(d) = sub.next().await? {
    ///     client.ack(&group, Some(sub.consumer()), &[d.delivery_id]).await?;
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn subscribe_group(
        &self,
        group: &GroupName,
    ) -> Result<GroupSubscription, ClientError> {
        let url = self.url(&["groups", group.as_str(), "subscribe"]);
        let response = self
            .request(reqwest::Method::GET, url.clone())
            .header(reqwest::header::ACCEPT, "text/event-stream")
            .send()
            .await
            .map_err(|e| transport(&url, &e))?;
        let response = check_status(response, &url).await?;
        let mut sub = GroupSubscription {
            url,
            response,
            parser: SseParser::new(),
            ready: VecDeque::new(),
            consumer: String::new(),
        };
        let hello = sub.next_message().await?.ok_or_else(|| {
            decode(
                &sub.url,
                "the subscription ended before naming its consumer".into(),
            )
        })?;
        if hello.event.as_deref() != Some("consumer") {
            return Err(decode(
                &sub.url,
                format!("first event is {:?}, not `consumer`", hello.event),
            ));
        }
        let hello: SubscribeHello =
            serde_json::from_str(&hello.data).map_err(|e| decode(&sub.url, e.to_string()))?;
        sub.consumer = hello.consumer;
        Ok(sub)
    }
}

impl GroupSubscription {
    /// The consumer name this connection reads as.
    pub fn consumer(&self) -> &str {
        &self.consumer
    }

    /// The next leased message; `None` when the server closed the stream.
    /// A final `error` event is [`ClientError::Ended`].
    pub async fn next(&mut self) -> Result<Option<Delivery>, ClientError> {
        let m = loop {
            match self.next_message().await? {
                None => return Ok(None),
                // A heartbeat.
                Some(m) if m.event.is_none() && m.data.is_empty() => continue,
                Some(m) => break m,
            }
        };
        match m.event.as_deref() {
            // `message` is the default type: the parser reports it as `None`.
            None | Some("message") => {
                let out: DeliveryOut<'static> =
                    serde_json::from_str(&m.data).map_err(|e| decode(&self.url, e.to_string()))?;
                let d = out
                    .into_delivery()
                    .map_err(|e| decode(&self.url, e.to_string()))?;
                Ok(Some(d))
            }
            Some("error") => {
                let v: serde_json::Value =
                    serde_json::from_str(&m.data).map_err(|e| decode(&self.url, e.to_string()))?;
                Err(ClientError::Ended {
                    kind: v["error"].as_str().unwrap_or("unknown").to_owned(),
                    message: v["message"].as_str().unwrap_or_default().to_owned(),
                })
            }
            other => Err(decode(&self.url, format!("unexpected event {other:?}"))),
        }
    }

    async fn next_message(&mut self) -> Result<Option<SseMessage>, ClientError> {
        loop {
            if let Some(m) = self.ready.pop_front() {
                return Ok(Some(m));
            }
            let chunk = tokio::time::timeout(
                Duration::from_millis(SSE_IDLE_TIMEOUT_MS),
                self.response.chunk(),
            )
            .await
            .map_err(|_| ClientError::Transport {
                url: self.url.to_string(),
                reason: format!("the subscription was silent for {SSE_IDLE_TIMEOUT_MS} ms (not even a heartbeat)"),
            })?
            .map_err(|e| transport(&self.url, &e))?;
            let Some(bytes) = chunk else {
                return Ok(None);
            };
            let mut parsed = Vec::new();
            self.parser
                .feed(&bytes, &mut parsed)
                .map_err(|e| decode(&self.url, e.to_string()))?;
            self.ready.extend(parsed);
        }
    }
}
