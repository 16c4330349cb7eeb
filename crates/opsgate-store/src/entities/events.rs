//! `events`: the append-only, attributed event log; `payload` is the domain `EventKind` as JSON.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "events")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub transition_id: String,
    pub seq: i64,
    pub kind: String,
    pub actor: String,
    pub at: DateTimeUtc,
    #[sea_orm(column_type = "Text")]
    pub payload: String,
    /// The domain `Attribution` as JSON; `NULL` when empty.
    #[sea_orm(column_type = "Text", nullable)]
    pub attribution: Option<String>,
    /// Hex SHA-256 chaining this event to the previous one (`opsgate_domain::hash`).
    pub hash: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
