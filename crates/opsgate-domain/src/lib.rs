//! Pure domain core of opsgate: workflow model and validation, transition state machine, gate decision. No IO.

pub mod access;
pub mod calendar;
pub mod contact;
pub mod docs;
pub mod error;
pub mod forecast;
pub mod gate;
pub mod hash;
pub mod ids;
pub mod kpi;
pub mod notice;
pub mod stalled;
pub mod timers;
pub mod transition;
pub mod workflow;

pub use access::Access;
pub use error::{Error, Result};
pub use gate::{Blocker, GateDecision, GateState, WaitingOn, WaiverUse};
pub use ids::{Actor, MAX_ECHO, NodeId, RoleName, WorkflowName, clip};
pub use transition::{
    Acting, Attribution, Command, Delegation, Event, EventKind, Evidence, NodeState, NodeStatus,
    Participants, PipelineGrant, ReviewDecision, SYSTEM_ACTOR, StoodIn, TransitionState,
    TransitionStatus, Waiver,
};
pub use workflow::{Node, NodeKind, Problem, Role, Workflow, WorkflowErrors};
