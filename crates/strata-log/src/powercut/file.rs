//! A file of the simulated disk: what is written, and what is durable.

use std::io;
use std::sync::Arc;

use super::disk::Shared;
use super::namespace::Inode;
use crate::io::{read_in_memory, write_in_memory, StorageFile};

/// One change to a file's content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum DataOp {
    /// `bytes` written at `offset`.
    Write { offset: u64, bytes: Vec<u8> },
    /// The file truncated or extended (with zeros) to this length.
    SetLen(u64),
}

impl DataOp {
    /// Applies the change to `content`.
    pub(super) fn apply(&self, content: &mut Vec<u8>) {
        match self {
            DataOp::Write { offset, bytes } => write_in_memory(content, *offset as usize, bytes),
            DataOp::SetLen(len) => content.resize(*len as usize, 0),
        }
    }
}

/// A file's content: durable, and what was done since.
#[derive(Clone, Debug, Default)]
pub(super) struct Node {
    /// What the last `sync_data` made durable.
    pub(super) durable: Vec<u8>,
    /// Writes and size changes since, in order.
    pub(super) pending: Vec<DataOp>,
    /// What reads see: `durable` with `pending` applied.
    pub(super) current: Vec<u8>,
}

impl Node {
    /// A file whose every byte is durable.
    pub(super) fn durable(content: Vec<u8>) -> Node {
        Node {
            durable: content.clone(),
            pending: Vec::new(),
            current: content,
        }
    }

    /// Records and applies one change.
    fn change(&mut self, op: DataOp) {
        op.apply(&mut self.current);
        self.pending.push(op);
    }
}

/// An open handle: it follows its file across renames and removes, as a
/// file descriptor does.
pub(super) struct SimFile {
    pub(super) disk: Arc<Shared>,
    pub(super) inode: Inode,
}

impl SimFile {
    fn with_node<T>(&self, mutating: bool, f: impl FnOnce(&mut Node) -> T) -> io::Result<T> {
        let mut disk = self.disk.lock();
        disk.step(mutating)?;
        let node = disk
            .nodes
            .get_mut(self.inode)
            .ok_or_else(|| io::Error::other("simulated disk: file handle without a file"))?;
        Ok(f(node))
    }
}

impl StorageFile for SimFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.with_node(false, |n| read_in_memory(&n.current, buf, offset))
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.with_node(true, |n| {
            n.change(DataOp::Write {
                offset,
                bytes: buf.to_vec(),
            })
        })
    }

    fn sync_data(&self) -> io::Result<()> {
        self.with_node(true, |n| {
            n.durable.clone_from(&n.current);
            n.pending.clear();
        })
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.with_node(true, |n| n.change(DataOp::SetLen(len)))
    }

    fn len(&self) -> io::Result<u64> {
        self.with_node(false, |n| n.current.len() as u64)
    }
}
