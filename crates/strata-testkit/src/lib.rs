//! strata-testkit (placeholder).
