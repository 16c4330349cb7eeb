//! Notices: what a notification says about an event, decided when the event is written (so the
//! outbox row holds it whole, whatever happens to the transition later): what happened, to which
//! service and version, who must act next and by when, and who should hear of it. The notifiers
//! (`opsgate-notify`) only render and deliver them.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::Actor;
use crate::stalled::due_date;
use crate::transition::{Event, EventKind, TransitionState};
use crate::workflow::{Approver, NodeKind, Workflow};

/// Why people are told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    /// A deliverable was submitted: its approvers review it.
    DeliverableSubmitted,
    /// A reviewer asked for changes: its owner reworks it.
    ChangesRequested,
    /// Everything a deliverable needs is done: its owner can start.
    DeliverableUnlocked,
    /// Every deliverable before the gate is done: the service manager decides.
    GateOpen,
    HandoverAccepted,
    HandoverRejected,
    DeliverableWaived,
    /// The target go-live moved: every participant's dates move with it.
    GoLiveMoved,
    /// Work is due soon.
    Reminder,
    /// Work is past its due date.
    Overdue,
    /// Overdue past the grace period: the SMO steps in.
    Escalation,
}

impl NoticeKind {
    pub const ALL: [NoticeKind; 11] = [
        NoticeKind::DeliverableSubmitted,
        NoticeKind::ChangesRequested,
        NoticeKind::DeliverableUnlocked,
        NoticeKind::GateOpen,
        NoticeKind::HandoverAccepted,
        NoticeKind::HandoverRejected,
        NoticeKind::DeliverableWaived,
        NoticeKind::GoLiveMoved,
        NoticeKind::Reminder,
        NoticeKind::Overdue,
        NoticeKind::Escalation,
    ];

    /// The spelling in configuration routes and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            NoticeKind::DeliverableSubmitted => "deliverable_submitted",
            NoticeKind::ChangesRequested => "changes_requested",
            NoticeKind::DeliverableUnlocked => "deliverable_unlocked",
            NoticeKind::GateOpen => "gate_open",
            NoticeKind::HandoverAccepted => "handover_accepted",
            NoticeKind::HandoverRejected => "handover_rejected",
            NoticeKind::DeliverableWaived => "deliverable_waived",
            NoticeKind::GoLiveMoved => "go_live_moved",
            NoticeKind::Reminder => "reminder",
            NoticeKind::Overdue => "overdue",
            NoticeKind::Escalation => "escalation",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == value)
    }
}

/// One notice: everything a message about one event says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    pub kind: NoticeKind,
    pub transition_id: String,
    /// The event's sequence number in its transition.
    pub seq: u64,
    pub at: DateTime<Utc>,
    pub service_name: String,
    pub service_version: String,
    pub workflow: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_title: Option<String>,
    /// Who did it.
    pub actor: String,
    /// One line: what happened.
    pub headline: String,
    /// Who must act next (the first named is the one a message names), and for what.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub act_next: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// By when, where the work has a due date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due: Option<NaiveDate>,
    /// Who should hear of it (people; the SMO for an escalation).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recipients: Vec<String>,
    /// The mail addresses of recipients who are contacts of the workflow (the SMO's mailbox)
    /// rather than people opsgate keeps contact details for.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub mailboxes: BTreeMap<String, String>,
}

impl Notice {
    /// A notice of `kind` about transition `transition_id` (`state`) as it is, without words
    /// yet: the caller says what happened and who must act.
    fn base(
        state: &TransitionState,
        transition_id: &str,
        seq: u64,
        at: DateTime<Utc>,
        actor: String,
        kind: NoticeKind,
    ) -> Self {
        let meta = &state.meta;
        Self {
            kind,
            transition_id: transition_id.to_owned(),
            seq,
            at,
            service_name: meta.service_name.clone(),
            service_version: meta.service_version.clone(),
            workflow: meta.workflow.to_string(),
            node_id: None,
            node_title: None,
            actor,
            headline: String::new(),
            act_next: Vec::new(),
            action: None,
            due: None,
            recipients: Vec::new(),
            mailboxes: BTreeMap::new(),
        }
    }

    /// A notice of `kind` about node `i` of the transition, from opsgate itself (a timer) at
    /// `at`.
    pub fn about(
        workflow: &Workflow,
        state: &TransitionState,
        transition_id: &str,
        i: usize,
        kind: NoticeKind,
        at: DateTime<Utc>,
    ) -> Self {
        let mut n = Self::base(
            state,
            transition_id,
            state.seq,
            at,
            crate::SYSTEM_ACTOR.to_owned(),
            kind,
        );
        n.node_id = Some(workflow.node(i).id.to_string());
        n.node_title = Some(workflow.node(i).title.clone());
        n
    }
}

impl Notice {
    /// Adds the workflow's contacts for the role named `role` to the recipients, with their
    /// mailboxes (how the SMO, or a role nobody fills, is reached).
    pub fn reach_contacts(&mut self, workflow: &Workflow, role: &str) {
        for c in workflow
            .contacts()
            .iter()
            .filter(|c| c.role.as_ref().is_some_and(|r| r.as_str() == role))
        {
            self.recipients.push(c.name.clone());
            if let Some(mail) = mailbox_of(c) {
                self.mailboxes.insert(c.name.clone(), mail);
            }
        }
    }
}

/// The mail address among a workflow contact's channels (`mail: ...` or `email: ...`).
pub fn mailbox_of(contact: &crate::workflow::Contact) -> Option<String> {
    contact.channels.iter().find_map(|c| {
        let (kind, value) = c.split_once(':')?;
        matches!(kind.trim().to_ascii_lowercase().as_str(), "mail" | "email")
            .then(|| value.trim().to_owned())
            .filter(|v| v.contains('@'))
    })
}

/// The names of `people`, each once, in order.
pub(crate) fn names(people: &[Actor]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for p in people {
        let name = p.to_string();
        if !out.contains(&name) {
            out.push(name);
        }
    }
    out
}

/// Everyone with a part in the transition: the managers and the people named for its roles.
fn everyone(state: &TransitionState) -> Vec<Actor> {
    let meta = &state.meta;
    let mut people = vec![meta.project_manager.clone(), meta.service_manager.clone()];
    for named in meta.participants.values() {
        people.extend(named.iter().cloned());
    }
    people
}

/// The people who may approve deliverable `i` in `state`.
pub fn approvers_of(workflow: &Workflow, state: &TransitionState, i: usize) -> Vec<Actor> {
    let Some(d) = workflow.node(i).deliverable() else {
        return Vec::new();
    };
    let mut people = Vec::new();
    for approver in d.approval.approvers() {
        match approver {
            Approver::Person(p) => people.push(p.clone()),
            Approver::Role(role) => people.extend(state.meta.people_for(role)),
        }
    }
    people
}

/// The people who own deliverable `i` in `state`.
pub fn owners_of(workflow: &Workflow, state: &TransitionState, i: usize) -> Vec<Actor> {
    workflow
        .node(i)
        .deliverable()
        .map(|d| state.meta.people_for(&d.owner))
        .unwrap_or_default()
}

/// The notices `events` make, in `state` (the transition after them), `transition_id` its id.
/// Derived unlocks of milestones and relocks make none.
pub fn notices(
    workflow: &Workflow,
    state: &TransitionState,
    transition_id: &str,
    events: &[Event],
) -> Vec<Notice> {
    events
        .iter()
        .filter_map(|e| notice(workflow, state, transition_id, e))
        .collect()
}

fn notice(
    workflow: &Workflow,
    state: &TransitionState,
    transition_id: &str,
    event: &Event,
) -> Option<Notice> {
    let meta = &state.meta;
    let node = |id: &crate::ids::NodeId| workflow.position(id.as_str());
    let due = |i: usize| due_date(workflow, state, i);
    let mut n = Notice::base(
        state,
        transition_id,
        event.seq,
        event.at,
        event.actor.to_string(),
        NoticeKind::HandoverAccepted,
    );
    let at_node = |n: &mut Notice, i: usize| {
        n.node_id = Some(workflow.node(i).id.to_string());
        n.node_title = Some(workflow.node(i).title.clone());
        n.due = due(i);
    };
    match &event.kind {
        EventKind::DeliverableSubmitted { node: id, .. } => {
            let i = node(id)?;
            at_node(&mut n, i);
            n.kind = NoticeKind::DeliverableSubmitted;
            n.headline = format!(
                "'{}' was submitted by {}",
                workflow.node(i).title,
                event.actor
            );
            n.act_next = names(&approvers_of(workflow, state, i));
            n.action = Some(format!("review '{}'", workflow.node(i).title));
            n.recipients = n.act_next.clone();
        }
        EventKind::ChangesRequested { node: id, comment } => {
            let i = node(id)?;
            at_node(&mut n, i);
            n.kind = NoticeKind::ChangesRequested;
            n.headline = format!(
                "{} asked for changes to '{}': {}",
                event.actor,
                workflow.node(i).title,
                comment
            );
            n.act_next = names(&owners_of(workflow, state, i));
            n.action = Some(format!("rework and resubmit '{}'", workflow.node(i).title));
            n.recipients = n.act_next.clone();
        }
        EventKind::NodeUnlocked { node: id } => {
            let i = node(id)?;
            match workflow.node(i).kind {
                NodeKind::Deliverable(_) => {
                    at_node(&mut n, i);
                    n.kind = NoticeKind::DeliverableUnlocked;
                    n.headline = format!(
                        "'{}' can start: everything it needs is done",
                        workflow.node(i).title
                    );
                    n.act_next = names(&owners_of(workflow, state, i));
                    n.action = Some(format!("deliver '{}'", workflow.node(i).title));
                }
                NodeKind::Gate => {
                    at_node(&mut n, i);
                    n.kind = NoticeKind::GateOpen;
                    n.headline = format!(
                        "the operations gate of {} {} is open: every deliverable before it is done",
                        meta.service_name, meta.service_version
                    );
                    n.act_next = names(std::slice::from_ref(&meta.service_manager));
                    n.action = Some("accept or reject the handover".to_owned());
                }
                NodeKind::Milestone(_) => return None,
            }
            n.recipients = n.act_next.clone();
        }
        EventKind::HandoverAccepted { .. } => {
            n.kind = NoticeKind::HandoverAccepted;
            n.headline = format!(
                "{} accepted the handover of {} {}: it is in operation",
                event.actor, meta.service_name, meta.service_version
            );
            n.recipients = names(&everyone(state));
        }
        EventKind::HandoverRejected { reasons, reopened } => {
            n.kind = NoticeKind::HandoverRejected;
            n.headline = format!(
                "{} rejected the handover of {} {}: {}",
                event.actor,
                meta.service_name,
                meta.service_version,
                reasons.join("; ")
            );
            let mut owners = Vec::new();
            for id in reopened {
                if let Some(i) = node(id) {
                    owners.extend(owners_of(workflow, state, i));
                }
            }
            n.act_next = names(&owners);
            n.action = Some(format!(
                "redo {}",
                reopened
                    .iter()
                    .map(|r| format!("'{r}'"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            n.recipients = names(&everyone(state));
        }
        EventKind::DeliverableWaived {
            node: id,
            reason,
            until,
        } => {
            let i = node(id)?;
            at_node(&mut n, i);
            n.kind = NoticeKind::DeliverableWaived;
            n.headline = format!(
                "{} waived '{}' until {}: {}",
                event.actor,
                workflow.node(i).title,
                until.date_naive(),
                reason
            );
            let mut people = owners_of(workflow, state, i);
            people.extend(approvers_of(workflow, state, i));
            n.recipients = names(&people);
        }
        EventKind::GoLiveMoved { from, to, reason } => {
            n.kind = NoticeKind::GoLiveMoved;
            n.headline = format!(
                "{} moved the go-live of {} {} from {from} to {to}: {reason}",
                event.actor, meta.service_name, meta.service_version
            );
            n.recipients = names(&everyone(state));
        }
        EventKind::TransitionStarted { .. }
        | EventKind::DeliverableApproved { .. }
        | EventKind::ApprovalRecorded { .. }
        | EventKind::MilestoneSignedOff { .. }
        | EventKind::NodeRelocked { .. }
        | EventKind::ParticipantsChanged { .. }
        | EventKind::WaiverExpired { .. } => return None,
    }
    Some(n)
}
