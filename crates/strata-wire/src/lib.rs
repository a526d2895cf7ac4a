//! # strata-wire
//!
//! The JSON shapes of Strata's HTTP API (`docs/http-api.md`), defined once:
//! the server (`strata-server`) decodes requests and encodes answers with
//! these types, and the client (`strata-client`) does the reverse.
//!
//! - requests: [`AppendBody`], [`MultiBody`] (with [`MultiPart`]) and the
//!   query strings ([`ReadStreamQuery`], [`ReadAllQuery`], [`DeleteQuery`],
//!   [`SubscribeAllQuery`], [`SubscribeStreamQuery`], [`StreamsQuery`]);
//! - answers: [`AppendOut`], [`MultiOut`], [`Page`] of [`WireEvent`]s,
//!   [`HealthBody`], [`CaughtUp`], [`StreamList`] (of [`StreamOut`]s),
//!   [`WhoAmI`] and every error as an [`ErrorBody`] whose
//!   `error` is one of the [`kind`] strings;
//! - the expected-version spelling ([`expected`]) and the metadata
//!   conversion ([`metadata_to_map`], [`metadata_from_map`]).
//!
//! Event `data` travels verbatim: a JSON event carries its payload as JSON,
//! byte for byte as appended (decimal strings and key order survive); a
//! binary event carries it as a standard base64 string, with
//! `"content_type": "binary"` saying so.
//!
//! ```
//! use strata_core::{ExpectedVersion, NewEvent};
//! use strata_wire::{AppendBody, EventIn};
//!
//! let event = NewEvent::json("Deposited", &serde_json::json!({"amount": "10.00"})).unwrap();
//! let body = AppendBody {
//!     expected_version: ExpectedVersion::NoStream,
//!     events: vec![EventIn::from_new(&event)],
//! };
//! let text = serde_json::to_string(&body).unwrap();
//! assert!(text.starts_with(r#"{"expected_version":"no_stream","events":[{"#));
//! let back: AppendBody = serde_json::from_str(&text).unwrap();
//! assert_eq!(back.expected_version, ExpectedVersion::NoStream);
//! ```

#![cfg_attr(not(test), deny(clippy::unwrap_used))]

mod answer;
mod dcb;
mod error;
mod event;
pub mod expected;
#[doc(hidden)]
pub mod fuzzing;
mod group;
pub mod kind;
mod metadata;
mod request;
mod stream_list;
mod stream_metadata;

pub use answer::{AppendOut, CaughtUp, ErrorBody, HealthBody, MultiOut, Page};
pub use dcb::{
    DcbAppendBody, DcbAppendOut, DcbEventIn, DcbReadBody, DcbReadOut, DcbStreamOut,
    DcbSubscribeQuery, DEFAULT_DCB_READ_LIMIT,
};
pub use error::WireError;
pub use event::{payload_source, raw_json, stream_id, write_recorded_json, EventIn, WireEvent};
pub use group::{
    AckBody, DeleteParkedBody, DeleteParkedOut, DeliveryOut, GroupList, GroupReadBody,
    GroupReadOut, GroupSettings, GroupStatus, NackBody, ParkedList, ParkedOut, ParkedQuery,
    ReplayBody, ReplayOut, SettleReport, SubscribeHello, DEFAULT_GROUP_READ_MAX,
    DEFAULT_PARKED_LIMIT, MAX_PARKED_LIMIT,
};
pub use metadata::{metadata_from_map, metadata_to_map};
pub use request::{
    AppendBody, DeleteQuery, MultiBody, MultiPart, ReadAllQuery, ReadStreamQuery,
    SubscribeAllQuery, SubscribeStreamQuery, SSE_BATCH_EVENT,
};
pub use stream_list::{StreamList, StreamOut, StreamsQuery, WhoAmI, DEFAULT_STREAMS_LIMIT};
pub use stream_metadata::{MetadataBody, MetadataOut};
