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

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::ids::{Actor, NodeId, RoleName, WorkflowName};
use crate::workflow::{
    ApprovalPolicy, Approver, EvidenceKind, NodeKind, PROJECT_MANAGER_ROLE, SERVICE_MANAGER_ROLE,
    Workflow,
};

/// Most links (or attachments) one submission may carry.
pub const MAX_LINKS: usize = 50;
/// Longest link accepted.
pub const MAX_LINK_LEN: usize = 2048;
/// Longest free text (evidence text, comment, reason) accepted.
pub const MAX_TEXT_LEN: usize = 64 * 1024;

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

    /// The node itself is finished (its needs may still have been reopened).
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

/// A document given by reference, with the SHA-256 of its content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub uri: String,
    pub sha256: String,
}

/// What a submitter attaches to a deliverable.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    pub links: Vec<String>,
    pub text: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Attachment>,
}

impl Evidence {
    /// Checks bounds; evidence must carry at least a link or some text.
    pub fn parse(links: Vec<String>, text: String) -> Result<Self> {
        Self::parse_with_attachments(links, text, Vec::new())
    }

    /// Checks bounds, with attachments (a uri and the hex SHA-256 of the document each).
    pub fn parse_with_attachments(
        links: Vec<String>,
        text: String,
        attachments: Vec<Attachment>,
    ) -> Result<Self> {
        let invalid = |message: String| Error::InvalidArgument {
            field: "evidence",
            message,
        };
        let links: Vec<String> = links.into_iter().map(|l| l.trim().to_owned()).collect();
        let text = text.trim().to_owned();
        if links.is_empty() && text.is_empty() && attachments.is_empty() {
            return Err(invalid(
                "give at least one link, attachment or some text".into(),
            ));
        }
        if links.len() > MAX_LINKS || attachments.len() > MAX_LINKS {
            return Err(invalid(format!(
                "{} links and {} attachments, the limit is {MAX_LINKS} each",
                links.len(),
                attachments.len()
            )));
        }
        if let Some(bad) = links
            .iter()
            .find(|l| l.is_empty() || l.len() > MAX_LINK_LEN || l.chars().any(char::is_whitespace))
        {
            return Err(invalid(format!(
                "link '{bad}' must be non-empty, without spaces and at most {MAX_LINK_LEN} characters"
            )));
        }
        let mut checked = Vec::with_capacity(attachments.len());
        for a in attachments {
            let uri = a.uri.trim().to_owned();
            let sha256 = a.sha256.trim().to_ascii_lowercase();
            let hex_ok = sha256.len() == 64 && sha256.chars().all(|c| c.is_ascii_hexdigit());
            if uri.is_empty() || uri.len() > MAX_LINK_LEN || !hex_ok {
                return Err(invalid(format!(
                    "attachment '{uri}' needs a uri and the 64 hex digits of its SHA-256"
                )));
            }
            checked.push(Attachment { uri, sha256 });
        }
        check_text("evidence", &text)?;
        Ok(Self {
            links,
            text,
            attachments: checked,
        })
    }

    fn has(&self, kind: EvidenceKind) -> bool {
        match kind {
            EvidenceKind::Link => !self.links.is_empty(),
            EvidenceKind::Text => !self.text.is_empty(),
            EvidenceKind::Attachment => !self.attachments.is_empty(),
        }
    }
}

fn check_text(field: &'static str, text: &str) -> Result<()> {
    if text.len() > MAX_TEXT_LEN {
        return Err(Error::InvalidArgument {
            field,
            message: format!("{} bytes, the limit is {MAX_TEXT_LEN}", text.len()),
        });
    }
    Ok(())
}

/// A submission must carry every kind of evidence its deliverable requires.
fn check_evidence(workflow: &Workflow, i: usize, evidence: &Evidence) -> Result<()> {
    let node = workflow.node(i);
    let Some(d) = node.deliverable() else {
        return Ok(());
    };
    let missing: Vec<String> = d
        .evidence
        .iter()
        .filter(|req| !evidence.has(req.kind))
        .map(|req| {
            let kind = match req.kind {
                EvidenceKind::Link => "a link",
                EvidenceKind::Text => "text",
                EvidenceKind::Attachment => "an attachment",
            };
            if req.description.is_empty() {
                kind.to_owned()
            } else {
                format!("{kind} ({})", req.description)
            }
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(Error::InvalidArgument {
        field: "evidence",
        message: format!(
            "deliverable '{}' needs evidence: {}",
            node.id,
            missing.join("; ")
        ),
    })
}

/// Named people for each role of one transition.
pub type Participants = BTreeMap<RoleName, Vec<Actor>>;

/// What does not change after the start: the service, the workflow version, the people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransitionMeta {
    pub workflow: WorkflowName,
    pub workflow_version: u32,
    pub service_name: String,
    pub service_version: String,
    pub project_manager: Actor,
    pub service_manager: Actor,
    pub target_go_live: NaiveDate,
    /// People for workflow roles other than the project and service manager.
    pub participants: Participants,
}

impl TransitionMeta {
    /// The people who act for `role` in this transition (built-in roles included).
    pub fn people_for(&self, role: &RoleName) -> Vec<Actor> {
        match role.as_str() {
            PROJECT_MANAGER_ROLE => vec![self.project_manager.clone()],
            SERVICE_MANAGER_ROLE => vec![self.service_manager.clone()],
            _ => self.participants.get(role).cloned().unwrap_or_default(),
        }
    }

    /// Whether `actor` may act for `approver`. A role nobody was named for is open to anyone
    /// until access control (identity and roles) arrives.
    pub fn may_act_for(&self, approver: &Approver, actor: &Actor) -> bool {
        match approver {
            Approver::Person(p) => p == actor,
            Approver::Role(role) => {
                let people = self.people_for(role);
                people.is_empty() || people.contains(actor)
            }
        }
    }

    /// Checks the meta against the workflow it will run on.
    pub fn check(&self, workflow: &Workflow) -> Result<()> {
        check_service_field("service name", &self.service_name)?;
        check_service_field("service version", &self.service_version)?;
        for role in self.participants.keys() {
            if !workflow.has_role(role.as_str()) {
                return Err(Error::InvalidArgument {
                    field: "participants",
                    message: format!(
                        "role '{role}' is not declared by workflow '{}'",
                        workflow.name()
                    ),
                });
            }
            if role.as_str() == PROJECT_MANAGER_ROLE || role.as_str() == SERVICE_MANAGER_ROLE {
                return Err(Error::InvalidArgument {
                    field: "participants",
                    message: format!("role '{role}' is set by its own field, not as a participant"),
                });
            }
        }
        Ok(())
    }
}

fn check_service_field(field: &'static str, value: &str) -> Result<()> {
    if value.trim().is_empty() || value.trim() != value {
        return Err(Error::InvalidArgument {
            field,
            message: "must be non-empty without surrounding spaces".into(),
        });
    }
    if value.len() > 200 || value.chars().any(char::is_control) {
        return Err(Error::InvalidArgument {
            field,
            message: "must be at most 200 characters without control characters".into(),
        });
    }
    Ok(())
}

/// One node's state in one transition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeState {
    pub status: NodeStatus,
    /// Evidence of the latest submission.
    pub evidence: Option<Evidence>,
    /// Latest review comment, sign-off comment or rejection reason.
    pub comment: Option<String>,
    /// Who last acted on this node (derived changes keep the previous actor).
    pub actor: Option<Actor>,
    /// Who made the latest submission.
    pub submitted_by: Option<Actor>,
    /// Distinct approvers of the latest submission so far.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvals: Vec<Actor>,
    pub updated_at: DateTime<Utc>,
}

impl NodeState {
    fn new(at: DateTime<Utc>) -> Self {
        Self {
            status: NodeStatus::Locked,
            evidence: None,
            comment: None,
            actor: None,
            submitted_by: None,
            approvals: Vec::new(),
            updated_at: at,
        }
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
}

/// An attributed, append-only fact. `seq` is 1-based within the transition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub seq: u64,
    pub at: DateTime<Utc>,
    pub actor: Actor,
    pub kind: EventKind,
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
    },
    /// An approval that does not meet the policy yet.
    ApprovalRecorded {
        node: NodeId,
        comment: String,
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
        }
    }
}

/// Whether the distinct `approvers` meet `policy` (each already allowed by some entry).
pub fn policy_met(policy: &ApprovalPolicy, approvers: &[Actor], meta: &TransitionMeta) -> bool {
    match policy {
        ApprovalPolicy::AnyOf(_) => !approvers.is_empty(),
        ApprovalPolicy::Quorum { k, .. } => approvers.len() >= *k as usize,
        ApprovalPolicy::AllOf(entries) => {
            // Each entry needs its own person: a bipartite matching of entries to approvers.
            let mut taken: Vec<Option<usize>> = vec![None; approvers.len()];
            (0..entries.len()).all(|e| {
                let mut seen = vec![false; approvers.len()];
                augment(e, entries, approvers, meta, &mut taken, &mut seen)
            })
        }
    }
}

fn augment(
    entry: usize,
    entries: &[Approver],
    approvers: &[Actor],
    meta: &TransitionMeta,
    taken: &mut [Option<usize>],
    seen: &mut [bool],
) -> bool {
    for (j, person) in approvers.iter().enumerate() {
        if seen[j] || !meta.may_act_for(&entries[entry], person) {
            continue;
        }
        seen[j] = true;
        let free = match taken[j] {
            None => true,
            Some(other) => augment(other, entries, approvers, meta, taken, seen),
        };
        if free {
            taken[j] = Some(entry);
            return true;
        }
    }
    false
}

impl TransitionState {
    /// Starts a transition: the `TransitionStarted` event and the unlocks it causes.
    pub fn start(
        workflow: &Workflow,
        meta: TransitionMeta,
        actor: Actor,
        at: DateTime<Utc>,
    ) -> Result<(Self, Vec<Event>)> {
        meta.check(workflow)?;
        let mut state = Self::empty(workflow, meta.clone(), at);
        let first = Event {
            seq: 1,
            at,
            actor,
            kind: EventKind::TransitionStarted { meta },
        };
        let events = state.commit(workflow, first)?;
        Ok((state, events))
    }

    fn empty(workflow: &Workflow, meta: TransitionMeta, at: DateTime<Utc>) -> Self {
        Self {
            meta,
            status: TransitionStatus::Active,
            nodes: vec![NodeState::new(at); workflow.nodes().len()],
            seq: 0,
            created_at: at,
            updated_at: at,
        }
    }

    /// Rebuilds the state from its full event log.
    pub fn replay(workflow: &Workflow, events: &[Event]) -> Result<Self> {
        let Some(Event {
            kind: EventKind::TransitionStarted { meta },
            at,
            ..
        }) = events.first()
        else {
            return Err(Error::FailedPrecondition(
                "event log does not begin with transition_started".into(),
            ));
        };
        let mut state = Self::empty(workflow, meta.clone(), *at);
        for event in events {
            state.apply(workflow, event)?;
        }
        Ok(state)
    }

    /// Decides `command` and returns the new state with the events that lead to it; `self` is untouched.
    pub fn execute(
        &self,
        workflow: &Workflow,
        command: Command,
        actor: Actor,
        at: DateTime<Utc>,
    ) -> Result<(Self, Vec<Event>)> {
        let kind = self.decide(workflow, command, &actor)?;
        let mut next = self.clone();
        let event = Event {
            seq: self.seq + 1,
            at,
            actor,
            kind,
        };
        let events = next.commit(workflow, event)?;
        Ok((next, events))
    }

    /// Applies `event`, then the derived events it causes; returns all of them.
    fn commit(&mut self, workflow: &Workflow, event: Event) -> Result<Vec<Event>> {
        self.apply(workflow, &event)?;
        let mut events = vec![event];
        self.settle(workflow, &mut events)?;
        Ok(events)
    }

    /// Emits unlock/relock events until every node agrees with its needs; one topological pass suffices.
    fn settle(&mut self, workflow: &Workflow, events: &mut Vec<Event>) -> Result<()> {
        let Some(cause) = events.last().cloned() else {
            return Ok(());
        };
        let mut done = vec![false; workflow.nodes().len()];
        for (i, node) in workflow.nodes().iter().enumerate() {
            let needs_done = node.needs.iter().all(|&j| done[j]);
            let status = self.nodes[i].status;
            let derived = match (status, needs_done) {
                (NodeStatus::Locked, true) => Some(EventKind::NodeUnlocked {
                    node: node.id.clone(),
                }),
                (NodeStatus::Open | NodeStatus::Reached, false) => Some(EventKind::NodeRelocked {
                    node: node.id.clone(),
                }),
                _ => None,
            };
            if let Some(kind) = derived {
                let event = Event {
                    seq: self.seq + 1,
                    at: cause.at,
                    actor: cause.actor.clone(),
                    kind,
                };
                self.apply(workflow, &event)?;
                events.push(event);
            }
            done[i] = needs_done && !self.blocks(workflow, i);
        }
        Ok(())
    }

    /// Reaching the milestone that ends post-go-live support completes the transition.
    fn complete_if_support_ended(&mut self, workflow: &Workflow, i: usize) {
        if workflow.support().is_some_and(|s| s.end == i)
            && self.nodes[i].status == NodeStatus::Reached
        {
            self.status = TransitionStatus::Completed;
        }
    }

    /// Folds one event into the state. Refuses events that do not fit (a corrupt log).
    pub fn apply(&mut self, workflow: &Workflow, event: &Event) -> Result<()> {
        if event.seq != self.seq + 1 {
            return Err(Error::FailedPrecondition(format!(
                "event {} out of order: expected {}",
                event.seq,
                self.seq + 1
            )));
        }
        let node_at = |id: &NodeId| {
            workflow
                .position(id.as_str())
                .ok_or_else(|| Error::UnknownNode {
                    kind: "node",
                    id: id.to_string(),
                    workflow: workflow.name().to_string(),
                })
        };
        let touch = |state: &mut Self, i: usize, status: NodeStatus, by_actor: bool| {
            let node = &mut state.nodes[i];
            node.status = status;
            node.updated_at = event.at;
            if by_actor {
                node.actor = Some(event.actor.clone());
            }
        };
        match &event.kind {
            EventKind::TransitionStarted { .. } => {}
            EventKind::DeliverableSubmitted { node, evidence } => {
                let i = node_at(node)?;
                touch(self, i, NodeStatus::Submitted, true);
                self.nodes[i].evidence = Some(evidence.clone());
                self.nodes[i].submitted_by = Some(event.actor.clone());
                self.nodes[i].approvals.clear();
            }
            EventKind::DeliverableApproved { node, comment }
            | EventKind::ApprovalRecorded { node, comment } => {
                let i = node_at(node)?;
                let status = if matches!(event.kind, EventKind::DeliverableApproved { .. }) {
                    NodeStatus::Approved
                } else {
                    NodeStatus::Submitted
                };
                touch(self, i, status, true);
                self.nodes[i].comment = non_empty(comment);
                self.nodes[i].approvals.push(event.actor.clone());
            }
            EventKind::ChangesRequested { node, comment } => {
                let i = node_at(node)?;
                touch(self, i, NodeStatus::ChangesRequested, true);
                self.nodes[i].comment = non_empty(comment);
                self.nodes[i].approvals.clear();
            }
            EventKind::MilestoneSignedOff { node, comment } => {
                let i = node_at(node)?;
                touch(self, i, NodeStatus::Reached, true);
                self.nodes[i].comment = non_empty(comment);
                self.complete_if_support_ended(workflow, i);
            }
            EventKind::NodeUnlocked { node } => {
                let i = node_at(node)?;
                let status = match &workflow.node(i).kind {
                    NodeKind::Milestone(m) if m.sign_off.is_some() => NodeStatus::Open,
                    NodeKind::Milestone(_) => NodeStatus::Reached,
                    NodeKind::Deliverable(_) | NodeKind::Gate => NodeStatus::Open,
                };
                touch(self, i, status, false);
                self.complete_if_support_ended(workflow, i);
            }
            EventKind::NodeRelocked { node } => {
                let i = node_at(node)?;
                touch(self, i, NodeStatus::Locked, false);
            }
            EventKind::HandoverAccepted { comment } => {
                let i = workflow.gate();
                touch(self, i, NodeStatus::Accepted, true);
                self.nodes[i].comment = non_empty(comment);
                self.status = TransitionStatus::HandedOver;
            }
            EventKind::HandoverRejected { reasons, reopened } => {
                let gate = workflow.gate();
                self.nodes[gate].actor = Some(event.actor.clone());
                self.nodes[gate].comment = Some(reasons.join("; "));
                for node in reopened {
                    let i = node_at(node)?;
                    touch(self, i, NodeStatus::ChangesRequested, true);
                    self.nodes[i].approvals.clear();
                    self.nodes[i].comment =
                        Some(format!("handover rejected: {}", reasons.join("; ")));
                }
            }
        }
        self.seq = event.seq;
        self.updated_at = event.at;
        Ok(())
    }

    /// Turns a command into its primary event, or says why it cannot happen now.
    fn decide(&self, workflow: &Workflow, command: Command, actor: &Actor) -> Result<EventKind> {
        match command {
            Command::Submit { node, evidence } => {
                let (i, id) = self.deliverable(workflow, &node)?;
                match self.nodes[i].status {
                    NodeStatus::Open | NodeStatus::ChangesRequested => {
                        check_evidence(workflow, i, &evidence)?;
                        Ok(EventKind::DeliverableSubmitted { node: id, evidence })
                    }
                    NodeStatus::Locked => Err(self.locked_error(workflow, i, "submitted")),
                    status => Err(Error::FailedPrecondition(format!(
                        "deliverable '{id}' cannot be submitted: it is {}",
                        status.as_str()
                    ))),
                }
            }
            Command::Review {
                node,
                decision,
                comment,
            } => {
                check_text("comment", &comment)?;
                let comment = comment.trim().to_owned();
                let (i, id) = self.deliverable(workflow, &node)?;
                let status = self.nodes[i].status;
                if status != NodeStatus::Submitted {
                    let hint = match status {
                        NodeStatus::Locked | NodeStatus::Open | NodeStatus::ChangesRequested => {
                            ": it has not been submitted"
                        }
                        _ => "",
                    };
                    return Err(Error::FailedPrecondition(format!(
                        "deliverable '{id}' cannot be reviewed: it is {}{hint}",
                        status.as_str()
                    )));
                }
                let policy = &workflow
                    .node(i)
                    .deliverable()
                    .ok_or_else(|| {
                        Error::FailedPrecondition(format!("'{id}' is not a deliverable"))
                    })?
                    .approval;
                if !policy
                    .approvers()
                    .iter()
                    .any(|a| self.meta.may_act_for(a, actor))
                {
                    return Err(Error::NotPermitted(format!(
                        "{actor} may not review deliverable '{id}': its approval is {policy}{}",
                        self.named_people(policy)
                    )));
                }
                match decision {
                    ReviewDecision::RequestChanges if comment.is_empty() => {
                        Err(Error::InvalidArgument {
                            field: "comment",
                            message: "say what must change when requesting changes".into(),
                        })
                    }
                    ReviewDecision::RequestChanges => {
                        Ok(EventKind::ChangesRequested { node: id, comment })
                    }
                    ReviewDecision::Approve => {
                        let node = &self.nodes[i];
                        if node.submitted_by.as_ref() == Some(actor) {
                            return Err(Error::NotPermitted(format!(
                                "{actor} submitted deliverable '{id}' and so may not approve it"
                            )));
                        }
                        if node.approvals.contains(actor) {
                            return Err(Error::FailedPrecondition(format!(
                                "{actor} already approved this submission of '{id}'; it needs {} distinct approvers ({policy})",
                                policy.needed()
                            )));
                        }
                        let mut approvers = node.approvals.clone();
                        approvers.push(actor.clone());
                        if policy_met(policy, &approvers, &self.meta) {
                            Ok(EventKind::DeliverableApproved { node: id, comment })
                        } else {
                            Ok(EventKind::ApprovalRecorded { node: id, comment })
                        }
                    }
                }
            }
            Command::SignOff { node, comment } => {
                check_text("comment", &comment)?;
                let i = workflow.position(&node).ok_or_else(|| Error::UnknownNode {
                    kind: "milestone",
                    id: node.clone(),
                    workflow: workflow.name().to_string(),
                })?;
                let n = workflow.node(i);
                let NodeKind::Milestone(m) = &n.kind else {
                    return Err(Error::FailedPrecondition(format!(
                        "'{node}' is a {}, not a milestone",
                        n.kind.label()
                    )));
                };
                let Some(role) = &m.sign_off else {
                    return Err(Error::FailedPrecondition(format!(
                        "milestone '{node}' has no sign-off: it is reached when everything it needs is done"
                    )));
                };
                if !self.meta.may_act_for(&Approver::Role(role.clone()), actor) {
                    return Err(Error::NotPermitted(format!(
                        "{actor} may not sign off milestone '{node}': that is for role {role}{}",
                        self.named(role)
                    )));
                }
                match self.nodes[i].status {
                    NodeStatus::Open => Ok(EventKind::MilestoneSignedOff {
                        node: n.id.clone(),
                        comment: comment.trim().to_owned(),
                    }),
                    NodeStatus::Locked => Err(Error::FailedPrecondition(format!(
                        "milestone '{node}' cannot be signed off yet: it waits on {}",
                        self.waiting_on(workflow, i)
                    ))),
                    status => Err(Error::FailedPrecondition(format!(
                        "milestone '{node}' is already {}",
                        status.as_str()
                    ))),
                }
            }
            Command::AcceptHandover { comment } => {
                check_text("comment", &comment)?;
                self.require_open_gate(workflow, "accepted")?;
                Ok(EventKind::HandoverAccepted {
                    comment: comment.trim().to_owned(),
                })
            }
            Command::RejectHandover { reasons, reopen } => {
                let reasons: Vec<String> = reasons
                    .iter()
                    .map(|r| r.trim().to_owned())
                    .filter(|r| !r.is_empty())
                    .collect();
                if reasons.is_empty() {
                    return Err(Error::InvalidArgument {
                        field: "reasons",
                        message: "give at least one reason for rejecting the handover".into(),
                    });
                }
                check_text("reasons", &reasons.join("\n"))?;
                if reopen.is_empty() {
                    return Err(Error::InvalidArgument {
                        field: "reopen_deliverables",
                        message: "name at least one deliverable to reopen".into(),
                    });
                }
                self.require_open_gate(workflow, "rejected")?;
                let mut reopened: Vec<NodeId> = Vec::with_capacity(reopen.len());
                for node in &reopen {
                    let (i, id) = self.deliverable(workflow, node)?;
                    if reopened.contains(&id) {
                        continue;
                    }
                    if !workflow.gate_ancestors().contains(&i) {
                        return Err(Error::FailedPrecondition(format!(
                            "deliverable '{id}' is not before the gate, so the handover cannot reopen it"
                        )));
                    }
                    reopened.push(id);
                }
                Ok(EventKind::HandoverRejected { reasons, reopened })
            }
        }
    }

    /// ` (NAME, NAME)` for a role with named people, or nothing.
    fn named(&self, role: &RoleName) -> String {
        let people = self.meta.people_for(role);
        if people.is_empty() {
            return String::new();
        }
        let names: Vec<&str> = people.iter().map(Actor::as_str).collect();
        format!(" ({})", names.join(", "))
    }

    /// `; named: ...` listing the people who may act for a policy's roles.
    fn named_people(&self, policy: &ApprovalPolicy) -> String {
        let mut names: Vec<String> = Vec::new();
        for a in policy.approvers() {
            if let Approver::Role(role) = a {
                names.extend(self.meta.people_for(role).iter().map(ToString::to_string));
            }
        }
        if names.is_empty() {
            String::new()
        } else {
            format!("; named for it: {}", names.join(", "))
        }
    }

    fn deliverable(&self, workflow: &Workflow, id: &str) -> Result<(usize, NodeId)> {
        let unknown = || Error::UnknownNode {
            kind: "deliverable",
            id: id.to_owned(),
            workflow: workflow.name().to_string(),
        };
        let i = workflow.position(id).ok_or_else(unknown)?;
        let node = workflow.node(i);
        match node.kind {
            NodeKind::Deliverable(_) => Ok((i, node.id.clone())),
            _ => Err(Error::FailedPrecondition(format!(
                "'{id}' is a {}, not a deliverable",
                node.kind.label()
            ))),
        }
    }

    /// Whether node `i` holds up what comes after it: not done, and not optional.
    pub fn blocks(&self, workflow: &Workflow, i: usize) -> bool {
        !self.nodes[i].status.is_done() && workflow.node(i).required
    }

    /// The needs of node `i` that are not done, as `'id' (status)`.
    fn waiting_on(&self, workflow: &Workflow, i: usize) -> String {
        let waiting: Vec<String> = workflow
            .node(i)
            .needs
            .iter()
            .filter(|&&j| self.blocks(workflow, j))
            .map(|&j| {
                format!(
                    "'{}' ({})",
                    workflow.node(j).id,
                    self.nodes[j].status.as_str()
                )
            })
            .collect();
        if waiting.is_empty() {
            "work before it that was reopened".to_owned()
        } else {
            waiting.join(", ")
        }
    }

    fn locked_error(&self, workflow: &Workflow, i: usize, verb: &str) -> Error {
        Error::FailedPrecondition(format!(
            "deliverable '{}' is locked and cannot be {verb}: it waits on {}",
            workflow.node(i).id,
            self.waiting_on(workflow, i)
        ))
    }

    fn require_open_gate(&self, workflow: &Workflow, verb: &str) -> Result<()> {
        let gate = workflow.gate();
        let id = &workflow.node(gate).id;
        match self.nodes[gate].status {
            NodeStatus::Open => Ok(()),
            NodeStatus::Accepted => Err(Error::FailedPrecondition(format!(
                "the handover at gate '{id}' was already accepted"
            ))),
            status => {
                let decision = crate::gate::GateDecision::of(workflow, self);
                Err(Error::FailedPrecondition(format!(
                    "the handover cannot be {verb}: gate '{id}' is {} ({})",
                    if status == NodeStatus::Locked {
                        "closed"
                    } else {
                        status.as_str()
                    },
                    decision.summary()
                )))
            }
        }
    }
}

fn non_empty(text: &str) -> Option<String> {
    (!text.is_empty()).then(|| text.to_owned())
}

#[cfg(test)]
mod tests;
