//! The KurrentDB client protocol, served over Strata.
//!
//! `strata serve --grpc ADDR` answers the gRPC services the KurrentDB
//! clients speak (`ServerFeatures`, `Streams`, the v2 multi-stream appends,
//! and `PersistentSubscriptions` over consumer groups when the server has
//! them) over any
//! [`EventStore`](strata_core::EventStore), so a program written against
//! one of those clients points its connection string at Strata. The
//! mapping between the two models (revisions, positions, ids, times,
//! metadata) is in `docs/adr/0023-kurrentdb-client-protocol.md`.

// `tonic::Status` is the error type the generated service traits require;
// boxing it in helpers would only unbox it again at every call site.
#![allow(clippy::result_large_err)]

pub mod auth;
pub mod conn;
pub mod features;
pub mod filter;
pub mod mapping;
pub mod metadata;
pub mod persistent;
pub mod proto;
pub mod serve;
pub mod status;
pub mod streams;
pub mod v2;

pub use auth::Auth;
pub use serve::{serve, serve_tls, Services};
