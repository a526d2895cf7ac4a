//! # strata-client
//!
//! A Rust client for a running `strata serve`: append (to one stream or to
//! several atomically), read a stream or `$all` with filters, delete and
//! tombstone, and subscribe to `$all` or to a stream with automatic resume
//! after a lost connection (no gap, no duplicate). API keys are sent as
//! bearer tokens; HTTPS servers are trusted through a CA file (rustls, no
//! built-in roots). The JSON on the wire is `strata_wire`'s, the server's own.
//!
//! ```no_run
//! use strata_client::Client;
//! use strata_core::{Direction, ExpectedVersion, NewEvent, StreamId};
//!
//! # async fn run() -> Result<(), strata_client::ClientError> {
//! let client = Client::builder("https://strata.example:7700")
//!     .api_key("k-123")
//!     .ca_cert("ca.pem")
//!     .build()?;
//! let stream = StreamId::new("account-42").unwrap();
//! let event = NewEvent::json("Opened", &serde_json::json!({"owner": "ada"})).unwrap();
//! match client.append(&stream, ExpectedVersion::NoStream, &[event]).await {
//!     Ok(r) => println!("now at version {}", r.next_expected_version),
//!     Err(strata_client::ClientError::WrongExpectedVersion { actual, .. }) => {
//!         println!("someone else wrote first; the stream is at {actual}")
//!     }
//!     Err(e) => return Err(e),
//! }
//! let page = client.read_stream(&stream, None, 100, Direction::Forward).await?;
//! # let _ = page;
//! # Ok(()) }
//! ```
//!
//! Every call has a bounded wait ([`CONNECT_TIMEOUT_MS`],
//! [`REQUEST_TIMEOUT_MS`]); subscriptions have an idle limit instead
//! ([`SSE_IDLE_TIMEOUT_MS`]).

#![cfg_attr(not(test), deny(clippy::unwrap_used))]

mod client;
mod dcb;
mod error;
mod filter;
mod group_subscription;
mod groups;
mod listing;
pub mod sse;
mod subscription;

pub use client::{Client, ClientBuilder, Page, CONNECT_TIMEOUT_MS, REQUEST_TIMEOUT_MS};
pub use dcb::{DcbEvent, DcbRead};
pub use error::ClientError;
pub use filter::AllFilter;
pub use group_subscription::GroupSubscription;
pub use groups::{GroupRead, Parked};
pub use subscription::{
    ResumePolicy, Subscription, SubscriptionMessage, MAX_LOSSES_IN_A_ROW, RESUME_DELAY_MS,
    SSE_IDLE_TIMEOUT_MS,
};
