//! People's contact details (issue "Pluggable notifiers"): where to reach each person a workflow
//! names, managed by the SMO. `people`: one row per person, keyed by the name transitions use.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{string, string_null, text_null, timestamp_with_time_zone};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum People {
    Table,
    Name,
    Email,
    Slack,
    TeamsWebhook,
    UpdatedAt,
    UpdatedBy,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(People::Table)
                    .col(string(People::Name).primary_key())
                    .col(string_null(People::Email))
                    .col(string_null(People::Slack))
                    .col(text_null(People::TeamsWebhook))
                    .col(timestamp_with_time_zone(People::UpdatedAt))
                    .col(string(People::UpdatedBy))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(People::Table).to_owned())
            .await
    }
}
