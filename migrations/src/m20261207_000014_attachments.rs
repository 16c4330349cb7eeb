//! Files uploaded as evidence on a transition page (issue "People act in a browser"): stored per
//! transition and keyed by their SHA-256, which the submission's evidence names.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{big_integer, blob, string, timestamp_with_time_zone};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Attachments {
    Table,
    TransitionId,
    Sha256,
    Name,
    ContentType,
    Size,
    Content,
    UploadedBy,
    UploadedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Attachments::Table)
                    .col(string(Attachments::TransitionId))
                    .col(string(Attachments::Sha256))
                    .col(string(Attachments::Name))
                    .col(string(Attachments::ContentType))
                    .col(big_integer(Attachments::Size))
                    .col(blob(Attachments::Content))
                    .col(string(Attachments::UploadedBy))
                    .col(timestamp_with_time_zone(Attachments::UploadedAt))
                    .primary_key(
                        Index::create()
                            .col(Attachments::TransitionId)
                            .col(Attachments::Sha256),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Attachments::Table).to_owned())
            .await
    }
}
