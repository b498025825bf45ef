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
pub mod tls;

pub use bound::BoundConnection;
pub use client::Client;
pub use error::ClientError;
pub use tls::{Fingerprint, FingerprintParseError};
