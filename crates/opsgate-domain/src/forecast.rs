//! The forecast of a running transition: the workflow's critical path applied to what is done,
//! with each open node's duration taken from how long it really took in past transitions of the
//! workflow (the median, once there are enough samples) instead of its planned effort; the
//! projected go-live date, whether it misses the target, and the node that drives the delay.
//! Pure: the caller passes the history and the day it asks on.

use chrono::NaiveDate;

use crate::transition::{NodeStatus, TransitionState};
use crate::workflow::{Workflow, add_days};

/// Past durations of a node before the median replaces its planned effort.
pub const MIN_SAMPLES: usize = 3;
/// Most past durations of one node the forecast reads (the latest).
pub const MAX_SAMPLES: u64 = 50;

/// How long one node took in past transitions of the workflow, in days.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    /// Indexed like the workflow's nodes: each node's past durations in whole days.
    pub days: Vec<Vec<u32>>,
}

impl History {
    /// The expected days of node `i` and the samples behind it: the median of its past
    /// durations once there are [`MIN_SAMPLES`], else `planned`.
    pub fn expected(&self, i: usize, planned: u32) -> (u32, usize) {
        let Some(past) = self.days.get(i).filter(|d| !d.is_empty()) else {
            return (planned, 0);
        };
        if past.len() < MIN_SAMPLES {
            return (planned, past.len());
        }
        let mut sorted = past.clone();
        sorted.sort_unstable();
        let mid = sorted.len() / 2;
        let median = if sorted.len() % 2 == 1 {
            sorted[mid]
        } else {
            // The mean of the middle two, rounded up: a forecast rather late than early.
            (sorted[mid - 1] + sorted[mid]).div_ceil(2)
        };
        (median, past.len())
    }
}

/// One node of the forecast.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeForecast {
    pub node: usize,
    pub done: bool,
    pub planned_days: u32,
    pub expected_days: u32,
    pub samples: usize,
    pub start: NaiveDate,
    pub finish: NaiveDate,
}

/// A transition's forecast.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forecast {
    pub target: NaiveDate,
    /// The day the gate is projected to be accepted.
    pub go_live: NaiveDate,
    /// `go_live - target` in days; positive when late.
    pub days_late: i64,
    /// Open nodes on the critical path to the gate, first first.
    pub critical_path: Vec<usize>,
    /// The open node on the critical path furthest behind its plan, with why; `None` when the
    /// transition is on time.
    pub driver: Option<(usize, String)>,
    /// Indexed like the workflow's nodes.
    pub nodes: Vec<NodeForecast>,
}

impl Forecast {
    pub fn will_miss(&self) -> bool {
        self.days_late > 0
    }
}

/// Forecasts `state` on `today` from `history`.
pub fn forecast(
    workflow: &Workflow,
    state: &TransitionState,
    history: &History,
    today: NaiveDate,
) -> Forecast {
    let expected: Vec<(u32, usize)> = workflow
        .nodes()
        .iter()
        .enumerate()
        .map(|(i, node)| history.expected(i, node.effort_days))
        .collect();
    let days: Vec<u32> = expected.iter().map(|e| e.0).collect();
    let (es, ef) = progressed(workflow, state, &days, today);
    let gate = workflow.gate();
    let go_live = ef[gate];
    let target = state.meta.target_go_live;
    let days_late = (go_live - target).num_days();
    let nodes: Vec<NodeForecast> = workflow
        .nodes()
        .iter()
        .enumerate()
        .map(|(i, node)| NodeForecast {
            node: i,
            done: finished(workflow, state, i),
            planned_days: node.effort_days,
            expected_days: expected[i].0,
            samples: expected[i].1,
            start: es[i],
            finish: ef[i],
        })
        .collect();
    let critical_path: Vec<usize> = workflow
        .critical_path(&ef)
        .into_iter()
        .filter(|&i| !nodes[i].done)
        .collect();
    let driver = (days_late > 0)
        .then(|| driver(workflow, &nodes, &critical_path))
        .flatten();
    Forecast {
        target,
        go_live,
        days_late,
        critical_path,
        driver,
        nodes,
    }
}

/// Whether node `i` of `state` is finished (the gate: once the handover is accepted).
fn finished(workflow: &Workflow, state: &TransitionState, i: usize) -> bool {
    if i == workflow.gate() {
        state.nodes[i].status == NodeStatus::Accepted
    } else {
        state.nodes[i].counts_as_done()
    }
}

/// The forward pass over a running transition: what is finished keeps its real dates; open work
/// started when it opened (else when what it needs finishes) and takes `days[i]`, finishing
/// today at the earliest. The one computation behind the forecast (days from history) and the
/// transition's plan (the planned effort).
fn progressed(
    workflow: &Workflow,
    state: &TransitionState,
    days: &[u32],
    today: NaiveDate,
) -> (Vec<NaiveDate>, Vec<NaiveDate>) {
    let start = state.created_at.date_naive();
    workflow.forward_pass(start, |i, earliest| {
        let ns = &state.nodes[i];
        if finished(workflow, state, i) {
            let at = ns.updated_at.date_naive().min(today);
            let began = ns.opened_at.map_or(at, |o| o.date_naive()).min(at);
            return (began, at);
        }
        let began = ns.opened_at.map_or(earliest, |o| o.date_naive().max(start));
        let finish = add_days(began, i64::from(days.get(i).copied().unwrap_or(0))).max(today);
        (began, finish)
    })
}

/// A running transition's dated schedule: the workflow's plan applied to its start and target
/// go-live, over what is done (real dates) and with the planned effort for open work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransitionPlan {
    /// The dates of every node, the critical path and the nodes late on paper (negative slack).
    pub plan: crate::workflow::Plan,
    /// Indexed like the workflow's nodes: finished or not.
    pub done: Vec<bool>,
    /// Open nodes on the critical path to the gate, first first.
    pub remaining_critical_path: Vec<usize>,
    /// Open nodes whose latest finish (their due date, or what needs them) is before today.
    pub late_today: Vec<usize>,
    /// The day the gate can be reached at the earliest, with the planned effort.
    pub projected_gate: NaiveDate,
}

/// The plan of `state` on `today`.
pub fn transition_plan(
    workflow: &Workflow,
    state: &TransitionState,
    today: NaiveDate,
) -> TransitionPlan {
    let start = state.created_at.date_naive();
    let effort: Vec<u32> = workflow.nodes().iter().map(|n| n.effort_days).collect();
    let forward = progressed(workflow, state, &effort, today);
    let target = state.meta.target_go_live;
    let plan = workflow.plan_from(start, target, forward, Some(target));
    let done: Vec<bool> = (0..workflow.nodes().len())
        .map(|i| finished(workflow, state, i))
        .collect();
    let remaining_critical_path = plan
        .critical_path
        .iter()
        .copied()
        .filter(|&i| !done[i])
        .collect();
    let late_today = plan
        .rows
        .iter()
        .filter(|r| !done[r.node] && r.latest_finish < today)
        .map(|r| r.node)
        .collect();
    let projected_gate = plan
        .rows
        .iter()
        .find(|r| r.node == workflow.gate())
        .map_or(start, |r| r.earliest_finish);
    TransitionPlan {
        plan,
        done,
        remaining_critical_path,
        late_today,
        projected_gate,
    }
}

/// The open node on the critical path that takes the most days beyond its plan; when none
/// overruns, the first open one (the work is late because it started late).
fn driver(
    workflow: &Workflow,
    nodes: &[NodeForecast],
    critical_path: &[usize],
) -> Option<(usize, String)> {
    let overrun = |n: &NodeForecast| (n.finish - n.start).num_days() - i64::from(n.planned_days);
    let worst = critical_path
        .iter()
        .map(|&i| &nodes[i])
        .filter(|n| overrun(n) > 0)
        .max_by_key(|n| (overrun(n), std::cmp::Reverse(n.node)));
    if let Some(n) = worst {
        let id = &workflow.node(n.node).id;
        let why = if n.expected_days > n.planned_days {
            format!(
                "'{id}' is planned at {} days but took a median of {} days in {} past transitions",
                n.planned_days, n.expected_days, n.samples
            )
        } else {
            format!(
                "'{id}' is planned at {} days and has been open for {} days",
                n.planned_days,
                (n.finish - n.start).num_days()
            )
        };
        return Some((n.node, why));
    }
    let first = *critical_path.first()?;
    let n = &nodes[first];
    Some((
        first,
        format!(
            "'{}' cannot start before {} and is on the critical path",
            workflow.node(first).id,
            n.start
        ),
    ))
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone, Utc};

    use super::*;
    use crate::ids::{Actor, RoleName, WorkflowName};
    use crate::transition::{Command, Evidence, Participants, ReviewDecision, TransitionMeta};

    const SMALL: &str = "\
name: small
roles: {reviewer: {description: reviews}}
deliverables:
  - {id: a, title: A, owner: project_manager, approver: reviewer, effort: 5d}
  - {id: b, title: B, owner: project_manager, approver: reviewer, effort: 10d, needs: [a]}
  - {id: c, title: C, owner: project_manager, approver: reviewer, effort: 3d, needs: [a]}
gate: {id: gate, title: Gate, needs: [b, c]}
";

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 3, d).unwrap()
    }

    fn started() -> (Workflow, TransitionState) {
        let wf = Workflow::parse("small.yaml", SMALL).unwrap();
        let meta = TransitionMeta {
            workflow: WorkflowName::parse("small").unwrap(),
            workflow_version: 1,
            service_name: "payroll".into(),
            service_version: "2.0".into(),
            project_manager: Actor::parse("pat").unwrap(),
            service_manager: Actor::parse("sam").unwrap(),
            target_go_live: day(20),
            participants: Participants::from([(
                RoleName::parse("reviewer").unwrap(),
                vec![Actor::parse("rae").unwrap()],
            )]),
        };
        let at = Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap();
        let (state, _) =
            TransitionState::start(&wf, meta, Actor::parse("pat").unwrap(), at).unwrap();
        (wf, state)
    }

    fn finish(wf: &Workflow, state: TransitionState, node: &str, on: u32) -> TransitionState {
        let at = Utc.with_ymd_and_hms(2026, 3, on, 10, 0, 0).unwrap();
        let evidence = Evidence::parse(vec!["https://docs.example/x".into()], String::new());
        let (state, _) = state
            .execute(
                wf,
                Command::Submit {
                    node: node.into(),
                    evidence: evidence.unwrap(),
                },
                Actor::parse("pat").unwrap(),
                at,
            )
            .unwrap();
        let review = Command::Review {
            node: node.into(),
            decision: ReviewDecision::Approve,
            comment: String::new(),
        };
        let later = at + Duration::hours(1);
        state
            .execute(wf, review, Actor::parse("rae").unwrap(), later)
            .unwrap()
            .0
    }

    const DATED: &str = "\
name: small
roles: {reviewer: {description: reviews}}
deliverables:
  - {id: a, title: A, owner: project_manager, approver: reviewer, effort: 5d, due: start + 4d}
  - {id: b, title: B, owner: project_manager, approver: reviewer, effort: 10d, needs: [a], due: go_live - 2d}
  - {id: c, title: C, owner: project_manager, approver: reviewer, effort: 3d, needs: [a]}
gate: {id: gate, title: Gate, needs: [b, c]}
";

    #[test]
    fn a_transitions_plan_keeps_what_is_done_and_dates_what_is_open() {
        let (_, state) = started();
        let wf = Workflow::parse("small.yaml", DATED).unwrap();
        // a is finished on the 6th, a day after its due date (start + 4d = the 5th).
        let state = finish(&wf, state, "a", 6);
        let (a, b, c, gate) = (0, 1, 2, 3);
        let p = transition_plan(&wf, &state, day(8));
        let row = |i: usize| p.plan.rows.iter().find(|r| r.node == i).unwrap().clone();
        // Worked by hand. Forward: a done 1 -> 6; b opened on 6, 10 days -> 16; c 6 -> 9; the
        // gate when both are done, the 16th. Backward from the target (the 20th): the gate by
        // 20; b by its due date, go_live - 2d = 18, so it starts by 8; c by 20 (starts by 17);
        // a by its own due date, the 5th.
        assert_eq!(
            (row(a).earliest_start, row(a).earliest_finish),
            (day(1), day(6))
        );
        assert_eq!(
            (row(b).earliest_start, row(b).earliest_finish),
            (day(6), day(16))
        );
        assert_eq!(
            (row(b).latest_start, row(b).latest_finish),
            (day(8), day(18))
        );
        assert_eq!(
            (row(c).earliest_finish, row(c).latest_finish),
            (day(9), day(20))
        );
        assert_eq!(row(a).latest_finish, day(5));
        assert_eq!(
            [
                row(a).slack_days,
                row(b).slack_days,
                row(c).slack_days,
                row(gate).slack_days
            ],
            [-1, 2, 11, 4]
        );
        assert_eq!(p.done, [true, false, false, false]);
        assert_eq!(p.projected_gate, day(16));
        assert_eq!(p.remaining_critical_path, [b, gate]);
        assert!(p.late_today.is_empty(), "{:?}", p.late_today);
        // On the 19th b is still open: it finishes today at the earliest, a day past its latest.
        let p = transition_plan(&wf, &state, day(19));
        assert_eq!(p.late_today, [b]);
        assert_eq!(p.projected_gate, day(19));
        assert_eq!(
            p.plan.rows.iter().find(|r| r.node == b).unwrap().slack_days,
            -1
        );
        assert_eq!(p.plan.late, [a, b]);
    }

    #[test]
    fn without_history_the_plan_holds_and_nothing_drives_a_delay() {
        let (wf, state) = started();
        let f = forecast(&wf, &state, &History::default(), day(1));
        // a: 1 -> 6; b: 6 -> 16; c: 6 -> 9; the gate on 16, four days before the target.
        assert_eq!(f.go_live, day(16));
        assert_eq!(f.days_late, -4);
        assert!(!f.will_miss());
        assert_eq!(f.driver, None);
        let ids: Vec<&str> = f
            .critical_path
            .iter()
            .map(|&i| wf.node(i).id.as_str())
            .collect();
        assert_eq!(ids, ["a", "b", "gate"]);
    }

    #[test]
    fn history_moves_the_forecast_and_names_the_deliverable() {
        let (wf, state) = started();
        let state = finish(&wf, state, "a", 4);
        let c = wf.position("c").unwrap();
        let mut history = History {
            days: vec![Vec::new(); wf.nodes().len()],
        };
        // Two samples are not enough: the plan still holds.
        history.days[c] = vec![20, 22];
        let f = forecast(&wf, &state, &history, day(5));
        assert_eq!(f.go_live, day(14)); // b: 4 -> 14
        assert_eq!(f.nodes[c].samples, 2);
        assert_eq!(f.nodes[c].expected_days, 3);
        // Three samples: the median, 20 days, puts c on the critical path and the gate late.
        history.days[c] = vec![22, 18, 20];
        let f = forecast(&wf, &state, &history, day(5));
        assert_eq!(f.nodes[c].expected_days, 20);
        assert_eq!(f.go_live, day(24)); // c opened on 4 + 20
        assert_eq!(f.days_late, 4);
        assert!(f.will_miss());
        let (driver, why) = f.driver.clone().unwrap();
        assert_eq!(wf.node(driver).id.as_str(), "c");
        assert!(why.contains("median of 20 days in 3 past"), "{why}");
        let ids: Vec<&str> = f
            .critical_path
            .iter()
            .map(|&i| wf.node(i).id.as_str())
            .collect();
        assert_eq!(ids, ["c", "gate"]);
        // Done work keeps its real dates.
        let a = wf.position("a").unwrap();
        assert!(f.nodes[a].done);
        assert_eq!((f.nodes[a].start, f.nodes[a].finish), (day(1), day(4)));
    }

    #[test]
    fn open_work_past_its_effort_finishes_today_at_the_earliest() {
        let (wf, state) = started();
        // a (5 days) is still open on day 12: it cannot finish before today, b follows.
        let f = forecast(&wf, &state, &History::default(), day(12));
        let a = wf.position("a").unwrap();
        assert_eq!(f.nodes[a].finish, day(12));
        assert_eq!(f.go_live, day(22));
        let (driver, why) = f.driver.unwrap();
        assert_eq!(wf.node(driver).id.as_str(), "a");
        assert!(why.contains("open for 11 days"), "{why}");
    }
}
