//! The coordinator process: thin shells around the pure [`iog_core::Core`].
//!
//! - [`engine`] owns the core and the store. It takes commands from a
//!   channel in batches, feeds them to the core, writes every resulting
//!   change in one store transaction, and only then sends messages, answers
//!   submitters and acknowledges results (group commit, write-ahead).
//! - [`session`] serves one worker's WebSocket stream; [`probes`] lists
//!   where workers answer peers' probes, for their network coordinates.
//! - [`challenge`] runs a hardware challenge round with one worker.
//! - [`auth`] issues nonces and bearer tokens against wallet signatures
//!   and names the caller of every owner-checked request.
//! - [`tls`] makes or reads the certificate; [`listener`] accepts
//!   connections and runs each TLS handshake on its own task.
//! - [`limits`] rate-limits requests per address and identity and caps
//!   worker sessions per address.
//! - [`api`] serves the REST API and blobs; [`money`] its signed sends,
//!   balances, histories and job bills.
//! - [`openapi`] generates the REST API's OpenAPI document and serves it.
//! - [`assemble`] builds a done job's artifacts from its task outputs;
//!   [`spot`] spot-checks a run's output for jobs that ask for it.

mod api;
mod assemble;
mod auth;
mod chain;
mod challenge;
mod config;
mod engine;
mod keys;
mod limits;
mod listener;
mod market;
mod money;
mod openapi;
mod probes;
mod server;
mod session;
mod spot;
mod tls;

pub use auth::TOKEN_TTL_MS_DEFAULT;
pub use challenge::NETWORK_ALLOWANCE_MS as CHALLENGE_ALLOWANCE_MS_DEFAULT;
pub use config::{CoordinatorConfig, DEFAULT_FEE_BPS, DEFAULT_LISTEN};
pub use keys::{KEY_WAIT_MS_DEFAULT, KEY_WAIT_MS_MAX};
pub use limits::{REQUESTS_BURST_DEFAULT, REQUESTS_PER_S_DEFAULT, RateLimits, SESSIONS_PER_ADDRESS_DEFAULT};
pub use listener::ConnectionTimeouts;
pub use probes::PROBE_INTERVAL_MS_DEFAULT;
pub use server::{Coordinator, load_ledger};
pub use tls::{PIN_FILE_NAME, TlsMode};
