//! `--store` specifications: parsed and opened by `strata-stores`, the one
//! place that turns a string into a store; re-exported here under the
//! names the commands use.

pub use strata_stores::{
    OpenError, OpenOptions, OpenStore, StoreSpec, DEFAULT_LOG_DIR, DEFAULT_STORE,
};
