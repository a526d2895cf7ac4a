//! Replacing a sealed segment by its compressed form.

use std::sync::Arc;

use tracing::info;

use crate::compress::{compress_segment, compressed_file_name, CompressedFile, Compression};
use crate::segment::Segment;
use crate::state::OpenStore;

impl OpenStore {
    /// Compresses sealed segment `n` to `NNNNNNNN.zseg` (written as `.tmp`,
    /// synced, renamed, directory synced), serves reads from it, then
    /// removes the plain file.
    pub(crate) fn compress_segment(&self, n: u32, cfg: Compression) -> std::io::Result<()> {
        let storage = self.config.storage.as_ref();
        let seg_dir = self.config.dir.join("segments");
        let _exclusive = self.maintenance.lock();
        let seg = match self.state.read().segments.get(&n) {
            Some(s) if s.path.extension().is_some_and(|e| e == "seg") => s.clone(),
            _ => return Ok(()),
        };
        let len = seg.file.len()?;
        let packed = seg_dir.join(compressed_file_name(n));
        let tmp = packed.with_extension("zseg.tmp");
        let out = storage.open(&tmp, true)?;
        let size = compress_segment(seg.file.as_ref(), len, out.as_ref(), n, cfg)?;
        drop(out);
        storage.rename(&tmp, &packed)?;
        storage.sync_dir(&seg_dir)?;
        let file = storage.open(&packed, false)?;
        let c = CompressedFile::open(file, n)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))?;
        self.state.write().segments.insert(
            n,
            Arc::new(Segment {
                number: n,
                path: packed,
                file: Arc::new(c),
                check: seg.check,
                damage: Vec::new(),
            }),
        );
        // Readers that still hold the plain file keep reading it until they drop it.
        storage.remove(&seg.path)?;
        storage.sync_dir(&seg_dir)?;
        info!(
            segment = n,
            bytes = len,
            compressed = size,
            "compressed a sealed segment"
        );
        Ok(())
    }
}
