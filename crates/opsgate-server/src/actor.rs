//! Who is acting: read from request metadata until access control (API tokens) replaces it.
//!
//! The name comes from `x-opsgate-actor` (percent-encoded when not plain ASCII) or from
//! `x-opsgate-actor-bin` (UTF-8 bytes); exactly one value in all, never two.

use opsgate_domain::{Actor, clip};
use opsgate_proto::metadata::{ACTOR_BIN_METADATA_KEY, ACTOR_METADATA_KEY, decode_actor};
use tonic::{Request, Status};

use crate::error::invalid_argument;

/// The acting person of a mutating request.
pub(crate) fn actor<T>(request: &Request<T>) -> Result<Actor, Status> {
    let metadata = request.metadata();
    let text: Vec<_> = metadata.get_all(ACTOR_METADATA_KEY).iter().collect();
    let binary: Vec<_> = metadata
        .get_all_bin(ACTOR_BIN_METADATA_KEY)
        .iter()
        .collect();
    let name = match (text.as_slice(), binary.as_slice()) {
        ([], []) => {
            return Err(Status::unauthenticated(format!(
                "no acting person: set the {ACTOR_METADATA_KEY} metadata (opsgate --as NAME, or OPSGATE_ACTOR)"
            )));
        }
        ([value], []) => {
            let raw = value.to_str().map_err(|_| {
                invalid_argument(
                    ACTOR_METADATA_KEY,
                    "must be visible ASCII: percent-encode other characters (José -> Jos%C3%A9) \
                     or send the name as UTF-8 in x-opsgate-actor-bin",
                )
            })?;
            decode_actor(raw).ok_or_else(|| {
                invalid_argument(
                    ACTOR_METADATA_KEY,
                    format!(
                        "'{}' is not a valid percent-encoded name: each % must start a %XX escape \
                         of UTF-8 bytes (a literal % is %25)",
                        clip(raw)
                    ),
                )
            })?
        }
        ([], [value]) => {
            let bytes = value
                .to_bytes()
                .map_err(|_| invalid_argument(ACTOR_BIN_METADATA_KEY, "is not valid base64"))?;
            String::from_utf8(bytes.to_vec()).map_err(|_| {
                invalid_argument(ACTOR_BIN_METADATA_KEY, "must be the name as UTF-8 bytes")
            })?
        }
        _ => {
            return Err(invalid_argument(
                ACTOR_METADATA_KEY,
                format!(
                    "{} acting people given ({ACTOR_METADATA_KEY} and {ACTOR_BIN_METADATA_KEY} \
                     together); send exactly one",
                    text.len() + binary.len()
                ),
            ));
        }
    };
    Actor::parse(name).map_err(|e| invalid_argument(ACTOR_METADATA_KEY, e.to_string()))
}

/// The one text value of metadata `key`, if any; `InvalidArgument` (saying `several`) when the
/// request carries more than one.
pub(crate) fn single<'a, T>(
    request: &'a Request<T>,
    key: &str,
    several: &str,
) -> Result<Option<&'a tonic::metadata::MetadataValue<tonic::metadata::Ascii>>, Status> {
    let mut values = request.metadata().get_all(key).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(invalid_argument(key, several));
    }
    Ok(first)
}
