//! strata (placeholder).
