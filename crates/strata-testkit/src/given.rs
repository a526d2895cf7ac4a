//! Given/when/then harness (to be written).
