//! API tokens: created with a random secret that is returned once and stored only as its
//! SHA-256 (a fast hash is right for a 256-bit random secret: nothing to brute-force, and a
//! password hash per call would cost the throughput), looked up by that hash, listed, revoked.

use chrono::{DateTime, Utc};
use opsgate_domain::{Access, Actor};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, sea_query::OnConflict,
};

use crate::entities::api_tokens;
use crate::hex::{hex, sha256_hex};
use crate::{Error, Result, Store, now};

/// What every secret starts with (see `opsgate_proto::metadata::TOKEN_PREFIX`).
pub const TOKEN_PREFIX: &str = "og_";
/// Hex digits of a secret after its prefix: 32 random bytes.
const SECRET_HEX: usize = 64;

/// A stored token, without its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub id: String,
    pub prefix: String,
    pub principal: Actor,
    pub roles: Vec<Access>,
    pub description: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub revoked_by: Option<String>,
}

impl TokenRecord {
    /// Whether the token may be used at `at`: not revoked, not expired.
    pub fn active_at(&self, at: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|e| at < e)
    }
}

/// A new token as asked for.
#[derive(Debug, Clone)]
pub struct NewToken {
    pub principal: Actor,
    pub roles: Vec<Access>,
    pub expires_at: Option<DateTime<Utc>>,
    pub description: String,
}

/// Whether `secret` has the shape of a token (so that garbage is refused without a lookup).
pub fn looks_like_token(secret: &str) -> bool {
    secret
        .strip_prefix(TOKEN_PREFIX)
        .is_some_and(|hex| hex.len() == SECRET_HEX && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The stored form of a secret.
pub fn token_hash(secret: &str) -> String {
    sha256_hex(secret.as_bytes())
}

fn new_secret() -> Result<String> {
    let mut bytes = [0u8; SECRET_HEX / 2];
    getrandom::fill(&mut bytes)
        .map_err(|e| Error::Unavailable(format!("no randomness for a token: {e}")))?;
    Ok(format!("{TOKEN_PREFIX}{}", hex(&bytes)))
}

fn record(row: api_tokens::Model) -> Result<TokenRecord> {
    let names: Vec<String> = serde_json::from_str(&row.roles)?;
    let roles = names
        .iter()
        .map(|n| Access::parse(n).map_err(|e| Error::Corrupt(e.to_string())))
        .collect::<Result<_>>()?;
    Ok(TokenRecord {
        principal: Actor::parse(&row.principal).map_err(|e| Error::Corrupt(e.to_string()))?,
        id: row.id,
        prefix: row.prefix,
        roles,
        description: row.description,
        created_by: row.created_by,
        created_at: row.created_at,
        expires_at: row.expires_at,
        revoked_at: row.revoked_at,
        revoked_by: row.revoked_by,
    })
}

fn row(secret: &str, new: &NewToken, created_by: &str) -> Result<api_tokens::ActiveModel> {
    let roles: Vec<&str> = new.roles.iter().map(|r| r.as_str()).collect();
    Ok(api_tokens::ActiveModel {
        id: Set(uuid::Uuid::now_v7().to_string()),
        hash: Set(token_hash(secret)),
        prefix: Set(secret.chars().take(TOKEN_PREFIX.len() + 6).collect()),
        principal: Set(new.principal.to_string()),
        roles: Set(serde_json::to_string(&roles)?),
        description: Set(new.description.clone()),
        created_by: Set(created_by.to_owned()),
        created_at: Set(now()),
        expires_at: Set(new.expires_at),
        revoked_at: Set(None),
        revoked_by: Set(None),
    })
}

impl Store {
    /// Creates a token; returns its secret (shown once, stored nowhere) and its record.
    pub async fn create_token(
        &self,
        new: &NewToken,
        created_by: &Actor,
    ) -> Result<(String, TokenRecord)> {
        let secret = new_secret()?;
        let txn = self.begin_write().await?;
        let inserted = api_tokens::Entity::insert(row(&secret, new, created_by.as_str())?)
            .exec_with_returning(&txn)
            .await?;
        txn.commit().await?;
        tracing::info!(token = %inserted.id, principal = %new.principal, by = %created_by, "token created");
        Ok((secret, record(inserted)?))
    }

    /// Makes sure a token with exactly `secret` exists (the bootstrap token): created once, a
    /// no-op on every later start and on every other replica. A revoked one stays revoked.
    pub async fn ensure_token(&self, secret: &str, new: &NewToken) -> Result<TokenRecord> {
        if !looks_like_token(secret) {
            return Err(Error::Config(format!(
                "the bootstrap token must be {TOKEN_PREFIX} and {SECRET_HEX} hex digits \
                 (make one with: echo {TOKEN_PREFIX}$(openssl rand -hex 32))"
            )));
        }
        let txn = self.begin_write().await?;
        api_tokens::Entity::insert(row(secret, new, "bootstrap")?)
            .on_conflict(
                OnConflict::column(api_tokens::Column::Hash)
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(&txn)
            .await?;
        txn.commit().await?;
        self.token(secret)
            .await?
            .ok_or_else(|| Error::Corrupt("the bootstrap token was not stored".into()))
    }

    /// The token whose secret is `secret`, active or not; `None` when there is none (or
    /// `secret` does not have a token's shape).
    pub async fn token(&self, secret: &str) -> Result<Option<TokenRecord>> {
        if !looks_like_token(secret) {
            return Ok(None);
        }
        api_tokens::Entity::find()
            .filter(api_tokens::Column::Hash.eq(token_hash(secret)))
            .one(&self.db)
            .await?
            .map(record)
            .transpose()
    }

    /// Every token, newest first; only the active ones unless `include_inactive`.
    pub async fn list_tokens(&self, include_inactive: bool) -> Result<Vec<TokenRecord>> {
        let rows = api_tokens::Entity::find()
            .order_by_desc(api_tokens::Column::Id)
            .all(&self.db)
            .await?;
        let at = now();
        Ok(rows
            .into_iter()
            .map(record)
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .filter(|t| include_inactive || t.active_at(at))
            .collect())
    }

    /// Revokes token `id` (already revoked: unchanged) and returns it.
    pub async fn revoke_token(&self, id: &str, by: &Actor) -> Result<TokenRecord> {
        let txn = self.begin_write().await?;
        let found = api_tokens::Entity::find_by_id(id.to_owned())
            .one(&txn)
            .await?
            .ok_or_else(|| {
                Error::NotFound(format!("token '{}' not found", opsgate_domain::clip(id)))
            })?;
        if found.revoked_at.is_some() {
            txn.rollback().await?;
            return record(found);
        }
        let mut change: api_tokens::ActiveModel = found.into();
        change.revoked_at = Set(Some(now()));
        change.revoked_by = Set(Some(by.to_string()));
        let updated = api_tokens::Entity::update(change).exec(&txn).await?;
        txn.commit().await?;
        tracing::info!(token = %updated.id, by = %by, "token revoked");
        record(updated)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_have_the_token_shape_and_differ() {
        let (a, b) = (new_secret().unwrap(), new_secret().unwrap());
        assert!(looks_like_token(&a) && looks_like_token(&b));
        assert_ne!(a, b);
        assert_eq!(token_hash(&a).len(), 64);
        assert_ne!(token_hash(&a), token_hash(&b));
        for bad in [
            "",
            "og_",
            "og_xyz",
            "Bearer og_",
            &format!("xx_{}", &a[3..]),
            &a[..60],
        ] {
            assert!(!looks_like_token(bad), "{bad}");
        }
    }
}
