//! The transition state machine: commands are decided into events, events are folded into state.
//!
//! Transition table for one deliverable (anything else is `FailedPrecondition`):
//!
//! | from               | on                          | to                 |
//! |--------------------|-----------------------------|--------------------|
//! | locked             | every need done (derived)   | open               |
//! | open               | a need undone (derived)     | locked             |
//! | open               | submit                      | submitted          |
//! | changes_requested  | submit                      | submitted          |
//! | submitted          | approve, policy not yet met | submitted          |
//! | submitted          | approve, policy met         | approved           |
//! | submitted          | request changes             | changes_requested  |
//! | approved/submitted | handover rejected, reopened | changes_requested  |
//!
//! Approvals count distinct people allowed by the deliverable's policy (any of, all of, a quorum);
//! nobody approves what they submitted. Milestones go locked <-> reached (through open when a
//! sign-off role must sign them off) and the gate locked <-> open as their needs are (un)done; the
//! open gate goes to accepted on `AcceptHandover`, and reaching the end of post-go-live support
//! completes the transition. "Done" is transitive: a node counts as done only when it and
//! everything it needs are done (an optional deliverable always counts as done), so reopening a
//! deliverable closes the gate even where later approvals stand.

mod acting;
mod apply;
mod decide;
mod events;
mod evidence;
mod participants;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::Actor;

pub use acting::{Acting, Attribution, Delegation, PipelineGrant, Waiver};
pub use apply::SYSTEM_ACTOR;
pub use events::{Event, EventKind, StoodIn};
pub use evidence::{Attachment, Evidence, MAX_LINK_LEN, MAX_LINKS, MAX_TEXT_LEN};
pub use participants::{
    Participants, TransitionMeta, acting_roles, check_service_field, people_with_a_part, policy_met,
};

/// Where a node stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeStatus {
    Locked,
    Open,
    Submitted,
    ChangesRequested,
    Approved,
    Reached,
    Accepted,
}

impl NodeStatus {
    pub const ALL: [NodeStatus; 7] = [
        NodeStatus::Locked,
        NodeStatus::Open,
        NodeStatus::Submitted,
        NodeStatus::ChangesRequested,
        NodeStatus::Approved,
        NodeStatus::Reached,
        NodeStatus::Accepted,
    ];

    /// Storage and message spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeStatus::Locked => "locked",
            NodeStatus::Open => "open",
            NodeStatus::Submitted => "submitted",
            NodeStatus::ChangesRequested => "changes_requested",
            NodeStatus::Approved => "approved",
            NodeStatus::Reached => "reached",
            NodeStatus::Accepted => "accepted",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == value)
    }

    /// The node itself is finished (its needs may still have been reopened); a waived node
    /// counts as done too, see [`NodeState::counts_as_done`].
    pub fn is_done(self) -> bool {
        matches!(
            self,
            NodeStatus::Approved | NodeStatus::Reached | NodeStatus::Accepted
        )
    }
}

/// Where a transition stands as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransitionStatus {
    /// Work towards the gate is under way.
    Active,
    /// The service manager accepted the handover: the service is in operation.
    HandedOver,
    /// Post-go-live support ended: nothing is left to do.
    Completed,
}

impl TransitionStatus {
    pub const ALL: [TransitionStatus; 3] = [
        TransitionStatus::Active,
        TransitionStatus::HandedOver,
        TransitionStatus::Completed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TransitionStatus::Active => "active",
            TransitionStatus::HandedOver => "handed_over",
            TransitionStatus::Completed => "completed",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == value)
    }
}

/// One node's state in one transition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeState {
    pub status: NodeStatus,
    /// Evidence of the latest submission.
    pub evidence: Option<Evidence>,
    /// Latest review comment, sign-off comment or rejection reason (an approval without words
    /// keeps a co-approver's comment on the same submission).
    pub comment: Option<String>,
    /// Submissions so far (1 after the first); a resubmission starts the next round.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub round: u32,
    /// The round `comment` was made in: when below `round`, the comment is history of an
    /// earlier round (the changes it asked for were resubmitted), not a current verdict.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub comment_round: u32,
    /// Who last acted on this node (derived changes keep the previous actor).
    pub actor: Option<Actor>,
    /// Who made the latest submission.
    pub submitted_by: Option<Actor>,
    /// Distinct approvers of the latest submission so far (for a deputy's approval, the
    /// person they stood in for).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvals: Vec<Actor>,
    /// Deputies who approved the latest submission for someone else: none of them approves
    /// it again, for anyone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deputies: Vec<Actor>,
    /// The SMO's waiver in force, if any: the node counts as done until it ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiver: Option<Waiver>,
    /// When the node first opened (everything it needs done): the start of its work, which
    /// the forecast and the KPIs measure from. Absent in states stored before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opened_at: Option<DateTime<Utc>>,
    /// When the latest submission was made (partial approvals do not move it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submitted_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference
fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Most bytes of evidence, comments and names one transition holds (see
/// [`TransitionState::content_bytes`]). Every node may hold up to about 340 KB on its own, so
/// without a bound for the whole a transition could outgrow any response; with it, a whole
/// transition always fits in one read.
pub const MAX_TRANSITION_CONTENT: usize = 1024 * 1024;

impl NodeState {
    /// Bytes of caller-supplied content this node holds: evidence, comment and names.
    pub fn content_bytes(&self) -> usize {
        let evidence = self.evidence.as_ref().map_or(0, |e| {
            e.text.len()
                + e.links.iter().map(String::len).sum::<usize>()
                + e.attachments
                    .iter()
                    .map(|a| a.uri.len() + a.sha256.len())
                    .sum::<usize>()
        });
        let names = self.actor.as_ref().map_or(0, |a| a.as_str().len())
            + self.submitted_by.as_ref().map_or(0, |a| a.as_str().len())
            + self
                .approvals
                .iter()
                .chain(&self.deputies)
                .map(|a| a.as_str().len())
                .sum::<usize>();
        let waiver = self
            .waiver
            .as_ref()
            .map_or(0, |w| w.reason.len() + w.by.as_str().len());
        evidence + self.comment.as_ref().map_or(0, String::len) + names + waiver
    }

    /// Finished, or waived by the SMO.
    pub fn counts_as_done(&self) -> bool {
        self.status.is_done() || self.waiver.is_some()
    }

    /// Whether `comment` is a verdict on the current submission rather than an earlier one.
    pub fn comment_is_current(&self) -> bool {
        self.comment.is_some() && self.comment_round >= self.round
    }

    fn new(at: DateTime<Utc>) -> Self {
        Self {
            status: NodeStatus::Locked,
            evidence: None,
            comment: None,
            round: 0,
            comment_round: 0,
            actor: None,
            submitted_by: None,
            approvals: Vec::new(),
            deputies: Vec::new(),
            waiver: None,
            opened_at: None,
            submitted_at: None,
            updated_at: at,
        }
    }
}

impl TransitionState {
    /// Bytes of caller-supplied content the transition holds, bounded by
    /// [`MAX_TRANSITION_CONTENT`].
    pub fn content_bytes(&self) -> usize {
        self.nodes.iter().map(NodeState::content_bytes).sum()
    }
}

/// The full state of a transition: a projection of its events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransitionState {
    pub meta: TransitionMeta,
    pub status: TransitionStatus,
    /// Indexed like [`Workflow::nodes`].
    pub nodes: Vec<NodeState>,
    /// Number of events applied; the next event gets `seq + 1`.
    pub seq: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A reviewer's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewDecision {
    Approve,
    RequestChanges,
}

/// A request to change a transition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Submit {
        node: String,
        evidence: Evidence,
    },
    Review {
        node: String,
        decision: ReviewDecision,
        comment: String,
    },
    AcceptHandover {
        comment: String,
    },
    RejectHandover {
        reasons: Vec<String>,
        reopen: Vec<String>,
    },
    /// The sign-off role confirms a milestone whose needs are done.
    SignOff {
        node: String,
        comment: String,
    },
    /// Replaces the people named for a role of a running transition (the SMO's to do; the
    /// server checks that). Approvals already given stay in the record.
    ChangeParticipants {
        role: String,
        people: Vec<String>,
    },
    /// The target go-live moves, with a reason: the transition's project manager, or the SMO
    /// (the server checks the role). Due dates anchored on go-live move with it.
    Reschedule {
        target_go_live: chrono::NaiveDate,
        reason: String,
    },
    /// The SMO waives a deliverable until `until`, with a reason (the server checks the role).
    Waive {
        node: String,
        reason: String,
        until: DateTime<Utc>,
    },
    /// Records the end of every waiver that has run out (refused when none has).
    ExpireWaivers,
}

#[cfg(test)]
mod tests;
