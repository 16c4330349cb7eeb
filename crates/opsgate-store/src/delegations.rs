//! Delegations: an approver names a deputy for a date range; the domain decides what the deputy
//! may then do (see `opsgate_domain::Delegation`). Stored, listed and revoked here.

use chrono::{DateTime, Utc};
use opsgate_domain::{Actor, Delegation, clip};
use sea_orm::{
    ActiveValue::NotSet, ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    Set,
};

use crate::entities::delegations;
use crate::{Error, Result, Store};

/// Longest delegation: a deputy stands in for a holiday or a leave, not for good (then the SMO
/// changes the transition's participants).
pub const MAX_DELEGATION_DAYS: i64 = 366;

/// A delegation to create.
#[derive(Debug, Clone)]
pub struct NewDelegation {
    pub from: Actor,
    pub to: Actor,
    pub starts: DateTime<Utc>,
    pub ends: DateTime<Utc>,
    pub reason: String,
}

/// A stored delegation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DelegationRecord {
    pub delegation: Delegation,
    pub reason: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub revoked_by: Option<String>,
}

fn record(row: delegations::Model) -> Result<DelegationRecord> {
    let person = |name: &str| Actor::parse(name).map_err(|e| Error::Corrupt(e.to_string()));
    Ok(DelegationRecord {
        delegation: Delegation {
            id: row.id,
            from: person(&row.from_person)?,
            to: person(&row.to_person)?,
            starts: row.starts_at,
            ends: row.ends_at,
        },
        reason: row.reason,
        created_by: row.created_by,
        created_at: row.created_at,
        revoked_at: row.revoked_at,
        revoked_by: row.revoked_by,
    })
}

impl Store {
    /// Stores a delegation after checking it: two different people, a range that ends after it
    /// starts, in the future, at most [`MAX_DELEGATION_DAYS`] long.
    pub async fn add_delegation(
        &self,
        new: &NewDelegation,
        created_by: &Actor,
    ) -> Result<DelegationRecord> {
        let invalid = |field: &'static str, message: String| {
            Error::Domain(opsgate_domain::Error::InvalidArgument { field, message })
        };
        if new.from == new.to {
            return Err(invalid(
                "to",
                format!("{} cannot be their own deputy", new.from),
            ));
        }
        if new.ends <= new.starts {
            return Err(invalid(
                "until",
                "the delegation must end after it starts".to_owned(),
            ));
        }
        if new.ends <= self.now() {
            return Err(invalid(
                "until",
                "the delegation would already be over".to_owned(),
            ));
        }
        if (new.ends - new.starts).num_days() > MAX_DELEGATION_DAYS {
            return Err(invalid(
                "until",
                format!(
                    "a delegation lasts at most {MAX_DELEGATION_DAYS} days; for a lasting change \
                     the SMO changes the transition's participants"
                ),
            ));
        }
        if new.reason.len() > 1000 {
            return Err(invalid("reason", "at most 1000 bytes".to_owned()));
        }
        let txn = self.begin_write().await?;
        let inserted = delegations::Entity::insert(delegations::ActiveModel {
            id: NotSet,
            from_person: Set(new.from.to_string()),
            to_person: Set(new.to.to_string()),
            starts_at: Set(new.starts),
            ends_at: Set(new.ends),
            reason: Set(new.reason.trim().to_owned()),
            created_by: Set(created_by.to_string()),
            created_at: Set(self.now()),
            revoked_at: Set(None),
            revoked_by: Set(None),
        })
        .exec_with_returning(&txn)
        .await?;
        txn.commit().await?;
        tracing::info!(delegation = inserted.id, from = %new.from, to = %new.to, by = %created_by, "delegation added");
        record(inserted)
    }

    /// Delegations to `deputy` that are not revoked and not over: what the deputy may stand in
    /// for (the domain checks each one's dates at the moment it decides).
    pub async fn delegations_to(&self, deputy: &Actor) -> Result<Vec<Delegation>> {
        delegations::Entity::find()
            .filter(delegations::Column::ToPerson.eq(deputy.as_str()))
            .filter(delegations::Column::RevokedAt.is_null())
            .filter(delegations::Column::EndsAt.gt(self.now()))
            .order_by_asc(delegations::Column::Id)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|row| record(row).map(|r| r.delegation))
            .collect()
    }

    /// Every delegation not revoked and in force now (few: people on leave).
    pub async fn delegations_in_force(&self) -> Result<Vec<Delegation>> {
        delegations::Entity::find()
            .filter(delegations::Column::RevokedAt.is_null())
            .filter(delegations::Column::EndsAt.gt(self.now()))
            .filter(delegations::Column::StartsAt.lte(self.now()))
            .limit(10_000)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|row| record(row).map(|r| r.delegation))
            .collect()
    }

    /// Delegations from or to `person` (every one when `None`), newest first; revoked and past
    /// ones only when `include_inactive`.
    pub async fn list_delegations(
        &self,
        person: Option<&Actor>,
        include_inactive: bool,
    ) -> Result<Vec<DelegationRecord>> {
        let mut query = delegations::Entity::find().order_by_desc(delegations::Column::Id);
        if let Some(person) = person {
            query = query.filter(
                Condition::any()
                    .add(delegations::Column::FromPerson.eq(person.as_str()))
                    .add(delegations::Column::ToPerson.eq(person.as_str())),
            );
        }
        if !include_inactive {
            query = query
                .filter(delegations::Column::RevokedAt.is_null())
                .filter(delegations::Column::EndsAt.gt(self.now()));
        }
        query
            .limit(1000)
            .all(&self.db)
            .await?
            .into_iter()
            .map(record)
            .collect()
    }

    /// The delegation `id`.
    pub async fn delegation(&self, id: i64) -> Result<DelegationRecord> {
        delegations::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .ok_or_else(|| not_found(id))
            .and_then(record)
    }

    /// Revokes delegation `id` (already revoked: unchanged) and returns it.
    pub async fn revoke_delegation(&self, id: i64, by: &Actor) -> Result<DelegationRecord> {
        let txn = self.begin_write().await?;
        let found = delegations::Entity::find_by_id(id)
            .one(&txn)
            .await?
            .ok_or_else(|| not_found(id))?;
        if found.revoked_at.is_some() {
            txn.rollback().await?;
            return record(found);
        }
        let mut change: delegations::ActiveModel = found.into();
        change.revoked_at = Set(Some(self.now()));
        change.revoked_by = Set(Some(by.to_string()));
        let updated = delegations::Entity::update(change).exec(&txn).await?;
        txn.commit().await?;
        tracing::info!(delegation = id, by = %by, "delegation revoked");
        record(updated)
    }
}

fn not_found(id: i64) -> Error {
    Error::NotFound(format!("delegation #{} not found", clip(&id.to_string())))
}
