//! The stall index on each transition row (`opsgate_domain::stalled::StallIndex`): the earliest
//! due date of work not done, the oldest submission waiting for review, the most times one
//! deliverable was sent back, and since when the gate is open. The stalled list queries these
//! instead of reading every state. Rows from before have `most_bounces` NULL: always candidates
//! until their next write fills them.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{date_null, integer_null, timestamp_with_time_zone_null};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Transitions {
    Table,
    UpdatedAt,
    NextDue,
    OldestSubmission,
    MostBounces,
    GateOpenSince,
}

const INDEXES: [(&str, Transitions); 5] = [
    ("transitions_updated_at", Transitions::UpdatedAt),
    ("transitions_next_due", Transitions::NextDue),
    (
        "transitions_oldest_submission",
        Transitions::OldestSubmission,
    ),
    ("transitions_most_bounces", Transitions::MostBounces),
    ("transitions_gate_open_since", Transitions::GateOpenSince),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite adds one at a time.
        for column in [
            date_null(Transitions::NextDue),
            timestamp_with_time_zone_null(Transitions::OldestSubmission),
            integer_null(Transitions::MostBounces),
            timestamp_with_time_zone_null(Transitions::GateOpenSince),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Transitions::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        // One index per condition: each of the stalled list's queries is a range seek.
        for (name, column) in INDEXES {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(Transitions::Table)
                        .col(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, _) in INDEXES {
            manager
                .drop_index(
                    Index::drop()
                        .name(name)
                        .table(Transitions::Table)
                        .to_owned(),
                )
                .await?;
        }
        for column in [
            Transitions::GateOpenSince,
            Transitions::MostBounces,
            Transitions::OldestSubmission,
            Transitions::NextDue,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Transitions::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
