//! # strata-stores
//!
//! Opens any Strata store from a spec string, the `--store` value of the
//! `strata` command:
//!
//! | spec | store |
//! |---|---|
//! | `log:DIR` | the embedded durable store in `DIR` |
//! | `log:` | the embedded store in its caller's default place ([`DEFAULT_LOG_DIR`] for [`StoreSpec::open`]) |
//! | `memory:` | everything in memory, gone at exit |
//! | `postgres://…[?schema=NAME]` | the PostgreSQL store, in schema `NAME` (default `strata`) |
//!
//! [`StoreSpec`] parses and prints a spec (passwords masked);
//! [`StoreSpec::open`] turns it into an [`OpenStore`], an [`EventStore`]
//! that is closed cleanly at the end. This crate composes the stores, so it
//! is the one library that names every backend.
//!
//! [`EventStore`]: strata_core::EventStore

#![cfg_attr(not(test), deny(clippy::unwrap_used))]

mod error;
mod open;
mod spec;

pub use error::OpenError;
pub use open::{OpenOptions, OpenStore};
pub use spec::{
    split_postgres_spec, StoreSpec, DEFAULT_LOG_DIR, DEFAULT_PG_SCHEMA, DEFAULT_STORE, SCHEMA_PARAM,
};
