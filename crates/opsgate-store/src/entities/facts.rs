//! `facts`: the KPI measurements each event made (`opsgate_domain::kpi::Fact`), one row each.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "facts")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub transition_id: String,
    pub workflow_name: String,
    pub seq: i64,
    pub kind: String,
    pub at: DateTimeUtc,
    pub node: Option<String>,
    pub actor: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub label: Option<String>,
    pub seconds: Option<i64>,
    pub count: Option<i64>,
    pub flag: Option<bool>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
