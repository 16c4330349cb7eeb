//! Tests of the stalled list: idle transitions, overdue and unreviewed work, bounced
//! deliverables, an open gate left alone; each naming who must act.

use chrono::Duration;

use super::*;
use crate::stalled::{StallKind, StallRules, stalls};

fn kinds(list: &[crate::stalled::Stall]) -> Vec<(&'static str, Option<&str>)> {
    list.iter()
        .map(|s| (s.kind.as_str(), s.node.as_ref().map(NodeId::as_str)))
        .collect()
}

#[test]
fn an_idle_transition_names_the_people_its_open_work_waits_on() {
    let (wf, state, _) = started();
    let rules = StallRules::default();
    assert!(
        stalls(&wf, &state, at() + Duration::days(6), &rules, &[])
            .iter()
            .all(|s| s.kind != StallKind::Idle)
    );
    let list = stalls(&wf, &state, at() + Duration::days(8), &rules, &[]);
    let idle = list.iter().find(|s| s.kind == StallKind::Idle).unwrap();
    assert_eq!(idle.since, at());
    assert!(
        idle.reason.starts_with("no event for 8 days"),
        "{}",
        idle.reason
    );
    // Open at start: work owned by Pat (project manager, technical lead).
    assert_eq!(idle.must_act, [actor("pat")]);
}

#[test]
fn overdue_work_names_its_owner_and_unreviewed_work_its_approvers_and_deputies() {
    let (wf, state, mut log) = started();
    let rules = StallRules::default();
    // The SLA is due 20 days before go-live (2026-12-01): late from 2026-11-12 on.
    let now = at() + Duration::days(12);
    let list = stalls(&wf, &state, now, &rules, &[]);
    let sla = list
        .iter()
        .find(|s| {
            s.kind == StallKind::Overdue && s.node.as_ref().is_some_and(|n| n.as_str() == "sla")
        })
        .unwrap_or_else(|| panic!("{:?}", kinds(&list)));
    assert_eq!(sla.must_act, [actor("pat")]);
    assert!(sla.reason.contains("was due 2026-11-11"), "{}", sla.reason);

    let s = run(&wf, &state, &mut log, submit("sla")).unwrap();
    let deputy = Delegation {
        id: 3,
        from: actor("dana"),
        to: actor("dee"),
        starts: at(),
        ends: at() + Duration::days(30),
    };
    let list = stalls(
        &wf,
        &s,
        at() + Duration::days(6),
        &rules,
        std::slice::from_ref(&deputy),
    );
    let waiting = list
        .iter()
        .find(|s| s.kind == StallKind::AwaitingReview)
        .unwrap_or_else(|| panic!("{:?}", kinds(&list)));
    assert_eq!(waiting.must_act, [actor("dana"), actor("dee")]);
    assert!(
        stalls(&wf, &s, at() + Duration::days(4), &rules, &[deputy])
            .iter()
            .all(|s| s.kind != StallKind::AwaitingReview)
    );
}

#[test]
fn a_deliverable_sent_back_three_times_is_flagged() {
    let (wf, mut state, mut log) = started();
    let changes = || Command::Review {
        node: "sla".into(),
        decision: ReviewDecision::RequestChanges,
        comment: "again".into(),
    };
    for _ in 0..2 {
        state = run(&wf, &state, &mut log, submit("sla")).unwrap();
        state = run(&wf, &state, &mut log, changes()).unwrap();
    }
    let rules = StallRules::default();
    assert!(
        stalls(&wf, &state, at(), &rules, &[])
            .iter()
            .all(|s| s.kind != StallKind::Bounced)
    );
    state = run(&wf, &state, &mut log, submit("sla")).unwrap();
    state = run(&wf, &state, &mut log, changes()).unwrap();
    let list = stalls(&wf, &state, at(), &rules, &[]);
    let bounced = list.iter().find(|s| s.kind == StallKind::Bounced).unwrap();
    assert_eq!(bounced.reason, "sent back 3 times (more than 2)");
    assert_eq!(bounced.must_act, [actor("pat")]);
}

#[test]
fn an_open_gate_left_alone_names_the_service_manager() {
    let (wf, state, mut log) = started();
    let state = approve_all(&wf, state, &mut log);
    let opened = state.nodes[wf.gate()].updated_at;
    let list = stalls(
        &wf,
        &state,
        opened + Duration::days(8),
        &StallRules::default(),
        &[],
    );
    let gate = list
        .iter()
        .find(|s| s.kind == StallKind::GateNotActedOn)
        .unwrap_or_else(|| panic!("{:?}", kinds(&list)));
    assert_eq!(gate.must_act, [actor("sam")]);
}
