//! The validated workflow model: roles and a topologically ordered DAG of deliverables, milestones and one gate.

mod parse;

use std::collections::HashMap;
use std::fmt;

use crate::ids::{NodeId, RoleName, WorkflowName};

pub use parse::{MAX_NODES, MAX_SOURCE_BYTES};

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
}

/// What a node is, with the data only that kind has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeKind {
    /// Produced by the owner role, approved by the approver role.
    Deliverable { owner: RoleName, approver: RoleName },
    /// Reached when everything it needs is done.
    Milestone,
    /// The operations gate: opens when everything before it is done, accepted by the service manager.
    Gate,
}

impl NodeKind {
    /// Lowercase word for messages and storage.
    pub fn label(&self) -> &'static str {
        match self {
            NodeKind::Deliverable { .. } => "deliverable",
            NodeKind::Milestone => "milestone",
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
}

/// A validated workflow. Invariant: `nodes` is in topological order, exactly one node is the gate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workflow {
    name: WorkflowName,
    description: String,
    roles: Vec<Role>,
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

    pub fn name(&self) -> &WorkflowName {
        &self.name
    }

    pub fn description(&self) -> &str {
        &self.description
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

    fn from_parts(
        name: WorkflowName,
        description: String,
        roles: Vec<Role>,
        nodes: Vec<Node>,
        gate: usize,
    ) -> Self {
        let index = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.id.clone(), i))
            .collect();
        let mut is_ancestor = vec![false; nodes.len()];
        let mut stack = nodes[gate].needs.clone();
        while let Some(i) = stack.pop() {
            if !is_ancestor[i] {
                is_ancestor[i] = true;
                stack.extend(nodes[i].needs.iter().copied());
            }
        }
        let gate_ancestors = (0..nodes.len()).filter(|&i| is_ancestor[i]).collect();
        Self {
            name,
            description,
            roles,
            nodes,
            index,
            gate,
            gate_ancestors,
        }
    }
}

#[cfg(test)]
mod tests;
