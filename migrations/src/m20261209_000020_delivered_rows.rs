//! Removes the rows of delivered deliveries. Since 2026-12-07 a delivery's row goes when it is
//! delivered (`outbox::settle_statements`); before, it stayed as `delivered` with its notice's
//! JSON, for nothing: no query reads a delivered delivery. Pending, failed and disabled ones stay.
//! There is no way back: `down` leaves the table as it is.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DELETE FROM deliveries WHERE status = 'delivered'")
            .await?;
        Ok(())
    }

    async fn down(&self, _manager: &SchemaManager) -> Result<(), DbErr> {
        Ok(())
    }
}
