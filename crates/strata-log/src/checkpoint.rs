//! Durable checkpoint store (being written).
