//! The bytes of the checkpoint file: its header and its records, encoded and
//! decoded. `docs/log-format.md` ("Checkpoint file") describes every byte.
//!
//! Decoding is total: every length is checked against the bytes present and
//! against the format's limits before anything is sliced, and every failure
//! is a typed [`DecodeError`].

#![deny(clippy::indexing_slicing)]

use std::collections::HashMap;

use strata_core::Position;

use crate::decode::{check_crc, DecodeError, Reader};

/// First 8 bytes of the checkpoint file.
pub const CHECKPOINT_FILE_MAGIC: &[u8; 8] = b"STRATACP";
/// Version of the checkpoint file format this code writes and reads.
pub const CHECKPOINT_FORMAT_VERSION: u32 = 1;
/// Size of the file header; the first record starts here.
pub const CHECKPOINT_FILE_HEADER_BYTES: usize = 32;
/// Size of a record's fixed part (before the name).
pub const CHECKPOINT_RECORD_FIXED_BYTES: usize = 24;
/// Records start at multiples of this many bytes.
pub const CHECKPOINT_RECORD_ALIGN_BYTES: usize = 8;
/// The longest checkpoint name accepted, in bytes of UTF-8.
pub const MAX_CHECKPOINT_NAME_BYTES: usize = 1024;

const _: () = assert!(MAX_CHECKPOINT_NAME_BYTES <= u16::MAX as usize);

/// Bytes of the file header covered by its checksum.
const FILE_HEADER_CRC_COVERS: usize = 28;

const KIND_SAVE: u8 = 1;
const KIND_RESET: u8 = 2;

/// One decoded record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Record<'a> {
    /// The checkpoint's name.
    pub(super) name: &'a str,
    /// Its position, or `None` for a reset.
    pub(super) position: Option<Position>,
    /// Bytes of the record without padding.
    pub(super) len: usize,
}

/// Rounds up to the record alignment.
pub(super) fn align_u64(n: u64) -> u64 {
    let a = CHECKPOINT_RECORD_ALIGN_BYTES as u64;
    n.div_ceil(a) * a
}

/// Bytes a record for `name` takes on disk, padding included.
pub(super) fn record_bytes(name: &str) -> u64 {
    align_u64((CHECKPOINT_RECORD_FIXED_BYTES + name.len()) as u64)
}

/// Bytes a compacted file holding `map` takes.
pub(super) fn live_bytes_of(map: &HashMap<String, Position>) -> u64 {
    CHECKPOINT_FILE_HEADER_BYTES as u64 + map.keys().map(|n| record_bytes(n)).sum::<u64>()
}

/// Appends one record (`None` = reset), padded, to `out`. The caller has
/// checked the name against [`MAX_CHECKPOINT_NAME_BYTES`].
pub(super) fn encode_record(out: &mut Vec<u8>, name: &str, position: Option<Position>) {
    debug_assert!(name.len() <= MAX_CHECKPOINT_NAME_BYTES);
    let start = out.len();
    let record_len = CHECKPOINT_RECORD_FIXED_BYTES + name.len();
    // Everything the checksum covers: the record after its checksum.
    let mut covered = Vec::with_capacity(record_len - 4);
    covered.extend_from_slice(&(record_len as u32).to_le_bytes());
    covered.push(if position.is_some() {
        KIND_SAVE
    } else {
        KIND_RESET
    });
    covered.push(0);
    covered.extend_from_slice(&(name.len() as u16).to_le_bytes());
    covered.extend_from_slice(&[0u8; 4]);
    covered.extend_from_slice(&position.map_or(0, |p| p.0).to_le_bytes());
    covered.extend_from_slice(name.as_bytes());
    out.extend_from_slice(&crc32c::crc32c(&covered).to_le_bytes());
    out.extend_from_slice(&covered);
    out.resize(start + align_u64(record_len as u64) as usize, 0);
    debug_assert!(
        out.get(start..)
            .and_then(|b| decode_record(b).ok())
            .is_some_and(|r| r.name == name && r.position == position && r.len == record_len),
        "an encoded checkpoint record must decode to itself"
    );
}

/// Decodes and checks the record at the start of `b` (which may hold more).
pub(super) fn decode_record(b: &[u8]) -> Result<Record<'_>, DecodeError> {
    let fixed = Reader::new(b).bytes(CHECKPOINT_RECORD_FIXED_BYTES, "checkpoint record")?;
    let mut r = Reader::new(fixed);
    let stored_crc = r.u32("checkpoint record checksum")?;
    let record_len = r.u32("checkpoint record length")? as usize;
    let kind = r.u8("checkpoint record kind")?;
    let reserved = r.u8("checkpoint record reserved bytes")?;
    let name_len = usize::from(r.u16("checkpoint name length")?);
    let reserved_too = r.array::<4>("checkpoint record reserved bytes")?;
    let position = r.u64("checkpoint position")?;
    if name_len > MAX_CHECKPOINT_NAME_BYTES {
        return Err(DecodeError::TooLong {
            what: "checkpoint name length",
            len: name_len as u64,
            max: MAX_CHECKPOINT_NAME_BYTES as u64,
        });
    }
    if record_len != CHECKPOINT_RECORD_FIXED_BYTES + name_len {
        return Err(DecodeError::invalid(
            "checkpoint record length",
            format!("{record_len} does not add up to a {name_len}-byte name"),
        ));
    }
    let mut whole = Reader::new(b);
    whole.skip(4, "checkpoint record checksum")?;
    let covered = whole.bytes(record_len - 4, "checkpoint record")?;
    check_crc(covered, stored_crc, "checkpoint record")?;
    if reserved != 0 || reserved_too != [0; 4] {
        return Err(DecodeError::invalid(
            "checkpoint record reserved bytes",
            "non-zero reserved bytes",
        ));
    }
    let position = match kind {
        KIND_SAVE => Some(Position(position)),
        KIND_RESET if position == 0 => None,
        k => {
            return Err(DecodeError::invalid(
                "checkpoint record kind",
                format!("bad record kind {k}"),
            ))
        }
    };
    let mut names = Reader::new(covered);
    names.skip(CHECKPOINT_RECORD_FIXED_BYTES - 4, "checkpoint record")?;
    let name = names.str(name_len, "checkpoint name")?;
    Ok(Record {
        name,
        position,
        len: record_len,
    })
}

/// Encodes the file header.
pub(super) fn encode_file_header() -> [u8; CHECKPOINT_FILE_HEADER_BYTES] {
    let mut b = Vec::with_capacity(CHECKPOINT_FILE_HEADER_BYTES);
    b.extend_from_slice(CHECKPOINT_FILE_MAGIC);
    b.extend_from_slice(&CHECKPOINT_FORMAT_VERSION.to_le_bytes());
    b.resize(FILE_HEADER_CRC_COVERS, 0); // reserved
    let crc = crc32c::crc32c(&b);
    b.extend_from_slice(&crc.to_le_bytes());
    let mut h = [0u8; CHECKPOINT_FILE_HEADER_BYTES];
    h.copy_from_slice(&b);
    h
}

/// Checks the file header at the start of `h` (which may hold more).
pub(super) fn check_file_header(h: &[u8]) -> Result<(), DecodeError> {
    let header = Reader::new(h).bytes(CHECKPOINT_FILE_HEADER_BYTES, "checkpoint file header")?;
    let mut r = Reader::new(header);
    let covered = r.bytes(FILE_HEADER_CRC_COVERS, "checkpoint file header")?;
    let stored_crc = r.u32("checkpoint file header checksum")?;
    let mut r = Reader::new(covered);
    if &r.array::<8>("checkpoint file magic")? != CHECKPOINT_FILE_MAGIC {
        return Err(DecodeError::invalid("checkpoint file magic", "bad magic"));
    }
    check_crc(covered, stored_crc, "checkpoint file header")?;
    let version = r.u32("checkpoint format version")?;
    if version != CHECKPOINT_FORMAT_VERSION {
        return Err(DecodeError::invalid(
            "checkpoint format version",
            format!(
                "checkpoint format version {version}, this build reads {CHECKPOINT_FORMAT_VERSION}"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn record(name: &str, position: Option<Position>) -> Vec<u8> {
        let mut b = Vec::new();
        encode_record(&mut b, name, position);
        b
    }

    #[test]
    fn record_roundtrip_and_every_flipped_bit_is_caught() {
        let b = record("balances", Some(Position(77)));
        assert_eq!(b.len() % CHECKPOINT_RECORD_ALIGN_BYTES, 0);
        assert_eq!(
            decode_record(&b).unwrap(),
            Record {
                name: "balances",
                position: Some(Position(77)),
                len: 32
            }
        );
        let len = CHECKPOINT_RECORD_FIXED_BYTES + "balances".len();
        for bit in 0..len * 8 {
            let mut c = b.clone();
            c[bit / 8] ^= 1 << (bit % 8);
            assert!(
                decode_record(&c).is_err(),
                "flip of bit {bit} went unnoticed"
            );
        }
        let r = record("x", None);
        assert_eq!(decode_record(&r).unwrap().position, None);
    }

    #[test]
    fn a_record_cut_at_any_length_is_truncated() {
        let b = record("balances", Some(Position(77)));
        let len = CHECKPOINT_RECORD_FIXED_BYTES + "balances".len();
        for cut in 0..len {
            match decode_record(&b[..cut]) {
                Err(DecodeError::Truncated { .. }) => {}
                other => panic!("cut at {cut}: expected Truncated, got {other:?}"),
            }
        }
        assert!(decode_record(&b[..len]).is_ok());
    }

    #[test]
    fn huge_length_fields_are_refused_before_use() {
        let mut b = record("balances", Some(Position(77)));
        b[10..12].copy_from_slice(&u16::MAX.to_le_bytes());
        assert!(matches!(
            decode_record(&b),
            Err(DecodeError::TooLong {
                what: "checkpoint name length",
                ..
            })
        ));
        let mut b = record("balances", Some(Position(77)));
        b[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            decode_record(&b),
            Err(DecodeError::Invalid {
                what: "checkpoint record length",
                ..
            })
        ));
    }

    #[test]
    fn a_flipped_byte_is_a_typed_error() {
        let b = record("balances", Some(Position(77)));
        let len = CHECKPOINT_RECORD_FIXED_BYTES + "balances".len();
        for at in 0..len {
            let mut c = b.clone();
            c[at] ^= 0xFF;
            assert!(
                decode_record(&c).is_err(),
                "flip of byte {at} went unnoticed"
            );
        }
        let mut c = b.clone();
        c[30] ^= 0x01; // inside the name
        assert!(matches!(
            decode_record(&c),
            Err(DecodeError::Checksum { .. })
        ));
    }

    #[test]
    fn file_header_roundtrip_truncation_and_damage() {
        let h = encode_file_header();
        assert_eq!(check_file_header(&h), Ok(()));
        for len in 0..CHECKPOINT_FILE_HEADER_BYTES {
            assert!(matches!(
                check_file_header(&h[..len]),
                Err(DecodeError::Truncated { .. })
            ));
        }
        for at in 0..CHECKPOINT_FILE_HEADER_BYTES {
            let mut c = h;
            c[at] ^= 0x10;
            match check_file_header(&c) {
                Err(DecodeError::Checksum { .. } | DecodeError::Invalid { .. }) => {}
                other => panic!("flip of byte {at}: expected a typed error, got {other:?}"),
            }
        }
    }
}
