//! Events read from disk point into the buffer they were read with (a scan
//! chunk of up to 1 MiB, or a group of nearby records): their payloads are
//! slices, not copies. When a read keeps only a few events of a buffer (a
//! filtered scan, a stream interleaved with others), those slices would keep
//! the whole buffer alive for as long as the events live. [`SharedBuffer`]
//! follows which buffer the latest events point into and, when the read
//! moves on, copies their payloads out if they use little of it.

use bytes::Bytes;
use strata_core::RecordedEvent;

/// Payloads that use less than this share of their buffer are copied out.
const KEEP_SHARED_MIN_SHARE: usize = 4;

/// The buffer the latest events point into.
#[derive(Default)]
pub(crate) struct SharedBuffer {
    /// Address and length of the buffer (compared, never dereferenced).
    buffer: Option<(usize, usize)>,
    /// Index in the output of the first event read from it.
    first: usize,
}

impl SharedBuffer {
    /// Notes that the next event pushed to `out` comes from `buffer`. When
    /// that is a new buffer, the events of the previous one are released.
    pub(crate) fn enter(&mut self, buffer: &Bytes, out: &mut [RecordedEvent]) {
        let id = (buffer.as_ptr() as usize, buffer.len());
        if self.buffer != Some(id) {
            self.release(out);
            self.buffer = Some(id);
            self.first = out.len();
        }
    }

    /// Copies out the payloads of the events read from the current buffer
    /// if together they use less than a quarter of it.
    pub(crate) fn release(&mut self, out: &mut [RecordedEvent]) {
        let Some((_, len)) = self.buffer.take() else {
            return;
        };
        let Some(events) = out.get_mut(self.first..) else {
            return;
        };
        let used: usize = events.iter().map(|e| e.data.len()).sum();
        if used.saturating_mul(KEEP_SHARED_MIN_SHARE) < len {
            for e in events {
                e.data = Bytes::copy_from_slice(&e.data);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use strata_core::event::lies_within;
    use strata_core::{ContentType, EventId, Metadata, Position, StreamId};

    fn event_in(buffer: &Bytes, at: usize, len: usize) -> RecordedEvent {
        RecordedEvent {
            id: EventId::new(),
            stream_id: StreamId::new("s").unwrap(),
            version: 1,
            position: Position(at as u64),
            event_type: "T".into(),
            data: buffer.slice(at..at + len),
            content_type: ContentType::Binary,
            metadata: Metadata::default(),
            recorded_at: strata_core::clock::from_micros(0),
            tags: Vec::new(),
        }
    }

    #[test]
    fn a_few_events_of_a_large_buffer_are_copied_out() {
        let chunk = Bytes::from(vec![7u8; 1 << 20]);
        let dense = Bytes::from(vec![9u8; 4096]);
        let mut out = Vec::new();
        let mut shared = SharedBuffer::default();
        shared.enter(&chunk, &mut out);
        out.push(event_in(&chunk, 100, 200));
        out.push(event_in(&chunk, 5000, 200));
        // The next buffer is mostly used by its events.
        shared.enter(&dense, &mut out);
        out.push(event_in(&dense, 0, 2048));
        out.push(event_in(&dense, 2048, 2048));
        shared.release(&mut out);
        assert!(!lies_within(&out[0].data, &chunk) && !lies_within(&out[1].data, &chunk));
        assert_eq!(&out[0].data[..], &[7u8; 200][..]);
        assert!(lies_within(&out[2].data, &dense) && lies_within(&out[3].data, &dense));
    }
}
