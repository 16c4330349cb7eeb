//! The workflow file as written: serde structs with source locations, and the JSON Schema derived from them.
//!
//! Unknown fields are not refused by serde here: `keys.rs` walks the same document tree and reports
//! every unknown field at once, with a suggestion, against the field lists derived from this schema.

use std::collections::HashMap;

use super::yaml::Located;
use schemars::JsonSchema;
use serde::Deserialize;

/// A workflow file: a versioned declaration of what a project delivers before the operations gate.
#[derive(Deserialize, JsonSchema)]
#[schemars(title = "opsgate workflow", extend("additionalProperties" = false))]
pub(super) struct RawWorkflow {
    /// Workflow name: lowercase letters, digits, '-' and '_'.
    #[schemars(with = "String")]
    pub name: Located<String>,
    /// Optional version number. When given, registration refuses a file whose number is not the one it would get.
    #[serde(default)]
    #[schemars(with = "Option<u32>")]
    pub version: Option<Located<u32>>,
    #[serde(default)]
    pub description: String,
    /// Roles and their responsibilities; `project_manager` and `service_manager` are built in.
    #[serde(default)]
    #[schemars(with = "HashMap<String, RawRole>")]
    pub roles: HashMap<Located<String>, Option<RawRole>>,
    /// Who to reach, and how.
    #[serde(default)]
    pub contacts: Vec<RawContact>,
    /// Dated points of the plan; meetings are milestones with a `meeting:` kind.
    #[serde(default)]
    pub milestones: Vec<RawMilestone>,
    /// What the project delivers before the gate.
    #[serde(default)]
    pub deliverables: Vec<RawDeliverable>,
    /// The operations gate, accepted by the service manager.
    #[serde(default)]
    pub gate: Option<RawGate>,
    /// The post-go-live support window (hypercare) after the gate.
    #[serde(default)]
    pub post_go_live: Option<RawPostGoLive>,
}

#[derive(Deserialize, JsonSchema, Default)]
#[schemars(rename = "Role")]
#[schemars(extend("additionalProperties" = false))]
pub(super) struct RawRole {
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub responsibilities: Vec<String>,
}

#[derive(Deserialize, JsonSchema)]
#[schemars(rename = "Contact")]
#[schemars(extend("additionalProperties" = false))]
pub(super) struct RawContact {
    #[schemars(with = "String")]
    pub name: Located<String>,
    /// The role this contact holds, if any.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub role: Option<Located<String>>,
    /// How to reach them: e-mail addresses, phone numbers, chat channels.
    #[serde(default)]
    pub channels: Vec<String>,
}

/// Fields every node has.
#[derive(Deserialize, JsonSchema)]
#[schemars(rename = "Milestone")]
#[schemars(extend("additionalProperties" = false))]
pub(super) struct RawMilestone {
    #[schemars(with = "String")]
    pub id: Located<String>,
    #[schemars(with = "String")]
    pub title: Located<String>,
    #[serde(default)]
    pub description: String,
    /// `start + 5d`, `go_live - 2w`, `go_live`...
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub due: Option<Located<String>>,
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub needs: Vec<Located<String>>,
    /// A role that must sign the milestone off once everything it needs is done.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub sign_off: Option<Located<String>>,
    /// This milestone is a meeting: startup, follow_up or review.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub meeting: Option<Located<String>>,
    /// How often a follow-up meeting recurs, like `1w`.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub every: Option<Located<String>>,
}

#[derive(Deserialize, JsonSchema)]
#[schemars(rename = "Deliverable")]
#[schemars(extend("additionalProperties" = false))]
pub(super) struct RawDeliverable {
    #[schemars(with = "String")]
    pub id: Located<String>,
    #[schemars(with = "String")]
    pub title: Located<String>,
    #[serde(default)]
    pub description: String,
    /// The role that produces and submits it.
    #[schemars(with = "String")]
    pub owner: Located<String>,
    /// Shorthand for `approval: {any_of: [ROLE]}`.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub approver: Option<Located<String>>,
    #[serde(default)]
    #[schemars(with = "Option<RawApproval>")]
    pub approval: Option<Located<RawApproval>>,
    /// A template to start from (a path or a link), such as the knowledge article template.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub template: Option<Located<String>>,
    /// Items the owner and approvers check.
    #[serde(default)]
    pub checklist: Vec<String>,
    /// Evidence a submission must carry.
    #[serde(default)]
    pub evidence: Vec<RawEvidence>,
    /// False for a deliverable that never blocks the gate. Default true.
    #[serde(default)]
    #[schemars(with = "Option<bool>")]
    pub required: Option<Located<bool>>,
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub due: Option<Located<String>>,
    /// Working time it takes, like `3d` or `1w`; used by the plan. Default 1d.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub effort: Option<Located<String>>,
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub needs: Vec<Located<String>>,
}

/// Exactly one of `any_of`, `all_of`, or `quorum` with `of`.
#[derive(Deserialize, JsonSchema)]
#[schemars(rename = "Approval")]
#[schemars(extend("additionalProperties" = false))]
pub(super) struct RawApproval {
    #[serde(default)]
    #[schemars(with = "Option<Vec<RawApprover>>")]
    pub any_of: Option<Located<Vec<Located<RawApprover>>>>,
    #[serde(default)]
    #[schemars(with = "Option<Vec<RawApprover>>")]
    pub all_of: Option<Located<Vec<Located<RawApprover>>>>,
    /// How many distinct people of `of` must approve.
    #[serde(default)]
    #[schemars(with = "Option<u32>")]
    pub quorum: Option<Located<u32>>,
    #[serde(default)]
    #[schemars(with = "Option<Vec<RawApprover>>")]
    pub of: Option<Located<Vec<Located<RawApprover>>>>,
}

/// A role name, or `{person: NAME}`.
#[derive(Deserialize, JsonSchema, Clone)]
#[schemars(rename = "Approver")]
#[serde(untagged)]
pub(super) enum RawApprover {
    Role(String),
    Person { person: String },
}

#[derive(Deserialize, JsonSchema)]
#[schemars(rename = "Evidence")]
#[schemars(extend("additionalProperties" = false))]
pub(super) struct RawEvidence {
    /// link, text or attachment.
    #[schemars(with = "String")]
    pub kind: Located<String>,
    #[serde(default)]
    pub description: String,
}

#[derive(Deserialize, JsonSchema)]
#[schemars(rename = "Gate")]
#[schemars(extend("additionalProperties" = false))]
pub(super) struct RawGate {
    #[schemars(with = "String")]
    pub id: Located<String>,
    #[schemars(with = "String")]
    pub title: Located<String>,
    #[serde(default)]
    pub description: String,
    /// The service manager's own readiness checklist.
    #[serde(default)]
    pub checklist: Vec<String>,
    /// Default `go_live`.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub due: Option<Located<String>>,
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub needs: Vec<Located<String>>,
}

#[derive(Deserialize, JsonSchema)]
#[schemars(rename = "PostGoLive")]
#[schemars(extend("additionalProperties" = false))]
pub(super) struct RawPostGoLive {
    /// How long support lasts after go-live, like `14d`.
    #[schemars(with = "String")]
    pub duration: Located<String>,
    /// Deliverables of the support window; each implicitly needs the gate.
    #[serde(default)]
    pub deliverables: Vec<RawDeliverable>,
    /// The milestone that ends support; it needs every support deliverable and is due go_live + duration.
    pub end: RawEnd,
}

#[derive(Deserialize, JsonSchema)]
#[schemars(rename = "EndOfSupport")]
#[schemars(extend("additionalProperties" = false))]
pub(super) struct RawEnd {
    #[schemars(with = "String")]
    pub id: Located<String>,
    #[schemars(with = "String")]
    pub title: Located<String>,
    #[serde(default)]
    pub description: String,
}

/// The JSON Schema of a workflow file.
pub fn json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(RawWorkflow)).unwrap_or_default()
}
