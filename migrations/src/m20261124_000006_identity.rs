//! Identity in the log: `events.attribution` (the access role, workflow role and credential an
//! event was made through, as JSON) and `delegations` (an approver's deputy for a date range).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_pk_auto, string, text, text_null, timestamp_with_time_zone, timestamp_with_time_zone_null,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Events {
    Table,
    Attribution,
}

#[derive(DeriveIden)]
enum Delegations {
    Table,
    Id,
    /// The approver who delegates.
    FromPerson,
    /// The deputy.
    ToPerson,
    StartsAt,
    /// Exclusive end.
    EndsAt,
    Reason,
    CreatedBy,
    CreatedAt,
    RevokedAt,
    RevokedBy,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Events::Table)
                    .add_column(text_null(Events::Attribution))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Delegations::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Delegations::Id))
                    .col(string(Delegations::FromPerson))
                    .col(string(Delegations::ToPerson))
                    .col(timestamp_with_time_zone(Delegations::StartsAt))
                    .col(timestamp_with_time_zone(Delegations::EndsAt))
                    .col(text(Delegations::Reason))
                    .col(string(Delegations::CreatedBy))
                    .col(timestamp_with_time_zone(Delegations::CreatedAt))
                    .col(timestamp_with_time_zone_null(Delegations::RevokedAt))
                    .col(text_null(Delegations::RevokedBy))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("delegations_to_person")
                    .table(Delegations::Table)
                    .col(Delegations::ToPerson)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Delegations::Table).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Events::Table)
                    .drop_column(Events::Attribution)
                    .to_owned(),
            )
            .await
    }
}
