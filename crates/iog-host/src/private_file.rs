//! Files that hold secrets (a key, a sealed job's secret): readable only by
//! their owner, written atomically and durably, so that a crash leaves
//! either the old file or the new one, never half of one, and never loses
//! one that was reported written.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::Path;

/// Creates `dir` and its parents, readable only by its owner on unix; when
/// it is new, its parent is synced so that its entry survives a crash.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let new = !dir.is_dir();
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)?;
    match dir.parent() {
        Some(parent) if new && !parent.as_os_str().is_empty() => sync_dir(parent),
        _ => Ok(()),
    }
}

/// Writes `bytes` to `path` in `dir`: a temp file of mode 0600 in the same
/// folder, synced, renamed over `path`, then the folder synced. A reader
/// never sees half a file, and once this returns the file survives a crash.
/// A failed write removes its temp file (it holds a secret never used).
pub fn write_private_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let name = path.file_name().and_then(|name| name.to_str()).unwrap_or("secret");
    // A random suffix keeps two threads or processes writing one file from
    // sharing a temp file.
    let tmp_path = dir.join(format!(".{name}.tmp-{:016x}", rand::random::<u64>()));
    let result = write_and_rename(dir, &tmp_path, path, bytes);
    if result.is_err() {
        let _ = fs::remove_file(&tmp_path);
    }
    result
}

fn write_and_rename(dir: &Path, tmp_path: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(tmp_path)?;
    // The mode given at creation is reduced by the umask; set it exactly.
    #[cfg(unix)]
    file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    fs::rename(tmp_path, path)?;
    sync_dir(dir)
}

/// Syncs a folder, so that renames and new entries in it are durable.
#[cfg(unix)]
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Syncs a folder, so that renames and new entries in it are durable.
#[cfg(not(unix))]
pub fn sync_dir(_dir: &Path) -> std::io::Result<()> {
    // Folders cannot be opened for syncing on other platforms; the rename
    // itself is still atomic.
    Ok(())
}

/// The permission bits of a file that users other than its owner may read
/// or write (`mode & 0o077`), or `None` when it has none or cannot tell.
pub fn open_to_others(file: &File) -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = file.metadata().ok()?.permissions().mode() & 0o777;
        (mode & 0o077 != 0).then_some(mode)
    }
    #[cfg(not(unix))]
    {
        let _ = file;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_written_whole_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("a/b");
        create_private_dir(&folder).unwrap();
        let path = folder.join("secret.json");
        write_private_atomically(&folder, &path, b"first").unwrap();
        write_private_atomically(&folder, &path, b"second").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second");
        let file = File::open(&path).unwrap();
        assert_eq!(open_to_others(&file), None);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(file.metadata().unwrap().permissions().mode() & 0o777, 0o600);
            assert_eq!(fs::metadata(&folder).unwrap().permissions().mode() & 0o777, 0o700);
            fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
            assert_eq!(open_to_others(&File::open(&path).unwrap()), Some(0o644));
        }
        let left: Vec<_> = fs::read_dir(&folder).unwrap().flatten().map(|e| e.file_name()).collect();
        assert_eq!(left.len(), 1, "no temp file is left behind: {left:?}");
    }
}
