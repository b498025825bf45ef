use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use iog_types::BlobId;

use crate::StoreError;

/// Largest blob the store accepts: 256 MiB. Inputs and results larger than
/// this belong in object storage, which a later version adds.
pub const MAX_BLOB_BYTES: u64 = 256 * 1024 * 1024;

/// Content-addressed blobs as files: `<root>/<first 2 hex digits>/<the other 62>`.
///
/// A blob is written to a temporary file, flushed to disk, then renamed into
/// place, so a reader never sees half a blob and a crash leaves either the
/// whole blob or none of it.
#[derive(Debug, Clone)]
pub struct BlobStore {
    root: PathBuf,
}

impl BlobStore {
    /// Opens (creating if needed) a blob store rooted at `root`.
    pub fn open(root: &Path) -> Result<BlobStore, StoreError> {
        let tmp = root.join("tmp");
        fs::create_dir_all(&tmp).map_err(|source| StoreError::Blob { path: tmp.clone(), source })?;
        // Leftovers of writes that a crash interrupted are garbage.
        if let Ok(entries) = fs::read_dir(&tmp) {
            for entry in entries.flatten() {
                let _ = fs::remove_file(entry.path());
            }
        }
        Ok(BlobStore { root: root.to_owned() })
    }

    /// Where the blob `id` lives (whether or not it exists).
    pub fn path(&self, id: &BlobId) -> PathBuf {
        let hex = id.to_hex();
        self.root.join(&hex[..2]).join(&hex[2..])
    }

    pub fn contains(&self, id: &BlobId) -> bool {
        self.path(id).is_file()
    }

    /// Stores `bytes` and returns their id. Storing the same bytes again is a no-op.
    pub fn put(&self, bytes: &[u8]) -> Result<BlobId, StoreError> {
        let id = BlobId::of(bytes);
        self.write(id, bytes)?;
        Ok(id)
    }

    /// Stores `bytes` under `expected`, refusing them if they hash to something else.
    pub fn put_verified(&self, expected: BlobId, bytes: &[u8]) -> Result<(), StoreError> {
        if BlobId::of(bytes) != expected {
            return Err(StoreError::BlobMismatch { expected });
        }
        self.write(expected, bytes)
    }

    fn write(&self, id: BlobId, bytes: &[u8]) -> Result<(), StoreError> {
        let size_bytes = bytes.len() as u64;
        if size_bytes > MAX_BLOB_BYTES {
            return Err(StoreError::BlobTooLarge { size_bytes, limit_bytes: MAX_BLOB_BYTES });
        }
        let path = self.path(&id);
        if path.is_file() {
            return Ok(());
        }
        let dir = path.parent().expect("a blob path has a parent");
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| StoreError::Blob { path, source }
        };
        fs::create_dir_all(dir).map_err(io(dir))?;
        let tmp = self.root.join("tmp").join(format!("{}.{:016x}", id.to_hex(), rand::random::<u64>()));
        let mut file = File::create(&tmp).map_err(io(&tmp))?;
        file.write_all(bytes).map_err(io(&tmp))?;
        file.sync_all().map_err(io(&tmp))?;
        drop(file);
        fs::rename(&tmp, &path).map_err(io(&path))?;
        File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))?;
        Ok(())
    }

    /// Reads a blob; `None` when the store does not have it.
    pub fn get(&self, id: &BlobId) -> Result<Option<Vec<u8>>, StoreError> {
        let path = self.path(id);
        match fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(StoreError::Blob { path, source }),
        }
    }
}
