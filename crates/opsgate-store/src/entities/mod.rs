//! sea-orm entities, one module per table created by `opsgate-migration`.

pub mod api_tokens;
pub mod delegations;
pub mod events;
pub mod facts;
pub mod idempotency_keys;
pub mod node_states;
pub mod outbox;
pub mod people;
pub mod transitions;
pub mod workflow_events;
pub mod workflows;
