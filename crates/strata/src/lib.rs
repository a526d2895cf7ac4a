//! # strata
//!
//! The event-sourcing framework (to be written). Re-exports `strata-core`.

pub use strata_core::*;
