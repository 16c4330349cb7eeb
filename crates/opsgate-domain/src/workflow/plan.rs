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

fn add(date: NaiveDate, days: i64) -> NaiveDate {
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
        let n = nodes.len();
        let effort = |i: usize| i64::from(nodes[i].effort_days);

        // Forward pass: nothing starts before what it needs has finished.
        let mut es = vec![start; n];
        let mut ef = vec![start; n];
        for i in 0..n {
            es[i] = nodes[i]
                .needs
                .iter()
                .map(|&j| ef[j])
                .max()
                .unwrap_or(start)
                .max(start);
            ef[i] = add(es[i], effort(i));
        }

        // Backward pass: finish by the own due date and in time for everything that needs the node.
        let due: Vec<Option<NaiveDate>> = nodes
            .iter()
            .map(|node| node.due.map(|d| due_date(d, start, go_live)))
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

        // From the gate back along the need that finishes last.
        let mut critical_path = vec![self.gate()];
        let mut at = self.gate();
        while let Some(&driver) = nodes[at].needs.iter().max_by_key(|&&j| (ef[j], j)) {
            critical_path.push(driver);
            at = driver;
        }
        critical_path.reverse();
        Plan {
            rows,
            critical_path,
            late,
        }
    }
}
