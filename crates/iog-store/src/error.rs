use std::path::PathBuf;

/// A store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("open store at {path}: {source}")]
    Open { path: PathBuf, source: sqlx::Error },
    #[error("migrate store schema: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("store query failed: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("blob store at {path}: {source}")]
    Blob { path: PathBuf, source: std::io::Error },
    #[error("blob of {size_bytes} bytes exceeds the limit of {limit_bytes} bytes")]
    BlobTooLarge { size_bytes: u64, limit_bytes: u64 },
    #[error("blob content does not match its id {expected}; the upload was corrupted")]
    BlobMismatch { expected: iog_types::BlobId },
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}
