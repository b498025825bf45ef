//! What every executor does with a task's `/out`: watch its size while the
//! task runs, and pack it into a [`Bundle`] when it ends.

use std::path::{Path, PathBuf};

use iog_workloads::Bundle;

/// Most files a task may leave in `/out`.
pub const OUT_FILES_MAX: usize = 4_096;
/// How much of a task's standard error its error message quotes.
pub const STDERR_TAIL_BYTES: usize = 2_048;

/// A task's `/out` that cannot be its output.
#[derive(Debug, thiserror::Error)]
pub(crate) enum OutError {
    #[error("more than {max_bytes} bytes")]
    TooLarge { max_bytes: u64 },
    #[error("{found}")]
    Odd { found: String },
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Whether the files under `dir` hold more than `max` bytes (looking at no
/// more than [`OUT_FILES_MAX`] entries; more is over too).
pub(crate) fn dir_bytes_over(dir: &Path, max: u64) -> bool {
    let (mut total, mut seen) = (0u64, 0usize);
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            seen += 1;
            if seen > OUT_FILES_MAX {
                return true;
            }
            match entry.metadata() {
                Ok(meta) if meta.is_dir() => pending.push(entry.path()),
                Ok(meta) => total = total.saturating_add(meta.len()),
                Err(_) => {}
            }
            if total > max {
                return true;
            }
        }
    }
    false
}

/// The last [`STDERR_TAIL_BYTES`] of `bytes`, as text.
pub(crate) fn tail(bytes: &[u8]) -> String {
    let start = bytes.len().saturating_sub(STDERR_TAIL_BYTES);
    String::from_utf8_lossy(&bytes[start..]).into_owned()
}

/// Adds every regular file under `dir` to `output` as `out/<path from root>`.
pub(crate) fn collect_out(
    root: &Path,
    dir: &Path,
    output: &mut Bundle,
    total: &mut u64,
    max: u64,
) -> Result<(), OutError> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?.map(|e| e.map(|e| e.path())).collect::<Result<_, _>>()?;
    entries.sort();
    for path in entries {
        let meta = std::fs::symlink_metadata(&path)?;
        let relative = path.strip_prefix(root).expect("under the root");
        // Names are kept exactly: one that is not UTF-8, or holds a `\`,
        // could merge with another file's name.
        let relative = match relative.to_str() {
            Some(name) if !name.contains('\\') => name.to_owned(),
            _ => return Err(OutError::Odd { found: format!("a file named {relative:?} (not UTF-8, or with `\\`)") }),
        };
        if meta.is_dir() {
            collect_out(root, &path, output, total, max)?;
        } else if meta.is_file() {
            *total = total.saturating_add(meta.len());
            if *total > max {
                return Err(OutError::TooLarge { max_bytes: max });
            }
            if output.entries.len() >= OUT_FILES_MAX {
                return Err(OutError::Odd { found: format!("more than {OUT_FILES_MAX} files") });
            }
            output.entries.insert(format!("out/{relative}"), std::fs::read(&path)?);
        } else {
            return Err(OutError::Odd { found: format!("{relative:?}, neither a file nor a directory") });
        }
    }
    Ok(())
}
