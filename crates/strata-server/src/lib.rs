//! strata-server (placeholder).
