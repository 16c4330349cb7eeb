//! The validated workflow model: roles and a topologically ordered DAG of deliverables, milestones and one gate.

mod diff;
mod graph;
mod keys;
mod parse;
pub use parse::is_link;
mod plan;
mod raw;
mod yaml;

use std::collections::HashMap;
use std::fmt;

use crate::ids::{Actor, NodeId, RoleName, WorkflowName};

pub use parse::{MAX_NODES, MAX_SOURCE_BYTES};
pub(crate) use plan::add as add_days;
pub use plan::{Plan, PlanRow, due_date};
pub use raw::json_schema;

/// Role every transition binds to its named project manager.
pub const PROJECT_MANAGER_ROLE: &str = "project_manager";
/// Role every transition binds to its named service manager; it accepts the handover at the gate.
pub const SERVICE_MANAGER_ROLE: &str = "service_manager";

/// One problem found in a workflow file, located at a 1-based line and column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub line: u32,
    pub col: u32,
    pub message: String,
}

/// Every problem found in one workflow file; displays as `file:line:col: message` lines.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct WorkflowErrors {
    pub file: String,
    pub problems: Vec<Problem>,
}

impl fmt::Display for WorkflowErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}:{}:{}: {}", self.file, p.line, p.col, p.message)?;
        }
        Ok(())
    }
}

/// A role declared by the workflow (or built in: project manager, service manager).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    pub name: RoleName,
    pub description: String,
    pub responsibilities: Vec<String>,
}

/// Someone to reach about the transition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    pub name: String,
    pub role: Option<RoleName>,
    pub channels: Vec<String>,
}

/// What a due offset counts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Anchor {
    /// The day the transition starts.
    Start,
    /// The target go-live date.
    GoLive,
}

/// A due date relative to the start or the go-live date, in days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Due {
    pub anchor: Anchor,
    pub days: i32,
}

impl fmt::Display for Due {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let anchor = match self.anchor {
            Anchor::Start => "start",
            Anchor::GoLive => "go_live",
        };
        match self.days {
            0 => f.write_str(anchor),
            d if d > 0 => write!(f, "{anchor} + {d}d"),
            d => write!(f, "{anchor} - {}d", -d),
        }
    }
}

/// Who may approve: everyone acting in a role, or one named person.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Approver {
    Role(RoleName),
    Person(Actor),
}

impl fmt::Display for Approver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Approver::Role(r) => write!(f, "role {r}"),
            Approver::Person(p) => write!(f, "{p}"),
        }
    }
}

/// How many distinct people must approve a submission. Nobody approves what they submitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApprovalPolicy {
    /// One approval from anyone listed.
    AnyOf(Vec<Approver>),
    /// One approval for each entry, each from a different person.
    AllOf(Vec<Approver>),
    /// `k` approvals from different people, each listed.
    Quorum { k: u32, of: Vec<Approver> },
}

impl ApprovalPolicy {
    /// Every listed approver.
    pub fn approvers(&self) -> &[Approver] {
        match self {
            ApprovalPolicy::AnyOf(a) | ApprovalPolicy::AllOf(a) => a,
            ApprovalPolicy::Quorum { of, .. } => of,
        }
    }

    /// How many distinct approvals complete a review.
    pub fn needed(&self) -> usize {
        match self {
            ApprovalPolicy::AnyOf(_) => 1,
            ApprovalPolicy::AllOf(a) => a.len(),
            ApprovalPolicy::Quorum { k, .. } => *k as usize,
        }
    }
}

impl fmt::Display for ApprovalPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |a: &[Approver]| {
            a.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        match self {
            ApprovalPolicy::AnyOf(a) => write!(f, "any of {}", list(a)),
            ApprovalPolicy::AllOf(a) => write!(f, "all of {}", list(a)),
            ApprovalPolicy::Quorum { k, of } => write!(f, "{k} of {}", list(of)),
        }
    }
}

/// A kind of evidence a submission must carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EvidenceKind {
    Link,
    Text,
    /// A document by reference and checksum, given as a link.
    Attachment,
}

/// Evidence a deliverable's submission must carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvidenceRequirement {
    pub kind: EvidenceKind,
    pub description: String,
}

/// The kinds of meeting in a transition's meeting structure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MeetingKind {
    Startup,
    FollowUp,
    Review,
}

impl MeetingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MeetingKind::Startup => "startup",
            MeetingKind::FollowUp => "follow_up",
            MeetingKind::Review => "review",
        }
    }
}

/// A milestone that is a meeting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meeting {
    pub kind: MeetingKind,
    /// Recurrence of a follow-up meeting, in days.
    pub every_days: Option<u32>,
}

/// A deliverable: produced by the owner role, approved under its policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deliverable {
    pub owner: RoleName,
    pub approval: ApprovalPolicy,
    pub template: Option<String>,
    pub evidence: Vec<EvidenceRequirement>,
}

/// A milestone: reached when everything it needs is done (and, with a sign-off role, signed off).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Milestone {
    pub sign_off: Option<RoleName>,
    pub meeting: Option<Meeting>,
    /// The milestone that ends post-go-live support.
    pub ends_support: bool,
}

/// What a node is, with the data only that kind has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeKind {
    Deliverable(Deliverable),
    Milestone(Milestone),
    /// The operations gate: opens when everything before it is done, accepted by the service manager.
    Gate,
}

impl NodeKind {
    /// Lowercase word for messages and storage.
    pub fn label(&self) -> &'static str {
        match self {
            NodeKind::Deliverable(_) => "deliverable",
            NodeKind::Milestone(_) => "milestone",
            NodeKind::Gate => "gate",
        }
    }
}

/// One node of the DAG. `needs` are indices into [`Workflow::nodes`], always smaller than the node's own index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub id: NodeId,
    pub title: String,
    pub description: String,
    pub kind: NodeKind,
    pub needs: Vec<usize>,
    pub due: Option<Due>,
    /// Working days the node takes (0 for milestones and the gate).
    pub effort_days: u32,
    /// False for a deliverable that never blocks anything.
    pub required: bool,
    pub checklist: Vec<String>,
    /// Part of the post-go-live support window.
    pub after_go_live: bool,
}

impl Node {
    pub fn deliverable(&self) -> Option<&Deliverable> {
        match &self.kind {
            NodeKind::Deliverable(d) => Some(d),
            _ => None,
        }
    }
}

/// The post-go-live support window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Support {
    pub duration_days: u32,
    /// Index of the milestone that ends it.
    pub end: usize,
}

/// Marks every node that `of` needs, directly or transitively.
pub(super) fn ancestors(nodes: &[Node], of: usize) -> Vec<bool> {
    let mut marked = vec![false; nodes.len()];
    let mut stack = nodes[of].needs.clone();
    while let Some(i) = stack.pop() {
        if !marked[i] {
            marked[i] = true;
            stack.extend(nodes[i].needs.iter().copied());
        }
    }
    marked
}

/// The header parts of a workflow, checked before the graph.
pub(super) struct Parts {
    pub name: WorkflowName,
    pub declared_version: Option<u32>,
    pub description: String,
    pub roles: Vec<Role>,
    pub contacts: Vec<Contact>,
}

/// A validated workflow. Invariant: `nodes` is in topological order, exactly one node is the gate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workflow {
    name: WorkflowName,
    declared_version: Option<u32>,
    description: String,
    roles: Vec<Role>,
    contacts: Vec<Contact>,
    support: Option<Support>,
    nodes: Vec<Node>,
    index: HashMap<NodeId, usize>,
    gate: usize,
    gate_ancestors: Vec<usize>,
}

impl Workflow {
    /// Parses and validates YAML `source`; `file` names it in every problem.
    pub fn parse(file: &str, source: &str) -> Result<Self, WorkflowErrors> {
        parse::parse(file, source)
    }

    /// [`Workflow::parse`] for a file on disk: each `template:` path is also asked of `missing`
    /// (which knows where the file is), and what it says is a problem at the template's line
    /// and column, reported with every other. Links (`https://...`) are not asked.
    pub fn parse_with_templates(
        file: &str,
        source: &str,
        missing: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, WorkflowErrors> {
        parse::parse_with(file, source, missing)
    }

    /// The `template:` paths of the deliverables (links left out), each once.
    pub fn template_paths(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for node in &self.nodes {
            if let Some(t) = node.deliverable().and_then(|d| d.template.as_deref())
                && !parse::is_link(t)
                && !out.contains(&t)
            {
                out.push(t);
            }
        }
        out
    }

    pub fn name(&self) -> &WorkflowName {
        &self.name
    }

    pub fn description(&self) -> &str {
        &self.description
    }

    /// The `version:` the file declares, if any.
    pub fn declared_version(&self) -> Option<u32> {
        self.declared_version
    }

    pub fn contacts(&self) -> &[Contact] {
        &self.contacts
    }

    /// The post-go-live support window, if the workflow has one.
    pub fn support(&self) -> Option<Support> {
        self.support
    }

    /// The role named `name`.
    pub fn role(&self, name: &str) -> Option<&Role> {
        self.roles.iter().find(|r| r.name.as_str() == name)
    }

    /// Declared and built-in roles, sorted by name.
    pub fn roles(&self) -> &[Role] {
        &self.roles
    }

    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r.name.as_str() == role)
    }

    /// Nodes in topological order (every node after everything it needs).
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// Whether a deliverable names `who` as an approver in person (`approvers: [{person: ...}]`).
    pub fn names_approver(&self, who: &Actor) -> bool {
        self.nodes.iter().any(|node| match &node.kind {
            NodeKind::Deliverable(d) => d
                .approval
                .approvers()
                .iter()
                .any(|a| matches!(a, Approver::Person(p) if p == who)),
            _ => false,
        })
    }

    pub fn node(&self, index: usize) -> &Node {
        &self.nodes[index]
    }

    /// Index of the node with this id.
    pub fn position(&self, id: &str) -> Option<usize> {
        self.index.get(id).copied()
    }

    /// Index of the operations gate.
    pub fn gate(&self) -> usize {
        self.gate
    }

    /// Every node the gate needs, directly or transitively, in topological order.
    pub fn gate_ancestors(&self) -> &[usize] {
        &self.gate_ancestors
    }

    pub(super) fn from_parts(
        parts: Parts,
        nodes: Vec<Node>,
        gate: usize,
        support: Option<Support>,
    ) -> Self {
        let Parts {
            name,
            declared_version,
            description,
            roles,
            contacts,
        } = parts;
        let index = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.id.clone(), i))
            .collect();
        let is_ancestor = ancestors(&nodes, gate);
        let gate_ancestors = (0..nodes.len()).filter(|&i| is_ancestor[i]).collect();
        Self {
            name,
            declared_version,
            description,
            roles,
            contacts,
            support,
            nodes,
            index,
            gate,
            gate_ancestors,
        }
    }
}

#[cfg(test)]
mod tests;
