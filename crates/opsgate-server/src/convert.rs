//! Conversions between domain/store types and protobuf messages; protobuf types stop here.

use chrono::{DateTime, Utc};
use opsgate_domain::workflow::{ApprovalPolicy, Approver};
use opsgate_domain::{
    Blocker, GateDecision, GateState, Node, NodeKind, NodeStatus, TransitionStatus, WaitingOn,
    Workflow,
};
use opsgate_proto::v1 as pb;
use opsgate_store::{TransitionSummary, TransitionView, WorkflowRecord, WorkflowSummary};

/// A client's timestamp as a moment; `InvalidArgument` on `field` when unset or out of range.
pub(crate) fn moment(
    field: &str,
    at: Option<&prost_types::Timestamp>,
) -> Result<DateTime<Utc>, tonic::Status> {
    let at = at.ok_or_else(|| crate::error::invalid_argument(field, "is required"))?;
    u32::try_from(at.nanos)
        .ok()
        .and_then(|nanos| DateTime::from_timestamp(at.seconds, nanos))
        .ok_or_else(|| crate::error::invalid_argument(field, "is not a valid moment"))
}

pub(crate) fn timestamp(at: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: i32::try_from(at.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

pub(crate) fn node_kind(kind: &NodeKind) -> pb::NodeKind {
    match kind {
        NodeKind::Deliverable(_) => pb::NodeKind::Deliverable,
        NodeKind::Milestone(_) => pb::NodeKind::Milestone,
        NodeKind::Gate => pb::NodeKind::Gate,
    }
}

/// Owner role, and the approver role when the policy is "any of" one role.
fn roles_of(kind: &NodeKind) -> (String, String) {
    match kind {
        NodeKind::Deliverable(d) => {
            let approver = match &d.approval {
                ApprovalPolicy::AnyOf(a) => match a.as_slice() {
                    [Approver::Role(r)] => r.to_string(),
                    _ => String::new(),
                },
                _ => String::new(),
            };
            (d.owner.to_string(), approver)
        }
        NodeKind::Milestone(_) | NodeKind::Gate => (String::new(), String::new()),
    }
}

fn needs_of(wf: &Workflow, n: &Node) -> Vec<String> {
    n.needs.iter().map(|&j| wf.node(j).id.to_string()).collect()
}

fn workflow_node(wf: &Workflow, n: &Node) -> pb::WorkflowNode {
    let (owner_role, approver_role) = roles_of(&n.kind);
    let (approval, template) = match &n.kind {
        NodeKind::Deliverable(d) => (
            d.approval.to_string(),
            d.template.clone().unwrap_or_default(),
        ),
        _ => (String::new(), String::new()),
    };
    let (sign_off_role, meeting) = match &n.kind {
        NodeKind::Milestone(m) => (
            m.sign_off
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            m.meeting
                .map(|m| m.kind.as_str().to_owned())
                .unwrap_or_default(),
        ),
        _ => (String::new(), String::new()),
    };
    pb::WorkflowNode {
        id: n.id.to_string(),
        title: n.title.clone(),
        description: n.description.clone(),
        kind: node_kind(&n.kind).into(),
        owner_role,
        approver_role,
        needs: needs_of(wf, n),
        approval,
        required: n.required,
        due: n.due.map(|d| d.to_string()).unwrap_or_default(),
        checklist: n.checklist.clone(),
        after_go_live: n.after_go_live,
        sign_off_role,
        meeting,
        effort_days: n.effort_days,
        template,
    }
}

pub(crate) fn node_status(status: NodeStatus) -> pb::NodeStatus {
    match status {
        NodeStatus::Locked => pb::NodeStatus::Locked,
        NodeStatus::Open => pb::NodeStatus::Open,
        NodeStatus::Submitted => pb::NodeStatus::Submitted,
        NodeStatus::ChangesRequested => pb::NodeStatus::ChangesRequested,
        NodeStatus::Approved => pb::NodeStatus::Approved,
        NodeStatus::Reached => pb::NodeStatus::Reached,
        NodeStatus::Accepted => pb::NodeStatus::Accepted,
    }
}

pub(crate) fn transition_status(status: TransitionStatus) -> pb::TransitionStatus {
    match status {
        TransitionStatus::Active => pb::TransitionStatus::Active,
        TransitionStatus::HandedOver => pb::TransitionStatus::HandedOver,
        TransitionStatus::Completed => pb::TransitionStatus::Completed,
    }
}

pub(crate) fn workflow(record: &WorkflowRecord) -> pb::Workflow {
    let wf = &record.workflow;
    pb::Workflow {
        name: wf.name().to_string(),
        version: record.version,
        description: wf.description().to_owned(),
        source: record.source.clone(),
        sha256: record.sha256.clone(),
        registered_at: Some(timestamp(record.registered_at)),
        roles: wf
            .roles()
            .iter()
            .map(|r| pb::Role {
                name: r.name.to_string(),
                description: r.description.clone(),
                responsibilities: r.responsibilities.clone(),
            })
            .collect(),
        nodes: wf.nodes().iter().map(|n| workflow_node(wf, n)).collect(),
        contacts: wf
            .contacts()
            .iter()
            .map(|c| pb::Contact {
                name: c.name.clone(),
                role: c.role.as_ref().map(ToString::to_string).unwrap_or_default(),
                channels: c.channels.clone(),
            })
            .collect(),
        support_days: wf.support().map_or(0, |s| s.duration_days),
    }
}

pub(crate) fn workflow_summary(s: WorkflowSummary) -> pb::WorkflowSummary {
    pb::WorkflowSummary {
        name: s.name,
        latest_version: s.latest_version,
        description: s.description,
        registered_at: Some(timestamp(s.registered_at)),
    }
}

pub(crate) fn transition(view: &TransitionView) -> pb::Transition {
    let wf = &view.workflow.workflow;
    let state = &view.state;
    let meta = &state.meta;
    pb::Transition {
        id: view.id.clone(),
        workflow_name: meta.workflow.to_string(),
        workflow_version: meta.workflow_version,
        service_name: meta.service_name.clone(),
        service_version: meta.service_version.clone(),
        project_manager: meta.project_manager.to_string(),
        service_manager: meta.service_manager.to_string(),
        target_go_live: meta.target_go_live.to_string(),
        participants: meta
            .participants
            .iter()
            .map(|(role, people)| pb::Participant {
                role: role.to_string(),
                people: people.iter().map(ToString::to_string).collect(),
            })
            .collect(),
        status: transition_status(state.status).into(),
        nodes: wf
            .nodes()
            .iter()
            .zip(&state.nodes)
            .map(|(n, s)| {
                let (owner_role, approver_role) = roles_of(&n.kind);
                pb::NodeState {
                    id: n.id.to_string(),
                    title: n.title.clone(),
                    kind: node_kind(&n.kind).into(),
                    status: node_status(s.status).into(),
                    needs: needs_of(wf, n),
                    owner_role,
                    approver_role,
                    evidence: s.evidence.as_ref().map(|e| pb::Evidence {
                        links: e.links.clone(),
                        text: e.text.clone(),
                        attachments: e
                            .attachments
                            .iter()
                            .map(|a| pb::Attachment {
                                uri: a.uri.clone(),
                                sha256: a.sha256.clone(),
                            })
                            .collect(),
                    }),
                    approved_by: s.approvals.iter().map(ToString::to_string).collect(),
                    approved_by_deputies: s.deputies.iter().map(ToString::to_string).collect(),
                    waiver: s.waiver.as_ref().map(|w| pb::Waiver {
                        waived_by: w.by.to_string(),
                        reason: w.reason.clone(),
                        until: Some(timestamp(w.until)),
                        waived_at: Some(timestamp(w.at)),
                    }),
                    required: n.required,
                    after_go_live: n.after_go_live,
                    comment: s.comment.clone().unwrap_or_default(),
                    last_actor: s
                        .actor
                        .as_ref()
                        .map(ToString::to_string)
                        .unwrap_or_default(),
                    submitted_by: s
                        .submitted_by
                        .as_ref()
                        .map(ToString::to_string)
                        .unwrap_or_default(),
                    updated_at: Some(timestamp(s.updated_at)),
                    round: s.round,
                    comment_round: s.comment_round,
                    approval: n
                        .deliverable()
                        .map(|d| d.approval.to_string())
                        .unwrap_or_default(),
                }
            })
            .collect(),
        event_count: state.seq,
        created_at: Some(timestamp(state.created_at)),
        updated_at: Some(timestamp(state.updated_at)),
    }
}

pub(crate) fn transition_summary(s: TransitionSummary) -> pb::TransitionSummary {
    pb::TransitionSummary {
        id: s.id,
        workflow_name: s.workflow_name,
        workflow_version: s.workflow_version,
        service_name: s.service_name,
        service_version: s.service_version,
        status: transition_status(s.status).into(),
        target_go_live: s.target_go_live.to_string(),
        updated_at: Some(timestamp(s.updated_at)),
    }
}

pub(crate) fn gate(view: &TransitionView, decision: &GateDecision) -> pb::CheckGateResponse {
    pb::CheckGateResponse {
        open: decision.is_open(),
        state: match decision.state {
            GateState::Closed => pb::GateState::Closed,
            GateState::Open => pb::GateState::Open,
            GateState::Accepted => pb::GateState::Accepted,
        }
        .into(),
        transition_id: view.id.clone(),
        gate_id: decision.gate.to_string(),
        blockers: decision.blockers.iter().map(|b| blocker(view, b)).collect(),
        summary: decision.summary(),
        awaiting_acceptance_by: decision
            .awaiting_acceptance_by
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        waivers: decision
            .waivers
            .iter()
            .map(|w| pb::WaiverUse {
                node_id: w.node.to_string(),
                title: w.title.clone(),
                waived_by: w.waiver.by.to_string(),
                reason: w.waiver.reason.clone(),
                until: Some(timestamp(w.waiver.until)),
            })
            .collect(),
    }
}

/// The roles of a blocking deliverable's approval policy, comma-separated.
fn approver_roles(view: &TransitionView, b: &Blocker) -> String {
    let wf = &view.workflow.workflow;
    let Some(d) = wf
        .position(b.node.as_str())
        .and_then(|i| wf.node(i).deliverable())
    else {
        return String::new();
    };
    let roles: Vec<String> = d
        .approval
        .approvers()
        .iter()
        .filter_map(|a| match a {
            Approver::Role(r) => Some(r.to_string()),
            Approver::Person(_) => None,
        })
        .collect();
    roles.join(", ")
}

fn blocker(view: &TransitionView, b: &Blocker) -> pb::Blocker {
    let kind = view
        .workflow
        .workflow
        .position(b.node.as_str())
        .map(|i| node_kind(&view.workflow.workflow.node(i).kind))
        .unwrap_or(pb::NodeKind::Unspecified);
    let mut out = pb::Blocker {
        node_id: b.node.to_string(),
        title: b.title.clone(),
        kind: kind.into(),
        status: node_status(b.status).into(),
        ..Default::default()
    };
    match &b.waiting_on {
        WaitingOn::Role { role, people } => {
            out.waiting_on_role = role.to_string();
            out.waiting_on_people = people.iter().map(ToString::to_string).collect();
        }
        WaitingOn::Approvals {
            policy,
            given,
            needed,
            people,
        } => {
            out.approval_policy = policy.clone();
            out.waiting_on_role = approver_roles(view, b);
            out.approvals_given = u32::try_from(*given).unwrap_or(u32::MAX);
            out.approvals_needed = u32::try_from(*needed).unwrap_or(u32::MAX);
            out.waiting_on_people = people.iter().map(ToString::to_string).collect();
        }
        WaitingOn::Nodes(nodes) => {
            out.waiting_on_nodes = nodes.iter().map(ToString::to_string).collect();
        }
    }
    out
}

pub(crate) fn delegation(d: &opsgate_store::DelegationRecord) -> pb::Delegation {
    pb::Delegation {
        id: d.delegation.id,
        from: d.delegation.from.to_string(),
        to: d.delegation.to.to_string(),
        starts_at: Some(timestamp(d.delegation.starts)),
        ends_at: Some(timestamp(d.delegation.ends)),
        reason: d.reason.clone(),
        created_by: d.created_by.clone(),
        created_at: Some(timestamp(d.created_at)),
        revoked_at: d.revoked_at.map(timestamp),
        revoked_by: d.revoked_by.clone().unwrap_or_default(),
    }
}

pub(crate) fn token(t: &opsgate_store::TokenRecord) -> pb::TokenInfo {
    pb::TokenInfo {
        id: t.id.clone(),
        principal: t.principal.to_string(),
        roles: t.roles.iter().map(|r| r.as_str().to_owned()).collect(),
        description: t.description.clone(),
        prefix: t.prefix.clone(),
        created_by: t.created_by.clone(),
        created_at: Some(timestamp(t.created_at)),
        expires_at: t.expires_at.map(timestamp),
        revoked_at: t.revoked_at.map(timestamp),
        revoked_by: t.revoked_by.clone().unwrap_or_default(),
    }
}

pub(crate) fn event(e: &opsgate_domain::Event) -> pb::TransitionEvent {
    use opsgate_domain::EventKind as K;
    let (node_id, comment) = match &e.kind {
        K::TransitionStarted { .. } => (String::new(), String::new()),
        K::DeliverableSubmitted { node, .. }
        | K::NodeUnlocked { node }
        | K::NodeRelocked { node }
        | K::WaiverExpired { node } => (node.to_string(), String::new()),
        K::DeliverableWaived { node, reason, .. } => (node.to_string(), reason.clone()),
        K::DeliverableApproved { node, comment, .. }
        | K::ApprovalRecorded { node, comment, .. }
        | K::ChangesRequested { node, comment }
        | K::MilestoneSignedOff { node, comment } => (node.to_string(), comment.clone()),
        K::HandoverAccepted { comment } => (String::new(), comment.clone()),
        K::HandoverRejected { reasons, .. } => (String::new(), reasons.join("; ")),
        K::GoLiveMoved { from, to, reason } => (String::new(), format!("{from} -> {to}: {reason}")),
        K::ParticipantsChanged { role, people } => {
            let names: Vec<&str> = people.iter().map(|p| p.as_str()).collect();
            (String::new(), format!("{role}: {}", names.join(", ")))
        }
    };
    let deputy = match &e.kind {
        K::DeliverableApproved { deputy, .. } | K::ApprovalRecorded { deputy, .. } => {
            deputy.as_ref()
        }
        _ => None,
    };
    pb::TransitionEvent {
        access_role: e.attribution.access.clone().unwrap_or_default(),
        acted_as: e
            .attribution
            .role
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        credential: e.attribution.credential.clone().unwrap_or_default(),
        on_behalf_of: deputy
            .map(|d| d.on_behalf_of.to_string())
            .unwrap_or_default(),
        delegation_id: deputy.map_or(0, |d| d.delegation),
        seq: e.seq,
        at: Some(timestamp(e.at)),
        actor: e.actor.to_string(),
        kind: e.kind.name().to_owned(),
        node_id,
        comment,
        detail_json: serde_json::to_string(&e.kind).unwrap_or_default(),
    }
}
