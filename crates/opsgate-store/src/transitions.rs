//! Transitions: start, read, list, and execute commands with state, events and guard in one transaction.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use opsgate_domain::transition::TransitionMeta;
use opsgate_domain::{
    Actor, Command, Event, EventKind, NodeState, Participants, TransitionState, TransitionStatus,
};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};

use crate::entities::{events, node_states, transitions};
use crate::error::is_unique_violation;
use crate::workflows::WorkflowRecord;
use crate::{Error, MAX_PAGE_SIZE, Result, Store, now};

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
        let at = now();
        let txn = self.begin_write().await?;
        let workflow = self
            .find_workflow(txn.conn(), &new.workflow_name, new.workflow_version)
            .await?;
        if let Some(existing) = transitions::Entity::find()
            .filter(transitions::Column::ServiceName.eq(&new.service_name))
            .filter(transitions::Column::ServiceVersion.eq(&new.service_version))
            .one(txn.conn())
            .await?
        {
            txn.rollback().await?;
            return Err(already_exists(&new, &existing.id));
        }
        let meta = TransitionMeta {
            workflow: workflow.workflow.name().clone(),
            workflow_version: workflow.version,
            service_name: new.service_name.clone(),
            service_version: new.service_version.clone(),
            project_manager: new.project_manager,
            service_manager: new.service_manager,
            target_go_live: new.target_go_live,
            participants: new.participants,
        };
        let (state, new_events) = TransitionState::start(&workflow.workflow, meta, actor, at)?;
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
        };
        if let Err(e) = transitions::Entity::insert(row).exec(txn.conn()).await {
            txn.rollback().await?;
            return Err(if is_unique_violation(&e) {
                Error::AlreadyExists(format!(
                    "a transition for service '{}' version '{}' already exists",
                    new.service_name, new.service_version
                ))
            } else {
                e.into()
            });
        }
        let nodes = workflow
            .workflow
            .nodes()
            .iter()
            .zip(&state.nodes)
            .map(|(node, ns)| node_row(&id, node.id.as_str(), ns))
            .collect::<Result<Vec<_>>>()?;
        node_states::Entity::insert_many(nodes)
            .exec(txn.conn())
            .await?;
        insert_events(txn.conn(), &id, &new_events).await?;
        txn.commit().await?;
        tracing::info!(transition = %id, service = %state.meta.service_name, version = %state.meta.service_version, "transition started");
        Ok(TransitionView {
            id,
            workflow,
            state,
        })
    }

    /// A transition by id.
    pub async fn get_transition(&self, id: &str) -> Result<TransitionView> {
        let row = transitions::Entity::find_by_id(id.to_owned())
            .one(&self.db)
            .await?
            .ok_or_else(|| not_found(id))?;
        self.load(&self.db, row).await
    }

    /// The transition of one service version.
    pub async fn find_transition(
        &self,
        service_name: &str,
        service_version: &str,
    ) -> Result<TransitionView> {
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
        self.load(&self.db, row).await
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
        let at = now();
        let txn = self.begin_write().await?;
        let mut query = transitions::Entity::find_by_id(id.to_owned());
        if self.backend() == DbBackend::Postgres {
            // Serialise writers of this transition; SQLite's BEGIN IMMEDIATE already holds the write lock.
            query = query.lock_exclusive();
        }
        let Some(row) = query.one(txn.conn()).await? else {
            txn.rollback().await?;
            return Err(not_found(id));
        };
        let view = self.load(txn.conn(), row).await?;
        let (next, new_events) =
            match view
                .state
                .execute(&view.workflow.workflow, command, actor, at)
            {
                Ok(ok) => ok,
                Err(e) => {
                    txn.rollback().await?;
                    return Err(e.into());
                }
            };
        for ((node, old), new) in view
            .workflow
            .workflow
            .nodes()
            .iter()
            .zip(&view.state.nodes)
            .zip(&next.nodes)
        {
            if old != new {
                let row = node_row(id, node.id.as_str(), new)?;
                node_states::Entity::update(row).exec(txn.conn()).await?;
            }
        }
        insert_events(txn.conn(), id, &new_events).await?;
        let updated = transitions::Entity::update_many()
            .col_expr(transitions::Column::Seq, Expr::value(i64_of(next.seq)?))
            .col_expr(
                transitions::Column::Status,
                Expr::value(next.status.as_str()),
            )
            .col_expr(transitions::Column::UpdatedAt, Expr::value(next.updated_at))
            .filter(transitions::Column::Id.eq(id))
            .filter(transitions::Column::Seq.eq(i64_of(view.state.seq)?))
            .exec(txn.conn())
            .await?;
        if updated.rows_affected != 1 {
            txn.rollback().await?;
            return Err(Error::Conflict(id.to_owned()));
        }
        txn.commit().await?;
        for e in &new_events {
            tracing::info!(transition = %id, seq = e.seq, event = e.kind.name(), actor = %e.actor, "event recorded");
        }
        Ok(TransitionView {
            id: view.id,
            workflow: view.workflow,
            state: next,
        })
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

    async fn load(
        &self,
        conn: &impl ConnectionTrait,
        row: transitions::Model,
    ) -> Result<TransitionView> {
        let workflow = self.workflow_by_id(conn, row.workflow_id).await?;
        let rows = node_states::Entity::find()
            .filter(node_states::Column::TransitionId.eq(&row.id))
            .all(conn)
            .await?;
        let mut by_id: std::collections::HashMap<String, NodeState> = rows
            .into_iter()
            .map(|r| Ok((r.node_id, serde_json::from_str(&r.detail)?)))
            .collect::<Result<_>>()?;
        let nodes = workflow
            .workflow
            .nodes()
            .iter()
            .map(|n| {
                by_id.remove(n.id.as_str()).ok_or_else(|| {
                    Error::Corrupt(format!(
                        "transition {} has no state for node '{}'",
                        row.id, n.id
                    ))
                })
            })
            .collect::<Result<Vec<_>>>()?;
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
        .exec(conn)
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
