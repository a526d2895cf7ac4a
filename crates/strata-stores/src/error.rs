//! Why a store could not be opened.

/// Why a store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The spec is unusable (a bad schema name, ...).
    #[error("{0}")]
    Invalid(String),
    /// The backend refused to open.
    #[error("{0}")]
    Store(#[from] strata_core::Error),
    /// The PostgreSQL store could not connect (or migrate).
    #[error("{0}")]
    Postgres(String),
}
