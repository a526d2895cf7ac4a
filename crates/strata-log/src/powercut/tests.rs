//! The simulator's own rules, one at a time.

use std::path::{Path, PathBuf};

use super::{PowerCut, PowerCutDisk};
use crate::io::{read_file, Storage};

fn disk_with_dir() -> (PowerCutDisk, PathBuf) {
    let disk = PowerCutDisk::new();
    let dir = PathBuf::from("/data");
    disk.create_dir_all(&dir).unwrap();
    (disk, dir)
}

fn content(disk: &PowerCutDisk, path: &Path) -> Option<Vec<u8>> {
    disk.exists(path).then(|| read_file(disk, path).unwrap())
}

#[test]
fn only_synced_data_and_entries_survive_synced_only() {
    let (disk, dir) = disk_with_dir();
    let a = dir.join("a");
    let f = disk.open(&a, true).unwrap();
    f.write_all_at(b"durable", 0).unwrap();
    f.sync_data().unwrap();
    disk.sync_dir(&dir).unwrap();
    f.write_all_at(b"-lost", 7).unwrap();
    disk.open(&dir.join("b"), true)
        .unwrap()
        .sync_data()
        .unwrap();
    let after = disk.cut(1, PowerCut::SyncedOnly);
    assert_eq!(content(&after, &a).unwrap(), b"durable");
    assert!(
        !after.exists(&dir.join("b")),
        "its directory was never synced"
    );
    assert!(disk.open(&a, false).is_err(), "the old disk has no power");
}

#[test]
fn a_rename_survives_only_with_its_directory_synced() {
    let (disk, dir) = disk_with_dir();
    let (tmp, fin) = (dir.join("x.tmp"), dir.join("x"));
    let f = disk.open(&tmp, true).unwrap();
    f.write_all_at(b"new", 0).unwrap();
    f.sync_data().unwrap();
    disk.sync_dir(&dir).unwrap();
    disk.rename(&tmp, &fin).unwrap();
    let lost = disk.cut(2, PowerCut::SyncedOnly);
    assert!(lost.exists(&tmp) && !lost.exists(&fin));
    let kept = disk.cut(2, PowerCut::KeepAll);
    assert!(!kept.exists(&tmp));
    assert_eq!(content(&kept, &fin).unwrap(), b"new");
}

/// A synced file of 8 KiB of ones, then two unsynced 4 KiB writes of twos
/// and threes over it.
fn two_pending_writes() -> (PowerCutDisk, PathBuf) {
    let (disk, dir) = disk_with_dir();
    let a = dir.join("a");
    let f = disk.open(&a, true).unwrap();
    f.write_all_at(&[1; 8192], 0).unwrap();
    f.sync_data().unwrap();
    disk.sync_dir(&dir).unwrap();
    f.write_all_at(&[2; 4096], 0).unwrap();
    f.write_all_at(&[3; 4096], 4096).unwrap();
    (disk, a)
}

#[test]
fn in_order_never_keeps_a_later_write_without_the_earlier_one() {
    let mut torn = 0;
    for seed in 0..200 {
        let (disk, a) = two_pending_writes();
        let c = content(&disk.cut(seed, PowerCut::InOrder), &a).unwrap();
        assert!(
            !(c[4096] == 3 && c[0] == 1),
            "seed {seed}: the second write survived the first"
        );
        torn += usize::from(c[0] == 2 && c[4095] == 1);
    }
    assert!(torn > 0, "some image tears the first write");
}

#[test]
fn reordered_can_keep_a_later_write_and_lose_an_earlier_one() {
    let found = (0..200).any(|seed| {
        let (disk, a) = two_pending_writes();
        let c = content(&disk.cut(seed, PowerCut::Reordered), &a).unwrap();
        c[0] == 1 && c[4096] == 3
    });
    assert!(found);
}

#[test]
fn a_seed_gives_the_same_image() {
    for seed in 0..50 {
        let (disk, a) = two_pending_writes();
        let one = content(&disk.cut(seed, PowerCut::Reordered), &a);
        let two = content(&disk.cut(seed, PowerCut::Reordered), &a);
        assert_eq!(one, two, "seed {seed}");
    }
}

#[test]
fn the_power_goes_off_after_the_given_number_of_operations() {
    let (disk, dir) = disk_with_dir();
    disk.power_off_after(2);
    let f = disk.open(&dir.join("a"), true).unwrap();
    f.write_all_at(b"x", 0).unwrap();
    assert!(f.sync_data().is_err());
    assert!(disk.is_off());
    assert_eq!(
        disk.stats().ops,
        3,
        "the directory, the create and the write"
    );
}
