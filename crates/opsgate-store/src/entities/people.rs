//! `people`: where to reach a person (email, Slack member or channel, Teams webhook), by the
//! name transitions use.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "people")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub name: String,
    pub email: Option<String>,
    pub slack: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub teams_webhook: Option<String>,
    pub updated_at: DateTimeUtc,
    pub updated_by: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
