/// A request to the coordinator failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("coordinator url {url:?} is not valid: {reason}; write it like https://127.0.0.1:7070")]
    BadUrl { url: String, reason: String },
    #[error("set up TLS for {url}: {reason}")]
    Tls { url: String, reason: String },
    #[error(
        "cannot reach the coordinator at {url}: {source}; is it running? \
         (choose another with --coordinator URL or IOG_COORDINATOR)"
    )]
    Unreachable { url: String, source: reqwest::Error },
    /// As `Unreachable`, for a connection of its own (see
    /// [`crate::BoundConnection`]).
    #[error(
        "cannot reach the coordinator at {url}: {reason}; is it running? \
         (choose another with --coordinator URL or IOG_COORDINATOR)"
    )]
    NotConnected { url: String, reason: String },
    /// The coordinator answered with an error; `code` is stable for scripts.
    #[error("{message} ({code})")]
    Api { status: u16, code: String, message: String },
    #[error("request to {url} failed: {source}")]
    Http { url: String, source: reqwest::Error },
    /// A connection of its own (see [`crate::BoundConnection`]) failed.
    #[error("connection to the coordinator at {url} failed: {reason}")]
    Connection { url: String, reason: String },
    #[error(
        "this request acts on your own jobs, blobs or wallet and needs your key; \
         the client was made without one (Client::with_identity; the CLI uses --wallet-dir)"
    )]
    NoIdentity,
    #[error("blob {expected} arrived with different content; the transfer was corrupted")]
    BlobMismatch { expected: iog_types::BlobId },
    #[error(
        "the spec says job.sealed = true but still carries its workload section; it was not sent, since the \
         coordinator would see what sealing hides: submit it through iog_client::sealed (or `iog job submit`)"
    )]
    SealedInTheClear,
}

impl ClientError {
    /// The API's error code, when the coordinator answered with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Api { code, .. } => Some(code),
            _ => None,
        }
    }
}
