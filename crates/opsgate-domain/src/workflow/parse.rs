//! YAML to [`Workflow`]: serde-saphyr parsing with locations, then semantic checks that report every problem at once.

use std::collections::{BTreeSet, HashMap, VecDeque};

use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::{
    Node, NodeKind, PROJECT_MANAGER_ROLE, Problem, Role, SERVICE_MANAGER_ROLE, Workflow,
    WorkflowErrors,
};
use crate::ids::{NodeId, RoleName, WorkflowName};

/// Largest workflow source accepted, so a hostile file cannot exhaust the server.
pub const MAX_SOURCE_BYTES: usize = 1024 * 1024;
/// Most nodes (deliverables, milestones and the gate) one workflow may declare.
pub const MAX_NODES: usize = 10_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWorkflow {
    name: Spanned<String>,
    #[serde(default)]
    description: String,
    #[serde(default)]
    roles: HashMap<Spanned<String>, Option<RawRole>>,
    #[serde(default)]
    milestones: Vec<RawNode>,
    #[serde(default)]
    deliverables: Vec<RawNode>,
    #[serde(default)]
    gate: Option<RawNode>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRole {
    #[serde(default)]
    description: String,
}

/// One node as written. `owner`/`approver` are only allowed on deliverables; checked after parsing.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNode {
    id: Spanned<String>,
    title: Spanned<String>,
    #[serde(default)]
    description: String,
    #[serde(default)]
    owner: Option<Spanned<String>>,
    #[serde(default)]
    approver: Option<Spanned<String>>,
    #[serde(default)]
    needs: Vec<Spanned<String>>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Section {
    Milestone,
    Deliverable,
    Gate,
}

/// Collects problems with their locations.
struct Problems(Vec<Problem>);

impl Problems {
    fn at<T>(&mut self, spanned: &Spanned<T>, message: impl Into<String>) {
        self.0.push(Problem {
            line: u32::try_from(spanned.referenced.line()).unwrap_or(u32::MAX),
            col: u32::try_from(spanned.referenced.column()).unwrap_or(u32::MAX),
            message: message.into(),
        });
    }

    fn at_start(&mut self, message: impl Into<String>) {
        self.0.push(Problem {
            line: 1,
            col: 1,
            message: message.into(),
        });
    }
}

fn yaml_problem(err: &serde_saphyr::Error) -> Problem {
    let (line, col) = err
        .location()
        .map(|l| (l.line(), l.column()))
        .unwrap_or((1, 1));
    // The rendered error may carry its own location prefix and a source snippet: keep the first line only.
    let rendered = err.without_snippet().to_string();
    let first = rendered.lines().next().unwrap_or("malformed YAML").trim();
    Problem {
        line: u32::try_from(line.max(1)).unwrap_or(u32::MAX),
        col: u32::try_from(col.max(1)).unwrap_or(u32::MAX),
        message: plain_words(strip_location_suffix(first)),
    }
}

/// Rewords parser messages that speak to a Rust developer rather than to the workflow's author.
fn plain_words(message: &str) -> String {
    if let Some(rest) = message.strip_prefix("duplicate mapping key: ") {
        let key = rest
            .split(", set DuplicateKeyPolicy")
            .next()
            .unwrap_or(rest);
        return format!("duplicate key '{key}'");
    }
    message.to_owned()
}

/// serde-saphyr appends " at line L, column C" to some messages; the location is already in the prefix.
fn strip_location_suffix(message: &str) -> &str {
    match message.rfind(" at line ") {
        Some(i) => &message[..i],
        None => message,
    }
}

pub(super) fn parse(file: &str, source: &str) -> Result<Workflow, WorkflowErrors> {
    let fail = |problems: Vec<Problem>| WorkflowErrors {
        file: file.to_owned(),
        problems,
    };
    if source.len() > MAX_SOURCE_BYTES {
        return Err(fail(vec![Problem {
            line: 1,
            col: 1,
            message: format!(
                "workflow file is {} bytes, the limit is {MAX_SOURCE_BYTES}",
                source.len()
            ),
        }]));
    }
    let raw: RawWorkflow =
        serde_saphyr::from_str(source).map_err(|e| fail(vec![yaml_problem(&e)]))?;
    let mut problems = Problems(Vec::new());
    let workflow = check(raw, &mut problems);
    let mut problems = problems.0;
    match workflow {
        Some(w) if problems.is_empty() => Ok(w),
        _ => {
            problems.sort_by_key(|p| (p.line, p.col));
            problems.dedup();
            Err(fail(problems))
        }
    }
}

/// A node that passed its own checks, before the graph is ordered.
struct Pending {
    id: NodeId,
    raw: RawNode,
    kind: NodeKind,
}

fn check(raw: RawWorkflow, p: &mut Problems) -> Option<Workflow> {
    let name = WorkflowName::parse(raw.name.value.clone())
        .map_err(|e| p.at(&raw.name, e.to_string()))
        .ok();

    let roles = check_roles(raw.roles, p);

    let total = raw.milestones.len() + raw.deliverables.len() + usize::from(raw.gate.is_some());
    if total > MAX_NODES {
        p.at_start(format!(
            "workflow declares {total} nodes, the limit is {MAX_NODES}"
        ));
        return None;
    }

    let mut raw_nodes: Vec<(Section, RawNode)> = Vec::with_capacity(total);
    raw_nodes.extend(raw.milestones.into_iter().map(|n| (Section::Milestone, n)));
    raw_nodes.extend(
        raw.deliverables
            .into_iter()
            .map(|n| (Section::Deliverable, n)),
    );
    if raw.gate.is_none() {
        p.at_start(
            "workflow has no operations gate: add a `gate:` section with the nodes it needs",
        );
    }
    raw_nodes.extend(raw.gate.map(|n| (Section::Gate, n)));
    // File order, so that messages and the topological order follow what the author wrote.
    raw_nodes.sort_by_key(|(_, n)| (n.id.referenced.line(), n.id.referenced.column()));

    let mut pending: Vec<Pending> = Vec::with_capacity(raw_nodes.len());
    let mut seen: HashMap<String, (u64, u64)> = HashMap::new();
    for (section, node) in raw_nodes {
        let id = match NodeId::parse(node.id.value.clone()) {
            Ok(id) => id,
            Err(e) => {
                p.at(&node.id, e.to_string());
                continue;
            }
        };
        if let Some((line, col)) = seen.get(id.as_str()) {
            p.at(
                &node.id,
                format!("duplicate id '{id}': already defined at line {line}, column {col}"),
            );
            continue;
        }
        seen.insert(
            id.as_str().to_owned(),
            (node.id.referenced.line(), node.id.referenced.column()),
        );
        if node.title.value.trim().is_empty() {
            p.at(&node.title, format!("'{id}' needs a non-empty title"));
        }
        let kind = node_kind(section, &id, &node, &roles, p);
        pending.push(Pending {
            id,
            raw: node,
            kind,
        });
    }

    let (nodes, gate) = order(pending, p)?;
    let roles = roles
        .into_iter()
        .map(|(name, description)| Role { name, description })
        .collect();
    Some(Workflow::from_parts(
        name?,
        raw.description.trim().to_owned(),
        roles,
        nodes,
        gate?,
    ))
}

/// Declared roles plus the built-in ones, sorted by name.
fn check_roles(
    raw: HashMap<Spanned<String>, Option<RawRole>>,
    p: &mut Problems,
) -> Vec<(RoleName, String)> {
    let mut declared: Vec<_> = raw.into_iter().collect();
    declared.sort_by_key(|(k, _)| (k.referenced.line(), k.referenced.column()));
    let mut roles: Vec<(RoleName, String)> = Vec::new();
    for (key, role) in declared {
        match RoleName::parse(key.value.clone()) {
            Ok(name) => roles.push((name, role.unwrap_or_default().description.trim().to_owned())),
            Err(e) => p.at(&key, e.to_string()),
        }
    }
    for (builtin, description) in [
        (PROJECT_MANAGER_ROLE, "the transition's project manager"),
        (
            SERVICE_MANAGER_ROLE,
            "the transition's service manager; accepts the handover at the gate",
        ),
    ] {
        if !roles.iter().any(|(n, _)| n.as_str() == builtin)
            && let Ok(name) = RoleName::parse(builtin)
        {
            roles.push((name, description.to_owned()));
        }
    }
    roles.sort_by(|a, b| a.0.cmp(&b.0));
    roles
}

fn node_kind(
    section: Section,
    id: &NodeId,
    node: &RawNode,
    roles: &[(RoleName, String)],
    p: &mut Problems,
) -> NodeKind {
    let mut role = |field: &str, value: &Option<Spanned<String>>| -> Option<RoleName> {
        let Some(value) = value else {
            p.at(
                &node.id,
                format!("deliverable '{id}' has no `{field}:` role"),
            );
            return None;
        };
        if roles.iter().any(|(n, _)| n.as_str() == value.value) {
            return RoleName::parse(value.value.clone()).ok();
        }
        let declared: Vec<&str> = roles.iter().map(|(n, _)| n.as_str()).collect();
        let hint = did_you_mean(&value.value, declared.iter().copied());
        p.at(
            value,
            format!(
                "unknown role '{}' as {field} of '{id}'{hint}: declare it under `roles:` (declared: {})",
                value.value,
                declared.join(", ")
            ),
        );
        None
    };
    match section {
        Section::Deliverable => {
            let owner = role("owner", &node.owner);
            let approver = role("approver", &node.approver);
            match (owner, approver) {
                (Some(owner), Some(approver)) => NodeKind::Deliverable { owner, approver },
                // A placeholder kind; the workflow is rejected because a problem was recorded.
                _ => NodeKind::Milestone,
            }
        }
        Section::Milestone | Section::Gate => {
            let what = if section == Section::Gate {
                "the gate"
            } else {
                "a milestone"
            };
            for (field, value) in [("owner", &node.owner), ("approver", &node.approver)] {
                if let Some(value) = value {
                    p.at(
                        value,
                        format!("`{field}:` is only allowed on deliverables, '{id}' is {what}"),
                    );
                }
            }
            if section == Section::Gate {
                NodeKind::Gate
            } else {
                NodeKind::Milestone
            }
        }
    }
}

/// Resolves `needs:`, rejects cycles (naming their path) and returns the nodes in a stable topological order.
fn order(pending: Vec<Pending>, p: &mut Problems) -> Option<(Vec<Node>, Option<usize>)> {
    let position: HashMap<&str, usize> = pending
        .iter()
        .enumerate()
        .map(|(i, n)| (n.id.as_str(), i))
        .collect();
    let mut graph: DiGraph<usize, ()> = DiGraph::with_capacity(pending.len(), pending.len() * 2);
    let idx: Vec<NodeIndex> = (0..pending.len()).map(|i| graph.add_node(i)).collect();
    let mut needs: Vec<Vec<usize>> = vec![Vec::new(); pending.len()];
    let mut resolved_all = true;
    for (i, node) in pending.iter().enumerate() {
        let mut seen = BTreeSet::new();
        for need in &node.raw.needs {
            match position.get(need.value.as_str()) {
                Some(&j) if seen.insert(j) => {
                    needs[i].push(j);
                    // Edge from the node to what it needs: a path a -> b reads "a needs b".
                    graph.add_edge(idx[i], idx[j], ());
                }
                Some(_) => p.at(
                    need,
                    format!(
                        "'{}' is listed twice in the needs of '{}'",
                        need.value, node.id
                    ),
                ),
                None => {
                    resolved_all = false;
                    let hint = did_you_mean(&need.value, pending.iter().map(|n| n.id.as_str()));
                    p.at(
                        need,
                        format!(
                            "unknown node '{}' in the needs of '{}'{hint}",
                            need.value, node.id
                        ),
                    );
                }
            }
        }
    }

    let mut cyclic = false;
    for scc in tarjan_scc(&graph) {
        let self_loop = scc.len() == 1 && graph.contains_edge(scc[0], scc[0]);
        if scc.len() < 2 && !self_loop {
            continue;
        }
        cyclic = true;
        let members: BTreeSet<usize> = scc.iter().map(|&n| graph[n]).collect();
        let path = cycle_path(&members, &needs);
        let names: Vec<&str> = path.iter().map(|&i| pending[i].id.as_str()).collect();
        p.at(
            &pending[path[0]].raw.id,
            format!(
                "needs form a cycle: {} (each node needs the next)",
                names.join(" -> ")
            ),
        );
    }
    if cyclic || !resolved_all {
        return None;
    }

    let order = stable_topological_order(&needs);
    let mut new_index = vec![0; pending.len()];
    for (new, &old) in order.iter().enumerate() {
        new_index[old] = new;
    }
    let mut slots: Vec<Option<Pending>> = pending.into_iter().map(Some).collect();
    let mut gate = None;
    let mut nodes = Vec::with_capacity(slots.len());
    for &old in &order {
        let Some(n) = slots[old].take() else { continue };
        if n.kind == NodeKind::Gate {
            gate = Some(nodes.len());
        }
        nodes.push(Node {
            id: n.id,
            title: n.raw.title.value.trim().to_owned(),
            description: n.raw.description.trim().to_owned(),
            kind: n.kind,
            needs: needs[old].iter().map(|&j| new_index[j]).collect(),
        });
    }
    Some((nodes, gate))
}

/// ` (did you mean 'x'?)` for the closest candidate, when one is close enough to be a typo.
fn did_you_mean<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> String {
    candidates
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, _)| *score >= 0.85)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| format!(" (did you mean '{c}'?)"))
        .unwrap_or_default()
}

/// Shortest cycle through the smallest member of a strongly connected component, closed on its start.
fn cycle_path(members: &BTreeSet<usize>, needs: &[Vec<usize>]) -> Vec<usize> {
    let Some(&start) = members.first() else {
        return Vec::new();
    };
    let mut parent: HashMap<usize, usize> = HashMap::new();
    let mut queue = VecDeque::from([start]);
    while let Some(at) = queue.pop_front() {
        for &next in &needs[at] {
            if !members.contains(&next) {
                continue;
            }
            if next == start {
                let mut path = vec![start];
                let mut cur = at;
                while cur != start {
                    path.push(cur);
                    cur = parent[&cur];
                }
                path.push(start);
                let last = path.len() - 1;
                path[1..last].reverse();
                return path;
            }
            if let std::collections::hash_map::Entry::Vacant(e) = parent.entry(next) {
                e.insert(at);
                queue.push_back(next);
            }
        }
    }
    vec![start, start]
}

/// Kahn's algorithm, always taking the ready node that comes first in the file.
fn stable_topological_order(needs: &[Vec<usize>]) -> Vec<usize> {
    let mut waiting: Vec<usize> = needs.iter().map(Vec::len).collect();
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); needs.len()];
    for (i, ns) in needs.iter().enumerate() {
        for &j in ns {
            dependents[j].push(i);
        }
    }
    let mut ready: BTreeSet<usize> = (0..needs.len()).filter(|&i| waiting[i] == 0).collect();
    let mut order = Vec::with_capacity(needs.len());
    while let Some(i) = ready.pop_first() {
        order.push(i);
        for &d in &dependents[i] {
            waiting[d] -= 1;
            if waiting[d] == 0 {
                ready.insert(d);
            }
        }
    }
    order
}
