//! Deciding: whether a command may happen now, by whom, and which event it becomes.

use chrono::{DateTime, Utc};

use super::evidence::{check_evidence, check_text};
use super::{
    Acting, Command, Delegation, EventKind, NodeStatus, ReviewDecision, StoodIn, TransitionState,
    policy_met,
};
use crate::error::{Error, Result};
use crate::ids::{Actor, NodeId, RoleName};
use crate::workflow::{
    ApprovalPolicy, Approver, NodeKind, PROJECT_MANAGER_ROLE, SERVICE_MANAGER_ROLE, Workflow,
};

impl TransitionState {
    /// Turns a command into its primary event and the workflow role it was done for, or says
    /// why it cannot happen now.
    pub(super) fn decide(
        &self,
        workflow: &Workflow,
        command: Command,
        acting: &Acting,
        at: DateTime<Utc>,
    ) -> Result<(EventKind, Option<RoleName>)> {
        let actor = &acting.actor;
        match command {
            Command::Submit { node, evidence } => {
                let (i, id) = self.deliverable(workflow, &node)?;
                let mut role = None;
                if let Some(d) = workflow.node(i).deliverable() {
                    let granted = acting
                        .pipeline
                        .as_ref()
                        .is_some_and(|p| p.allows(id.as_str()));
                    if !granted && !self.meta.holds(&d.owner, actor) {
                        return Err(Error::NotPermitted(format!(
                            "{actor} may not submit deliverable '{id}': it is owned by role {}{}{}",
                            d.owner,
                            self.named(&d.owner),
                            if acting.pipeline.is_some() {
                                ", and this pipeline's rule does not grant it"
                            } else {
                                ""
                            }
                        )));
                    }
                    role = Some(d.owner.clone());
                }
                match self.nodes[i].status {
                    NodeStatus::Open | NodeStatus::ChangesRequested => {
                        check_evidence(workflow, i, &evidence)?;
                        Ok((EventKind::DeliverableSubmitted { node: id, evidence }, role))
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
                let (role, deputy) =
                    self.reviewer(policy, acting, at, &id, &self.nodes[i].approvals)?;
                match decision {
                    ReviewDecision::RequestChanges if comment.is_empty() => {
                        Err(Error::InvalidArgument {
                            field: "comment",
                            message: "say what must change when requesting changes".into(),
                        })
                    }
                    ReviewDecision::RequestChanges => {
                        Ok((EventKind::ChangesRequested { node: id, comment }, role))
                    }
                    ReviewDecision::Approve => {
                        let node = &self.nodes[i];
                        let counted = deputy.map_or(actor, |d| &d.from);
                        if node.submitted_by.as_ref() == Some(actor) {
                            return Err(Error::NotPermitted(format!(
                                "{actor} submitted deliverable '{id}' and so may not approve it"
                            )));
                        }
                        if let Some(d) = deputy
                            && node.submitted_by.as_ref() == Some(&d.from)
                        {
                            return Err(Error::NotPermitted(format!(
                                "{} submitted deliverable '{id}', so {actor} may not approve it \
                                 for them (delegation #{})",
                                d.from, d.id
                            )));
                        }
                        if node.approvals.contains(actor) || node.deputies.contains(actor) {
                            return Err(Error::FailedPrecondition(format!(
                                "{actor} already approved this submission of '{id}'; it needs {} distinct approvers ({policy})",
                                policy.needed()
                            )));
                        }
                        if node.approvals.contains(counted) {
                            return Err(Error::FailedPrecondition(format!(
                                "{counted} already approved this submission of '{id}' (in person \
                                 or through a deputy); {actor} standing in for them does not \
                                 count again ({policy})"
                            )));
                        }
                        let mut approvers = node.approvals.clone();
                        approvers.push(counted.clone());
                        let deputy = deputy.map(|d| StoodIn {
                            on_behalf_of: d.from.clone(),
                            delegation: d.id,
                        });
                        let kind = if policy_met(policy, &approvers, &self.meta) {
                            EventKind::DeliverableApproved {
                                node: id,
                                comment,
                                deputy,
                            }
                        } else {
                            EventKind::ApprovalRecorded {
                                node: id,
                                comment,
                                deputy,
                            }
                        };
                        Ok((kind, role))
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
                    NodeStatus::Open => Ok((
                        EventKind::MilestoneSignedOff {
                            node: n.id.clone(),
                            comment: comment.trim().to_owned(),
                        },
                        Some(role.clone()),
                    )),
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
                Ok((self.decide_participants(workflow, &role, &people)?, None))
            }
            Command::Waive {
                node,
                reason,
                until,
            } => Ok((
                self.decide_waiver(workflow, &node, &reason, until, at)?,
                None,
            )),
            Command::Reschedule {
                target_go_live,
                reason,
            } => Ok((
                self.decide_reschedule(acting, target_go_live, &reason, at)?,
                Some(RoleName::parse(PROJECT_MANAGER_ROLE)?).filter(|_| {
                    acting.access != Some(crate::Access::Smo) && &self.meta.project_manager == actor
                }),
            )),
            Command::ExpireWaivers => Err(Error::FailedPrecondition(
                "no waiver of this transition has run out".into(),
            )),
            Command::AcceptHandover { comment } => {
                check_text("comment", &comment)?;
                self.require_service_manager(actor, "accept")?;
                self.require_open_gate(workflow, "accepted")?;
                Ok((
                    EventKind::HandoverAccepted {
                        comment: comment.trim().to_owned(),
                    },
                    RoleName::parse(SERVICE_MANAGER_ROLE).ok(),
                ))
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
                Ok((
                    EventKind::HandoverRejected { reasons, reopened },
                    RoleName::parse(SERVICE_MANAGER_ROLE).ok(),
                ))
            }
        }
    }

    /// Who reviews under `policy`: the caller in person (with the role they act for), or as
    /// the deputy of someone who may, through a delegation in force at `at`. Delegations do not
    /// chain: only what the delegating person may do directly passes to the deputy.
    fn reviewer<'a>(
        &self,
        policy: &ApprovalPolicy,
        acting: &'a Acting,
        at: DateTime<Utc>,
        id: &NodeId,
        approvals: &[Actor],
    ) -> Result<(Option<RoleName>, Option<&'a Delegation>)> {
        let actor = &acting.actor;
        let role_of = |a: &Approver| match a {
            Approver::Role(role) => Some(role.clone()),
            Approver::Person(_) => None,
        };
        if let Some(a) = policy
            .approvers()
            .iter()
            .find(|a| self.meta.may_act_for(a, actor))
        {
            return Ok((role_of(a), None));
        }
        let for_policy = |d: &&'a Delegation| {
            &d.to == actor
                && policy
                    .approvers()
                    .iter()
                    .any(|a| self.meta.may_act_for(a, &d.from))
        };
        // Prefer a delegation whose person has not approved yet.
        let mut usable: Vec<&Delegation> = acting
            .deputy_for
            .iter()
            .filter(for_policy)
            .filter(|d| d.in_force(at))
            .collect();
        usable.sort_by_key(|d| approvals.contains(&d.from));
        if let Some(d) = usable.first() {
            let role = policy
                .approvers()
                .iter()
                .find(|a| self.meta.may_act_for(a, &d.from))
                .and_then(role_of);
            return Ok((role, Some(d)));
        }
        if let Some(d) = acting.deputy_for.iter().find(for_policy) {
            return Err(Error::NotPermitted(format!(
                "{actor} may not review deliverable '{id}': the delegation #{} from {} is in \
                 force from {} until {}, not now",
                d.id,
                d.from,
                d.starts.format("%Y-%m-%d %H:%M UTC"),
                d.ends.format("%Y-%m-%d %H:%M UTC")
            )));
        }
        Err(Error::NotPermitted(format!(
            "{actor} may not review deliverable '{id}': its approval is {policy}{}",
            self.named_people(policy)
        )))
    }

    /// A waiver of deliverable `node` until `until` (after `at`), with a reason.
    fn decide_waiver(
        &self,
        workflow: &Workflow,
        node: &str,
        reason: &str,
        until: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> Result<EventKind> {
        let (i, id) = self.deliverable(workflow, node)?;
        check_text("reason", reason)?;
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(Error::InvalidArgument {
                field: "reason",
                message: "say why the deliverable is waived: the gate explanation shows it".into(),
            });
        }
        if until <= at {
            return Err(Error::InvalidArgument {
                field: "until",
                message: format!(
                    "a waiver must end in the future (it would end at {})",
                    until.format("%Y-%m-%d %H:%M UTC")
                ),
            });
        }
        if self.nodes[i].status.is_done() {
            return Err(Error::FailedPrecondition(format!(
                "deliverable '{id}' is already {}: there is nothing to waive",
                self.nodes[i].status.as_str()
            )));
        }
        if self.status != super::TransitionStatus::Active {
            return Err(Error::FailedPrecondition(format!(
                "the transition is {}: waivers are for work before the handover",
                self.status.as_str()
            )));
        }
        Ok(EventKind::DeliverableWaived {
            node: id,
            reason: reason.to_owned(),
            until,
        })
    }

    /// A new target go-live: by the project manager (or the SMO), with a reason, on or after
    /// today, different from the current one, while the transition has not been handed over.
    fn decide_reschedule(
        &self,
        acting: &Acting,
        to: chrono::NaiveDate,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<EventKind> {
        let actor = &acting.actor;
        let pm = &self.meta.project_manager;
        if acting.access != Some(crate::Access::Smo) && pm != actor {
            return Err(Error::NotPermitted(format!(
                "{actor} may not move the go-live: only the transition's project manager, {pm}, \
                 or the SMO may"
            )));
        }
        check_text("reason", reason)?;
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(Error::InvalidArgument {
                field: "reason",
                message: "say why the go-live moves: the log and the calendars show it".into(),
            });
        }
        let from = self.meta.target_go_live;
        if to == from {
            return Err(Error::FailedPrecondition(format!(
                "the target go-live is already {to}"
            )));
        }
        let today = at.date_naive();
        if to < today {
            return Err(Error::InvalidArgument {
                field: "target_go_live",
                message: format!("{to} is in the past (today is {today})"),
            });
        }
        if self.status != super::TransitionStatus::Active {
            return Err(Error::FailedPrecondition(format!(
                "the transition is {}: its go-live has happened",
                self.status.as_str()
            )));
        }
        Ok(EventKind::GoLiveMoved {
            from,
            to,
            reason: reason.to_owned(),
        })
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

    /// Whether node `i` holds up what comes after it: not done (nor waived), and not optional.
    pub fn blocks(&self, workflow: &Workflow, i: usize) -> bool {
        !self.nodes[i].counts_as_done() && workflow.node(i).required
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
