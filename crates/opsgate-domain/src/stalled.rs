//! Stalled work: what in a transition is stuck, why, since when, and who must act (the named
//! people, or the role nobody was named for). Pure: the caller passes the moment it asks at.

use chrono::{DateTime, Duration, NaiveDate, Utc};

use crate::gate::{WaitingOn, blocker};
use crate::ids::{Actor, NodeId, RoleName};
use crate::transition::{Delegation, NodeStatus, TransitionState, TransitionStatus};
use crate::workflow::{Anchor, Workflow};

/// When work counts as stuck.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StallRules {
    /// A transition with no event for this long, or an open gate not acted on.
    pub idle: Duration,
    /// A submitted deliverable not reviewed for this long.
    pub review: Duration,
    /// A deliverable sent back more often than this.
    pub max_bounces: u32,
}

impl Default for StallRules {
    fn default() -> Self {
        Self {
            idle: Duration::days(7),
            review: Duration::days(5),
            max_bounces: 2,
        }
    }
}

/// Why something is stuck.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StallKind {
    /// No event for longer than the idle threshold.
    Idle,
    /// Past its due date and not done.
    Overdue,
    /// Submitted and not reviewed for longer than the review threshold.
    AwaitingReview,
    /// Sent back more often than allowed.
    Bounced,
    /// The gate is open and the service manager has not accepted or rejected the handover.
    GateNotActedOn,
}

impl StallKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StallKind::Idle => "idle",
            StallKind::Overdue => "overdue",
            StallKind::AwaitingReview => "awaiting_review",
            StallKind::Bounced => "bounced",
            StallKind::GateNotActedOn => "gate_not_acted_on",
        }
    }
}

/// One stuck thing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stall {
    pub kind: StallKind,
    /// The node, unless the whole transition is idle.
    pub node: Option<NodeId>,
    pub title: String,
    pub reason: String,
    pub since: DateTime<Utc>,
    /// Who must act: the people named (deputies in force included for reviews).
    pub must_act: Vec<Actor>,
    /// A role that must act and has nobody named: it needs filling.
    pub unfilled_role: Option<RoleName>,
}

impl Stall {
    /// How late, at `now`.
    pub fn late(&self, now: DateTime<Utc>) -> Duration {
        now - self.since
    }
}

/// The date a node's `due:` offset falls on in this transition.
pub fn due_date(workflow: &Workflow, state: &TransitionState, i: usize) -> Option<NaiveDate> {
    let due = workflow.node(i).due?;
    let anchor = match due.anchor {
        Anchor::Start => state.created_at.date_naive(),
        Anchor::GoLive => state.meta.target_go_live,
    };
    anchor.checked_add_signed(Duration::days(i64::from(due.days)))
}

/// Everything stuck in `state` at `now`, latest first. `deputies` are the delegations that may
/// be in force (their people are named beside the approvers they stand in for).
pub fn stalls(
    workflow: &Workflow,
    state: &TransitionState,
    now: DateTime<Utc>,
    rules: &StallRules,
    deputies: &[Delegation],
) -> Vec<Stall> {
    let mut out = Vec::new();
    if state.status == TransitionStatus::Completed {
        return out;
    }
    let who = |i: usize| -> (Vec<Actor>, Option<RoleName>) {
        match blocker(workflow, state, i).waiting_on {
            WaitingOn::Role { role, people } if people.is_empty() => (Vec::new(), Some(role)),
            WaitingOn::Role { people, .. } => (people, None),
            WaitingOn::Approvals { people, .. } => {
                let mut all = people.clone();
                for d in deputies.iter().filter(|d| d.in_force(now)) {
                    if people.contains(&d.from) && !all.contains(&d.to) {
                        all.push(d.to.clone());
                    }
                }
                (all, None)
            }
            WaitingOn::Nodes(_) => (Vec::new(), None),
        }
    };
    let today = now.date_naive();
    let mut idle_people: Vec<Actor> = Vec::new();
    for (i, node) in workflow.nodes().iter().enumerate() {
        let ns = &state.nodes[i];
        if ns.counts_as_done() || (node.after_go_live && state.status == TransitionStatus::Active) {
            continue;
        }
        let (people, unfilled) = who(i);
        if ns.status != NodeStatus::Locked {
            for p in &people {
                if !idle_people.contains(p) {
                    idle_people.push(p.clone());
                }
            }
        }
        let mut push = |kind, reason: String, since| {
            out.push(Stall {
                kind,
                node: Some(node.id.clone()),
                title: node.title.clone(),
                reason,
                since,
                must_act: people.clone(),
                unfilled_role: unfilled.clone(),
            });
        };
        if let Some(due) = due_date(workflow, state, i)
            && due < today
        {
            let waits = match blocker(workflow, state, i).waiting_on {
                WaitingOn::Nodes(nodes) if !nodes.is_empty() => {
                    let ids: Vec<&str> = nodes.iter().map(NodeId::as_str).collect();
                    format!("; it still waits on {}", ids.join(", "))
                }
                _ => String::new(),
            };
            push(
                StallKind::Overdue,
                format!(
                    "{} '{}' was due {due} and is {}{waits}",
                    node.kind.label(),
                    node.id,
                    ns.status.as_str()
                ),
                due.and_hms_opt(0, 0, 0).map_or(now, |d| d.and_utc()),
            );
        }
        if ns.status == NodeStatus::Submitted && now - ns.updated_at > rules.review {
            push(
                StallKind::AwaitingReview,
                format!(
                    "submitted {} and not reviewed for {} days",
                    ns.updated_at.format("%Y-%m-%d"),
                    (now - ns.updated_at).num_days()
                ),
                ns.updated_at,
            );
        }
        let bounces =
            ns.round.saturating_sub(1) + u32::from(ns.status == NodeStatus::ChangesRequested);
        if bounces > rules.max_bounces {
            push(
                StallKind::Bounced,
                format!(
                    "sent back {bounces} times (more than {})",
                    rules.max_bounces
                ),
                ns.updated_at,
            );
        }
        if i == workflow.gate() && ns.status == NodeStatus::Open && now - ns.updated_at > rules.idle
        {
            push(
                StallKind::GateNotActedOn,
                format!(
                    "the gate opened {} and the handover was neither accepted nor rejected",
                    ns.updated_at.format("%Y-%m-%d")
                ),
                ns.updated_at,
            );
        }
    }
    if now - state.updated_at > rules.idle {
        out.push(Stall {
            kind: StallKind::Idle,
            node: None,
            title: format!("{} {}", state.meta.service_name, state.meta.service_version),
            reason: format!(
                "no event for {} days (since {})",
                (now - state.updated_at).num_days(),
                state.updated_at.format("%Y-%m-%d")
            ),
            since: state.updated_at,
            must_act: idle_people,
            unfilled_role: None,
        });
    }
    out.sort_by_key(|s| s.since);
    out
}
