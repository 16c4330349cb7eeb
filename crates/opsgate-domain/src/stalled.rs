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

/// What the stalled list looks for, kept on the transition row so that a query finds the
/// candidates without reading every state: each is independent of the moment asked at.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StallIndex {
    /// The earliest due date of work not done.
    pub next_due: Option<NaiveDate>,
    /// The earliest submission still waiting for review.
    pub oldest_submission: Option<DateTime<Utc>>,
    /// The most times one deliverable was sent back.
    pub most_bounces: u32,
    /// When the gate opened, while it is open.
    pub gate_open_since: Option<DateTime<Utc>>,
}

impl StallIndex {
    /// The index of `state`: [`stalls`] finds nothing but idleness in a transition whose index
    /// does not qualify.
    pub fn of(workflow: &Workflow, state: &TransitionState) -> Self {
        let mut index = Self::default();
        for (i, node) in workflow.nodes().iter().enumerate() {
            let ns = &state.nodes[i];
            if ns.counts_as_done()
                || (node.after_go_live && state.status == TransitionStatus::Active)
            {
                continue;
            }
            if let Some(due) = due_date(workflow, state, i) {
                index.next_due = Some(index.next_due.map_or(due, |d| d.min(due)));
            }
            if ns.status == NodeStatus::Submitted {
                let at = ns.submitted_at.unwrap_or(ns.updated_at);
                index.oldest_submission = Some(index.oldest_submission.map_or(at, |o| o.min(at)));
            }
            index.most_bounces = index.most_bounces.max(bounces(ns));
            if i == workflow.gate() && ns.status == NodeStatus::Open {
                index.gate_open_since = Some(ns.updated_at);
            }
        }
        index
    }

    /// Whether [`stalls`] can find anything at `now` under `rules` (idleness is the transition
    /// row's own `updated_at`, checked beside this).
    pub fn qualifies(&self, now: DateTime<Utc>, rules: &StallRules) -> bool {
        self.next_due.is_some_and(|d| d < now.date_naive())
            || self
                .oldest_submission
                .is_some_and(|t| now - t > rules.review)
            || self.most_bounces > rules.max_bounces
            || self.gate_open_since.is_some_and(|t| now - t > rules.idle)
    }
}

/// How often a deliverable was sent back: each resubmission followed a request for changes, and
/// so does its current state when it is changes_requested.
fn bounces(ns: &crate::transition::NodeState) -> u32 {
    ns.round.saturating_sub(1) + u32::from(ns.status == NodeStatus::ChangesRequested)
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

/// Who must act on node `i` of `state` at `now`: its owners (or signers) while it is open, its
/// approvers and their deputies in force while it waits on review; or the role that must act and
/// has nobody named. Nobody while it waits on other nodes.
pub fn must_act(
    workflow: &Workflow,
    state: &TransitionState,
    i: usize,
    now: DateTime<Utc>,
    deputies: &[Delegation],
) -> (Vec<Actor>, Option<RoleName>) {
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
    let who = |i: usize| must_act(workflow, state, i, now, deputies);
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
        let submitted = ns.submitted_at.unwrap_or(ns.updated_at);
        if ns.status == NodeStatus::Submitted && now - submitted > rules.review {
            push(
                StallKind::AwaitingReview,
                format!(
                    "submitted {} and not reviewed for {} days",
                    submitted.format("%Y-%m-%d"),
                    (now - submitted).num_days()
                ),
                submitted,
            );
        }
        let bounces = bounces(ns);
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
