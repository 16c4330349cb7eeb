//! Tests of the timers: a reminder before a due date, an overdue notice after it to whoever
//! must act, an escalation to the SMO after the grace period; none for work done.

use chrono::Duration;

use super::*;
use crate::notice::NoticeKind;
use crate::timers::{TimerRules, due_timers};

/// The timers of node `id` due at `now`, by kind.
fn of(
    wf: &Workflow,
    state: &TransitionState,
    now: DateTime<Utc>,
    deputies: &[Delegation],
    id: &str,
) -> Vec<(NoticeKind, crate::notice::Notice)> {
    due_timers(wf, state, "t1", now, &TimerRules::default(), deputies)
        .into_iter()
        .filter(|(t, _)| t.node.as_str() == id)
        .map(|(t, n)| {
            assert_eq!(t.kind, n.kind);
            (t.kind, n)
        })
        .collect()
}

fn kinds(list: &[(NoticeKind, crate::notice::Notice)]) -> Vec<NoticeKind> {
    list.iter().map(|(k, _)| *k).collect()
}

#[test]
fn a_reminder_then_an_overdue_notice_go_to_the_owner_and_an_escalation_to_the_smo() {
    let (wf, state, _) = started();
    // The SLA (owned by the project manager, pat) is due 2026-11-11.
    let day = |d: u32| Utc.with_ymd_and_hms(2026, 11, d, 9, 0, 0).unwrap();
    assert!(of(&wf, &state, day(8), &[], "sla").is_empty());
    let reminder = of(&wf, &state, day(9), &[], "sla");
    assert_eq!(kinds(&reminder), [NoticeKind::Reminder]);
    let n = &reminder[0].1;
    assert_eq!(n.recipients, ["pat"]);
    assert_eq!(n.act_next, ["pat"]);
    assert_eq!(n.due, NaiveDate::from_ymd_opt(2026, 11, 11));
    assert_eq!(n.node_id.as_deref(), Some("sla"));
    assert!(n.headline.contains("is due 2026-11-11"), "{}", n.headline);
    // On the due day itself it is not late yet.
    assert_eq!(
        kinds(&of(&wf, &state, day(11), &[], "sla")),
        [NoticeKind::Reminder]
    );
    let overdue = of(&wf, &state, day(12), &[], "sla");
    assert_eq!(kinds(&overdue), [NoticeKind::Overdue]);
    assert_eq!(overdue[0].1.recipients, ["pat"]);
    assert!(
        overdue[0].1.headline.contains("1 days late"),
        "{}",
        overdue[0].1.headline
    );
    assert_eq!(
        kinds(&of(&wf, &state, day(14), &[], "sla")),
        [NoticeKind::Overdue]
    );
    let escalation = of(&wf, &state, day(15), &[], "sla");
    assert_eq!(
        kinds(&escalation),
        [NoticeKind::Overdue, NoticeKind::Escalation]
    );
    let n = &escalation[1].1;
    assert_eq!(n.recipients, ["Service Management Office"]);
    assert_eq!(
        n.mailboxes
            .get("Service Management Office")
            .map(String::as_str),
        Some("smo@example.org")
    );
    // The message still names who must act.
    assert_eq!(n.act_next, ["pat"]);
}

#[test]
fn work_waiting_on_review_reminds_its_approvers_and_their_deputies_and_done_work_nothing() {
    let (wf, state, mut log) = started();
    let s = run(&wf, &state, &mut log, submit("sla")).unwrap();
    let deputy = Delegation {
        id: 3,
        from: actor("dana"),
        to: actor("dee"),
        starts: at(),
        ends: at() + Duration::days(30),
    };
    let now = Utc.with_ymd_and_hms(2026, 11, 12, 9, 0, 0).unwrap();
    let overdue = of(&wf, &s, now, std::slice::from_ref(&deputy), "sla");
    assert_eq!(kinds(&overdue), [NoticeKind::Overdue]);
    assert_eq!(overdue[0].1.recipients, ["dana", "dee"]);
    assert_eq!(
        overdue[0].1.action.as_deref(),
        Some("review 'Service level agreement defined'")
    );
    let s = run(&wf, &s, &mut log, approve("sla")).unwrap();
    assert!(of(&wf, &s, now + Duration::days(10), &[], "sla").is_empty());
}

#[test]
fn locked_work_gets_no_reminder_but_is_escalated_and_rules_turn_each_off() {
    let (wf, state, _) = started();
    let far = at() + Duration::days(60);
    let all = due_timers(&wf, &state, "t1", far, &TimerRules::default(), &[]);
    // Locked work is not anyone's to do yet: escalated, never reminded or reported overdue.
    for (t, _) in &all {
        let i = wf.position(t.node.as_str()).unwrap();
        if state.nodes[i].status == NodeStatus::Locked {
            assert_eq!(t.kind, NoticeKind::Escalation, "{t:?}");
        }
    }
    assert!(all.iter().any(|(t, _)| t.kind == NoticeKind::Escalation));
    let off = TimerRules {
        reminder_days: 0,
        overdue: false,
        escalation_days: 0,
    };
    assert!(due_timers(&wf, &state, "t1", far, &off, &[]).is_empty());
    let day = Utc.with_ymd_and_hms(2026, 11, 9, 9, 0, 0).unwrap();
    assert!(due_timers(&wf, &state, "t1", day, &off, &[]).is_empty());
}
