//! The generated protocol types and service traits (from `proto/`), in
//! modules that mirror the protocol's packages.
#![allow(missing_docs, clippy::all, clippy::pedantic)]

/// `event_store.*`.
pub mod event_store {
    /// `event_store.client`: shared messages.
    pub mod client {
        tonic::include_proto!("event_store.client");

        /// `event_store.client.streams`.
        pub mod streams {
            tonic::include_proto!("event_store.client.streams");
        }

        /// `event_store.client.persistent_subscriptions`.
        pub mod persistent_subscriptions {
            tonic::include_proto!("event_store.client.persistent_subscriptions");
        }

        /// `event_store.client.server_features`.
        pub mod server_features {
            tonic::include_proto!("event_store.client.server_features");
        }
    }
}

/// `kurrentdb.*`: the newer protocol generation.
pub mod kurrentdb {
    /// `kurrentdb.protocol`.
    pub mod protocol {
        /// `kurrentdb.protocol.v2`.
        pub mod v2 {
            /// `kurrentdb.protocol.v2.streams`: the multi-stream append.
            pub mod streams {
                tonic::include_proto!("kurrentdb.protocol.v2.streams");

                /// `kurrentdb.protocol.v2.streams.errors`: the details its
                /// failures carry.
                pub mod errors {
                    tonic::include_proto!("kurrentdb.protocol.v2.streams.errors");
                }
            }
        }
    }
}

/// `kurrent.*`.
pub mod kurrent {
    /// `kurrent.rpc`: error details shared by the newer services.
    pub mod rpc {
        tonic::include_proto!("kurrent.rpc");
    }
}

/// `google.*`.
pub mod google {
    /// `google.rpc`: the status carried in batch append errors.
    pub mod rpc {
        tonic::include_proto!("google.rpc");
    }
}

pub use event_store::client as shared;
pub use event_store::client::persistent_subscriptions as persistent;
pub use event_store::client::server_features as features;
pub use event_store::client::streams;
pub use kurrentdb::protocol::v2::streams as v2;
