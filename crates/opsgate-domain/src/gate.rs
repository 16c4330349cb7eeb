//! The gate decision: open, closed or accepted, with every blocking node and who it waits on.

use std::fmt::Write as _;

use crate::ids::{Actor, NodeId, RoleName};
use crate::transition::{NodeStatus, TransitionState};
use crate::workflow::{Approver, NodeKind, SERVICE_MANAGER_ROLE, Workflow};

/// The gate as a CI pipeline sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GateState {
    /// Something before the gate is not done.
    Closed,
    /// Everything before the gate is done; the service manager has yet to accept the handover.
    Open,
    /// The service manager accepted the handover.
    Accepted,
}

impl GateState {
    pub fn as_str(self) -> &'static str {
        match self {
            GateState::Closed => "closed",
            GateState::Open => "open",
            GateState::Accepted => "accepted",
        }
    }
}

/// Whom or what a blocker waits on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaitingOn {
    /// People holding a role (the list may be empty when nobody was named for it).
    Role { role: RoleName, people: Vec<Actor> },
    /// Approvals of a submitted deliverable: its policy, how many it has and needs, and who may still approve.
    Approvals {
        policy: String,
        given: usize,
        needed: usize,
        people: Vec<Actor>,
    },
    /// Earlier nodes that are not done yet.
    Nodes(Vec<NodeId>),
}

/// A node before the gate that is not done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocker {
    pub node: NodeId,
    pub title: String,
    pub kind: &'static str,
    pub status: NodeStatus,
    pub waiting_on: WaitingOn,
}

/// A waiver that counts towards the gate: the deliverable is not done, but counts as done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaiverUse {
    pub node: NodeId,
    pub title: String,
    pub waiver: crate::transition::Waiver,
}

/// Gate state with its explanation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateDecision {
    pub gate: NodeId,
    pub state: GateState,
    /// Blocking nodes in topological order; empty unless the gate is closed.
    pub blockers: Vec<Blocker>,
    /// Who must act next when the gate is open: the service manager.
    pub awaiting_acceptance_by: Option<Actor>,
    /// Deliverables before the gate that count as done only because the SMO waived them.
    pub waivers: Vec<WaiverUse>,
}

impl GateDecision {
    /// Decides the gate of one transition.
    pub fn of(workflow: &Workflow, state: &TransitionState) -> Self {
        let gate = workflow.gate();
        let gate_status = state.nodes[gate].status;
        let blockers = workflow
            .gate_ancestors()
            .iter()
            .filter(|&&i| state.blocks(workflow, i))
            .map(|&i| blocker(workflow, state, i))
            .collect();
        let waivers = workflow
            .gate_ancestors()
            .iter()
            .filter(|&&i| !state.nodes[i].status.is_done())
            .filter_map(|&i| {
                let node = workflow.node(i);
                state.nodes[i].waiver.as_ref().map(|w| WaiverUse {
                    node: node.id.clone(),
                    title: node.title.clone(),
                    waiver: w.clone(),
                })
            })
            .collect();
        let gate_state = match gate_status {
            NodeStatus::Accepted => GateState::Accepted,
            NodeStatus::Open => GateState::Open,
            _ => GateState::Closed,
        };
        Self {
            gate: workflow.node(gate).id.clone(),
            state: gate_state,
            blockers,
            awaiting_acceptance_by: (gate_state == GateState::Open)
                .then(|| state.meta.service_manager.clone()),
            waivers,
        }
    }

    /// True when a deploy may proceed: open or accepted.
    pub fn is_open(&self) -> bool {
        self.state != GateState::Closed
    }

    /// One line for logs and error messages.
    pub fn summary(&self) -> String {
        match self.state {
            GateState::Accepted => "handover accepted".to_owned(),
            GateState::Open => match &self.awaiting_acceptance_by {
                Some(sm) => format!(
                    "all requirements met, waiting on service manager {sm} to accept the handover"
                ),
                None => "all requirements met".to_owned(),
            },
            GateState::Closed => {
                let ids: Vec<&str> = self.blockers.iter().map(|b| b.node.as_str()).collect();
                format!("{} blocking: {}", self.blockers.len(), ids.join(", "))
            }
        }
    }

    /// Multi-line explanation: one line per blocker with its state and who it waits on.
    pub fn explain(&self) -> String {
        let mut out = format!(
            "gate '{}' is {}: {}\n",
            self.gate,
            self.state.as_str(),
            self.summary()
        );
        for b in &self.blockers {
            let _ = writeln!(
                out,
                "  - {} '{}' ({}) is {}, waiting on {}",
                b.kind,
                b.node,
                b.title,
                b.status.as_str(),
                b.waiting_on
            );
        }
        for w in &self.waivers {
            let _ = writeln!(
                out,
                "  - waived: deliverable '{}' ({}) by {} until {}: {}",
                w.node,
                w.title,
                w.waiver.by,
                w.waiver.until.format("%Y-%m-%d %H:%M UTC"),
                w.waiver.reason
            );
        }
        out
    }
}

impl std::fmt::Display for WaitingOn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WaitingOn::Role { role, people } if people.is_empty() => {
                write!(f, "role {role} (nobody named)")
            }
            WaitingOn::Role { role, people } => {
                let names: Vec<&str> = people.iter().map(Actor::as_str).collect();
                write!(f, "role {role}: {}", names.join(", "))
            }
            WaitingOn::Approvals {
                policy,
                given,
                needed,
                people,
            } => {
                write!(f, "approval ({policy}), {given} of {needed} given")?;
                if !people.is_empty() {
                    let names: Vec<&str> = people.iter().map(Actor::as_str).collect();
                    write!(f, "; may approve: {}", names.join(", "))?;
                }
                Ok(())
            }
            WaitingOn::Nodes(nodes) => {
                let ids: Vec<&str> = nodes.iter().map(NodeId::as_str).collect();
                write!(f, "{}", ids.join(", "))
            }
        }
    }
}

/// Node `i` as a blocker: its state and whom or what it waits on.
pub fn blocker(workflow: &Workflow, state: &TransitionState, i: usize) -> Blocker {
    let node = workflow.node(i);
    let status = state.nodes[i].status;
    let role_of = |role: &RoleName| WaitingOn::Role {
        role: role.clone(),
        people: state.meta.people_for(role),
    };
    let waiting_on = match (&node.kind, status) {
        (NodeKind::Deliverable(d), NodeStatus::Open | NodeStatus::ChangesRequested) => {
            role_of(&d.owner)
        }
        (NodeKind::Deliverable(d), NodeStatus::Submitted) => {
            let ns = &state.nodes[i];
            let mut people: Vec<Actor> = Vec::new();
            for a in d.approval.approvers() {
                let named = match a {
                    Approver::Person(p) => vec![p.clone()],
                    Approver::Role(r) => state.meta.people_for(r),
                };
                for p in named {
                    let excluded =
                        ns.submitted_by.as_ref() == Some(&p) || ns.approvals.contains(&p);
                    if !excluded && !people.contains(&p) {
                        people.push(p);
                    }
                }
            }
            WaitingOn::Approvals {
                policy: d.approval.to_string(),
                given: ns.approvals.len(),
                needed: d.approval.needed(),
                people,
            }
        }
        (NodeKind::Milestone(m), NodeStatus::Open) => match &m.sign_off {
            Some(role) => role_of(role),
            None => WaitingOn::Nodes(Vec::new()),
        },
        (NodeKind::Gate, NodeStatus::Open) => match RoleName::parse(SERVICE_MANAGER_ROLE) {
            Ok(role) => role_of(&role),
            Err(_) => WaitingOn::Nodes(Vec::new()),
        },
        _ => WaitingOn::Nodes(
            node.needs
                .iter()
                .filter(|&&j| state.blocks(workflow, j))
                .map(|&j| workflow.node(j).id.clone())
                .collect(),
        ),
    };
    Blocker {
        node: node.id.clone(),
        title: node.title.clone(),
        kind: node.kind.label(),
        status,
        waiting_on,
    }
}
