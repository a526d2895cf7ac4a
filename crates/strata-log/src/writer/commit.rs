//! Committing a batch: write, sync, publish, acknowledge — in that order, so
//! no caller hears of an append that a crash could still take back, and no
//! reader sees one before it is durable (in `Always` mode).

use std::time::Instant;

use strata_core::Position;

use crate::config::Durability;
use crate::writer::{Effect, PendingAck, Turn, Writer};

impl Writer {
    /// Writes the batch's frames with one write at the tail, then syncs if
    /// the durability mode (or a flush, a seal or a close) asks for it. An
    /// error is why the store must stop accepting writes.
    pub(super) fn write_and_sync(&mut self, turn: &Turn) -> Result<(), String> {
        if !self.frames.is_empty() {
            self.segment
                .file
                .write_all_at(&self.frames.buf, self.tail)
                .map_err(|e| {
                    format!(
                        "write of {} bytes to {} at offset {} failed: {e}",
                        self.frames.len(),
                        self.segment.path.display(),
                        self.tail
                    )
                })?;
            self.dirty = true;
        }
        if !self.sync_due(turn) {
            return Ok(());
        }
        let sync_started = Instant::now();
        self.segment
            .file
            .sync_data()
            .map_err(|e| format!("fsync of {} failed: {e}", self.segment.path.display()))?;
        self.store.metrics.record_sync();
        self.frames.mark_synced();
        self.dirty = false;
        self.last_sync = Instant::now();
        self.last_sync_took = sync_started.elapsed();
        Ok(())
    }

    /// Whether unsynced bytes must be synced before this turn acknowledges.
    fn sync_due(&self, turn: &Turn) -> bool {
        if !self.dirty {
            return false;
        }
        let by_mode = match self.store.config.durability {
            Durability::Always => true,
            Durability::Interval(d) => turn.force_sync || self.last_sync.elapsed() >= d,
            Durability::None => turn.force_sync,
        };
        by_mode || turn.force_sync || turn.rotate || turn.close.is_some()
    }

    /// Makes the committed frames visible to readers and moves the head.
    pub(super) fn publish(&mut self, effects: Vec<Effect>, last_position: Option<u64>) {
        self.tail += self.frames.len() as u64;
        let mut state = self.store.state.write();
        for eff in effects {
            match eff {
                Effect::Event {
                    stream,
                    version,
                    entry,
                    tagged,
                    recorded_at,
                } => {
                    if let Some((event_type, tags)) = tagged {
                        let placed = crate::dcb::Placed {
                            stream: stream.clone(),
                            version,
                            recorded_at,
                        };
                        state.tags.add(entry.position, placed, &event_type, &tags);
                    }
                    state.streams.add_event(&stream, version, entry.position);
                    state.active.add(&entry);
                }
                Effect::Frame(off) => state.active.add_frame(off),
                Effect::Delete {
                    stream,
                    through,
                    kind,
                } => state.streams.record_delete(&stream, through, kind),
                Effect::Metadata { target, metadata } => {
                    state.streams.set_metadata(target, metadata)
                }
            }
        }
        state.visible_end = self.tail;
        if let Some(p) = last_position {
            state.head = Position(p);
        }
        let head = state.head;
        drop(state);
        self.store.publish_head(head);
    }

    /// Tells each caller of the turn its outcome.
    pub(super) fn acknowledge(acks: Vec<PendingAck>) {
        for ack in acks {
            match ack {
                PendingAck::Append(tx, results) => {
                    let _ = tx.send(Ok(results));
                }
                PendingAck::Refused(tx, e) => {
                    let _ = tx.send(Err(e));
                }
                PendingAck::Delete(tx) | PendingAck::Sync(tx) => {
                    let _ = tx.send(Ok(()));
                }
            }
        }
    }

    /// A failed write or sync: the store stops accepting writes and every
    /// caller of the turn is told so. Returns true if the turn closed the writer.
    pub(super) fn fail(&mut self, reason: String, turn: Turn) -> bool {
        self.poison(reason);
        for ack in turn.acks {
            match ack {
                PendingAck::Append(tx, _) | PendingAck::Refused(tx, _) => {
                    let _ = tx.send(Err(self.poisoned_error()));
                }
                PendingAck::Delete(tx) | PendingAck::Sync(tx) => {
                    let _ = tx.send(Err(self.poisoned_error()));
                }
            }
        }
        // Everything carried over fails the same way on the next turn.
        if let Some(c) = turn.close {
            let _ = c.send(Err(self.poisoned_error()));
            return true;
        }
        false
    }
}
