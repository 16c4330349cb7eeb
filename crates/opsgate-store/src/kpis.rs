//! KPIs of the transition process over a time window, each figure with its sample count: grouped
//! aggregate queries over the `facts` the events made (never the events themselves), read from
//! the daily rollup (`kpi_daily`) for the whole days it holds and from the facts for the rest;
//! and the recent durations of a workflow's nodes for the forecast.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use opsgate_domain::TransitionStatus;
use opsgate_domain::kpi::FactKind;
use sea_orm::sea_query::{Alias, Expr, ExprTrait as _, Order, Query};
use sea_orm::{ConnectionTrait, FromQueryResult};

use crate::entities::facts;
use crate::{Result, Store};

/// Which facts count: those made in `[since, until)`, of one workflow when set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KpiWindow {
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub workflow: Option<String>,
}

/// Aggregates of one group of facts.
#[derive(Debug, Clone, Default, PartialEq, Eq, FromQueryResult)]
pub struct FactGroup {
    /// The group (approver, role, node, state or reason); `None` for an ungrouped figure.
    pub key: Option<String>,
    /// Facts in the group: the figure's sample count.
    pub samples: i64,
    /// Sum, least and most of `seconds`, where the facts measure a duration.
    pub total_seconds: Option<i64>,
    pub min_seconds: Option<i64>,
    pub max_seconds: Option<i64>,
    /// Facts whose `flag` is true.
    pub flagged: i64,
    /// Sum of `count`.
    pub total_count: Option<i64>,
}

impl FactGroup {
    /// The mean duration in seconds; `None` without samples or durations.
    pub fn mean_seconds(&self) -> Option<f64> {
        #[allow(clippy::cast_precision_loss)] // seconds and counts far below 2^52
        self.total_seconds
            .filter(|_| self.samples > 0)
            .map(|t| t as f64 / self.samples as f64)
    }
}

/// Every KPI over one window.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Kpis {
    /// Accepted handovers: lead time from start (seconds), days late in `total_count`,
    /// on time in `flagged`.
    pub handovers: FactGroup,
    /// Time nodes spent in each state before leaving it, by state.
    pub time_in_state: Vec<FactGroup>,
    /// Approval latency from submission, by approver and by the role approved for.
    pub approval_by_approver: Vec<FactGroup>,
    pub approval_by_role: Vec<FactGroup>,
    /// Per node: done (approved or signed off), first pass in `flagged`, duration since it
    /// opened, bounces before in `total_count`.
    pub done: Vec<FactGroup>,
    /// Per node: how often it was sent back, review latency of the send-back.
    pub sent_back: Vec<FactGroup>,
    /// Rejected handovers: `samples` reasons, `total_count` rejections; by reason.
    pub rejections: FactGroup,
    pub rejection_reasons: Vec<FactGroup>,
    /// Waivers by node.
    pub waivers: Vec<FactGroup>,
    /// Ended post-go-live support: within the window in `flagged`; time since the handover.
    pub support: FactGroup,
}

/// Most groups one figure lists (approvers, reasons): the largest first.
pub const MAX_GROUPS: u64 = 200;

/// The column a figure is grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum By {
    Nothing,
    Node,
    Actor,
    Label,
}

impl By {
    /// Its name in `kpi_daily.dim`.
    fn dim(self) -> &'static str {
        match self {
            By::Nothing => "",
            By::Node => "node",
            By::Actor => "actor",
            By::Label => "label",
        }
    }

    /// The `facts` column, or NULL for an ungrouped figure.
    fn column(self) -> &'static str {
        match self {
            By::Nothing => "NULL",
            By::Node => "node",
            By::Actor => "actor",
            By::Label => "label",
        }
    }
}

/// Which measure of a fact a figure sums.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Measure {
    Seconds,
    Duration,
}

/// One part of a figure: facts of `kind` grouped `by`, their `measure`; `key` renames every
/// group (a state several kinds measure); `counts`: their flags and counts belong to the
/// figure (else they are zeroed).
#[derive(Debug, Clone, Copy)]
struct Part {
    kind: FactKind,
    by: By,
    measure: Measure,
    key: Option<&'static str>,
    counts: bool,
}

const fn part(kind: FactKind, by: By) -> Part {
    Part {
        kind,
        by,
        measure: Measure::Seconds,
        key: None,
        counts: true,
    }
}

const fn renamed(kind: FactKind, measure: Measure, key: &'static str) -> Part {
    Part {
        kind,
        by: By::Nothing,
        measure,
        key: Some(key),
        counts: false,
    }
}

/// Every figure, as the parts it sums (in the order of [`Kpis`]'s fields).
const FIGURES: [&[Part]; 10] = [
    // Lead time, on time.
    &[part(FactKind::HandoverAccepted, By::Nothing)],
    // Time in each state: a submission says how long its deliverable was open or being
    // reworked; a review how long it was in review; a sign-off how long the milestone was open;
    // the acceptance how long the gate was open.
    &[
        part(FactKind::Submitted, By::Label),
        renamed(FactKind::Approved, Measure::Seconds, "submitted"),
        renamed(FactKind::SentBack, Measure::Seconds, "submitted"),
        renamed(FactKind::SignedOff, Measure::Seconds, "open"),
        renamed(FactKind::HandoverAccepted, Measure::Duration, "open"),
    ],
    &[
        Part {
            counts: false,
            ..part(FactKind::Approval, By::Actor)
        },
        Part {
            counts: false,
            ..part(FactKind::Approved, By::Actor)
        },
    ],
    &[
        Part {
            counts: false,
            ..part(FactKind::Approval, By::Label)
        },
        Part {
            counts: false,
            ..part(FactKind::Approved, By::Label)
        },
    ],
    // First pass: approved deliverables, how long each took from opening.
    &[Part {
        measure: Measure::Duration,
        ..part(FactKind::Approved, By::Node)
    }],
    &[part(FactKind::SentBack, By::Node)],
    &[part(FactKind::HandoverRejected, By::Nothing)],
    &[part(FactKind::HandoverRejected, By::Label)],
    &[part(FactKind::Waived, By::Node)],
    &[part(FactKind::Completed, By::Nothing)],
];

/// The groupings the daily rollup keeps: every (kind, by) of the figures, once.
fn groupings() -> Vec<(FactKind, By)> {
    let mut out: Vec<(FactKind, By)> = Vec::new();
    for p in FIGURES.iter().flat_map(|f| f.iter()) {
        if !out.contains(&(p.kind, p.by)) {
            out.push((p.kind, p.by));
        }
    }
    out
}

/// Whole days are rolled up once they ended this long ago: facts carry the writer's clock, and
/// replicas' clocks may differ by less than this.
const ROLLUP_DELAY_MINUTES: i64 = 10;

/// The aggregates of the rollup, from the facts.
const ROLLUP_AGGREGATES: &str = "COUNT(*), CAST(SUM(seconds) AS BIGINT), MIN(seconds), \
     MAX(seconds), CAST(SUM(duration) AS BIGINT), MIN(duration), MAX(duration), \
     CAST(COALESCE(SUM(CASE WHEN flag THEN 1 ELSE 0 END), 0) AS BIGINT), \
     CAST(SUM(count) AS BIGINT)";

/// The aggregates a query returns of `column`, under the names [`FactGroup`] reads.
fn aggregates(column: &str) -> String {
    format!(
        "COUNT(*) AS samples, CAST(SUM({column}) AS BIGINT) AS total_seconds, \
         MIN({column}) AS min_seconds, MAX({column}) AS max_seconds, \
         CAST(COALESCE(SUM(CASE WHEN flag THEN 1 ELSE 0 END), 0) AS BIGINT) AS flagged, \
         CAST(SUM(count) AS BIGINT) AS total_count"
    )
}

fn midnight(day: NaiveDate) -> DateTime<Utc> {
    day.and_time(NaiveTime::MIN).and_utc()
}

/// Sums groups of the same key (parts of one window) into one, the largest first.
fn merge(parts: Vec<FactGroup>) -> Vec<FactGroup> {
    let add = |a: Option<i64>, b: Option<i64>| match (a, b) {
        (Some(a), Some(b)) => Some(a + b),
        (a, b) => a.or(b),
    };
    let pick = |a: Option<i64>, b: Option<i64>, f: fn(i64, i64) -> i64| match (a, b) {
        (Some(a), Some(b)) => Some(f(a, b)),
        (a, b) => a.or(b),
    };
    let mut by_key: BTreeMap<Option<String>, FactGroup> = BTreeMap::new();
    for g in parts.into_iter().filter(|g| g.samples > 0) {
        match by_key.get_mut(&g.key) {
            Some(m) => {
                m.samples += g.samples;
                m.total_seconds = add(m.total_seconds, g.total_seconds);
                m.min_seconds = pick(m.min_seconds, g.min_seconds, Ord::min);
                m.max_seconds = pick(m.max_seconds, g.max_seconds, Ord::max);
                m.flagged += g.flagged;
                m.total_count = add(m.total_count, g.total_count);
            }
            None => {
                by_key.insert(g.key.clone(), g);
            }
        }
    }
    let mut groups: Vec<FactGroup> = by_key.into_values().collect();
    groups.sort_by(|a, b| b.samples.cmp(&a.samples).then_with(|| a.key.cmp(&b.key)));
    groups.truncate(MAX_GROUPS as usize);
    groups
}

impl Store {
    /// Every KPI over `window`: the daily rollup for the whole days it covers, the facts
    /// themselves for the rest (the partial days at its ends, and the days not rolled up yet).
    pub async fn kpis(&self, window: &KpiWindow) -> Result<Kpis> {
        let rolled = self.roll_up_kpis().await?;
        let mut figures = Vec::with_capacity(FIGURES.len());
        for parts in FIGURES {
            let mut groups = Vec::new();
            for p in parts {
                for mut g in self.figure(p, window, rolled).await? {
                    if let Some(key) = p.key {
                        g.key = Some(key.to_owned());
                    }
                    if !p.counts {
                        g.flagged = 0;
                        g.total_count = None;
                    }
                    groups.push(g);
                }
            }
            figures.push(merge(groups));
        }
        let mut figures = figures.into_iter();
        let mut next = || figures.next().unwrap_or_default();
        let one = |groups: Vec<FactGroup>| groups.into_iter().next().unwrap_or_default();
        Ok(Kpis {
            handovers: one(next()),
            time_in_state: next(),
            approval_by_approver: next(),
            approval_by_role: next(),
            done: next(),
            sent_back: next(),
            rejections: one(next()),
            rejection_reasons: next(),
            waivers: next(),
            support: one(next()),
        })
    }

    async fn figure(
        &self,
        p: &Part,
        window: &KpiWindow,
        rolled: Option<NaiveDate>,
    ) -> Result<Vec<FactGroup>> {
        let (kind, by, measure) = (p.kind, p.by, p.measure);
        let workflow = window.workflow.as_deref();
        // Whole days inside the window and inside the rollup.
        let first = if midnight(window.since.date_naive()) == window.since {
            window.since.date_naive()
        } else {
            window.since.date_naive() + chrono::Days::new(1)
        };
        let end = rolled.map(|r| Ord::min(r, window.until.date_naive()));
        let mut parts = Vec::new();
        match end {
            Some(end) if first < end => {
                parts.extend(self.daily(kind, by, measure, first, end, workflow).await?);
                if window.since < midnight(first) {
                    parts.extend(
                        self.grouped(kind, by, measure, window.since, midnight(first), workflow)
                            .await?,
                    );
                }
                if midnight(end) < window.until {
                    parts.extend(
                        self.grouped(kind, by, measure, midnight(end), window.until, workflow)
                            .await?,
                    );
                }
            }
            _ => {
                parts.extend(
                    self.grouped(kind, by, measure, window.since, window.until, workflow)
                        .await?,
                );
            }
        }
        Ok(merge(parts))
    }

    /// The facts of `kind` in `[since, until)`, grouped.
    async fn grouped(
        &self,
        kind: FactKind,
        by: By,
        measure: Measure,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        workflow: Option<&str>,
    ) -> Result<Vec<FactGroup>> {
        let mut query = Query::select();
        query
            .expr_as(Expr::cust(by.column()), Alias::new("key"))
            .expr(Expr::cust(aggregates(match measure {
                Measure::Seconds => "seconds",
                Measure::Duration => "duration",
            })))
            .from(facts::Entity)
            .and_where(Expr::col(facts::Column::Kind).eq(kind.as_str()))
            .and_where(Expr::col(facts::Column::At).gte(since))
            .and_where(Expr::col(facts::Column::At).lt(until));
        if let Some(workflow) = workflow {
            query.and_where(Expr::col(facts::Column::WorkflowName).eq(workflow));
        }
        if by != By::Nothing {
            query.add_group_by([Expr::cust(by.column())]);
        }
        let backend = self.db.get_database_backend();
        Ok(FactGroup::find_by_statement(backend.build(&query))
            .all(&self.db)
            .await?)
    }

    /// The rollup's rows of `kind` grouped `by`, days `[first, end)`, summed per key.
    async fn daily(
        &self,
        kind: FactKind,
        by: By,
        measure: Measure,
        first: NaiveDate,
        end: NaiveDate,
        workflow: Option<&str>,
    ) -> Result<Vec<FactGroup>> {
        let mut query = Query::select();
        query
            .expr_as(
                Expr::cust(if by == By::Nothing { "NULL" } else { "key" }),
                Alias::new("key"),
            )
            .expr(Expr::cust(format!(
                "CAST(COALESCE(SUM(samples), 0) AS BIGINT) AS samples, \
                 CAST(SUM(total_{m}) AS BIGINT) AS total_seconds, \
                 MIN(min_{m}) AS min_seconds, MAX(max_{m}) AS max_seconds, \
                 CAST(COALESCE(SUM(flagged), 0) AS BIGINT) AS flagged, \
                 CAST(SUM(total_count) AS BIGINT) AS total_count",
                m = match measure {
                    Measure::Seconds => "seconds",
                    Measure::Duration => "duration",
                }
            )))
            .from(Alias::new("kpi_daily"))
            .and_where(Expr::col(Alias::new("kind")).eq(kind.as_str()))
            .and_where(Expr::col(Alias::new("dim")).eq(by.dim()))
            .and_where(Expr::col(Alias::new("day")).gte(first))
            .and_where(Expr::col(Alias::new("day")).lt(end));
        if let Some(workflow) = workflow {
            query.and_where(Expr::col(Alias::new("workflow_name")).eq(workflow));
        }
        if by != By::Nothing {
            query.add_group_by([Expr::col(Alias::new("key"))]);
        }
        let backend = self.db.get_database_backend();
        let rows = FactGroup::find_by_statement(backend.build(&query))
            .all(&self.db)
            .await?;
        // An ungrouped sum over no rows is one row of NULLs.
        Ok(rows.into_iter().filter(|g| g.samples > 0).collect())
    }

    /// The day the KPI rollup has reached (exclusive); `None` before the first.
    async fn rolled_until(
        &self,
        conn: &impl ConnectionTrait,
        lock: bool,
    ) -> Result<Option<NaiveDate>> {
        let backend = conn.get_database_backend();
        let mut sql = "SELECT rolled_until FROM kpi_rollup WHERE id = 1".to_owned();
        if lock && backend == sea_orm::DbBackend::Postgres {
            // Replicas roll up one at a time; the one that waited finds the work done.
            sql.push_str(" FOR UPDATE");
        }
        let row = conn
            .query_one_raw(sea_orm::Statement::from_string(backend, sql))
            .await?;
        Ok(match row {
            Some(row) => row.try_get::<Option<NaiveDate>>("", "rolled_until")?,
            None => None,
        })
    }

    /// Sums the facts of every whole day that ended [`ROLLUP_DELAY_MINUTES`] ago and is not
    /// rolled up yet into `kpi_daily` (one grouped insert per figure, in one write
    /// transaction), and returns the day the rollup now reaches. Cheap when it is up to date;
    /// the first call of a day sums one day of facts, the first ever every fact.
    pub async fn roll_up_kpis(&self) -> Result<Option<NaiveDate>> {
        let target = (self.now() - chrono::Duration::minutes(ROLLUP_DELAY_MINUTES)).date_naive();
        let current = self.rolled_until(&self.db, false).await?;
        if current.is_some_and(|c| c >= target) {
            return Ok(current);
        }
        let began = std::time::Instant::now();
        let txn = self.begin_write().await?;
        let conn = &txn;
        let current = self.rolled_until(conn, true).await?;
        if current.is_some_and(|c| c >= target) {
            txn.commit().await?;
            return Ok(current);
        }
        let backend = conn.get_database_backend();
        let ph = |n| crate::ph(backend, n);
        let day = match backend {
            sea_orm::DbBackend::Postgres => "CAST((at AT TIME ZONE 'UTC') AS DATE)",
            // SQLite keeps moments as UTC text that starts with the day.
            _ => "substr(at, 1, 10)",
        };
        for (kind, by) in groupings() {
            let (key, group_key) = if by == By::Nothing {
                ("''".to_owned(), String::new())
            } else {
                let key = format!("COALESCE({}, '')", by.column());
                (key.clone(), format!(", {key}"))
            };
            let mut values: Vec<sea_orm::Value> = vec![kind.as_str().into()];
            let mut lower = String::new();
            if let Some(from) = current {
                values.push(midnight(from).into());
                lower = format!(" AND at >= {}", ph(values.len()));
            }
            values.push(midnight(target).into());
            let upper = ph(values.len());
            let sql = format!(
                "INSERT INTO kpi_daily (day, workflow_name, kind, dim, key, samples, total_seconds, \
                 min_seconds, max_seconds, total_duration, min_duration, max_duration, flagged, \
                 total_count) \
                 SELECT {day}, workflow_name, kind, '{dim}', {key}, {ROLLUP_AGGREGATES} FROM facts \
                 WHERE kind = {k}{lower} AND at < {upper} \
                 GROUP BY {day}, workflow_name, kind{group_key}",
                dim = by.dim(),
                k = ph(1),
            );
            conn.execute_raw(sea_orm::Statement::from_sql_and_values(
                backend, sql, values,
            ))
            .await?;
        }
        let update = format!(
            "UPDATE kpi_rollup SET rolled_until = {} WHERE id = 1",
            ph(1)
        );
        conn.execute_raw(sea_orm::Statement::from_sql_and_values(
            backend,
            update,
            [target.into()],
        ))
        .await?;
        txn.commit().await?;
        tracing::info!(
            from = ?current,
            until = %target,
            took_ms = began.elapsed().as_millis() as u64,
            "KPI facts rolled up by day"
        );
        Ok(Some(target))
    }

    /// How long `node` of `workflow` took in its latest `limit` transitions (seconds from
    /// opening to approval or sign-off), newest first.
    pub async fn node_durations(&self, workflow: &str, node: &str, limit: u64) -> Result<Vec<i64>> {
        let mut query = Query::select();
        query
            .column(Alias::new("seconds"))
            .from(Alias::new("node_durations"))
            .and_where(Expr::col(Alias::new("workflow_name")).eq(workflow))
            .and_where(Expr::col(Alias::new("node")).eq(node))
            .order_by(Alias::new("at"), Order::Desc)
            .limit(limit);
        let backend = self.db.get_database_backend();
        let rows = self.db.query_all_raw(backend.build(&query)).await?;
        rows.iter()
            .filter_map(|r| r.try_get::<Option<i64>>("", "seconds").transpose())
            .map(|v| v.map_err(Into::into))
            .collect()
    }
}

impl Store {
    /// Ids of active transitions, of one workflow when set, the nearest target go-live first.
    pub async fn active_transitions(
        &self,
        workflow: Option<&str>,
        limit: u64,
    ) -> Result<Vec<String>> {
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

        use crate::entities::transitions;
        let mut query = transitions::Entity::find()
            .select_only()
            .column(transitions::Column::Id)
            .filter(transitions::Column::Status.eq(TransitionStatus::Active.as_str()));
        if let Some(workflow) = workflow {
            query = query.filter(transitions::Column::WorkflowName.eq(workflow));
        }
        Ok(query
            .order_by_asc(transitions::Column::TargetGoLive)
            .order_by_asc(transitions::Column::Id)
            .limit(limit)
            .into_tuple()
            .all(&self.db)
            .await?)
    }
}
