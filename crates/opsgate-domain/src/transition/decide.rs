//! Deciding: whether a command may happen now, by whom, and which event it becomes.

use super::evidence::{check_evidence, check_text};
use super::{Command, EventKind, NodeStatus, ReviewDecision, TransitionState, policy_met};
use crate::error::{Error, Result};
use crate::ids::{Actor, NodeId, RoleName};
use crate::workflow::{
    ApprovalPolicy, Approver, NodeKind, PROJECT_MANAGER_ROLE, SERVICE_MANAGER_ROLE, Workflow,
};

impl TransitionState {
    /// Turns a command into its primary event, or says why it cannot happen now.
    pub(super) fn decide(
        &self,
        workflow: &Workflow,
        command: Command,
        actor: &Actor,
    ) -> Result<EventKind> {
        match command {
            Command::Submit { node, evidence } => {
                let (i, id) = self.deliverable(workflow, &node)?;
                if let Some(d) = workflow.node(i).deliverable()
                    && !self.meta.holds(&d.owner, actor)
                {
                    return Err(Error::NotPermitted(format!(
                        "{actor} may not submit deliverable '{id}': it is owned by role {}{}",
                        d.owner,
                        self.named(&d.owner)
                    )));
                }
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
            Command::ChangeParticipants { role, people } => {
                self.decide_participants(workflow, &role, &people)
            }
            Command::AcceptHandover { comment } => {
                check_text("comment", &comment)?;
                self.require_service_manager(actor, "accept")?;
                self.require_open_gate(workflow, "accepted")?;
                Ok(EventKind::HandoverAccepted {
                    comment: comment.trim().to_owned(),
                })
            }
            Command::RejectHandover { reasons, reopen } => {
                self.require_service_manager(actor, "reject")?;
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

    /// A new list of people for `role`: declared by the workflow (or a built-in role, which
    /// takes exactly one person), at least one person, and not what it already is.
    fn decide_participants(
        &self,
        workflow: &Workflow,
        role: &str,
        people: &[String],
    ) -> Result<EventKind> {
        let role = RoleName::parse(role.trim())?;
        if !workflow.has_role(role.as_str()) {
            return Err(Error::InvalidArgument {
                field: "role",
                message: format!(
                    "role '{role}' is not declared by workflow '{}'",
                    workflow.name()
                ),
            });
        }
        let mut named: Vec<Actor> = Vec::with_capacity(people.len());
        for p in people {
            let person = Actor::parse_field("people", p)?;
            if !named.contains(&person) {
                named.push(person);
            }
        }
        let builtin =
            role.as_str() == PROJECT_MANAGER_ROLE || role.as_str() == SERVICE_MANAGER_ROLE;
        if named.is_empty() || (builtin && named.len() != 1) {
            return Err(Error::InvalidArgument {
                field: "people",
                message: if builtin {
                    format!("role {role} is held by exactly one person")
                } else {
                    format!("name at least one person for role {role}")
                },
            });
        }
        if self.meta.people_for(&role) == named {
            return Err(Error::FailedPrecondition(format!(
                "role {role} is already held by exactly these people"
            )));
        }
        Ok(EventKind::ParticipantsChanged {
            role,
            people: named,
        })
    }

    /// Only the transition's service manager accepts or rejects its handover.
    fn require_service_manager(&self, actor: &Actor, verb: &str) -> Result<()> {
        let sm = &self.meta.service_manager;
        if sm == actor {
            return Ok(());
        }
        Err(Error::NotPermitted(format!(
            "{actor} may not {verb} the handover: only the transition's service manager, {sm}, may"
        )))
    }

    /// ` (NAME, NAME)` for a role with named people, or nothing.
    pub(super) fn named(&self, role: &RoleName) -> String {
        let people = self.meta.people_for(role);
        if people.is_empty() {
            return String::new();
        }
        let names: Vec<&str> = people.iter().map(Actor::as_str).collect();
        format!(" ({})", names.join(", "))
    }

    /// `; named: ...` listing the people who may act for a policy's roles.
    pub(super) fn named_people(&self, policy: &ApprovalPolicy) -> String {
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

    pub(super) fn deliverable(&self, workflow: &Workflow, id: &str) -> Result<(usize, NodeId)> {
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
    pub(super) fn waiting_on(&self, workflow: &Workflow, i: usize) -> String {
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

    pub(super) fn locked_error(&self, workflow: &Workflow, i: usize, verb: &str) -> Error {
        Error::FailedPrecondition(format!(
            "deliverable '{}' is locked and cannot be {verb}: it waits on {}",
            workflow.node(i).id,
            self.waiting_on(workflow, i)
        ))
    }

    pub(super) fn require_open_gate(&self, workflow: &Workflow, verb: &str) -> Result<()> {
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
