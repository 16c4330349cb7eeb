//! People's contact details, kept by the SMO: set (insert or replace) and listed.

use chrono::{DateTime, Utc};
use opsgate_domain::Actor;
use opsgate_domain::contact::Contact;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set};

use crate::entities::people;
use crate::{Result, Store};

/// Most people one listing returns.
pub const MAX_PEOPLE: u64 = 10_000;

/// A person's stored contact details.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonRecord {
    pub name: String,
    pub contact: Contact,
    pub updated_at: DateTime<Utc>,
    pub updated_by: String,
}

fn record(row: people::Model) -> PersonRecord {
    PersonRecord {
        name: row.name,
        contact: Contact {
            email: row.email,
            slack: row.slack,
            teams_webhook: row.teams_webhook,
        },
        updated_at: row.updated_at,
        updated_by: row.updated_by,
    }
}

impl Store {
    /// Sets `person`'s contact details to `contact` (replacing what was there), as `by`.
    pub async fn set_person(
        &self,
        person: &Actor,
        contact: &Contact,
        by: &Actor,
    ) -> Result<PersonRecord> {
        let row = people::ActiveModel {
            name: Set(person.to_string()),
            email: Set(contact.email.clone()),
            slack: Set(contact.slack.clone()),
            teams_webhook: Set(contact.teams_webhook.clone()),
            updated_at: Set(self.now()),
            updated_by: Set(by.to_string()),
        };
        let txn = self.begin_write().await?;
        people::Entity::insert(row)
            .on_conflict(
                OnConflict::column(people::Column::Name)
                    .update_columns([
                        people::Column::Email,
                        people::Column::Slack,
                        people::Column::TeamsWebhook,
                        people::Column::UpdatedAt,
                        people::Column::UpdatedBy,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(&txn)
            .await?;
        let stored = people::Entity::find_by_id(person.to_string())
            .one(&txn)
            .await?
            .map(record)
            .ok_or_else(|| crate::Error::Corrupt("a person just written is missing".into()))?;
        txn.commit().await?;
        Ok(stored)
    }

    /// People by name (every one when `names` is empty), sorted by name, at most [`MAX_PEOPLE`].
    pub async fn people(&self, names: &[String]) -> Result<Vec<PersonRecord>> {
        let mut query = people::Entity::find()
            .order_by_asc(people::Column::Name)
            .limit(MAX_PEOPLE);
        if !names.is_empty() {
            query = query.filter(people::Column::Name.is_in(names.iter().cloned()));
        }
        Ok(query.all(&self.db).await?.into_iter().map(record).collect())
    }
}
