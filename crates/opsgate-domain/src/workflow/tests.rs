//! Unit tests for workflow parsing and validation.

use super::*;

const SHIPPED: &str = include_str!("../../../../workflows/standard-transition.yaml");

fn problems(source: &str) -> Vec<String> {
    match Workflow::parse("wf.yaml", source) {
        Ok(_) => Vec::new(),
        Err(e) => e.to_string().lines().map(str::to_owned).collect(),
    }
}

const MINIMAL: &str = "\
name: tiny
roles:
  desk: {description: the desk}
deliverables:
  - id: kb
    title: Knowledge
    owner: project_manager
    approver: desk
gate:
  id: gate
  title: Gate
  needs: [kb]
";

#[test]
fn shipped_standard_transition_is_valid_and_topologically_ordered() {
    let wf = Workflow::parse("standard-transition.yaml", SHIPPED).unwrap();
    assert_eq!(wf.name().as_str(), "standard-transition");
    for (i, node) in wf.nodes().iter().enumerate() {
        assert!(
            node.needs.iter().all(|&j| j < i),
            "{} comes before a need",
            node.id
        );
    }
    assert_eq!(wf.node(wf.gate()).id.as_str(), "operations-gate");
    let ancestors: Vec<&str> = wf
        .gate_ancestors()
        .iter()
        .map(|&i| wf.node(i).id.as_str())
        .collect();
    assert!(ancestors.contains(&"knowledge-articles"));
    assert!(!ancestors.contains(&"go-live"));
    assert!(wf.has_role("service_manager") && wf.has_role("service_desk_lead"));
}

#[test]
fn minimal_workflow_parses() {
    let wf = Workflow::parse("wf.yaml", MINIMAL).unwrap();
    assert_eq!(wf.nodes().len(), 2);
    assert_eq!(
        wf.node(0).kind,
        NodeKind::Deliverable(Deliverable {
            owner: RoleName::parse("project_manager").unwrap(),
            approval: ApprovalPolicy::AnyOf(vec![Approver::Role(RoleName::parse("desk").unwrap())]),
            template: None,
            evidence: Vec::new(),
        })
    );
}

#[test]
fn cycle_is_reported_with_its_path() {
    let src = "\
name: cyclic
deliverables:
  - id: a
    title: A
    owner: project_manager
    approver: service_manager
    needs: [c]
  - id: b
    title: B
    owner: project_manager
    approver: service_manager
    needs: [a]
  - id: c
    title: C
    owner: project_manager
    approver: service_manager
    needs: [b]
gate:
  id: gate
  title: Gate
  needs: [c]
";
    assert_eq!(
        problems(src),
        ["wf.yaml:3:9: needs form a cycle: a -> c -> b -> a (each node needs the next)"]
    );
}

#[test]
fn self_need_is_a_cycle() {
    let src = MINIMAL.replace(
        "    approver: desk\n",
        "    approver: desk\n    needs: [kb]\n",
    );
    assert_eq!(
        problems(&src),
        ["wf.yaml:5:9: needs form a cycle: kb -> kb (each node needs the next)"]
    );
}

#[test]
fn unknown_need_duplicate_id_and_unknown_role_are_all_reported_at_once() {
    let src = "\
name: several
deliverables:
  - id: kb
    title: Knowledge
    owner: project_manager
    approver: desk
    needs: [nope]
  - id: kb
    title: Again
    owner: project_manager
    approver: service_manager
gate:
  id: gate
  title: Gate
  needs: [kb]
";
    assert_eq!(
        problems(src),
        [
            "wf.yaml:6:15: unknown role 'desk' as approver of 'kb': declare it under `roles:` (declared: project_manager, service_manager)",
            "wf.yaml:7:13: unknown node 'nope' in the needs of 'kb'",
            "wf.yaml:8:9: duplicate id 'kb': already defined at line 3, column 9",
        ]
    );
}

#[test]
fn missing_gate_is_reported() {
    let src = "name: nogate\nmilestones:\n  - id: m\n    title: M\n";
    assert_eq!(
        problems(src),
        [
            "wf.yaml:1:1: workflow has no operations gate: add a `gate:` section with the nodes it needs"
        ]
    );
}

#[test]
fn malformed_yaml_names_line_and_column() {
    let src = "name: broken\ndeliverables:\n  - id: kb\n    title: [unclosed\n";
    let got = problems(src);
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].starts_with("wf.yaml:"), "{got:?}");
    let loc: Vec<&str> = got[0].splitn(4, ':').collect();
    assert!(loc[1].parse::<u32>().unwrap() >= 4, "{got:?}");
}

#[test]
fn unknown_field_is_located() {
    let src = MINIMAL.replace(
        "    owner: project_manager\n",
        "    owner: project_manager\n    ownr: x\n",
    );
    let got = problems(&src);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(
        got[0],
        "wf.yaml:8:5: unknown field 'ownr' in deliverables (did you mean 'owner'?); allowed here: approval, approver, checklist, description, due, effort, evidence, id, needs, owner, required, template, title"
    );
}

#[test]
fn owner_on_the_gate_is_an_unknown_field() {
    let src = MINIMAL.replace("  title: Gate\n", "  title: Gate\n  owner: desk\n");
    assert_eq!(
        problems(&src),
        [
            "wf.yaml:12:3: unknown field 'owner' in gate; allowed here: checklist, description, due, id, needs, title"
        ]
    );
}

#[test]
fn oversized_source_is_refused_before_parsing() {
    let big = format!("{MINIMAL}#{}\n", "x".repeat(MAX_SOURCE_BYTES));
    let got = problems(&big);
    assert_eq!(got.len(), 1);
    assert!(got[0].contains("the limit is 1048576"), "{got:?}");
}

#[test]
fn duplicate_key_is_reported_in_plain_words() {
    assert_eq!(
        problems("name: x\nname: y\n"),
        ["wf.yaml:2:1: duplicate key 'name'"]
    );
}

#[test]
fn more_nodes_than_the_limit_are_refused() {
    let mut src = String::from("name: huge\nmilestones:\n");
    for i in 0..=MAX_NODES {
        src.push_str(&format!("  - {{id: m{i}, title: M}}\n"));
    }
    src.push_str("gate: {id: gate, title: Gate}\n");
    assert_eq!(
        problems(&src),
        ["wf.yaml:1:1: workflow declares 10002 nodes, the limit is 10000"]
    );
}

#[test]
fn every_shipped_workflow_is_valid() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../workflows");
    let mut count = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let source = std::fs::read_to_string(&path).unwrap();
        if let Err(e) = Workflow::parse(&path.display().to_string(), &source) {
            panic!("{e}");
        }
        count += 1;
    }
    assert!(count >= 3, "expected the shipped workflows in {dir}");
}
