//! The gRPC service implementations, one file per service; all share [`Api`].

mod gate;
mod transition;
mod workflow;

use opsgate_store::Store;
use tonic::Status;

use crate::error::invalid_argument;

/// State shared by every service.
#[derive(Debug, Clone)]
pub(crate) struct Api {
    store: Store,
}

impl Api {
    pub(crate) fn new(store: Store) -> Self {
        Self { store }
    }
}

/// A required string field, trimmed.
pub(crate) fn required<'a>(field: &str, value: &'a str) -> Result<&'a str, Status> {
    let value = value.trim();
    if value.is_empty() {
        return Err(invalid_argument(field, "is required"));
    }
    Ok(value)
}
