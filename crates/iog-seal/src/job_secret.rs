//! The submitter's per-job secret and the per-task keys derived from it.

use std::fmt;

use rand::TryRngCore;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::SealError;
use crate::hex_text;

/// blake3 `derive_key` context for task keys. Changing it changes every key.
const TASK_KEY_CONTEXT: &str = "iog task key v1";

/// The secret a submitter generates for one job: every task key of the job is
/// derived from it, so it is the only thing the submitter must keep to read
/// the job's results.
///
/// Generate a fresh one for every job. Task keys depend only on the secret and
/// the task index, so two jobs under one secret would share keys, and equal
/// data in their tasks of the same index would seal to equal bytes.
///
/// `Debug` never shows the secret; the bytes are wiped when it is dropped.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct JobSecret([u8; 32]);

impl JobSecret {
    /// A fresh secret from the operating system's random number generator.
    pub fn generate() -> JobSecret {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng
            .try_fill_bytes(&mut bytes)
            .expect("the operating system's random number generator works on every supported platform");
        let secret = JobSecret(bytes);
        bytes.zeroize();
        secret
    }

    /// From known bytes: a secret read back from storage, or a fixed one in a
    /// simulation.
    pub fn from_bytes(bytes: [u8; 32]) -> JobSecret {
        JobSecret(bytes)
    }

    /// The raw secret, for callers that store it in binary.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The secret as 64 lowercase hex digits, the form the submitter keeps in
    /// a file. The returned string holds the secret: do not log it.
    pub fn to_hex(&self) -> String {
        hex_text::encode(&self.0)
    }

    /// Parse 64 hex digits (either case; whitespace around them, such as a
    /// file's trailing newline, is ignored).
    pub fn from_hex(text: &str) -> Result<JobSecret, SealError> {
        let bytes = hex_text::decode::<32>("job secret", text)?;
        Ok(JobSecret(*bytes))
    }

    /// The key of task `task_idx` of this job:
    /// `blake3::derive_key("iog task key v1", secret || task_idx as u32 LE)`.
    ///
    /// A worker is given only the keys of the tasks placed on it, so it can
    /// read no other task of the job.
    pub fn task_key(&self, task_idx: u32) -> TaskKey {
        let mut hasher = blake3::Hasher::new_derive_key(TASK_KEY_CONTEXT);
        hasher.update(&self.0);
        hasher.update(&task_idx.to_le_bytes());
        let key = TaskKey(*hasher.finalize().as_bytes());
        hasher.zeroize();
        key
    }
}

impl fmt::Debug for JobSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JobSecret(..)")
    }
}

/// The key that seals one task's input and output (see [`TaskKey::seal`]).
///
/// The submitter derives it from the [`JobSecret`]; a worker receives it
/// wrapped to its own seal key (see [`crate::wrap`]). Replicas of one task
/// share it.
///
/// `Debug` never shows the key; the bytes are wiped when it is dropped.
/// Equality is compared in constant time.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct TaskKey(pub(crate) [u8; 32]);

impl TaskKey {
    /// From known bytes, e.g. a key the worker kept while the task runs.
    pub fn from_bytes(bytes: [u8; 32]) -> TaskKey {
        TaskKey(bytes)
    }

    /// The raw key, for callers that must keep it.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl PartialEq for TaskKey {
    fn eq(&self, other: &TaskKey) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for TaskKey {}

impl fmt::Debug for TaskKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TaskKey(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_key_matches_the_documented_derivation() {
        let secret = JobSecret::from_bytes([9; 32]);
        let mut input = [9u8; 36];
        input[32..].copy_from_slice(&7u32.to_le_bytes());
        assert_eq!(secret.task_key(7).as_bytes(), &blake3::derive_key("iog task key v1", &input));
    }

    #[test]
    fn task_keys_differ_per_task_and_per_secret() {
        let a = JobSecret::from_bytes([1; 32]);
        let b = JobSecret::from_bytes([2; 32]);
        assert_eq!(a.task_key(0), a.task_key(0));
        assert_ne!(a.task_key(0), a.task_key(1));
        assert_ne!(a.task_key(0), b.task_key(0));
        assert_ne!(a.task_key(u32::MAX), a.task_key(0));
    }

    #[test]
    fn generated_secrets_differ() {
        assert_ne!(JobSecret::generate().as_bytes(), JobSecret::generate().as_bytes());
    }

    #[test]
    fn debug_does_not_show_secrets() {
        let secret = JobSecret::from_bytes([0xab; 32]);
        assert_eq!(format!("{secret:?}"), "JobSecret(..)");
        assert_eq!(format!("{:?}", secret.task_key(0)), "TaskKey(..)");
    }
}
