//! Wire types of iog.
//!
//! Two surfaces share one HTTP port on the coordinator:
//! - the REST API for people and scripts ([`api`]), JSON over HTTP;
//! - the worker stream ([`stream`]): one long-lived WebSocket per worker,
//!   opened outbound by the worker (so it works from behind NAT), carrying
//!   JSON text frames in both directions.
//!
//! Changing a type here changes the protocol: add fields with serde defaults
//! and bump [`PROTOCOL_VERSION`] for anything incompatible.

pub mod api;
pub mod auth;
mod inline_bytes;
pub mod manifest;
pub mod stream;

/// Version of the worker stream protocol. A coordinator refuses workers that
/// speak another version, with an error that says which it speaks.
pub const PROTOCOL_VERSION: u32 = 10;

/// Largest WebSocket message either side accepts: 1 MiB. Bulk data travels
/// as blobs over HTTP, never on the stream.
pub const STREAM_MESSAGE_BYTES_MAX: usize = 1024 * 1024;

/// Task inputs and outputs up to this size travel inside stream messages
/// (base64) instead of as separate blob transfers: 64 KiB. It saves an HTTP
/// round trip each way for most tasks.
pub const STREAM_INLINE_BYTES_MAX: usize = 64 * 1024;

/// Where the coordinator's worker stream is served.
pub const STREAM_PATH: &str = "/v1/worker/stream";
