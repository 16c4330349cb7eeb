//! Who is acting: read from request metadata until access control (API tokens) replaces it.

use opsgate_domain::Actor;
use tonic::{Request, Status};

use crate::error::invalid_argument;

/// Metadata key naming the acting person on mutating RPCs.
pub const ACTOR_METADATA_KEY: &str = "x-opsgate-actor";

/// The acting person of a mutating request.
pub(crate) fn actor<T>(request: &Request<T>) -> Result<Actor, Status> {
    let Some(value) = request.metadata().get(ACTOR_METADATA_KEY) else {
        return Err(Status::unauthenticated(format!(
            "no acting person: set the {ACTOR_METADATA_KEY} metadata (opsgate --as NAME, or OPSGATE_ACTOR)"
        )));
    };
    let text = value
        .to_str()
        .map_err(|_| invalid_argument(ACTOR_METADATA_KEY, "must be visible ASCII"))?;
    Actor::parse(text).map_err(|e| invalid_argument(ACTOR_METADATA_KEY, e.to_string()))
}
