//! A Rust client for the coordinator's REST API and blob transfer.
//!
//! ```no_run
//! # async fn run() -> Result<(), iog_client::ClientError> {
//! let client = iog_client::Client::new("http://127.0.0.1:7070")?;
//! for worker in client.workers().await? {
//!     println!("{} online={}", worker.worker_id, worker.online);
//! }
//! # Ok(()) }
//! ```

mod client;
mod error;

pub use client::Client;
pub use error::ClientError;
