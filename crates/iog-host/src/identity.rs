//! The worker's ed25519 identity: its key, its id, signing and verifying.

mod key_file;

use std::fmt;
use std::path::{Path, PathBuf};

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use iog_types::WorkerId;
use rand::TryRngCore;

/// Name of the file in the data dir that holds the identity's secret seed.
pub const KEY_FILE_NAME: &str = "identity.key";

/// Loading, creating or checking an identity failed.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The data dir could not be created.
    #[error("create data dir {path}: {source}; check that the parent exists and is writable")]
    CreateDataDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The key file exists but could not be read.
    #[error("read identity key file {path}: {source}; check its permissions")]
    ReadKey {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A new key file could not be written.
    #[error("write identity key file {path}: {source}; check that the data dir is writable")]
    WriteKey {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The key file exists but does not hold a key. It is never replaced
    /// automatically: doing so would silently give the worker a new id.
    #[error(
        "identity key file {path} is corrupt: {reason}; restore it from a backup, \
         or move it away to create a new identity (the worker id will change)"
    )]
    CorruptKey { path: PathBuf, reason: String },
    /// A worker id is not a base58 ed25519 public key.
    #[error("worker id {worker_id} is not an ed25519 public key in base58: {reason}")]
    InvalidWorkerId { worker_id: WorkerId, reason: String },
    /// A signature does not match the worker id and the message.
    #[error("signature does not match worker {worker_id} and the signed message")]
    BadSignature { worker_id: WorkerId },
}

/// A worker's ed25519 identity, created on first start and kept in its data dir.
///
/// `Debug` shows only the worker id, never the secret key.
#[derive(Clone)]
pub struct Identity {
    signing_key: SigningKey,
}

impl Identity {
    /// Load `<data_dir>/identity.key`, or create it (creating `data_dir` too)
    /// when absent.
    ///
    /// The file holds the 32-byte secret seed as 64 hex digits on one line, so
    /// a human can back it up. It is written atomically (temp file, fsync,
    /// rename) with mode 0600 on unix. A corrupt file is an error naming the
    /// path and what is wrong; it is never silently replaced.
    pub fn load_or_create(data_dir: &Path) -> Result<Identity, IdentityError> {
        let path = data_dir.join(KEY_FILE_NAME);
        if let Some(seed) = key_file::read_seed(&path)? {
            let identity = Identity::from_seed(seed);
            tracing::debug!(worker_id = %identity.worker_id(), path = %path.display(), "loaded identity");
            return Ok(identity);
        }
        key_file::create_dir(data_dir)?;
        let identity = Identity::generate();
        key_file::write_seed(data_dir, &path, identity.signing_key.as_bytes())?;
        tracing::info!(worker_id = %identity.worker_id(), path = %path.display(), "created new identity");
        Ok(identity)
    }

    /// Generate a fresh identity in memory (for tests and simulations), from
    /// the operating system's random number generator.
    pub fn generate() -> Identity {
        let mut seed = [0u8; 32];
        rand::rngs::OsRng
            .try_fill_bytes(&mut seed)
            .expect("the operating system's random number generator works on every supported platform");
        Identity::from_seed(seed)
    }

    /// From a fixed 32-byte seed (deterministic; for simulations).
    pub fn from_seed(seed: [u8; 32]) -> Identity {
        Identity { signing_key: SigningKey::from_bytes(&seed) }
    }

    /// The worker id: the public key in base58.
    pub fn worker_id(&self) -> WorkerId {
        WorkerId(bs58::encode(self.public_key_bytes()).into_string())
    }

    /// The 32-byte ed25519 public key.
    pub fn public_key_bytes(&self) -> [u8; 32] {
        self.signing_key.verifying_key().to_bytes()
    }

    /// The worker's x25519 seal key, derived from the identity seed, so the
    /// worker needs no second key file. Submitters wrap task keys to its
    /// public half, which the worker publishes signed by this identity.
    pub fn seal_secret(&self) -> iog_seal::SealSecret {
        iog_seal::SealSecret::derive(self.signing_key.as_bytes())
    }

    /// Sign `message`; anyone can check the result with [`verify`] and this
    /// identity's worker id.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.signing_key.sign(message).to_bytes()
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity").field("worker_id", &self.worker_id()).finish_non_exhaustive()
    }
}

/// Check a signature made by the holder of the ed25519 `public_key`
/// (strict verification, as [`verify`]).
pub fn verify_key(public_key: &[u8; 32], message: &[u8], signature: &[u8; 64]) -> Result<(), IdentityError> {
    verify(&WorkerId(bs58::encode(public_key).into_string()), message, signature)
}

/// Check a signature made by the worker with this id (parses the base58
/// public key). Uses strict verification, which rejects weak keys and
/// malleable signatures.
pub fn verify(worker_id: &WorkerId, message: &[u8], signature: &[u8; 64]) -> Result<(), IdentityError> {
    let invalid = |reason: String| IdentityError::InvalidWorkerId { worker_id: worker_id.clone(), reason };
    let bytes = bs58::decode(&worker_id.0).into_vec().map_err(|err| invalid(err.to_string()))?;
    let key_bytes: [u8; 32] =
        bytes.as_slice().try_into().map_err(|_| invalid(format!("expected 32 bytes, found {}", bytes.len())))?;
    let key = VerifyingKey::from_bytes(&key_bytes).map_err(|_| invalid("not a point on the curve".to_owned()))?;
    key.verify_strict(message, &Signature::from_bytes(signature))
        .map_err(|_| IdentityError::BadSignature { worker_id: worker_id.clone() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_round_trip() {
        let identity = Identity::generate();
        let signature = identity.sign(b"offer 1");
        verify(&identity.worker_id(), b"offer 1", &signature).expect("own signature verifies");
    }

    #[test]
    fn verify_rejects_tampered_message_and_other_worker() {
        let identity = Identity::from_seed([7; 32]);
        let signature = identity.sign(b"price 10");
        let err = verify(&identity.worker_id(), b"price 11", &signature).unwrap_err();
        assert!(matches!(err, IdentityError::BadSignature { .. }), "{err}");

        let other = Identity::from_seed([8; 32]);
        let err = verify(&other.worker_id(), b"price 10", &signature).unwrap_err();
        assert!(matches!(err, IdentityError::BadSignature { .. }), "{err}");
    }

    #[test]
    fn verify_rejects_malformed_worker_ids() {
        let signature = Identity::from_seed([1; 32]).sign(b"x");
        for text in ["0OIl", "abc", ""] {
            let err = verify(&WorkerId(text.to_owned()), b"x", &signature).unwrap_err();
            assert!(matches!(err, IdentityError::InvalidWorkerId { .. }), "{text:?}: {err}");
        }
    }

    #[test]
    fn from_seed_is_deterministic_and_id_is_base58_key() {
        let a = Identity::from_seed([3; 32]);
        let b = Identity::from_seed([3; 32]);
        assert_eq!(a.worker_id(), b.worker_id());
        let decoded = bs58::decode(&a.worker_id().0).into_vec().expect("base58");
        assert_eq!(decoded, a.public_key_bytes());
        assert_ne!(a.worker_id(), Identity::from_seed([4; 32]).worker_id());
    }

    #[test]
    fn seal_secret_is_stable_per_identity_and_differs_between_identities() {
        let a = Identity::from_seed([3; 32]);
        assert_eq!(a.seal_secret().public(), Identity::from_seed([3; 32]).seal_secret().public());
        assert_ne!(a.seal_secret().public(), Identity::from_seed([4; 32]).seal_secret().public());
        // The seal key is not the ed25519 key reused.
        assert_ne!(a.seal_secret().public().as_bytes(), &a.public_key_bytes());
    }

    #[test]
    fn debug_does_not_show_the_secret() {
        let identity = Identity::from_seed([0xab; 32]);
        let text = format!("{identity:?}");
        assert!(text.contains(&identity.worker_id().0), "{text}");
        assert!(!text.contains("abab"), "{text}");
    }
}
