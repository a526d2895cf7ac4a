//! Replaying the checkpoint file on open: the records, in order, give each
//! name's checkpoint; a torn tail is told apart from damage.

#![deny(clippy::indexing_slicing)]

use std::collections::HashMap;
use std::path::Path;

use strata_core::{Error, Position, Result};

use super::record::{
    align_u64, decode_record, CHECKPOINT_FILE_HEADER_BYTES, CHECKPOINT_RECORD_ALIGN_BYTES,
};

/// Replays the records of `bytes` into `map`; returns where valid data ends
/// (the start of a torn tail, or the end of the file). Damage followed by a
/// valid record is an error.
pub(super) fn replay(
    bytes: &[u8],
    path: &Path,
    map: &mut HashMap<String, Position>,
) -> Result<usize> {
    let from = |at: usize| bytes.get(at..).unwrap_or_default();
    let mut at = CHECKPOINT_FILE_HEADER_BYTES;
    while at < bytes.len() {
        match decode_record(from(at)) {
            Ok(record) => {
                match record.position {
                    Some(p) => {
                        map.insert(record.name.to_owned(), p);
                    }
                    None => {
                        map.remove(record.name);
                    }
                }
                at += align_u64(record.len as u64) as usize;
            }
            Err(reason) => {
                let later = (at + CHECKPOINT_RECORD_ALIGN_BYTES..bytes.len())
                    .step_by(CHECKPOINT_RECORD_ALIGN_BYTES)
                    .find(|&p| decode_record(from(p)).is_ok());
                return match later {
                    None => Ok(at),
                    Some(next) => Err(Error::Corrupt {
                        location: format!("{} at offset {at}", path.display()),
                        reason: format!(
                            "{reason}, and a valid record follows at offset {next}, so this is \
                             damage, not a torn write; restore the file, or delete it to \
                             restart every projection from the beginning"
                        ),
                    }),
                };
            }
        }
    }
    Ok(bytes.len())
}

/// Where the records of a checkpoint file's `bytes` end once a torn tail is
/// cut, as opening cuts it; `None` when damage is followed by a valid
/// record (damage, or a copy taken while a record was being written).
/// Backups use it to copy the file consistently while the store writes to it.
pub(crate) fn valid_end(bytes: &[u8]) -> Option<usize> {
    replay(bytes, Path::new(""), &mut HashMap::new()).ok()
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::checkpoint::record::{encode_file_header, encode_record};

    fn file() -> Vec<u8> {
        let mut b = encode_file_header().to_vec();
        encode_record(&mut b, "a", Some(Position(1)));
        encode_record(&mut b, "b", Some(Position(2)));
        encode_record(&mut b, "a", None);
        b
    }

    #[test]
    fn a_file_cut_anywhere_replays_to_a_prefix_without_panicking() {
        let b = file();
        for len in CHECKPOINT_FILE_HEADER_BYTES..=b.len() {
            let mut map = HashMap::new();
            let end = replay(&b[..len], Path::new("x"), &mut map).unwrap();
            assert!(end <= len, "cut at {len}: valid data ends at {end}");
        }
        let mut map = HashMap::new();
        assert_eq!(replay(&b, Path::new("x"), &mut map).unwrap(), b.len());
        assert_eq!(map.len(), 1);
        assert_eq!(map.get("b"), Some(&Position(2)));
    }

    #[test]
    fn damage_before_a_valid_record_is_corrupt() {
        let mut b = file();
        b[CHECKPOINT_FILE_HEADER_BYTES + 5] ^= 0x01;
        let mut map = HashMap::new();
        match replay(&b, Path::new("x"), &mut map) {
            Err(Error::Corrupt { reason, .. }) => {
                assert!(reason.contains("not a torn write"), "{reason}")
            }
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }
}
