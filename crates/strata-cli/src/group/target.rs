//! The group operations on a store or through a server, with one set of
//! results and errors.

use std::sync::Arc;
use std::time::Duration;

use strata_core::group::{
    ConsumerGroups, ConsumerId, Delivery, DeliveryId, GroupName, GroupSettings, GroupStatus,
};
use strata_core::Position;
use strata_wire::{ParkedOut, WireEvent};

use crate::data::store_or_server::{Target, TargetError};

/// A store's groups, or a server's.
pub struct Groups {
    target: Target,
    local: Option<Arc<dyn ConsumerGroups>>,
}

fn consumer_id(name: &str) -> Result<ConsumerId, TargetError> {
    Ok(ConsumerId::new(name)?)
}

impl Groups {
    pub fn new(target: Target) -> Self {
        let local = match &target {
            Target::Store(open) => Some(open.groups()),
            Target::Server(_) => None,
        };
        Groups { target, local }
    }

    pub async fn close(self) -> Result<(), TargetError> {
        drop(self.local);
        self.target.close().await
    }

    pub async fn put(
        &self,
        name: &GroupName,
        s: GroupSettings,
    ) -> Result<GroupStatus, TargetError> {
        match (&self.local, &self.target) {
            (Some(g), _) => Ok(g.put_group(name, s).await?),
            (None, Target::Server(c)) => Ok(c.put_group(name, &s).await?),
            (None, Target::Store(_)) => Err(strata_core::Error::Closed.into()),
        }
    }

    pub async fn list(&self) -> Result<Vec<GroupStatus>, TargetError> {
        match (&self.local, &self.target) {
            (Some(g), _) => Ok(g.list_groups().await?),
            (None, Target::Server(c)) => Ok(c.list_groups().await?),
            (None, Target::Store(_)) => Err(strata_core::Error::Closed.into()),
        }
    }

    pub async fn status(&self, name: &GroupName) -> Result<Option<GroupStatus>, TargetError> {
        match (&self.local, &self.target) {
            (Some(g), _) => Ok(g.group_status(name).await?),
            (None, Target::Server(c)) => Ok(c.group_status(name).await?),
            (None, Target::Store(_)) => Err(strata_core::Error::Closed.into()),
        }
    }

    pub async fn delete(&self, name: &GroupName) -> Result<bool, TargetError> {
        match (&self.local, &self.target) {
            (Some(g), _) => Ok(g.delete_group(name).await?),
            (None, Target::Server(c)) => Ok(c.delete_group(name).await?),
            (None, Target::Store(_)) => Err(strata_core::Error::Closed.into()),
        }
    }

    /// Parked messages as JSON lines' values (`strata_wire::ParkedOut`).
    pub async fn parked(
        &self,
        name: &GroupName,
        limit: usize,
    ) -> Result<Vec<serde_json::Value>, TargetError> {
        let value = |v: Result<serde_json::Value, serde_json::Error>| {
            v.map_err(|e| {
                TargetError::Store(strata_core::Error::InvalidInput {
                    reason: e.to_string(),
                })
            })
        };
        match (&self.local, &self.target) {
            (Some(g), _) => g
                .parked(name, limit)
                .await?
                .iter()
                .map(|p| value(serde_json::to_value(ParkedOut::from_parked(p))))
                .collect(),
            (None, Target::Server(c)) => c
                .parked(name, limit)
                .await?
                .iter()
                .map(|p| {
                    value(serde_json::to_value(ParkedOut {
                        event: WireEvent::from_recorded(&p.event),
                        delivery_count: p.delivery_count,
                        reason: p.reason.as_str().into(),
                        parked_at: p.parked_at.clone(),
                    }))
                })
                .collect(),
            (None, Target::Store(_)) => Err(strata_core::Error::Closed.into()),
        }
    }

    pub async fn replay(&self, name: &GroupName, limit: usize) -> Result<u64, TargetError> {
        match (&self.local, &self.target) {
            (Some(g), _) => Ok(g.replay_parked(name, limit).await?),
            (None, Target::Server(c)) => Ok(c.replay_parked(name, limit).await?),
            (None, Target::Store(_)) => Err(strata_core::Error::Closed.into()),
        }
    }

    /// Removes the parked messages at `positions`; how many were parked.
    pub async fn delete_parked(
        &self,
        name: &GroupName,
        positions: &[Position],
    ) -> Result<u64, TargetError> {
        match (&self.local, &self.target) {
            (Some(g), _) => Ok(g.delete_parked(name, positions).await?),
            (None, Target::Server(c)) => Ok(c.delete_parked(name, positions).await?),
            (None, Target::Store(_)) => Err(strata_core::Error::Closed.into()),
        }
    }

    /// Leases messages to `consumer`; returns the consumer name to settle
    /// with (the server's default when `consumer` is `None` over HTTP).
    pub async fn read(
        &self,
        name: &GroupName,
        consumer: Option<&str>,
        max: usize,
        wait: Duration,
    ) -> Result<(String, Vec<Delivery>), TargetError> {
        match (&self.local, &self.target) {
            (Some(g), _) => {
                let c = consumer.map_or_else(local_consumer, str::to_owned);
                let d = g.read(name, &consumer_id(&c)?, max, wait).await?;
                Ok((c, d))
            }
            (None, Target::Server(client)) => {
                let r = client.read_group(name, consumer, max, wait).await?;
                Ok((r.consumer, r.deliveries))
            }
            (None, Target::Store(_)) => Err(strata_core::Error::Closed.into()),
        }
    }

    pub async fn ack(
        &self,
        name: &GroupName,
        consumer: &str,
        ids: &[DeliveryId],
    ) -> Result<u64, TargetError> {
        match (&self.local, &self.target) {
            (Some(g), _) => Ok(g.ack(name, &consumer_id(consumer)?, ids).await?.settled),
            (None, Target::Server(c)) => Ok(c.ack(name, Some(consumer), ids).await?.settled),
            (None, Target::Store(_)) => Err(strata_core::Error::Closed.into()),
        }
    }

    /// On a store, the consumer leaves (its leases go back at once); a
    /// server's lease times out instead.
    pub async fn leave(&self, name: &GroupName, consumer: &str) -> Result<(), TargetError> {
        if let Some(g) = &self.local {
            g.leave(name, &consumer_id(consumer)?).await?;
        }
        Ok(())
    }
}

/// The consumer name `consume` uses on a store when none is given.
fn local_consumer() -> String {
    format!("cli-{}", std::process::id())
}
