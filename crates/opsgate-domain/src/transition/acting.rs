//! Who acts: the authenticated person, the access role and credential they act through, the
//! delegations that let them stand in for someone, a pipeline's grant; and what each event
//! records of it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::access::Access;
use crate::ids::{Actor, RoleName};

/// The caller of one command, as the server authenticated it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acting {
    pub actor: Actor,
    /// The access role the call was allowed in (`None` where nobody checked: tests, loaders).
    pub access: Option<Access>,
    /// The credential, as the log shows it: `token og_1a2b3c4d`, `oidc ISSUER SUBJECT`...
    pub credential: Option<String>,
    /// Delegations to `actor` that may be in force (the domain checks their dates).
    pub deputy_for: Vec<Delegation>,
    /// A pipeline's grant: the deliverables it may attach evidence to, whoever owns them.
    pub pipeline: Option<PipelineGrant>,
}

impl Acting {
    /// A person acting with nothing else known about the call.
    pub fn person(actor: Actor) -> Self {
        Self {
            actor,
            access: None,
            credential: None,
            deputy_for: Vec::new(),
            pipeline: None,
        }
    }

    /// What an event caused by this call records, given the workflow role acted for.
    pub(super) fn attribution(&self, role: Option<RoleName>) -> Attribution {
        Attribution {
            access: self.access.map(|a| a.as_str().to_owned()),
            role,
            credential: self.credential.clone(),
        }
    }
}

impl From<Actor> for Acting {
    fn from(actor: Actor) -> Self {
        Self::person(actor)
    }
}

/// An approver (`from`) lets a deputy (`to`) approve for them from `starts` until `ends`
/// (exclusive). Delegations do not chain: a deputy acts only for what `from` may do directly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delegation {
    pub id: i64,
    pub from: Actor,
    pub to: Actor,
    pub starts: DateTime<Utc>,
    pub ends: DateTime<Utc>,
}

impl Delegation {
    /// Whether the delegation is in force at `at`.
    pub fn in_force(&self, at: DateTime<Utc>) -> bool {
        self.starts <= at && at < self.ends
    }
}

/// What a pipeline credential may change: evidence of these deliverables (`*`: any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineGrant {
    pub deliverables: Vec<String>,
}

impl PipelineGrant {
    pub fn allows(&self, deliverable: &str) -> bool {
        self.deliverables
            .iter()
            .any(|d| d == "*" || d == deliverable)
    }
}

/// How the caller of an event acted: the access role, the workflow role acted for and the
/// credential. Empty for derived events and events from before it was recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attribution {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<RoleName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

impl Attribution {
    pub fn is_empty(&self) -> bool {
        self.access.is_none() && self.role.is_none() && self.credential.is_none()
    }
}

/// A waiver in force: the deliverable counts as done for what needs it until `until`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Waiver {
    pub by: Actor,
    pub reason: String,
    pub until: DateTime<Utc>,
    pub at: DateTime<Utc>,
}
