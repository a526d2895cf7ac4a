//! The entry point for fuzzing the checkpoint file (see `crate::fuzzing`).

use std::collections::HashMap;
use std::path::Path;

use strata_core::Position;

use super::record::{
    align_u64, check_file_header, decode_record, encode_file_header, encode_record,
    CHECKPOINT_FILE_HEADER_BYTES,
};
use super::replay::replay;

/// Replays `data` as the checkpoint file (as opening the store does), and
/// again with the checksums of its header and first record recomputed.
/// Every record that decodes must re-encode to its own bytes, and replay
/// must stop where the records stop decoding. Returns whether the header and
/// every record decoded.
pub(crate) fn file(data: &[u8]) -> bool {
    let whole = replay_checked(data);
    replay_checked(&with_checksums(data));
    whole
}

fn replay_checked(data: &[u8]) -> bool {
    let header_ok = check_file_header(data).is_ok();
    let mut at = CHECKPOINT_FILE_HEADER_BYTES;
    while let Some(r) = data.get(at..).and_then(|b| decode_record(b).ok()) {
        let bytes = &data[at..at + r.len];
        let mut out = Vec::new();
        encode_record(&mut out, r.name, r.position);
        assert_eq!(
            &out[..r.len],
            bytes,
            "a checkpoint record re-encodes to itself"
        );
        at += align_u64(r.len as u64) as usize;
    }
    let mut map = HashMap::new();
    match replay(data, Path::new("fuzz"), &mut map) {
        Ok(end) => {
            assert_eq!(end, at.min(data.len()), "replay stops where records stop");
            header_ok && end == data.len()
        }
        Err(_) => false,
    }
}

/// `data` with the file header's and the first record's checksums
/// recomputed, as far as its length field allows.
fn with_checksums(data: &[u8]) -> Vec<u8> {
    let mut b = data.to_vec();
    let at = CHECKPOINT_FILE_HEADER_BYTES;
    let len = crate::fuzzing::u32_at(&b, at + 4) as usize;
    crate::fuzzing::put_crc(&mut b, at + 4..at.saturating_add(len), at);
    crate::fuzzing::put_crc(&mut b, ..28, 28);
    b
}

/// Valid checkpoint files.
pub(crate) fn seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    let mut b = encode_file_header().to_vec();
    let only_header = b.clone();
    encode_record(&mut b, "projection-a", Some(Position(4_294_967_328)));
    encode_record(&mut b, "projection-b", Some(Position(32)));
    encode_record(&mut b, "projection-a", None);
    vec![
        ("checkpoint", "header-only".to_string(), only_header),
        ("checkpoint", "saves-and-a-reset".to_string(), b),
    ]
}
