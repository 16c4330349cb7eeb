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
        let conn = manager.get_connection();
        conn.execute_unprepared(sql).await?;
        // Transitions stored before: the store fills their rows when it next opens the
        // database, and removes the mark (a cheap check at every start, not a count).
        conn.execute_unprepared(
            "CREATE TABLE pending_backfills (name VARCHAR(64) NOT NULL PRIMARY KEY)",
        )
        .await?;
        conn.execute_unprepared(
            "INSERT INTO pending_backfills (name) SELECT 'transition_people' WHERE EXISTS \
             (SELECT 1 FROM transitions)",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP TABLE transition_people")
            .await?;
        manager
            .get_connection()
            .execute_unprepared("DROP TABLE pending_backfills")
            .await?;
        Ok(())
    }
}
