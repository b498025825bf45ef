//! Deterministic authenticated encryption of task inputs and outputs.
//!
//! Format of a sealed blob, all fixed-size fields first:
//!
//! ```text
//! "iogS" (4) | version = 1 (1) | purpose (1) | nonce (24) | ciphertext (len of plaintext) | tag (16)
//! ```
//!
//! The nonce is synthetic: the first 24 bytes of a blake3 keyed hash of the
//! purpose byte and the plaintext, under a key derived from the task key. The
//! cipher is XChaCha20-Poly1305 under the task key with the associated data
//! `"iog sealed v1" || purpose byte`.

use std::fmt;

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{Tag, XChaCha20Poly1305, XNonce};
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

use crate::{SealError, TaskKey};

/// The first bytes of every sealed blob; [`is_sealed`] looks for them.
const MAGIC: [u8; 4] = *b"iogS";

/// The format version this build writes and reads.
pub const SEALED_VERSION: u8 = 1;

/// blake3 `derive_key` context for the key of the synthetic nonce.
const NONCE_KEY_CONTEXT: &str = "iog task nonce v1";

/// Prefix of the associated data; the purpose byte follows it.
const AAD_PREFIX: &[u8] = b"iog sealed v1";

const NONCE_BYTES: usize = 24;
const TAG_BYTES: usize = 16;

/// Bytes before the ciphertext: magic, version, purpose and nonce.
pub const SEALED_HEADER_BYTES: usize = MAGIC.len() + 1 + 1 + NONCE_BYTES;

/// How many bytes sealing adds to a plaintext (header and tag): 46. Size
/// limits on sealed data should allow for it.
pub const SEALED_OVERHEAD_BYTES: usize = SEALED_HEADER_BYTES + TAG_BYTES;

/// What sealed data is for. It is authenticated with the data, so a task's
/// input cannot be passed off as its output, or the other way round.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Purpose {
    /// A task input, sealed by the submitter.
    Input,
    /// A task result, sealed by the worker.
    Output,
}

impl Purpose {
    /// The byte that stands for the purpose in the header and the associated
    /// data. Zero is left unused so that zeroed memory is never a purpose.
    fn to_byte(self) -> u8 {
        match self {
            Purpose::Input => 1,
            Purpose::Output => 2,
        }
    }

    fn from_byte(byte: u8) -> Option<Purpose> {
        match byte {
            1 => Some(Purpose::Input),
            2 => Some(Purpose::Output),
            _ => None,
        }
    }
}

impl fmt::Display for Purpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Purpose::Input => "input",
            Purpose::Output => "output",
        })
    }
}

/// Whether `bytes` look like sealed data: they start with the seal magic.
/// It does not check that they open; use it to tell sealed from plaintext
/// data, e.g. to refuse a plaintext result where a sealed one is expected.
pub fn is_sealed(bytes: &[u8]) -> bool {
    bytes.starts_with(&MAGIC)
}

impl TaskKey {
    /// Seal `plaintext` for `purpose`: encrypt and authenticate it with this
    /// task key.
    ///
    /// Sealing is deterministic, on purpose: the same plaintext and purpose
    /// under the same key always give the same bytes. Replicas of one task
    /// share its key, so replicas that compute the same output upload
    /// identical ciphertext, and the coordinator can compare replicas by the
    /// digest of the bytes it stores without being able to read them. What
    /// this reveals to someone without the key is only whether two sealed
    /// blobs of the same task and purpose hold equal plaintext (and, as any
    /// encryption does, their length); blobs of different tasks or purposes
    /// never compare equal.
    ///
    /// Because the nonce is derived from the plaintext, reusing a key for
    /// many plaintexts is safe: no nonce can repeat for different data.
    pub fn seal(&self, purpose: Purpose, plaintext: &[u8]) -> Vec<u8> {
        let nonce = self.synthetic_nonce(purpose, plaintext);
        let mut sealed = Vec::with_capacity(SEALED_OVERHEAD_BYTES + plaintext.len());
        sealed.extend_from_slice(&MAGIC);
        sealed.push(SEALED_VERSION);
        sealed.push(purpose.to_byte());
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(plaintext);
        let tag = self
            .cipher()
            .encrypt_in_place_detached(
                XNonce::from_slice(&nonce),
                &associated_data(purpose),
                &mut sealed[SEALED_HEADER_BYTES..],
            )
            .expect("XChaCha20-Poly1305 encrypts any message shorter than 256 GiB");
        sealed.extend_from_slice(&tag);
        sealed
    }

    /// Open data sealed by [`TaskKey::seal`] with this key, expecting it to
    /// have been sealed for `purpose`. Returns the plaintext.
    ///
    /// Fails when the bytes are not sealed data, of an unknown version, cut
    /// off, sealed for the other purpose, sealed under another key, or
    /// changed in any byte.
    pub fn open(&self, purpose: Purpose, sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        if !is_sealed(sealed) {
            return Err(SealError::NotSealed);
        }
        let version = *sealed
            .get(MAGIC.len())
            .ok_or(SealError::Truncated { len_bytes: sealed.len(), min_bytes: SEALED_OVERHEAD_BYTES })?;
        if version != SEALED_VERSION {
            return Err(SealError::UnsupportedVersion { version });
        }
        if sealed.len() < SEALED_OVERHEAD_BYTES {
            return Err(SealError::Truncated { len_bytes: sealed.len(), min_bytes: SEALED_OVERHEAD_BYTES });
        }
        let purpose_byte = sealed[MAGIC.len() + 1];
        let sealed_purpose =
            Purpose::from_byte(purpose_byte).ok_or(SealError::UnknownPurpose { byte: purpose_byte })?;
        if sealed_purpose != purpose {
            return Err(SealError::PurposeMismatch { sealed: sealed_purpose, opened: purpose });
        }
        let nonce = &sealed[SEALED_HEADER_BYTES - NONCE_BYTES..SEALED_HEADER_BYTES];
        let (ciphertext, tag) = sealed[SEALED_HEADER_BYTES..].split_at(sealed.len() - SEALED_OVERHEAD_BYTES);

        let mut plaintext = ciphertext.to_vec();
        // The cipher checks the tag before it decrypts, so on failure the
        // buffer still holds only ciphertext.
        self.cipher()
            .decrypt_in_place_detached(
                XNonce::from_slice(nonce),
                &associated_data(purpose),
                &mut plaintext,
                Tag::from_slice(tag),
            )
            .map_err(|_| SealError::Tampered)?;
        // Only a holder of the key can make data that authenticates, but one
        // that chose its own nonce would break the promise that equal outputs
        // seal to equal bytes; such data is rejected like tampered data.
        if !bool::from(self.synthetic_nonce(purpose, &plaintext).ct_eq(nonce)) {
            plaintext.zeroize();
            return Err(SealError::Tampered);
        }
        Ok(plaintext)
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new((&self.0).into())
    }

    fn synthetic_nonce(&self, purpose: Purpose, plaintext: &[u8]) -> [u8; NONCE_BYTES] {
        let mut nonce_key = blake3::derive_key(NONCE_KEY_CONTEXT, &self.0);
        let mut hasher = blake3::Hasher::new_keyed(&nonce_key);
        nonce_key.zeroize();
        hasher.update(&[purpose.to_byte()]);
        hasher.update(plaintext);
        let mut nonce = [0u8; NONCE_BYTES];
        hasher.finalize_xof().fill(&mut nonce);
        hasher.zeroize();
        nonce
    }
}

fn associated_data(purpose: Purpose) -> [u8; AAD_PREFIX.len() + 1] {
    let mut aad = [0u8; AAD_PREFIX.len() + 1];
    aad[..AAD_PREFIX.len()].copy_from_slice(AAD_PREFIX);
    aad[AAD_PREFIX.len()] = purpose.to_byte();
    aad
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_as_documented() {
        let key = TaskKey::from_bytes([5; 32]);
        let sealed = key.seal(Purpose::Output, b"hello");
        assert_eq!(sealed.len(), SEALED_OVERHEAD_BYTES + 5);
        assert_eq!(&sealed[..4], b"iogS");
        assert_eq!(sealed[4], 1);
        assert_eq!(sealed[5], 2);
        let nonce_key = blake3::derive_key("iog task nonce v1", &[5; 32]);
        let hash = blake3::keyed_hash(&nonce_key, b"\x02hello");
        assert_eq!(&sealed[6..30], &hash.as_bytes()[..24]);
        assert_eq!(SEALED_OVERHEAD_BYTES, 46);
    }

    #[test]
    fn a_forged_nonce_is_rejected_even_with_a_valid_tag() {
        // Seal with the right key but a nonce that is not the synthetic one,
        // as only a key holder could.
        let key = TaskKey::from_bytes([6; 32]);
        let mut sealed = key.seal(Purpose::Input, b"data");
        let nonce = [0x11u8; NONCE_BYTES];
        sealed[SEALED_HEADER_BYTES - NONCE_BYTES..SEALED_HEADER_BYTES].copy_from_slice(&nonce);
        let body_end = sealed.len() - TAG_BYTES;
        sealed[SEALED_HEADER_BYTES..body_end].copy_from_slice(b"data");
        let tag = key
            .cipher()
            .encrypt_in_place_detached(
                XNonce::from_slice(&nonce),
                &associated_data(Purpose::Input),
                &mut sealed[SEALED_HEADER_BYTES..body_end],
            )
            .expect("encrypts");
        sealed[body_end..].copy_from_slice(&tag);
        assert_eq!(key.open(Purpose::Input, &sealed), Err(SealError::Tampered));
    }
}
