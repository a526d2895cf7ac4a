//! # strata-testkit
//!
//! - [`conformance`]: the executable definition of the `EventStore` contract.
//!   Every backend runs it through [`conformance_suite!`].
//! - [`model`]: a trivially correct reference store and the model-based
//!   property test that compares a backend against it.
//! - [`given`]: a given/when/then harness for aggregates.

pub mod conformance;
pub mod given;
pub mod model;
