//! What a subscription's connection queue holds: an SSE event and its share
//! of the subscription's byte budget (none for the final error event),
//! given back once the event is handed to the connection.

use axum::response::sse::Event;
use tokio::sync::OwnedSemaphorePermit;

/// An SSE event waiting for the connection, with its share of the
/// subscription's byte budget.
pub(crate) type Buffered = (Event, Option<OwnedSemaphorePermit>);
