//! What can go wrong in the store.

use cqrs_es::persist::PersistenceError;

/// An error of the event store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another writer appended to the same aggregate first (optimistic concurrency).
    #[error("concurrent write to the same aggregate")]
    Conflict,
    /// The database could not be reached or the connection broke.
    #[error("event store unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// A stored row could not be decoded.
    #[error("corrupt event store row: {0}")]
    Corrupt(String),
    /// Any other database error.
    #[error("event store error: {0}")]
    Database(#[source] sqlx::Error),
    /// Applying the schema migrations failed.
    #[error("migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
}

impl StoreError {
    /// Classifies a sqlx error; `conflict` says whether a unique violation means a version conflict.
    pub(crate) fn classify(err: sqlx::Error, conflict: impl Fn(&str) -> bool) -> Self {
        match &err {
            sqlx::Error::Database(db) => match db.code() {
                Some(code) if conflict(&code) => StoreError::Conflict,
                _ => StoreError::Database(err),
            },
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => StoreError::Unavailable(err),
            _ => StoreError::Database(err),
        }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        StoreError::classify(err, |_| false)
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(err: serde_json::Error) -> Self {
        StoreError::Corrupt(err.to_string())
    }
}

impl From<StoreError> for PersistenceError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Conflict => PersistenceError::OptimisticLockError,
            StoreError::Unavailable(e) => PersistenceError::ConnectionError(Box::new(e)),
            StoreError::Corrupt(_) => PersistenceError::DeserializationError(Box::new(err)),
            other => PersistenceError::UnknownError(Box::new(other)),
        }
    }
}
