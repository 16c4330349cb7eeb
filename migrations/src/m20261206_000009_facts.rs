//! `facts`: the KPI measurements each event made (`opsgate_domain::kpi`), written in the same
//! transaction as the event, so that KPIs are sums and counts in SQL and the forecast reads how
//! long each deliverable took without replaying logs. Transitions stored before get their facts
//! here, each log replayed against its own workflow version.
//!
//! `kpi_daily` holds the facts of whole past days summed per day, workflow and group, and
//! `kpi_rollup` how far that goes (filled after the fact by the store, not by the write path);
//! a year of KPIs reads a few thousand of those rows and the raw facts of the days since.
//!
//! The idle transitions of the stalled list are found by status and `updated_at` together
//! (`transitions_status_updated_at`), so that the many finished transitions are not scanned.

use opsgate_domain::kpi::{Fact, facts_of_log};
use opsgate_domain::{Actor, Event, EventKind, Workflow};
use sea_orm::{ConnectionTrait, DbBackend};
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, big_integer_null, boolean_null, date, date_null, integer, string, string_null,
    text, text_null, timestamp_with_time_zone,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Facts {
    Table,
    Ord,
    TransitionId,
    WorkflowName,
    Seq,
    Kind,
    At,
    Node,
    Actor,
    Label,
    Seconds,
    Duration,
    Count,
    Flag,
}

#[derive(DeriveIden)]
enum Transitions {
    Table,
    Id,
    WorkflowId,
    WorkflowName,
    Status,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum NodeDurations {
    Table,
    WorkflowName,
    Node,
    At,
    TransitionId,
    Seconds,
}

#[derive(DeriveIden)]
enum KpiDaily {
    Table,
    Day,
    WorkflowName,
    Kind,
    Dim,
    Key,
    Samples,
    TotalSeconds,
    MinSeconds,
    MaxSeconds,
    TotalDuration,
    MinDuration,
    MaxDuration,
    Flagged,
    TotalCount,
}

#[derive(DeriveIden)]
enum KpiRollup {
    Table,
    Id,
    RolledUntil,
}

#[derive(DeriveIden)]
enum Workflows {
    Table,
    Id,
    Name,
    Source,
}

#[derive(DeriveIden)]
enum Events {
    Table,
    TransitionId,
    Seq,
    Actor,
    At,
    Payload,
    Attribution,
}

/// Transitions filled per round trip of ids.
const PAGE: u64 = 500;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Clustered by kind and moment (SQLite: WITHOUT ROWID): the KPIs read one kind over a
        // time range, and a write appends at the end of each kind's range instead of also
        // updating secondary indexes all over the file.
        let sqlite = manager.get_database_backend() == sea_orm::DbBackend::Sqlite;
        let mut facts = Table::create();
        facts
            .table(Facts::Table)
            .col(string(Facts::Kind))
            .col(timestamp_with_time_zone(Facts::At))
            .col(string(Facts::TransitionId))
            .col(big_integer(Facts::Seq))
            .col(integer(Facts::Ord))
            .col(string(Facts::WorkflowName))
            .col(string_null(Facts::Node))
            .col(string_null(Facts::Actor))
            .col(text_null(Facts::Label))
            .col(big_integer_null(Facts::Seconds))
            .col(big_integer_null(Facts::Duration))
            .col(big_integer_null(Facts::Count))
            .col(boolean_null(Facts::Flag))
            .primary_key(
                Index::create()
                    .col(Facts::Kind)
                    .col(Facts::At)
                    .col(Facts::TransitionId)
                    .col(Facts::Seq)
                    .col(Facts::Ord),
            );
        // How long each node took, by workflow and node, for the forecast's medians.
        let mut durations = Table::create();
        durations
            .table(NodeDurations::Table)
            .col(string(NodeDurations::WorkflowName))
            .col(string(NodeDurations::Node))
            .col(timestamp_with_time_zone(NodeDurations::At))
            .col(string(NodeDurations::TransitionId))
            .col(big_integer(NodeDurations::Seconds))
            .primary_key(
                Index::create()
                    .col(NodeDurations::WorkflowName)
                    .col(NodeDurations::Node)
                    .col(NodeDurations::At)
                    .col(NodeDurations::TransitionId),
            );
        if sqlite {
            facts.extra("WITHOUT ROWID");
            durations.extra("WITHOUT ROWID");
        }
        manager.create_table(facts.to_owned()).await?;
        manager.create_table(durations.to_owned()).await?;
        manager
            .create_table(
                Table::create()
                    .table(KpiDaily::Table)
                    .col(date(KpiDaily::Day))
                    .col(string(KpiDaily::WorkflowName))
                    .col(string(KpiDaily::Kind))
                    .col(string(KpiDaily::Dim))
                    .col(text(KpiDaily::Key))
                    .col(big_integer(KpiDaily::Samples))
                    .col(big_integer_null(KpiDaily::TotalSeconds))
                    .col(big_integer_null(KpiDaily::MinSeconds))
                    .col(big_integer_null(KpiDaily::MaxSeconds))
                    .col(big_integer_null(KpiDaily::TotalDuration))
                    .col(big_integer_null(KpiDaily::MinDuration))
                    .col(big_integer_null(KpiDaily::MaxDuration))
                    .col(big_integer(KpiDaily::Flagged))
                    .col(big_integer_null(KpiDaily::TotalCount))
                    .primary_key(
                        Index::create()
                            .col(KpiDaily::Kind)
                            .col(KpiDaily::Dim)
                            .col(KpiDaily::Day)
                            .col(KpiDaily::WorkflowName)
                            .col(KpiDaily::Key),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(KpiRollup::Table)
                    .col(integer(KpiRollup::Id).primary_key())
                    .col(date_null(KpiRollup::RolledUntil))
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        db.execute_raw(
            manager.get_database_backend().build(
                Query::insert()
                    .into_table(KpiRollup::Table)
                    .columns([KpiRollup::Id, KpiRollup::RolledUntil])
                    .values_panic([1.into(), Option::<chrono::NaiveDate>::None.into()]),
            ),
        )
        .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("transitions_updated_at")
                    .table(Transitions::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("transitions_status_updated_at")
                    .table(Transitions::Table)
                    .col(Transitions::Status)
                    .col(Transitions::UpdatedAt)
                    .to_owned(),
            )
            .await?;
        fill_existing(manager).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("transitions_status_updated_at")
                    .table(Transitions::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("transitions_updated_at")
                    .table(Transitions::Table)
                    .col(Transitions::UpdatedAt)
                    .to_owned(),
            )
            .await?;
        for table in [
            KpiRollup::Table.into_iden(),
            KpiDaily::Table.into_iden(),
            NodeDurations::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        manager
            .drop_table(Table::drop().table(Facts::Table).to_owned())
            .await
    }
}

/// Replays every stored transition's log against its workflow version and stores its facts.
async fn fill_existing(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let db = manager.get_connection();
    let backend = manager.get_database_backend();
    let mut workflows: std::collections::HashMap<i64, Workflow> = std::collections::HashMap::new();
    let mut after = String::new();
    loop {
        let rows = db
            .query_all_raw(
                backend.build(
                    Query::select()
                        .columns([
                            Transitions::Id,
                            Transitions::WorkflowId,
                            Transitions::WorkflowName,
                        ])
                        .from(Transitions::Table)
                        .and_where(Expr::col(Transitions::Id).gt(after.clone()))
                        .order_by(Transitions::Id, Order::Asc)
                        .limit(PAGE),
                ),
            )
            .await?;
        if rows.is_empty() {
            return Ok(());
        }
        for row in &rows {
            let id: String = row.try_get("", "id")?;
            let workflow_id: i64 = row.try_get("", "workflow_id")?;
            let name: String = row.try_get("", "workflow_name")?;
            let workflow = match workflows.entry(workflow_id) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(load_workflow(db, backend, workflow_id).await?)
                }
            };
            fill_one(db, backend, workflow, &id, &name).await?;
            after = id;
        }
    }
}

async fn load_workflow(
    db: &impl ConnectionTrait,
    backend: DbBackend,
    id: i64,
) -> Result<Workflow, DbErr> {
    let row = db
        .query_one_raw(
            backend.build(
                Query::select()
                    .columns([Workflows::Name, Workflows::Source])
                    .from(Workflows::Table)
                    .and_where(Expr::col(Workflows::Id).eq(id)),
            ),
        )
        .await?
        .ok_or_else(|| DbErr::Migration(format!("workflow {id} of a transition is missing")))?;
    let name: String = row.try_get("", "name")?;
    let source: String = row.try_get("", "source")?;
    Workflow::parse(&name, &source)
        .map_err(|e| DbErr::Migration(format!("stored workflow {name} (id {id}): {e}")))
}

async fn fill_one(
    db: &impl ConnectionTrait,
    backend: DbBackend,
    workflow: &Workflow,
    id: &str,
    workflow_name: &str,
) -> Result<(), DbErr> {
    let rows = db
        .query_all_raw(
            backend.build(
                Query::select()
                    .columns([
                        Events::Seq,
                        Events::Actor,
                        Events::At,
                        Events::Payload,
                        Events::Attribution,
                    ])
                    .from(Events::Table)
                    .and_where(Expr::col(Events::TransitionId).eq(id))
                    .order_by(Events::Seq, Order::Asc),
            ),
        )
        .await?;
    let corrupt = |what: String| DbErr::Migration(format!("transition {id}: {what}"));
    let mut events = Vec::with_capacity(rows.len());
    for row in &rows {
        let seq: i64 = row.try_get("", "seq")?;
        let actor: String = row.try_get("", "actor")?;
        let payload: String = row.try_get("", "payload")?;
        let attribution: Option<String> = row.try_get("", "attribution")?;
        events.push(Event {
            seq: <u64 as TryFrom<i64>>::try_from(seq).map_err(|e| corrupt(e.to_string()))?,
            at: row.try_get("", "at")?,
            actor: Actor::parse(&actor).map_err(|e| corrupt(e.to_string()))?,
            kind: serde_json::from_str::<EventKind>(&payload)
                .map_err(|e| corrupt(e.to_string()))?,
            attribution: match attribution {
                Some(json) => serde_json::from_str(&json).map_err(|e| corrupt(e.to_string()))?,
                None => Default::default(),
            },
        });
    }
    let facts = facts_of_log(workflow, &events).map_err(|e| corrupt(e.to_string()))?;
    if facts.is_empty() {
        return Ok(());
    }
    let mut insert = Query::insert();
    insert.into_table(Facts::Table).columns([
        Facts::TransitionId,
        Facts::WorkflowName,
        Facts::Seq,
        Facts::Ord,
        Facts::Kind,
        Facts::At,
        Facts::Node,
        Facts::Actor,
        Facts::Label,
        Facts::Seconds,
        Facts::Duration,
        Facts::Count,
        Facts::Flag,
    ]);
    let mut durations = Query::insert();
    durations.into_table(NodeDurations::Table).columns([
        NodeDurations::WorkflowName,
        NodeDurations::Node,
        NodeDurations::At,
        NodeDurations::TransitionId,
        NodeDurations::Seconds,
    ]);
    let mut any_duration = false;
    let mut ord = 0;
    let mut last_seq = None;
    for fact in &facts {
        ord = if last_seq == Some(fact.seq) {
            ord + 1
        } else {
            0
        };
        last_seq = Some(fact.seq);
        insert.values_panic(values(id, workflow_name, fact, ord));
        if matches!(
            fact.kind,
            opsgate_domain::kpi::FactKind::Approved | opsgate_domain::kpi::FactKind::SignedOff
        ) && let (Some(node), Some(seconds)) = (&fact.node, fact.duration)
        {
            any_duration = true;
            durations.values_panic([
                workflow_name.into(),
                node.to_string().into(),
                fact.at.into(),
                id.into(),
                seconds.into(),
            ]);
        }
    }
    db.execute_raw(backend.build(&insert)).await?;
    if any_duration {
        db.execute_raw(backend.build(&durations)).await?;
    }
    Ok(())
}

fn values(id: &str, workflow_name: &str, fact: &Fact, ord: i32) -> [SimpleExpr; 13] {
    [
        id.into(),
        workflow_name.into(),
        <i64 as TryFrom<u64>>::try_from(fact.seq)
            .unwrap_or(i64::MAX)
            .into(),
        ord.into(),
        fact.kind.as_str().into(),
        fact.at.into(),
        fact.node.as_ref().map(ToString::to_string).into(),
        fact.actor.clone().into(),
        fact.label.clone().into(),
        fact.seconds.into(),
        fact.duration.into(),
        fact.count.into(),
        fact.flag.into(),
    ]
}
