//! This crate's errors, and how they become [`strata_core::Error`].

use strata_core::error::error_chain;
use strata_core::Error;

/// What can go wrong while connecting, migrating or managing partitions.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PgError {
    /// The configuration is unusable (bad schema name, bad URL, ...).
    #[error("invalid PostgreSQL store configuration: {0}")]
    Config(String),

    /// The schema exists but was written by another layout or a newer version.
    #[error("schema `{schema}` cannot be used: {reason}")]
    Schema {
        /// The schema.
        schema: String,
        /// What is wrong, and what to do.
        reason: String,
    },

    /// A migration failed; nothing of it was applied.
    #[error("migration {version} (`{name}`) failed: {}", error_chain(source))]
    Migration {
        /// Its number.
        version: i32,
        /// Its file name.
        name: &'static str,
        /// The database's error.
        #[source]
        source: tokio_postgres::Error,
    },

    /// The database refused a statement or the connection failed.
    #[error("PostgreSQL error while {context}: {}", error_chain(source))]
    Database {
        /// What the store was doing.
        context: String,
        /// The driver's error.
        #[source]
        source: tokio_postgres::Error,
    },

    /// No connection could be taken from the pool.
    #[error("no PostgreSQL connection available while {context}: {reason}")]
    Pool {
        /// What the store was doing.
        context: String,
        /// The pool's error.
        reason: String,
    },
}

impl PgError {
    pub(crate) fn db(context: impl Into<String>, source: tokio_postgres::Error) -> Self {
        PgError::Database {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn pool(context: impl Into<String>, e: deadpool_postgres::PoolError) -> Self {
        // The pool's message alone hides the cause (a refused certificate,
        // a refused password): keep the whole chain.
        let reason = match &e {
            deadpool_postgres::PoolError::Backend(source) => error_chain(source),
            other => error_chain(other),
        };
        PgError::Pool {
            context: context.into(),
            reason,
        }
    }

    /// Whether the failure is the connection's (dropped, refused, terminated),
    /// so the same work may be retried on a new connection.
    pub fn is_connection_error(&self) -> bool {
        match self {
            PgError::Database { source, .. } | PgError::Migration { source, .. } => {
                is_connection_error(source)
            }
            PgError::Pool { .. } => true,
            PgError::Config(_) | PgError::Schema { .. } => false,
        }
    }
}

impl From<PgError> for Error {
    fn from(e: PgError) -> Self {
        match e {
            PgError::Config(reason) => Error::InvalidInput { reason },
            other => Error::Backend(error_chain(&other)),
        }
    }
}

/// SQLSTATE class 08 (connection exception) and 57P01..57P03 (the server
/// terminated the session: `pg_terminate_backend`, shutdown, restart), or no
/// SQLSTATE at all (the socket closed, I/O failed).
pub(crate) fn is_connection_error(e: &tokio_postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    match e.code() {
        None => true,
        Some(code) => {
            let c = code.code();
            c.starts_with("08") || c == "57P01" || c == "57P02" || c == "57P03"
        }
    }
}

/// Whether a failed transaction may simply be run again: deadlock,
/// serialization failure, a unique violation from a concurrent writer in
/// another process (the retry sees its rows), or a missing partition (the
/// retry first creates it).
pub(crate) fn is_transient(e: &tokio_postgres::Error) -> bool {
    matches!(
        e.code().map(|c| c.code()),
        Some("40001" | "40P01" | "23505" | "23514")
    )
}

/// The SQLSTATE of a missing partition ("no partition of relation found for row").
pub(crate) fn is_missing_partition(e: &tokio_postgres::Error) -> bool {
    e.code().map(|c| c.code()) == Some("23514")
}
