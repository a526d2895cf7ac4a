//! Shared by the `strata` binary's integration tests.

pub mod pg;
pub mod run;
pub mod serve;
