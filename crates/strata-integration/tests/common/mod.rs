//! The PostgreSQL test database (address, skip-or-fail rule, per-test
//! schemas), written once in strata-postgres's tests.

#[path = "../../../strata-postgres/tests/common/database.rs"]
mod database;

pub use database::*;
