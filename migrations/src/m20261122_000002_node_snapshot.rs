//! A snapshot of every node's state on the transition row, so that one row read gives the whole
//! state; `node_states` stays as the queryable, per-node copy.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Transitions {
    Table,
    /// JSON array of the domain's `NodeState`, in the workflow's node order. NULL on rows written
    /// before this migration: readers then fall back to `node_states`.
    Nodes,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Transitions::Table)
                    .add_column(ColumnDef::new(Transitions::Nodes).text().null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Transitions::Table)
                    .drop_column(Transitions::Nodes)
                    .to_owned(),
            )
            .await
    }
}
