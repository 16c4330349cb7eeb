//! `transitions`: one row per transition; `meta` is the JSON of the domain's `TransitionMeta`,
//! `nodes` the JSON of every node's state (one read gives the whole transition).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "transitions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub workflow_id: i64,
    pub workflow_name: String,
    pub workflow_version: i32,
    pub service_name: String,
    pub service_version: String,
    pub status: String,
    pub target_go_live: Date,
    #[sea_orm(column_type = "Text")]
    pub meta: String,
    /// Number of events recorded; guards every update (optimistic concurrency).
    pub seq: i64,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// JSON array of every node's state in workflow order (NULL on rows from before it existed).
    #[sea_orm(column_type = "Text", nullable)]
    pub nodes: Option<String>,
    /// Hex hash of the last event: the head of the transition's hash chain.
    pub head_hash: Option<String>,
    /// The stall index (`opsgate_domain::stalled::StallIndex`); `most_bounces` NULL on rows
    /// not indexed yet.
    pub next_due: Option<Date>,
    pub oldest_submission: Option<DateTimeUtc>,
    pub most_bounces: Option<i32>,
    pub gate_open_since: Option<DateTimeUtc>,
    /// The UTC day of `updated_at`, which the stalled list's idle query seeks by (an index on
    /// `updated_at` itself would be rewritten by every write); NULL only on a row being migrated.
    pub updated_day: Option<Date>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
