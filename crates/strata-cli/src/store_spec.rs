//! `--store` specifications: the one place that turns a string into a store.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use strata_core::{EventStore, MemoryStore};

/// A parsed `--store` value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreSpec {
    /// `memory:` — everything in memory, gone at exit.
    Memory,
}

impl FromStr for StoreSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "memory:" | "memory" => Ok(StoreSpec::Memory),
            other => Err(format!("unknown store `{other}`: expected `memory:`")),
        }
    }
}

impl fmt::Display for StoreSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreSpec::Memory => f.write_str("memory:"),
        }
    }
}

impl StoreSpec {
    /// Opens the store.
    pub async fn open(&self) -> Result<Arc<dyn EventStore>, strata_core::Error> {
        match self {
            StoreSpec::Memory => Ok(Arc::new(MemoryStore::new())),
        }
    }
}
