//! `api_tokens`: API tokens, stored only as the SHA-256 of their secret, with their principal,
//! roles, expiry and revocation.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    string, text, timestamp_with_time_zone, timestamp_with_time_zone_null,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ApiTokens {
    Table,
    /// UUIDv7.
    Id,
    /// Hex SHA-256 of the secret (unique): what a call's token is looked up by.
    Hash,
    /// `og_` and the secret's first 6 hex digits, to recognise a token in a listing.
    Prefix,
    Principal,
    /// JSON array of role names.
    Roles,
    Description,
    CreatedBy,
    CreatedAt,
    ExpiresAt,
    RevokedAt,
    RevokedBy,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ApiTokens::Table)
                    .if_not_exists()
                    .col(string(ApiTokens::Id).primary_key())
                    .col(string(ApiTokens::Hash))
                    .col(string(ApiTokens::Prefix))
                    .col(string(ApiTokens::Principal))
                    .col(text(ApiTokens::Roles))
                    .col(text(ApiTokens::Description))
                    .col(string(ApiTokens::CreatedBy))
                    .col(timestamp_with_time_zone(ApiTokens::CreatedAt))
                    .col(timestamp_with_time_zone_null(ApiTokens::ExpiresAt))
                    .col(timestamp_with_time_zone_null(ApiTokens::RevokedAt))
                    .col(ColumnDef::new(ApiTokens::RevokedBy).string().null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_api_tokens_hash")
                    .table(ApiTokens::Table)
                    .col(ApiTokens::Hash)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ApiTokens::Table).to_owned())
            .await
    }
}
