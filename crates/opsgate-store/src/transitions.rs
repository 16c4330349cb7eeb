//! Transitions: start, read, list, and execute commands with state, events and guard in one transaction.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use opsgate_domain::transition::TransitionMeta;
use opsgate_domain::{
    Acting, Actor, Attribution, Command, Event, EventKind, NodeState, Participants,
    TransitionState, TransitionStatus, clip,
};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};

use crate::changes::{Changes, event_rows, fact_rows, outbox_rows};
use crate::entities::{events, node_states, transitions};
use crate::workflows::WorkflowRecord;
use crate::writer::Write;
use crate::{Error, MAX_PAGE_SIZE, Result, Store};
use opsgate_domain::hash::{GENESIS, unhex32};

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
    /// Accept a target go-live before today (refused otherwise).
    pub allow_past_go_live: bool,
}

/// A transition with the workflow version it is pinned to.
#[derive(Debug, Clone)]
pub struct TransitionView {
    pub id: String,
    pub workflow: Arc<WorkflowRecord>,
    pub state: TransitionState,
    /// The hash of its last event: the head of its tamper-evident chain.
    pub head: [u8; 32],
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
    /// Who it was started with: the managers and the people named for its roles.
    pub meta: TransitionMeta,
}

/// A page of transitions, oldest first.
#[derive(Debug, Clone)]
pub struct TransitionPage {
    pub transitions: Vec<TransitionSummary>,
    /// Pass back to get the next page; `None` on the last page.
    pub next_page_token: Option<String>,
}

/// What deciding one write inside a transaction gives: the change to write, or a refusal
/// (which writes nothing and leaves the rest of the batch alone).
pub(crate) enum Decided<T> {
    Write(T),
    Refused(Error),
}

/// A decided start: the new transition and its first events.
pub(crate) struct Started {
    pub view: TransitionView,
    pub events: Vec<events::ActiveModel>,
    pub outbox: Vec<crate::changes::Noticed>,
}

/// A decided command: the state it was decided from, the state after, and the events between.
pub(crate) struct Executed {
    pub before: TransitionView,
    pub after: TransitionView,
    pub events: Vec<events::ActiveModel>,
    pub facts: Vec<crate::changes::FactRow>,
    pub outbox: Vec<crate::changes::Noticed>,
}

pub(crate) fn i64_of(seq: u64) -> Result<i64> {
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
        acting: impl Into<Acting>,
    ) -> Result<TransitionView> {
        self.write(Write::Start {
            new,
            acting: acting.into(),
        })
        .await
    }

    /// Decides a start inside `conn`, given the changes this transaction holds already.
    /// `Err(_)` is a database failure; a refusal is [`Decided::Refused`].
    pub(crate) async fn decide_start(
        &self,
        conn: &impl ConnectionTrait,
        pending: &Changes,
        new: &NewTransition,
        acting: &Acting,
        at: DateTime<Utc>,
    ) -> Result<Decided<Started>> {
        let workflow = match self
            .find_workflow(conn, &new.workflow_name, new.workflow_version)
            .await
        {
            Ok(w) => w,
            Err(e @ Error::NotFound(_)) => return Ok(Decided::Refused(e)),
            Err(e) => return Err(e),
        };
        if let Some(id) = pending.started(&new.service_name, &new.service_version) {
            return Ok(Decided::Refused(already_exists(new, id)));
        }
        if let Some(existing) = transitions::Entity::find()
            .filter(transitions::Column::ServiceName.eq(&new.service_name))
            .filter(transitions::Column::ServiceVersion.eq(&new.service_version))
            .one(conn)
            .await?
        {
            return Ok(Decided::Refused(already_exists(new, &existing.id)));
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
        if let Err(e) = meta.check_go_live(at.date_naive(), new.allow_past_go_live) {
            return Ok(Decided::Refused(e.into()));
        }
        match TransitionState::start(&workflow.workflow, meta, acting.clone(), at) {
            Ok((state, domain_events)) => {
                let id = uuid::Uuid::now_v7().to_string();
                let (events, head) = event_rows(&id, GENESIS, &domain_events)?;
                let view = TransitionView {
                    id,
                    workflow,
                    state,
                    head,
                };
                let outbox = if self.notify {
                    outbox_rows(&view, &domain_events, at)?
                } else {
                    Vec::new()
                };
                Ok(Decided::Write(Started {
                    view,
                    events,
                    outbox,
                }))
            }
            Err(e) => Ok(Decided::Refused(e.into())),
        }
    }

    /// The AlreadyExists error for a start that lost a race, naming the transition that won.
    pub(crate) async fn duplicate_start(&self, new: &NewTransition) -> Error {
        match transitions::Entity::find()
            .filter(transitions::Column::ServiceName.eq(&new.service_name))
            .filter(transitions::Column::ServiceVersion.eq(&new.service_version))
            .one(&self.db)
            .await
        {
            Ok(Some(existing)) => already_exists(new, &existing.id),
            Ok(None) => Error::Conflict {
                kind: "service version",
                id: format!("{} {}", new.service_name, new.service_version),
            },
            Err(e) => e.into(),
        }
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
                    "no transition for service '{}' version '{}'",
                    clip(service_name),
                    clip(service_version)
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
                    meta: serde_json::from_str(&r.meta)?,
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
        acting: impl Into<Acting>,
    ) -> Result<TransitionView> {
        self.write(Write::Execute {
            id: id.to_owned(),
            command,
            acting: acting.into(),
        })
        .await
    }

    /// Decides `command` inside `conn`, starting from this transaction's own change of the
    /// transition when it has one. Returns the state decided from (`None` when the transition is
    /// pending in this transaction), the new state and its events. A refusal is
    /// [`Decided::Refused`];
    /// `Err(_)` a database failure.
    pub(crate) async fn decide_execute(
        &self,
        conn: &impl ConnectionTrait,
        pending: &Changes,
        id: &str,
        command: &Command,
        acting: &Acting,
        at: DateTime<Utc>,
    ) -> Result<Decided<Executed>> {
        // `checked`: the state is known to be the stored one (read under the write lock, or this
        // transaction's own); an exclusive store's cache is trusted, checked by the write's `seq`
        // guard, and checked against the database before it refuses anything.
        let (mut view, mut checked) = match pending.view(id) {
            Some(view) => (view, true),
            None => match self.current(conn, id, true).await? {
                Some(found) => found,
                None => return Ok(Decided::Refused(not_found(id))),
            },
        };
        loop {
            let decided =
                view.state
                    .execute(&view.workflow.workflow, command.clone(), acting.clone(), at);
            match decided {
                Ok((next, domain_events)) => {
                    let facts = fact_rows(&view, &domain_events)?;
                    let (events, head) = event_rows(&view.id, view.head, &domain_events)?;
                    let after = TransitionView {
                        id: view.id.clone(),
                        workflow: view.workflow.clone(),
                        state: next,
                        head,
                    };
                    let outbox = if self.notify {
                        outbox_rows(&after, &domain_events, at)?
                    } else {
                        Vec::new()
                    };
                    return Ok(Decided::Write(Executed {
                        before: view,
                        after,
                        events,
                        facts,
                        outbox,
                    }));
                }
                Err(e) if checked => return Ok(Decided::Refused(e.into())),
                Err(_) => {
                    // The cached state may be behind (another process wrote this transition).
                    tracing::debug!(transition = %id, "checking a cached state before refusing");
                    self.states.remove(id);
                    view = match self.fetch(conn, id, true).await? {
                        Some(view) => view,
                        None => return Ok(Decided::Refused(not_found(id))),
                    };
                    checked = true;
                }
            }
        }
    }

    /// The full event log of a transition, in order.
    pub async fn events(&self, id: &str) -> Result<Vec<Event>> {
        self.events_page(id, 0, None).await
    }

    /// The events of transition `id` after sequence number `after`, in order, at most `limit`
    /// (all when `None`). `NotFound` when there is no such transition.
    pub async fn events_page(
        &self,
        id: &str,
        after: u64,
        limit: Option<u32>,
    ) -> Result<Vec<Event>> {
        let rows = events::Entity::find()
            .filter(events::Column::TransitionId.eq(id))
            .filter(events::Column::Seq.gt(i64::try_from(after).unwrap_or(i64::MAX)))
            .order_by_asc(events::Column::Seq)
            .limit(limit.map(u64::from))
            .all(&self.db)
            .await?;
        if rows.is_empty()
            && transitions::Entity::find_by_id(id.to_owned())
                .one(&self.db)
                .await?
                .is_none()
        {
            return Err(not_found(id));
        }
        rows.into_iter()
            .map(|r| {
                Ok(Event {
                    seq: u64::try_from(r.seq)
                        .map_err(|_| Error::Corrupt(format!("event seq {}", r.seq)))?,
                    at: r.at,
                    actor: Actor::parse(&r.actor).map_err(|e| Error::Corrupt(e.to_string()))?,
                    kind: serde_json::from_str::<EventKind>(&r.payload)?,
                    attribution: match &r.attribution {
                        Some(json) => serde_json::from_str(json)?,
                        None => Attribution::default(),
                    },
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
    pub(crate) async fn fetch(
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
        mut row: transitions::Model,
    ) -> Result<TransitionView> {
        for _ in 0..MAX_LOAD_ATTEMPTS {
            let seq = u64::try_from(row.seq)
                .map_err(|_| Error::Corrupt(format!("transition seq {}", row.seq)))?;
            if let Some(view) = self.states.get_at(&row.id, seq) {
                return Ok(view);
            }
            let id = row.id.clone();
            match self.load(conn, row).await? {
                Some(view) => return Ok(view),
                // A write committed between the row and its node states: read both again.
                None => {
                    row = transitions::Entity::find_by_id(id.clone())
                        .one(conn)
                        .await?
                        .ok_or_else(|| not_found(&id))?;
                }
            }
        }
        Err(Error::Conflict {
            kind: "transition",
            id: row.id,
        })
    }

    /// The node states of a row, in workflow order: those of `inline` (the row's snapshot, or
    /// none on a row from before it) as they are, the others from `node_states`.
    async fn node_states(
        &self,
        conn: &impl ConnectionTrait,
        id: &str,
        workflow: &WorkflowRecord,
        inline: Option<Vec<Option<NodeState>>>,
    ) -> Result<Vec<NodeState>> {
        let rows = node_states::Entity::find()
            .filter(node_states::Column::TransitionId.eq(id))
            .all(conn)
            .await?;
        let mut by_id: std::collections::HashMap<String, String> =
            rows.into_iter().map(|r| (r.node_id, r.detail)).collect();
        let nodes = workflow.workflow.nodes();
        let mut inline = inline.unwrap_or_else(|| vec![None; nodes.len()]);
        nodes
            .iter()
            .zip(inline.iter_mut())
            .map(|(n, inline)| match inline.take() {
                Some(state) => Ok(state),
                None => {
                    let detail = by_id.remove(n.id.as_str()).ok_or_else(|| {
                        Error::Corrupt(format!("transition {id} has no state for node '{}'", n.id))
                    })?;
                    Ok(serde_json::from_str(&detail)?)
                }
            })
            .collect()
    }

    /// The view of a row: its snapshot, with the node states the snapshot leaves to
    /// `node_states` (heavy ones, or every one on rows from before the snapshot, which had them
    /// all there) read from there.
    /// Those are read by a second statement, so the row's `seq` is read again after it: unchanged,
    /// no write came between (every write moves `seq` and its node states in one transaction);
    /// changed, `None`: the caller reads again.
    async fn load(
        &self,
        conn: &impl ConnectionTrait,
        row: transitions::Model,
    ) -> Result<Option<TransitionView>> {
        let workflow = self.workflow_by_id(conn, row.workflow_id).await?;
        let snapshot = match &row.nodes {
            Some(json) => {
                let nodes = serde_json::from_str::<Vec<Option<NodeState>>>(json)?;
                // The light nodes are nowhere else: a snapshot that does not fit its workflow
                // cannot be mended from `node_states`.
                if nodes.len() != workflow.workflow.nodes().len() {
                    return Err(Error::Corrupt(format!(
                        "transition {}: its snapshot holds {} nodes, its workflow has {}",
                        row.id,
                        nodes.len(),
                        workflow.workflow.nodes().len()
                    )));
                }
                Some(nodes)
            }
            None => None,
        };
        let nodes = match snapshot {
            Some(nodes) if nodes.iter().all(Option::is_some) => {
                nodes.into_iter().flatten().collect()
            }
            partial => {
                let nodes = self.node_states(conn, &row.id, &workflow, partial).await?;
                let seq_now: Option<i64> = transitions::Entity::find_by_id(row.id.clone())
                    .select_only()
                    .column(transitions::Column::Seq)
                    .into_tuple()
                    .one(conn)
                    .await?;
                if seq_now != Some(row.seq) {
                    return Ok(None);
                }
                nodes
            }
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
        let head = match &row.head_hash {
            Some(hex) => unhex32(hex).ok_or_else(|| {
                Error::Corrupt(format!("transition {}: head hash '{hex}'", row.id))
            })?,
            None => GENESIS,
        };
        Ok(Some(TransitionView {
            id: row.id,
            workflow,
            state,
            head,
        }))
    }
}

/// How often a read retries a transition that writers keep moving under it.
const MAX_LOAD_ATTEMPTS: usize = 5;

fn parse_status(value: &str) -> Result<TransitionStatus> {
    TransitionStatus::parse(value)
        .ok_or_else(|| Error::Corrupt(format!("unknown transition status '{value}'")))
}

fn not_found(id: &str) -> Error {
    Error::NotFound(format!("transition '{}' not found", clip(id)))
}

fn already_exists(new: &NewTransition, id: &str) -> Error {
    Error::AlreadyExists(format!(
        "a transition for service '{}' version '{}' already exists: {id}",
        new.service_name, new.service_version
    ))
}
