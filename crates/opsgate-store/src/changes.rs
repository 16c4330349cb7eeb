//! The changes one write transaction has decided, and their flush: whatever the number of writes,
//! the new rows and one guarded update (one round trip on SQLite), then the node upsert, the
//! events, the KPI facts the events made and the notices for the outbox, sent with the commit
//! (one round trip on SQLite).

use std::collections::HashMap;

use opsgate_domain::hash::{StoredEvent, event_hash, hex};
use opsgate_domain::stalled::StallIndex;
use opsgate_domain::transition::people_with_a_part;
use opsgate_domain::{Event, NodeState, TransitionState};
use sea_orm::sea_query::{CaseStatement, Expr, ExprTrait, OnConflict};
use sea_orm::{
    ActiveValue::{self, NotSet, Set},
    ColumnTrait, Condition, ConnectionTrait, DbBackend, DbErr, EntityTrait, IdenStatic,
    QueryFilter, QueryTrait, Statement, Value, Values,
};

use crate::entities::{events, node_states, outbox, transitions};
use crate::error::is_unique_violation;
use crate::outbox::{Delivery, Settle, WriteRoutes, settle_statements};
use crate::transitions::{TransitionView, i64_of};
use crate::{Error, Result, sqlite_moment};
use opsgate_domain::notice::Notice;

/// One transition's change within the transaction.
struct Entry {
    /// Its state after every write of this transaction.
    view: TransitionView,
    /// The stored state the writes started from; `None` when the transaction starts it.
    before: Option<TransitionState>,
    /// The event rows, hashes chained.
    events: Vec<events::ActiveModel>,
    /// The KPI facts the events made.
    facts: Vec<FactRow>,
    /// The notices the events made (empty when notifications are off).
    outbox: Vec<Noticed>,
}

/// Decided but unwritten changes, in decision order, at most one entry per transition.
#[derive(Default)]
pub(crate) struct Changes {
    entries: Vec<Entry>,
    by_id: HashMap<String, usize>,
    /// Transitions started in this transaction, by service name and version.
    started: HashMap<(String, String), String>,
}

impl Changes {
    /// The state of `id` after this transaction's writes so far, if it wrote it.
    pub(crate) fn view(&self, id: &str) -> Option<TransitionView> {
        self.by_id.get(id).map(|&i| self.entries[i].view.clone())
    }

    /// The id of a transition this transaction starts for the service version.
    pub(crate) fn started(&self, name: &str, version: &str) -> Option<&str> {
        self.started
            .get(&(name.to_owned(), version.to_owned()))
            .map(String::as_str)
    }

    pub(crate) fn ids(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|e| e.view.id.as_str())
    }

    /// The services of the transitions this transaction starts.
    pub(crate) fn started_services(&self) -> impl Iterator<Item = &str> {
        self.entries
            .iter()
            .filter(|e| e.before.is_none())
            .map(|e| e.view.state.meta.service_name.as_str())
    }

    pub(crate) fn add_start(
        &mut self,
        view: TransitionView,
        events: Vec<events::ActiveModel>,
        outbox: Vec<Noticed>,
    ) {
        let meta = &view.state.meta;
        self.started.insert(
            (meta.service_name.clone(), meta.service_version.clone()),
            view.id.clone(),
        );
        self.by_id.insert(view.id.clone(), self.entries.len());
        self.entries.push(Entry {
            view,
            before: None,
            events,
            facts: Vec::new(),
            outbox,
        });
    }

    /// Records a change of a transition from `before` to `after`.
    pub(crate) fn add_execute(
        &mut self,
        before: TransitionView,
        after: TransitionView,
        events: Vec<events::ActiveModel>,
        facts: Vec<FactRow>,
        outbox: Vec<Noticed>,
    ) {
        match self.by_id.get(&after.id) {
            Some(&i) => {
                let entry = &mut self.entries[i];
                entry.view = after;
                entry.events.extend(events);
                entry.facts.extend(facts);
                entry.outbox.extend(outbox);
            }
            None => {
                self.by_id.insert(after.id.clone(), self.entries.len());
                self.entries.push(Entry {
                    view: after,
                    before: Some(before.state),
                    events,
                    facts,
                    outbox,
                });
            }
        }
    }

    /// Writes every change, and `settling`, the queued outcomes of delivery attempts. `None`, with
    /// the caller to roll back, when a transition's stored `seq` is not the one its change was
    /// decided from (a stale cached state). `routes`: the dispatcher's routes to channels, when
    /// it runs: the deliveries of notices that go only to channels are stored here (claimed)
    /// instead of their outbox rows, and returned for the dispatcher.
    pub(crate) async fn flush(
        &self,
        conn: &impl ConnectionTrait,
        people_index: bool,
        new_services: &[String],
        routes: Option<&WriteRoutes>,
        settling: &[(String, Settle)],
    ) -> Result<Option<Flushed>> {
        let backend = conn.get_database_backend();
        // What goes to the database with the commit (in one round trip on SQLite, where each
        // statement is a hand-over to its thread and back; `Changes::commit`). Outcomes of
        // delivery attempts ride along: no transaction of their own.
        let mut rest: Vec<Statement> = Vec::new();
        for statement in settle_statements(backend, settling) {
            rest.push(statement);
        }
        if self.entries.is_empty() {
            return Ok(Some(Flushed {
                rest,
                ..Flushed::default()
            }));
        }
        if !self.write_rows(conn).await? {
            return Ok(None);
        }
        // The people and the target go-live of a transition change rarely (the SMO replacing
        // someone, a go-live moved): their own statement, only then.
        for e in &self.entries {
            if let Some(before) = &e.before
                && before.meta != e.view.state.meta
            {
                transitions::Entity::update_many()
                    .col_expr(
                        transitions::Column::Meta,
                        Expr::val(serde_json::to_string(&e.view.state.meta)?),
                    )
                    .col_expr(
                        transitions::Column::TargetGoLive,
                        Expr::val(e.view.state.meta.target_go_live),
                    )
                    .filter(transitions::Column::Id.eq(e.view.id.as_str()))
                    .exec(conn)
                    .await?;
            }
        }
        let mut nodes = Vec::new();
        let mut new_events = Vec::new();
        let mut new_facts = Vec::new();
        let mut notices = Vec::new();
        // Each delivery with its notice's JSON (the row carries it: no outbox row).
        let mut deliveries: Vec<(Delivery, &str)> = Vec::new();
        for e in &self.entries {
            let id = e.view.id.as_str();
            for (i, (node, state)) in e
                .view
                .workflow
                .workflow
                .nodes()
                .iter()
                .zip(&e.view.state.nodes)
                .enumerate()
            {
                // Only the node states the row's snapshot leaves out (`INLINE_CONTENT`): a light
                // one is read from the snapshot and nowhere else.
                if !inline(state)
                    && e.before
                        .as_ref()
                        .is_none_or(|b| b.nodes.get(i) != Some(state))
                {
                    nodes.push(node_row(id, node.id.as_str(), state)?);
                }
            }
            new_events.extend(e.events.iter().cloned());
            new_facts.extend(e.facts.iter().cloned());
            for (index, noticed) in e.outbox.iter().enumerate() {
                match routes.and_then(|r| written_deliveries(r, noticed, index)) {
                    Some(made) => deliveries.extend(made),
                    None => notices.push(noticed.row.clone()),
                }
            }
        }
        if !nodes.is_empty() {
            rest.push(
                node_states::Entity::insert_many(nodes)
                    .on_conflict(
                        OnConflict::columns([
                            node_states::Column::TransitionId,
                            node_states::Column::NodeId,
                        ])
                        .update_columns([
                            node_states::Column::Status,
                            node_states::Column::Detail,
                            node_states::Column::UpdatedAt,
                        ])
                        .to_owned(),
                    )
                    .build(backend),
            );
        }
        if !new_events.is_empty() {
            rest.push(events_statement(backend, new_events)?);
        }
        if !new_facts.is_empty() {
            rest.push(facts_statement(backend, &new_facts)?);
        }
        let stored_notices = !notices.is_empty();
        if stored_notices {
            rest.push(outbox::Entity::insert_many(notices).build(backend));
        }
        if let Some(routes) = routes {
            for chunk in deliveries.chunks(1000) {
                let rows: Vec<(i64, &Delivery, Option<&str>)> =
                    chunk.iter().map(|(d, json)| (0, d, Some(*json))).collect();
                rest.push(crate::outbox::deliveries_statement(
                    backend,
                    &rows,
                    routes.lease,
                ));
            }
        }
        // Starts for services the catalog may lack: one statement adds the events of those it
        // lacks, one the entries (nothing for a service that is there).
        let mut added: Vec<crate::catalog::Added> = Vec::new();
        for e in self.entries.iter().filter(|e| e.before.is_none()) {
            let meta = &e.view.state.meta;
            if !new_services.contains(&meta.service_name)
                || added.iter().any(|a| a.service == meta.service_name)
            {
                continue;
            }
            let actor = e
                .events
                .first()
                .and_then(|ev| ev.actor.try_as_ref().cloned())
                .unwrap_or_else(|| meta.project_manager.to_string());
            added.push(crate::catalog::Added {
                service: meta.service_name.clone(),
                service_manager: meta.service_manager.to_string(),
                workflow: meta.workflow.to_string(),
                actor,
                at: e.view.state.created_at,
            });
        }
        if !added.is_empty() {
            for statement in crate::catalog::catalog_statements(backend, &added) {
                rest.push(statement);
            }
        }
        // Who has a part: with a start, and again whenever its people change.
        let mut people = Vec::new();
        for e in self.entries.iter().filter(|_| people_index) {
            let meta = &e.view.state.meta;
            match &e.before {
                None => {}
                Some(before) if before.meta != *meta => {
                    // By the old people's keys (the table has no index by transition).
                    let old: Vec<String> =
                        people_with_a_part(&e.view.workflow.workflow, &before.meta)
                            .iter()
                            .map(ToString::to_string)
                            .collect();
                    rest.push(
                        backend.build(
                            sea_orm::sea_query::Query::delete()
                                .from_table(PEOPLE_TABLE)
                                .and_where(Expr::col(PEOPLE_PERSON).is_in(old))
                                .and_where(Expr::col(PEOPLE_TRANSITION).eq(e.view.id.as_str())),
                        ),
                    );
                }
                Some(_) => continue,
            }
            for person in people_with_a_part(&e.view.workflow.workflow, meta) {
                people.push((person.to_string(), e.view.id.clone()));
            }
        }
        for statement in people_statements(backend, people)? {
            rest.push(statement);
        }
        Ok(Some(Flushed {
            deliveries: deliveries.into_iter().map(|(d, _)| d).collect(),
            stored_notices,
            rest,
        }))
    }

    /// Runs the flush's last statements and commits: nothing of the transaction is stored when
    /// it fails.
    pub(crate) async fn commit(&self, txn: crate::WriteTxn, rest: Vec<Statement>) -> Result<()> {
        txn.commit_with(rest).await.map_err(|e| {
            // An event (or its facts) already stored under its sequence number: another
            // writer got there first.
            if is_unique_violation(&e) {
                Error::Conflict {
                    kind: "transition",
                    id: self.ids().collect::<Vec<_>>().join(", "),
                }
            } else {
                e.into()
            }
        })
    }

    /// Inserts the new transitions and updates the changed ones (one UPDATE, each row guarded by
    /// the `seq` its change started from): in one round trip on SQLite. True when every guarded
    /// row matched.
    async fn write_rows(&self, conn: &impl ConnectionTrait) -> Result<bool> {
        let backend = conn.get_database_backend();
        let new_rows = self
            .entries
            .iter()
            .filter(|e| e.before.is_none())
            .map(|e| transition_row(&e.view))
            .collect::<Result<Vec<_>>>()?;
        let insert = (!new_rows.is_empty())
            .then(|| transitions::Entity::insert_many(new_rows).build(backend));
        let update = self.update_statement(backend)?;
        let duplicate = |e: DbErr| {
            if is_unique_violation(&e) {
                // Another writer (a replica) started the same service version between our check
                // and our insert; the writer names it after the rollback. (The update sets no
                // column of a unique key.)
                Error::DuplicateStart
            } else {
                e.into()
            }
        };
        if backend == DbBackend::Sqlite {
            // The update returns a row for each row it matched: SQLite's count of changes is
            // not the update's own in a string of statements (`write_conn`).
            let mut statements: Vec<Statement> = insert.into_iter().collect();
            let mut expected = 0;
            if let Some((mut update, changed)) = update {
                update.sql.push_str(" RETURNING 1");
                statements.push(update);
                expected = changed;
            }
            if statements.is_empty() {
                return Ok(true);
            }
            let matched = conn
                .query_all_raw(crate::write_conn::joined(statements))
                .await
                .map_err(duplicate)?;
            return Ok(matched.len() == expected);
        }
        if let Some(insert) = insert {
            conn.execute_raw(insert).await.map_err(duplicate)?;
        }
        match update {
            Some((update, changed)) => {
                Ok(conn.execute_raw(update).await?.rows_affected() == changed as u64)
            }
            None => Ok(true),
        }
    }

    /// The UPDATE of every changed stored transition, each row guarded by the `seq` its change
    /// started from, with the number of rows it must match; `None` when no stored transition
    /// changed.
    fn update_statement(&self, backend: DbBackend) -> Result<Option<(Statement, usize)>> {
        let changed: Vec<(&Entry, &TransitionState)> = self
            .entries
            .iter()
            .filter_map(|e| e.before.as_ref().map(|b| (e, b)))
            .collect();
        if changed.is_empty() {
            return Ok(None);
        }
        if backend == DbBackend::Sqlite {
            return Ok(Some((sqlite_update(&changed)?, changed.len())));
        }
        let mut guard = Condition::any();
        let (mut seq, mut status, mut updated_at, mut nodes, mut head) = (
            CaseStatement::new(),
            CaseStatement::new(),
            CaseStatement::new(),
            CaseStatement::new(),
            CaseStatement::new(),
        );
        let (mut due, mut submission, mut bounces, mut gate) = (
            CaseStatement::new(),
            CaseStatement::new(),
            CaseStatement::new(),
            CaseStatement::new(),
        );
        // Which of the indexed columns some row of this update changes (the four stall
        // columns, the status, the day of the last change): SQLite rewrites an index entry whose
        // column is set even to the value it holds (a page written to the WAL for nothing); a
        // column no row changes is left out of the update.
        let mut moved = [false; MOVABLE.len()];
        let mut day = CaseStatement::new();
        for (e, before) in &changed {
            let id = e.view.id.as_str();
            let next = &e.view.state;
            let this = || transitions::Column::Id.eq(id);
            guard = guard.add(this().and(transitions::Column::Seq.eq(i64_of(before.seq)?)));
            seq = seq.case(this(), Expr::val(i64_of(next.seq)?));
            status = status.case(this(), Expr::val(next.status.as_str()));
            updated_at = updated_at.case(this(), Expr::val(next.updated_at));
            nodes = nodes.case(this(), Expr::val(snapshot(&next.nodes)?));
            head = head.case(this(), Expr::val(hex(&e.view.head)));
            let index = mark_moved(e, before, &mut moved);
            day = day.case(this(), Expr::val(next.updated_at.date_naive()));
            due = due.case(this(), Expr::val(index.next_due));
            submission = submission.case(this(), Expr::val(index.oldest_submission));
            bounces = bounces.case(this(), Expr::val(most_bounces(&index)));
            gate = gate.case(this(), Expr::val(index.gate_open_since));
        }
        let mut update = transitions::Entity::update_many()
            .col_expr(transitions::Column::Seq, seq.into())
            .col_expr(transitions::Column::UpdatedAt, updated_at.into())
            .col_expr(transitions::Column::Nodes, nodes.into())
            .col_expr(transitions::Column::HeadHash, head.into());
        let cases = [due, submission, bounces, gate, status, day];
        for ((column, case), moved) in MOVABLE.into_iter().zip(cases).zip(moved) {
            if moved {
                update = update.col_expr(column, case.into());
            }
        }
        let update = update.filter(guard);
        let mut statement = update.build(backend);
        if backend == DbBackend::Postgres {
            // Other replicas' gate watchers hear at commit of every transition whose gate
            // opened, closed or was accepted (`watch`), from this statement: no statement of its
            // own. Not of every change: a NOTIFY takes a database-wide lock at commit (every
            // write notifying cost 9% of PostgreSQL's write throughput, docs/benchmarks.md);
            // finer changes reach them by their periodic recheck.
            let flipped: Vec<&str> = changed
                .iter()
                .filter(|(e, before)| {
                    let gate = e.view.workflow.workflow.gate();
                    before.nodes.get(gate).map(|n| n.status)
                        != e.view.state.nodes.get(gate).map(|n| n.status)
                })
                .map(|(e, _)| e.view.id.as_str())
                .collect();
            if !flipped.is_empty() {
                let values = statement.values.get_or_insert_with(|| Values(Vec::new()));
                let first = values.0.len() + 1;
                let params: Vec<String> = (first..first + flipped.len())
                    .map(|n| format!("${n}"))
                    .collect();
                values.0.extend(flipped.iter().map(|id| Value::from(*id)));
                statement.sql.push_str(&format!(
                    " RETURNING CASE WHEN \"id\" IN ({}) THEN pg_notify('{}', \"id\") END",
                    params.join(", "),
                    crate::watch::CHANNEL
                ));
            }
        }
        Ok(Some((statement, changed.len())))
    }
}

/// Most bytes of evidence and comments a node state may hold and still be written inline in the
/// transition row's snapshot. A heavier one is `null` there and read from `node_states`, where
/// it is written whenever it changes: so a write to a transition full of evidence rewrites the
/// light parts, not all of it (docs/benchmarks.md: 7.1 -> 1.3 ms a write on a transition holding
/// 1 MiB). A light one is written to the snapshot only: its row in `node_states`, if any, is
/// from when it was heavy (or from before the snapshot existed) and is never read while the
/// snapshot holds the node (writing both copies of every change cost a WAL page a write).
pub(crate) const INLINE_CONTENT: usize = 4 * 1024;

/// Whether `node` is held by the transition row's snapshot (not left to `node_states`).
fn inline(node: &NodeState) -> bool {
    node.content_bytes() <= INLINE_CONTENT
}

/// The table of who has a part in which transition, and its columns.
const PEOPLE_TABLE: &str = "transition_people";
const PEOPLE_PERSON: &str = "person";
const PEOPLE_TRANSITION: &str = "transition_id";

/// Rows of the people index one insert carries (two parameters each: well below the 32,766 of
/// SQLite and the 65,535 of PostgreSQL).
const PEOPLE_ROWS: usize = 4_000;

/// The inserts of `(person, transition)` rows into the people index.
pub(crate) fn people_statements(
    backend: DbBackend,
    rows: Vec<(String, String)>,
) -> Result<Vec<Statement>> {
    rows.chunks(PEOPLE_ROWS)
        .map(|chunk| people_statement(backend, chunk.to_vec()))
        .collect()
}

/// One insert of `(person, transition)` rows into the people index. On SQLite the rows are one
/// JSON parameter (a text prepared once, whatever their number).
fn people_statement(backend: DbBackend, rows: Vec<(String, String)>) -> Result<Statement> {
    if backend == DbBackend::Sqlite {
        // `WHERE true` tells SQLite's parser the `ON CONFLICT` is the upsert's, not a join's.
        return Ok(Statement::from_sql_and_values(
            backend,
            format!(
                "INSERT INTO {PEOPLE_TABLE} ({PEOPLE_PERSON}, {PEOPLE_TRANSITION}) \
                 SELECT value ->> 0, value ->> 1 FROM jsonb_each(?) WHERE true \
                 ON CONFLICT ({PEOPLE_PERSON}, {PEOPLE_TRANSITION}) DO NOTHING"
            ),
            [serde_json::to_string(&rows)?.into()],
        ));
    }
    let mut insert = sea_orm::sea_query::Query::insert();
    insert
        .into_table(PEOPLE_TABLE)
        .columns([PEOPLE_PERSON, PEOPLE_TRANSITION])
        .on_conflict(
            OnConflict::columns([PEOPLE_PERSON, PEOPLE_TRANSITION])
                .do_nothing()
                .to_owned(),
        );
    for (person, transition) in rows {
        insert
            .values([person.into(), transition.into()])
            .map_err(|e| Error::Corrupt(format!("the people index row: {e}")))?;
    }
    Ok(backend.build(&insert))
}

fn snapshot(nodes: &[NodeState]) -> Result<String> {
    let inline: Vec<Option<&NodeState>> = nodes.iter().map(|n| inline(n).then_some(n)).collect();
    Ok(serde_json::to_string(&inline)?)
}

pub(crate) fn most_bounces(index: &StallIndex) -> i32 {
    i32::try_from(index.most_bounces).unwrap_or(i32::MAX)
}

fn transition_row(view: &TransitionView) -> Result<transitions::ActiveModel> {
    let state = &view.state;
    let index = StallIndex::of(&view.workflow.workflow, state);
    Ok(transitions::ActiveModel {
        id: Set(view.id.clone()),
        workflow_id: Set(view.workflow.id),
        workflow_name: Set(view.workflow.workflow.name().to_string()),
        workflow_version: Set(i32::try_from(view.workflow.version).unwrap_or(i32::MAX)),
        service_name: Set(state.meta.service_name.clone()),
        service_version: Set(state.meta.service_version.clone()),
        status: Set(state.status.as_str().to_owned()),
        target_go_live: Set(state.meta.target_go_live),
        meta: Set(serde_json::to_string(&state.meta)?),
        seq: Set(i64_of(state.seq)?),
        created_at: Set(state.created_at),
        updated_at: Set(state.updated_at),
        nodes: Set(Some(snapshot(&state.nodes)?)),
        head_hash: Set(Some(hex(&view.head))),
        next_due: Set(index.next_due),
        oldest_submission: Set(index.oldest_submission),
        most_bounces: Set(Some(most_bounces(&index))),
        gate_open_since: Set(index.gate_open_since),
        updated_day: Set(Some(state.updated_at.date_naive())),
    })
}

fn node_row(
    transition_id: &str,
    node_id: &str,
    state: &NodeState,
) -> Result<node_states::ActiveModel> {
    Ok(node_states::ActiveModel {
        transition_id: Set(transition_id.to_owned()),
        node_id: Set(node_id.to_owned()),
        status: Set(state.status.as_str().to_owned()),
        detail: Set(serde_json::to_string(state)?),
        updated_at: Set(state.updated_at),
    })
}

/// One KPI fact as the write path sends it to the database: a JSON object with short keys, so
/// that a batch's facts are one bound parameter of one statement whose text never changes
/// (prepared once). Binding each fact's twelve values through the ORM cost a quarter of the
/// write throughput (docs/benchmarks.md).
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct FactRow {
    t: String,
    w: String,
    s: i64,
    /// The fact's place among its event's facts.
    o: u32,
    k: &'static str,
    /// The moment as sqlx stores it in SQLite (RFC 3339, UTC offset), which PostgreSQL parses.
    a: String,
    n: Option<String>,
    ac: Option<String>,
    l: Option<String>,
    se: Option<i64>,
    d: Option<i64>,
    c: Option<i64>,
    f: Option<bool>,
}

/// The KPI fact rows of `events`, appended to transition `view` (its state before them).
pub(crate) fn fact_rows(view: &TransitionView, events: &[Event]) -> Result<Vec<FactRow>> {
    let workflow = &view.workflow.workflow;
    let mut ord = 0;
    let mut last = None;
    opsgate_domain::kpi::facts(workflow, &view.state, events)
        .into_iter()
        .map(|f| {
            ord = if last == Some(f.seq) { ord + 1 } else { 0 };
            last = Some(f.seq);
            Ok(FactRow {
                t: view.id.clone(),
                w: workflow.name().to_string(),
                s: i64_of(f.seq)?,
                o: ord,
                k: f.kind.as_str(),
                a: sqlite_moment(f.at),
                n: f.node.map(|n| n.to_string()),
                ac: f.actor,
                l: f.label,
                se: f.seconds,
                d: f.duration,
                c: f.count,
                f: f.flag,
            })
        })
        .collect()
}

/// The fact kinds that end a node's work (their `duration` is how long the node took), as an SQL
/// list; a macro so that the statements stay `&'static str`.
macro_rules! done_kinds {
    () => {
        "('approved', 'signed_off')"
    };
}

/// Inserts `facts` (one JSON array parameter) and the durations of the done ones into
/// `node_durations`, in one round trip to the database: one statement on PostgreSQL (the facts
/// insert a data-modifying CTE), two statements of one execution on SQLite. Every statement of a
/// write batch is a hand-over to the database's thread and back, which is most of what a write
/// costs the writer (docs/benchmarks.md).
fn facts_statement(backend: DbBackend, facts: &[FactRow]) -> Result<Statement> {
    let json = serde_json::to_string(facts)?;
    let statement = if backend == DbBackend::Postgres {
        // The durations are selected from the inserted rows, so the array is bound once.
        Statement::from_sql_and_values(
            backend,
            concat!(
                "WITH f AS (INSERT INTO facts (transition_id, workflow_name, seq, ord, kind, at, \
                 node, actor, label, seconds, duration, count, flag) SELECT t, w, s, o, k, \
                 a::timestamptz, n, ac, l, se, d, c, f FROM jsonb_to_recordset($1::jsonb) AS x(t \
                 text, w text, s bigint, o integer, k text, a text, n text, ac text, l text, \
                 se bigint, d bigint, c bigint, f boolean) RETURNING workflow_name, node, at, \
                 transition_id, duration, kind) INSERT INTO node_durations (workflow_name, node, \
                 at, transition_id, seconds) SELECT workflow_name, node, at, transition_id, \
                 duration FROM f WHERE kind IN ",
                done_kinds!(),
                " AND node IS NOT NULL AND duration IS NOT NULL"
            ),
            [json.into()],
        )
    } else {
        Statement::from_sql_and_values(
            backend,
            concat!(
                "INSERT INTO facts (transition_id, workflow_name, seq, ord, kind, at, node, actor, \
                 label, seconds, duration, count, flag) SELECT value ->> 't', value ->> 'w', \
                 value ->> 's', value ->> 'o', value ->> 'k', value ->> 'a', value ->> 'n', \
                 value ->> 'ac', value ->> 'l', value ->> 'se', value ->> 'd', value ->> 'c', \
                 value ->> 'f' FROM jsonb_each(?); \
                 INSERT INTO node_durations (workflow_name, node, at, transition_id, seconds) \
                 SELECT value ->> 'w', value ->> 'n', value ->> 'a', value ->> 't', value ->> 'd' \
                 FROM jsonb_each(?) WHERE value ->> 'k' IN ",
                done_kinds!(),
                " AND value ->> 'n' IS NOT NULL AND value ->> 'd' IS NOT NULL"
            ),
            [json.clone().into(), json.into()],
        )
    };
    Ok(statement)
}

/// A notice a write made, beside its outbox row (whose JSON is the notice's): a write that
/// delivers it itself takes the notice from here, not by parsing the row back.
#[derive(Debug, Clone)]
pub(crate) struct Noticed {
    pub(crate) notice: Notice,
    pub(crate) row: outbox::ActiveModel,
}

/// The notices `events` make in `view` (the transition after them), with their outbox rows.
pub(crate) fn outbox_rows(
    view: &TransitionView,
    events: &[Event],
    at: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<Noticed>> {
    opsgate_domain::notice::notices(&view.workflow.workflow, &view.state, &view.id, events)
        .into_iter()
        .map(|notice| {
            Ok(Noticed {
                row: outbox_row(&notice, at)?,
                notice,
            })
        })
        .collect()
}

/// The outbox row of notice `n`, stored at `at`.
pub(crate) fn outbox_row(
    n: &Notice,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<outbox::ActiveModel> {
    Ok(outbox::ActiveModel {
        id: NotSet,
        transition_id: Set(n.transition_id.clone()),
        seq: Set(i64_of(n.seq)?),
        kind: Set(n.kind.as_str().to_owned()),
        notice: Set(serde_json::to_string(n)?),
        created_at: Set(at),
        fanned_out: Set(false),
    })
}

/// The indexed columns an update sets only when some row of its batch changes them (SQLite
/// rewrites an index entry whose column is set even to the value it holds), in the order of
/// [`mark_moved`]'s marks.
const MOVABLE: [transitions::Column; 6] = [
    transitions::Column::NextDue,
    transitions::Column::OldestSubmission,
    transitions::Column::MostBounces,
    transitions::Column::GateOpenSince,
    transitions::Column::Status,
    transitions::Column::UpdatedDay,
];

/// Marks in `moved` the columns of [`MOVABLE`] that `e`'s change from `before` moves; returns
/// its new stall index.
fn mark_moved(
    e: &Entry,
    before: &TransitionState,
    moved: &mut [bool; MOVABLE.len()],
) -> StallIndex {
    let next = &e.view.state;
    let index = StallIndex::of(&e.view.workflow.workflow, next);
    let was = StallIndex::of(&e.view.workflow.workflow, before);
    moved[0] |= was.next_due != index.next_due;
    moved[1] |= was.oldest_submission != index.oldest_submission;
    moved[2] |= was.most_bounces != index.most_bounces;
    moved[3] |= was.gate_open_since != index.gate_open_since;
    moved[4] |= before.status != next.status;
    moved[5] |= before.updated_at.date_naive() != next.updated_at.date_naive();
    index
}

/// The guarded update of `changed` on SQLite: one `UPDATE ... FROM jsonb_each(?)` whose rows
/// come in one JSON parameter, so that its text depends only on which indexed columns move and
/// SQLite prepares each of those few texts once (a `CASE` per column with an arm per row was new
/// text, parsed and planned again, for every batch). Each row matches only at the `seq` its
/// change started from. The indexed columns (the four stall columns, the status, the day of the
/// last change) are set only when some row of the batch changes them: SQLite rewrites an index
/// entry whose column is set even to the value it holds.
fn sqlite_update(changed: &[(&Entry, &TransitionState)]) -> Result<Statement> {
    let moment = sqlite_moment;
    let day = |d: chrono::NaiveDate| d.format("%F").to_string();
    let mut moved = [false; MOVABLE.len()];
    let mut rows = Vec::with_capacity(changed.len());
    for (e, before) in changed {
        let next = &e.view.state;
        let index = mark_moved(e, before, &mut moved);
        let mut row = serde_json::json!({
            "i": e.view.id,
            "b": i64_of(before.seq)?,
            "s": i64_of(next.seq)?,
            "u": moment(next.updated_at),
            "n": snapshot(&next.nodes)?,
            "h": hex(&e.view.head),
        });
        // The values of `MOVABLE`, in its order, each under its column's name.
        let movable: [serde_json::Value; MOVABLE.len()] = [
            index.next_due.map(day).into(),
            index.oldest_submission.map(moment).into(),
            most_bounces(&index).into(),
            index.gate_open_since.map(moment).into(),
            next.status.as_str().into(),
            day(next.updated_at.date_naive()).into(),
        ];
        if let Some(row) = row.as_object_mut() {
            for (column, value) in MOVABLE.into_iter().zip(movable) {
                row.insert(column.as_str().to_owned(), value);
            }
        }
        rows.push(row);
    }
    let mut sets = String::from(
        "seq = u.value ->> 's', updated_at = u.value ->> 'u', nodes = u.value ->> 'n', head_hash = u.value ->> 'h'",
    );
    for (column, moved) in MOVABLE.into_iter().zip(moved) {
        if moved {
            let column = column.as_str();
            sets.push_str(&format!(", {column} = u.value ->> '{column}'"));
        }
    }
    Ok(Statement::from_sql_and_values(
        DbBackend::Sqlite,
        format!(
            "UPDATE transitions SET {sets} FROM jsonb_each(?) AS u \
             WHERE transitions.id = u.value ->> 'i' AND transitions.seq = u.value ->> 'b'"
        ),
        [serde_json::Value::Array(rows).to_string().into()],
    ))
}

/// One event row as the SQLite write path sends it: an element of one JSON array parameter, so
/// that the statement's text is the same for every batch and SQLite prepares it once (a
/// multi-row `VALUES` list is new text for every count of rows, prepared again each time).
#[derive(serde::Serialize)]
struct EventRow {
    t: String,
    s: i64,
    k: String,
    ac: String,
    /// The moment as sqlx stores it in SQLite (RFC 3339, UTC offset).
    a: String,
    p: String,
    at: Option<String>,
    h: Option<String>,
}

/// The insert of `rows`: one JSON parameter on SQLite (a text prepared once), the ORM's
/// multi-row insert on PostgreSQL.
fn events_statement(backend: DbBackend, rows: Vec<events::ActiveModel>) -> Result<Statement> {
    if backend != DbBackend::Sqlite {
        return Ok(events::Entity::insert_many(rows).build(backend));
    }
    fn set<T: Into<sea_orm::Value>>(value: ActiveValue<T>) -> Result<T> {
        match value {
            ActiveValue::Set(v) | ActiveValue::Unchanged(v) => Ok(v),
            ActiveValue::NotSet => Err(Error::Corrupt("an event row lacks a column".into())),
        }
    }
    let rows = rows
        .into_iter()
        .map(|r| {
            Ok(EventRow {
                t: set(r.transition_id)?,
                s: set(r.seq)?,
                k: set(r.kind)?,
                ac: set(r.actor)?,
                a: sqlite_moment(set(r.at)?),
                p: set(r.payload)?,
                at: set(r.attribution)?,
                h: set(r.hash)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Statement::from_sql_and_values(
        backend,
        "INSERT INTO events (transition_id, seq, kind, actor, at, payload, attribution, hash) \
         SELECT value ->> 't', value ->> 's', value ->> 'k', value ->> 'ac', value ->> 'a', \
         value ->> 'p', value ->> 'at', value ->> 'h' FROM jsonb_each(?)",
        [serde_json::to_string(&rows)?.into()],
    ))
}

/// The rows of `events` of transition `transition_id`, each hash chained to the one before,
/// starting from `prev` (the transition's stored head); and the new head.
pub(crate) fn event_rows(
    transition_id: &str,
    mut prev: [u8; 32],
    events: &[Event],
) -> Result<(Vec<events::ActiveModel>, [u8; 32])> {
    let mut rows = Vec::with_capacity(events.len());
    for e in events {
        let payload = serde_json::to_string(&e.kind)?;
        let attribution = if e.attribution.is_empty() {
            None
        } else {
            Some(serde_json::to_string(&e.attribution)?)
        };
        let actor = e.actor.to_string();
        prev = event_hash(
            &prev,
            &StoredEvent {
                transition_id,
                seq: e.seq,
                kind: e.kind.name(),
                actor: &actor,
                at: e.at,
                payload: &payload,
                attribution: attribution.as_deref(),
            },
        );
        rows.push(events::ActiveModel {
            id: NotSet,
            transition_id: Set(transition_id.to_owned()),
            seq: Set(i64_of(e.seq)?),
            kind: Set(e.kind.name().to_owned()),
            actor: Set(actor),
            at: Set(e.at),
            payload: Set(payload),
            attribution: Set(attribution),
            hash: Set(Some(hex(&prev))),
        });
    }
    Ok((rows, prev))
}

/// What a flush stored beside the changes, and what it leaves for the commit.
#[derive(Default)]
pub(crate) struct Flushed {
    /// Deliveries of notices routed to channels, claimed by this process.
    pub(crate) deliveries: Vec<Delivery>,
    /// Whether notices went to the outbox (the fan-out has work).
    pub(crate) stored_notices: bool,
    /// The last statements, sent with the commit (`Changes::commit`).
    pub(crate) rest: Vec<Statement>,
}

/// The deliveries a write stores for its `index`th notice, each with the notice's JSON, or
/// `None` when the notice goes through the outbox (a route of its kind reaches people, or the
/// row is not complete).
fn written_deliveries<'a>(
    routes: &WriteRoutes,
    noticed: &'a Noticed,
    index: usize,
) -> Option<Vec<(Delivery, &'a str)>> {
    let notice = &noticed.notice;
    let (Some(json), Some(at)) = (
        noticed.row.notice.try_as_ref(),
        noticed.row.created_at.try_as_ref(),
    ) else {
        return None;
    };
    let kind = notice.kind;
    let channels = (routes.channels_for)(kind)?;
    let at = *at;
    Some(
        channels
            .into_iter()
            .map(|channel| {
                let webhook_id = crate::outbox::written_webhook_id(
                    notice.at,
                    &notice.transition_id,
                    notice.seq,
                    kind.as_str(),
                    index,
                    &channel,
                );
                let delivery =
                    Delivery::pending(channel, String::new(), webhook_id, at, notice.clone());
                (delivery, json.as_str())
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use opsgate_domain::kpi::FactKind;
    use sea_orm::{ActiveValue::Set, DbBackend};

    use super::{events, events_statement, people_statement};

    fn event(seq: i64) -> events::ActiveModel {
        events::ActiveModel {
            id: sea_orm::ActiveValue::NotSet,
            transition_id: Set("t".into()),
            seq: Set(seq),
            kind: Set("started".into()),
            actor: Set("Pat".into()),
            at: Set(chrono::Utc::now()),
            payload: Set("{}".into()),
            attribution: Set(None),
            hash: Set(Some("00".into())),
        }
    }

    /// SQLite prepares a statement once per text (sqlx's statement cache): the write path's
    /// statements must not spell their rows into the text, or every batch is parsed again.
    #[test]
    fn sqlite_write_statements_have_one_text_for_any_number_of_rows() {
        let one = events_statement(DbBackend::Sqlite, vec![event(1)]).unwrap();
        let three = events_statement(DbBackend::Sqlite, (1..=3).map(event).collect()).unwrap();
        assert_eq!(one.sql, three.sql);
        assert_ne!(one.values, three.values);
        let person = |n: usize| (format!("p{n}"), "t".to_owned());
        let one = people_statement(DbBackend::Sqlite, vec![person(1)]).unwrap();
        let three = people_statement(DbBackend::Sqlite, (1..=3).map(person).collect()).unwrap();
        assert_eq!(one.sql, three.sql);
        assert_ne!(one.values, three.values);
    }

    #[test]
    fn the_done_kinds_are_spelled_as_the_facts_are_stored() {
        assert_eq!(
            done_kinds!(),
            format!(
                "('{}', '{}')",
                FactKind::Approved.as_str(),
                FactKind::SignedOff.as_str()
            )
        );
    }
}
