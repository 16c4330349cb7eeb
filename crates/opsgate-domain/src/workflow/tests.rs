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
    // Not fatal: the rest of the file is still checked.
    assert_eq!(
        problems("name: x\nname: y\n"),
        [
            "wf.yaml:1:1: workflow has no operations gate: add a `gate:` section with the nodes it needs",
            "wf.yaml:2:1: duplicate key 'name'"
        ]
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
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let source = std::fs::read_to_string(&path).unwrap();
        // Every template a shipped workflow names is shipped beside it.
        let dir = path.parent().unwrap().to_owned();
        let missing = |t: &str| (!dir.join(t).is_file()).then(|| "is not shipped".to_owned());
        if let Err(e) =
            Workflow::parse_with_templates(&path.display().to_string(), &source, &missing)
        {
            panic!("{e}");
        }
        count += 1;
    }
    assert!(count >= 3, "expected the shipped workflows in {dir}");
}

mod properties {
    use proptest::prelude::*;

    use super::super::Workflow;

    /// A random DAG as YAML: node i may need any earlier node, the gate needs every node.
    fn dag_yaml(needs: &[Vec<usize>], efforts: &[u32]) -> String {
        let mut src = String::from("name: random\ndeliverables:\n");
        for (i, ns) in needs.iter().enumerate() {
            let list: Vec<String> = ns.iter().map(|j| format!("n{j}")).collect();
            src.push_str(&format!(
                "  - {{id: n{i}, title: N{i}, owner: project_manager, approver: service_manager, effort: {}d, needs: [{}]}}\n",
                efforts[i],
                list.join(", ")
            ));
        }
        let all: Vec<String> = (0..needs.len()).map(|i| format!("n{i}")).collect();
        src.push_str(&format!(
            "gate: {{id: gate, title: Gate, needs: [{}]}}\n",
            all.join(", ")
        ));
        src
    }

    fn random_dag() -> impl Strategy<Value = (Vec<Vec<usize>>, Vec<u32>)> {
        (1usize..40).prop_flat_map(|n| {
            let needs = (0..n)
                .map(|i| {
                    if i == 0 {
                        Just(Vec::new()).boxed()
                    } else {
                        proptest::sample::subsequence((0..i).collect::<Vec<_>>(), 0..=i.min(4))
                            .boxed()
                    }
                })
                .collect::<Vec<_>>();
            (needs, proptest::collection::vec(0u32..10, n))
        })
    }

    proptest! {
        #[test]
        fn a_random_dag_validates_and_its_plan_respects_every_need((needs, efforts) in random_dag()) {
            let wf = Workflow::parse("random.yaml", &dag_yaml(&needs, &efforts)).unwrap();
            let start = chrono::NaiveDate::from_ymd_opt(2026, 1, 5).unwrap();
            let go_live = chrono::NaiveDate::from_ymd_opt(2026, 6, 1).unwrap();
            let plan = wf.plan(start, go_live);
            for row in &plan.rows {
                prop_assert!(row.earliest_start >= start);
                for &j in &wf.node(row.node).needs {
                    prop_assert!(plan.rows[j].earliest_finish <= row.earliest_start, "need finishes after its dependent starts");
                    prop_assert!(plan.rows[j].latest_finish <= row.latest_start, "need's latest finish after dependent's latest start");
                }
            }
            for pair in plan.critical_path.windows(2) {
                prop_assert!(wf.node(pair[1]).needs.contains(&pair[0]), "critical path follows needs");
            }
            prop_assert_eq!(plan.critical_path.last().copied(), Some(wf.gate()));
        }

        #[test]
        fn a_back_edge_is_reported_as_a_cycle_naming_its_path((needs, efforts) in random_dag(), pick in any::<proptest::sample::Index>()) {
            // Find a path a -> ... -> b through needs, then make its start need its end.
            let n = needs.len();
            let b = pick.index(n);
            let Some(&a) = needs[b].first() else { return Ok(()); };
            let mut needs = needs.clone();
            needs[a].push(b);
            let err = Workflow::parse("random.yaml", &dag_yaml(&needs, &efforts)).unwrap_err();
            let cycle = err.problems.iter().find(|p| p.message.starts_with("needs form a cycle: ")).expect("a cycle problem");
            let path = cycle.message.trim_start_matches("needs form a cycle: ").trim_end_matches(" (each node needs the next)");
            let ids: Vec<&str> = path.split(" -> ").collect();
            prop_assert!(ids.len() >= 3 && ids.first() == ids.last(), "{}", cycle.message);
            prop_assert!(ids.contains(&format!("n{a}").as_str()) && ids.contains(&format!("n{b}").as_str()), "{}", cycle.message);
            // Every step of the printed path is a real need.
            for w in ids.windows(2) {
                let from: usize = w[0][1..].parse().unwrap();
                let to: usize = w[1][1..].parse().unwrap();
                prop_assert!(needs[from].contains(&to), "{} does not need {}", w[0], w[1]);
            }
        }
    }

    const STANDARD: &str = include_str!("../../../../workflows/standard-transition.yaml");

    /// One edit of a source: delete, insert or replace a few bytes at a position.
    fn mutate(source: &str, at: usize, len: usize, insert: &str) -> String {
        let mut at = at % (source.len() + 1);
        while !source.is_char_boundary(at) {
            at -= 1;
        }
        let mut end = (at + len).min(source.len());
        while !source.is_char_boundary(end) {
            end += 1;
        }
        format!("{}{insert}{}", &source[..at], &source[end..])
    }

    /// Whatever the input, the parser answers: a workflow, or problems that each name a line and a
    /// column inside the source (no panic, no unbounded work).
    fn assert_answers(source: &str) -> Result<(), TestCaseError> {
        if let Err(errors) = Workflow::parse("fuzz.yaml", source) {
            prop_assert!(!errors.problems.is_empty());
            let lines = u32::try_from(source.lines().count()).unwrap_or(u32::MAX);
            for p in &errors.problems {
                prop_assert!(p.line >= 1 && p.col >= 1, "{p:?}");
                prop_assert!(
                    p.line <= lines.saturating_add(1),
                    "{p:?} beyond line {lines}"
                );
                prop_assert!(!p.message.is_empty());
            }
        }
        Ok(())
    }

    fn cases(default: u32) -> ProptestConfig {
        let cases = std::env::var("OPSGATE_HOSTILE_CASES")
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(default);
        ProptestConfig::with_cases(cases)
    }

    proptest! {
        #![proptest_config(cases(256))]

        #[test]
        fn random_text_gets_located_problems_not_a_panic(source in "\\PC{0,400}") {
            assert_answers(&source)?;
        }

        #[test]
        fn random_yaml_punctuation_gets_located_problems_not_a_panic(
            source in "([-:{}\\[\\],&*!|>'\"#? \n]|[a-z]{1,6}|  ){0,120}"
        ) {
            assert_answers(&source)?;
        }

        #[test]
        fn edits_of_the_shipped_workflow_get_located_problems_not_a_panic(
            edits in proptest::collection::vec((any::<usize>(), 0usize..12, "[-:{}\\[\\],&*!|>'\" \n#a-z0-9]{0,8}"), 1..6)
        ) {
            let mut source = STANDARD.to_owned();
            for (at, len, insert) in &edits {
                source = mutate(&source, *at, *len, insert);
            }
            assert_answers(&source)?;
        }
    }
}

#[test]
fn a_missing_template_is_a_located_problem_reported_with_every_other() {
    let source = "\
name: t
roles: {desk: {description: reviews}}
deliverables:
  - {id: a, title: A, owner: desk, approver: desk, template: templates/there.md}
  - {id: b, title: B, owner: dsk, approver: desk, template: templates/missing.md}
  - {id: c, title: C, owner: desk, approver: desk, template: https://wiki.example/t}
gate: {id: g, title: G, needs: [a, b, c]}
";
    let asked = std::cell::RefCell::new(Vec::new());
    let err = Workflow::parse_with_templates("wf.yaml", source, &|t| {
        asked.borrow_mut().push(t.to_owned());
        (t == "templates/missing.md").then(|| "does not exist".to_owned())
    })
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("wf.yaml:5:61: template 'templates/missing.md' does not exist"),
        "{err}"
    );
    assert!(err.contains("unknown role 'dsk'"), "{err}");
    // Links are not files: never asked.
    assert_eq!(
        *asked.borrow(),
        ["templates/there.md", "templates/missing.md"]
    );
    let ok = source.replace("owner: dsk", "owner: desk");
    let wf = Workflow::parse_with_templates("wf.yaml", &ok, &|_| None).unwrap();
    assert_eq!(
        wf.template_paths(),
        ["templates/there.md", "templates/missing.md"]
    );
}
