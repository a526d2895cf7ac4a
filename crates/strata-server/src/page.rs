//! Read pages bounded by bytes as well as by events: a page is read in
//! sub-reads sized from the events read so far, and stops at the event that
//! reaches the byte budget, so a page of large events never holds more than
//! the budget (plus one event) in memory.

use std::future::Future;

use strata_core::{RecordedEvent, Result};

/// Most events a page's first sub-read asks for; later ones are sized from
/// the average event read so far.
const FIRST_SUB_READ_EVENTS: usize = 256;

/// What a budgeted read gave.
pub(crate) struct BudgetedPage {
    /// The events, in the order read.
    pub events: Vec<RecordedEvent>,
    /// Whether the store may hold more after the last event: the page is
    /// full (by events or by bytes), not cut short by the end.
    pub more: bool,
}

/// Reads up to `limit` events and about `max_bytes` bytes through `read`,
/// which is given the last event read so far (`None` at first) and how many
/// events to read after it. `first_read` bounds the first sub-read, so that
/// even events of the largest size stay near the budget.
pub(crate) async fn read_budgeted<F, Fut>(
    limit: usize,
    max_bytes: usize,
    first_read: usize,
    mut read: F,
) -> Result<BudgetedPage>
where
    F: FnMut(Option<&RecordedEvent>, usize) -> Fut,
    Fut: Future<Output = Result<Vec<RecordedEvent>>>,
{
    let mut events: Vec<RecordedEvent> = Vec::new();
    let mut bytes = 0usize;
    let mut want = limit.min(first_read.clamp(1, FIRST_SUB_READ_EVENTS));
    loop {
        let got = read(events.last(), want).await?;
        let short = got.len() < want;
        for e in got {
            let size = e.size_bytes();
            if !events.is_empty() && bytes.saturating_add(size) > max_bytes {
                return Ok(BudgetedPage { events, more: true });
            }
            bytes += size;
            events.push(e);
        }
        if short {
            return Ok(BudgetedPage {
                events,
                more: false,
            });
        }
        if events.len() >= limit || bytes >= max_bytes {
            return Ok(BudgetedPage { events, more: true });
        }
        let average = bytes / events.len().max(1);
        let fits = (max_bytes - bytes) / average.max(1);
        want = (limit - events.len()).min(fits.max(1));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use strata_core::{Bytes, ContentType, EventId, Metadata, Position, StreamId};

    fn event(i: u64, size: usize) -> RecordedEvent {
        RecordedEvent {
            id: EventId::new(),
            stream_id: StreamId::new("s").unwrap(),
            version: i + 1,
            position: Position(i),
            event_type: "T".into(),
            data: Bytes::from(vec![b'x'; size]),
            content_type: ContentType::Binary,
            metadata: Metadata::default(),
            recorded_at: strata_core::clock::from_micros(0),
        }
    }

    /// A store of `n` events of `size` bytes, read from after the last one.
    async fn page(n: u64, size: usize, limit: usize, budget: usize) -> (BudgetedPage, usize) {
        let mut reads = 0;
        let page = read_budgeted(limit, budget, 16, |last, count| {
            reads += 1;
            let from = last.map_or(0, |e| e.position.0 + 1);
            let events: Vec<_> = (from..n.min(from + count as u64))
                .map(|i| event(i, size))
                .collect();
            async move { Ok(events) }
        })
        .await
        .unwrap();
        (page, reads)
    }

    #[tokio::test]
    async fn large_events_stop_at_the_budget() {
        let (p, _) = page(600, 900_000, 600, 16 << 20).await;
        let bytes: usize = p.events.iter().map(RecordedEvent::size_bytes).sum();
        assert!(p.more);
        assert!(bytes <= 16 << 20, "{bytes}");
        assert_eq!(p.events.len(), (16 << 20) / event(0, 900_000).size_bytes());
    }

    #[tokio::test]
    async fn one_event_over_the_budget_still_makes_progress() {
        let (p, _) = page(3, 2_000, 10, 100).await;
        assert_eq!(p.events.len(), 1);
        assert!(p.more);
    }

    #[tokio::test]
    async fn small_events_fill_the_limit_in_few_reads() {
        let (p, reads) = page(200_000, 200, 100_000, 64 << 20).await;
        assert_eq!(p.events.len(), 100_000);
        assert!(p.more);
        assert!(reads <= 3, "{reads} reads");
        let versions: Vec<u64> = p.events.iter().map(|e| e.version).collect();
        assert_eq!(versions, (1..=100_000).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn the_end_is_not_more() {
        let (p, _) = page(50, 200, 100, 16 << 20).await;
        assert_eq!(p.events.len(), 50);
        assert!(!p.more);
        let (p, _) = page(100, 200, 100, 16 << 20).await;
        assert_eq!(p.events.len(), 100);
        assert!(p.more, "a full page may have more");
    }
}
