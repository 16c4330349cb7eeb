//! Conversions between domain/store types and protobuf messages; protobuf types stop here.

use chrono::{DateTime, Utc};
use opsgate_domain::{
    Blocker, GateDecision, GateState, NodeKind, NodeStatus, TransitionStatus, WaitingOn,
};
use opsgate_proto::v1 as pb;
use opsgate_store::{TransitionSummary, TransitionView, WorkflowRecord, WorkflowSummary};

pub(crate) fn timestamp(at: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: i32::try_from(at.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

fn node_kind(kind: &NodeKind) -> pb::NodeKind {
    match kind {
        NodeKind::Deliverable { .. } => pb::NodeKind::Deliverable,
        NodeKind::Milestone => pb::NodeKind::Milestone,
        NodeKind::Gate => pb::NodeKind::Gate,
    }
}

fn roles_of(kind: &NodeKind) -> (String, String) {
    match kind {
        NodeKind::Deliverable { owner, approver } => (owner.to_string(), approver.to_string()),
        NodeKind::Milestone | NodeKind::Gate => (String::new(), String::new()),
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

fn transition_status(status: TransitionStatus) -> pb::TransitionStatus {
    match status {
        TransitionStatus::Active => pb::TransitionStatus::Active,
        TransitionStatus::HandedOver => pb::TransitionStatus::HandedOver,
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
            })
            .collect(),
        nodes: wf
            .nodes()
            .iter()
            .map(|n| {
                let (owner_role, approver_role) = roles_of(&n.kind);
                pb::WorkflowNode {
                    id: n.id.to_string(),
                    title: n.title.clone(),
                    description: n.description.clone(),
                    kind: node_kind(&n.kind).into(),
                    owner_role,
                    approver_role,
                    needs: n.needs.iter().map(|&j| wf.node(j).id.to_string()).collect(),
                }
            })
            .collect(),
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
                    needs: n.needs.iter().map(|&j| wf.node(j).id.to_string()).collect(),
                    owner_role,
                    approver_role,
                    evidence: s.evidence.as_ref().map(|e| pb::Evidence {
                        links: e.links.clone(),
                        text: e.text.clone(),
                    }),
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
    }
}

fn blocker(view: &TransitionView, b: &Blocker) -> pb::Blocker {
    let kind = view
        .workflow
        .workflow
        .position(b.node.as_str())
        .map(|i| node_kind(&view.workflow.workflow.node(i).kind))
        .unwrap_or(pb::NodeKind::Unspecified);
    let (waiting_on_role, waiting_on_people, waiting_on_nodes) = match &b.waiting_on {
        WaitingOn::Role { role, people } => (
            role.to_string(),
            people.iter().map(ToString::to_string).collect(),
            Vec::new(),
        ),
        WaitingOn::Nodes(nodes) => (
            String::new(),
            Vec::new(),
            nodes.iter().map(ToString::to_string).collect(),
        ),
    };
    pb::Blocker {
        node_id: b.node.to_string(),
        title: b.title.clone(),
        kind: kind.into(),
        status: node_status(b.status).into(),
        waiting_on_role,
        waiting_on_people,
        waiting_on_nodes,
    }
}
