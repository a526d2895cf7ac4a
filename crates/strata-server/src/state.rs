//! What every handler shares.

use std::collections::HashMap;
use std::sync::Arc;

use strata_core::group::ConsumerGroups;
use strata_core::{EventStore, SnapshotStore, StoreAdmin};
use tokio::sync::Semaphore;

use crate::budget::Pool;
use crate::config::ServerConfig;
use crate::erasures::Erasures;
use crate::metrics::Metrics;
use crate::page::ReadBudget;

/// The store, the limits, the subscription budgets and the counters.
#[derive(Clone)]
pub(crate) struct AppState {
    pub store: Arc<dyn EventStore>,
    /// Backups the store offers (`POST /admin/backup`); `None` when it
    /// offers none through Strata.
    pub admin: Option<Arc<dyn StoreAdmin>>,
    /// The snapshot store kept with the store: an erasure erases the
    /// stream's snapshots there too. `None` when the caller gave none.
    pub snapshots: Option<Arc<dyn SnapshotStore>>,
    /// The consumer groups over the store (`/groups/...`); `None` when the
    /// caller gave none (those routes answer 501).
    pub groups: Option<Arc<dyn ConsumerGroups>>,
    /// Held while a backup runs: one at a time, the next waits its turn.
    pub backup_running: Arc<tokio::sync::Mutex<()>>,
    pub config: Arc<ServerConfig>,
    /// One permit per open subscription (`max_open_subscriptions`).
    pub subscriptions: Arc<Semaphore>,
    /// Per API key name: one permit per open subscription of that key
    /// (`max_subscriptions_per_key`).
    pub key_subscriptions: Arc<HashMap<String, Arc<Semaphore>>>,
    /// The byte budget all subscriptions' buffers share
    /// (`subscription_buffers_total_bytes`).
    pub subscription_bytes: Arc<Pool>,
    /// The byte budget read pages in flight share
    /// (`max_read_bytes_in_flight`).
    pub read_budget: Arc<ReadBudget>,
    /// The counters behind `GET /metrics`.
    pub metrics: Arc<Metrics>,
    /// Streams erased while subscriptions are open, held back from them.
    pub erasures: Arc<Erasures>,
}
