//! Directory entries: which name points at which file, and the creates,
//! renames and removes that are not durable yet.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A file's identity, independent of its names (an inode).
pub(super) type Inode = usize;

/// Names of files: full path to file.
pub(super) type Names = BTreeMap<PathBuf, Inode>;

/// A change to a directory's entries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum EntryOp {
    /// A new name for a new file.
    Create { path: PathBuf, inode: Inode },
    /// A file moved from one name to another (replacing what `to` named).
    Rename {
        from: PathBuf,
        to: PathBuf,
        inode: Inode,
    },
    /// A name removed.
    Remove { path: PathBuf, inode: Inode },
}

impl EntryOp {
    /// The directory whose `sync_dir` makes this change durable: the parent
    /// of the new name (a rename across directories is one change, made
    /// durable by syncing the directory it moves into).
    pub(super) fn dir(&self) -> PathBuf {
        let path = match self {
            EntryOp::Create { path, .. } | EntryOp::Remove { path, .. } => path,
            EntryOp::Rename { to, .. } => to,
        };
        parent_of(path)
    }

    /// Applies the change to `names`.
    pub(super) fn apply(&self, names: &mut Names) {
        match self {
            EntryOp::Create { path, inode } => {
                names.insert(path.clone(), *inode);
            }
            EntryOp::Rename { from, to, inode } => {
                if names.get(from) == Some(inode) {
                    names.remove(from);
                }
                names.insert(to.clone(), *inode);
            }
            EntryOp::Remove { path, inode } => {
                if names.get(path) == Some(inode) {
                    names.remove(path);
                }
            }
        }
    }
}

/// The directory holding `path` (empty for a bare name).
pub(super) fn parent_of(path: &Path) -> PathBuf {
    path.parent().map(Path::to_path_buf).unwrap_or_default()
}
