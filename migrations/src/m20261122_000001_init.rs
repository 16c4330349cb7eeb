//! Initial schema: workflow versions, transitions, node states and the append-only event log.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, big_pk_auto, date, integer, string, text, timestamp_with_time_zone,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Workflows {
    Table,
    Id,
    Name,
    Version,
    Source,
    Sha256,
    RegisteredAt,
}

#[derive(DeriveIden)]
enum Transitions {
    Table,
    Id,
    WorkflowId,
    WorkflowName,
    WorkflowVersion,
    ServiceName,
    ServiceVersion,
    Status,
    TargetGoLive,
    Meta,
    Seq,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum NodeStates {
    Table,
    TransitionId,
    NodeId,
    Status,
    Detail,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Events {
    Table,
    Id,
    TransitionId,
    Seq,
    Kind,
    Actor,
    At,
    Payload,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Workflows::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Workflows::Id))
                    .col(string(Workflows::Name))
                    .col(integer(Workflows::Version))
                    .col(text(Workflows::Source))
                    .col(string(Workflows::Sha256))
                    .col(timestamp_with_time_zone(Workflows::RegisteredAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_workflows_name_version")
                    .table(Workflows::Table)
                    .col(Workflows::Name)
                    .col(Workflows::Version)
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Transitions::Table)
                    .if_not_exists()
                    .col(string(Transitions::Id).primary_key())
                    .col(big_integer(Transitions::WorkflowId))
                    .col(string(Transitions::WorkflowName))
                    .col(integer(Transitions::WorkflowVersion))
                    .col(string(Transitions::ServiceName))
                    .col(string(Transitions::ServiceVersion))
                    .col(string(Transitions::Status))
                    .col(date(Transitions::TargetGoLive))
                    .col(text(Transitions::Meta))
                    .col(big_integer(Transitions::Seq))
                    .col(timestamp_with_time_zone(Transitions::CreatedAt))
                    .col(timestamp_with_time_zone(Transitions::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_transitions_workflow")
                            .from(Transitions::Table, Transitions::WorkflowId)
                            .to(Workflows::Table, Workflows::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_transitions_service")
                    .table(Transitions::Table)
                    .col(Transitions::ServiceName)
                    .col(Transitions::ServiceVersion)
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(NodeStates::Table)
                    .if_not_exists()
                    .col(string(NodeStates::TransitionId))
                    .col(string(NodeStates::NodeId))
                    .col(string(NodeStates::Status))
                    .col(text(NodeStates::Detail))
                    .col(timestamp_with_time_zone(NodeStates::UpdatedAt))
                    .primary_key(
                        Index::create()
                            .col(NodeStates::TransitionId)
                            .col(NodeStates::NodeId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_node_states_transition")
                            .from(NodeStates::Table, NodeStates::TransitionId)
                            .to(Transitions::Table, Transitions::Id),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Events::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Events::Id))
                    .col(string(Events::TransitionId))
                    .col(big_integer(Events::Seq))
                    .col(string(Events::Kind))
                    .col(string(Events::Actor))
                    .col(timestamp_with_time_zone(Events::At))
                    .col(text(Events::Payload))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_events_transition")
                            .from(Events::Table, Events::TransitionId)
                            .to(Transitions::Table, Transitions::Id),
                    )
                    .to_owned(),
            )
            .await?;
        // One event per sequence number: concurrent writers of the same transition cannot both commit.
        manager
            .create_index(
                Index::create()
                    .name("ux_events_transition_seq")
                    .table(Events::Table)
                    .col(Events::TransitionId)
                    .col(Events::Seq)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Events::Table.into_iden(),
            NodeStates::Table.into_iden(),
            Transitions::Table.into_iden(),
            Workflows::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
