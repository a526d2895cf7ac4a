//! Saves and resets: one record appended and fsynced before it is
//! acknowledged.

use std::sync::atomic::Ordering;

use strata_core::{Error, Position, Result};

use super::file::CheckpointFile;
use super::options::MAX_CHECKPOINT_NAMES;
use super::record::{encode_record, record_bytes};

impl CheckpointFile {
    /// Records a save (`Some`) or a reset (`None`), durably.
    pub(super) fn write(&self, name: &str, position: Option<Position>) -> Result<()> {
        let mut w = self.writer.lock();
        if let Some(reason) = &w.poisoned {
            return Err(Error::Poisoned {
                reason: reason.clone(),
            });
        }
        {
            let map = self.map.lock();
            let current = map.get(name).copied();
            if current == position {
                return Ok(()); // nothing changes; no need to write
            }
            if current.is_none() && map.len() >= MAX_CHECKPOINT_NAMES {
                return Err(Error::invalid(format!(
                    "the checkpoint store holds {MAX_CHECKPOINT_NAMES} names, the most it \
                     allows; reset unused ones"
                )));
            }
        }
        let mut record = Vec::with_capacity(record_bytes(name) as usize);
        encode_record(&mut record, name, position);
        let offset = w.len;
        let err = if let Err(e) = w.file.write_all_at(&record, offset) {
            Some(Error::io(
                format!("writing {} at offset {offset}", self.path.display()),
                e,
            ))
        } else if let Err(e) = w.file.sync_data() {
            Some(Error::io(format!("syncing {}", self.path.display()), e))
        } else {
            None
        };
        if let Some(err) = err {
            w.poison(&err);
            return Err(err);
        }
        w.len = offset + record.len() as u64;
        self.file_bytes.store(w.len, Ordering::Relaxed);
        {
            let mut map = self.map.lock();
            match position {
                Some(p) => {
                    map.insert(name.to_owned(), p);
                }
                None => {
                    map.remove(name);
                }
            }
        }
        self.maybe_compact(&mut w)
    }
}
