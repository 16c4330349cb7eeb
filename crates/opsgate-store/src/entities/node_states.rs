//! `node_states`: the current state of every node of every transition; `detail` is the domain `NodeState` as JSON.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "node_states")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub transition_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub node_id: String,
    pub status: String,
    #[sea_orm(column_type = "Text")]
    pub detail: String,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
