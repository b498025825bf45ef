//! A task's output files as one deterministic blob: a POSIX tar archive
//! with fixed metadata (mode 0644, owner 0, time 0) and entries sorted by
//! name, so the same files always give the same bytes (and the same
//! digest), and anyone can unpack a result with `tar -xf`.

use std::collections::BTreeMap;
use std::io::Read;

/// The entry that holds what a module wrote to its standard output.
pub const BUNDLE_STDOUT: &str = "stdout";

/// Files by name (`out/<path>` for files the module left in `/out`,
/// [`BUNDLE_STDOUT`] for its standard output).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bundle {
    /// Each file's bytes by its name in the archive.
    pub entries: BTreeMap<String, Vec<u8>>,
}

/// Bytes that are not a bundle, or one over its limits.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// The bytes do not read as a tar archive.
    #[error("not a tar archive of output files: {0}")]
    Malformed(#[from] std::io::Error),
    /// An entry that is a link, a folder or a device.
    #[error("entry {name:?} is not a plain file")]
    NotAFile {
        /// The entry's name.
        name: String,
    },
    /// An entry whose name could leave the folder it is unpacked into.
    #[error("entry {name:?} has an unsafe name (absolute, `..`, or not UTF-8)")]
    UnsafeName {
        /// The entry's name.
        name: String,
    },
    /// Two entries of one name, or a file where another needs a folder.
    #[error("entry {name:?} clashes with another entry of the same name or path")]
    Clash {
        /// The entry's name.
        name: String,
    },
    /// More bytes than the reader accepts.
    #[error("the bundle unpacks to more than {max_bytes} bytes")]
    TooLarge {
        /// The limit.
        max_bytes: u64,
    },
}

impl Bundle {
    /// The archive's bytes.
    pub fn to_tar(&self) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, bytes) in &self.entries {
            let mut header = tar::Header::new_ustar();
            header.set_entry_type(tar::EntryType::Regular);
            header.set_mode(0o644);
            header.set_uid(0);
            header.set_gid(0);
            header.set_mtime(0);
            header.set_size(bytes.len() as u64);
            builder.append_data(&mut header, name, bytes.as_slice()).expect("writing a tar entry to memory");
        }
        builder.into_inner().expect("finishing a tar archive in memory")
    }

    /// Reads an archive, refusing one that unpacks to more than
    /// `max_bytes`, holds anything but plain files, or names a path that
    /// could leave the directory it is unpacked into.
    pub fn from_tar(bytes: &[u8], max_bytes: u64) -> Result<Bundle, BundleError> {
        let mut archive = tar::Archive::new(bytes);
        let mut entries = BTreeMap::new();
        let mut total = 0u64;
        for entry in archive.entries()? {
            let mut entry = entry?;
            let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            if entry.header().entry_type() != tar::EntryType::Regular {
                return Err(BundleError::NotAFile { name });
            }
            let safe = !name.is_empty()
                && !name.starts_with('/')
                && name.split('/').all(|part| !part.is_empty() && part != ".." && part != ".")
                && std::str::from_utf8(&entry.path_bytes()).is_ok();
            if !safe {
                return Err(BundleError::UnsafeName { name });
            }
            total = total.saturating_add(entry.size());
            if total > max_bytes {
                return Err(BundleError::TooLarge { max_bytes });
            }
            // Two entries of one name, or a file where another entry
            // needs a directory, would unpack to less than was packed.
            let clashes = entries.contains_key(&name)
                || entries.keys().any(|known: &String| {
                    known.strip_prefix(name.as_str()).is_some_and(|rest| rest.starts_with('/'))
                        || name.strip_prefix(known.as_str()).is_some_and(|rest| rest.starts_with('/'))
                });
            if clashes {
                return Err(BundleError::Clash { name });
            }
            let mut data = Vec::with_capacity(entry.size() as usize);
            entry.read_to_end(&mut data)?;
            entries.insert(name, data);
        }
        Ok(Bundle { entries })
    }

    /// The files the module left in `/out`, by their path there.
    pub fn out_files(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.entries.iter().filter_map(|(name, bytes)| Some((name.strip_prefix("out/")?, bytes.as_slice())))
    }

    /// What the module wrote to its standard output.
    pub fn stdout(&self) -> &[u8] {
        self.entries.get(BUNDLE_STDOUT).map_or(&[], Vec::as_slice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bundle_round_trips_and_its_bytes_depend_only_on_its_files() {
        let mut bundle = Bundle::default();
        bundle.entries.insert("out/b.txt".into(), b"second".to_vec());
        bundle.entries.insert("out/a/deep.bin".into(), vec![0, 1, 2]);
        bundle.entries.insert(BUNDLE_STDOUT.into(), b"hello\n".to_vec());
        let bytes = bundle.to_tar();
        assert_eq!(bytes, bundle.clone().to_tar());
        let back = Bundle::from_tar(&bytes, 1 << 20).unwrap();
        assert_eq!(back, bundle);
        assert_eq!(back.stdout(), b"hello\n");
        assert_eq!(back.out_files().map(|(name, _)| name).collect::<Vec<_>>(), ["a/deep.bin", "b.txt"]);
        assert!(matches!(Bundle::from_tar(&bytes, 10), Err(BundleError::TooLarge { .. })));
        assert!(Bundle::from_tar(b"not a tar at all, but long enough to be read as a header", 100).is_err());
    }

    #[test]
    fn names_that_escape_are_refused() {
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(1);
        header.set_entry_type(tar::EntryType::Regular);
        // Written by hand: the builder itself refuses `..`.
        header.as_old_mut().name[..9].copy_from_slice(b"../escape");
        header.set_cksum();
        builder.append(&header, &b"x"[..]).unwrap();
        let bytes = builder.into_inner().unwrap();
        assert!(matches!(Bundle::from_tar(&bytes, 100), Err(BundleError::UnsafeName { .. })), "{bytes:?}");
    }
}
