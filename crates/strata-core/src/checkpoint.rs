//! Checkpoints: how far a projection or processor has got in `$all`.

use std::collections::HashMap;

use async_trait::async_trait;
use parking_lot::Mutex;

use crate::error::Result;
use crate::version::Position;

/// Where projections keep their checkpoints, by name.
#[async_trait]
pub trait CheckpointStore: Send + Sync + 'static {
    /// The last position the named consumer fully processed, if any.
    async fn load(&self, name: &str) -> Result<Option<Position>>;

    /// Records that the named consumer has processed everything up to `position`.
    async fn save(&self, name: &str, position: Position) -> Result<()>;

    /// Forgets the named checkpoint (the consumer starts from the beginning).
    async fn reset(&self, name: &str) -> Result<()>;
}

/// Checkpoints in memory.
#[derive(Debug, Default)]
pub struct MemoryCheckpointStore {
    inner: Mutex<HashMap<String, Position>>,
}

impl MemoryCheckpointStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl CheckpointStore for MemoryCheckpointStore {
    async fn load(&self, name: &str) -> Result<Option<Position>> {
        Ok(self.inner.lock().get(name).copied())
    }

    async fn save(&self, name: &str, position: Position) -> Result<()> {
        self.inner.lock().insert(name.to_owned(), position);
        Ok(())
    }

    async fn reset(&self, name: &str) -> Result<()> {
        self.inner.lock().remove(name);
        Ok(())
    }
}
