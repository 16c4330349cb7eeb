//! The domain's one error type, with enough structure for the edge to pick a status code.

use crate::workflow::WorkflowErrors;

/// Everything a domain operation can refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A workflow definition failed to parse or validate; every problem is listed.
    #[error("{0}")]
    InvalidWorkflow(#[from] WorkflowErrors),
    /// A caller-supplied value is malformed (empty, too long, bad characters, bad date).
    #[error("invalid {field}: {message}")]
    InvalidArgument {
        field: &'static str,
        message: String,
    },
    /// A node named by the caller does not exist in the transition's workflow.
    #[error("{kind} '{}' not found in workflow '{workflow}'", crate::ids::clip(.id))]
    UnknownNode {
        kind: &'static str,
        id: String,
        workflow: String,
    },
    /// The request is well-formed but the transition is not in a state that allows it.
    #[error("{0}")]
    FailedPrecondition(String),
    /// The acting person may not do this (not an approver, approving their own submission).
    #[error("{0}")]
    NotPermitted(String),
}

/// Result with the domain error as default.
pub type Result<T, E = Error> = std::result::Result<T, E>;
