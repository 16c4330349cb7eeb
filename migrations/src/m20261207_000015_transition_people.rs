//! Who has a part in each transition (issue "People act in a browser"): one row per person and
//! transition, so that `/me` and a person's board read the transitions they take part in instead
//! of every transition. Written with the transition's start and with each change of its people;
//! the store fills it for transitions from before this migration when it opens the database.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Keyed by person then transition, and nothing else: a start writes a row per person, so
        // every further structure is paid on the write path. On SQLite the key is the table
        // (WITHOUT ROWID: one b-tree, not two). A change of people deletes by the old people's
        // keys; no index by transition is needed.
        let sql = match manager.get_database_backend() {
            DbBackend::Sqlite => {
                "CREATE TABLE transition_people (person TEXT NOT NULL, transition_id TEXT NOT \
                 NULL, PRIMARY KEY (person, transition_id)) WITHOUT ROWID"
            }
            _ => {
                "CREATE TABLE transition_people (person TEXT NOT NULL, transition_id TEXT NOT \
                 NULL, PRIMARY KEY (person, transition_id))"
            }
        };
        manager.get_connection().execute_unprepared(sql).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP TABLE transition_people")
            .await?;
        Ok(())
    }
}
