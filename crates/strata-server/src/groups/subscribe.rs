//! `GET /groups/{group}/subscribe`: a group pushed as server-sent events.
//!
//! The connection is one consumer, named `sse-<uuid>` and announced in the
//! first event (`event: consumer`, `{"consumer": name}`). Each leased
//! message follows as `event: message` with `{delivery_id, delivery_count,
//! event}`; at most the group's `max_in_flight` are unsettled at once, so
//! the client acks (`POST /groups/{group}/ack` with that consumer name) to
//! receive more. Closing the connection, or the server shutting down, makes
//! the consumer leave: its unsettled messages go to the others at once. The
//! connection counts against the server's subscription limits.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use bytes::Bytes;
use strata_core::group::{ConsumerGroups, ConsumerId, GroupName, MAX_READ_MESSAGES};
use strata_wire::{DeliveryOut, SubscribeHello};
use tokio::sync::mpsc;

use super::{groups_of, not_found, require_consume, GroupPath};
use crate::auth::Access;
use crate::error::ApiError;
use crate::openapi::ErrorBody;
use crate::sse;
use crate::state::AppState;
use crate::subscribe::{permit, Permits, ShutdownSignal};

/// The comment sent when a read came back empty (keeps proxies from
/// closing an idle connection).
const HEARTBEAT: &[u8] = b": heartbeat\n\n";

/// The prefix of a push consumer's name.
pub const SSE_CONSUMER_PREFIX: &str = "sse-";

/// `GET /groups/{group}/subscribe`.
#[utoipa::path(
    get,
    path = "/groups/{group}/subscribe",
    tag = "groups",
    params(("group" = String, Path, description = "The group's name")),
    responses(
        (status = 200, description = "Server-sent events: `consumer` first, then `message`s", content_type = "text/event-stream"),
        (status = 401, description = "No or unknown API key", body = ErrorBody),
        (status = 403, description = "The key cannot read the group's source", body = ErrorBody),
        (status = 404, description = "No such group", body = ErrorBody),
        (status = 429, description = "The key's subscription limit", body = ErrorBody),
        (status = 503, description = "The server's subscription limit", body = ErrorBody)
    )
)]
pub(crate) async fn subscribe(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    GroupPath(name): GroupPath,
    shutdown: Option<Extension<ShutdownSignal>>,
) -> Result<Response, ApiError> {
    let groups = groups_of(&state)?;
    require_consume(&access, groups.as_ref(), &name).await?;
    if groups.group_status(&name).await?.is_none() {
        return Err(not_found(&name));
    }
    let permits = permit(&state, &access)?;
    let consumer = ConsumerId::new(format!(
        "{SSE_CONSUMER_PREFIX}{}",
        strata_core::EventId::new()
    ))?;
    let capacity = state.config.subscription_buffer_messages.max(1);
    let (tx, rx) = mpsc::channel::<Bytes>(capacity);
    let pump = Pump {
        groups,
        name,
        consumer,
        wait: Duration::from_millis(state.config.heartbeat_interval_ms.max(1)),
        tx,
        _permits: permits,
    };
    tokio::spawn(pump.run(shutdown.map(|e| e.0)));
    Ok(response(rx))
}

fn response(rx: mpsc::Receiver<Bytes>) -> Response {
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        let bytes = rx.recv().await?;
        Some((Ok::<Bytes, Infallible>(bytes), rx))
    });
    (
        [
            (CONTENT_TYPE, "text/event-stream"),
            (CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}

/// The task behind one push connection.
struct Pump {
    groups: Arc<dyn ConsumerGroups>,
    name: GroupName,
    consumer: ConsumerId,
    /// How long one read waits before a heartbeat.
    wait: Duration,
    tx: mpsc::Sender<Bytes>,
    _permits: Permits,
}

impl Pump {
    async fn run(self, shutdown: Option<ShutdownSignal>) {
        let mut shutdown = shutdown;
        let stopping = async {
            match shutdown.as_mut() {
                Some(s) => s.wait().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = self.deliver() => {}
            () = self.tx.closed() => {}
            () = stopping => {
                let end = sse::frame(Some("error"), None, r#"{"error":"shutting_down","message":"the server is shutting down"}"#);
                let _ = self.tx.try_send(Bytes::from(end));
            }
        }
        if let Err(e) = self.groups.leave(&self.name, &self.consumer).await {
            tracing::warn!(group = %self.name, consumer = %self.consumer, error = %e, "leaving a group failed");
        }
    }

    /// Sends the hello, then leased messages until the client goes or a
    /// read fails (then a final `error` event).
    async fn deliver(&self) {
        let hello = SubscribeHello {
            consumer: self.consumer.as_str().to_owned(),
        };
        if !self.send_json(Some("consumer"), &hello).await {
            return;
        }
        loop {
            let read = self
                .groups
                .read(&self.name, &self.consumer, MAX_READ_MESSAGES, self.wait)
                .await;
            let deliveries = match read {
                Ok(d) => d,
                Err(e) => {
                    let body = serde_json::json!({"error": e.kind(), "message": e.to_string()});
                    self.send_json(Some("error"), &body).await;
                    return;
                }
            };
            if deliveries.is_empty() && self.tx.send(Bytes::from_static(HEARTBEAT)).await.is_err() {
                return;
            }
            for d in &deliveries {
                if !self
                    .send_json(Some("message"), &DeliveryOut::from_delivery(d))
                    .await
                {
                    return;
                }
            }
        }
    }

    /// Sends one event; false when the client is gone.
    async fn send_json<T: serde::Serialize>(&self, event: Option<&str>, value: &T) -> bool {
        let data = match serde_json::to_string(value) {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "encoding a group message failed");
                return false;
            }
        };
        self.tx
            .send(Bytes::from(sse::frame(event, None, &data)))
            .await
            .is_ok()
    }
}
