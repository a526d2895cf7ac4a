//! Building the disk a power cut leaves.
//!
//! Every choice comes from a [`StdRng`] seeded from the cut's seed and the
//! thing chosen about: the sector size from the seed alone, a file's fate
//! from the seed and its inode number (files are numbered in the order they
//! were created), a directory's from the seed and the directory's place in
//! the sorted list of directories with unsynced changes. So a file whose
//! writes differ in length from one run to the next (compressed data holds
//! timestamps) changes the choices about that file only.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::disk::DiskState;
use super::file::{DataOp, Node};
use super::namespace::EntryOp;
use super::PowerCut;
use crate::io::write_in_memory;

/// The sector sizes a torn write is cut at.
pub const SECTOR_SIZES: [u64; 2] = [512, 4096];

/// What a disk image holds.
pub(super) struct Image {
    /// Files by full path.
    pub(super) files: BTreeMap<PathBuf, Vec<u8>>,
    /// Directories.
    pub(super) dirs: BTreeSet<PathBuf>,
    /// Files in which a later unsynced write (or sector) survived an
    /// earlier lost one.
    pub(super) reordered_files: usize,
}

/// Whether an earlier piece of a file's unsynced writes was lost, and a
/// later one kept after it.
#[derive(Default)]
struct Order {
    lost: bool,
    reordered: bool,
}

impl Order {
    fn note(&mut self, kept: bool) {
        if kept {
            self.reordered |= self.lost;
        } else {
            self.lost = true;
        }
    }
}

/// Mixes `seed` with `salt` into the seed of one decision's generator.
pub fn mix(seed: u64, salt: u64) -> u64 {
    // splitmix64 over the pair.
    let mut z = seed ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The sector size the image with `seed` tears writes at.
pub fn sector_size(seed: u64) -> u64 {
    let mut rng = StdRng::seed_from_u64(mix(seed, u64::MAX));
    SECTOR_SIZES[rng.gen_range(0..SECTOR_SIZES.len())]
}

/// The files and directories the machine finds after the power cut.
pub(super) fn build_image(state: &DiskState, seed: u64, mode: PowerCut) -> Image {
    let names = surviving_names(state, seed, mode);
    let sector = sector_size(seed);
    let mut contents: BTreeMap<usize, (Vec<u8>, bool)> = BTreeMap::new();
    let mut files = BTreeMap::new();
    for (path, inode) in names {
        let Some(node) = state.nodes.get(inode) else {
            continue;
        };
        let content = contents.entry(inode).or_insert_with(|| {
            let mut rng = StdRng::seed_from_u64(mix(seed, inode as u64));
            surviving_content(node, mode, sector, &mut rng)
        });
        files.insert(path, content.0.clone());
    }
    Image {
        files,
        dirs: state.dirs.clone(),
        reordered_files: contents.values().filter(|c| c.1).count(),
    }
}

/// The names that survive: the durable ones, with what `mode` keeps of the
/// unsynced changes applied in their order.
fn surviving_names(state: &DiskState, seed: u64, mode: PowerCut) -> BTreeMap<PathBuf, usize> {
    let mut by_dir: BTreeMap<PathBuf, Vec<usize>> = BTreeMap::new();
    for (i, op) in state.pending.iter().enumerate() {
        by_dir.entry(op.dir()).or_default().push(i);
    }
    let mut kept = vec![false; state.pending.len()];
    for (d, ops) in by_dir.values().enumerate() {
        let mut rng = StdRng::seed_from_u64(mix(seed, (1 << 32) + d as u64));
        for (k, keep) in choose(ops.len(), mode, &mut rng).into_iter().enumerate() {
            if let (Some(&i), true) = (ops.get(k), keep) {
                if let Some(slot) = kept.get_mut(i) {
                    *slot = true;
                }
            }
        }
    }
    let mut names = state.durable.clone();
    let survivors = state.pending.iter().zip(kept).filter(|(_, k)| *k);
    for (op, _) in survivors {
        EntryOp::apply(op, &mut names);
    }
    names
}

/// Which of `n` unsynced changes survive, in order.
fn choose(n: usize, mode: PowerCut, rng: &mut StdRng) -> Vec<bool> {
    match mode {
        PowerCut::SyncedOnly => vec![false; n],
        PowerCut::KeepAll => vec![true; n],
        PowerCut::InOrder => {
            let prefix = choose_prefix(n, rng);
            (0..n).map(|i| i < prefix).collect()
        }
        PowerCut::Reordered => {
            let p = keep_probability(rng);
            (0..n).map(|_| rng.gen_bool(p)).collect()
        }
    }
}

/// How many of `n` ordered changes survive: all or none a quarter of the
/// time each, any number otherwise.
fn choose_prefix(n: usize, rng: &mut StdRng) -> usize {
    match rng.gen_range(0..4) {
        0 => 0,
        1 => n,
        _ => rng.gen_range(0..=n),
    }
}

/// The chance each change survives in `Reordered` mode, drawn per file or
/// directory so some images keep almost everything and some almost nothing.
fn keep_probability(rng: &mut StdRng) -> f64 {
    [0.1, 0.5, 0.9][rng.gen_range(0..3)]
}

/// The content of a file after the power cut, and whether a later
/// unsynced write survived an earlier lost one.
fn surviving_content(
    node: &Node,
    mode: PowerCut,
    sector: u64,
    rng: &mut StdRng,
) -> (Vec<u8>, bool) {
    let mut out = node.durable.clone();
    let mut order = Order::default();
    match mode {
        PowerCut::SyncedOnly => {}
        PowerCut::KeepAll => out.clone_from(&node.current),
        PowerCut::InOrder => {
            let prefix = choose_prefix(node.pending.len(), rng);
            let (kept, rest) = node.pending.split_at(prefix);
            kept.iter().for_each(|op| op.apply(&mut out));
            if let Some(DataOp::Write { offset, bytes }) = rest.first() {
                let cuts = sector_cuts(*offset, bytes.len(), sector);
                if !cuts.is_empty() && rng.gen_bool(0.5) {
                    let at = cuts[rng.gen_range(0..cuts.len())];
                    write_in_memory(
                        &mut out,
                        *offset as usize,
                        bytes.get(..at).unwrap_or_default(),
                    );
                }
            }
        }
        PowerCut::Reordered => {
            let p = keep_probability(rng);
            for op in &node.pending {
                keep_sectors(&mut out, op, sector, p, rng, &mut order);
            }
            // The new size survived, the data past the old end did not.
            if out.len() < node.current.len() && rng.gen_bool(0.25) {
                out.resize(node.current.len(), 0);
            }
        }
    }
    (out, order.reordered)
}

/// Applies what survives of one unsynced change in `Reordered` mode: each
/// sector of a write on its own, a size change whole or not at all.
fn keep_sectors(
    out: &mut Vec<u8>,
    op: &DataOp,
    sector: u64,
    p: f64,
    rng: &mut StdRng,
    order: &mut Order,
) {
    match op {
        DataOp::SetLen(_) => {
            if rng.gen_bool(p) {
                op.apply(out);
            }
        }
        DataOp::Write { offset, bytes } => {
            let mut start = 0usize;
            let mut cuts = sector_cuts(*offset, bytes.len(), sector);
            cuts.push(bytes.len());
            for end in cuts {
                let kept = rng.gen_bool(p);
                order.note(kept);
                if kept {
                    let piece = bytes.get(start..end).unwrap_or_default();
                    write_in_memory(out, *offset as usize + start, piece);
                }
                start = end;
            }
        }
    }
}

/// The places (relative to the write's start) strictly inside a write of
/// `len` bytes at `offset` where a sector boundary falls.
fn sector_cuts(offset: u64, len: usize, sector: u64) -> Vec<usize> {
    let end = offset + len as u64;
    let first = (offset / sector + 1) * sector;
    (0..)
        .map(|k| first + k * sector)
        .take_while(|b| *b < end)
        .map(|b| (b - offset) as usize)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sector_cuts_fall_on_boundaries_inside_the_write() {
        assert_eq!(sector_cuts(0, 512, 512), Vec::<usize>::new());
        assert_eq!(sector_cuts(100, 1000, 512), vec![412, 924]);
        assert_eq!(sector_cuts(4096, 8192, 4096), vec![4096]);
    }
}
