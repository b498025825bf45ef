//! What a worker knows about its own host: the ed25519 key that names it on
//! the network, and the compute devices it can offer.
//!
//! The identity key lives in the worker's data dir and is created on first
//! start. Device discovery asks NVML for NVIDIA GPUs (loaded at run time, so
//! hosts without a driver simply offer their CPU) and always reports the CPU.
//!
//! An owner who lends a machine only while idle describes "using it" in an
//! [`OwnerPolicy`]; the worker polls an [`OwnerWatch`] to learn when to stop.

mod devices;
mod identity;
mod memory;
pub mod owner;
pub mod private_file;

pub use devices::{DiscoveryReport, discover_devices, merge_devices};
pub use identity::{Identity, IdentityError, KEY_FILE_NAME, verify, verify_key};
pub use memory::memory_available_bytes;
pub use owner::{COMMAND_TIMEOUT, OwnerPolicy, OwnerState, OwnerWatch};
