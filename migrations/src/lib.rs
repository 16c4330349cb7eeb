//! Database schema migrations for opsgate (sea-orm-migration), applied at server start-up.

pub use sea_orm_migration::MigratorTrait;
use sea_orm_migration::prelude::*;

mod m20261122_000001_init;
mod m20261122_000002_node_snapshot;
mod m20261123_000003_workflow_events;
mod m20261123_000004_api_tokens;
mod m20261123_000005_idempotency;
mod m20261124_000006_identity;
mod m20261124_000007_event_chain;
mod m20261124_000008_stall_index;
mod m20261206_000009_facts;
mod m20261206_000010_outbox;
mod m20261206_000011_people;
mod m20261206_000012_timers;
mod m20261206_000013_workflow_templates;
mod m20261207_000014_attachments;
mod m20261207_000015_transition_people;
mod m20261207_000016_services;
mod m20261208_000017_delivery_notice;
mod m20261208_000018_updated_day;
mod m20261208_000019_node_states_clustered;
mod m20261209_000020_delivered_rows;

/// Every migration in order.
#[derive(Debug)]
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_init::Migration),
            Box::new(m20261122_000002_node_snapshot::Migration),
            Box::new(m20261123_000003_workflow_events::Migration),
            Box::new(m20261123_000004_api_tokens::Migration),
            Box::new(m20261123_000005_idempotency::Migration),
            Box::new(m20261124_000006_identity::Migration),
            Box::new(m20261124_000007_event_chain::Migration),
            Box::new(m20261124_000008_stall_index::Migration),
            Box::new(m20261206_000009_facts::Migration),
            Box::new(m20261206_000010_outbox::Migration),
            Box::new(m20261206_000011_people::Migration),
            Box::new(m20261206_000012_timers::Migration),
            Box::new(m20261206_000013_workflow_templates::Migration),
            Box::new(m20261207_000014_attachments::Migration),
            Box::new(m20261207_000015_transition_people::Migration),
            Box::new(m20261207_000016_services::Migration),
            Box::new(m20261208_000017_delivery_notice::Migration),
            Box::new(m20261208_000018_updated_day::Migration),
            Box::new(m20261208_000019_node_states_clustered::Migration),
            Box::new(m20261209_000020_delivered_rows::Migration),
        ]
    }
}
