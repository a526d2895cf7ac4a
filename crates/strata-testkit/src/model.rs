//! Reference model (to be written).
