//! A Rust client for the coordinator's REST API and blob transfer.
//!
//! ```no_run
//! # async fn run() -> Result<(), iog_client::ClientError> {
//! let pin = "sha256:0000000000000000000000000000000000000000000000000000000000000000".parse().unwrap();
//! let client = iog_client::Client::connect("https://127.0.0.1:7070", Some(pin))?;
//! for worker in client.workers().await? {
//!     println!("{} online={}", worker.worker_id, worker.online);
//! }
//! # Ok(()) }
//! ```

mod bound;
mod client;
mod error;
pub mod sealed;
pub mod tls;

pub use bound::BoundConnection;
pub use client::{Client, RATE_LIMITED_RETRIES_MAX, RETRY_AFTER_S_MAX};
pub use error::ClientError;
pub use tls::{Fingerprint, FingerprintParseError};
