//! The templates a workflow version references (issue "What the SMO hands every transition"):
//! stored with the version that registered them, so that a running transition keeps the template
//! it started with whatever happens to the file later.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{big_integer, string, text};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum WorkflowTemplates {
    Table,
    WorkflowId,
    Path,
    Content,
    Sha256,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(WorkflowTemplates::Table)
                    .col(big_integer(WorkflowTemplates::WorkflowId))
                    .col(string(WorkflowTemplates::Path))
                    .col(text(WorkflowTemplates::Content))
                    .col(string(WorkflowTemplates::Sha256))
                    .primary_key(
                        Index::create()
                            .col(WorkflowTemplates::WorkflowId)
                            .col(WorkflowTemplates::Path),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(WorkflowTemplates::Table).to_owned())
            .await
    }
}
