//! The entry point for fuzzing snapshot files (see `crate::fuzzing`).

use super::record::{
    decode_file_header, decode_header, encode_file_header, encode_record, NewRecord, RecordKind,
    SNAPSHOT_FILE_HEADER_BYTES,
};
use super::scan::{scan_records, Scanned};
use crate::fuzzing::MemFile;

/// Scans `data` as a snapshot file (as opening the store does, with and
/// without checking the final state), and again with the checksums of its
/// header and first record recomputed. Every record the scan accepts must
/// re-encode to its own bytes. Returns whether the file's header and every
/// record of it decoded, with no damage and no torn tail.
pub(crate) fn file(data: &[u8]) -> bool {
    let whole = scan(data);
    scan(&with_checksums(data));
    whole
}

fn scan(data: &[u8]) -> bool {
    let header_ok = decode_file_header(data).is_ok();
    let file = MemFile::with(data);
    let len = data.len() as u64;
    let mut clean = true;
    let mut on = |s: Scanned<'_>| match s {
        Scanned::Record { offset, header } => {
            assert!(
                offset + header.record_len as u64 <= len,
                "a record inside the file"
            );
            let at = offset as usize;
            let again = decode_header(&data[at..]).expect("a scanned record decodes in place");
            assert_eq!(again.record_len, header.record_len);
            reencode(&data[at..at + header.record_len], &again);
        }
        Scanned::Damaged { offset, len: n } => {
            assert!(offset + n <= len, "damage inside the file");
            clean = false;
        }
    };
    let torn = scan_records(&*file, len, true, &mut on);
    let _ = scan_records(&*file, len, false, &mut on);
    header_ok && clean && matches!(torn, Ok(None))
}

/// A record whose state matches its checksum re-encodes to its bytes.
fn reencode(bytes: &[u8], h: &super::record::RecordHeader<'_>) {
    let state = &bytes[h.header_len..];
    if crc32c::crc32c(state) != h.state_crc {
        return;
    }
    let mut out = Vec::new();
    encode_record(
        &mut out,
        &NewRecord {
            kind: h.kind,
            stream: h.stream,
            aggregate_type: h.aggregate_type,
            version: h.version,
            schema_version: h.schema_version,
            taken_at_micros: h.taken_at_micros,
            state,
        },
    );
    assert_eq!(
        &out[..bytes.len()],
        bytes,
        "a snapshot record re-encodes to itself"
    );
}

/// `data` with the file header's checksum and the first record's state and
/// header checksums recomputed, as far as its length fields allow.
fn with_checksums(data: &[u8]) -> Vec<u8> {
    let mut b = data.to_vec();
    let at = SNAPSHOT_FILE_HEADER_BYTES;
    let get = |b: &[u8], i: usize| b.get(at + i).copied().map_or(0, usize::from);
    let header_len = 40 + get(&b, 9) + (get(&b, 10) | get(&b, 11) << 8);
    let state_len = crate::fuzzing::u32_at(&b, at + 32) as usize;
    let state_at = at + header_len;
    crate::fuzzing::put_crc(
        &mut b,
        state_at..state_at.saturating_add(state_len),
        at + 36,
    );
    crate::fuzzing::put_crc(&mut b, at + 4..at + header_len, at);
    crate::fuzzing::put_crc(&mut b, ..28, 28);
    b
}

/// Valid snapshot files.
pub(crate) fn seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    let mut b = encode_file_header(2).to_vec();
    let only_header = b.clone();
    for (kind, stream, ty, version, state) in [
        (
            RecordKind::Snapshot,
            "account-1",
            "Account",
            7,
            &br#"{"balance":10}"#[..],
        ),
        (
            RecordKind::Snapshot,
            "account-2",
            "Account",
            3,
            &[0u8, 1, 2, 3][..],
        ),
        (RecordKind::Tombstone, "account-1", "", 0, &[][..]),
    ] {
        let r = NewRecord {
            kind,
            stream,
            aggregate_type: ty,
            version,
            schema_version: 1,
            taken_at_micros: 1_700_000_000_000_000,
            state,
        };
        encode_record(&mut b, &r);
    }
    vec![
        ("snapshot", "header-only".to_string(), only_header),
        ("snapshot", "two-snapshots-and-a-tombstone".to_string(), b),
    ]
}
