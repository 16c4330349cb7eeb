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
    /// A start lost a race to another writer's start of the same service version (named by the
    /// writer once the transaction is rolled back, as [`Error::AlreadyExists`]).
    #[error("a transition for this service version already exists")]
    DuplicateStart,
    /// Another writer changed the same thing first; the caller may retry.
    #[error("{kind} {id} was changed concurrently, retry the request")]
    Conflict {
        /// What conflicted: `transition`, `workflow`.
        kind: &'static str,
        /// Its id (several, comma-separated, when a batch could not tell which).
        id: String,
    },
    /// The database cannot be reached or refused the connection.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The database accepts reads but no writes (a read-only replica after a fail-over, a
    /// read-only file or session).
    #[error("database is read-only: {0}")]
    ReadOnly(String),
    /// A write was handed to the writer, which stopped before answering: it may or may not be
    /// stored. The message is ours and tells the caller what to do.
    #[error("{0}")]
    OutcomeUnknown(String),
    /// The store was configured wrongly (a malformed or unsupported database URL): not retryable.
    #[error("{0}")]
    Config(String),
    /// The database or its disk is full; nothing of the failed operation was stored.
    #[error("database is full: {0}")]
    Full(String),
    /// Stored data does not decode (a bug or manual tampering).
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// Any other database error.
    #[error("database error: {0}")]
    Database(#[source] DbErr),
}

impl From<DbErr> for Error {
    fn from(err: DbErr) -> Self {
        let (sqlx, connecting) = match &err {
            DbErr::ConnectionAcquire(_) => return Error::Unavailable(err.to_string()),
            DbErr::Conn(RuntimeErr::SqlxError(e)) => (e, true),
            DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => {
                (e, false)
            }
            DbErr::Conn(_) => return Error::Unavailable(err.to_string()),
            _ => return Error::Database(err),
        };
        if let sea_orm::sqlx::Error::Configuration(e) = sqlx.as_ref() {
            return Error::Config(format!("invalid database url: {e}"));
        }
        match fault(sqlx) {
            Some(Fault::Full) => Error::Full(err.to_string()),
            Some(Fault::ReadOnly) => Error::ReadOnly(err.to_string()),
            Some(Fault::Unavailable) => Error::Unavailable(err.to_string()),
            // Whatever went wrong while connecting (a reset in the middle of the handshake shows
            // up as a protocol error), the database cannot be reached right now.
            None if connecting => Error::Unavailable(err.to_string()),
            None => Error::Database(err),
        }
    }
}

enum Fault {
    Full,
    ReadOnly,
    Unavailable,
}

/// The faults a client should retry later: connection loss, a full disk, a read-only database.
fn fault(err: &sea_orm::sqlx::Error) -> Option<Fault> {
    use sea_orm::sqlx::Error as E;
    match err {
        // A protocol error means the connection broke mid-conversation (a reset, a proxy dying).
        E::Io(_)
        | E::Tls(_)
        | E::Protocol(_)
        | E::PoolTimedOut
        | E::PoolClosed
        | E::WorkerCrashed => Some(Fault::Unavailable),
        E::Database(db) => {
            let code = db.code()?;
            match code.as_ref() {
                // PostgreSQL SQLSTATEs: disk full, out of memory; read-only transaction, admin or
                // crash shutdown, cannot connect now, too many connections, connection exceptions.
                "53100" | "53200" => Some(Fault::Full),
                "25006" => Some(Fault::ReadOnly),
                "57P01" | "57P02" | "57P03" | "53300" => Some(Fault::Unavailable),
                c if c.starts_with("08") => Some(Fault::Unavailable),
                // SQLite result codes (the primary code is the low byte of an extended one):
                // SQLITE_FULL; SQLITE_READONLY, SQLITE_IOERR, SQLITE_CANTOPEN.
                c => match c.parse::<i32>().ok().map(|n| n & 0xff) {
                    Some(13) => Some(Fault::Full),
                    Some(8) => Some(Fault::ReadOnly),
                    Some(10 | 14) => Some(Fault::Unavailable),
                    _ => None,
                },
            }
        }
        _ => None,
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_errors_keep_their_source_and_conflicts_say_what_conflicted() {
        let err = Error::from(DbErr::Custom("disk I/O trouble".into()));
        assert!(matches!(err, Error::Database(_)));
        let source = std::error::Error::source(&err).map(ToString::to_string);
        assert_eq!(source.as_deref(), Some("Custom Error: disk I/O trouble"));
        let conflict = Error::Conflict {
            kind: "transition",
            id: "019a-x".into(),
        };
        assert_eq!(
            conflict.to_string(),
            "transition 019a-x was changed concurrently, retry the request"
        );
    }
}
