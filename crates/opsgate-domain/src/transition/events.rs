//! Events: the attributed, append-only facts a transition is made of.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{Actor, NodeId, RoleName};
use crate::transition::{Attribution, Evidence, TransitionMeta};

/// An attributed, append-only fact. `seq` is 1-based within the transition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub seq: u64,
    pub at: DateTime<Utc>,
    pub actor: Actor,
    pub kind: EventKind,
    /// The access role, workflow role and credential the actor acted through.
    #[serde(default, skip_serializing_if = "Attribution::is_empty")]
    pub attribution: Attribution,
}

/// What happened. Derived events (`NodeUnlocked`, `NodeRelocked`) follow the event that caused them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    TransitionStarted {
        meta: TransitionMeta,
    },
    DeliverableSubmitted {
        node: NodeId,
        evidence: Evidence,
    },
    /// An approval that meets the deliverable's policy.
    DeliverableApproved {
        node: NodeId,
        comment: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        deputy: Option<StoodIn>,
    },
    /// An approval that does not meet the policy yet.
    ApprovalRecorded {
        node: NodeId,
        comment: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        deputy: Option<StoodIn>,
    },
    ChangesRequested {
        node: NodeId,
        comment: String,
    },
    MilestoneSignedOff {
        node: NodeId,
        comment: String,
    },
    /// Everything the node needs is done: a deliverable or the gate opens, a milestone is reached
    /// (or opens for its sign-off).
    NodeUnlocked {
        node: NodeId,
    },
    /// Something the node needs was reopened: back to locked.
    NodeRelocked {
        node: NodeId,
    },
    HandoverAccepted {
        comment: String,
    },
    HandoverRejected {
        reasons: Vec<String>,
        reopened: Vec<NodeId>,
    },
    /// The people named for a role were replaced (someone left, a role was unfilled).
    ParticipantsChanged {
        role: RoleName,
        people: Vec<Actor>,
    },
    /// The SMO waived a deliverable: it counts as done for what needs it until `until`.
    DeliverableWaived {
        node: NodeId,
        reason: String,
        until: DateTime<Utc>,
    },
    /// A waiver reached its end: the deliverable counts as done only once approved.
    WaiverExpired {
        node: NodeId,
    },
    /// The target go-live moved (and with it every due date anchored on it).
    GoLiveMoved {
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
        reason: String,
    },
}

/// A deputy's approval: whom they stood in for, through which delegation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoodIn {
    pub on_behalf_of: Actor,
    pub delegation: i64,
}

impl EventKind {
    /// Stable snake_case name, as stored in the event table.
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::TransitionStarted { .. } => "transition_started",
            EventKind::DeliverableSubmitted { .. } => "deliverable_submitted",
            EventKind::DeliverableApproved { .. } => "deliverable_approved",
            EventKind::ApprovalRecorded { .. } => "approval_recorded",
            EventKind::ChangesRequested { .. } => "changes_requested",
            EventKind::MilestoneSignedOff { .. } => "milestone_signed_off",
            EventKind::NodeUnlocked { .. } => "node_unlocked",
            EventKind::NodeRelocked { .. } => "node_relocked",
            EventKind::HandoverAccepted { .. } => "handover_accepted",
            EventKind::HandoverRejected { .. } => "handover_rejected",
            EventKind::ParticipantsChanged { .. } => "participants_changed",
            EventKind::DeliverableWaived { .. } => "deliverable_waived",
            EventKind::WaiverExpired { .. } => "waiver_expired",
            EventKind::GoLiveMoved { .. } => "go_live_moved",
        }
    }
}
