//! The people of one transition: who holds which role, who may act for an approver, and whether a policy is met.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::ids::{Actor, RoleName, WorkflowName};
use crate::workflow::{
    ApprovalPolicy, Approver, PROJECT_MANAGER_ROLE, SERVICE_MANAGER_ROLE, Workflow,
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
