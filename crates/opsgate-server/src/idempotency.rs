//! `idempotency-key`: a mutation sent again with the same key (by the same principal) gets the
//! first answer and writes nothing; the same key with another request is `FailedPrecondition`.
//!
//! The first answer is remembered after the write commits, not in the same transaction: a retry
//! racing the first attempt, or one after a crash between the two, runs again, and the state
//! machine refuses what was already done (a second submission, a second approval). A first
//! attempt that was refused is not remembered: its retry runs again.

use opsgate_domain::{Actor, clip};
use opsgate_proto::metadata::IDEMPOTENCY_KEY_METADATA_KEY;
use opsgate_store::{Remembered, Store};
use prost::Message;
use tonic::{Request, Status};

use crate::actor::single;
use crate::error::{invalid_argument, status};

/// Longest key accepted.
const MAX_KEY: usize = 200;

/// The request's `idempotency-key`, checked: visible ASCII, at most 200 characters, one.
pub(crate) fn idempotency_key<T>(request: &Request<T>) -> Result<Option<String>, Status> {
    let Some(value) = single(
        request,
        IDEMPOTENCY_KEY_METADATA_KEY,
        "send one key, not several",
    )?
    else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= MAX_KEY)
        .ok_or_else(|| {
            invalid_argument(
                IDEMPOTENCY_KEY_METADATA_KEY,
                format!("must be 1 to {MAX_KEY} visible ASCII characters (a UUID is a good key)"),
            )
        })?;
    Ok(Some(key.to_owned()))
}

/// What a keyed request found: the first answer, or the record to keep once it is answered.
pub(crate) struct Recall<R> {
    pub answer: Option<R>,
    pending: Option<(String, String, Remembered)>,
}

/// Looks `key` up for `principal`: the first answer when the same request was answered before;
/// `FailedPrecondition` when the key was used for another request.
pub(crate) async fn recall<Req: Message, Resp: Message + Default>(
    store: &Store,
    key: Option<&str>,
    principal: &Actor,
    method: &str,
    request: &Req,
) -> Result<Recall<Resp>, Status> {
    let Some(key) = key else {
        return Ok(Recall {
            answer: None,
            pending: None,
        });
    };
    let request_sha256 = opsgate_store::sha256_hex(&request.encode_to_vec());
    if let Some(first) = store
        .remembered(principal.as_str(), key)
        .await
        .map_err(status)?
    {
        if first.method != method || first.request_sha256 != request_sha256 {
            return Err(Status::failed_precondition(format!(
                "idempotency-key '{}' was used for a different request ({}); use a new key for a new request",
                clip(key),
                first.method.rsplit('/').next().unwrap_or_default()
            )));
        }
        let answer = Resp::decode(first.response.as_slice()).map_err(|e| {
            Status::data_loss(format!("the remembered answer does not decode: {e}"))
        })?;
        return Ok(Recall {
            answer: Some(answer),
            pending: None,
        });
    }
    Ok(Recall {
        answer: None,
        pending: Some((
            principal.to_string(),
            key.to_owned(),
            Remembered {
                method: method.to_owned(),
                request_sha256,
                response: Vec::new(),
            },
        )),
    })
}

/// Remembers `answer` for the recalled key, if there was one. The write is committed already,
/// so a failure here is logged, not answered: the caller gets its answer.
pub(crate) async fn keep<R: Message>(store: &Store, recall: Recall<R>, answer: &R) {
    let Some((principal, key, mut first)) = recall.pending else {
        return;
    };
    first.response = answer.encode_to_vec();
    if let Err(e) = store.remember(&principal, &key, &first).await {
        tracing::warn!(error = %e, "could not remember an idempotent answer; a retry will run again");
    }
}
