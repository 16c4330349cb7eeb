//! The process description of a workflow, as the document an SMO publishes (`opsgate workflow
//! docs FILE --format markdown|html`, and the web's `/workflows`): purpose, roles and their
//! responsibilities, contacts, the meeting structure, every deliverable (owner, approvers,
//! template, checklist, evidence, due), milestones, the gate's checklist, post-go-live support,
//! and the graph (Mermaid in Markdown, SVG in HTML, the same drawing the transition page shows).

use std::fmt::Write as _;

use crate::transition::{NodeStatus, TransitionState};
use crate::workflow::{EvidenceKind, MeetingKind, Node, NodeKind, Workflow};

/// `text` safe inside HTML text and attribute values.
pub fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Text safe in a Markdown table cell or line: no pipes or line breaks that would break it.
fn md(text: &str) -> String {
    text.replace('|', "\\|").replace(['\n', '\r'], " ")
}

fn meeting_name(kind: MeetingKind) -> &'static str {
    match kind {
        MeetingKind::Startup => "startup meeting",
        MeetingKind::FollowUp => "follow-up meeting",
        MeetingKind::Review => "review meeting",
    }
}

fn evidence_name(kind: EvidenceKind) -> &'static str {
    match kind {
        EvidenceKind::Link => "link",
        EvidenceKind::Text => "text",
        EvidenceKind::Attachment => "attachment",
    }
}

fn every(days: u32) -> String {
    if days.is_multiple_of(7) {
        match days / 7 {
            1 => "every week".to_owned(),
            w => format!("every {w} weeks"),
        }
    } else {
        format!("every {days} days")
    }
}

/// One section's facts about a node, as (label, value) lines.
fn facts(workflow: &Workflow, node: &Node) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    match &node.kind {
        NodeKind::Deliverable(d) => {
            out.push(("Owner", d.owner.to_string()));
            out.push(("Approval", d.approval.to_string()));
            if let Some(t) = &d.template {
                out.push(("Template", t.clone()));
            }
            for e in &d.evidence {
                out.push((
                    "Evidence",
                    if e.description.is_empty() {
                        evidence_name(e.kind).to_owned()
                    } else {
                        format!("{}: {}", evidence_name(e.kind), e.description)
                    },
                ));
            }
        }
        NodeKind::Milestone(m) => {
            if let Some(meeting) = &m.meeting {
                let mut what = meeting_name(meeting.kind).to_owned();
                if let Some(days) = meeting.every_days {
                    what.push_str(&format!(", {}", every(days)));
                }
                out.push(("Meeting", what));
            }
            if let Some(role) = &m.sign_off {
                out.push(("Signed off by", role.to_string()));
            }
        }
        NodeKind::Gate => {}
    }
    if let Some(due) = node.due {
        out.push(("Due", due.to_string()));
    }
    if node.effort_days > 0 {
        out.push(("Effort", format!("{} days", node.effort_days)));
    }
    if !node.needs.is_empty() {
        let needs: Vec<String> = node
            .needs
            .iter()
            .map(|&j| workflow.node(j).id.to_string())
            .collect();
        out.push(("Needs", needs.join(", ")));
    }
    if !node.required {
        out.push(("Required", "no (it never blocks the gate)".to_owned()));
    }
    out
}

/// The nodes of each section, in workflow order.
struct Sections<'a> {
    meetings: Vec<&'a Node>,
    deliverables: Vec<&'a Node>,
    milestones: Vec<&'a Node>,
    gate: &'a Node,
    after: Vec<&'a Node>,
}

fn sections(workflow: &Workflow) -> Sections<'_> {
    let mut s = Sections {
        meetings: Vec::new(),
        deliverables: Vec::new(),
        milestones: Vec::new(),
        gate: workflow.node(workflow.gate()),
        after: Vec::new(),
    };
    for node in workflow.nodes() {
        if node.after_go_live {
            s.after.push(node);
            continue;
        }
        match &node.kind {
            NodeKind::Milestone(m) if m.meeting.is_some() => s.meetings.push(node),
            NodeKind::Milestone(_) => s.milestones.push(node),
            NodeKind::Deliverable(_) => s.deliverables.push(node),
            NodeKind::Gate => {}
        }
    }
    s
}

/// The process description in Markdown.
pub fn markdown(workflow: &Workflow) -> String {
    let mut out = String::new();
    let s = sections(workflow);
    let _ = writeln!(out, "# Service transition: {}\n", workflow.name());
    if let Some(v) = workflow.declared_version() {
        let _ = writeln!(out, "Version {v} of the workflow.\n");
    }
    let _ = writeln!(out, "## Purpose\n\n{}\n", workflow.description().trim());
    if !workflow.roles().is_empty() {
        let _ = writeln!(out, "## Roles and responsibilities\n");
        let _ = writeln!(
            out,
            "| Role | What it is | Responsibilities |\n|---|---|---|"
        );
        for r in workflow.roles() {
            let _ = writeln!(
                out,
                "| `{}` | {} | {} |",
                r.name,
                md(&r.description),
                md(&r.responsibilities.join("; "))
            );
        }
        out.push('\n');
    }
    if !workflow.contacts().is_empty() {
        let _ = writeln!(out, "## Contacts\n");
        for c in workflow.contacts() {
            let role = c
                .role
                .as_ref()
                .map(|r| format!(" (`{r}`)"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "- **{}**{role}: {}",
                md(&c.name),
                md(&c.channels.join(", "))
            );
        }
        out.push('\n');
    }
    let section = |out: &mut String, title: &str, nodes: &[&Node]| {
        if nodes.is_empty() {
            return;
        }
        let _ = writeln!(out, "## {title}\n");
        for node in nodes {
            md_node(out, workflow, node);
        }
    };
    section(&mut out, "Meetings", &s.meetings);
    section(&mut out, "Deliverables", &s.deliverables);
    section(&mut out, "Milestones", &s.milestones);
    let _ = writeln!(out, "## The operations gate\n");
    md_node(&mut out, workflow, s.gate);
    if let Some(support) = workflow.support() {
        let _ = writeln!(out, "## Post-go-live support\n");
        let _ = writeln!(
            out,
            "{} days after go-live, ending with '{}'.\n",
            support.duration_days,
            md(&workflow.node(support.end).title)
        );
        for node in &s.after {
            md_node(&mut out, workflow, node);
        }
    }
    let _ = writeln!(
        out,
        "## The plan\n\nEach arrow points from what is needed to what needs it.\n\n```mermaid\n{}```",
        workflow.to_mermaid()
    );
    out
}

fn md_node(out: &mut String, workflow: &Workflow, node: &Node) {
    let _ = writeln!(out, "### {} (`{}`)\n", md(&node.title), node.id);
    if !node.description.is_empty() {
        let _ = writeln!(out, "{}\n", node.description.trim());
    }
    for (label, value) in facts(workflow, node) {
        let _ = writeln!(out, "- {label}: {}", md(&value));
    }
    if !node.checklist.is_empty() {
        let _ = writeln!(out, "- Checklist:");
        for item in &node.checklist {
            let _ = writeln!(out, "  - [ ] {}", md(item));
        }
    }
    out.push('\n');
}

/// The process description as an HTML fragment (for a page that has its own layout).
pub fn html_body(workflow: &Workflow) -> String {
    let e = html_escape;
    let mut out = String::new();
    let s = sections(workflow);
    let _ = write!(
        out,
        "<h1>Service transition: {}</h1>",
        e(workflow.name().as_str())
    );
    if let Some(v) = workflow.declared_version() {
        let _ = write!(out, "<p>Version {v} of the workflow.</p>");
    }
    let _ = write!(
        out,
        "<h2>Purpose</h2><p>{}</p>",
        e(workflow.description().trim())
    );
    if !workflow.roles().is_empty() {
        out.push_str(
            "<h2>Roles and responsibilities</h2><table><thead><tr><th scope=\"col\">Role</th>\
             <th scope=\"col\">What it is</th><th scope=\"col\">Responsibilities</th></tr></thead><tbody>",
        );
        for r in workflow.roles() {
            let duties: String = r
                .responsibilities
                .iter()
                .map(|d| format!("<li>{}</li>", e(d)))
                .collect();
            let _ = write!(
                out,
                "<tr><th scope=\"row\"><code>{}</code></th><td>{}</td><td><ul>{duties}</ul></td></tr>",
                e(r.name.as_str()),
                e(&r.description)
            );
        }
        out.push_str("</tbody></table>");
    }
    if !workflow.contacts().is_empty() {
        out.push_str("<h2>Contacts</h2><ul>");
        for c in workflow.contacts() {
            let role = c
                .role
                .as_ref()
                .map(|r| format!(" (<code>{}</code>)", e(r.as_str())))
                .unwrap_or_default();
            let _ = write!(
                out,
                "<li><strong>{}</strong>{role}: {}</li>",
                e(&c.name),
                e(&c.channels.join(", "))
            );
        }
        out.push_str("</ul>");
    }
    let section = |out: &mut String, title: &str, nodes: &[&Node]| {
        if nodes.is_empty() {
            return;
        }
        let _ = write!(out, "<h2>{title}</h2>");
        for node in nodes {
            html_node(out, workflow, node);
        }
    };
    section(&mut out, "Meetings", &s.meetings);
    section(&mut out, "Deliverables", &s.deliverables);
    section(&mut out, "Milestones", &s.milestones);
    out.push_str("<h2>The operations gate</h2>");
    html_node(&mut out, workflow, s.gate);
    if let Some(support) = workflow.support() {
        let _ = write!(
            out,
            "<h2>Post-go-live support</h2><p>{} days after go-live, ending with '{}'.</p>",
            support.duration_days,
            e(&workflow.node(support.end).title)
        );
        for node in &s.after {
            html_node(&mut out, workflow, node);
        }
    }
    let _ = write!(
        out,
        "<h2>The plan</h2><p>Each arrow points from what is needed to what needs it.</p>\
         <div class=\"scroll\">{}</div>",
        svg(workflow, None)
    );
    out
}

fn html_node(out: &mut String, workflow: &Workflow, node: &Node) {
    let e = html_escape;
    let _ = write!(
        out,
        "<section class=\"node\" id=\"node-{id}\"><h3>{title} <code>{id}</code></h3>",
        id = e(node.id.as_str()),
        title = e(&node.title)
    );
    if !node.description.is_empty() {
        let _ = write!(out, "<p>{}</p>", e(node.description.trim()));
    }
    out.push_str("<dl>");
    for (label, value) in facts(workflow, node) {
        let _ = write!(out, "<dt>{label}</dt><dd>{}</dd>", e(&value));
    }
    out.push_str("</dl>");
    if !node.checklist.is_empty() {
        out.push_str("<p>Checklist:</p><ul class=\"checklist\">");
        for item in &node.checklist {
            let _ = write!(out, "<li>{}</li>", e(item));
        }
        out.push_str("</ul>");
    }
    out.push_str("</section>");
}

/// The process description as a standalone HTML document (its own small style sheet).
pub fn html(workflow: &Workflow) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"/><title>Service \
         transition: {name}</title><style>{STYLE}</style></head><body>{body}</body></html>\n",
        name = html_escape(workflow.name().as_str()),
        body = html_body(workflow)
    )
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;\
padding:0 1rem;line-height:1.45;color:#1b1f24}table{border-collapse:collapse}th,td{border:1px \
solid #ccd;padding:.3rem .5rem;text-align:left;vertical-align:top}dt{font-weight:600;float:left;\
clear:left;width:9rem}dd{margin-left:10rem}.node{border-top:1px solid #dde;margin-top:1rem}\
svg .node rect{fill:#eef2f7;stroke:#557}svg .gate rect{fill:#fff4d6}svg .milestone rect{fill:#eaf6ea}\
svg .edge{fill:none;stroke:#889}svg text{font-size:12px;fill:#1b1f24}svg .state{fill:#556}";

/// The workflow's graph as SVG: one column per depth (a node stands right of everything it
/// needs), each node a box coloured by its state in `state` (its kind without one), each
/// `needs` an arrow; each node links to `#node-ID`.
pub fn svg(wf: &Workflow, state: Option<&TransitionState>) -> String {
    const W: usize = 190;
    const H: usize = 46;
    const GAP_X: usize = 56;
    const GAP_Y: usize = 14;
    let esc = html_escape;
    let nodes = wf.nodes();
    let mut depth = vec![0usize; nodes.len()];
    for (i, node) in nodes.iter().enumerate() {
        depth[i] = node.needs.iter().map(|&n| depth[n] + 1).max().unwrap_or(0);
    }
    let columns = depth.iter().max().map_or(0, |d| d + 1);
    let mut row = vec![0usize; nodes.len()];
    let mut filled = vec![0usize; columns];
    for i in 0..nodes.len() {
        row[i] = filled[depth[i]];
        filled[depth[i]] += 1;
    }
    let rows = filled.iter().copied().max().unwrap_or(0);
    let width = columns * (W + GAP_X);
    let height = rows * (H + GAP_Y) + GAP_Y;
    let at = |i: usize| (depth[i] * (W + GAP_X) + 4, row[i] * (H + GAP_Y) + GAP_Y);
    let mut svg = format!(
        "<svg class=\"dag\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
         viewBox=\"0 0 {width} {height}\" role=\"group\" aria-label=\"The workflow's graph with each \
         node's state\"><defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" \
         markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\"><path d=\"M 0 0 L 10 5 \
         L 0 10 z\"/></marker></defs>"
    );
    for (i, node) in nodes.iter().enumerate() {
        let (x, y) = at(i);
        for &n in &node.needs {
            let (nx, ny) = at(n);
            let _ = write!(
                svg,
                "<path class=\"edge\" d=\"M {} {} C {} {}, {} {}, {} {}\" marker-end=\"url(#arrow)\"/>",
                nx + W,
                ny + H / 2,
                nx + W + GAP_X / 2,
                ny + H / 2,
                x - GAP_X / 2,
                y + H / 2,
                x - 2,
                y + H / 2
            );
        }
    }
    for (i, node) in nodes.iter().enumerate() {
        let (x, y) = at(i);
        let (class, word) = match state.map(|st| &st.nodes[i]) {
            Some(ns) => (
                if ns.waiver.is_some() && !ns.status.is_done() {
                    "waived".to_owned()
                } else {
                    ns.status.as_str().to_owned()
                },
                match ns.status {
                    NodeStatus::ChangesRequested => "changes requested".to_owned(),
                    s => s.as_str().to_owned(),
                },
            ),
            None => ("plan".to_owned(), node.kind.label().to_owned()),
        };
        let shape = match node.kind {
            NodeKind::Gate => "gate",
            NodeKind::Milestone(_) => "milestone",
            NodeKind::Deliverable(_) => "deliverable",
        };
        let title: String = node.title.chars().take(26).collect();
        let title = if title.len() < node.title.len() {
            format!("{title}…")
        } else {
            title
        };
        let _ = write!(
            svg,
            "<a href=\"#node-{id}\"><g class=\"node n-{class} {shape}\"><title>{full}: {word}</title>\
             <rect x=\"{x}\" y=\"{y}\" width=\"{W}\" height=\"{H}\" rx=\"6\"/>\
             <text x=\"{tx}\" y=\"{ty1}\">{title}</text><text class=\"state\" x=\"{tx}\" y=\"{ty2}\">{word}</text></g></a>",
            id = esc(node.id.as_str()),
            full = esc(&node.title),
            title = esc(&title),
            word = esc(&word),
            tx = x + 10,
            ty1 = y + 19,
            ty2 = y + 36,
        );
    }
    svg.push_str("</svg>");
    svg
}
