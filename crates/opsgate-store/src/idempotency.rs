//! Idempotency keys: the first answer to a keyed mutation, kept per principal, so that a retry
//! with the same key gets it again and writes nothing.

use sea_orm::{ActiveValue::Set, EntityTrait, sea_query::OnConflict};

use crate::entities::idempotency_keys;
use crate::hex::{hex, unhex};
use crate::{Result, Store, now};

/// A stored first answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remembered {
    pub method: String,
    pub request_sha256: String,
    /// The encoded response.
    pub response: Vec<u8>,
}

impl Store {
    /// The first answer `principal` got for `key`, if any.
    pub async fn remembered(&self, principal: &str, key: &str) -> Result<Option<Remembered>> {
        let Some(row) =
            idempotency_keys::Entity::find_by_id((principal.to_owned(), key.to_owned()))
                .one(&self.db)
                .await?
        else {
            return Ok(None);
        };
        let response = unhex(&row.response).ok_or_else(|| {
            crate::Error::Corrupt(format!("idempotency key {key}: response is not hex"))
        })?;
        Ok(Some(Remembered {
            method: row.method,
            request_sha256: row.request_sha256,
            response,
        }))
    }

    /// Remembers the first answer to `key`; a key already remembered keeps its first answer.
    pub async fn remember(&self, principal: &str, key: &str, answer: &Remembered) -> Result<()> {
        let txn = self.begin_write().await?;
        idempotency_keys::Entity::insert(idempotency_keys::ActiveModel {
            principal: Set(principal.to_owned()),
            key: Set(key.to_owned()),
            method: Set(answer.method.clone()),
            request_sha256: Set(answer.request_sha256.clone()),
            response: Set(hex(&answer.response)),
            created_at: Set(now()),
        })
        .on_conflict(
            OnConflict::columns([
                idempotency_keys::Column::Principal,
                idempotency_keys::Column::Key,
            ])
            .do_nothing()
            .to_owned(),
        )
        .exec_without_returning(&txn)
        .await?;
        txn.commit().await
    }
}
