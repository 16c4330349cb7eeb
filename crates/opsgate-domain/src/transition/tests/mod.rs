//! Unit and property tests for the transition state machine and the gate decision.

use chrono::{NaiveDate, TimeZone, Utc};
use proptest::prelude::*;

use super::*;
use crate::error::{Error, Result};
use crate::gate::{GateDecision, GateState, WaitingOn};
use crate::ids::{NodeId, RoleName, WorkflowName};
use crate::workflow::{NodeKind, Workflow};

const SHIPPED: &str = include_str!("../../../../../workflows/standard-transition.yaml");

fn wf() -> Workflow {
    Workflow::parse("standard-transition.yaml", SHIPPED).unwrap()
}

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 9, 0, 0).unwrap()
}

fn actor(name: &str) -> Actor {
    Actor::parse(name).unwrap()
}

fn meta() -> TransitionMeta {
    let mut participants = Participants::new();
    // Pat submits everything, Dana reviews everything (the other tests rely on it).
    for (role, person) in [
        ("service_desk_lead", "dana"),
        ("operations_lead", "dana"),
        ("service_owner", "dana"),
        ("technical_lead", "pat"),
    ] {
        participants.insert(RoleName::parse(role).unwrap(), vec![actor(person)]);
    }
    TransitionMeta {
        workflow: WorkflowName::parse("standard-transition").unwrap(),
        workflow_version: 1,
        service_name: "payroll".into(),
        service_version: "2.0".into(),
        project_manager: actor("pat"),
        service_manager: actor("sam"),
        target_go_live: NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(),
        participants,
    }
}

fn started() -> (Workflow, TransitionState, Vec<Event>) {
    let wf = wf();
    let (state, events) = TransitionState::start(&wf, meta(), actor("pat"), at()).unwrap();
    (wf, state, events)
}

fn status(wf: &Workflow, state: &TransitionState, id: &str) -> NodeStatus {
    state.nodes[wf.position(id).unwrap()].status
}

/// Who a test sends a command as: the project manager submits, Dana reviews, the service manager decides.
fn actor_for(cmd: &Command) -> Actor {
    match cmd {
        Command::Submit { .. } | Command::Reschedule { .. } => actor("pat"),
        Command::Review { .. } | Command::SignOff { .. } => actor("dana"),
        Command::AcceptHandover { .. } | Command::RejectHandover { .. } => actor("sam"),
        Command::ChangeParticipants { .. } | Command::Waive { .. } | Command::ExpireWaivers => {
            actor("smo")
        }
    }
}

fn run(
    wf: &Workflow,
    state: &TransitionState,
    log: &mut Vec<Event>,
    cmd: Command,
) -> Result<TransitionState> {
    let who = actor_for(&cmd);
    let (next, events) = state.execute(wf, cmd, who, at())?;
    log.extend(events);
    Ok(next)
}

fn submit(id: &str) -> Command {
    Command::Submit {
        node: id.into(),
        evidence: Evidence::parse(vec![format!("https://docs.example/{id}")], String::new())
            .unwrap(),
    }
}

fn approve(id: &str) -> Command {
    Command::Review {
        node: id.into(),
        decision: ReviewDecision::Approve,
        comment: String::new(),
    }
}

/// Submits and approves every deliverable in topological order.
fn approve_all(wf: &Workflow, mut state: TransitionState, log: &mut Vec<Event>) -> TransitionState {
    for node in wf.nodes() {
        if matches!(node.kind, NodeKind::Deliverable(_)) && !node.after_go_live {
            state = run(wf, &state, log, submit(node.id.as_str())).unwrap();
            state = run(wf, &state, log, approve(node.id.as_str())).unwrap();
        }
    }
    state
}

#[test]
fn start_opens_what_needs_nothing_and_reaches_unneeded_milestones() {
    let (wf, state, events) = started();
    assert_eq!(events[0].kind.name(), "transition_started");
    assert_eq!(status(&wf, &state, "startup-meeting"), NodeStatus::Reached);
    assert_eq!(status(&wf, &state, "knowledge-articles"), NodeStatus::Open);
    assert_eq!(status(&wf, &state, "resolver-group"), NodeStatus::Locked);
    assert_eq!(status(&wf, &state, "operations-gate"), NodeStatus::Locked);
    assert_eq!(state.seq, events.len() as u64);
}

#[test]
fn full_walk_opens_then_accepts_the_gate() {
    let (wf, state, mut log) = started();
    let state = approve_all(&wf, state, &mut log);
    let decision = GateDecision::of(&wf, &state);
    assert_eq!(decision.state, GateState::Open);
    assert!(decision.blockers.is_empty());
    assert_eq!(decision.awaiting_acceptance_by, Some(actor("sam")));
    let state = run(
        &wf,
        &state,
        &mut log,
        Command::AcceptHandover {
            comment: "ok".into(),
        },
    )
    .unwrap();
    assert_eq!(state.status, TransitionStatus::HandedOver);
    assert_eq!(status(&wf, &state, "go-live"), NodeStatus::Reached);
    assert_eq!(GateDecision::of(&wf, &state).state, GateState::Accepted);
    assert_eq!(TransitionState::replay(&wf, &log).unwrap(), state);
}

#[test]
fn closed_gate_explains_blockers_and_who_they_wait_on() {
    let (wf, state, mut log) = started();
    let state = run(&wf, &state, &mut log, submit("knowledge-articles")).unwrap();
    let decision = GateDecision::of(&wf, &state);
    assert_eq!(decision.state, GateState::Closed);
    let kb = decision
        .blockers
        .iter()
        .find(|b| b.node.as_str() == "knowledge-articles")
        .unwrap();
    assert_eq!(kb.status, NodeStatus::Submitted);
    assert_eq!(
        kb.waiting_on,
        WaitingOn::Approvals {
            policy: "any of role service_desk_lead".into(),
            given: 0,
            needed: 1,
            people: vec![actor("dana")]
        }
    );
    let rg = decision
        .blockers
        .iter()
        .find(|b| b.node.as_str() == "resolver-group")
        .unwrap();
    assert_eq!(
        rg.waiting_on,
        WaitingOn::Nodes(vec![NodeId::parse("support-contacts").unwrap()])
    );
    let ids: Vec<&str> = decision.blockers.iter().map(|b| b.node.as_str()).collect();
    assert_eq!(
        ids,
        [
            "support-contacts",
            "knowledge-articles",
            "resolver-group",
            "monitoring",
            "runbook",
            "sla",
            "service-desk-training",
            "readiness-review"
        ]
    );
    assert!(decision.explain().contains("deliverable 'knowledge-articles' (Service desk knowledge articles) is submitted, waiting on approval (any of role service_desk_lead), 0 of 1 given; may approve: dana"));
}

#[test]
fn locked_deliverable_cannot_be_submitted_and_names_what_it_waits_on() {
    let (wf, state, mut log) = started();
    let err = run(&wf, &state, &mut log, submit("resolver-group")).unwrap_err();
    assert_eq!(
        err,
        Error::FailedPrecondition(
            "deliverable 'resolver-group' is locked and cannot be submitted: it waits on 'support-contacts' (open)".into()
        )
    );
}

#[test]
fn unsubmitted_deliverable_cannot_be_approved() {
    let (wf, state, mut log) = started();
    let err = run(&wf, &state, &mut log, approve("sla")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "deliverable 'sla' cannot be reviewed: it is open: it has not been submitted"
    );
}

#[test]
fn changes_requested_then_resubmitted_then_approved() {
    let (wf, state, mut log) = started();
    let state = run(&wf, &state, &mut log, submit("sla")).unwrap();
    let state = run(
        &wf,
        &state,
        &mut log,
        Command::Review {
            node: "sla".into(),
            decision: ReviewDecision::RequestChanges,
            comment: "add weekend hours".into(),
        },
    )
    .unwrap();
    assert_eq!(status(&wf, &state, "sla"), NodeStatus::ChangesRequested);
    assert_eq!(
        state.nodes[wf.position("sla").unwrap()].comment.as_deref(),
        Some("add weekend hours")
    );
    let state = run(&wf, &state, &mut log, submit("sla")).unwrap();
    let state = run(&wf, &state, &mut log, approve("sla")).unwrap();
    assert_eq!(status(&wf, &state, "sla"), NodeStatus::Approved);
}

#[test]
fn request_changes_needs_a_comment() {
    let (wf, state, mut log) = started();
    let state = run(&wf, &state, &mut log, submit("sla")).unwrap();
    let err = run(
        &wf,
        &state,
        &mut log,
        Command::Review {
            node: "sla".into(),
            decision: ReviewDecision::RequestChanges,
            comment: " ".into(),
        },
    )
    .unwrap_err();
    assert!(matches!(
        err,
        Error::InvalidArgument {
            field: "comment",
            ..
        }
    ));
}

#[test]
fn unknown_and_non_deliverable_nodes_are_refused() {
    let (wf, state, mut log) = started();
    assert!(matches!(
        run(&wf, &state, &mut log, submit("nope")),
        Err(Error::UnknownNode { .. })
    ));
    let err = run(&wf, &state, &mut log, submit("go-live")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "'go-live' is a milestone, not a deliverable"
    );
}

#[test]
fn accepting_a_closed_gate_is_refused_with_the_blockers() {
    let (wf, state, mut log) = started();
    let err = run(
        &wf,
        &state,
        &mut log,
        Command::AcceptHandover {
            comment: String::new(),
        },
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with(
            "the handover cannot be accepted: gate 'operations-gate' is closed (8 blocking: "
        ),
        "{msg}"
    );
}

#[test]
fn rejecting_the_handover_reopens_and_closes_the_gate() {
    let (wf, state, mut log) = started();
    let state = approve_all(&wf, state, &mut log);
    let state = run(
        &wf,
        &state,
        &mut log,
        Command::RejectHandover {
            reasons: vec!["articles miss the restore procedure".into()],
            reopen: vec!["knowledge-articles".into()],
        },
    )
    .unwrap();
    assert_eq!(
        status(&wf, &state, "knowledge-articles"),
        NodeStatus::ChangesRequested
    );
    // Later approvals stand, but the gate sees the reopened work through them.
    assert_eq!(
        status(&wf, &state, "service-desk-training"),
        NodeStatus::Approved
    );
    assert_eq!(status(&wf, &state, "readiness-review"), NodeStatus::Locked);
    assert_eq!(status(&wf, &state, "operations-gate"), NodeStatus::Locked);
    let decision = GateDecision::of(&wf, &state);
    let ids: Vec<&str> = decision.blockers.iter().map(|b| b.node.as_str()).collect();
    assert_eq!(ids, ["knowledge-articles", "readiness-review"]);
    let state = run(&wf, &state, &mut log, submit("knowledge-articles")).unwrap();
    let state = run(&wf, &state, &mut log, approve("knowledge-articles")).unwrap();
    assert_eq!(GateDecision::of(&wf, &state).state, GateState::Open);
    assert_eq!(TransitionState::replay(&wf, &log).unwrap(), state);
}

#[test]
fn rejecting_needs_reasons_and_a_deliverable_before_the_gate() {
    let (wf, state, mut log) = started();
    let state = approve_all(&wf, state, &mut log);
    let no_reason = Command::RejectHandover {
        reasons: vec![" ".into()],
        reopen: vec!["sla".into()],
    };
    assert!(matches!(
        run(&wf, &state, &mut log, no_reason),
        Err(Error::InvalidArgument {
            field: "reasons",
            ..
        })
    ));
    let nothing = Command::RejectHandover {
        reasons: vec!["no".into()],
        reopen: vec![],
    };
    assert!(matches!(
        run(&wf, &state, &mut log, nothing),
        Err(Error::InvalidArgument {
            field: "reopen_deliverables",
            ..
        })
    ));
}

#[test]
fn participants_must_name_declared_roles() {
    let wf = wf();
    let mut m = meta();
    m.participants
        .insert(RoleName::parse("astronaut").unwrap(), vec![actor("x")]);
    let err = TransitionState::start(&wf, m, actor("pat"), at()).unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidArgument {
                field: "participants",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn events_round_trip_through_json() {
    let (wf, state, log) = started();
    let json = serde_json::to_string(&log).unwrap();
    let back: Vec<Event> = serde_json::from_str(&json).unwrap();
    assert_eq!(TransitionState::replay(&wf, &back).unwrap(), state);
}

/// The people of the property test: pat (project manager), sam (service manager), four more who
/// hold roles (some of them two; pat and sam also hold roles), and mallory, who holds none.
const PEOPLE: [&str; 7] = ["pat", "sam", "dana", "lee", "omar", "olga", "mallory"];

/// Every workflow the property runs on: the shipped ones and the policies workflow (quorum,
/// all-of, a named person, an optional deliverable, a sign-off milestone, post-go-live work).
fn property_workflows() -> Vec<Workflow> {
    let shipped = [
        ("standard-transition.yaml", SHIPPED),
        ("standard-change.yaml", SHIPPED_CHANGE),
        ("service-desk-first.yaml", SHIPPED_DESK),
        ("policies.yaml", POLICIES),
    ];
    shipped
        .iter()
        .map(|(file, source)| Workflow::parse(file, source).unwrap())
        .collect()
}

const SHIPPED_DESK: &str = include_str!("../../../../../workflows/service-desk-first.yaml");

/// A start of `wf` naming two people for every acting role (the pool overlaps roles on purpose).
fn property_start(wf: &Workflow) -> (TransitionState, Vec<Event>) {
    let mut participants = Participants::new();
    for (i, role) in crate::transition::acting_roles(wf).into_iter().enumerate() {
        if role.as_str() == "project_manager" || role.as_str() == "service_manager" {
            continue;
        }
        let people = vec![actor(PEOPLE[i % 6]), actor(PEOPLE[(i + 2) % 6])];
        participants.insert(role.clone(), people);
    }
    let mut m = meta();
    m.workflow = wf.name().clone();
    m.participants = participants;
    TransitionState::start(wf, m, actor("pat"), at()).unwrap()
}

/// The command and actor a seed stands for. Two seeds in three pick an actor entitled to the
/// command (so that sequences get far: gates open, handovers happen), the third anyone at all.
fn command_of(wf: &Workflow, state: &TransitionState, seed: u32) -> (Command, Actor) {
    let seed = seed as usize;
    let i = seed % wf.nodes().len();
    let id = wf.node(i).id.to_string();
    let meta = &state.meta;
    let (cmd, entitled): (Command, Vec<Actor>) = match (seed / 97) % 14 {
        0..=3 => (
            submit(&id),
            wf.node(i)
                .deliverable()
                .map(|d| meta.people_for(&d.owner))
                .unwrap_or_default(),
        ),
        4..=8 => (
            approve(&id),
            wf.node(i)
                .deliverable()
                .map(|d| {
                    PEOPLE
                        .iter()
                        .map(|p| actor(p))
                        .filter(|p| {
                            d.approval
                                .approvers()
                                .iter()
                                .any(|a| meta.may_act_for(a, p))
                        })
                        .collect()
                })
                .unwrap_or_default(),
        ),
        9 => (
            Command::Review {
                node: id,
                decision: ReviewDecision::RequestChanges,
                comment: "redo".into(),
            },
            Vec::new(),
        ),
        10 | 11 => (
            Command::SignOff {
                node: id,
                comment: String::new(),
            },
            match &wf.node(i).kind {
                NodeKind::Milestone(m) => m
                    .sign_off
                    .as_ref()
                    .map(|r| meta.people_for(r))
                    .unwrap_or_default(),
                _ => Vec::new(),
            },
        ),
        12 => (
            Command::AcceptHandover {
                comment: String::new(),
            },
            vec![meta.service_manager.clone()],
        ),
        _ => (
            Command::RejectHandover {
                reasons: vec!["not ready".into()],
                reopen: vec![id],
            },
            vec![meta.service_manager.clone()],
        ),
    };
    let who = if !seed.is_multiple_of(3) && !entitled.is_empty() {
        entitled[(seed / 11) % entitled.len()].clone()
    } else {
        actor(PEOPLE[(seed / 7) % PEOPLE.len()])
    };
    (cmd, who)
}

/// Runs the commands `seeds` stand for on a fresh transition of `wf`, checking every rule after
/// every command; returns the final state and how many commands were refused.
fn run_seeds(
    wf: &Workflow,
    seeds: &[u32],
) -> std::result::Result<(TransitionState, usize), TestCaseError> {
    let (mut state, mut log) = property_start(wf);
    let mut refused = 0;
    let mut facts = Vec::new();
    for &seed in seeds {
        let (cmd, who) = command_of(wf, &state, seed);
        match state.execute(wf, cmd.clone(), who.clone(), at()) {
            Ok((next, events)) => {
                check_allowed(wf, &state, &cmd, &who)?;
                prop_assert_eq!(events.first().map(|e| e.seq), Some(state.seq + 1));
                facts.extend(crate::kpi::facts(wf, &state, &events));
                log.extend(events);
                state = next;
            }
            // A refusal changes nothing: `execute` borrows the state and it is kept as it was.
            Err(_) => refused += 1,
        }
        prop_assert_eq!(state.seq, log.len() as u64);
        check_state(wf, &state)?;
    }
    prop_assert_eq!(TransitionState::replay(wf, &log).unwrap(), state.clone());
    // The facts written with each command's events are those of the whole log replayed.
    prop_assert_eq!(facts, crate::kpi::facts_of_log(wf, &log).unwrap());
    Ok((state, refused))
}

/// What may never be allowed, checked against the state a command was decided on.
fn check_allowed(
    wf: &Workflow,
    before: &TransitionState,
    cmd: &Command,
    who: &Actor,
) -> std::result::Result<(), TestCaseError> {
    let meta = &before.meta;
    match cmd {
        Command::Submit { node, .. } => {
            let d = wf.node(wf.position(node).unwrap()).deliverable().unwrap();
            prop_assert!(
                meta.holds(&d.owner, who),
                "{who} submitted {node}, owned by {}",
                d.owner
            );
        }
        Command::Review { node, decision, .. } => {
            let i = wf.position(node).unwrap();
            let d = wf.node(i).deliverable().unwrap();
            prop_assert!(
                d.approval
                    .approvers()
                    .iter()
                    .any(|a| meta.may_act_for(a, who)),
                "{who} reviewed {node} without being an approver"
            );
            if *decision == ReviewDecision::Approve {
                prop_assert!(
                    before.nodes[i].submitted_by.as_ref() != Some(who),
                    "{who} approved their own {node}"
                );
                prop_assert!(
                    !before.nodes[i].approvals.contains(who),
                    "{who} approved {node} twice"
                );
            }
        }
        Command::SignOff { node, .. } => {
            let NodeKind::Milestone(m) = &wf.node(wf.position(node).unwrap()).kind else {
                return Err(TestCaseError::fail(format!(
                    "{node} signed off, not a milestone"
                )));
            };
            let role = m.sign_off.as_ref().unwrap();
            prop_assert!(meta.holds(role, who), "{who} signed off {node} for {role}");
        }
        Command::AcceptHandover { .. } | Command::RejectHandover { .. } => {
            prop_assert_eq!(who, &meta.service_manager);
        }
        Command::Reschedule { .. } => {
            prop_assert_eq!(who, &meta.project_manager);
        }
        // Who may change participants is the server's access table (role smo), not the domain's.
        Command::ChangeParticipants { .. } | Command::Waive { .. } | Command::ExpireWaivers => {}
    }
    Ok(())
}

/// What must hold of every state: nodes agree with their needs ("done" counting an optional node
/// as done whatever its state), approved work meets its policy without its submitter, and the
/// gate is closed exactly when something blocks it.
fn check_state(wf: &Workflow, state: &TransitionState) -> std::result::Result<(), TestCaseError> {
    let mut done = vec![false; wf.nodes().len()];
    for (i, node) in wf.nodes().iter().enumerate() {
        let needs_done = node.needs.iter().all(|&j| done[j]);
        let ns = &state.nodes[i];
        if ns.status == NodeStatus::Open || ns.status == NodeStatus::Reached {
            prop_assert!(
                needs_done,
                "{} is {:?} with needs undone",
                node.id,
                ns.status
            );
        }
        if ns.status == NodeStatus::Locked {
            prop_assert!(!needs_done, "{} is locked with needs done", node.id);
        }
        if let (Some(d), NodeStatus::Approved) = (node.deliverable(), ns.status) {
            prop_assert!(
                policy_met(&d.approval, &ns.approvals, &state.meta),
                "{} approved short of {}",
                node.id,
                d.approval
            );
            prop_assert!(
                ns.submitted_by
                    .as_ref()
                    .is_none_or(|s| !ns.approvals.contains(s))
            );
        }
        done[i] = needs_done && (ns.counts_as_done() || !node.required);
    }
    let decision = GateDecision::of(wf, state);
    prop_assert_eq!(
        decision.state == GateState::Closed,
        !decision.blockers.is_empty()
    );
    if state.status == TransitionStatus::Completed {
        let accepted = state.nodes[wf.gate()].status == NodeStatus::Accepted;
        prop_assert!(accepted, "completed without an accepted handover");
    } else {
        // The stall index on the row finds exactly the transitions the stalled list reports.
        use crate::stalled::{StallIndex, StallKind, StallRules, stalls};
        let index = StallIndex::of(wf, state);
        let rules = StallRules::default();
        for days in [0, 6, 30, 400] {
            let now = state.updated_at + chrono::Duration::days(days);
            let found = stalls(wf, state, now, &rules, &[])
                .iter()
                .any(|s| s.kind != StallKind::Idle);
            prop_assert_eq!(found, index.qualifies(now, &rules), "{} days on", days);
        }
    }
    Ok(())
}

proptest! {
    /// Whatever commands arrive, from whomever, in whatever order, on every shipped workflow and
    /// the policies workflow: nobody acts beyond their role (owner, approver, sign-off, service
    /// manager), nobody approves their own work or twice, refused commands change nothing, the
    /// log replays to the state, and the state keeps its invariants.
    #[test]
    fn random_command_sequences_keep_the_invariants(
        which in 0usize..4,
        seeds in proptest::collection::vec(any::<u32>(), 0..200),
    ) {
        let wf = property_workflows().swap_remove(which);
        run_seeds(&wf, &seeds)?;
    }
}

/// The property above reaches what it claims to check: on every workflow some sequences end
/// with an accepted handover (or a completed transition) and strangers' commands are refused.
#[test]
fn random_sequences_reach_the_handover_on_every_workflow() {
    let mut rng: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng >> 32) as u32
    };
    for wf in property_workflows() {
        let (mut handed_over, mut refusals) = (0, 0);
        for _ in 0..200 {
            let seeds: Vec<u32> = (0..200).map(|_| next()).collect();
            let (state, refused) = run_seeds(&wf, &seeds).unwrap();
            refusals += refused;
            if state.status != TransitionStatus::Active {
                handed_over += 1;
            }
        }
        assert!(
            handed_over > 0,
            "{}: no sequence reached the handover",
            wf.name()
        );
        assert!(refusals > 0, "{}: nothing was refused", wf.name());
    }
}

const POLICIES: &str = "
name: policies
roles:
  desk: {description: service desk}
  ops: {description: operations}
milestones:
  - id: start
    title: Start
    meeting: startup
  - id: review
    title: Readiness review
    sign_off: ops
    needs: [kb, runbook, faq]
deliverables:
  - id: kb
    title: Knowledge
    owner: project_manager
    approval: {quorum: 2, of: [desk, ops, {person: Olga}]}
    evidence: [{kind: link, description: the articles}]
    needs: [start]
  - id: runbook
    title: Runbook
    owner: project_manager
    approval: {all_of: [desk, ops]}
    needs: [start]
  - id: faq
    title: FAQ
    owner: project_manager
    approver: desk
    required: false
    needs: [start]
gate:
  id: gate
  title: Gate
  needs: [review]
post_go_live:
  duration: 7d
  deliverables:
    - id: report
      title: Report
      owner: project_manager
      approver: service_manager
  end: {id: support-end, title: End of support}
";

fn policies() -> (Workflow, TransitionState, Vec<Event>) {
    let wf = Workflow::parse("policies.yaml", POLICIES).unwrap();
    let mut m = meta();
    m.workflow = WorkflowName::parse("policies").unwrap();
    m.participants = Participants::from([
        (
            RoleName::parse("desk").unwrap(),
            vec![actor("dana"), actor("lee"), actor("pat")],
        ),
        (RoleName::parse("ops").unwrap(), vec![actor("omar")]),
    ]);
    let (state, events) = TransitionState::start(&wf, m, actor("pat"), at()).unwrap();
    (wf, state, events)
}

fn as_(
    who: &str,
    wf: &Workflow,
    state: &TransitionState,
    log: &mut Vec<Event>,
    cmd: Command,
) -> Result<TransitionState> {
    let (next, events) = state.execute(wf, cmd, actor(who), at())?;
    log.extend(events);
    Ok(next)
}

fn submit_linked(id: &str) -> Command {
    Command::Submit {
        node: id.into(),
        evidence: Evidence::parse(vec!["https://kb/x".into()], String::new()).unwrap(),
    }
}

#[test]
fn a_quorum_needs_k_distinct_eligible_people_and_not_the_submitter() {
    let (wf, state, mut log) = policies();
    let err = as_("dana", &wf, &state, &mut log, submit_linked("kb")).unwrap_err();
    assert_eq!(
        err,
        Error::NotPermitted(
            "dana may not submit deliverable 'kb': it is owned by role project_manager (pat)"
                .into()
        )
    );
    // Pat owns kb and may also approve for desk, but never his own submission.
    let s = as_("pat", &wf, &state, &mut log, submit_linked("kb")).unwrap();
    let err = as_("pat", &wf, &s, &mut log, approve("kb")).unwrap_err();
    assert_eq!(
        err,
        Error::NotPermitted("pat submitted deliverable 'kb' and so may not approve it".into())
    );
    let err = as_("mallory", &wf, &s, &mut log, approve("kb")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "mallory may not review deliverable 'kb': its approval is 2 of role desk, role ops, Olga; named for it: dana, lee, pat, omar"
    );
    let s = as_("lee", &wf, &s, &mut log, approve("kb")).unwrap();
    assert_eq!(status(&wf, &s, "kb"), NodeStatus::Submitted);
    assert_eq!(log.last().unwrap().kind.name(), "approval_recorded");
    let err = as_("lee", &wf, &s, &mut log, approve("kb")).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("lee already approved this submission of 'kb'"),
        "{err}"
    );
    let s = as_("Olga", &wf, &s, &mut log, approve("kb")).unwrap();
    assert_eq!(status(&wf, &s, "kb"), NodeStatus::Approved);
    assert_eq!(
        s.nodes[wf.position("kb").unwrap()].approvals,
        [actor("lee"), actor("Olga")]
    );
    assert_eq!(TransitionState::replay(&wf, &log).unwrap(), s);
}

#[test]
fn all_of_needs_a_different_person_for_each_entry() {
    let (wf, state, mut log) = policies();
    let s = as_("pat", &wf, &state, &mut log, submit_linked("runbook")).unwrap();
    let s = as_("dana", &wf, &s, &mut log, approve("runbook")).unwrap();
    // Lee also acts for desk only: desk is covered, ops is still missing.
    let s = as_("lee", &wf, &s, &mut log, approve("runbook")).unwrap();
    assert_eq!(status(&wf, &s, "runbook"), NodeStatus::Submitted);
    let s = as_("omar", &wf, &s, &mut log, approve("runbook")).unwrap();
    assert_eq!(status(&wf, &s, "runbook"), NodeStatus::Approved);
}

#[test]
fn request_changes_resets_the_approvals_of_a_submission() {
    let (wf, state, mut log) = policies();
    let s = as_("pat", &wf, &state, &mut log, submit_linked("kb")).unwrap();
    let s = as_("lee", &wf, &s, &mut log, approve("kb")).unwrap();
    let changes = Command::Review {
        node: "kb".into(),
        decision: ReviewDecision::RequestChanges,
        comment: "typo".into(),
    };
    let s = as_("omar", &wf, &s, &mut log, changes).unwrap();
    let s = as_("pat", &wf, &s, &mut log, submit_linked("kb")).unwrap();
    assert!(s.nodes[wf.position("kb").unwrap()].approvals.is_empty());
    let s = as_("lee", &wf, &s, &mut log, approve("kb")).unwrap();
    assert_eq!(status(&wf, &s, "kb"), NodeStatus::Submitted);
}

#[test]
fn required_evidence_is_enforced() {
    let (wf, state, mut log) = policies();
    let text_only = Command::Submit {
        node: "kb".into(),
        evidence: Evidence::parse(vec![], "done".into()).unwrap(),
    };
    let err = as_("pat", &wf, &state, &mut log, text_only).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid evidence: deliverable 'kb' needs evidence: a link (the articles)"
    );
}

#[test]
fn optional_work_never_blocks_and_sign_off_milestones_wait_for_their_role() {
    let (wf, mut s, mut log) = policies();
    s = as_("pat", &wf, &s, &mut log, submit_linked("kb")).unwrap();
    s = as_("lee", &wf, &s, &mut log, approve("kb")).unwrap();
    s = as_("omar", &wf, &s, &mut log, approve("kb")).unwrap();
    s = as_("pat", &wf, &s, &mut log, submit_linked("runbook")).unwrap();
    s = as_("dana", &wf, &s, &mut log, approve("runbook")).unwrap();
    s = as_("omar", &wf, &s, &mut log, approve("runbook")).unwrap();
    // The FAQ is still open, yet the review opens for its sign-off.
    assert_eq!(status(&wf, &s, "faq"), NodeStatus::Open);
    assert_eq!(status(&wf, &s, "review"), NodeStatus::Open);
    let decision = GateDecision::of(&wf, &s);
    let ids: Vec<&str> = decision.blockers.iter().map(|b| b.node.as_str()).collect();
    assert_eq!(ids, ["review"]);
    assert_eq!(
        decision.blockers[0].waiting_on,
        WaitingOn::Role {
            role: RoleName::parse("ops").unwrap(),
            people: vec![actor("omar")]
        }
    );
    let sign = |c: &str| Command::SignOff {
        node: "review".into(),
        comment: c.into(),
    };
    let err = as_("dana", &wf, &s, &mut log, sign("")).unwrap_err();
    assert!(matches!(err, Error::NotPermitted(_)), "{err}");
    s = as_("omar", &wf, &s, &mut log, sign("ready")).unwrap();
    assert_eq!(status(&wf, &s, "review"), NodeStatus::Reached);
    assert_eq!(GateDecision::of(&wf, &s).state, GateState::Open);

    // Through the gate, support ends when its last deliverable is approved: the transition completes.
    s = as_(
        "sam",
        &wf,
        &s,
        &mut log,
        Command::AcceptHandover {
            comment: String::new(),
        },
    )
    .unwrap();
    assert_eq!(s.status, TransitionStatus::HandedOver);
    assert_eq!(status(&wf, &s, "report"), NodeStatus::Open);
    s = as_("pat", &wf, &s, &mut log, submit_linked("report")).unwrap();
    s = as_("sam", &wf, &s, &mut log, approve("report")).unwrap();
    assert_eq!(status(&wf, &s, "support-end"), NodeStatus::Reached);
    assert_eq!(s.status, TransitionStatus::Completed);
    assert_eq!(TransitionState::replay(&wf, &log).unwrap(), s);
}

// ---- who may act (issue 8: items 1-3), rounds, optional evidence, links, the size bound ----

fn accept() -> Command {
    Command::AcceptHandover {
        comment: String::new(),
    }
}

fn reject_runbook() -> Command {
    Command::RejectHandover {
        reasons: vec!["no restore test".into()],
        reopen: vec!["runbook".into()],
    }
}

#[test]
fn only_the_service_manager_accepts_or_rejects_the_handover() {
    let (wf, state, mut log) = started();
    let state = approve_all(&wf, state, &mut log);
    for who in ["mallory", "pat", "dana"] {
        for cmd in [accept(), reject_runbook()] {
            let err = as_(who, &wf, &state, &mut log, cmd).unwrap_err();
            assert!(
                matches!(&err, Error::NotPermitted(m) if m.contains("only the transition's service manager, sam, may")),
                "{who}: {err}"
            );
        }
    }
    let s = as_("sam", &wf, &state, &mut log, reject_runbook()).unwrap();
    assert_eq!(status(&wf, &s, "runbook"), NodeStatus::ChangesRequested);
    let s = as_("sam", &wf, &state, &mut log, accept()).unwrap();
    assert_eq!(s.status, TransitionStatus::HandedOver);
}

#[test]
fn only_people_named_for_the_owner_role_submit() {
    let (wf, state, mut log) = started();
    // knowledge-articles is owned by technical_lead (pat in these tests), support-contacts by the PM.
    let err = as_(
        "mallory",
        &wf,
        &state,
        &mut log,
        submit("knowledge-articles"),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "mallory may not submit deliverable 'knowledge-articles': it is owned by role technical_lead (pat)"
    );
    let err = as_("sam", &wf, &state, &mut log, submit("support-contacts")).unwrap_err();
    assert!(
        err.to_string()
            .contains("owned by role project_manager (pat)"),
        "{err}"
    );
    assert!(as_("pat", &wf, &state, &mut log, submit("support-contacts")).is_ok());
}

#[test]
fn every_acting_role_must_be_named_and_no_role_is_open_to_anyone() {
    let wf = wf();
    let mut m = meta();
    m.participants
        .remove(&RoleName::parse("operations_lead").unwrap());
    m.participants
        .remove(&RoleName::parse("service_owner").unwrap());
    let err = TransitionState::start(&wf, m.clone(), actor("pat"), at()).unwrap_err();
    assert_eq!(
        err,
        Error::InvalidArgument {
            field: "participants",
            message: "workflow 'standard-transition' needs people named for every role that owns, \
                      approves or signs off work; nobody is named for: operations_lead, service_owner \
                      (add them as participants: ROLE=NAME)"
                .into()
        }
    );
    m.participants
        .insert(RoleName::parse("operations_lead").unwrap(), vec![]);
    let err = TransitionState::start(&wf, m, actor("pat"), at()).unwrap_err();
    assert!(
        err.to_string()
            .contains("'operations_lead' is listed without people"),
        "{err}"
    );
    // The SMO role owns nothing here, so it need not be named; and a role is never "anyone".
    let m = meta();
    assert!(!m.may_act_for(
        &crate::workflow::Approver::Role(RoleName::parse("smo").unwrap()),
        &actor("mallory")
    ));
}

#[test]
fn a_past_go_live_is_refused_unless_allowed() {
    let m = meta();
    let day_after = m.target_go_live.succ_opt().unwrap();
    let err = m.check_go_live(day_after, false).unwrap_err();
    assert!(err.to_string().contains("is in the past"), "{err}");
    assert!(m.check_go_live(day_after, true).is_ok());
    assert!(m.check_go_live(m.target_go_live, false).is_ok());
}

#[test]
fn a_resubmission_turns_the_changes_requested_comment_into_history() {
    let (wf, state, mut log) = started();
    let s = run(&wf, &state, &mut log, submit("support-contacts")).unwrap();
    let changes = Command::Review {
        node: "support-contacts".into(),
        decision: ReviewDecision::RequestChanges,
        comment: "add the supplier".into(),
    };
    let s = run(&wf, &s, &mut log, changes).unwrap();
    let n = &s.nodes[wf.position("support-contacts").unwrap()];
    assert_eq!((n.round, n.comment_round), (1, 1));
    assert!(n.comment_is_current());
    let s = run(&wf, &s, &mut log, submit("support-contacts")).unwrap();
    let n = &s.nodes[wf.position("support-contacts").unwrap()];
    assert_eq!(n.comment.as_deref(), Some("add the supplier"));
    assert_eq!((n.round, n.comment_round), (2, 1));
    assert!(!n.comment_is_current());
    assert_eq!(TransitionState::replay(&wf, &log).unwrap(), s);
}

#[test]
fn without_a_support_window_the_accepted_handover_completes_the_transition() {
    let source = SHIPPED_CHANGE;
    let wf = Workflow::parse("standard-change.yaml", source).unwrap();
    let mut m = meta();
    m.workflow = WorkflowName::parse("standard-change").unwrap();
    m.participants = Participants::from([
        (
            RoleName::parse("change_manager").unwrap(),
            vec![actor("carl")],
        ),
        (
            RoleName::parse("service_desk_lead").unwrap(),
            vec![actor("dana")],
        ),
        (
            RoleName::parse("service_owner").unwrap(),
            vec![actor("owen")],
        ),
    ]);
    let (mut s, mut log) = TransitionState::start(&wf, m, actor("pat"), at()).unwrap();
    for (node, approvers) in [
        ("change-record", &["carl"][..]),
        ("sla-impact", &["owen", "carl"][..]),
        ("updated-knowledge", &["dana"][..]),
    ] {
        s = as_("pat", &wf, &s, &mut log, submit(node)).unwrap();
        for who in approvers {
            s = as_(who, &wf, &s, &mut log, approve(node)).unwrap();
        }
    }
    let sign_off = Command::SignOff {
        node: "service-manager-sign-off".into(),
        comment: String::new(),
    };
    s = as_("sam", &wf, &s, &mut log, sign_off).unwrap();
    s = as_("sam", &wf, &s, &mut log, accept()).unwrap();
    assert!(wf.support().is_none());
    assert_eq!(s.status, TransitionStatus::Completed);
    assert_eq!(TransitionState::replay(&wf, &log).unwrap(), s);
}

const SHIPPED_CHANGE: &str = include_str!("../../../../../workflows/standard-change.yaml");

#[test]
fn evidence_is_optional_where_the_workflow_asks_for_none() {
    let (wf, state, mut log) = started();
    let empty = Evidence::parse(Vec::new(), String::new()).unwrap();
    let cmd = Command::Submit {
        node: "support-contacts".into(),
        evidence: empty.clone(),
    };
    let s = run(&wf, &state, &mut log, cmd).unwrap();
    assert_eq!(status(&wf, &s, "support-contacts"), NodeStatus::Submitted);
    // knowledge-articles asks for a link: still refused without one.
    let cmd = Command::Submit {
        node: "knowledge-articles".into(),
        evidence: empty,
    };
    assert!(run(&wf, &s, &mut log, cmd).is_err());
}

#[test]
fn links_must_be_web_addresses() {
    for bad in [
        "javascript:alert(1)",
        "JAVASCRIPT:alert(1)",
        "data:text/html,x",
        "ftp://x/y",
        "https://",
        "http:///path",
        "wiki/page",
    ] {
        let err = Evidence::parse(vec![bad.into()], String::new()).unwrap_err();
        assert!(
            err.to_string().contains("http:// or https://"),
            "{bad}: {err}"
        );
    }
    for good in [
        "https://wiki.example/a b".replace(' ', "%20"),
        "HTTP://x".into(),
    ] {
        assert!(
            Evidence::parse(vec![good.clone()], String::new()).is_ok(),
            "{good}"
        );
    }
    let attachment = |uri: &str| Attachment {
        uri: uri.into(),
        sha256: "a".repeat(64),
    };
    for bad in ["javascript:alert(1)", "data:,x", "no-scheme"] {
        assert!(
            Evidence::parse_with_attachments(vec![], String::new(), vec![attachment(bad)]).is_err(),
            "{bad}"
        );
    }
    assert!(
        Evidence::parse_with_attachments(vec![], String::new(), vec![attachment("s3://b/k")])
            .is_ok()
    );
}

/// A workflow of `n` deliverables that need nothing, owned by the PM and approved by role desk.
pub(crate) fn wide_workflow(n: usize) -> Workflow {
    let mut yaml = String::from(
        "name: wide\nroles:\n  desk: {description: d}\nmilestones:\n  - {id: start, title: Start}\ndeliverables:\n",
    );
    for i in 0..n {
        yaml.push_str(&format!(
            "  - {{id: d{i}, title: D{i}, owner: project_manager, approver: desk, needs: [start]}}\n"
        ));
    }
    let needs: Vec<String> = (0..n).map(|i| format!("d{i}")).collect();
    yaml.push_str(&format!(
        "gate: {{id: gate, title: Gate, needs: [{}]}}\n",
        needs.join(", ")
    ));
    Workflow::parse("wide.yaml", &yaml).unwrap()
}

#[test]
fn a_transition_never_holds_more_than_its_content_limit() {
    let wf = wide_workflow(20);
    let mut m = meta();
    m.workflow = WorkflowName::parse("wide").unwrap();
    m.participants = Participants::from([(RoleName::parse("desk").unwrap(), vec![actor("dana")])]);
    let (mut state, mut log) = TransitionState::start(&wf, m, actor("pat"), at()).unwrap();
    let links: Vec<String> = (0..MAX_LINKS)
        .map(|i| format!("https://docs.example/{i}/{}", "p".repeat(MAX_LINK_LEN - 40)))
        .collect();
    let mut accepted = 0;
    let mut refusal = None;
    for i in 0..20 {
        let evidence = Evidence::parse(links.clone(), "x".repeat(MAX_TEXT_LEN)).unwrap();
        let cmd = Command::Submit {
            node: format!("d{i}"),
            evidence,
        };
        match as_("pat", &wf, &state, &mut log, cmd) {
            Ok(s) => {
                state = s;
                accepted += 1;
            }
            Err(e) => {
                refusal = Some(e);
                break;
            }
        }
    }
    let refusal = refusal.expect("the bound refuses before 20 maximal submissions");
    assert!(
        matches!(&refusal, Error::FailedPrecondition(m) if m.contains("above its limit of 1024 KiB")),
        "{refusal}"
    );
    assert!((5..=7).contains(&accepted), "{accepted} accepted");
    assert!(state.content_bytes() <= MAX_TRANSITION_CONTENT);
    // What shrinks the content is never refused: a review with no comment still works.
    let s = as_("dana", &wf, &state, &mut log, approve("d0")).unwrap();
    assert_eq!(status(&wf, &s, "d0"), NodeStatus::Approved);
}

#[test]
fn the_smo_replaces_the_people_of_a_role_and_the_old_ones_no_longer_act() {
    let (wf, state, mut log) = started();
    let s = run(&wf, &state, &mut log, submit("support-contacts")).unwrap();
    let change = |role: &str, people: &[&str]| Command::ChangeParticipants {
        role: role.into(),
        people: people.iter().map(|p| (*p).to_owned()).collect(),
    };
    // Dana leaves the service desk; Lee takes over.
    let s = as_(
        "smo",
        &wf,
        &s,
        &mut log,
        change("service_desk_lead", &["lee"]),
    )
    .unwrap();
    assert_eq!(log.last().unwrap().kind.name(), "participants_changed");
    let err = as_("dana", &wf, &s, &mut log, approve("support-contacts")).unwrap_err();
    assert!(matches!(err, Error::NotPermitted(_)), "{err}");
    let s = as_("lee", &wf, &s, &mut log, approve("support-contacts")).unwrap();
    assert_eq!(status(&wf, &s, "support-contacts"), NodeStatus::Approved);
    // A new service manager; built-in roles hold one person; unknown roles and no-ops refused.
    let s = as_(
        "smo",
        &wf,
        &s,
        &mut log,
        change("service_manager", &["sue"]),
    )
    .unwrap();
    assert_eq!(s.meta.service_manager, actor("sue"));
    for (role, people) in [
        ("service_manager", &["a", "b"][..]),
        ("service_desk_lead", &[][..]),
        ("janitor", &["x"][..]),
        ("service_desk_lead", &["lee"][..]),
    ] {
        assert!(
            as_("smo", &wf, &s, &mut log, change(role, people)).is_err(),
            "{role}"
        );
    }
    assert_eq!(TransitionState::replay(&wf, &log).unwrap(), s);
}

mod identity;
mod stalled;
mod timers;
