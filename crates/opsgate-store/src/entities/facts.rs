//! `facts`: the KPI measurements each event made (`opsgate_domain::kpi::Fact`), one row each,
//! clustered by kind and moment (`ord` numbers the facts of one event).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "facts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub kind: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub at: DateTimeUtc,
    #[sea_orm(primary_key, auto_increment = false)]
    pub transition_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub seq: i64,
    #[sea_orm(primary_key, auto_increment = false)]
    pub ord: i32,
    pub workflow_name: String,
    pub node: Option<String>,
    pub actor: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub label: Option<String>,
    pub seconds: Option<i64>,
    pub duration: Option<i64>,
    pub count: Option<i64>,
    pub flag: Option<bool>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
