//! Durable snapshot store (being written).
