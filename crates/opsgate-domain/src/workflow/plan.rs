//! The dated plan of a workflow for a start and a go-live date: earliest and latest dates of every
//! node (critical path method over `effort` and `due`), the critical path to the gate, and the work
//! that is already late for that go-live date. Days are calendar days.

use chrono::{Days, NaiveDate};

use super::{Anchor, Due, Workflow};

/// One node's dates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanRow {
    /// Index into [`Workflow::nodes`].
    pub node: usize,
    pub earliest_start: NaiveDate,
    pub earliest_finish: NaiveDate,
    pub latest_start: NaiveDate,
    pub latest_finish: NaiveDate,
    /// The node's own due date, if it has one.
    pub due: Option<NaiveDate>,
    /// Days between the earliest and the latest finish; negative when late.
    pub slack_days: i64,
}

/// A workflow's plan for one start and go-live date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// One row per node, in topological order.
    pub rows: Vec<PlanRow>,
    /// The chain of needs that sets the gate's earliest date, first node first.
    pub critical_path: Vec<usize>,
    /// Nodes whose earliest finish is after their latest finish.
    pub late: Vec<usize>,
}

pub(crate) fn add(date: NaiveDate, days: i64) -> NaiveDate {
    let shifted = if days >= 0 {
        date.checked_add_days(Days::new(days.unsigned_abs()))
    } else {
        date.checked_sub_days(Days::new(days.unsigned_abs()))
    };
    shifted.unwrap_or(date)
}

/// The date a due offset falls on.
pub fn due_date(due: Due, start: NaiveDate, go_live: NaiveDate) -> NaiveDate {
    let anchor = match due.anchor {
        Anchor::Start => start,
        Anchor::GoLive => go_live,
    };
    add(anchor, i64::from(due.days))
}

impl Workflow {
    /// Plans the workflow from `start` towards `go_live`.
    pub fn plan(&self, start: NaiveDate, go_live: NaiveDate) -> Plan {
        let nodes = self.nodes();
        let effort = |i: usize| i64::from(nodes[i].effort_days);
        let forward = self.forward_pass(start, |i, earliest| (earliest, add(earliest, effort(i))));
        self.plan_from(start, go_live, forward, None)
    }

    /// The plan for the earliest starts and finishes `(es, ef)` of a forward pass (the
    /// workflow's own, or a running transition's over what is done): the backward pass from
    /// the due dates (and `gate_due`, a transition's target go-live, for the gate), the slack,
    /// what is late and the critical path.
    pub(crate) fn plan_from(
        &self,
        start: NaiveDate,
        go_live: NaiveDate,
        (es, ef): (Vec<NaiveDate>, Vec<NaiveDate>),
        gate_due: Option<NaiveDate>,
    ) -> Plan {
        let nodes = self.nodes();
        let n = nodes.len();
        let effort = |i: usize| i64::from(nodes[i].effort_days);

        // Backward pass: finish by the own due date and in time for everything that needs the node.
        let gate = self.gate();
        let due: Vec<Option<NaiveDate>> = nodes
            .iter()
            .enumerate()
            .map(|(i, node)| {
                let own = node.due.map(|d| due_date(d, start, go_live));
                match (own, gate_due.filter(|_| i == gate)) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
            })
            .collect();
        let horizon = ef
            .iter()
            .copied()
            .chain(due.iter().flatten().copied())
            .max()
            .unwrap_or(go_live);
        let mut lf = vec![horizon; n];
        let mut ls = vec![horizon; n];
        for i in (0..n).rev() {
            if let Some(d) = due[i] {
                lf[i] = lf[i].min(d);
            }
            ls[i] = add(lf[i], -effort(i));
            for &j in &nodes[i].needs {
                lf[j] = lf[j].min(ls[i]);
            }
        }

        let rows: Vec<PlanRow> = (0..n)
            .map(|i| PlanRow {
                node: i,
                earliest_start: es[i],
                earliest_finish: ef[i],
                latest_start: ls[i],
                latest_finish: lf[i],
                due: due[i],
                slack_days: (lf[i] - ef[i]).num_days(),
            })
            .collect();
        let late = rows
            .iter()
            .filter(|r| r.slack_days < 0)
            .map(|r| r.node)
            .collect();

        let critical_path = self.critical_path(&ef);
        Plan {
            rows,
            critical_path,
            late,
        }
    }

    /// The forward pass of the critical path method: each node starts once everything it needs
    /// has finished (not before `start`); `schedule(i, earliest_start)` gives its start and finish
    /// (the plan adds the effort; the forecast keeps what is done and moves open work). Returns
    /// the starts and finishes, indexed like the nodes.
    pub(crate) fn forward_pass(
        &self,
        start: NaiveDate,
        mut schedule: impl FnMut(usize, NaiveDate) -> (NaiveDate, NaiveDate),
    ) -> (Vec<NaiveDate>, Vec<NaiveDate>) {
        let nodes = self.nodes();
        let mut es = vec![start; nodes.len()];
        let mut ef = vec![start; nodes.len()];
        for i in 0..nodes.len() {
            let earliest = nodes[i]
                .needs
                .iter()
                .map(|&j| ef[j])
                .max()
                .unwrap_or(start)
                .max(start);
            (es[i], ef[i]) = schedule(i, earliest);
        }
        (es, ef)
    }

    /// The chain of needs that sets the gate's date, first node first: from the gate back along
    /// the need that finishes last.
    pub(crate) fn critical_path(&self, finish: &[NaiveDate]) -> Vec<usize> {
        let nodes = self.nodes();
        let mut path = vec![self.gate()];
        let mut at = self.gate();
        while let Some(&driver) = nodes[at].needs.iter().max_by_key(|&&j| (finish[j], j)) {
            path.push(driver);
            at = driver;
        }
        path.reverse();
        path
    }
}
