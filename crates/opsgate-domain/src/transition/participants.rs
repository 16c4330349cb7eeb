//! The people of one transition: who holds which role, who may act for an approver, and whether a policy is met.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::ids::{Actor, RoleName, WorkflowName};
use crate::workflow::{
    ApprovalPolicy, Approver, NodeKind, PROJECT_MANAGER_ROLE, SERVICE_MANAGER_ROLE, Workflow,
};

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

    /// Whether `actor` may act for `approver`: the person named, or one of the people named for
    /// the role. A role nobody was named for is open to nobody (a start names every role that
    /// acts, see [`TransitionMeta::check`]).
    pub fn may_act_for(&self, approver: &Approver, actor: &Actor) -> bool {
        match approver {
            Approver::Person(p) => p == actor,
            Approver::Role(role) => self.people_for(role).contains(actor),
        }
    }

    /// Whether `actor` may act for `role`.
    pub fn holds(&self, role: &RoleName, actor: &Actor) -> bool {
        self.people_for(role).contains(actor)
    }

    /// Refuses a target go-live before `today`, unless the caller said it is meant
    /// (`allow_past`): a typo must not start a transition that is late on day one.
    pub fn check_go_live(&self, today: NaiveDate, allow_past: bool) -> Result<()> {
        if allow_past || self.target_go_live >= today {
            return Ok(());
        }
        Err(Error::InvalidArgument {
            field: "target_go_live",
            message: format!(
                "{} is in the past (today is {today}); give a future date, or allow a past one \
                 explicitly (allow_past_go_live, opsgate transition start --allow-past-go-live)",
                self.target_go_live
            ),
        })
    }

    /// Checks the meta against the workflow it will run on: the service fields, that every
    /// participant role is declared, and that people are named for every role that owns,
    /// approves or signs off something (the error lists every missing role).
    pub fn check(&self, workflow: &Workflow) -> Result<()> {
        check_service_field("service name", &self.service_name)?;
        check_service_field("service version", &self.service_version)?;
        if let Some((role, _)) = self
            .participants
            .iter()
            .find(|(_, people)| people.is_empty())
        {
            return Err(Error::InvalidArgument {
                field: "participants",
                message: format!("role '{role}' is listed without people: name at least one"),
            });
        }
        let missing: Vec<&str> = acting_roles(workflow)
            .into_iter()
            .filter(|r| {
                r.as_str() != PROJECT_MANAGER_ROLE
                    && r.as_str() != SERVICE_MANAGER_ROLE
                    && !self.participants.contains_key(*r)
            })
            .map(RoleName::as_str)
            .collect();
        if !missing.is_empty() {
            return Err(Error::InvalidArgument {
                field: "participants",
                message: format!(
                    "workflow '{}' needs people named for every role that owns, approves or signs \
                     off work; nobody is named for: {} (add them as participants: ROLE=NAME)",
                    workflow.name(),
                    missing.join(", ")
                ),
            });
        }
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

/// Everyone with a part in a transition of `workflow` with `meta`: its project and service
/// managers, the people named for its roles, and the people the workflow names as approvers;
/// sorted, each once. (Who may act on it at any moment is among them, deputies aside.)
pub fn people_with_a_part(workflow: &Workflow, meta: &TransitionMeta) -> Vec<Actor> {
    let mut people = vec![meta.project_manager.clone(), meta.service_manager.clone()];
    people.extend(meta.participants.values().flatten().cloned());
    for node in workflow.nodes() {
        if let NodeKind::Deliverable(d) = &node.kind {
            people.extend(d.approval.approvers().iter().filter_map(|a| match a {
                Approver::Person(p) => Some(p.clone()),
                Approver::Role(_) => None,
            }));
        }
    }
    people.sort();
    people.dedup();
    people
}

/// The roles that own, approve or sign off a node of `workflow`, sorted, each once.
pub fn acting_roles(workflow: &Workflow) -> Vec<&RoleName> {
    let mut roles: Vec<&RoleName> = Vec::new();
    for node in workflow.nodes() {
        match &node.kind {
            NodeKind::Deliverable(d) => {
                roles.push(&d.owner);
                roles.extend(d.approval.approvers().iter().filter_map(|a| match a {
                    Approver::Role(r) => Some(r),
                    Approver::Person(_) => None,
                }));
            }
            NodeKind::Milestone(m) => roles.extend(m.sign_off.as_ref()),
            NodeKind::Gate => {}
        }
    }
    roles.sort();
    roles.dedup();
    roles
}

/// A service name or version: non-empty, no surrounding spaces, at most 200 characters, no
/// control characters (checked before any database sees it).
pub fn check_service_field(field: &'static str, value: &str) -> Result<()> {
    if value.trim().is_empty() || value.trim() != value {
        return Err(Error::InvalidArgument {
            field,
            message: "must be non-empty without surrounding spaces".into(),
        });
    }
    if value.chars().count() > 200 || value.chars().any(char::is_control) {
        return Err(Error::InvalidArgument {
            field,
            message: "must be at most 200 characters without control characters".into(),
        });
    }
    Ok(())
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
