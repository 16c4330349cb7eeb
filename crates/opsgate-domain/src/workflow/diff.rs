//! What changed between two versions of a workflow, in words an SMO reads.

use super::{Node, NodeKind, Workflow};

fn describe(workflow: &Workflow, node: &Node) -> Vec<(&'static str, String)> {
    let needs: Vec<&str> = node
        .needs
        .iter()
        .map(|&j| workflow.node(j).id.as_str())
        .collect();
    let mut fields = vec![
        ("kind", node.kind.label().to_owned()),
        ("title", node.title.clone()),
        ("needs", needs.join(", ")),
        ("due", node.due.map(|d| d.to_string()).unwrap_or_default()),
        ("effort", format!("{}d", node.effort_days)),
        ("required", node.required.to_string()),
        ("checklist", node.checklist.join("; ")),
    ];
    match &node.kind {
        NodeKind::Deliverable(d) => {
            fields.push(("owner", d.owner.to_string()));
            fields.push(("approval", d.approval.to_string()));
            fields.push(("template", d.template.clone().unwrap_or_default()));
            let evidence: Vec<String> = d
                .evidence
                .iter()
                .map(|e| format!("{:?} {}", e.kind, e.description))
                .collect();
            fields.push(("evidence", evidence.join("; ")));
        }
        NodeKind::Milestone(m) => {
            fields.push((
                "sign_off",
                m.sign_off
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
            ));
            fields.push((
                "meeting",
                m.meeting
                    .map(|m| m.kind.as_str().to_owned())
                    .unwrap_or_default(),
            ));
        }
        NodeKind::Gate => {}
    }
    fields
}

impl Workflow {
    /// One line per change from `self` (old) to `new`: nodes and roles added, removed or changed.
    pub fn diff(&self, new: &Workflow) -> Vec<String> {
        let mut out = Vec::new();
        if self.name() != new.name() {
            out.push(format!("name: {} -> {}", self.name(), new.name()));
        }
        if self.description() != new.description() {
            out.push("description changed".to_owned());
        }
        for role in new.roles() {
            match self.role(role.name.as_str()) {
                None => out.push(format!("+ role {}", role.name)),
                Some(old) if old != role => out.push(format!(
                    "~ role {}: description or responsibilities changed",
                    role.name
                )),
                Some(_) => {}
            }
        }
        for role in self.roles() {
            if new.role(role.name.as_str()).is_none() {
                out.push(format!("- role {}", role.name));
            }
        }
        for node in new.nodes() {
            let Some(i) = self.position(node.id.as_str()) else {
                out.push(format!(
                    "+ {} {} ({})",
                    node.kind.label(),
                    node.id,
                    node.title
                ));
                continue;
            };
            let old = describe(self, self.node(i));
            let now = describe(new, node);
            for (name, value) in &now {
                let before = old
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.as_str())
                    .unwrap_or("");
                if before != value {
                    out.push(format!(
                        "~ {} {}: {name}: '{before}' -> '{value}'",
                        node.kind.label(),
                        node.id
                    ));
                }
            }
        }
        for node in self.nodes() {
            if new.position(node.id.as_str()).is_none() {
                out.push(format!(
                    "- {} {} ({})",
                    node.kind.label(),
                    node.id,
                    node.title
                ));
            }
        }
        if self.support().map(|s| s.duration_days) != new.support().map(|s| s.duration_days) {
            out.push(format!(
                "post-go-live support: {} -> {} days",
                self.support().map_or(0, |s| s.duration_days),
                new.support().map_or(0, |s| s.duration_days)
            ));
        }
        out
    }
}
