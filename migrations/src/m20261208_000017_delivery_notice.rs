//! Deliveries that carry their notice: a write whose notices go only to channels (no route to
//! people) stores their deliveries directly, in its own transaction, without an outbox row to
//! fan out later; such a delivery keeps the notice's JSON itself (`outbox_id` is 0).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("ALTER TABLE deliveries ADD COLUMN notice TEXT NULL")
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("ALTER TABLE deliveries DROP COLUMN notice")
            .await?;
        Ok(())
    }
}
