//! `workflow_events`: who registered which workflow version, and when, as events of their own
//! (the transition event log is per transition; a workflow version belongs to none).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{big_integer, big_pk_auto, string, text, timestamp_with_time_zone};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum WorkflowEvents {
    Table,
    Id,
    WorkflowId,
    /// `workflow_registered`.
    Kind,
    Actor,
    At,
    /// JSON: name, version, sha256, file.
    Payload,
}

#[derive(DeriveIden)]
enum Workflows {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(WorkflowEvents::Table)
                    .if_not_exists()
                    .col(big_pk_auto(WorkflowEvents::Id))
                    .col(big_integer(WorkflowEvents::WorkflowId))
                    .col(string(WorkflowEvents::Kind))
                    .col(string(WorkflowEvents::Actor))
                    .col(timestamp_with_time_zone(WorkflowEvents::At))
                    .col(text(WorkflowEvents::Payload))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_workflow_events_workflow")
                            .from(WorkflowEvents::Table, WorkflowEvents::WorkflowId)
                            .to(Workflows::Table, Workflows::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_workflow_events_workflow")
                    .table(WorkflowEvents::Table)
                    .col(WorkflowEvents::WorkflowId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(WorkflowEvents::Table).to_owned())
            .await
    }
}
