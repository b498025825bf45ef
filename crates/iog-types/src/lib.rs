//! The vocabulary every iog crate shares: identifiers, states and devices.
//!
//! Nothing here does IO or reads the clock. See `docs/GLOSSARY.md` for the
//! meaning of each word.

mod device;
mod ids;
mod state;
mod verify;

pub use device::{Device, DeviceKind};
pub use ids::{BlobId, IdParseError, JobId, LeaseToken, TaskId, WorkerId};
pub use state::{JobState, TaskState};
pub use verify::{REPLICAS_LIMIT, REPLICAS_MAX_DEFAULT, REPLICAS_MIN, Verify, replica_index, replica_of};

/// Milliseconds since the Unix epoch. Cores receive time only as this value,
/// passed in by their shell; they never read a clock themselves.
pub type UnixMs = u64;
