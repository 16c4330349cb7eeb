//! The storage crate's one error type.

use sea_orm::{DbErr, RuntimeErr};

/// Everything a storage operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The domain refused the operation (invalid input, wrong state).
    #[error(transparent)]
    Domain(#[from] opsgate_domain::Error),
    /// No such workflow, version or transition.
    #[error("{0}")]
    NotFound(String),
    /// A unique thing (a transition for a service version) exists already.
    #[error("{0}")]
    AlreadyExists(String),
    /// Another writer changed the same transition first; the caller may retry.
    #[error("transition {0} was changed concurrently, retry the request")]
    Conflict(String),
    /// The database cannot be reached or refused the connection.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Stored data does not decode (a bug or manual tampering).
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// Any other database error.
    #[error("database error: {0}")]
    Database(DbErr),
}

impl From<DbErr> for Error {
    fn from(err: DbErr) -> Self {
        match &err {
            DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => Error::Unavailable(err.to_string()),
            DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e))
                if is_connection_error(e) =>
            {
                Error::Unavailable(err.to_string())
            }
            _ => Error::Database(err),
        }
    }
}

fn is_connection_error(err: &sea_orm::sqlx::Error) -> bool {
    use sea_orm::sqlx::Error as E;
    matches!(
        err,
        E::Io(_) | E::Tls(_) | E::PoolTimedOut | E::PoolClosed | E::WorkerCrashed
    )
}

impl From<serde_json::Error> for Error {
    fn from(err: serde_json::Error) -> Self {
        Error::Corrupt(err.to_string())
    }
}

/// Result with the storage error as default.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// True when `err` is a unique-constraint violation.
pub(crate) fn is_unique_violation(err: &DbErr) -> bool {
    matches!(
        err.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    )
}
