//! Who has a part in each transition (issue "People act in a browser"): one row per person and
//! transition, so that `/me` and a person's board read the transitions they take part in instead
//! of every transition. Written with the transition's start and with each change of its people;
//! the store fills it for transitions from before this migration when it opens the database.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::string;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum TransitionPeople {
    Table,
    Person,
    TransitionId,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(TransitionPeople::Table)
                    .col(string(TransitionPeople::Person))
                    .col(string(TransitionPeople::TransitionId))
                    .primary_key(
                        Index::create()
                            .col(TransitionPeople::Person)
                            .col(TransitionPeople::TransitionId),
                    )
                    .to_owned(),
            )
            .await?;
        // A change of people replaces a transition's rows.
        manager
            .create_index(
                Index::create()
                    .name("transition_people_transition")
                    .table(TransitionPeople::Table)
                    .col(TransitionPeople::TransitionId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(TransitionPeople::Table).to_owned())
            .await
    }
}
