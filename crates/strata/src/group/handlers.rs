//! A member that runs event handlers (a processor's, or one handler).

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures::FutureExt;
use strata_core::async_trait;
use strata_core::dcb::Query;
use strata_core::group::Delivery;
use strata_core::RecordedEvent;

use super::member::{Verdicts, Work};
use crate::processor::{BatchFailure, EventHandler};

/// Handlers by event type, as a processor registers them.
pub(crate) struct HandlerWork {
    handlers: Vec<Arc<dyn EventHandler>>,
    by_type: HashMap<String, Vec<usize>>,
    any: Vec<usize>,
    batch_events: usize,
    /// Only events matching it are handled; the others are acked.
    query: Option<Query>,
}

impl HandlerWork {
    pub(crate) fn new(
        handlers: Vec<Arc<dyn EventHandler>>,
        by_type: HashMap<String, Vec<usize>>,
        any: Vec<usize>,
        batch_events: usize,
    ) -> Self {
        HandlerWork {
            handlers,
            by_type,
            any,
            batch_events: batch_events.max(1),
            query: None,
        }
    }

    /// Handles only the events matching `query` (every one, with `None`).
    pub(crate) fn with_query(mut self, query: Option<Query>) -> Self {
        self.query = query;
        self
    }

    fn wants(&self, h: usize, event: &RecordedEvent) -> bool {
        if self.query.as_ref().is_some_and(|q| !q.matches(event)) {
            return false;
        }
        self.any.contains(&h)
            || self
                .by_type
                .get(event.event_type.as_str())
                .is_some_and(|hs| hs.contains(&h))
    }

    /// Runs handler `h` over `events` (indexes into the deliveries) in
    /// batches; records the first error of each event that fails.
    async fn run(
        &self,
        h: usize,
        deliveries: &[Delivery],
        events: &[usize],
        failed: &mut [Option<String>],
    ) {
        let handler = &self.handlers[h];
        for chunk in events.chunks(self.batch_events) {
            let mut rest = chunk;
            while !rest.is_empty() {
                let batch: Vec<&RecordedEvent> =
                    rest.iter().map(|&i| &deliveries[i].event).collect();
                let outcome = AssertUnwindSafe(handler.handle_batch(&batch))
                    .catch_unwind()
                    .await;
                match outcome {
                    Ok(Ok(())) => break,
                    Ok(Err(BatchFailure { index, error })) => {
                        // An index out of range means the last event.
                        let index = index.min(rest.len() - 1);
                        failed[rest[index]] =
                            Some(format!("handler `{}` failed: {error}", handler.name()));
                        rest = &rest[index + 1..];
                    }
                    Err(_) => {
                        // Which event it panicked on is unknown: retry them all.
                        for &i in rest {
                            failed[i] = Some(format!("handler `{}` panicked", handler.name()));
                        }
                        break;
                    }
                }
            }
        }
    }
}

#[async_trait]
impl Work for HandlerWork {
    async fn handle(&mut self, deliveries: &[Delivery]) -> Verdicts {
        let mut failed: Vec<Option<String>> = vec![None; deliveries.len()];
        for h in 0..self.handlers.len() {
            // An event that failed for an earlier handler is retried whole:
            // the later ones get it then.
            let events: Vec<usize> = (0..deliveries.len())
                .filter(|&i| failed[i].is_none() && self.wants(h, &deliveries[i].event))
                .collect();
            if !events.is_empty() {
                self.run(h, deliveries, &events, &mut failed).await;
            }
        }
        let mut v = Verdicts::default();
        for (d, failure) in deliveries.iter().zip(failed) {
            match failure {
                None => v.ack.push(d.delivery_id),
                Some(reason) => {
                    tracing::warn!(
                        position = %d.event.position,
                        stream = %d.event.stream_id,
                        version = d.event.version,
                        delivery_count = d.delivery_count,
                        %reason,
                        "event failed; the group retries it"
                    );
                    v.retry.push((d.delivery_id, reason));
                }
            }
        }
        v
    }
}
