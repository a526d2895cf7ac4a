//! Response bytes that hold a share of a byte budget: the share is given
//! back when the connection drops the bytes, that is once they are written
//! (or the connection is gone), wherever they waited until then.

use bytes::Bytes;

/// `bytes` as a body chunk holding `share` (if any) until it is dropped.
pub(crate) fn held_bytes<S: Send + 'static>(bytes: Vec<u8>, share: Option<S>) -> Bytes {
    match share {
        None => Bytes::from(bytes),
        Some(share) => Bytes::from_owner(Held {
            bytes,
            _share: share,
        }),
    }
}

/// Bytes and the share they hold.
struct Held<S> {
    bytes: Vec<u8>,
    _share: S,
}

impl<S> AsRef<[u8]> for Held<S> {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}
