//! A store's identity (`DIR/store.id`): a random id written the first time
//! the store is backed up, so that a backup directory is only ever added to
//! by the store it is of. A restored store gets a new id at its first
//! backup: it may diverge from the original, so it must not extend the
//! original's backups.

use std::fs;
use std::io;
use std::path::Path;

use super::error::BackupError;
use super::files::{remove_if_present, sync_dir, write_new_file};

/// The id file's name inside a store directory.
pub const STORE_ID_FILE: &str = "store.id";
/// Hex digits of an id (128 random bits).
const STORE_ID_HEX_DIGITS: usize = 32;

/// The id of the store in `dir`, created if it has none. Two backups that
/// create it at once agree: the id is linked into place, never renamed
/// over one that exists.
pub(crate) fn store_id(dir: &Path) -> Result<String, BackupError> {
    let path = dir.join(STORE_ID_FILE);
    if let Some(id) = read_id(&path)? {
        return Ok(id);
    }
    let id = format!("{:032x}", rand::random::<u128>());
    let tmp = dir.join(format!("{STORE_ID_FILE}.{id}.tmp"));
    write_new_file(&tmp, format!("{id}\n").as_bytes())?;
    let linked = fs::hard_link(&tmp, &path);
    remove_if_present(&tmp)?;
    match linked {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(BackupError::io("creating", &path)(e)),
    }
    sync_dir(dir)?;
    read_id(&path)?.ok_or_else(|| BackupError::Damaged {
        file: path.clone(),
        reason: "missing right after it was created".into(),
    })
}

/// The id in `path`, if the file exists; a file that holds no id is damaged.
fn read_id(path: &Path) -> Result<Option<String>, BackupError> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(BackupError::io("reading", path)(e)),
    };
    let id = text.trim();
    if id.len() != STORE_ID_HEX_DIGITS || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(BackupError::Damaged {
            file: path.to_path_buf(),
            reason: format!(
                "holds no store id ({STORE_ID_HEX_DIGITS} hex digits); remove it to give the store a new one (its next backup must then go into a new directory)"
            ),
        });
    }
    Ok(Some(id.to_string()))
}
