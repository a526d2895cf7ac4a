//! Committing a batch: written here with one `write` at the tail, then
//! handed to the sync stage ([`super::stage`]), which syncs, publishes and
//! only then acknowledges — so no caller hears of an append that a crash
//! could still take back, and no reader sees one before it is durable (in
//! `Always` mode).

use std::time::Instant;

use crate::config::Durability;
use crate::writer::pending::Decided;
use crate::writer::stage::{fail_acks, Job};
use crate::writer::{Turn, Writer};

impl Writer {
    /// Writes the batch's frames with one write at the tail and moves the
    /// tail past them. An error is why the store must stop accepting writes.
    pub(super) fn write(&mut self) -> Result<(), String> {
        if self.frames.is_empty() {
            return Ok(());
        }
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
        self.tail += self.frames.len() as u64;
        self.dirty = true;
        Ok(())
    }

    /// Hands the written turn to the sync stage, with a sync if one is due,
    /// and keeps what it decided until it is published.
    pub(super) fn hand_off(&mut self, turn: &mut Turn, decided: Decided) {
        let sync = self.sync_due(turn);
        if sync {
            self.dirty = false;
            self.last_sync = Instant::now();
        }
        self.turn_seq += 1;
        let wrote = !self.frames.is_empty();
        self.stage.send(Job {
            seq: self.turn_seq,
            sync,
            segment: self.segment.clone(),
            end: self.tail,
            next_frame_seq: self.frames.next_seq(),
            wrote,
            effects: std::mem::take(&mut turn.effects),
            acks: std::mem::take(&mut turn.acks),
            last_position: turn.last_position,
        });
        if wrote {
            self.inflight.push_back((self.turn_seq, decided));
        }
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

    /// A failed write: the store stops accepting writes and every caller of
    /// the turn is told so. Returns true if the turn closed the writer.
    pub(super) fn fail(&mut self, reason: String, turn: Turn) -> bool {
        self.poison(reason);
        let reason = self.poisoned.clone().unwrap_or_default();
        // Turns written before this one may still be synced and answered.
        self.stage.drain();
        fail_acks(turn.acks, &reason);
        // Everything carried over fails the same way on the next turn.
        if let Some(c) = turn.close {
            let _ = c.send(Err(self.poisoned_error()));
            return true;
        }
        false
    }
}
