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
    /// A setting that cannot be used (OIDC issuers, TLS files).
    #[error("{0}")]
    Config(String),
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
///
/// Database faults get a fixed message a person can act on, a `google.rpc.ErrorInfo` reason
/// (`DATABASE_UNAVAILABLE`, `DATABASE_READ_ONLY`, `DATABASE_FULL`, ...) and a correlation id; the
/// database's own words go only to the server log, under the same id.
pub(crate) fn status(err: StoreError) -> Status {
    match err {
        StoreError::Domain(d) => domain_status(d),
        StoreError::NotFound(m) => Status::not_found(m),
        StoreError::AlreadyExists(m) => Status::already_exists(m),
        e @ (StoreError::Conflict { .. } | StoreError::DuplicateStart) => {
            Status::aborted(e.to_string())
        }
        StoreError::OutcomeUnknown(m) => Status::unavailable(m),
        StoreError::Unavailable(m) => fault(
            Code::Unavailable,
            "DATABASE_UNAVAILABLE",
            "the database cannot be reached; nothing of this request was stored, retry later",
            &m,
        ),
        StoreError::ReadOnly(m) => fault(
            Code::Unavailable,
            "DATABASE_READ_ONLY",
            "the database accepts no writes right now (read-only, as after a fail-over); \
             nothing of this request was stored, retry later",
            &m,
        ),
        StoreError::Full(m) => fault(
            Code::ResourceExhausted,
            "DATABASE_FULL",
            "the database is full; nothing of this request was stored: free disk space on the \
             server (or raise its limit), then retry",
            &m,
        ),
        StoreError::Corrupt(m) => {
            fault(Code::DataLoss, "DATA_CORRUPT", "stored data is corrupt", &m)
        }
        StoreError::Config(m) => fault(
            Code::Internal,
            "SERVER_MISCONFIGURED",
            "the server's database settings are wrong",
            &m,
        ),
        StoreError::Database(e) => fault(
            Code::Internal,
            "DATABASE_ERROR",
            "database error",
            &e.to_string(),
        ),
    }
}

/// Domain of the `ErrorInfo` reasons opsgate gives.
pub const ERROR_DOMAIN: &str = "opsgate.dev";

/// A database fault as a status: `message` and the reason for the client, `detail` (the
/// database's words) for the log, both under one correlation id.
fn fault(code: Code, reason: &str, message: &str, detail: &str) -> Status {
    let correlation = uuid::Uuid::now_v7().simple().to_string();
    if code == Code::Unavailable {
        tracing::warn!(%correlation, reason, error = %detail, "{message}");
    } else {
        tracing::error!(%correlation, reason, error = %detail, "{message}");
    }
    let metadata =
        std::collections::HashMap::from([("correlation_id".to_owned(), correlation.clone())]);
    Status::with_error_details(
        code,
        format!("{message} (correlation id {correlation}: the server log has the details)"),
        ErrorDetails::with_error_info(reason, ERROR_DOMAIN, metadata),
    )
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
