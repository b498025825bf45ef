//! The coordinator's durable state.
//!
//! [`Store`] keeps jobs, tasks, commits, artifacts and known workers in one
//! SQLite file (WAL mode, `synchronous=FULL`, so a transaction that returned
//! survives `kill -9` and power loss). Blobs are content-addressed by their
//! blake3 hash: small ones (up to [`INLINE_BLOB_BYTES_MAX`]) are rows of the
//! database, written in the same transaction as the change that needs them;
//! larger ones are files kept by [`BlobStore`].
//!
//! The store applies the core's [`iog_core::Change`]s in one transaction per
//! batch, and reads back an [`iog_core::Snapshot`] after a restart.

mod blobs;
mod error;
mod records;
mod sqlite;

pub use blobs::{BlobStore, MAX_BLOB_BYTES};
pub use error::StoreError;
pub use records::{ArtifactRecord, CommitRecord, JobProgress, JobRecord, SignedCheckpoint, TaskRecord, WorkerRecord};
pub use sqlite::{INLINE_BLOB_BYTES_MAX, Store};
