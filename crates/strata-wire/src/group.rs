//! Consumer groups on the wire: `/groups/...` (`docs/http-api.md`,
//! "Consumer groups").
//!
//! A group's definition is [`GroupSettings`] and its status
//! [`GroupStatus`], both serialized by `strata-core` itself; this module
//! adds the request bodies and the answers that carry events.
//!
//! ```
//! let body: strata_wire::GroupReadBody = serde_json::from_str(r#"{"max": 10}"#).unwrap();
//! assert_eq!(body.max, 10);
//! assert_eq!(body.wait_ms, 0);
//! assert!(body.consumer.is_none());
//! ```

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use strata_core::group::{Delivery, DeliveryId, NackAction, ParkedMessage};

pub use strata_core::group::{GroupSettings, GroupStatus, SettleReport};

use crate::event::WireEvent;

/// [`GroupReadBody::max`] when the body leaves it out.
pub const DEFAULT_GROUP_READ_MAX: usize = 100;
/// [`ParkedQuery::limit`] and [`ReplayBody::limit`] when left out.
pub const DEFAULT_PARKED_LIMIT: usize = 100;
/// The most parked messages one `GET /groups/{group}/parked` or one replay
/// may name.
pub const MAX_PARKED_LIMIT: usize = 10_000;

fn default_read_max() -> usize {
    DEFAULT_GROUP_READ_MAX
}
fn default_parked_limit() -> usize {
    DEFAULT_PARKED_LIMIT
}

/// Answer of `GET /groups`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GroupList {
    /// Every group's status, by name.
    pub groups: Vec<GroupStatus>,
}

/// Body of `POST /groups/{group}/read`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct GroupReadBody {
    /// The most messages to lease (at most the consumer's free in-flight
    /// room, and at most `strata_core::group::MAX_READ_MESSAGES`).
    #[serde(default = "default_read_max")]
    pub max: usize,
    /// How long to wait for a first message, in milliseconds (at most
    /// `strata_core::group::MAX_READ_WAIT`); 0 answers at once.
    #[serde(default)]
    pub wait_ms: u64,
    /// The consumer reading; the server picks one per API key when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer: Option<String>,
}

/// One leased message.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DeliveryOut<'a> {
    /// What settles this delivery (`ack` / `nack` ids).
    pub delivery_id: DeliveryId,
    /// 1 on the first delivery, one more per redelivery.
    pub delivery_count: u32,
    /// The event, in the shape reads and subscriptions use.
    pub event: WireEvent<'a>,
}

impl<'a> DeliveryOut<'a> {
    /// The wire form of a delivery.
    pub fn from_delivery(d: &'a Delivery) -> Self {
        DeliveryOut {
            delivery_id: d.delivery_id,
            delivery_count: d.delivery_count,
            event: WireEvent::from_recorded(&d.event),
        }
    }

    /// The delivery as the library types it.
    pub fn into_delivery(self) -> Result<Delivery, crate::WireError> {
        Ok(Delivery {
            delivery_id: self.delivery_id,
            delivery_count: self.delivery_count,
            event: self.event.into_recorded()?,
        })
    }
}

/// Answer of `POST /groups/{group}/read`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GroupReadOut<'a> {
    /// The consumer the messages are leased to: name it when settling.
    pub consumer: Cow<'a, str>,
    /// The leased messages, possibly none.
    pub messages: Vec<DeliveryOut<'a>>,
}

/// Body of `POST /groups/{group}/ack`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AckBody {
    /// The `delivery_id`s to ack (at most `strata_core::group::MAX_SETTLE_IDS`).
    pub ids: Vec<DeliveryId>,
    /// The consumer holding them; the server's per-key default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer: Option<String>,
}

/// Body of `POST /groups/{group}/nack`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NackBody {
    /// The `delivery_id`s to nack (at most `strata_core::group::MAX_SETTLE_IDS`).
    pub ids: Vec<DeliveryId>,
    /// `retry`, `park` or `skip`.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub action: NackAction,
    /// Why (kept with a parked message; at most
    /// `strata_core::group::MAX_REASON_BYTES`).
    #[serde(default)]
    pub reason: String,
    /// The consumer holding them; the server's per-key default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer: Option<String>,
}

/// Query of `GET /groups/{group}/parked`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParkedQuery {
    /// The most messages to list, oldest first (at most [`MAX_PARKED_LIMIT`]).
    #[serde(default = "default_parked_limit")]
    pub limit: usize,
}

/// One parked message.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ParkedOut<'a> {
    /// The event.
    pub event: WireEvent<'a>,
    /// How many times it was delivered.
    pub delivery_count: u32,
    /// Why it was parked.
    pub reason: Cow<'a, str>,
    /// When (RFC 3339 UTC).
    pub parked_at: String,
}

impl<'a> ParkedOut<'a> {
    /// The wire form of a parked message.
    pub fn from_parked(p: &'a ParkedMessage) -> Self {
        ParkedOut {
            event: WireEvent::from_recorded(&p.event),
            delivery_count: p.delivery_count,
            reason: Cow::Borrowed(&p.reason),
            parked_at: p
                .parked_at
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        }
    }
}

/// Answer of `GET /groups/{group}/parked`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ParkedList<'a> {
    /// Parked messages, oldest first.
    pub messages: Vec<ParkedOut<'a>>,
}

/// Body of `POST /groups/{group}/parked/replay` (may be empty).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ReplayBody {
    /// The most parked messages to offer again, oldest first (at most
    /// [`MAX_PARKED_LIMIT`]).
    #[serde(default = "default_parked_limit")]
    pub limit: usize,
}

impl Default for ReplayBody {
    fn default() -> Self {
        ReplayBody {
            limit: DEFAULT_PARKED_LIMIT,
        }
    }
}

/// Answer of `POST /groups/{group}/parked/replay`.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct ReplayOut {
    /// How many parked messages were offered to the group again.
    pub replayed: u64,
}

/// Body of `POST /groups/{group}/parked/delete`: the positions of the
/// parked messages to remove from the list (at most
/// `strata_core::group::MAX_SETTLE_IDS`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DeleteParkedBody {
    /// Positions (in `$all`) of parked messages.
    pub positions: Vec<u64>,
}

/// Answer of `POST /groups/{group}/parked/delete`.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct DeleteParkedOut {
    /// How many of the positions named a parked message, now removed.
    pub deleted: u64,
}

/// The first event of `GET /groups/{group}/subscribe` (`event: consumer`):
/// the consumer name this connection reads as; ack and nack with it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SubscribeHello {
    /// The consumer name.
    pub consumer: String,
}
