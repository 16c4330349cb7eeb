//! YAML to [`Workflow`]: locations from serde-saphyr, then checks that report every problem at once.

use std::collections::{BTreeSet, HashMap, VecDeque};

use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};
use serde::Deserialize as _;

use super::ancestors;
use super::keys::{check_unknown_fields, fill_required_fields, names_placeholder};
use super::raw::{
    RawApproval, RawApprover, RawDeliverable, RawGate, RawMilestone, RawPostGoLive, RawRole,
    RawWorkflow,
};
use super::yaml::{self, Located, NodeDeserializer};
use super::{
    Anchor, ApprovalPolicy, Approver, Contact, Deliverable, Due, EvidenceKind, EvidenceRequirement,
    Meeting, MeetingKind, Milestone, Node, NodeKind, PROJECT_MANAGER_ROLE, Parts, Problem, Role,
    SERVICE_MANAGER_ROLE, Support, Workflow, WorkflowErrors,
};
use crate::ids::{Actor, NodeId, RoleName, WorkflowName};

/// Largest workflow source accepted, so a hostile file cannot exhaust the server.
pub const MAX_SOURCE_BYTES: usize = 1024 * 1024;
/// Whether a `template:` is a link rather than a path beside the workflow.
pub fn is_link(template: &str) -> bool {
    template.starts_with("https://") || template.starts_with("http://")
}

/// Most nodes (deliverables, milestones and the gate) one workflow may declare.
pub const MAX_NODES: usize = 10_000;
/// Largest due offset or duration, in days (about 27 years).
const MAX_DAYS: u32 = 10_000;

/// A 1-based line and column.
type Pos = (u32, u32);

fn pos<T>(s: &Located<T>) -> Pos {
    (s.line, s.col)
}

/// Collects problems with their locations.
pub(super) struct Problems(pub(super) Vec<Problem>, pub(super) Vec<(Pos, String)>);

impl Problems {
    pub(super) fn at<T>(&mut self, spanned: &Located<T>, message: impl Into<String>) {
        self.at_pos(pos(spanned), message);
    }

    pub(super) fn at_pos(&mut self, (line, col): Pos, message: impl Into<String>) {
        self.0.push(Problem {
            line,
            col,
            message: message.into(),
        });
    }

    fn at_start(&mut self, message: impl Into<String>) {
        self.at_pos((1, 1), message);
    }
}

/// ` (did you mean 'x'?)` for the closest candidate, when one is close enough to be a typo.
pub(super) fn did_you_mean<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> String {
    candidates
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, _)| *score >= 0.85)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| format!(" (did you mean '{c}'?)"))
        .unwrap_or_default()
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
    if message.starts_with("data did not match any variant of untagged enum") {
        return "an approver is a role name or {person: NAME}".to_owned();
    }
    message.to_owned()
}

pub(super) fn parse(file: &str, source: &str) -> Result<Workflow, WorkflowErrors> {
    parse_with(file, source, &|_| None)
}

/// [`parse`], and each `template:` that is a path (not a link) asked of `missing`, which says
/// why it cannot be used (it does not exist, it is too large), or nothing when it can: reported
/// with every other problem, at the template's line and column.
pub(super) fn parse_with(
    file: &str,
    source: &str,
    missing: &dyn Fn(&str) -> Option<String>,
) -> Result<Workflow, WorkflowErrors> {
    let fail = |mut problems: Vec<Problem>| {
        problems.sort_by_key(|p| (p.line, p.col));
        problems.dedup();
        WorkflowErrors {
            file: file.to_owned(),
            problems,
        }
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
    let (mut tree, duplicates) = yaml::load(source).map_err(|e| fail(vec![e]))?;
    let mut p = Problems(duplicates, Vec::new());
    check_unknown_fields(&tree, &mut p);
    fill_required_fields(&mut tree, &mut p);
    // What the checks below say about a placeholder repeats a missing-field problem.
    let reported = p.0.len();
    let raw = match RawWorkflow::deserialize(NodeDeserializer(&tree)) {
        Ok(raw) => raw,
        Err(e) => {
            let mut problem = e.into_problem();
            problem.message = plain_words(&problem.message);
            p.0.push(problem);
            return Err(fail(p.0));
        }
    };
    let workflow = check(raw, &mut p);
    for (at, path) in std::mem::take(&mut p.1) {
        if let Some(why) = missing(&path) {
            p.at_pos(at, format!("template '{path}' {why}"));
        }
    }
    if p.0.len() > reported {
        let mut i = 0;
        p.0.retain(|problem| {
            i += 1;
            i <= reported || !names_placeholder(&problem.message)
        });
    }
    match workflow {
        Some(w) if p.0.is_empty() => Ok(w),
        _ => Err(fail(p.0)),
    }
}

/// Nodes in topological order, the gate's index, and each node's (id, due) source positions.
type Ordered = (Vec<Node>, Option<usize>, Vec<(Pos, Pos)>);

/// A `needs:` entry, written or implied (post-go-live nodes need the gate).
struct Need {
    name: String,
    at: Pos,
}

/// A node that passed its own checks, before the graph is ordered.
struct Pending {
    node: Node,
    id_at: Pos,
    needs: Vec<Need>,
    due_at: Pos,
}

/// Role names known to the workflow, for checks and suggestions.
struct Roles(Vec<Role>);

impl Roles {
    fn check(
        &self,
        p: &mut Problems,
        value: &Located<String>,
        what: impl FnOnce() -> String,
    ) -> Option<RoleName> {
        if let Some(role) = self.0.iter().find(|r| r.name.as_str() == value.value) {
            return Some(role.name.clone());
        }
        let declared: Vec<&str> = self.0.iter().map(|r| r.name.as_str()).collect();
        let hint = did_you_mean(&value.value, declared.iter().copied());
        p.at(
            value,
            format!(
                "unknown role '{}' as {}{hint}: declare it under `roles:` (declared: {})",
                value.value,
                what(),
                declared.join(", ")
            ),
        );
        None
    }
}

fn check(raw: RawWorkflow, p: &mut Problems) -> Option<Workflow> {
    let name = WorkflowName::parse(raw.name.value.clone())
        .map_err(|e| p.at(&raw.name, e.to_string()))
        .ok();
    let declared_version = raw.version.as_ref().and_then(|v| {
        if v.value == 0 {
            p.at(v, "version must be 1 or more");
            None
        } else {
            Some(v.value)
        }
    });
    let roles = Roles(check_roles(raw.roles, p));
    let contacts = raw
        .contacts
        .into_iter()
        .filter_map(|c| {
            if c.name.value.trim().is_empty() {
                p.at(&c.name, "a contact needs a name");
            }
            let role = match &c.role {
                Some(r) => {
                    Some(roles.check(p, r, || format!("role of contact '{}'", c.name.value))?)
                }
                None => None,
            };
            Some(Contact {
                name: c.name.value.trim().to_owned(),
                role,
                channels: c.channels,
            })
        })
        .collect();

    let total = raw.milestones.len()
        + raw.deliverables.len()
        + usize::from(raw.gate.is_some())
        + raw
            .post_go_live
            .as_ref()
            .map_or(0, |s| s.deliverables.len() + 1);
    if total > MAX_NODES {
        p.at_start(format!(
            "workflow declares {total} nodes, the limit is {MAX_NODES}"
        ));
        return None;
    }

    let mut pending: Vec<Pending> = Vec::with_capacity(total);
    for m in raw.milestones {
        pending.extend(milestone(m, &roles, p));
    }
    for d in raw.deliverables {
        pending.extend(deliverable(d, &roles, false, p));
    }
    let gate_id = raw.gate.as_ref().map(|g| g.id.value.clone());
    match raw.gate {
        Some(g) => pending.extend(gate(g, p)),
        None => p.at_start(
            "workflow has no operations gate: add a `gate:` section with the nodes it needs",
        ),
    }
    let mut support_days = None;
    if let Some(s) = raw.post_go_live {
        support_days = post_go_live(s, gate_id.as_deref(), &roles, &mut pending, p);
    }
    // File order, so that messages and the topological order follow what the author wrote.
    pending.sort_by_key(|n| n.id_at);

    let mut seen: HashMap<String, Pos> = HashMap::new();
    pending.retain(|n| {
        if let Some((line, col)) = seen.get(n.node.id.as_str()) {
            p.at_pos(
                n.id_at,
                format!(
                    "duplicate id '{}': already defined at line {line}, column {col}",
                    n.node.id
                ),
            );
            return false;
        }
        seen.insert(n.node.id.to_string(), n.id_at);
        true
    });

    let (nodes, gate, positions) = order(pending, p)?;
    let gate = gate?;
    check_structure(&nodes, gate, &positions, p);
    let support = match (
        support_days,
        nodes
            .iter()
            .position(|n| matches!(&n.kind, NodeKind::Milestone(m) if m.ends_support)),
    ) {
        (Some(duration_days), Some(end)) => Some(Support { duration_days, end }),
        _ => None,
    };
    let parts = Parts {
        name: name?,
        declared_version,
        description: raw.description.trim().to_owned(),
        roles: roles.0,
        contacts,
    };
    Some(Workflow::from_parts(parts, nodes, gate, support))
}

/// Declared roles plus the built-in ones, sorted by name.
fn check_roles(raw: HashMap<Located<String>, Option<RawRole>>, p: &mut Problems) -> Vec<Role> {
    let mut declared: Vec<_> = raw.into_iter().collect();
    declared.sort_by_key(|(k, _)| pos(k));
    let mut roles: Vec<Role> = Vec::new();
    for (key, role) in declared {
        match RoleName::parse(key.value.clone()) {
            Ok(name) => {
                let role = role.unwrap_or_default();
                roles.push(Role {
                    name,
                    description: role.description.trim().to_owned(),
                    responsibilities: role.responsibilities,
                });
            }
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
        if !roles.iter().any(|r| r.name.as_str() == builtin)
            && let Ok(name) = RoleName::parse(builtin)
        {
            roles.push(Role {
                name,
                description: description.to_owned(),
                responsibilities: Vec::new(),
            });
        }
    }
    roles.sort_by(|a, b| a.name.cmp(&b.name));
    roles
}

/// `start`, `go_live`, `start + 5d`, `go_live - 2w`.
fn parse_due(text: &str) -> Result<Due, String> {
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let (anchor, rest) = if let Some(rest) = compact.strip_prefix("go_live") {
        (Anchor::GoLive, rest)
    } else if let Some(rest) = compact.strip_prefix("start") {
        (Anchor::Start, rest)
    } else {
        return Err(format!(
            "due '{text}' must be start or go_live, optionally plus or minus days or weeks, like `go_live - 10d`"
        ));
    };
    if rest.is_empty() {
        return Ok(Due { anchor, days: 0 });
    }
    let (sign, amount) = match rest.split_at(1) {
        ("+", amount) => (1, amount),
        ("-", amount) => (-1, amount),
        _ => return Err(format!("due '{text}': expected + or - after the anchor")),
    };
    let days = parse_days(amount).map_err(|e| format!("due '{text}': {e}"))?;
    Ok(Due {
        anchor,
        days: sign * i32::try_from(days).unwrap_or(i32::MAX),
    })
}

/// `5d`, `2w`.
fn parse_days(text: &str) -> Result<u32, String> {
    let text = text.trim();
    let (number, unit) = text.split_at(text.len().saturating_sub(1));
    let factor = match unit {
        "d" => 1,
        "w" => 7,
        _ => {
            return Err(format!(
                "'{text}' must be a number of days or weeks, like `5d` or `2w`"
            ));
        }
    };
    let n: u32 = number
        .parse()
        .map_err(|_| format!("'{text}' must be a number of days or weeks, like `5d` or `2w`"))?;
    let days = n.saturating_mul(factor);
    if days > MAX_DAYS {
        return Err(format!("'{text}' is more than {MAX_DAYS} days"));
    }
    Ok(days)
}

fn due_of(value: Option<&Located<String>>, p: &mut Problems) -> Option<Due> {
    let value = value?;
    parse_due(&value.value).map_err(|e| p.at(value, e)).ok()
}

/// Checks the fields every node has; `None` when the id itself is unusable.
fn common(
    id: &Located<String>,
    title: &Located<String>,
    description: String,
    kind: NodeKind,
    needs: &[Located<String>],
    due: Option<&Located<String>>,
    p: &mut Problems,
) -> Option<Pending> {
    let node_id = NodeId::parse(id.value.clone())
        .map_err(|e| p.at(id, e.to_string()))
        .ok()?;
    if title.value.trim().is_empty() {
        p.at(title, format!("'{node_id}' needs a non-empty title"));
    }
    let due_at = due.map_or(pos(id), pos);
    let due = due_of(due, p);
    Some(Pending {
        node: Node {
            id: node_id,
            title: title.value.trim().to_owned(),
            description: description.trim().to_owned(),
            kind,
            needs: Vec::new(),
            due,
            effort_days: 0,
            required: true,
            checklist: Vec::new(),
            after_go_live: false,
        },
        id_at: pos(id),
        needs: needs
            .iter()
            .map(|n| Need {
                name: n.value.clone(),
                at: pos(n),
            })
            .collect(),
        due_at,
    })
}

fn milestone(m: RawMilestone, roles: &Roles, p: &mut Problems) -> Option<Pending> {
    let sign_off = m
        .sign_off
        .as_ref()
        .and_then(|r| roles.check(p, r, || format!("sign-off of '{}'", m.id.value)));
    let meeting = m.meeting.as_ref().and_then(|k| {
        let kind = match k.value.as_str() {
            "startup" => MeetingKind::Startup,
            "follow_up" => MeetingKind::FollowUp,
            "review" => MeetingKind::Review,
            other => {
                let hint = did_you_mean(other, ["startup", "follow_up", "review"].into_iter());
                p.at(
                    k,
                    format!("unknown meeting '{other}'{hint}: use startup, follow_up or review"),
                );
                return None;
            }
        };
        Some(kind)
    });
    let every_days = m.every.as_ref().and_then(|e| {
        if meeting != Some(MeetingKind::FollowUp) {
            p.at(e, "`every:` is only for follow_up meetings");
        }
        parse_days(&e.value).map_err(|err| p.at(e, err)).ok()
    });
    let kind = NodeKind::Milestone(Milestone {
        sign_off,
        meeting: meeting.map(|kind| Meeting { kind, every_days }),
        ends_support: false,
    });
    common(
        &m.id,
        &m.title,
        m.description,
        kind,
        &m.needs,
        m.due.as_ref(),
        p,
    )
}

fn approver(
    raw: &Located<RawApprover>,
    roles: &Roles,
    id: &str,
    p: &mut Problems,
) -> Option<Approver> {
    match &raw.value {
        RawApprover::Role(name) => {
            let located = Located {
                value: name.clone(),
                line: raw.line,
                col: raw.col,
            };
            roles
                .check(p, &located, || format!("approver of '{id}'"))
                .map(Approver::Role)
        }
        RawApprover::Person { person } => Actor::parse_field("person", person)
            .map(Approver::Person)
            .map_err(|e| p.at(raw, e.to_string()))
            .ok(),
    }
}

fn approval_policy(
    d: &RawDeliverable,
    owner: Option<&RoleName>,
    roles: &Roles,
    p: &mut Problems,
) -> Option<ApprovalPolicy> {
    let id = &d.id.value;
    let list =
        |entries: &Located<Vec<Located<RawApprover>>>, p: &mut Problems| -> Option<Vec<Approver>> {
            if entries.value.is_empty() {
                p.at(
                    entries,
                    format!("the approvers of '{id}' must not be empty"),
                );
                return None;
            }
            let mut out: Vec<Approver> = Vec::new();
            let mut ok = true;
            for e in &entries.value {
                match approver(e, roles, id, p) {
                    Some(a) if out.contains(&a) => {
                        p.at(
                            e,
                            format!("{a} is listed twice among the approvers of '{id}'"),
                        );
                        ok = false;
                    }
                    Some(a) => out.push(a),
                    None => ok = false,
                }
            }
            ok.then_some(out)
        };
    match (&d.approver, &d.approval) {
        (Some(a), None) => roles
            .check(p, a, || format!("approver of '{id}'"))
            .map(|r| ApprovalPolicy::AnyOf(vec![Approver::Role(r)])),
        (Some(a), Some(_)) => {
            p.at(
                a,
                format!("'{id}' has both `approver:` and `approval:`; keep one"),
            );
            None
        }
        (None, None) => {
            p.at(
                &d.id,
                format!("deliverable '{id}' has no `approver:` role or `approval:` policy"),
            );
            None
        }
        (None, Some(approval)) => {
            let RawApproval {
                any_of,
                all_of,
                quorum,
                of,
            } = &approval.value;
            let forms = usize::from(any_of.is_some())
                + usize::from(all_of.is_some())
                + usize::from(quorum.is_some());
            if forms != 1 {
                p.at(
                    approval,
                    format!("the approval of '{id}' needs exactly one of any_of, all_of or quorum"),
                );
                return None;
            }
            if let Some(of) = of
                && quorum.is_none()
            {
                p.at(
                    of,
                    format!("`of:` goes with `quorum:` in the approval of '{id}'"),
                );
                return None;
            }
            if let Some(a) = any_of {
                return list(a, p).map(ApprovalPolicy::AnyOf);
            }
            if let Some(a) = all_of {
                let approvers = list(a, p)?;
                check_feasible(a, approvers.len(), &approvers, owner, id, p);
                return Some(ApprovalPolicy::AllOf(approvers));
            }
            let k = quorum.as_ref()?;
            let Some(of) = of else {
                p.at(
                    k,
                    format!("`quorum:` of '{id}' needs `of:`, the roles or people who may approve"),
                );
                return None;
            };
            let approvers = list(of, p)?;
            if k.value == 0 {
                p.at(k, format!("the quorum of '{id}' must be 1 or more"));
                return None;
            }
            check_feasible(k, k.value as usize, &approvers, owner, id, p);
            Some(ApprovalPolicy::Quorum {
                k: k.value,
                of: approvers,
            })
        }
    }
}

/// A policy needing `needed` distinct people cannot be met by fewer candidates once the submitter is excluded:
/// a listed role that is also the owner role may hold only the submitter.
fn check_feasible<T>(
    at: &Located<T>,
    needed: usize,
    approvers: &[Approver],
    owner: Option<&RoleName>,
    id: &str,
    p: &mut Problems,
) {
    let excluded = approvers
        .iter()
        .filter(|a| matches!(a, Approver::Role(r) if Some(r) == owner))
        .count();
    let available = approvers.len() - excluded;
    if needed > available {
        let note = if excluded > 0 {
            format!(
                " once the submitter (owner role {}) is excluded",
                owner.map_or("", |o| o.as_str())
            )
        } else {
            String::new()
        };
        p.at(
            at,
            format!(
                "the approval of '{id}' needs {needed} distinct approvers but only {available} can approve{note}"
            ),
        );
    }
}

fn deliverable(
    d: RawDeliverable,
    roles: &Roles,
    after_go_live: bool,
    p: &mut Problems,
) -> Option<Pending> {
    let owner = roles.check(p, &d.owner, || format!("owner of '{}'", d.id.value));
    let approval = approval_policy(&d, owner.as_ref(), roles, p);
    let evidence = d
        .evidence
        .iter()
        .filter_map(|e| {
            let kind = match e.kind.value.as_str() {
                "link" => EvidenceKind::Link,
                "text" => EvidenceKind::Text,
                "attachment" => EvidenceKind::Attachment,
                other => {
                    let hint = did_you_mean(other, ["link", "text", "attachment"].into_iter());
                    p.at(
                        &e.kind,
                        format!(
                            "unknown evidence kind '{other}'{hint}: use link, text or attachment"
                        ),
                    );
                    return None;
                }
            };
            Some(EvidenceRequirement {
                kind,
                description: e.description.trim().to_owned(),
            })
        })
        .collect();
    let effort_days = match &d.effort {
        Some(e) => parse_days(&e.value)
            .map_err(|err| p.at(e, format!("effort {err}")))
            .unwrap_or(1),
        None => 1,
    };
    let kind = NodeKind::Deliverable(Deliverable {
        // Placeholders keep checking going; the workflow is rejected because a problem was recorded.
        owner: owner.unwrap_or_else(|| roles.0[0].name.clone()),
        approval: approval.unwrap_or(ApprovalPolicy::AnyOf(Vec::new())),
        template: d.template.as_ref().map(|t| {
            if !is_link(&t.value) {
                p.1.push((pos(t), t.value.clone()));
            }
            t.value.clone()
        }),
        evidence,
    });
    let mut pending = common(
        &d.id,
        &d.title,
        d.description,
        kind,
        &d.needs,
        d.due.as_ref(),
        p,
    )?;
    pending.node.effort_days = effort_days;
    pending.node.required = d.required.as_ref().is_none_or(|r| r.value);
    pending.node.checklist = d.checklist;
    pending.node.after_go_live = after_go_live;
    Some(pending)
}

fn gate(g: RawGate, p: &mut Problems) -> Option<Pending> {
    let mut pending = common(
        &g.id,
        &g.title,
        g.description,
        NodeKind::Gate,
        &g.needs,
        g.due.as_ref(),
        p,
    )?;
    pending.node.due.get_or_insert(Due {
        anchor: Anchor::GoLive,
        days: 0,
    });
    pending.node.checklist = g.checklist;
    Some(pending)
}

/// Adds the support deliverables (each needing the gate) and the end milestone (needing all of them).
fn post_go_live(
    s: RawPostGoLive,
    gate_id: Option<&str>,
    roles: &Roles,
    pending: &mut Vec<Pending>,
    p: &mut Problems,
) -> Option<u32> {
    let days = parse_days(&s.duration.value)
        .map_err(|e| p.at(&s.duration, format!("duration {e}")))
        .ok();
    let mut ids = Vec::new();
    for d in s.deliverables {
        if let Some(mut node) = deliverable(d, roles, true, p) {
            if let Some(gate) = gate_id
                && !node.needs.iter().any(|n| n.name == gate)
            {
                node.needs.push(Need {
                    name: gate.to_owned(),
                    at: node.id_at,
                });
            }
            ids.push((node.node.id.to_string(), node.id_at));
            pending.push(node);
        }
    }
    let kind = NodeKind::Milestone(Milestone {
        sign_off: None,
        meeting: None,
        ends_support: true,
    });
    let mut end = common(
        &s.end.id,
        &s.end.title,
        s.end.description,
        kind,
        &[],
        None,
        p,
    )?;
    end.node.after_go_live = true;
    end.node.due = days.map(|d| Due {
        anchor: Anchor::GoLive,
        days: i32::try_from(d).unwrap_or(i32::MAX),
    });
    end.needs = ids
        .into_iter()
        .map(|(name, at)| Need { name, at })
        .collect();
    if end.needs.is_empty()
        && let Some(gate) = gate_id
    {
        end.needs.push(Need {
            name: gate.to_owned(),
            at: end.id_at,
        });
    }
    pending.push(end);
    days
}

/// Resolves `needs:`, rejects cycles (naming their path) and returns the nodes in a stable topological order,
/// the gate's index, and each node's source position (by new index).
fn order(pending: Vec<Pending>, p: &mut Problems) -> Option<Ordered> {
    let position: HashMap<&str, usize> = pending
        .iter()
        .enumerate()
        .map(|(i, n)| (n.node.id.as_str(), i))
        .collect();
    let mut needs: Vec<Vec<usize>> = vec![Vec::new(); pending.len()];
    let mut resolved_all = true;
    for (i, node) in pending.iter().enumerate() {
        let mut seen = BTreeSet::new();
        for need in &node.needs {
            match position.get(need.name.as_str()) {
                Some(&j) if seen.insert(j) => {
                    needs[i].push(j);
                }
                Some(_) => p.at_pos(
                    need.at,
                    format!(
                        "'{}' is listed twice in the needs of '{}'",
                        need.name, node.node.id
                    ),
                ),
                None => {
                    resolved_all = false;
                    let hint = did_you_mean(&need.name, pending.iter().map(|n| n.node.id.as_str()));
                    p.at_pos(
                        need.at,
                        format!(
                            "unknown node '{}' in the needs of '{}'{hint}",
                            need.name, node.node.id
                        ),
                    );
                }
            }
        }
    }

    if !resolved_all {
        return None;
    }
    // Kahn's order leaves out exactly the nodes on or behind a cycle; only then is the graph built
    // to name every cycle's path.
    let order = stable_topological_order(&needs);
    if order.len() < needs.len() {
        report_cycles(&pending, &needs, p);
        return None;
    }

    let mut new_index = vec![0; pending.len()];
    for (new, &old) in order.iter().enumerate() {
        new_index[old] = new;
    }
    let mut slots: Vec<Option<Pending>> = pending.into_iter().map(Some).collect();
    let mut gate = None;
    let mut nodes = Vec::with_capacity(slots.len());
    let mut positions = Vec::with_capacity(slots.len());
    for &old in &order {
        let Some(mut n) = slots[old].take() else {
            continue;
        };
        if n.node.kind == NodeKind::Gate {
            gate = Some(nodes.len());
        }
        n.node.needs = needs[old].iter().map(|&j| new_index[j]).collect();
        positions.push((n.id_at, n.due_at));
        nodes.push(n.node);
    }
    Some((nodes, gate, positions))
}

/// Whole-graph rules: everything leads to the gate (or follows it), required work is needed by the gate,
/// everything follows the startup meeting, and nothing is due before what it needs.
fn check_structure(nodes: &[Node], gate: usize, positions: &[(Pos, Pos)], p: &mut Problems) {
    let n = nodes.len();
    let before = ancestors(nodes, gate);
    // Topological order: a node is after the gate when something it needs is the gate or after it.
    let mut after = vec![false; n];
    for i in 0..n {
        after[i] = nodes[i].needs.iter().any(|&j| j == gate || after[j]);
    }
    let startup = nodes.iter().position(|node| {
        matches!(
            &node.kind,
            NodeKind::Milestone(Milestone {
                meeting: Some(Meeting {
                    kind: MeetingKind::Startup,
                    ..
                }),
                ..
            })
        )
    });
    let mut from_start = vec![false; n];
    if let Some(s) = startup {
        from_start[s] = true;
        for i in 0..n {
            from_start[i] = from_start[i] || nodes[i].needs.iter().any(|&j| from_start[j]);
        }
    }
    for (i, node) in nodes.iter().enumerate() {
        let (id_at, due_at) = positions[i];
        if i != gate && !before[i] && !after[i] {
            p.at_pos(
                id_at,
                format!(
                    "'{}' does not lead to the gate: make the gate (or something it needs) need it, or make it need the gate",
                    node.id
                ),
            );
        } else if node.required
            && !node.after_go_live
            && after[i]
            && matches!(node.kind, NodeKind::Deliverable(_))
        {
            p.at_pos(
                id_at,
                format!(
                    "required deliverable '{}' is not needed by the gate: make the gate need it, move it under `post_go_live:`, or set `required: false`",
                    node.id
                ),
            );
        }
        if let Some(s) = startup
            && !from_start[i]
        {
            p.at_pos(
                id_at,
                format!(
                    "'{}' is not reachable from the startup meeting '{}': add it, or something after it, to the needs",
                    node.id, nodes[s].id
                ),
            );
        }
        if let Some(due) = node.due {
            for &j in &node.needs {
                if let Some(need_due) = nodes[j].due
                    && need_due.anchor == due.anchor
                    && need_due.days > due.days
                {
                    p.at_pos(
                        due_at,
                        format!(
                            "{} '{}' is due at {due}, before '{}' it needs is due ({need_due})",
                            node.kind.label(),
                            node.id,
                            nodes[j].id
                        ),
                    );
                }
            }
        }
    }
}

/// Names the path of every cycle: petgraph's strongly connected components, then the shortest
/// cycle through each component's first node.
fn report_cycles(pending: &[Pending], needs: &[Vec<usize>], p: &mut Problems) {
    let mut graph: DiGraph<usize, ()> = DiGraph::with_capacity(needs.len(), needs.len() * 2);
    let idx: Vec<NodeIndex> = (0..needs.len()).map(|i| graph.add_node(i)).collect();
    for (i, ns) in needs.iter().enumerate() {
        for &j in ns {
            // Edge from the node to what it needs: a path a -> b reads "a needs b".
            graph.add_edge(idx[i], idx[j], ());
        }
    }
    for scc in tarjan_scc(&graph) {
        let self_loop = scc.len() == 1 && graph.contains_edge(scc[0], scc[0]);
        if scc.len() < 2 && !self_loop {
            continue;
        }
        let members: BTreeSet<usize> = scc.iter().map(|&n| graph[n]).collect();
        let path = cycle_path(&members, needs);
        let names: Vec<&str> = path.iter().map(|&i| pending[i].node.id.as_str()).collect();
        p.at_pos(
            pending[path[0]].id_at,
            format!(
                "needs form a cycle: {} (each node needs the next)",
                names.join(" -> ")
            ),
        );
    }
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
