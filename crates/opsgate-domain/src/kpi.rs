//! KPI facts: the measurements each event adds to the transition-process figures (lead time,
//! time in each state, approval latency, first-pass approvals, bounces, on-time go-live,
//! rejections, waivers, post-go-live support). Derived when the event is written and stored
//! beside it, so every figure is a count, sum or average over rows in SQL, and the forecast reads
//! how long each deliverable really took without replaying any log.

use chrono::{DateTime, Utc};

use crate::ids::NodeId;
use crate::transition::{Event, EventKind, NodeStatus, TransitionState, TransitionStatus};
use crate::workflow::Workflow;

/// What a fact measures. Each event makes at most one fact (a rejection one per reason), so
/// the write path adds few rows: a fact carries every measure of its event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FactKind {
    /// A deliverable was submitted: `label` the state it left (`open` or `changes_requested`),
    /// `seconds` how long it was in it.
    Submitted,
    /// An approval that does not complete the policy: `actor` the approver (the deputy for a
    /// deputy's approval), `label` the workflow role approved for, `seconds` since the submission.
    Approval,
    /// The approval that completes the policy: as [`FactKind::Approval`], and the deliverable is
    /// done: `duration` since it opened (how long it took), `count` how often it was sent back
    /// first, `flag` approved at the first submission.
    Approved,
    /// A reviewer asked for changes: `actor` the reviewer, `seconds` since the submission (the
    /// time it was in review).
    SentBack,
    /// A milestone was signed off: `seconds` it was open waiting for it, `duration` since it
    /// opened.
    SignedOff,
    /// The SMO waived a deliverable: `label` the reason.
    Waived,
    /// The service manager accepted the handover: `seconds` since the start (lead time), `count`
    /// days after the target go-live (negative when early), `flag` on time, `duration` the gate
    /// was open.
    HandoverAccepted,
    /// The service manager rejected the handover: one fact per reason, in `label`; `count` is
    /// 1 on the first reason and 0 on the others.
    HandoverRejected,
    /// Post-go-live support ended: `seconds` since the handover, `flag` within the workflow's
    /// support window.
    Completed,
}

impl FactKind {
    pub const ALL: [FactKind; 9] = [
        FactKind::Submitted,
        FactKind::Approval,
        FactKind::Approved,
        FactKind::SentBack,
        FactKind::SignedOff,
        FactKind::Waived,
        FactKind::HandoverAccepted,
        FactKind::HandoverRejected,
        FactKind::Completed,
    ];

    /// Storage spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            FactKind::Submitted => "submitted",
            FactKind::Approval => "approval",
            FactKind::Approved => "approved",
            FactKind::SentBack => "sent_back",
            FactKind::SignedOff => "signed_off",
            FactKind::Waived => "waived",
            FactKind::HandoverAccepted => "handover_accepted",
            FactKind::HandoverRejected => "handover_rejected",
            FactKind::Completed => "completed",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == value)
    }
}

/// One measurement, made by the event at `seq`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fact {
    pub seq: u64,
    pub kind: FactKind,
    pub at: DateTime<Utc>,
    pub node: Option<NodeId>,
    pub actor: Option<String>,
    pub label: Option<String>,
    pub seconds: Option<i64>,
    /// A second duration of the same event, in seconds (see [`FactKind`]).
    pub duration: Option<i64>,
    pub count: Option<i64>,
    pub flag: Option<bool>,
}

impl Fact {
    fn new(event: &Event, kind: FactKind) -> Self {
        Self {
            seq: event.seq,
            kind,
            at: event.at,
            node: None,
            actor: None,
            label: None,
            seconds: None,
            duration: None,
            count: None,
            flag: None,
        }
    }

    fn node(mut self, node: &NodeId) -> Self {
        self.node = Some(node.clone());
        self
    }
}

/// The facts of `events`, the events one write appends to a transition whose state was
/// `before`. Every event that measures something acts on a node no earlier event of the same
/// write changed (a write is one command, the waivers that ran out before it, and the unlocks and
/// relocks they cause), so `before` holds what each needs; [`facts_of_log`] checks that against a
/// full replay in the tests.
pub fn facts(workflow: &Workflow, before: &TransitionState, events: &[Event]) -> Vec<Fact> {
    events
        .iter()
        .flat_map(|e| of(workflow, before, e))
        .collect()
}

/// The facts of a whole log, each event measured against the state just before it (the
/// migration that fills the facts of existing transitions uses this).
pub fn facts_of_log(workflow: &Workflow, events: &[Event]) -> crate::Result<Vec<Fact>> {
    let Some(first) = events.first() else {
        return Ok(Vec::new());
    };
    let mut state = TransitionState::replay(workflow, std::slice::from_ref(first))?;
    let mut out = Vec::new();
    for event in &events[1..] {
        out.extend(of(workflow, &state, event));
        state.apply(workflow, event)?;
    }
    Ok(out)
}

fn of(workflow: &Workflow, state: &TransitionState, event: &Event) -> Vec<Fact> {
    let position = |node: &NodeId| workflow.position(node.as_str());
    let since = |from: DateTime<Utc>| (event.at - from).num_seconds().max(0);
    let mut out = Vec::new();
    match &event.kind {
        EventKind::DeliverableSubmitted { node, .. } => {
            if let Some(ns) = position(node).map(|i| &state.nodes[i])
                && matches!(ns.status, NodeStatus::Open | NodeStatus::ChangesRequested)
            {
                let mut fact = Fact::new(event, FactKind::Submitted).node(node);
                fact.label = Some(ns.status.as_str().to_owned());
                fact.seconds = Some(since(ns.updated_at));
                out.push(fact);
            }
        }
        EventKind::DeliverableApproved { node, .. } | EventKind::ApprovalRecorded { node, .. } => {
            let Some(ns) = position(node).map(|i| &state.nodes[i]) else {
                return out;
            };
            let done = matches!(event.kind, EventKind::DeliverableApproved { .. });
            let kind = if done {
                FactKind::Approved
            } else {
                FactKind::Approval
            };
            let mut fact = Fact::new(event, kind).node(node);
            fact.actor = Some(event.actor.to_string());
            fact.label = event.attribution.role.as_ref().map(ToString::to_string);
            fact.seconds = Some(since(ns.submitted_at.unwrap_or(ns.updated_at)));
            if done {
                let bounces = ns.round.saturating_sub(1);
                fact.duration = Some(since(ns.opened_at.unwrap_or(ns.updated_at)));
                fact.count = Some(i64::from(bounces));
                fact.flag = Some(bounces == 0);
            }
            out.push(fact);
        }
        EventKind::ChangesRequested { node, .. } => {
            let Some(ns) = position(node).map(|i| &state.nodes[i]) else {
                return out;
            };
            let mut fact = Fact::new(event, FactKind::SentBack).node(node);
            fact.actor = Some(event.actor.to_string());
            fact.seconds = Some(since(ns.submitted_at.unwrap_or(ns.updated_at)));
            out.push(fact);
        }
        EventKind::MilestoneSignedOff { node, .. } => {
            if let Some(i) = position(node) {
                let ns = &state.nodes[i];
                let mut fact = Fact::new(event, FactKind::SignedOff).node(node);
                fact.seconds = Some(since(ns.updated_at));
                fact.duration = Some(since(ns.opened_at.unwrap_or(ns.updated_at)));
                out.push(fact);
                out.extend(completed(workflow, state, event, i));
            }
        }
        EventKind::NodeUnlocked { node } => {
            if let Some(i) = position(node) {
                out.extend(completed(workflow, state, event, i));
            }
        }
        EventKind::DeliverableWaived { node, reason, .. } => {
            let mut waived = Fact::new(event, FactKind::Waived).node(node);
            waived.label = Some(reason.clone());
            out.push(waived);
        }
        EventKind::HandoverAccepted { .. } => {
            let mut accepted = Fact::new(event, FactKind::HandoverAccepted);
            accepted.seconds = Some(since(state.created_at));
            accepted.duration = Some(since(state.nodes[workflow.gate()].updated_at));
            let late = (event.at.date_naive() - state.meta.target_go_live).num_days();
            accepted.count = Some(late);
            accepted.flag = Some(late <= 0);
            out.push(accepted);
        }
        EventKind::HandoverRejected { reasons, .. } => {
            for (n, reason) in reasons.iter().enumerate() {
                let mut rejected = Fact::new(event, FactKind::HandoverRejected);
                rejected.label = Some(reason.clone());
                // 1 on the first reason only: the sum of `count` is the number of rejections.
                rejected.count = Some(i64::from(n == 0));
                out.push(rejected);
            }
        }
        EventKind::TransitionStarted { .. }
        | EventKind::NodeRelocked { .. }
        | EventKind::ParticipantsChanged { .. }
        | EventKind::WaiverExpired { .. }
        | EventKind::GoLiveMoved { .. } => {}
    }
    out
}

/// Reaching the milestone that ends post-go-live support completes a handed-over transition.
fn completed(
    workflow: &Workflow,
    state: &TransitionState,
    event: &Event,
    i: usize,
) -> Option<Fact> {
    let support = workflow.support()?;
    let reaches = match event.kind {
        EventKind::MilestoneSignedOff { .. } => true,
        // Unlocking reaches a milestone nobody signs off.
        EventKind::NodeUnlocked { .. } => !matches!(
            &workflow.node(i).kind,
            crate::workflow::NodeKind::Milestone(m) if m.sign_off.is_some()
        ),
        _ => false,
    };
    if support.end != i || !reaches || state.status == TransitionStatus::Completed {
        return None;
    }
    let gate = &state.nodes[workflow.gate()];
    // Accepted in this same write when the gate is not accepted yet in `state`.
    let handed_over = if gate.status == NodeStatus::Accepted {
        gate.updated_at
    } else {
        event.at
    };
    let mut fact = Fact::new(event, FactKind::Completed);
    fact.seconds = Some((event.at - handed_over).num_seconds().max(0));
    fact.flag =
        Some(event.at - handed_over <= chrono::Duration::days(i64::from(support.duration_days)));
    Some(fact)
}
