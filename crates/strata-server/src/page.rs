//! Read pages bounded by bytes as well as by events: a page is read in
//! sub-reads sized from the events read so far, and stops at the event that
//! reaches the byte budget, so a page of large events never holds more than
//! the budget (plus one event) in memory.

use std::future::Future;
use std::sync::Arc;

use strata_core::{RecordedEvent, Result};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::budget::kib_semaphore;

/// Most events a page's first sub-read asks for; later ones are sized from
/// the average event read so far.
const FIRST_SUB_READ_EVENTS: usize = 256;

/// Bytes a page's first sub-read is sized for, at the store's largest event
/// size (so one event, at the default limits).
pub(crate) const FIRST_SUB_READ_BYTES: usize = 1024 * 1024;

/// How much of the budget an event read holds: its bytes, and as much again
/// for its JSON while the page is encoded and written.
const HELD_PER_BYTE: usize = 2;

/// The server's budget of bytes held by read pages in flight, from the read
/// until the response is written (`max_read_bytes_in_flight`), in KiB. A
/// sub-read takes its share before it reads (sized at the average event
/// read so far), so however many clients read large events at once, the
/// pages in memory stay within the budget; a read that finds it spent waits,
/// under the request timeout.
pub(crate) struct ReadBudget {
    kib: Arc<Semaphore>,
    total_kib: u32,
}

impl ReadBudget {
    /// A budget of `bytes` (at least 1 KiB).
    pub fn new(bytes: usize) -> Self {
        let (kib, total_kib) = kib_semaphore(bytes);
        ReadBudget { kib, total_kib }
    }

    /// Makes `held` cover `bytes` of events (the whole budget at most),
    /// waiting for the rest.
    async fn cover(&self, held: &mut Option<OwnedSemaphorePermit>, bytes: usize) {
        let has = held.as_ref().map_or(0, |h| h.num_permits());
        let need = Self::kib_for(bytes).min(self.total_kib as usize);
        let Some(more) = need.checked_sub(has).filter(|m| *m > 0) else {
            return;
        };
        let more = u32::try_from(more).unwrap_or(self.total_kib);
        // The semaphore is never closed, so acquiring only waits.
        if let Ok(share) = self.kib.clone().acquire_many_owned(more).await {
            match held {
                Some(h) => h.merge(share),
                None => *held = Some(share),
            }
        }
    }

    /// Shrinks `held` to the share `bytes` of events need.
    fn keep(held: &mut Option<OwnedSemaphorePermit>, bytes: usize) {
        if let Some(h) = held {
            let extra = h.num_permits().saturating_sub(Self::kib_for(bytes));
            drop(h.split(extra));
        }
    }

    /// The KiB `bytes` of events hold.
    fn kib_for(bytes: usize) -> usize {
        bytes.saturating_mul(HELD_PER_BYTE) / 1024 + 1
    }

    /// KiB free now.
    #[cfg(test)]
    fn available_kib(&self) -> usize {
        self.kib.available_permits()
    }
}

/// What a budgeted read gave.
pub(crate) struct BudgetedPage {
    /// The events, in the order read.
    pub events: Vec<RecordedEvent>,
    /// Whether the store may hold more after the last event: the page is
    /// full (by events or by bytes), not cut short by the end.
    pub more: bool,
    /// The page's share of the read budget, to be held until it is written.
    pub share: Option<OwnedSemaphorePermit>,
}

/// How a page is read: at most `limit` events and about `max_bytes` bytes,
/// under the server's `budget`; `largest` is the store's largest event size.
pub(crate) struct PageBounds<'a> {
    pub limit: usize,
    pub max_bytes: usize,
    pub largest: usize,
    pub budget: &'a ReadBudget,
}

/// Reads a page through `read`, which is given the last event read so far
/// (`None` at first) and how many events to read after it. The first
/// sub-read is sized at the largest event size, later ones at the average
/// read so far; each takes its share of the budget before it reads.
pub(crate) async fn read_budgeted<F, Fut>(
    bounds: PageBounds<'_>,
    mut read: F,
) -> Result<BudgetedPage>
where
    F: FnMut(Option<&RecordedEvent>, usize) -> Fut,
    Fut: Future<Output = Result<Vec<RecordedEvent>>>,
{
    let PageBounds {
        limit,
        max_bytes,
        largest,
        budget,
    } = bounds;
    let mut page = BudgetedPage {
        events: Vec::new(),
        more: true,
        share: None,
    };
    let mut bytes = 0usize;
    let first = (FIRST_SUB_READ_BYTES / largest.max(1)).clamp(1, FIRST_SUB_READ_EVENTS);
    let mut want = limit.min(first);
    let mut average = largest.max(1);
    loop {
        let guess = want.saturating_mul(average);
        budget
            .cover(&mut page.share, bytes.saturating_add(guess))
            .await;
        let got = read(page.events.last(), want).await?;
        let short = got.len() < want;
        for e in got {
            let size = e.size_bytes();
            if !page.events.is_empty() && bytes.saturating_add(size) > max_bytes {
                ReadBudget::keep(&mut page.share, bytes);
                return Ok(page);
            }
            bytes += size;
            page.events.push(e);
        }
        // Events larger than guessed hold their real size.
        budget.cover(&mut page.share, bytes).await;
        if short || page.events.len() >= limit || bytes >= max_bytes {
            page.more = !short;
            ReadBudget::keep(&mut page.share, bytes);
            return Ok(page);
        }
        average = (bytes / page.events.len().max(1)).max(1);
        let fits = (max_bytes - bytes) / average;
        want = (limit - page.events.len()).min(fits.max(1));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use std::time::Duration;
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
            tags: Vec::new(),
        }
    }

    /// A store of `n` events of `size` bytes, read from after the last one.
    async fn page(n: u64, size: usize, limit: usize, budget: usize) -> (BudgetedPage, usize) {
        let mut reads = 0;
        let read_budget = ReadBudget::new(1 << 30);
        let bounds = PageBounds {
            limit,
            max_bytes: budget,
            largest: 1 << 20,
            budget: &read_budget,
        };
        let page = read_budgeted(bounds, |last, count| {
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
    async fn a_page_holds_its_share_until_it_is_dropped() {
        let budget = ReadBudget::new(64 << 20);
        let p = read_budgeted(
            PageBounds {
                limit: 600,
                max_bytes: 16 << 20,
                largest: 1 << 20,
                budget: &budget,
            },
            |last, count| {
                let from = last.map_or(0, |e| e.position.0 + 1);
                async move {
                    Ok((from..600.min(from + count as u64))
                        .map(|i| event(i, 900_000))
                        .collect())
                }
            },
        )
        .await
        .unwrap();
        let bytes: usize = p.events.iter().map(RecordedEvent::size_bytes).sum();
        let held = (64 << 10) - budget.available_kib();
        assert_eq!(held, ReadBudget::kib_for(bytes));
        drop(p);
        assert_eq!(budget.available_kib(), 64 << 10);
    }

    #[tokio::test]
    async fn a_read_waits_while_the_budget_is_spent() {
        let budget = ReadBudget::new(1 << 20);
        let bounds = || PageBounds {
            limit: 10,
            max_bytes: 16 << 20,
            largest: 1 << 20,
            budget: &budget,
        };
        let read = |last: Option<&RecordedEvent>, count: usize| {
            let from = last.map_or(0, |e| e.position.0 + 1);
            async move {
                Ok((from..10.min(from + count as u64))
                    .map(|i| event(i, 100_000))
                    .collect())
            }
        };
        let first = read_budgeted(bounds(), read).await.unwrap();
        assert_eq!(
            budget.available_kib(),
            0,
            "ten 100 KB events and their JSON hold the 1 MiB budget"
        );
        let second =
            tokio::time::timeout(Duration::from_millis(50), read_budgeted(bounds(), read)).await;
        assert!(second.is_err(), "a second page waits for the budget");
        drop(first);
        assert_eq!(
            read_budgeted(bounds(), read).await.unwrap().events.len(),
            10
        );
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
