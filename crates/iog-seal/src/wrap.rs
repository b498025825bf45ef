//! Wrapping a task key to one worker's seal key, so that the coordinator can
//! relay it without reading it.
//!
//! Construction: an ephemeral x25519 key pair; the shared secret with the
//! recipient; wrapping key =
//! `blake3::derive_key("iog key wrap v1", shared || ephemeral public || recipient public || context)`;
//! XChaCha20-Poly1305 of the task key under the wrapping key with a random
//! 24-byte nonce and the context as associated data.

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{Tag, XChaCha20Poly1305, XNonce};
use rand::TryRngCore;
use x25519_dalek::{PublicKey, SharedSecret, StaticSecret};
use zeroize::{Zeroize, Zeroizing};

use crate::hex_text;
use crate::{SealError, SealPublic, SealSecret, TaskKey};

/// blake3 `derive_key` context of the wrapping key.
const WRAP_KEY_CONTEXT: &str = "iog key wrap v1";
/// blake3 `derive_key` contexts that split injected randomness into the
/// ephemeral secret and the nonce.
const EPHEMERAL_CONTEXT: &str = "iog key wrap ephemeral v1";
const NONCE_CONTEXT: &str = "iog key wrap nonce v1";

const PUBLIC_BYTES: usize = 32;
const NONCE_BYTES: usize = 24;
const CIPHERTEXT_BYTES: usize = 32 + 16;

/// Size of a wrapped key: ephemeral public key (32), nonce (24), encrypted
/// task key and tag (48). In hex it is twice as long.
pub const WRAPPED_KEY_BYTES: usize = PUBLIC_BYTES + NONCE_BYTES + CIPHERTEXT_BYTES;

/// A task key encrypted to one worker's [`SealPublic`] for one context. Only
/// that worker's [`SealSecret`], given the same context, recovers the key.
///
/// On the wire and in text it is [`WRAPPED_KEY_BYTES`] bytes as lowercase hex:
/// ephemeral public key, nonce, ciphertext with tag.
#[derive(Clone, PartialEq, Eq)]
pub struct WrappedKey {
    ephemeral_public: [u8; PUBLIC_BYTES],
    nonce: [u8; NONCE_BYTES],
    ciphertext: [u8; CIPHERTEXT_BYTES],
}

impl WrappedKey {
    /// The wrapped key as bytes, in wire order.
    pub fn to_bytes(&self) -> [u8; WRAPPED_KEY_BYTES] {
        let mut bytes = [0u8; WRAPPED_KEY_BYTES];
        bytes[..PUBLIC_BYTES].copy_from_slice(&self.ephemeral_public);
        bytes[PUBLIC_BYTES..PUBLIC_BYTES + NONCE_BYTES].copy_from_slice(&self.nonce);
        bytes[PUBLIC_BYTES + NONCE_BYTES..].copy_from_slice(&self.ciphertext);
        bytes
    }

    /// From bytes in wire order. Any bytes parse; whether they unwrap is
    /// checked by [`unwrap`].
    pub fn from_bytes(bytes: &[u8; WRAPPED_KEY_BYTES]) -> WrappedKey {
        let (ephemeral_public, rest) = bytes.split_at(PUBLIC_BYTES);
        let (nonce, ciphertext) = rest.split_at(NONCE_BYTES);
        WrappedKey {
            ephemeral_public: ephemeral_public.try_into().expect("split at the public key's length"),
            nonce: nonce.try_into().expect("split at the nonce's length"),
            ciphertext: ciphertext.try_into().expect("the rest is the ciphertext's length"),
        }
    }

    /// Lowercase hex of [`WrappedKey::to_bytes`].
    pub fn to_hex(&self) -> String {
        hex_text::encode(&self.to_bytes())
    }

    /// Parse the hex form (either case; whitespace around it is ignored).
    pub fn from_hex(text: &str) -> Result<WrappedKey, SealError> {
        hex_text::decode::<WRAPPED_KEY_BYTES>("wrapped key", text).map(|bytes| WrappedKey::from_bytes(&bytes))
    }
}

crate::hex_text::text_traits!(WrappedKey);

/// The context a task key is wrapped under: which job, which task (its
/// index, replicas of verification included) and which worker. A wrapped key
/// opens only with exactly this context, so it cannot be replayed for
/// another task, another replica or another worker.
pub fn task_context(job_id: u64, task_idx: u32, worker_id: &str) -> Vec<u8> {
    format!("iog task key for job {job_id:016x} task {task_idx} worker {worker_id}").into_bytes()
}

/// Wrap `key` to the worker whose seal key is `recipient`, bound to
/// `context`, with fresh randomness from the operating system.
///
/// The context names what the key is for, e.g.
/// `"job <job id> task <task idx> worker <worker id>"`: [`unwrap`] succeeds
/// only with the same context, so a wrapped key cannot be replayed for
/// another task or worker.
///
/// Fails only when `recipient` is a low-order point, with which the key would
/// be readable by anyone.
pub fn wrap(recipient: &SealPublic, context: &[u8], key: &TaskKey) -> Result<WrappedKey, SealError> {
    let mut randomness = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng
        .try_fill_bytes(randomness.as_mut_slice())
        .expect("the operating system's random number generator works on every supported platform");
    wrap_with_randomness(recipient, context, key, &randomness)
}

/// [`wrap`] with the randomness injected, for deterministic simulations and
/// tests: the ephemeral secret and the nonce are derived from `randomness`.
///
/// `randomness` must be secret and never used twice: whoever knows it can
/// unwrap the key, and two keys wrapped with the same randomness to the same
/// worker and context are encrypted with the same key and nonce.
pub fn wrap_with_randomness(
    recipient: &SealPublic,
    context: &[u8],
    key: &TaskKey,
    randomness: &[u8; 32],
) -> Result<WrappedKey, SealError> {
    let ephemeral_secret = StaticSecret::from(*Zeroizing::new(blake3::derive_key(EPHEMERAL_CONTEXT, randomness)));
    let ephemeral_public = PublicKey::from(&ephemeral_secret).to_bytes();
    let mut nonce = [0u8; NONCE_BYTES];
    nonce.copy_from_slice(&blake3::derive_key(NONCE_CONTEXT, randomness)[..NONCE_BYTES]);

    let shared = ephemeral_secret.diffie_hellman(&PublicKey::from(*recipient.as_bytes()));
    let cipher = wrapping_cipher(&shared, &ephemeral_public, recipient, context)?;
    let mut ciphertext = [0u8; CIPHERTEXT_BYTES];
    ciphertext[..32].copy_from_slice(key.as_bytes());
    let tag = cipher
        .encrypt_in_place_detached(XNonce::from_slice(&nonce), context, &mut ciphertext[..32])
        .expect("XChaCha20-Poly1305 encrypts a 32-byte message");
    ciphertext[32..].copy_from_slice(&tag);
    Ok(WrappedKey { ephemeral_public, nonce, ciphertext })
}

/// Recover a task key wrapped to `secret`'s public key for `context`.
///
/// Fails when the key was wrapped to another worker, for another context, or
/// changed on the way; the error does not say which.
pub fn unwrap(secret: &SealSecret, context: &[u8], wrapped: &WrappedKey) -> Result<TaskKey, SealError> {
    let shared = secret.0.diffie_hellman(&PublicKey::from(wrapped.ephemeral_public));
    let cipher = wrapping_cipher(&shared, &wrapped.ephemeral_public, &secret.public(), context)?;
    let mut key = Zeroizing::new([0u8; 32]);
    key.copy_from_slice(&wrapped.ciphertext[..32]);
    cipher
        .decrypt_in_place_detached(
            XNonce::from_slice(&wrapped.nonce),
            context,
            key.as_mut_slice(),
            Tag::from_slice(&wrapped.ciphertext[32..]),
        )
        .map_err(|_| SealError::UnwrapFailed)?;
    Ok(TaskKey::from_bytes(*key))
}

/// The cipher under the wrapping key. Refuses an all-zero shared secret,
/// which a low-order public key on either side forces and which anyone could
/// compute.
fn wrapping_cipher(
    shared: &SharedSecret,
    ephemeral_public: &[u8; PUBLIC_BYTES],
    recipient: &SealPublic,
    context: &[u8],
) -> Result<XChaCha20Poly1305, SealError> {
    if !shared.was_contributory() {
        return Err(SealError::LowOrderKey);
    }
    // Every field before the context has a fixed length, so the context can
    // end the input without a length prefix.
    let mut hasher = blake3::Hasher::new_derive_key(WRAP_KEY_CONTEXT);
    hasher.update(shared.as_bytes());
    hasher.update(ephemeral_public);
    hasher.update(recipient.as_bytes());
    hasher.update(context);
    let mut wrapping_key = *hasher.finalize().as_bytes();
    hasher.zeroize();
    let cipher = XChaCha20Poly1305::new((&wrapping_key).into());
    wrapping_key.zeroize();
    Ok(cipher)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_layout_round_trips_through_bytes() {
        let recipient = SealSecret::derive(&[1; 32]).public();
        let wrapped = wrap_with_randomness(&recipient, b"ctx", &TaskKey::from_bytes([2; 32]), &[3; 32]).expect("wraps");
        let bytes = wrapped.to_bytes();
        assert_eq!(&bytes[..32], &wrapped.ephemeral_public);
        assert_eq!(&bytes[32..56], &wrapped.nonce);
        assert_eq!(WrappedKey::from_bytes(&bytes), wrapped);
        assert_eq!(WRAPPED_KEY_BYTES, 104);
    }
}
