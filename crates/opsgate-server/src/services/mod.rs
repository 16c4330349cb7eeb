//! The gRPC service implementations, one file per service; all share [`Api`].

mod gate;
mod identity;
mod transition;
mod workflow;

use std::sync::Arc;

use opsgate_store::Store;
use tonic::Status;

use crate::auth::Authenticator;
use crate::error::invalid_argument;

/// State shared by every service.
#[derive(Debug, Clone)]
pub(crate) struct Api {
    store: Store,
    auth: Arc<Authenticator>,
}

impl Api {
    pub(crate) fn new(store: Store, insecure_dev: bool) -> Self {
        let auth = Arc::new(Authenticator::new(store.clone(), insecure_dev));
        Self { store, auth }
    }
}

/// A transition id: required, and a UUID (checked here, so that no malformed id, NUL bytes
/// included, ever reaches a database; both backends answer alike).
pub(crate) fn transition_id<'a>(field: &str, value: &'a str) -> Result<&'a str, Status> {
    let value = required(field, value)?;
    if uuid::Uuid::try_parse(value).is_err() {
        return Err(invalid_argument(
            field,
            format!(
                "'{}' is not a transition id (ids are UUIDs, such as 019a4f3e-5b2c-7d11-8e9f-0a1b2c3d4e5f)",
                opsgate_domain::clip(value)
            ),
        ));
    }
    Ok(value)
}

/// A required string field, trimmed.
pub(crate) fn required<'a>(field: &str, value: &'a str) -> Result<&'a str, Status> {
    let value = value.trim();
    if value.is_empty() {
        return Err(invalid_argument(field, "is required"));
    }
    Ok(value)
}
