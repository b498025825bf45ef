//! Fixed-length byte arrays as hex text, with errors that say what the text
//! should have held.

use zeroize::Zeroizing;

use crate::SealError;

/// Lowercase hex of `bytes`.
pub(crate) fn encode(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

/// Parse exactly `N` bytes from hex (either case), ignoring whitespace around
/// it so that a key file with a trailing newline reads back. The intermediate
/// buffer is wiped, since `what` may be a secret.
pub(crate) fn decode<const N: usize>(what: &'static str, text: &str) -> Result<Zeroizing<[u8; N]>, SealError> {
    let text = text.trim();
    let bad = |reason: String| SealError::BadHex { what, expected_digits: 2 * N, reason };
    if text.len() != 2 * N {
        return Err(bad(format!("found {} characters", text.len())));
    }
    let mut bytes = Zeroizing::new([0u8; N]);
    hex::decode_to_slice(text, bytes.as_mut_slice()).map_err(|err| bad(err.to_string()))?;
    Ok(bytes)
}
