//! The identity key file: 64 hex digits of secret seed on one line, written
//! atomically and readable only by its owner.

use std::fs::File;
use std::io::{ErrorKind, Read};
use std::path::Path;

use super::IdentityError;

/// Largest key file we read. A valid file is 65 bytes (64 hex digits and a
/// newline); anything much larger is not a key file, and reading it whole
/// would be pointless.
const KEY_FILE_BYTES_MAX: u64 = 1024;

/// Number of hex digits in a valid key file: two per seed byte.
const SEED_HEX_DIGITS: usize = 64;

/// Read the seed from `path`, or `None` when the file does not exist.
pub(super) fn read_seed(path: &Path) -> Result<Option<[u8; 32]>, IdentityError> {
    let read_err = |source| IdentityError::ReadKey { path: path.to_owned(), source };
    let file = match File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(read_err(err)),
    };
    warn_if_readable_by_others(&file, path);
    let mut bytes = Vec::new();
    file.take(KEY_FILE_BYTES_MAX + 1).read_to_end(&mut bytes).map_err(read_err)?;
    let seed = parse_seed(&bytes).map_err(|reason| IdentityError::CorruptKey { path: path.to_owned(), reason })?;
    Ok(Some(seed))
}

/// Parse key file contents; the error is the reason, for a human.
fn parse_seed(bytes: &[u8]) -> Result<[u8; 32], String> {
    if bytes.len() as u64 > KEY_FILE_BYTES_MAX {
        return Err(format!(
            "the file is larger than {KEY_FILE_BYTES_MAX} bytes, expected {SEED_HEX_DIGITS} hex digits on one line"
        ));
    }
    let text = std::str::from_utf8(bytes).map_err(|_| "the file is not text".to_owned())?;
    // A human restoring a backup may well add a trailing newline or spaces.
    let text = text.trim();
    if text.is_empty() {
        return Err("the file is empty".to_owned());
    }
    if let Some((idx, c)) = text.char_indices().find(|(_, c)| !c.is_ascii_hexdigit()) {
        let what = if c.is_whitespace() { "whitespace".to_owned() } else { format!("{c:?}") };
        return Err(format!(
            "character {} is {what}, not a hex digit; expected {SEED_HEX_DIGITS} hex digits on one line",
            idx + 1
        ));
    }
    if text.len() != SEED_HEX_DIGITS {
        return Err(format!("found {} hex digits, expected {SEED_HEX_DIGITS} (a 32-byte seed)", text.len()));
    }
    let mut seed = [0u8; 32];
    hex::decode_to_slice(text, &mut seed).map_err(|err| err.to_string())?;
    Ok(seed)
}

/// Create the data dir (and its parents), readable only by its owner on
/// unix because it holds the secret key.
pub(super) fn create_dir(data_dir: &Path) -> Result<(), IdentityError> {
    crate::private_file::create_private_dir(data_dir)
        .map_err(|source| IdentityError::CreateDataDir { path: data_dir.to_owned(), source })
}

/// Write `seed` to `path` atomically and durably, readable only by its
/// owner: a reader never sees a half-written key.
pub(super) fn write_seed(data_dir: &Path, path: &Path, seed: &[u8; 32]) -> Result<(), IdentityError> {
    let mut line = hex::encode(seed);
    line.push('\n');
    crate::private_file::write_private_atomically(data_dir, path, line.as_bytes())
        .map_err(|source| IdentityError::WriteKey { path: path.to_owned(), source })
}

fn warn_if_readable_by_others(file: &File, path: &Path) {
    if let Some(mode) = crate::private_file::open_to_others(file) {
        tracing::warn!(
            path = %path.display(),
            mode = format!("{mode:o}"),
            "identity key file is readable by other users; run `chmod 600` on it"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_seed_with_or_without_newline() {
        let hex = "00".repeat(31) + "ff";
        let mut expected = [0u8; 32];
        expected[31] = 0xff;
        assert_eq!(parse_seed(hex.as_bytes()), Ok(expected));
        assert_eq!(parse_seed(format!("{hex}\n").as_bytes()), Ok(expected));
        assert_eq!(parse_seed(format!("  {}\r\n", hex.to_uppercase()).as_bytes()), Ok(expected));
    }

    #[test]
    fn says_what_is_wrong() {
        let check = |bytes: &[u8], expected: &str| assert_eq!(parse_seed(bytes).unwrap_err(), expected);
        check(b"", "the file is empty");
        check(b"\n", "the file is empty");
        check(b"abcd", "found 4 hex digits, expected 64 (a 32-byte seed)");
        check(b"abxd", "character 3 is 'x', not a hex digit; expected 64 hex digits on one line");
        check(b"ab\ncd\n", "character 3 is whitespace, not a hex digit; expected 64 hex digits on one line");
        check(&[0xff, 0xfe], "the file is not text");
        check(&[b'a'; 2000], "the file is larger than 1024 bytes, expected 64 hex digits on one line");
    }
}
