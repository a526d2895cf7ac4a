//! What a subscription's connection queue holds: one SSE message, already
//! framed, with its share of the byte budgets (none for the final error
//! event). The share is given back when the connection is done with the
//! bytes, wherever they wait: in the queue, or in the connection's write
//! buffer while the client does not read.

use bytes::Bytes;
use strata_core::StreamId;

use crate::budget::Share;
use crate::held::held_bytes;

/// A framed SSE message waiting for the connection.
pub(crate) struct Buffered {
    frame: Vec<u8>,
    share: Option<Share>,
    /// The stream of the event it carries (none for other messages), so
    /// that it can be dropped if the stream is erased while it waits.
    stream: Option<StreamId>,
    /// The position of the event it carries, so that it can join others
    /// in one message ([`crate::sse`]'s batches).
    position: Option<u64>,
}

impl Buffered {
    /// A message holding `share` of the budgets until it is written.
    pub fn new(frame: Vec<u8>, share: Option<Share>) -> Self {
        Buffered {
            frame,
            share,
            stream: None,
            position: None,
        }
    }

    /// The event at `position` of `stream`, its frame written by
    /// [`crate::sse::event_frame`], holding `share` of the budgets until
    /// written.
    pub fn event(frame: Vec<u8>, share: Share, stream: StreamId, position: u64) -> Self {
        Buffered {
            frame,
            share: Some(share),
            stream: Some(stream),
            position: Some(position),
        }
    }

    /// The stream of the event it carries.
    pub fn stream(&self) -> Option<&StreamId> {
        self.stream.as_ref()
    }

    /// The position of the event it carries.
    pub fn position(&self) -> Option<u64> {
        self.position
    }

    /// The bytes for the connection; they keep the share until dropped.
    pub fn into_bytes(self) -> Bytes {
        held_bytes(self.frame, self.share)
    }

    /// The framed message and its share, to be written with others.
    pub fn into_parts(self) -> (Vec<u8>, Option<Share>) {
        (self.frame, self.share)
    }
}
