//! What every handler shares.

use std::sync::Arc;

use strata_core::EventStore;
use tokio::sync::Semaphore;

use crate::config::ServerConfig;

/// The store, the limits and the subscription budget.
#[derive(Clone)]
pub(crate) struct AppState {
    pub store: Arc<dyn EventStore>,
    pub config: Arc<ServerConfig>,
    /// One permit per open subscription (`max_open_subscriptions`).
    pub subscriptions: Arc<Semaphore>,
}
