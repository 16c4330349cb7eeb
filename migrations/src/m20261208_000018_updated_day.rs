//! `transitions.updated_day`: the UTC day of `updated_at`, indexed with the status in place of
//! `updated_at` itself (`transitions_status_updated_day`), for the stalled list's idle
//! transitions. Every write moves `updated_at`, and an index on it had an entry rewritten by
//! every write (two pages of the WAL each time); the day changes at most once a day per
//! transition. The idle query seeks by the day and checks `updated_at` on the rows it finds.

use sea_orm::DbBackend;
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    /// All or nothing on SQLite too (sea-orm runs SQLite's migrations outside a transaction by
    /// default): a crash between its statements must not leave it half applied.
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared("ALTER TABLE transitions ADD COLUMN updated_day DATE NULL")
            .await?;
        db.execute_unprepared(match manager.get_database_backend() {
            DbBackend::Postgres => {
                "UPDATE transitions SET updated_day = (updated_at AT TIME ZONE 'UTC')::date"
            }
            _ => "UPDATE transitions SET updated_day = date(updated_at)",
        })
        .await?;
        db.execute_unprepared("DROP INDEX IF EXISTS transitions_status_updated_at")
            .await?;
        db.execute_unprepared(
            "CREATE INDEX transitions_status_updated_day ON transitions (status, updated_day)",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared("DROP INDEX IF EXISTS transitions_status_updated_day")
            .await?;
        db.execute_unprepared(
            "CREATE INDEX transitions_status_updated_at ON transitions (status, updated_at)",
        )
        .await?;
        db.execute_unprepared("ALTER TABLE transitions DROP COLUMN updated_day")
            .await?;
        Ok(())
    }
}
