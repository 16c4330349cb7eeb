//! Fired timers (issue "Pluggable notifiers"): one row per reminder, overdue notice or
//! escalation sent, keyed by transition, node, kind and due date, written in the transaction
//! that stores its notice. What is due is derived from the transitions' due dates (the
//! `next_due` stall index finds the candidates); this table is what makes each fire once, across
//! restarts and replicas.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{date, string, timestamp_with_time_zone};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Timers {
    Table,
    TransitionId,
    NodeId,
    Kind,
    Due,
    FiredAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Timers::Table)
                    .col(string(Timers::TransitionId))
                    .col(string(Timers::NodeId))
                    .col(string(Timers::Kind))
                    .col(date(Timers::Due))
                    .col(timestamp_with_time_zone(Timers::FiredAt))
                    .primary_key(
                        Index::create()
                            .col(Timers::TransitionId)
                            .col(Timers::NodeId)
                            .col(Timers::Kind)
                            .col(Timers::Due),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Timers::Table).to_owned())
            .await
    }
}
