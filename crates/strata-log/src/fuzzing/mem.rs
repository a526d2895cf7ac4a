//! A file in memory, for the decoders that read through [`StorageFile`].

use std::io;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::io::{read_in_memory, write_in_memory, StorageFile};

/// File bytes held in memory.
#[derive(Default)]
pub(crate) struct MemFile(Mutex<Vec<u8>>);

impl MemFile {
    /// A file holding `bytes`.
    pub(crate) fn with(bytes: &[u8]) -> Arc<MemFile> {
        Arc::new(MemFile(Mutex::new(bytes.to_vec())))
    }

    /// Its bytes.
    pub(crate) fn bytes(&self) -> Vec<u8> {
        self.0.lock().clone()
    }
}

impl StorageFile for MemFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        Ok(read_in_memory(&self.0.lock(), buf, offset))
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        write_in_memory(&mut self.0.lock(), offset as usize, buf);
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.lock().resize(len as usize, 0);
        Ok(())
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.0.lock().len() as u64)
    }
}
