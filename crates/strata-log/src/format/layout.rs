//! The constants and small types every part of the format shares: sizes,
//! frame kinds, positions, metadata flags.

use strata_core::Position;

/// First 8 bytes of every segment file.
pub const SEGMENT_MAGIC: &[u8; 8] = b"STRATALG";
/// Version of the segment format this code writes. It also reads
/// [`FORMAT_VERSION_1`] segments (unsalted frames without sequence numbers).
pub const FORMAT_VERSION: u32 = 2;
/// The first segment format: still read, and still appended to when a
/// store's active segment was created in it, never created anew.
pub const FORMAT_VERSION_1: u32 = 1;
/// Bits of a frame's sequence number and of its sync floor (format 2): a
/// frame is at least 32 bytes, so a 4 GiB segment holds fewer than 2^28.
pub const FRAME_SEQ_BITS: u32 = 28;
/// Size of the segment header; the first frame starts here.
pub const SEGMENT_HEADER_BYTES: usize = 32;
/// Size of a frame header.
pub const FRAME_HEADER_BYTES: usize = 16;
/// Frames start at multiples of this.
pub const FRAME_ALIGN: usize = 8;
/// Size of an event record's fixed header.
pub const RECORD_HEADER_BYTES: usize = 56;
/// The content code of a record a scavenge removed: its stream, type,
/// version, id and time stay, its metadata and data are zeros.
pub const REMOVED_CONTENT_CODE: u8 = 0xFF;
/// Offset of a record's content code in its header.
pub const RECORD_CONTENT_CODE_AT: usize = 47;
/// A segment can never be larger than this: positions keep the in-segment
/// offset in their low 32 bits.
pub const MAX_SEGMENT_BYTES_LIMIT: u64 = 1 << 32;

/// Frame kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum FrameKind {
    /// One append (single- or multi-stream): a list of event records.
    Append = 1,
    /// A soft delete of one stream.
    Delete = 2,
    /// A tombstone (hard delete) of one stream.
    Tombstone = 3,
    /// Where a scavenge removed a frame whose events were all removable:
    /// the same length, sequence number and sync floor, a body of zeros.
    Gap = 4,
    /// An erasure of one stream: a tombstone whose events `$all` no longer
    /// shows and whose data a scavenge removes. Its body is a tombstone's.
    Erase = 5,
}

impl FrameKind {
    /// The kind a frame header's kind byte names.
    pub fn from_u8(v: u8) -> Option<Self> {
        match v {
            1 => Some(FrameKind::Append),
            2 => Some(FrameKind::Delete),
            3 => Some(FrameKind::Tombstone),
            4 => Some(FrameKind::Gap),
            5 => Some(FrameKind::Erase),
            _ => None,
        }
    }
}

/// How the frames of one segment are checked, from its header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameCheck {
    /// Format 1: plain CRC-32C, reserved header bytes zero, no sequence numbers.
    V1,
    /// Format 2: each frame's CRC-32C starts from the segment's salt, and
    /// frames carry a sequence number and a sync floor.
    V2 {
        /// CRC-32C of the salt's 8 bytes: where every frame checksum starts.
        seed: u32,
    },
}

impl FrameCheck {
    /// The check of a format-2 segment with this salt.
    pub fn salted(salt: u64) -> Self {
        FrameCheck::V2 {
            seed: crc32c::crc32c(&salt.to_le_bytes()),
        }
    }

    /// The checksum of a frame's checked bytes (8 .. 16 + body).
    pub fn crc(&self, checked: &[u8]) -> u32 {
        match self {
            FrameCheck::V1 => crc32c::crc32c(checked),
            FrameCheck::V2 { seed } => crc32c::crc32c_append(*seed, checked),
        }
    }

    /// Whether frames carry sequence numbers.
    pub fn sequenced(&self) -> bool {
        matches!(self, FrameCheck::V2 { .. })
    }
}

/// Builds the global position of the byte at `offset` in segment `segment`.
#[inline]
pub fn position_of(segment: u32, offset: u64) -> Position {
    Position(((segment as u64) << 32) | offset)
}

/// Splits a position into (segment, offset).
#[inline]
pub fn split_position(p: Position) -> (u32, u64) {
    ((p.0 >> 32) as u32, p.0 & 0xffff_ffff)
}

/// Rounds `n` up to the frame alignment.
pub const fn align(n: usize) -> usize {
    (n + FRAME_ALIGN - 1) & !(FRAME_ALIGN - 1)
}

/// Metadata flag bits: which optional fields a record holds.
pub(crate) const META_CORRELATION: u8 = 1;
pub(crate) const META_CAUSATION: u8 = 2;
pub(crate) const META_USER: u8 = 4;
pub(crate) const META_SOURCE: u8 = 8;
pub(crate) const META_EXTRA: u8 = 16;
/// The record carries tags: a tag section follows the metadata fields.
pub(crate) const META_TAGS: u8 = 32;
/// Every metadata flag bit this format defines; any other is refused.
pub(crate) const META_ALL: u8 =
    META_CORRELATION | META_CAUSATION | META_USER | META_SOURCE | META_EXTRA | META_TAGS;

/// Largest metadata string the format can hold in a u16-length field.
pub const MAX_METADATA_FIELD_BYTES: usize = u16::MAX as usize;
