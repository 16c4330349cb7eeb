//! Tests of who may act: deputies under delegations, waivers and their expiry, attribution.

use chrono::Duration;

use super::*;

fn delegation(id: i64, from: &str, to: &str, days: std::ops::Range<i64>) -> Delegation {
    Delegation {
        id,
        from: actor(from),
        to: actor(to),
        starts: at() + Duration::days(days.start),
        ends: at() + Duration::days(days.end),
    }
}

fn deputy(who: &str, delegations: Vec<Delegation>) -> Acting {
    Acting {
        deputy_for: delegations,
        ..Acting::person(actor(who))
    }
}

fn acting(
    who: Acting,
    wf: &Workflow,
    state: &TransitionState,
    log: &mut Vec<Event>,
    cmd: Command,
) -> Result<TransitionState> {
    let (next, events) = state.execute(wf, cmd, who, at())?;
    log.extend(events);
    Ok(next)
}

#[test]
fn a_deputy_approves_for_the_person_and_never_counts_twice_with_them() {
    let (wf, state, mut log) = policies();
    let s = as_("pat", &wf, &state, &mut log, submit_linked("kb")).unwrap();
    let sue = || deputy("sue", vec![delegation(12, "lee", "sue", -1..5)]);
    let s = acting(sue(), &wf, &s, &mut log, approve("kb")).unwrap();
    let event = log.last().unwrap();
    assert_eq!(event.actor, actor("sue"));
    assert_eq!(
        event.kind,
        EventKind::ApprovalRecorded {
            node: NodeId::parse("kb").unwrap(),
            comment: String::new(),
            deputy: Some(StoodIn {
                on_behalf_of: actor("lee"),
                delegation: 12,
            }),
        }
    );
    assert_eq!(
        event.attribution.role,
        Some(RoleName::parse("desk").unwrap())
    );
    let kb = &s.nodes[wf.position("kb").unwrap()];
    assert_eq!(
        (kb.approvals.as_slice(), kb.deputies.as_slice()),
        (&[actor("lee")][..], &[actor("sue")][..])
    );
    // Lee in person does not count again towards the quorum of 2.
    let err = as_("lee", &wf, &s, &mut log, approve("kb")).unwrap_err();
    assert!(err.to_string().starts_with("lee already approved"), "{err}");
    // Nor does Sue, even standing in for someone else as well.
    let both = deputy(
        "sue",
        vec![
            delegation(12, "lee", "sue", -1..5),
            delegation(13, "dana", "sue", -1..5),
        ],
    );
    let err = acting(both, &wf, &s, &mut log, approve("kb")).unwrap_err();
    assert!(err.to_string().starts_with("sue already approved"), "{err}");
    let s = as_("omar", &wf, &s, &mut log, approve("kb")).unwrap();
    assert_eq!(status(&wf, &s, "kb"), NodeStatus::Approved);
    assert_eq!(TransitionState::replay(&wf, &log).unwrap(), s);
}

#[test]
fn an_approval_without_a_comment_keeps_the_co_approvers_comment_on_the_same_submission() {
    let (wf, state, mut log) = policies();
    let review = |comment: &str| Command::Review {
        node: "kb".into(),
        decision: ReviewDecision::Approve,
        comment: comment.into(),
    };
    let kb = |s: &TransitionState| s.nodes[wf.position("kb").unwrap()].clone();
    let s = as_("pat", &wf, &state, &mut log, submit_linked("kb")).unwrap();
    let s = as_("lee", &wf, &s, &mut log, review("check the backup runbook")).unwrap();
    // The second approval of the quorum of 2, without words.
    let s = as_("omar", &wf, &s, &mut log, review("")).unwrap();
    assert_eq!(status(&wf, &s, "kb"), NodeStatus::Approved);
    assert_eq!(kb(&s).comment.as_deref(), Some("check the backup runbook"));
    assert!(kb(&s).comment_is_current());
    assert_eq!(TransitionState::replay(&wf, &log).unwrap(), s);

    // A comment of an earlier round does not stay on an approval of the next submission.
    let s = as_("pat", &wf, &state, &mut log, submit_linked("kb")).unwrap();
    let changes = Command::Review {
        node: "kb".into(),
        decision: ReviewDecision::RequestChanges,
        comment: "link the runbook".into(),
    };
    let s = as_("lee", &wf, &s, &mut log, changes).unwrap();
    let s = as_("pat", &wf, &s, &mut log, submit_linked("kb")).unwrap();
    assert!(!kb(&s).comment_is_current());
    let s = as_("lee", &wf, &s, &mut log, review("")).unwrap();
    assert_eq!(kb(&s).comment, None);
    // And words replace a current comment.
    let s = as_("omar", &wf, &s, &mut log, review("fine now")).unwrap();
    assert_eq!(kb(&s).comment.as_deref(), Some("fine now"));
}

#[test]
fn a_deputy_for_the_person_who_approved_does_not_count_again() {
    let (wf, state, mut log) = policies();
    let s = as_("pat", &wf, &state, &mut log, submit_linked("kb")).unwrap();
    let s = as_("lee", &wf, &s, &mut log, approve("kb")).unwrap();
    let sue = deputy("sue", vec![delegation(12, "lee", "sue", 0..5)]);
    let err = acting(sue, &wf, &s, &mut log, approve("kb")).unwrap_err();
    assert!(
        err.to_string().starts_with(
            "lee already approved this submission of 'kb' (in person or through a deputy)"
        ),
        "{err}"
    );
    assert_eq!(status(&wf, &s, "kb"), NodeStatus::Submitted);
}

#[test]
fn a_deputy_never_approves_what_they_or_the_person_submitted() {
    let (wf, state, mut log) = policies();
    let s = as_("pat", &wf, &state, &mut log, submit_linked("kb")).unwrap();
    // Standing in for Pat, who submitted it.
    let sue = deputy("sue", vec![delegation(4, "pat", "sue", 0..5)]);
    let err = acting(sue, &wf, &s, &mut log, approve("kb")).unwrap_err();
    assert_eq!(
        err,
        Error::NotPermitted(
            "pat submitted deliverable 'kb', so sue may not approve it for them (delegation #4)"
                .into()
        )
    );
    // Pat, deputy for Lee, approving his own submission.
    let pat = deputy("pat", vec![delegation(5, "lee", "pat", 0..5)]);
    let err = acting(pat, &wf, &s, &mut log, approve("kb")).unwrap_err();
    assert_eq!(
        err,
        Error::NotPermitted("pat submitted deliverable 'kb' and so may not approve it".into())
    );
    assert!(s.nodes[wf.position("kb").unwrap()].approvals.is_empty());
}

#[test]
fn a_deputy_outside_the_dates_and_a_chained_delegation_are_refused() {
    let (wf, state, mut log) = policies();
    let s = as_("pat", &wf, &state, &mut log, submit_linked("kb")).unwrap();
    let early = deputy("sue", vec![delegation(7, "lee", "sue", 1..5)]);
    let err = acting(early, &wf, &s, &mut log, approve("kb")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "sue may not review deliverable 'kb': the delegation #7 from lee is in force from \
         2026-11-02 09:00 UTC until 2026-11-06 09:00 UTC, not now"
    );
    let over = deputy("sue", vec![delegation(8, "lee", "sue", -5..0)]);
    assert!(acting(over, &wf, &s, &mut log, approve("kb")).is_err());
    // Lee -> Sue -> Tom: Tom stands in for Sue, who may not approve in her own right.
    let tom = deputy("tom", vec![delegation(9, "sue", "tom", -1..5)]);
    let err = acting(tom, &wf, &s, &mut log, approve("kb")).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("tom may not review deliverable 'kb': its approval is"),
        "{err}"
    );
    assert!(s.nodes[wf.position("kb").unwrap()].approvals.is_empty());
}

fn waive(node: &str, reason: &str, until: DateTime<Utc>) -> Command {
    Command::Waive {
        node: node.into(),
        reason: reason.into(),
        until,
    }
}

#[test]
fn a_waiver_opens_the_gate_until_it_ends_and_the_log_records_the_end() {
    let (wf, state, mut log) = started();
    let until = at() + Duration::days(10);
    let s = as_(
        "smo",
        &wf,
        &state,
        &mut log,
        waive("sla", "SLA signed on paper, scan follows", until),
    )
    .unwrap();
    assert_eq!(log.last().unwrap().kind.name(), "deliverable_waived");
    // Everything else done: the gate opens on the waiver.
    let mut s = s;
    for node in wf.nodes() {
        if matches!(node.kind, NodeKind::Deliverable(_))
            && !node.after_go_live
            && node.id.as_str() != "sla"
        {
            s = run(&wf, &s, &mut log, submit(node.id.as_str())).unwrap();
            s = run(&wf, &s, &mut log, approve(node.id.as_str())).unwrap();
        }
    }
    // The readiness review needs no sign-off: it is reached with its needs done.
    assert_eq!(status(&wf, &s, "readiness-review"), NodeStatus::Reached);
    let decision = GateDecision::of(&wf, &s);
    assert_eq!(decision.state, GateState::Open, "{}", decision.explain());
    assert_eq!(decision.waivers.len(), 1);
    assert_eq!(decision.waivers[0].node.as_str(), "sla");
    assert_eq!(decision.waivers[0].waiver.by, actor("smo"));
    assert!(
        decision.explain().contains("waived: deliverable 'sla'"),
        "{}",
        decision.explain()
    );
    assert!(decision.explain().contains("SLA signed on paper"));

    // Before the end, nothing expires.
    let err = s
        .execute(
            &wf,
            Command::ExpireWaivers,
            actor("opsgate"),
            until - Duration::seconds(1),
        )
        .unwrap_err();
    assert!(matches!(err, Error::FailedPrecondition(_)));
    // From the moment it ends, it no longer counts; the expiry is logged at that moment.
    let later = until + Duration::hours(3);
    let (expired, events) = s
        .execute(&wf, Command::ExpireWaivers, actor("opsgate"), later)
        .unwrap();
    assert_eq!(events[0].kind.name(), "waiver_expired");
    assert_eq!(events[0].at, until);
    assert_eq!(events[0].actor.as_str(), SYSTEM_ACTOR);
    assert!(events.iter().any(|e| e.kind
        == EventKind::NodeRelocked {
            node: NodeId::parse("operations-gate").unwrap()
        }));
    let decision = GateDecision::of(&wf, &expired);
    assert_eq!(decision.state, GateState::Closed);
    assert!(decision.waivers.is_empty());
    assert!(decision.blockers.iter().any(|b| b.node.as_str() == "sla"));
    // Any command after the end records the expiry first, and is decided without the waiver.
    let (_, events) = s.execute(&wf, submit("sla"), actor("pat"), later).unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.name()).collect();
    assert_eq!(kinds[0], "waiver_expired");
    assert!(kinds.contains(&"deliverable_submitted"));
    log.extend(events);
    assert!(TransitionState::replay(&wf, &log).is_ok());
}

#[test]
fn a_waiver_needs_a_reason_a_future_end_and_unfinished_work() {
    let (wf, state, mut log) = started();
    let err = as_(
        "smo",
        &wf,
        &state,
        &mut log,
        waive("sla", "  ", at() + Duration::days(1)),
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidArgument {
                field: "reason",
                ..
            }
        ),
        "{err}"
    );
    let err = as_("smo", &wf, &state, &mut log, waive("sla", "why", at())).unwrap_err();
    assert!(
        matches!(err, Error::InvalidArgument { field: "until", .. }),
        "{err}"
    );
    let err = as_(
        "smo",
        &wf,
        &state,
        &mut log,
        waive("operations-gate", "why", at() + Duration::days(1)),
    )
    .unwrap_err();
    assert!(err.to_string().contains("not a deliverable"), "{err}");
    let s = run(&wf, &state, &mut log, submit("sla")).unwrap();
    let s = run(&wf, &s, &mut log, approve("sla")).unwrap();
    let err = as_(
        "smo",
        &wf,
        &s,
        &mut log,
        waive("sla", "why", at() + Duration::days(1)),
    )
    .unwrap_err();
    assert!(err.to_string().contains("already approved"), "{err}");
}

#[test]
fn events_record_the_access_role_the_workflow_role_and_the_credential() {
    let (wf, state, mut log) = started();
    let pat = Acting {
        access: Some(crate::Access::ProjectManager),
        credential: Some("token og_1a2b3c4d".into()),
        ..Acting::person(actor("pat"))
    };
    let _ = acting(pat, &wf, &state, &mut log, submit("sla")).unwrap();
    let event = log.last().unwrap();
    assert_eq!(event.attribution.access.as_deref(), Some("project_manager"));
    assert_eq!(
        event.attribution.credential.as_deref(),
        Some("token og_1a2b3c4d")
    );
    let owner = wf
        .node(wf.position("sla").unwrap())
        .deliverable()
        .unwrap()
        .owner
        .clone();
    assert_eq!(event.attribution.role, Some(owner));
}
