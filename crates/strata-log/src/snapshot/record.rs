//! The bytes of a snapshot file: its header and its records, encoded and
//! decoded. `docs/log-format.md` ("Snapshot file") describes every byte.
//!
//! Decoding is total: every length is checked against the bytes present and
//! against the format's limits before anything is sliced, and every failure
//! is a typed [`DecodeError`].

#![deny(clippy::indexing_slicing)]

use strata_core::stream_id::MAX_STREAM_ID_BYTES;

use crate::decode::{check_crc, DecodeError, Reader};

/// First 8 bytes of every snapshot file.
pub const SNAPSHOT_FILE_MAGIC: &[u8; 8] = b"STRATASN";
/// Version of the snapshot file format this code writes and reads.
pub const SNAPSHOT_FORMAT_VERSION: u32 = 1;
/// Size of a snapshot file's header; the first record starts here.
pub const SNAPSHOT_FILE_HEADER_BYTES: usize = 32;
/// Size of the fixed part of a record header (before the stream name).
pub const SNAPSHOT_RECORD_FIXED_BYTES: usize = 40;
/// Records start at multiples of this many bytes.
pub const SNAPSHOT_RECORD_ALIGN_BYTES: usize = 8;
/// The largest snapshot state accepted, in bytes.
pub const MAX_SNAPSHOT_STATE_BYTES: usize = 64 << 20;
/// The longest aggregate type name accepted, in bytes of UTF-8.
pub const MAX_AGGREGATE_TYPE_BYTES: usize = 1024;

/// The largest record header: fixed part, longest stream, longest type.
pub(super) const MAX_RECORD_HEADER_BYTES: usize =
    SNAPSHOT_RECORD_FIXED_BYTES + MAX_STREAM_ID_BYTES + MAX_AGGREGATE_TYPE_BYTES;

/// Bytes of the file header covered by its checksum.
const FILE_HEADER_CRC_COVERS: usize = 28;

const _: () = assert!(MAX_STREAM_ID_BYTES <= u8::MAX as usize);
const _: () = assert!(MAX_AGGREGATE_TYPE_BYTES <= u16::MAX as usize);

/// Record kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(super) enum RecordKind {
    Snapshot = 1,
    Tombstone = 2,
}

/// A decoded record header, borrowing its names from the bytes read.
#[derive(Clone, Copy, Debug)]
pub(super) struct RecordHeader<'a> {
    pub(super) kind: RecordKind,
    pub(super) stream: &'a str,
    pub(super) aggregate_type: &'a str,
    pub(super) version: u64,
    pub(super) schema_version: u32,
    pub(super) taken_at_micros: i64,
    pub(super) state_crc: u32,
    pub(super) header_len: usize,
    pub(super) record_len: usize,
}

/// Rounds up to the record alignment.
pub(super) fn align_u64(n: u64) -> u64 {
    let a = SNAPSHOT_RECORD_ALIGN_BYTES as u64;
    n.div_ceil(a) * a
}

/// The fields of a record to write.
pub(super) struct NewRecord<'a> {
    pub(super) kind: RecordKind,
    pub(super) stream: &'a str,
    pub(super) aggregate_type: &'a str,
    pub(super) version: u64,
    pub(super) schema_version: u32,
    pub(super) taken_at_micros: i64,
    pub(super) state: &'a [u8],
}

impl NewRecord<'_> {
    /// Bytes of the record without padding.
    pub(super) fn len(&self) -> usize {
        SNAPSHOT_RECORD_FIXED_BYTES
            + self.stream.len()
            + self.aggregate_type.len()
            + self.state.len()
    }
}

/// Appends one record, padded to the alignment, to `out`. The caller has
/// checked the names and the state against the format's limits.
pub(super) fn encode_record(out: &mut Vec<u8>, r: &NewRecord<'_>) {
    let NewRecord {
        kind,
        stream,
        aggregate_type,
        version,
        schema_version,
        taken_at_micros,
        state,
    } = *r;
    debug_assert!(!stream.is_empty() && stream.len() <= MAX_STREAM_ID_BYTES);
    debug_assert!(aggregate_type.len() <= MAX_AGGREGATE_TYPE_BYTES);
    debug_assert!(state.len() <= MAX_SNAPSHOT_STATE_BYTES);
    let start = out.len();
    let header_len = SNAPSHOT_RECORD_FIXED_BYTES + stream.len() + aggregate_type.len();
    let record_len = r.len();
    // Everything the header checksum covers: the header after its checksum.
    let mut header = Vec::with_capacity(header_len - 4);
    header.extend_from_slice(&(record_len as u32).to_le_bytes());
    header.push(kind as u8);
    header.push(stream.len() as u8);
    header.extend_from_slice(&(aggregate_type.len() as u16).to_le_bytes());
    header.extend_from_slice(&schema_version.to_le_bytes());
    header.extend_from_slice(&version.to_le_bytes());
    header.extend_from_slice(&taken_at_micros.to_le_bytes());
    header.extend_from_slice(&(state.len() as u32).to_le_bytes());
    header.extend_from_slice(&crc32c::crc32c(state).to_le_bytes());
    header.extend_from_slice(stream.as_bytes());
    header.extend_from_slice(aggregate_type.as_bytes());
    out.extend_from_slice(&crc32c::crc32c(&header).to_le_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(state);
    out.resize(start + align_u64(record_len as u64) as usize, 0);
    debug_assert!(
        out.get(start..)
            .and_then(|b| decode_header(b).ok())
            .is_some_and(|h| h.record_len == record_len
                && h.stream == stream
                && h.version == version),
        "an encoded snapshot record must decode to itself"
    );
}

/// The fixed part of a record header, before its checks.
struct Fixed {
    stored_crc: u32,
    record_len: u32,
    kind: u8,
    stream_len: usize,
    type_len: usize,
    schema_version: u32,
    version: u64,
    taken_at_micros: i64,
    state_len: usize,
    state_crc: u32,
}

fn decode_fixed(b: &[u8]) -> Result<Fixed, DecodeError> {
    let fixed = Reader::new(b).bytes(SNAPSHOT_RECORD_FIXED_BYTES, "snapshot record header")?;
    let mut r = Reader::new(fixed);
    Ok(Fixed {
        stored_crc: r.u32("snapshot record header checksum")?,
        record_len: r.u32("snapshot record length")?,
        kind: r.u8("snapshot record kind")?,
        stream_len: usize::from(r.u8("snapshot stream name length")?),
        type_len: usize::from(r.u16("snapshot aggregate type length")?),
        schema_version: r.u32("snapshot schema version")?,
        version: r.u64("snapshot version")?,
        taken_at_micros: r.i64("snapshot taken_at")?,
        state_len: r.len_u32(MAX_SNAPSHOT_STATE_BYTES, "snapshot state length")?,
        state_crc: r.u32("snapshot state checksum")?,
    })
}

/// Decodes and checks the record header at the start of `b` (which may hold
/// more, or — at the end of a file — less than a whole header).
pub(super) fn decode_header(b: &[u8]) -> Result<RecordHeader<'_>, DecodeError> {
    let f = decode_fixed(b)?;
    let kind = match f.kind {
        1 => RecordKind::Snapshot,
        2 => RecordKind::Tombstone,
        k => {
            return Err(DecodeError::invalid(
                "snapshot record kind",
                format!("unknown record kind {k}"),
            ))
        }
    };
    if f.stream_len == 0 {
        return Err(DecodeError::invalid(
            "snapshot stream name length",
            "empty stream name",
        ));
    }
    if f.type_len > MAX_AGGREGATE_TYPE_BYTES {
        return Err(DecodeError::TooLong {
            what: "snapshot aggregate type length",
            len: f.type_len as u64,
            max: MAX_AGGREGATE_TYPE_BYTES as u64,
        });
    }
    let header_len = SNAPSHOT_RECORD_FIXED_BYTES + f.stream_len + f.type_len;
    let record_len = f.record_len as usize;
    if record_len != header_len + f.state_len {
        return Err(DecodeError::invalid(
            "snapshot record length",
            format!(
                "{record_len} does not add up to a {header_len}-byte header and a {}-byte state",
                f.state_len
            ),
        ));
    }
    let mut r = Reader::new(b);
    r.skip(4, "snapshot record header checksum")?;
    let covered = r.bytes(header_len - 4, "snapshot record header")?;
    check_crc(covered, f.stored_crc, "snapshot record header")?;
    if kind == RecordKind::Tombstone && (f.type_len != 0 || f.state_len != 0) {
        return Err(DecodeError::invalid(
            "snapshot tombstone",
            "tombstone with a type or state",
        ));
    }
    let mut names = Reader::new(covered);
    names.skip(SNAPSHOT_RECORD_FIXED_BYTES - 4, "snapshot record header")?;
    let stream = names.str(f.stream_len, "snapshot stream name")?;
    let aggregate_type = names.str(f.type_len, "snapshot aggregate type")?;
    Ok(RecordHeader {
        kind,
        stream,
        aggregate_type,
        version: f.version,
        schema_version: f.schema_version,
        taken_at_micros: f.taken_at_micros,
        state_crc: f.state_crc,
        header_len,
        record_len,
    })
}

/// Encodes a file header.
pub(super) fn encode_file_header(number: u32) -> [u8; SNAPSHOT_FILE_HEADER_BYTES] {
    let mut b = Vec::with_capacity(SNAPSHOT_FILE_HEADER_BYTES);
    b.extend_from_slice(SNAPSHOT_FILE_MAGIC);
    b.extend_from_slice(&SNAPSHOT_FORMAT_VERSION.to_le_bytes());
    b.extend_from_slice(&number.to_le_bytes());
    b.resize(FILE_HEADER_CRC_COVERS, 0); // reserved
    let crc = crc32c::crc32c(&b);
    b.extend_from_slice(&crc.to_le_bytes());
    let mut h = [0u8; SNAPSHOT_FILE_HEADER_BYTES];
    h.copy_from_slice(&b);
    h
}

/// Checks a file header; returns the file number it names.
pub(super) fn decode_file_header(h: &[u8]) -> Result<u32, DecodeError> {
    let header = Reader::new(h).bytes(SNAPSHOT_FILE_HEADER_BYTES, "snapshot file header")?;
    let mut r = Reader::new(header);
    let covered = r.bytes(FILE_HEADER_CRC_COVERS, "snapshot file header")?;
    let stored_crc = r.u32("snapshot file header checksum")?;
    let mut r = Reader::new(covered);
    if &r.array::<8>("snapshot file magic")? != SNAPSHOT_FILE_MAGIC {
        return Err(DecodeError::invalid("snapshot file magic", "bad magic"));
    }
    check_crc(covered, stored_crc, "snapshot file header")?;
    let version = r.u32("snapshot format version")?;
    if version != SNAPSHOT_FORMAT_VERSION {
        return Err(DecodeError::invalid(
            "snapshot format version",
            format!(
                "snapshot format version {version}, this build reads {SNAPSHOT_FORMAT_VERSION}"
            ),
        ));
    }
    r.u32("snapshot file number")
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn record() -> Vec<u8> {
        let mut b = Vec::new();
        encode_record(
            &mut b,
            &NewRecord {
                kind: RecordKind::Snapshot,
                stream: "account-1",
                aggregate_type: "Account",
                version: 7,
                schema_version: 3,
                taken_at_micros: 1_234,
                state: b"state",
            },
        );
        b
    }

    #[test]
    fn record_roundtrip_and_every_flipped_header_bit_is_caught() {
        let b = record();
        assert_eq!(b.len() % SNAPSHOT_RECORD_ALIGN_BYTES, 0);
        let h = decode_header(&b).unwrap();
        assert_eq!(h.stream, "account-1");
        assert_eq!(h.aggregate_type, "Account");
        assert_eq!(
            (h.version, h.schema_version, h.taken_at_micros),
            (7, 3, 1_234)
        );
        assert_eq!(&b[h.header_len..h.record_len], b"state");
        assert_eq!(crc32c::crc32c(b"state"), h.state_crc);
        for bit in 0..h.header_len * 8 {
            let mut c = b.clone();
            c[bit / 8] ^= 1 << (bit % 8);
            assert!(
                decode_header(&c).is_err(),
                "flip of header bit {bit} went unnoticed"
            );
        }
    }

    #[test]
    fn a_record_cut_at_any_length_is_truncated() {
        let b = record();
        let header_len = decode_header(&b).unwrap().header_len;
        for len in 0..header_len {
            match decode_header(&b[..len]) {
                Err(DecodeError::Truncated { .. }) => {}
                other => panic!("cut at {len}: expected Truncated, got {other:?}"),
            }
        }
        // The header alone decodes: a scan reads the state separately.
        assert!(decode_header(&b[..header_len]).is_ok());
    }

    #[test]
    fn huge_length_fields_are_refused_before_use() {
        let mut b = record();
        b[32..36].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            decode_header(&b),
            Err(DecodeError::TooLong {
                what: "snapshot state length",
                ..
            })
        ));
        let mut b = record();
        b[10..12].copy_from_slice(&u16::MAX.to_le_bytes());
        assert!(matches!(
            decode_header(&b),
            Err(DecodeError::TooLong {
                what: "snapshot aggregate type length",
                ..
            })
        ));
        let mut b = record();
        b[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            decode_header(&b),
            Err(DecodeError::Invalid {
                what: "snapshot record length",
                ..
            })
        ));
    }

    #[test]
    fn a_flipped_byte_is_a_typed_error() {
        let b = record();
        let header_len = decode_header(&b).unwrap().header_len;
        for at in 0..header_len {
            let mut c = b.clone();
            c[at] ^= 0xFF;
            match decode_header(&c) {
                Err(
                    DecodeError::Checksum { .. }
                    | DecodeError::Invalid { .. }
                    | DecodeError::TooLong { .. }
                    | DecodeError::Truncated { .. },
                ) => {}
                Ok(_) => panic!("flip of byte {at} went unnoticed"),
            }
        }
        let mut c = b.clone();
        c[45] ^= 0x01; // inside the stream name
        assert!(matches!(
            decode_header(&c),
            Err(DecodeError::Checksum { .. })
        ));
    }

    #[test]
    fn file_header_roundtrip_truncation_and_damage() {
        let h = encode_file_header(9);
        assert_eq!(decode_file_header(&h), Ok(9));
        for len in 0..SNAPSHOT_FILE_HEADER_BYTES {
            assert!(matches!(
                decode_file_header(&h[..len]),
                Err(DecodeError::Truncated { .. })
            ));
        }
        for at in 0..SNAPSHOT_FILE_HEADER_BYTES {
            let mut c = h;
            c[at] ^= 0x10;
            // The reserved bytes are covered by the checksum too.
            match decode_file_header(&c) {
                Err(DecodeError::Checksum { .. } | DecodeError::Invalid { .. }) => {}
                other => panic!("flip of byte {at}: expected a typed error, got {other:?}"),
            }
        }
        let mut c = h;
        c[0] = b'X';
        assert!(matches!(
            decode_file_header(&c),
            Err(DecodeError::Invalid {
                what: "snapshot file magic",
                ..
            })
        ));
    }
}
