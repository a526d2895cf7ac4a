//! Consumer groups over HTTP (`/groups/...`, `docs/http-api.md`).

use std::time::Duration;

use strata_core::group::{
    Delivery, DeliveryId, GroupName, GroupSettings, GroupStatus, NackAction, SettleReport,
};
use strata_wire::{
    AckBody, GroupList, GroupReadBody, GroupReadOut, NackBody, ParkedList, ReplayBody, ReplayOut,
};

use crate::client::{decode, Client, REQUEST_TIMEOUT_MS};
use crate::error::ClientError;

/// What one group read leased.
#[derive(Clone, Debug)]
pub struct GroupRead {
    /// The consumer the messages are leased to (the server's per-key
    /// default when the read named none): settle with it.
    pub consumer: String,
    /// The leased messages.
    pub deliveries: Vec<Delivery>,
}

/// A parked message as the server lists it.
#[derive(Clone, Debug)]
pub struct Parked {
    /// The event.
    pub event: strata_core::RecordedEvent,
    /// How many times it was delivered.
    pub delivery_count: u32,
    /// Why it was parked.
    pub reason: String,
    /// When (RFC 3339 UTC).
    pub parked_at: String,
}

impl Client {
    /// Creates or updates a group (`PUT /groups/{group}`, an `admin` key).
    ///
    /// ```no_run
    /// # async fn f(client: strata_client::Client) -> Result<(), strata_client::ClientError> {
    /// use strata_core::group::{GroupName, GroupSettings, GroupSource};
    /// let settings = GroupSettings::new(GroupSource::All(strata_core::ReadFilter::all()));
    /// let status = client.put_group(&GroupName::new("billing").unwrap(), &settings).await?;
    /// println!("{}", status.checkpoint.0);
    /// # Ok(()) }
    /// ```
    pub async fn put_group(
        &self,
        name: &GroupName,
        settings: &GroupSettings,
    ) -> Result<GroupStatus, ClientError> {
        let url = self.url(&["groups", name.as_str()]);
        let rb = self
            .request(reqwest::Method::PUT, url.clone())
            .json(settings);
        self.call(rb, &url).await
    }

    /// Every group's status (`GET /groups`).
    pub async fn list_groups(&self) -> Result<Vec<GroupStatus>, ClientError> {
        let url = self.url(&["groups"]);
        let rb = self.request(reqwest::Method::GET, url.clone());
        let list: GroupList = self.call(rb, &url).await?;
        Ok(list.groups)
    }

    /// One group's status, `None` when there is no such group
    /// (`GET /groups/{group}`).
    pub async fn group_status(&self, name: &GroupName) -> Result<Option<GroupStatus>, ClientError> {
        let url = self.url(&["groups", name.as_str()]);
        let rb = self.request(reqwest::Method::GET, url.clone());
        match self.call(rb, &url).await {
            Ok(status) => Ok(Some(status)),
            Err(e) if is_group_not_found(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Deletes a group; whether it existed (`DELETE /groups/{group}`).
    pub async fn delete_group(&self, name: &GroupName) -> Result<bool, ClientError> {
        let url = self.url(&["groups", name.as_str()]);
        let rb = self.request(reqwest::Method::DELETE, url.clone());
        match self.send(rb, &url).await {
            Ok(_) => Ok(true),
            Err(e) if is_group_not_found(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Leases up to `max` messages, waiting up to `wait` for the first
    /// (`POST /groups/{group}/read`). `consumer` names the reader; the
    /// server's per-key default when `None`.
    pub async fn read_group(
        &self,
        name: &GroupName,
        consumer: Option<&str>,
        max: usize,
        wait: Duration,
    ) -> Result<GroupRead, ClientError> {
        let url = self.url(&["groups", name.as_str(), "read"]);
        let body = GroupReadBody {
            max,
            wait_ms: u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
            consumer: consumer.map(str::to_owned),
        };
        let rb = self.request(reqwest::Method::POST, url.clone()).json(&body);
        let timeout = wait + Duration::from_millis(REQUEST_TIMEOUT_MS);
        let out: GroupReadOut<'static> = self.call_within(rb, &url, timeout).await?;
        let deliveries = out
            .messages
            .into_iter()
            .map(|m| m.into_delivery())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| decode(&url, e.to_string()))?;
        Ok(GroupRead {
            consumer: out.consumer.into_owned(),
            deliveries,
        })
    }

    /// Acks deliveries (`POST /groups/{group}/ack`).
    pub async fn ack(
        &self,
        name: &GroupName,
        consumer: Option<&str>,
        ids: &[DeliveryId],
    ) -> Result<SettleReport, ClientError> {
        let url = self.url(&["groups", name.as_str(), "ack"]);
        let body = AckBody {
            ids: ids.to_vec(),
            consumer: consumer.map(str::to_owned),
        };
        let rb = self.request(reqwest::Method::POST, url.clone()).json(&body);
        self.call(rb, &url).await
    }

    /// Nacks deliveries (`POST /groups/{group}/nack`).
    pub async fn nack(
        &self,
        name: &GroupName,
        consumer: Option<&str>,
        ids: &[DeliveryId],
        action: NackAction,
        reason: &str,
    ) -> Result<SettleReport, ClientError> {
        let url = self.url(&["groups", name.as_str(), "nack"]);
        let body = NackBody {
            ids: ids.to_vec(),
            action,
            reason: reason.to_owned(),
            consumer: consumer.map(str::to_owned),
        };
        let rb = self.request(reqwest::Method::POST, url.clone()).json(&body);
        self.call(rb, &url).await
    }

    /// Up to `limit` parked messages, oldest first
    /// (`GET /groups/{group}/parked`).
    pub async fn parked(&self, name: &GroupName, limit: usize) -> Result<Vec<Parked>, ClientError> {
        let mut url = self.url(&["groups", name.as_str(), "parked"]);
        url.set_query(Some(&format!("limit={limit}")));
        let rb = self.request(reqwest::Method::GET, url.clone());
        let list: ParkedList<'static> = self.call(rb, &url).await?;
        list.messages
            .into_iter()
            .map(|p| {
                Ok(Parked {
                    event: p
                        .event
                        .into_recorded()
                        .map_err(|e| decode(&url, e.to_string()))?,
                    delivery_count: p.delivery_count,
                    reason: p.reason.into_owned(),
                    parked_at: p.parked_at,
                })
            })
            .collect()
    }

    /// Offers up to `limit` parked messages to the group again; how many
    /// (`POST /groups/{group}/parked/replay`).
    pub async fn replay_parked(&self, name: &GroupName, limit: usize) -> Result<u64, ClientError> {
        let url = self.url(&["groups", name.as_str(), "parked", "replay"]);
        let rb = self
            .request(reqwest::Method::POST, url.clone())
            .json(&ReplayBody { limit });
        let out: ReplayOut = self.call(rb, &url).await?;
        Ok(out.replayed)
    }

    /// Removes the parked messages at `positions` from the list; how many
    /// were there (`POST /groups/{group}/parked/delete`).
    pub async fn delete_parked(
        &self,
        name: &GroupName,
        positions: &[strata_core::Position],
    ) -> Result<u64, ClientError> {
        let url = self.url(&["groups", name.as_str(), "parked", "delete"]);
        let body = strata_wire::DeleteParkedBody {
            positions: positions.iter().map(|p| p.0).collect(),
        };
        let rb = self.request(reqwest::Method::POST, url.clone()).json(&body);
        let out: strata_wire::DeleteParkedOut = self.call(rb, &url).await?;
        Ok(out.deleted)
    }
}

fn is_group_not_found(e: &ClientError) -> bool {
    matches!(e, ClientError::Api { status: 404, kind, .. } if kind == strata_wire::kind::GROUP_NOT_FOUND)
}
