//! [`LocalGroups`]: consumer groups over any [`EventStore`], in one
//! process, kept durable as events of the store's own system streams.

mod durable;
mod handle;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Mutex;

use crate::error::{Error, Result};
use crate::read::Direction;
use crate::store::EventStore;
use crate::version::Position;

use super::{
    ConsumerGroups, ConsumerId, Delivery, DeliveryId, GroupName, GroupSettings, GroupSource,
    GroupStart, GroupStatus, NackAction, ParkedMessage, SettleReport, MAX_READ_MESSAGES,
    MAX_REASON_BYTES, MAX_SETTLE_IDS,
};
use durable::Definition;
pub use durable::{
    CHECKPOINT_EVERY_RECORDS, GROUPS_STREAM, GROUP_STREAM_PREFIX, MAX_CONCURRENT_WRITES,
    PARKED_STREAM_SUFFIX, RECOVERY_WINDOW,
};
use handle::GroupHandle;

/// The most groups one store holds.
pub const MAX_GROUPS: usize = 1_000;

/// One group: its definition, and its handle once loaded.
struct Entry {
    definition: Definition,
    handle: Option<Arc<GroupHandle>>,
}

/// Consumer groups over `S`, for one process. Several `LocalGroups` over
/// one store must not serve the same group at once: PostgreSQL has its own
/// implementation for groups shared across processes.
pub struct LocalGroups<S> {
    store: S,
    groups: Mutex<Option<BTreeMap<GroupName, Entry>>>,
}

impl<S: EventStore + Clone + 'static> LocalGroups<S> {
    /// Groups over `store`; definitions are read on first use.
    pub fn new(store: S) -> Self {
        Self {
            store,
            groups: Mutex::new(None),
        }
    }

    /// The group's handle, loading the definitions and the group as needed.
    async fn handle(&self, name: &GroupName) -> Result<Arc<GroupHandle>> {
        let mut guard = self.groups.lock().await;
        let groups = self.loaded(&mut guard).await?;
        let entry = groups.get_mut(name).ok_or_else(|| not_found(name))?;
        if let Some(h) = &entry.handle {
            if !h.failed() {
                return Ok(Arc::clone(h));
            }
            h.stop();
        }
        let d = &entry.definition;
        let h = GroupHandle::load(&self.store, d.name.clone(), d.settings.clone(), d.start).await?;
        entry.handle = Some(Arc::clone(&h));
        Ok(h)
    }

    async fn loaded<'a>(
        &self,
        guard: &'a mut Option<BTreeMap<GroupName, Entry>>,
    ) -> Result<&'a mut BTreeMap<GroupName, Entry>> {
        if guard.is_none() {
            let definitions = durable::load_definitions(&self.store).await?;
            let entries = definitions
                .into_iter()
                .map(|(name, definition)| {
                    let entry = Entry {
                        definition,
                        handle: None,
                    };
                    (name, entry)
                })
                .collect();
            *guard = Some(entries);
        }
        guard.as_mut().ok_or(Error::Closed)
    }

    /// The position a new group starts after.
    async fn start_position(&self, settings: &GroupSettings) -> Result<Position> {
        Ok(match (settings.start, &settings.source) {
            (GroupStart::Start, _) => Position::START,
            (GroupStart::End, _) => self.store.head_position().await?,
            (GroupStart::AfterPosition(p), _) => p,
            (GroupStart::FromVersion(v), GroupSource::Stream(s)) => {
                let first = match self.store.read_stream(s, v, 1, Direction::Forward).await {
                    Ok(events) => events.into_iter().next(),
                    Err(Error::StreamNotFound { .. }) => None,
                    Err(e) => return Err(e),
                };
                first.map_or(Position::START, |e| Position(e.position.0 - 1))
            }
            (GroupStart::FromVersion(_), GroupSource::All(_)) => Position::START,
        })
    }

    fn status_of(entry: &Entry) -> GroupStatus {
        match &entry.handle {
            Some(h) => h.status(),
            None => GroupStatus {
                name: entry.definition.name.clone(),
                settings: entry.definition.settings.clone(),
                checkpoint: entry.definition.start,
                lag_events: 0,
                lag_seconds: 0.0,
                in_flight: 0,
                parked: 0,
                consumers: 0,
                acked_total: 0,
                acked_per_second: 0.0,
            },
        }
    }
}

fn not_found(name: &GroupName) -> Error {
    Error::GroupNotFound {
        group: name.as_str().to_owned(),
    }
}

fn check_ids(ids: &[DeliveryId]) -> Result<()> {
    if ids.len() > MAX_SETTLE_IDS {
        return Err(Error::InvalidInput {
            reason: format!(
                "at most {MAX_SETTLE_IDS} ids may be settled at once, got {}",
                ids.len()
            ),
        });
    }
    Ok(())
}

#[async_trait]
impl<S: EventStore + Clone + 'static> ConsumerGroups for LocalGroups<S> {
    async fn put_group(&self, name: &GroupName, settings: GroupSettings) -> Result<GroupStatus> {
        settings.validate()?;
        let mut guard = self.groups.lock().await;
        let groups = self.loaded(&mut guard).await?;
        if let Some(entry) = groups.get_mut(name) {
            if entry.definition.settings.source != settings.source {
                return Err(Error::InvalidInput {
                    reason: format!(
                        "consumer group `{name}` follows another source; delete it and create it again"
                    ),
                });
            }
            let mut definition = entry.definition.clone();
            definition.settings = GroupSettings {
                start: definition.settings.start,
                ..settings
            };
            durable::put_definition(&self.store, &definition).await?;
            if let Some(h) = &entry.handle {
                h.set_settings(definition.settings.clone());
            }
            entry.definition = definition;
            return Ok(Self::status_of(entry));
        }
        if groups.len() >= MAX_GROUPS {
            return Err(Error::InvalidInput {
                reason: format!("a store holds at most {MAX_GROUPS} consumer groups"),
            });
        }
        let definition = Definition {
            name: name.clone(),
            start: self.start_position(&settings).await?,
            settings,
        };
        durable::limit_group_stream(&self.store, name).await?;
        durable::put_definition(&self.store, &definition).await?;
        let entry = Entry {
            definition,
            handle: None,
        };
        let status = Self::status_of(&entry);
        groups.insert(name.clone(), entry);
        Ok(status)
    }

    async fn list_groups(&self) -> Result<Vec<GroupStatus>> {
        let names: Vec<GroupName> = {
            let mut guard = self.groups.lock().await;
            self.loaded(&mut guard).await?.keys().cloned().collect()
        };
        // Each group is loaded, so its checkpoint and counts are its own.
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            if let Some(status) = self.group_status(&name).await? {
                out.push(status);
            }
        }
        Ok(out)
    }

    async fn group_status(&self, name: &GroupName) -> Result<Option<GroupStatus>> {
        let mut guard = self.groups.lock().await;
        let groups = self.loaded(&mut guard).await?;
        if !groups.contains_key(name) {
            return Ok(None);
        }
        drop(guard);
        match self.handle(name).await {
            Ok(h) => Ok(Some(h.status())),
            Err(Error::GroupNotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn delete_group(&self, name: &GroupName) -> Result<bool> {
        let mut guard = self.groups.lock().await;
        let groups = self.loaded(&mut guard).await?;
        let Some(entry) = groups.remove(name) else {
            return Ok(false);
        };
        if let Some(h) = &entry.handle {
            h.stop();
        }
        durable::delete_definition(&self.store, name).await?;
        Ok(true)
    }

    async fn read(
        &self,
        name: &GroupName,
        consumer: &ConsumerId,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Delivery>> {
        if max == 0 || max > MAX_READ_MESSAGES {
            return Err(Error::InvalidInput {
                reason: format!("max must be 1 to {MAX_READ_MESSAGES}, got {max}"),
            });
        }
        let h = self.handle(name).await?;
        Ok(h.read(consumer, max, wait).await)
    }

    async fn ack(
        &self,
        name: &GroupName,
        consumer: &ConsumerId,
        ids: &[DeliveryId],
    ) -> Result<SettleReport> {
        check_ids(ids)?;
        self.handle(name)
            .await?
            .ack(&self.store, consumer, ids)
            .await
    }

    async fn nack(
        &self,
        name: &GroupName,
        consumer: &ConsumerId,
        ids: &[DeliveryId],
        action: NackAction,
        reason: &str,
    ) -> Result<SettleReport> {
        check_ids(ids)?;
        if reason.len() > MAX_REASON_BYTES {
            return Err(Error::InvalidInput {
                reason: format!("a nack reason holds at most {MAX_REASON_BYTES} bytes"),
            });
        }
        self.handle(name)
            .await?
            .nack(&self.store, consumer, ids, action, reason)
            .await
    }

    async fn leave(&self, name: &GroupName, consumer: &ConsumerId) -> Result<()> {
        self.handle(name).await?.leave(consumer);
        Ok(())
    }

    async fn parked(&self, name: &GroupName, limit: usize) -> Result<Vec<ParkedMessage>> {
        self.handle(name).await?.parked(&self.store, limit).await
    }

    async fn replay_parked(&self, name: &GroupName, limit: usize) -> Result<u64> {
        self.handle(name)
            .await?
            .replay_parked(&self.store, limit)
            .await
    }

    async fn delete_parked(&self, name: &GroupName, positions: &[Position]) -> Result<u64> {
        self.handle(name)
            .await?
            .delete_parked(&self.store, positions)
            .await
    }
}

#[cfg(test)]
mod tests;
