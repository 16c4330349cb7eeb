//! `outbox`: one notice (`opsgate_domain::notice::Notice` as JSON) per notifiable event, written
//! with the event, fanned out once into `deliveries`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "outbox")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub transition_id: String,
    pub seq: i64,
    pub kind: String,
    #[sea_orm(column_type = "Text")]
    pub notice: String,
    pub created_at: DateTimeUtc,
    pub fanned_out: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
