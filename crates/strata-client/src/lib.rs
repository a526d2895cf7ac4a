//! # strata-client
//!
//! A Rust client for a running `strata serve`.

#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod sse;
