//! strata-log (placeholder).
