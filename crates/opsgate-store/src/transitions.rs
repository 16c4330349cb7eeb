//! Transitions: start, read, list, and execute commands with state, events and guard in one transaction.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use opsgate_domain::transition::TransitionMeta;
use opsgate_domain::{
    Actor, Command, Event, EventKind, NodeState, Participants, TransitionState, TransitionStatus,
};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};

use crate::entities::{events, node_states, transitions};
use crate::error::is_unique_violation;
use crate::workflows::WorkflowRecord;
use crate::writer::Write;
use crate::{Error, MAX_PAGE_SIZE, Result, Store};

/// What `start_transition` needs; the workflow version is resolved by the store.
#[derive(Debug, Clone)]
pub struct NewTransition {
    pub workflow_name: String,
    pub workflow_version: Option<u32>,
    pub service_name: String,
    pub service_version: String,
    pub project_manager: Actor,
    pub service_manager: Actor,
    pub target_go_live: NaiveDate,
    pub participants: Participants,
}

/// A transition with the workflow version it is pinned to.
#[derive(Debug, Clone)]
pub struct TransitionView {
    pub id: String,
    pub workflow: Arc<WorkflowRecord>,
    pub state: TransitionState,
}

/// One row of a transition listing.
#[derive(Debug, Clone)]
pub struct TransitionSummary {
    pub id: String,
    pub workflow_name: String,
    pub workflow_version: u32,
    pub service_name: String,
    pub service_version: String,
    pub status: TransitionStatus,
    pub target_go_live: NaiveDate,
    pub updated_at: DateTime<Utc>,
}

/// A page of transitions, oldest first.
#[derive(Debug, Clone)]
pub struct TransitionPage {
    pub transitions: Vec<TransitionSummary>,
    /// Pass back to get the next page; `None` on the last page.
    pub next_page_token: Option<String>,
}

fn i64_of(seq: u64) -> Result<i64> {
    i64::try_from(seq).map_err(|_| Error::Corrupt(format!("sequence {seq} out of range")))
}

fn u32_of(v: i32, what: &str) -> Result<u32> {
    u32::try_from(v).map_err(|_| Error::Corrupt(format!("{what} {v} out of range")))
}

impl Store {
    /// Starts a transition on the named workflow version (latest when none) and returns it.
    pub async fn start_transition(
        &self,
        new: NewTransition,
        actor: Actor,
    ) -> Result<TransitionView> {
        self.write(Write::Start { new, actor }).await
    }

    /// Decides a start inside `conn`. `Ok(Err(_))` is a refusal that wrote nothing; `Err(_)` a
    /// database failure after which the whole transaction must be rolled back.
    pub(crate) async fn start_in(
        &self,
        conn: &impl ConnectionTrait,
        new: &NewTransition,
        actor: &Actor,
        at: DateTime<Utc>,
    ) -> Result<Result<TransitionView>> {
        let workflow = match self
            .find_workflow(conn, &new.workflow_name, new.workflow_version)
            .await
        {
            Ok(w) => w,
            Err(e @ Error::NotFound(_)) => return Ok(Err(e)),
            Err(e) => return Err(e),
        };
        if let Some(existing) = transitions::Entity::find()
            .filter(transitions::Column::ServiceName.eq(&new.service_name))
            .filter(transitions::Column::ServiceVersion.eq(&new.service_version))
            .one(conn)
            .await?
        {
            return Ok(Err(already_exists(new, &existing.id)));
        }
        let meta = TransitionMeta {
            workflow: workflow.workflow.name().clone(),
            workflow_version: workflow.version,
            service_name: new.service_name.clone(),
            service_version: new.service_version.clone(),
            project_manager: new.project_manager.clone(),
            service_manager: new.service_manager.clone(),
            target_go_live: new.target_go_live,
            participants: new.participants.clone(),
        };
        let (state, new_events) =
            match TransitionState::start(&workflow.workflow, meta, actor.clone(), at) {
                Ok(ok) => ok,
                Err(e) => return Ok(Err(e.into())),
            };
        let id = uuid::Uuid::now_v7().to_string();
        let row = transitions::ActiveModel {
            id: Set(id.clone()),
            workflow_id: Set(workflow.id),
            workflow_name: Set(workflow.workflow.name().to_string()),
            workflow_version: Set(i32::try_from(workflow.version).unwrap_or(i32::MAX)),
            service_name: Set(state.meta.service_name.clone()),
            service_version: Set(state.meta.service_version.clone()),
            status: Set(state.status.as_str().to_owned()),
            target_go_live: Set(state.meta.target_go_live),
            meta: Set(serde_json::to_string(&state.meta)?),
            seq: Set(i64_of(state.seq)?),
            created_at: Set(at),
            updated_at: Set(at),
            nodes: Set(Some(serde_json::to_string(&state.nodes)?)),
        };
        transitions::Entity::insert(row)
            .exec_without_returning(conn)
            .await
            .map_err(|e| {
                if is_unique_violation(&e) {
                    Error::AlreadyExists(format!(
                        "a transition for service '{}' version '{}' already exists",
                        new.service_name, new.service_version
                    ))
                } else {
                    e.into()
                }
            })?;
        let nodes = workflow
            .workflow
            .nodes()
            .iter()
            .zip(&state.nodes)
            .map(|(node, ns)| node_row(&id, node.id.as_str(), ns))
            .collect::<Result<Vec<_>>>()?;
        node_states::Entity::insert_many(nodes)
            .exec_without_returning(conn)
            .await?;
        insert_events(conn, &id, &new_events).await?;
        Ok(Ok(TransitionView {
            id,
            workflow,
            state,
        }))
    }

    /// A transition by id.
    pub async fn get_transition(&self, id: &str) -> Result<TransitionView> {
        let (view, _) = self
            .current(&self.db, id, false)
            .await?
            .ok_or_else(|| not_found(id))?;
        self.states.put(&view);
        Ok(view)
    }

    /// The transition of one service version.
    pub async fn find_transition(
        &self,
        service_name: &str,
        service_version: &str,
    ) -> Result<TransitionView> {
        if let Some(id) = self.states.service(service_name, service_version) {
            return self.get_transition(&id).await;
        }
        let row = transitions::Entity::find()
            .filter(transitions::Column::ServiceName.eq(service_name))
            .filter(transitions::Column::ServiceVersion.eq(service_version))
            .one(&self.db)
            .await?
            .ok_or_else(|| {
                Error::NotFound(format!(
                    "no transition for service '{service_name}' version '{service_version}'"
                ))
            })?;
        let view = self.cached_or_load(&self.db, row).await?;
        self.states.put(&view);
        Ok(view)
    }

    /// Transitions oldest first (ids are time-ordered UUIDv7), `page_size` at a time.
    pub async fn list_transitions(
        &self,
        page_size: u32,
        page_token: Option<&str>,
    ) -> Result<TransitionPage> {
        let size = page_size.clamp(1, MAX_PAGE_SIZE);
        let mut query = transitions::Entity::find().order_by_asc(transitions::Column::Id);
        if let Some(after) = page_token {
            query = query.filter(transitions::Column::Id.gt(after));
        }
        let mut rows = query.limit(u64::from(size) + 1).all(&self.db).await?;
        let more = rows.len() > size as usize;
        rows.truncate(size as usize);
        let next_page_token = if more {
            rows.last().map(|r| r.id.clone())
        } else {
            None
        };
        let transitions = rows
            .into_iter()
            .map(|r| {
                Ok(TransitionSummary {
                    status: parse_status(&r.status)?,
                    workflow_version: u32_of(r.workflow_version, "workflow version")?,
                    id: r.id,
                    workflow_name: r.workflow_name,
                    service_name: r.service_name,
                    service_version: r.service_version,
                    target_go_live: r.target_go_live,
                    updated_at: r.updated_at,
                })
            })
            .collect::<Result<_>>()?;
        Ok(TransitionPage {
            transitions,
            next_page_token,
        })
    }

    /// Runs `command` on a transition: decide, then write node states, events and the guarded row together.
    pub async fn execute(
        &self,
        id: &str,
        command: Command,
        actor: Actor,
    ) -> Result<TransitionView> {
        self.write(Write::Execute {
            id: id.to_owned(),
            command,
            actor,
        })
        .await
    }

    /// Decides `command` inside `conn`, starting from `pending` (this transaction's own earlier
    /// change of the transition) when given. `Ok(Err(_))` is a refusal that wrote nothing; `Err(_)`
    /// a database failure after which the whole transaction must be rolled back.
    pub(crate) async fn execute_in(
        &self,
        conn: &impl ConnectionTrait,
        pending: Option<TransitionView>,
        id: &str,
        command: &Command,
        actor: &Actor,
        at: DateTime<Utc>,
    ) -> Result<Result<TransitionView>> {
        // `checked`: the state is known to be the stored one (read under the write lock, or this
        // transaction's own); an exclusive store's cache is trusted but checked before a refusal.
        let (mut view, mut checked) = match pending {
            Some(view) => (view, true),
            None => match self.current(conn, id, true).await? {
                Some(found) => found,
                None => return Ok(Err(not_found(id))),
            },
        };
        loop {
            let decided =
                view.state
                    .execute(&view.workflow.workflow, command.clone(), actor.clone(), at);
            match decided {
                Err(e) if checked => return Ok(Err(e.into())),
                Err(_) => {}
                Ok((next, new_events)) => {
                    if write_change(conn, &view, &next, &new_events).await? {
                        return Ok(Ok(TransitionView {
                            id: view.id,
                            workflow: view.workflow,
                            state: next,
                        }));
                    }
                    if checked {
                        return Ok(Err(Error::Conflict(id.to_owned())));
                    }
                }
            }
            // The cached state may be behind (another process wrote this transition): decide
            // again on the stored state. The guard wrote nothing.
            tracing::debug!(transition = %id, "checking a cached state against the database");
            self.states.remove(id);
            view = match self.fetch(conn, id, true).await? {
                Some(view) => view,
                None => return Ok(Err(not_found(id))),
            };
            checked = true;
        }
    }

    /// The full event log of a transition, in order.
    pub async fn events(&self, id: &str) -> Result<Vec<Event>> {
        let rows = events::Entity::find()
            .filter(events::Column::TransitionId.eq(id))
            .order_by_asc(events::Column::Seq)
            .all(&self.db)
            .await?;
        rows.into_iter()
            .map(|r| {
                Ok(Event {
                    seq: u64::try_from(r.seq)
                        .map_err(|_| Error::Corrupt(format!("event seq {}", r.seq)))?,
                    at: r.at,
                    actor: Actor::parse(&r.actor).map_err(|e| Error::Corrupt(e.to_string()))?,
                    kind: serde_json::from_str::<EventKind>(&r.payload)?,
                })
            })
            .collect()
    }

    /// The current state of `id`, and whether it was checked against the stored row. An exclusive
    /// store trusts its cache (unchecked); otherwise the row is read (and locked for update on
    /// PostgreSQL when `lock`) and the cache used only when it is at the row's `seq`.
    async fn current(
        &self,
        conn: &impl ConnectionTrait,
        id: &str,
        lock: bool,
    ) -> Result<Option<(TransitionView, bool)>> {
        if self.exclusive
            && let Some(view) = self.states.get(id)
        {
            return Ok(Some((view, false)));
        }
        Ok(self.fetch(conn, id, lock).await?.map(|view| (view, true)))
    }

    /// Reads the row of `id`, then the cached view at its `seq` or the stored node states.
    async fn fetch(
        &self,
        conn: &impl ConnectionTrait,
        id: &str,
        lock: bool,
    ) -> Result<Option<TransitionView>> {
        let mut query = transitions::Entity::find_by_id(id.to_owned());
        if lock && self.backend() == DbBackend::Postgres {
            // Serialise writers of this transition; SQLite's BEGIN IMMEDIATE already holds the write lock.
            query = query.lock_exclusive();
        }
        match query.one(conn).await? {
            Some(row) => Ok(Some(self.cached_or_load(conn, row).await?)),
            None => Ok(None),
        }
    }

    async fn cached_or_load(
        &self,
        conn: &impl ConnectionTrait,
        row: transitions::Model,
    ) -> Result<TransitionView> {
        let seq = u64::try_from(row.seq)
            .map_err(|_| Error::Corrupt(format!("transition seq {}", row.seq)))?;
        match self.states.get_at(&row.id, seq) {
            Some(view) => Ok(view),
            None => self.load(conn, row).await,
        }
    }

    /// The node states of a row without a snapshot, from `node_states`, in workflow order.
    async fn node_states(
        &self,
        conn: &impl ConnectionTrait,
        id: &str,
        workflow: &WorkflowRecord,
    ) -> Result<Vec<NodeState>> {
        let rows = node_states::Entity::find()
            .filter(node_states::Column::TransitionId.eq(id))
            .all(conn)
            .await?;
        let mut by_id: std::collections::HashMap<String, NodeState> = rows
            .into_iter()
            .map(|r| Ok((r.node_id, serde_json::from_str(&r.detail)?)))
            .collect::<Result<_>>()?;
        workflow
            .workflow
            .nodes()
            .iter()
            .map(|n| {
                by_id.remove(n.id.as_str()).ok_or_else(|| {
                    Error::Corrupt(format!("transition {id} has no state for node '{}'", n.id))
                })
            })
            .collect()
    }

    async fn load(
        &self,
        conn: &impl ConnectionTrait,
        row: transitions::Model,
    ) -> Result<TransitionView> {
        let workflow = self.workflow_by_id(conn, row.workflow_id).await?;
        let snapshot = match &row.nodes {
            Some(json) => Some(serde_json::from_str::<Vec<NodeState>>(json)?)
                .filter(|nodes| nodes.len() == workflow.workflow.nodes().len()),
            None => None,
        };
        let nodes = match snapshot {
            Some(nodes) => nodes,
            None => self.node_states(conn, &row.id, &workflow).await?,
        };
        let state = TransitionState {
            meta: serde_json::from_str(&row.meta)?,
            status: parse_status(&row.status)?,
            nodes,
            seq: u64::try_from(row.seq)
                .map_err(|_| Error::Corrupt(format!("transition seq {}", row.seq)))?,
            created_at: row.created_at,
            updated_at: row.updated_at,
        };
        Ok(TransitionView {
            id: row.id,
            workflow,
            state,
        })
    }
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

/// Writes a decided change: first the transition row, guarded by the `seq` the decision started
/// from (false, with nothing written, when the row has moved on), then the changed node states in
/// one upsert and the events in one insert.
async fn write_change(
    conn: &impl ConnectionTrait,
    before: &TransitionView,
    next: &TransitionState,
    new_events: &[Event],
) -> Result<bool> {
    let id = before.id.as_str();
    let updated = transitions::Entity::update_many()
        .col_expr(transitions::Column::Seq, Expr::value(i64_of(next.seq)?))
        .col_expr(
            transitions::Column::Status,
            Expr::value(next.status.as_str()),
        )
        .col_expr(transitions::Column::UpdatedAt, Expr::value(next.updated_at))
        .col_expr(
            transitions::Column::Nodes,
            Expr::value(serde_json::to_string(&next.nodes)?),
        )
        .filter(transitions::Column::Id.eq(id))
        .filter(transitions::Column::Seq.eq(i64_of(before.state.seq)?))
        .exec(conn)
        .await?;
    if updated.rows_affected != 1 {
        return Ok(false);
    }
    let changed = before
        .workflow
        .workflow
        .nodes()
        .iter()
        .zip(&before.state.nodes)
        .zip(&next.nodes)
        .filter(|((_, old), new)| old != new)
        .map(|((node, _), new)| node_row(id, node.id.as_str(), new))
        .collect::<Result<Vec<_>>>()?;
    if !changed.is_empty() {
        node_states::Entity::insert_many(changed)
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
            .exec_without_returning(conn)
            .await?;
    }
    insert_events(conn, id, new_events).await?;
    Ok(true)
}

async fn insert_events(
    conn: &impl ConnectionTrait,
    transition_id: &str,
    new: &[Event],
) -> Result<()> {
    let rows = new
        .iter()
        .map(|e| {
            Ok(events::ActiveModel {
                id: NotSet,
                transition_id: Set(transition_id.to_owned()),
                seq: Set(i64_of(e.seq)?),
                kind: Set(e.kind.name().to_owned()),
                actor: Set(e.actor.to_string()),
                at: Set(e.at),
                payload: Set(serde_json::to_string(&e.kind)?),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    if rows.is_empty() {
        return Ok(());
    }
    events::Entity::insert_many(rows)
        .exec_without_returning(conn)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                Error::Conflict(transition_id.to_owned())
            } else {
                e.into()
            }
        })?;
    Ok(())
}

fn parse_status(value: &str) -> Result<TransitionStatus> {
    TransitionStatus::parse(value)
        .ok_or_else(|| Error::Corrupt(format!("unknown transition status '{value}'")))
}

fn not_found(id: &str) -> Error {
    Error::NotFound(format!("transition '{id}' not found"))
}

fn already_exists(new: &NewTransition, id: &str) -> Error {
    Error::AlreadyExists(format!(
        "a transition for service '{}' version '{}' already exists: {id}",
        new.service_name, new.service_version
    ))
}
