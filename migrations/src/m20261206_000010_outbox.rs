//! The notification outbox. `outbox`: one row per notice (`opsgate_domain::notice`), written in
//! the same transaction as the events it reports (so it is exactly as durable), fanned out once
//! into `deliveries`: one row per channel (and recipient), with its attempts, the next attempt's
//! time and a lease (`claimed_until`) so that the replica that claimed it, and only it, delivers
//! it, and another picks it up when that one dies. `notify_endpoints` remembers the channels
//! disabled by a 410 until the SMO retries them.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, big_pk_auto, boolean, integer, string, string_null, text, text_null,
    timestamp_with_time_zone, timestamp_with_time_zone_null,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Outbox {
    Table,
    Id,
    TransitionId,
    Seq,
    Kind,
    Notice,
    CreatedAt,
    FannedOut,
}

#[derive(DeriveIden)]
enum Deliveries {
    Table,
    Id,
    OutboxId,
    Channel,
    Recipient,
    WebhookId,
    Status,
    Attempts,
    NextAttemptAt,
    ClaimedUntil,
    LastError,
    CreatedAt,
    DeliveredAt,
}

#[derive(DeriveIden)]
enum NotifyEndpoints {
    Table,
    Channel,
    DisabledAt,
    Reason,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Outbox::Table)
                    .col(big_pk_auto(Outbox::Id))
                    .col(string(Outbox::TransitionId))
                    .col(big_integer(Outbox::Seq))
                    .col(string(Outbox::Kind))
                    .col(text(Outbox::Notice))
                    .col(timestamp_with_time_zone(Outbox::CreatedAt))
                    .col(boolean(Outbox::FannedOut).default(false))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("outbox_pending")
                    .table(Outbox::Table)
                    .col(Outbox::FannedOut)
                    .col(Outbox::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Deliveries::Table)
                    .col(big_pk_auto(Deliveries::Id))
                    .col(big_integer(Deliveries::OutboxId))
                    .col(string(Deliveries::Channel))
                    .col(string(Deliveries::Recipient))
                    .col(string(Deliveries::WebhookId).unique_key())
                    .col(string(Deliveries::Status))
                    .col(integer(Deliveries::Attempts))
                    .col(timestamp_with_time_zone(Deliveries::NextAttemptAt))
                    .col(timestamp_with_time_zone_null(Deliveries::ClaimedUntil))
                    .col(text_null(Deliveries::LastError))
                    .col(timestamp_with_time_zone(Deliveries::CreatedAt))
                    .col(timestamp_with_time_zone_null(Deliveries::DeliveredAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("deliveries_due")
                    .table(Deliveries::Table)
                    .col(Deliveries::Status)
                    .col(Deliveries::Channel)
                    .col(Deliveries::NextAttemptAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(NotifyEndpoints::Table)
                    .col(string(NotifyEndpoints::Channel).primary_key())
                    .col(timestamp_with_time_zone_null(NotifyEndpoints::DisabledAt))
                    .col(string_null(NotifyEndpoints::Reason))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            NotifyEndpoints::Table.into_iden(),
            Deliveries::Table.into_iden(),
            Outbox::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
