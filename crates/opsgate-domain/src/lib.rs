//! Pure domain core of opsgate: workflow model and validation, transition state machine, gate decision. No IO.

pub mod access;
pub mod error;
pub mod gate;
pub mod ids;
pub mod transition;
pub mod workflow;

pub use access::Access;
pub use error::{Error, Result};
pub use gate::{Blocker, GateDecision, GateState, WaitingOn};
pub use ids::{Actor, MAX_ECHO, NodeId, RoleName, WorkflowName, clip};
pub use transition::{
    Command, Event, EventKind, Evidence, NodeState, NodeStatus, Participants, ReviewDecision,
    TransitionState, TransitionStatus,
};
pub use workflow::{Node, NodeKind, Problem, Role, Workflow, WorkflowErrors};
