//! Reminders, overdue notices and escalations from the workflow's due dates: which of them are
//! due in a transition at a moment, each with the notice it sends. Pure: the store records each
//! one it fires under its [`Timer`] key, so that each fires once, whoever looks and however often.

use chrono::{DateTime, Duration, NaiveDate, Utc};

use crate::ids::NodeId;
use crate::notice::{Notice, NoticeKind, names};
use crate::stalled::{due_date, must_act};
use crate::transition::{Delegation, NodeStatus, TransitionState, TransitionStatus};
use crate::workflow::Workflow;

/// When the three fire, in whole days around a due date (due dates are days).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerRules {
    /// A reminder this many days before the due date (0: none).
    pub reminder_days: u32,
    /// An overdue notice the day after the due date.
    pub overdue: bool,
    /// An escalation to the SMO this many days after the due date (0: none).
    pub escalation_days: u32,
}

impl Default for TimerRules {
    fn default() -> Self {
        Self {
            reminder_days: 2,
            overdue: true,
            escalation_days: 3,
        }
    }
}

impl TimerRules {
    /// The latest due date that may have something to fire on `today` (the reminders' reach).
    pub fn horizon(&self, today: NaiveDate) -> NaiveDate {
        today
            .checked_add_signed(Duration::days(i64::from(self.reminder_days)))
            .unwrap_or(today)
    }
}

/// What identifies one timer: it fires once per node, kind and due date (a moved due date is a
/// new timer).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Timer {
    pub node: NodeId,
    pub kind: NoticeKind,
    pub due: NaiveDate,
}

/// The timers due in `state` at `now` under `rules`, each with its notice; the caller drops
/// those it has fired before. Nothing for a completed transition or for work done or waived; a
/// reminder and an overdue notice only for work someone can do now (not waiting on other
/// nodes); an escalation for any work past the grace period.
pub fn due_timers(
    workflow: &Workflow,
    state: &TransitionState,
    transition_id: &str,
    now: DateTime<Utc>,
    rules: &TimerRules,
    deputies: &[Delegation],
) -> Vec<(Timer, Notice)> {
    let mut out = Vec::new();
    if state.status == TransitionStatus::Completed {
        return out;
    }
    let today = now.date_naive();
    let days = |d: u32| Duration::days(i64::from(d));
    for (i, node) in workflow.nodes().iter().enumerate() {
        let ns = &state.nodes[i];
        if ns.counts_as_done() || (node.after_go_live && state.status == TransitionStatus::Active) {
            continue;
        }
        let Some(due) = due_date(workflow, state, i) else {
            continue;
        };
        let (people, unfilled) = must_act(workflow, state, i, now, deputies);
        let workable = ns.status != NodeStatus::Locked;
        let mut fire = |kind: NoticeKind| {
            let mut n = Notice::about(workflow, state, transition_id, i, kind, now);
            n.act_next = names(&people);
            n.due = Some(due);
            let what = node.kind.label();
            let action = match ns.status {
                NodeStatus::Submitted => format!("review '{}'", node.title),
                _ if i == workflow.gate() => "accept or reject the handover".to_owned(),
                NodeStatus::ChangesRequested => format!("rework and resubmit '{}'", node.title),
                _ => format!("finish '{}'", node.title),
            };
            let late = (today - due).num_days();
            n.headline = match kind {
                NoticeKind::Reminder => format!("{what} '{}' is due {due}", node.title),
                NoticeKind::Overdue => format!(
                    "{what} '{}' was due {due} and is {} ({late} days late)",
                    node.title,
                    ns.status.as_str()
                ),
                _ => format!(
                    "{what} '{}' is {late} days overdue (due {due}) and still {}: the SMO steps in",
                    node.title,
                    ns.status.as_str()
                ),
            };
            if let Some(role) = &unfilled {
                n.headline
                    .push_str(&format!("; nobody is named for the role {role}"));
            }
            n.action = Some(action);
            if kind == NoticeKind::Escalation {
                // The SMO: the workflow's contacts for the role `smo`.
                n.reach_contacts(workflow, "smo");
            } else {
                n.recipients = n.act_next.clone();
                // A role nobody fills is reached through its contact in the workflow, if any.
                if let Some(role) = &unfilled {
                    n.reach_contacts(workflow, role.as_str());
                }
            }
            out.push((
                Timer {
                    node: node.id.clone(),
                    kind,
                    due,
                },
                n,
            ));
        };
        let overdue = due < today;
        if rules.reminder_days > 0
            && workable
            && !overdue
            && due - days(rules.reminder_days) <= today
        {
            fire(NoticeKind::Reminder);
        }
        if rules.overdue && workable && overdue {
            fire(NoticeKind::Overdue);
        }
        if rules.escalation_days > 0 && due + days(rules.escalation_days) < today {
            fire(NoticeKind::Escalation);
        }
    }
    out
}
