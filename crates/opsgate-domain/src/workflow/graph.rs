//! The workflow DAG as picture source: Graphviz dot or Mermaid, with node kinds and owners visible.

use std::fmt::Write as _;

use super::{NodeKind, Workflow};

/// Text for a label: one line per part, quotes escaped.
fn label(parts: &[String], newline: &str) -> String {
    parts
        .iter()
        .map(|p| p.replace('\\', "\\\\").replace('"', "'"))
        .collect::<Vec<_>>()
        .join(newline)
}

fn parts(workflow: &Workflow, i: usize) -> Vec<String> {
    let node = workflow.node(i);
    let mut parts = vec![node.title.clone(), format!("[{}]", node.id)];
    match &node.kind {
        NodeKind::Deliverable(d) => {
            parts.push(format!("owner: {}", d.owner));
            parts.push(format!("approval: {}", d.approval));
        }
        NodeKind::Milestone(m) => {
            if let Some(meeting) = m.meeting {
                parts.push(format!("{} meeting", meeting.kind.as_str()));
            }
            if let Some(role) = &m.sign_off {
                parts.push(format!("sign-off: {role}"));
            }
        }
        NodeKind::Gate => parts.push("accepted by: service_manager".to_owned()),
    }
    if let Some(due) = node.due {
        parts.push(format!("due: {due}"));
    }
    if !node.required {
        parts.push("optional".to_owned());
    }
    parts
}

impl Workflow {
    /// Graphviz dot: boxes for deliverables, ellipses for milestones, a double octagon for the gate;
    /// dashed for optional work, grey for post-go-live support. Edges point from a need to what needs it.
    pub fn to_dot(&self) -> String {
        let mut out = format!(
            "digraph \"{}\" {{\n  rankdir=LR;\n  node [fontname=\"Helvetica\", fontsize=10];\n",
            self.name()
        );
        for (i, node) in self.nodes().iter().enumerate() {
            let shape = match node.kind {
                NodeKind::Deliverable(_) => "box",
                NodeKind::Milestone(_) => "ellipse",
                NodeKind::Gate => "doubleoctagon",
            };
            let mut style = vec!["rounded"];
            if !node.required {
                style.push("dashed");
            }
            let color = if node.after_go_live {
                ", color=grey40"
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "  \"{}\" [shape={shape}, style=\"{}\"{color}, label=\"{}\"];",
                node.id,
                style.join(","),
                label(&parts(self, i), "\\n")
            );
        }
        for node in self.nodes() {
            for &j in &node.needs {
                let _ = writeln!(out, "  \"{}\" -> \"{}\";", self.node(j).id, node.id);
            }
        }
        out.push_str("}\n");
        out
    }

    /// Mermaid flowchart: rectangles for deliverables, stadiums for milestones, a hexagon for the gate.
    pub fn to_mermaid(&self) -> String {
        let mut out = String::from("flowchart LR\n");
        for (i, node) in self.nodes().iter().enumerate() {
            let text = label(&parts(self, i), "<br/>");
            let shape = match node.kind {
                NodeKind::Deliverable(_) => format!("[\"{text}\"]"),
                NodeKind::Milestone(_) => format!("([\"{text}\"])"),
                NodeKind::Gate => format!("{{{{\"{text}\"}}}}"),
            };
            let _ = writeln!(out, "  {}{shape}", mermaid_id(node.id.as_str()));
        }
        for node in self.nodes() {
            for &j in &node.needs {
                let arrow = if node.required { "-->" } else { "-.->" };
                let _ = writeln!(
                    out,
                    "  {} {arrow} {}",
                    mermaid_id(self.node(j).id.as_str()),
                    mermaid_id(node.id.as_str())
                );
            }
        }
        out
    }
}

/// Mermaid ids may not contain '-'.
fn mermaid_id(id: &str) -> String {
    id.replace('-', "_")
}
