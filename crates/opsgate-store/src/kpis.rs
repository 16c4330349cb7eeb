//! KPIs of the transition process over a time window, each figure with its sample count: one
//! grouped aggregate query per figure over the `facts` the events made (never the events
//! themselves), and the recent durations of a workflow's nodes for the forecast.

use chrono::{DateTime, Utc};
use opsgate_domain::TransitionStatus;
use opsgate_domain::kpi::FactKind;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Order, Query, SimpleExpr};
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
#[derive(Debug, Clone, Copy)]
enum By {
    Nothing,
    Node,
    Actor,
    Label,
}

impl Store {
    /// Every KPI over `window`.
    pub async fn kpis(&self, window: &KpiWindow) -> Result<Kpis> {
        let one = |groups: Vec<FactGroup>| groups.into_iter().next().unwrap_or_default();
        Ok(Kpis {
            handovers: one(self
                .grouped(FactKind::HandoverAccepted, By::Nothing, window)
                .await?),
            time_in_state: self.grouped(FactKind::StateLeft, By::Label, window).await?,
            approval_by_approver: self.grouped(FactKind::Approval, By::Actor, window).await?,
            approval_by_role: self.grouped(FactKind::Approval, By::Label, window).await?,
            done: self.grouped(FactKind::Done, By::Node, window).await?,
            sent_back: self.grouped(FactKind::SentBack, By::Node, window).await?,
            rejections: one(self
                .grouped(FactKind::HandoverRejected, By::Nothing, window)
                .await?),
            rejection_reasons: self
                .grouped(FactKind::HandoverRejected, By::Label, window)
                .await?,
            waivers: self.grouped(FactKind::Waived, By::Node, window).await?,
            support: one(self
                .grouped(FactKind::Completed, By::Nothing, window)
                .await?),
        })
    }

    /// One aggregate query: the facts of `kind` in the window, grouped.
    async fn grouped(&self, kind: FactKind, by: By, window: &KpiWindow) -> Result<Vec<FactGroup>> {
        let key: SimpleExpr = match by {
            By::Nothing => Expr::cust("NULL"),
            By::Node => Expr::col(facts::Column::Node),
            By::Actor => Expr::col(facts::Column::Actor),
            By::Label => Expr::col(facts::Column::Label),
        };
        let mut query = Query::select();
        query
            .expr_as(key.clone(), Alias::new("key"))
            .expr_as(Expr::cust("COUNT(*)"), Alias::new("samples"))
            .expr_as(
                Expr::cust("CAST(SUM(seconds) AS BIGINT)"),
                Alias::new("total_seconds"),
            )
            .expr_as(Expr::cust("MIN(seconds)"), Alias::new("min_seconds"))
            .expr_as(Expr::cust("MAX(seconds)"), Alias::new("max_seconds"))
            .expr_as(
                Expr::cust("CAST(COALESCE(SUM(CASE WHEN flag THEN 1 ELSE 0 END), 0) AS BIGINT)"),
                Alias::new("flagged"),
            )
            .expr_as(
                Expr::cust("CAST(SUM(count) AS BIGINT)"),
                Alias::new("total_count"),
            )
            .from(facts::Entity)
            .and_where(Expr::col(facts::Column::Kind).eq(kind.as_str()))
            .and_where(Expr::col(facts::Column::At).gte(window.since))
            .and_where(Expr::col(facts::Column::At).lt(window.until));
        if let Some(workflow) = &window.workflow {
            query.and_where(Expr::col(facts::Column::WorkflowName).eq(workflow.as_str()));
        }
        if !matches!(by, By::Nothing) {
            query
                .add_group_by([key.clone()])
                .order_by_expr(Expr::cust("COUNT(*)"), Order::Desc)
                .order_by_expr(key, Order::Asc)
                .limit(MAX_GROUPS);
        }
        let backend = self.db.get_database_backend();
        let rows = FactGroup::find_by_statement(backend.build(&query))
            .all(&self.db)
            .await?;
        // An ungrouped aggregate over no rows is one row of NULLs and a zero count.
        Ok(rows.into_iter().filter(|g| g.samples > 0).collect())
    }

    /// How long `node` of `workflow` took in its latest `limit` transitions (seconds from
    /// opening to approval or sign-off), newest first.
    pub async fn node_durations(&self, workflow: &str, node: &str, limit: u64) -> Result<Vec<i64>> {
        let mut query = Query::select();
        query
            .column(facts::Column::Seconds)
            .from(facts::Entity)
            .and_where(Expr::col(facts::Column::WorkflowName).eq(workflow))
            .and_where(Expr::col(facts::Column::Kind).eq(FactKind::Done.as_str()))
            .and_where(Expr::col(facts::Column::Node).eq(node))
            .order_by(facts::Column::At, Order::Desc)
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
