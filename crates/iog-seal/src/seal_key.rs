//! A worker's x25519 key pair for receiving task keys, and the message it
//! signs to publish the public half.

use std::fmt;

use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use crate::SealError;
use crate::hex_text;

/// blake3 `derive_key` context that turns an ed25519 seed into an x25519
/// secret. Changing it changes every worker's seal key.
const SEAL_SECRET_CONTEXT: &str = "iog worker x25519 v1";

/// A worker's x25519 secret key: task keys are wrapped to its public half
/// ([`SealPublic`]) and only this secret unwraps them.
///
/// It is derived from the worker's ed25519 identity seed, so a worker keeps
/// no second key file and its seal key lasts as long as its identity.
///
/// `Debug` shows only the public key; the secret is wiped when dropped.
#[derive(Clone)]
pub struct SealSecret(pub(crate) StaticSecret);

impl SealSecret {
    /// Derive the seal secret from a 32-byte ed25519 identity seed:
    /// `blake3::derive_key("iog worker x25519 v1", seed)`. The derivation is
    /// one way, so the seal secret reveals nothing about the identity key.
    pub fn derive(ed25519_seed: &[u8; 32]) -> SealSecret {
        let bytes = Zeroizing::new(blake3::derive_key(SEAL_SECRET_CONTEXT, ed25519_seed));
        SealSecret(StaticSecret::from(*bytes))
    }

    /// The public key that submitters wrap task keys to.
    pub fn public(&self) -> SealPublic {
        SealPublic(PublicKey::from(&self.0).to_bytes())
    }
}

impl fmt::Debug for SealSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealSecret").field("public", &self.public()).finish_non_exhaustive()
    }
}

/// A worker's x25519 public seal key. On the wire and in text it is 64
/// lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SealPublic([u8; 32]);

impl SealPublic {
    /// From the 32 raw bytes of an x25519 public key.
    pub fn from_bytes(bytes: [u8; 32]) -> SealPublic {
        SealPublic(bytes)
    }

    /// The 32 raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// 64 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        hex_text::encode(&self.0)
    }

    /// Parse 64 hex digits (either case; whitespace around them is ignored).
    pub fn from_hex(text: &str) -> Result<SealPublic, SealError> {
        hex_text::decode::<32>("seal public key", text).map(|bytes| SealPublic(*bytes))
    }
}

crate::hex_text::text_traits!(SealPublic);

/// The message a worker signs with its ed25519 identity to publish its seal
/// key, so that a submitter wraps task keys only to a key the assigned worker
/// vouched for, never to one the coordinator substituted:
///
/// ```text
/// iog worker seal key v1\n{worker_id}\n{public key in lowercase hex}\n
/// ```
///
/// The last line always holds exactly 64 hex digits, so no pair of worker id
/// and key shares a message with another pair.
pub fn seal_key_signing_message(worker_id: &str, public: &SealPublic) -> Vec<u8> {
    format!("iog worker seal key v1\n{worker_id}\n{}\n", public.to_hex()).into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derive_matches_the_documented_derivation() {
        let seed = [4u8; 32];
        let expected = StaticSecret::from(blake3::derive_key("iog worker x25519 v1", &seed));
        assert_eq!(SealSecret::derive(&seed).public().as_bytes(), PublicKey::from(&expected).as_bytes());
    }

    #[test]
    fn signing_message_is_as_documented() {
        let public = SealPublic::from_bytes([0xab; 32]);
        let message = seal_key_signing_message("w1", &public);
        assert_eq!(message, format!("iog worker seal key v1\nw1\n{}\n", "ab".repeat(32)).into_bytes());
    }

    #[test]
    fn debug_shows_public_key_only() {
        let secret = SealSecret::derive(&[1; 32]);
        let text = format!("{secret:?}");
        assert!(text.contains(&secret.public().to_hex()), "{text}");
        assert!(!text.contains(&hex::encode(secret.0.to_bytes())), "{text}");
    }
}
