//! The stream checkpoint file (`streams.ckpt`).

use strata_core::StreamId;

use super::put_u32;
use crate::streams::{DeleteKind, StreamIndex};

/// A stream checkpoint, decoded as it is and again with its checksum
/// recomputed. One that decodes must re-encode to an equal index and the
/// same number of bytes (the encoding is canonical but for the order of
/// streams). Returns whether the input decoded.
pub fn stream_checkpoint(data: &[u8]) -> bool {
    let whole = decode_checked(data);
    if data.len() >= 4 {
        let mut fixed = data.to_vec();
        let body = fixed.len() - 4;
        let crc = crc32c::crc32c(&fixed[..body]);
        put_u32(&mut fixed, body, crc);
        decode_checked(&fixed);
    }
    whole
}

fn decode_checked(data: &[u8]) -> bool {
    let Ok((index, covers)) = StreamIndex::decode_checkpoint(data) else {
        return false;
    };
    let again = index.encode_checkpoint(covers);
    assert_eq!(
        again.len(),
        data.len(),
        "a stream checkpoint re-encodes to its size"
    );
    let (back, covers_back) =
        StreamIndex::decode_checkpoint(&again).expect("an encoded stream checkpoint decodes");
    assert_eq!(covers_back, covers);
    assert_eq!(
        back.streams, index.streams,
        "a stream checkpoint re-encodes to itself"
    );
    true
}

/// Valid stream checkpoints, of one stream each: the order of several in
/// a checkpoint varies from run to run.
pub(super) fn seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    let one = |name: &str, versions: u64, delete: Option<(u64, DeleteKind)>| {
        let id = StreamId::any(name).expect("a valid stream name");
        let mut idx = StreamIndex::default();
        for v in 1..=versions {
            idx.add_event(&id, v, 32 + v * 64);
        }
        if let Some((through, kind)) = delete {
            idx.delete(&id, through, kind);
        }
        idx.encode_checkpoint((1, 4096))
    };
    vec![
        (
            "streams",
            "empty".to_string(),
            StreamIndex::default().encode_checkpoint((0, 32)),
        ),
        ("streams", "one-stream".to_string(), one("order-1", 3, None)),
        (
            "streams",
            "soft-deleted".to_string(),
            one("order-2", 2, Some((1, DeleteKind::Soft))),
        ),
        (
            "streams",
            "tombstoned-system".to_string(),
            one("$audit", 1, Some((0, DeleteKind::Tombstone))),
        ),
        (
            "streams",
            "erased".to_string(),
            one("person-7", 2, Some((2, DeleteKind::Erase))),
        ),
    ]
}
