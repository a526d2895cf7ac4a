//! strata-postgres (placeholder).
