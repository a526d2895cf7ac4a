//! # strata-testkit
//!
//! - [`conformance`]: the executable definition of the `EventStore` contract.
//!   Every backend runs it through [`conformance_suite!`].
//! - [`dcb`]: tags, query reads and conditional appends, run through
//!   [`dcb_conformance_suite!`].
//! - [`groups`]: the executable definition of the `ConsumerGroups`
//!   contract, run through [`group_conformance_suite!`].
//! - [`model`]: a trivially correct reference store and the model-based
//!   property test that compares a backend against it.

pub mod conformance;
pub mod dcb;
mod erasure;
pub mod groups;
pub mod model;
mod retention;
mod stream_list;
