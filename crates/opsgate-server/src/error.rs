//! Errors: the one mapping from store and domain errors to gRPC statuses, and start-up errors.

use std::net::SocketAddr;

use opsgate_domain::Error as DomainError;
use opsgate_store::Error as StoreError;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt};

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Every problem in the workflows directory, one `file:line:col: message` per line.
    #[error("workflows failed to load:\n{0}")]
    Workflows(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("reflection service: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("transport: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("server task failed: {0}")]
    Task(String),
}

/// `InvalidArgument` with one field violation.
pub(crate) fn invalid_argument(field: &str, message: impl Into<String>) -> Status {
    let message = message.into();
    Status::with_error_details(
        Code::InvalidArgument,
        format!("invalid {field}: {message}"),
        ErrorDetails::with_bad_request(vec![FieldViolation::new(field, message)]),
    )
}

/// The one mapping from storage and domain errors to gRPC statuses.
pub(crate) fn status(err: StoreError) -> Status {
    match err {
        StoreError::Domain(d) => domain_status(d),
        StoreError::NotFound(m) => Status::not_found(m),
        StoreError::AlreadyExists(m) => Status::already_exists(m),
        StoreError::Conflict(_) => Status::aborted(err.to_string()),
        StoreError::Unavailable(m) => {
            tracing::warn!(error = %m, "database unavailable");
            Status::unavailable(format!(
                "database unavailable; nothing of this request was stored, retry later: {m}"
            ))
        }
        StoreError::Full(m) => {
            tracing::error!(error = %m, "database full");
            Status::resource_exhausted(
                "the database is full; nothing of this request was stored: \
                 free disk space on the server (or raise its limit), then retry",
            )
        }
        StoreError::Corrupt(m) => {
            tracing::error!(error = %m, "stored data is corrupt");
            Status::data_loss("stored data is corrupt; the server log has the details")
        }
        StoreError::Database(e) => {
            tracing::error!(error = %e, "database error");
            Status::internal("database error; the server log has the details")
        }
    }
}

/// The mapping of domain errors alone, for values the services parse themselves.
pub(crate) fn domain_status(err: DomainError) -> Status {
    match err {
        DomainError::InvalidWorkflow(errors) => {
            let violations: Vec<FieldViolation> = errors
                .problems
                .iter()
                .map(|p| {
                    FieldViolation::new(
                        "source",
                        format!("{}:{}:{}: {}", errors.file, p.line, p.col, p.message),
                    )
                })
                .collect();
            Status::with_error_details(
                Code::InvalidArgument,
                format!(
                    "workflow is invalid ({} problem{}):\n{errors}",
                    errors.problems.len(),
                    if errors.problems.len() == 1 { "" } else { "s" }
                ),
                ErrorDetails::with_bad_request(violations),
            )
        }
        DomainError::InvalidArgument { field, message } => invalid_argument(field, message),
        e @ DomainError::UnknownNode { .. } => Status::not_found(e.to_string()),
        DomainError::FailedPrecondition(m) => Status::failed_precondition(m),
        DomainError::NotPermitted(m) => Status::permission_denied(m),
    }
}
