//! Storage for opsgate: sea-orm over SQLite (default) or PostgreSQL; every change is atomic and durable.
//!
//! Every mutation takes the transition's current state, lets the domain decide, and writes the
//! transition row (guarded by the `seq` it decided from), the changed node states and the events
//! in one transaction. Writers of a transition are serialised: on SQLite by the one writer task
//! (group commit, see `writer`), on PostgreSQL by `SELECT ... FOR UPDATE`; the `seq` guard and the
//! unique `(transition_id, seq)` index hold on both. Decoded states are cached (`cache`): an
//! exclusive SQLite store trusts its cache, any other store uses it only at the stored `seq`.

mod attachments;
mod audit;
mod cache;
mod catalog;
mod changes;
mod connect;
mod delegations;
pub mod entities;
mod error;
mod hex;
mod idempotency;
mod kpis;
mod outbox;
mod parts;
mod people;
mod stats;
mod timers;
mod tokens;
mod transitions;
mod watch;
mod workflows;
mod write_conn;
mod writer;

use std::sync::{Arc, Mutex};

use chrono::{DateTime, SubsecRound, Utc};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, ExecResult,
    QueryResult, SqliteTransactionMode, Statement, TransactionOptions, TransactionTrait,
};

pub use attachments::{MAX_ATTACHMENT_BYTES, NewAttachment, StoredAttachment};
pub use audit::{BreakKind, ChainBreak, ChainReport, ExportedEvent, MAX_EXPORT_PAGE};
pub use cache::DEFAULT_STATE_CACHE_MIB;
pub use catalog::{CatalogEntry, MAX_SERVICES, ServiceFields, ServiceVersion, not_in_catalog};
pub use connect::{Clock, ConnectOptions, DEFAULT_DATABASE_URL};
pub use delegations::{DelegationRecord, NewDelegation};
pub use error::{Error, Result};
pub use hex::sha256_hex;
pub use idempotency::Remembered;
pub use kpis::{FactGroup, KpiWindow, Kpis, MAX_GROUPS};
pub use outbox::{Backlog, DELIVERED, DISABLED, Delivery, FAILED, PENDING, Settle, WriteRoutes};
pub use parts::{BoardCursor, BoardQuery, MAX_PARTS};
pub use people::{MAX_PEOPLE, PersonRecord};
pub use stats::{BATCH_BUCKETS, BatchSnapshot, TransitionCount, WRITE_PHASES};
pub use tokens::{NewToken, TOKEN_PREFIX, TokenRecord, looks_like_token, token_hash};
pub use transitions::{NewTransition, TransitionPage, TransitionSummary, TransitionView};
pub use watch::{ChangeFeed, Changed};
pub use workflows::{Registered, StoredTemplate, WorkflowRecord, WorkflowSummary};

/// Parsed workflow versions kept in memory (a parse is kept per version a transition runs on).
pub const WORKFLOW_CACHE: usize = 256;

/// Most transitions one page of `list_transitions` returns.
pub const MAX_PAGE_SIZE: u32 = 500;

/// The store: a connection pool plus a cache of parsed workflow versions (immutable once stored).
#[derive(Clone)]
pub struct Store {
    /// Reads.
    db: DatabaseConnection,
    /// On SQLite a pool of one connection for the migrations and the backfills when the database
    /// opens (write transactions run on the write turn's own connection, `write_turn`); on
    /// PostgreSQL the read pool, where every write runs.
    write_db: DatabaseConnection,
    /// The notification dispatcher's bookkeeping (fan-out, claims, outcomes): on SQLite one
    /// connection whose commits do not wait for an fsync (`synchronous = NORMAL`); the next
    /// durable commit of a write syncs them with it (one WAL). On PostgreSQL the write pool.
    relaxed_db: DatabaseConnection,
    /// Parsed workflow versions by row id, least recently used dropped beyond
    /// [`WORKFLOW_CACHE`] (rows never change, so an entry is never stale).
    workflows: Arc<Mutex<lru::LruCache<i64, Arc<WorkflowRecord>>>>,
    /// SQLite only: writers of this process take turns here (first come, first served) instead of
    /// colliding on the database lock and sleeping in SQLite's busy handler; the turn holds the
    /// connection write transactions run on (`write_conn`).
    write_turn: Option<write_conn::Turn>,
    /// Decoded transition states by id.
    states: Arc<cache::StateCache>,
    /// True when this process holds the SQLite database's lock file: nobody else writes, so the
    /// state cache is the truth and reads need not touch the database.
    exclusive: bool,
    /// The SQLite group-commit queue; `None` on PostgreSQL and inside the writer task itself.
    writer: Option<writer::Writer>,
    /// Held open while the store lives: the exclusive lock on the SQLite database.
    _lock: Option<Arc<std::fs::File>>,
    /// The time decisions are taken at.
    clock: Clock,
    /// Write batches committed, for the metrics.
    batches: Arc<stats::BatchStats>,
    /// Writes store their notices in the outbox.
    notify: bool,
    /// Write the people index (see [`ConnectOptions::people_index`]).
    people_index: bool,
    /// Add starts' services to the catalog (see [`ConnectOptions::catalog`]).
    catalog: bool,
    /// Bumped after every commit that stored notices.
    outbox_signal: Arc<tokio::sync::watch::Sender<u64>>,
    /// Announces the transitions each commit changed (`watch`).
    changed: Arc<tokio::sync::broadcast::Sender<watch::Changed>>,
    /// Services known to be in the catalog (services are never removed): a start for one of
    /// them writes nothing to the catalog.
    known_services: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
    /// The dispatcher's routes to channels, while it runs: writes store those deliveries
    /// themselves (`outbox::WriteRoutes`).
    write_routes: Arc<std::sync::RwLock<Option<Arc<outbox::WriteRoutes>>>>,
    /// Outcomes of delivery attempts waiting to be stored (`Store::queue_settlements`).
    settlements: Arc<std::sync::Mutex<Vec<(String, outbox::Settle)>>>,
}

/// A write transaction, holding this process's write turn on SQLite until it ends.
pub(crate) enum WriteTxn {
    /// On a pool: PostgreSQL, or SQLite's bookkeeping connection (which holds the turn).
    Pooled {
        txn: DatabaseTransaction,
        _turn: Option<write_conn::TurnGuard>,
    },
    /// On SQLite's write connection, owned by the turn.
    Owned(write_conn::OwnedTxn),
}

impl WriteTxn {
    pub(crate) async fn commit(self) -> Result<()> {
        match self {
            Self::Pooled { txn, .. } => Ok(txn.commit().await?),
            Self::Owned(txn) => Ok(txn.commit().await?),
        }
    }

    /// Runs `last` in order and commits: in one round trip on SQLite's write connection, one by
    /// one elsewhere (PostgreSQL's protocol takes one statement with parameters at a time).
    pub(crate) async fn commit_with(self, last: Vec<Statement>) -> std::result::Result<(), DbErr> {
        match self {
            Self::Pooled { txn, .. } => {
                for statement in last {
                    txn.execute_raw(statement).await?;
                }
                txn.commit().await
            }
            Self::Owned(txn) if last.is_empty() => txn.commit().await,
            Self::Owned(txn) => txn.commit_with(write_conn::joined(last)).await,
        }
    }

    pub(crate) async fn rollback(self) -> Result<()> {
        match self {
            Self::Pooled { txn, .. } => Ok(txn.rollback().await?),
            Self::Owned(txn) => Ok(txn.rollback().await?),
        }
    }
}

#[sea_orm::prelude::async_trait::async_trait]
impl ConnectionTrait for WriteTxn {
    fn get_database_backend(&self) -> DbBackend {
        match self {
            Self::Pooled { txn, .. } => txn.get_database_backend(),
            Self::Owned(txn) => txn.get_database_backend(),
        }
    }

    async fn execute_raw(&self, statement: Statement) -> std::result::Result<ExecResult, DbErr> {
        match self {
            Self::Pooled { txn, .. } => txn.execute_raw(statement).await,
            Self::Owned(txn) => txn.execute_raw(statement).await,
        }
    }

    async fn execute_unprepared(&self, sql: &str) -> std::result::Result<ExecResult, DbErr> {
        match self {
            Self::Pooled { txn, .. } => txn.execute_unprepared(sql).await,
            Self::Owned(txn) => txn.execute_unprepared(sql).await,
        }
    }

    async fn query_one_raw(
        &self,
        statement: Statement,
    ) -> std::result::Result<Option<QueryResult>, DbErr> {
        match self {
            Self::Pooled { txn, .. } => txn.query_one_raw(statement).await,
            Self::Owned(txn) => txn.query_one_raw(statement).await,
        }
    }

    async fn query_all_raw(
        &self,
        statement: Statement,
    ) -> std::result::Result<Vec<QueryResult>, DbErr> {
        match self {
            Self::Pooled { txn, .. } => txn.query_all_raw(statement).await,
            Self::Owned(txn) => txn.query_all_raw(statement).await,
        }
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend())
            .finish_non_exhaustive()
    }
}

impl Store {
    /// The database kind behind this store.
    pub fn backend(&self) -> DbBackend {
        self.db.get_database_backend()
    }

    /// The underlying connection, for tests and tools.
    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Starts a write transaction: `BEGIN IMMEDIATE` on SQLite so that the write lock is taken up
    /// front (a deferred one can fail with SQLITE_BUSY_SNAPSHOT past the busy timeout), sent with
    /// the transaction's first statement (`write_conn`).
    async fn begin_write(&self) -> Result<WriteTxn> {
        match self.write_turn().await {
            Some(turn) => Ok(WriteTxn::Owned(write_conn::OwnedTxn::begin(turn))),
            None => Ok(WriteTxn::Pooled {
                txn: self.write_db.begin().await?,
                _turn: None,
            }),
        }
    }

    /// Starts a transaction of the dispatcher's bookkeeping, whose commit need not be durable on
    /// its own: on SQLite it does not wait for an fsync (the next write's durable commit syncs it,
    /// WAL being one log), so a dispatcher round does not cost an fsync beside the writer's. What
    /// power loss can take is the last rounds' bookkeeping, never a state change or its notice:
    /// a notice fanned out again gets the same deliveries (their ids are derived, not random), a
    /// lost outcome is attempted again under the same `webhook-id`: at least once, as before.
    pub(crate) async fn begin_bookkeeping(&self) -> Result<WriteTxn> {
        let turn = self.write_turn().await;
        let options = TransactionOptions {
            sqlite_transaction_mode: (self.backend() == DbBackend::Sqlite)
                .then_some(SqliteTransactionMode::Immediate),
            ..TransactionOptions::default()
        };
        let txn = self.relaxed_db.begin_with_options(options).await?;
        Ok(WriteTxn::Pooled { txn, _turn: turn })
    }

    /// Runs one statement on the connection writes use, outside any transaction. For fault drills
    /// and tests on SQLite, whose limits are per connection: `PRAGMA max_page_count = N` (a full
    /// disk), `PRAGMA query_only = 1` (a read-only one), and back.
    pub async fn execute_on_write_connection(&self, sql: &str) -> Result<()> {
        match self.write_turn().await {
            Some(mut turn) => turn.execute_unprepared(sql).await?,
            None => {
                self.write_db.execute_unprepared(sql).await?;
            }
        }
        Ok(())
    }

    /// This process's turn on the SQLite write connection (first come, first served), with any
    /// transaction its last holder abandoned rolled back; `None` on PostgreSQL, where writers do
    /// not take turns.
    async fn write_turn(&self) -> Option<write_conn::TurnGuard> {
        match &self.write_turn {
            Some(turn) => Some(write_conn::take(turn).await),
            None => None,
        }
    }

    /// SQLite only: `(journal_mode, synchronous)` as every connection of this store reports them:
    /// every connection the read pool may open (all held at once, so the pool opens each) and the
    /// write connection. `synchronous` is SQLite's number (2 = FULL). Empty on PostgreSQL. For the
    /// durability test: an acknowledged write is durable only if every connection is WAL + FULL.
    pub async fn sqlite_pragmas(&self) -> Result<Vec<(String, i64)>> {
        if self.backend() != DbBackend::Sqlite {
            return Ok(Vec::new());
        }
        let unavailable = |e: sea_orm::sqlx::Error| Error::Unavailable(e.to_string());
        let read = self.db.get_sqlite_connection_pool();
        let mut held = Vec::new();
        for _ in 0..read.options().get_max_connections() {
            held.push(read.acquire().await.map_err(unavailable)?);
        }
        let mut turn = self.write_turn().await;
        let mut write = self
            .write_db
            .get_sqlite_connection_pool()
            .acquire()
            .await
            .map_err(unavailable)?;
        let mut out = Vec::with_capacity(held.len() + 1);
        for conn in held.iter_mut().map(|c| &mut **c).chain([&mut *write]) {
            let journal: String = sea_orm::sqlx::query_scalar("PRAGMA journal_mode")
                .fetch_one(&mut *conn)
                .await
                .map_err(unavailable)?;
            let synchronous: i64 = sea_orm::sqlx::query_scalar("PRAGMA synchronous")
                .fetch_one(&mut *conn)
                .await
                .map_err(unavailable)?;
            out.push((journal, synchronous));
        }
        if let Some(turn) = turn.as_mut() {
            out.push(turn.pragmas().await.map_err(unavailable)?);
        }
        Ok(out)
    }

    /// How many parsed workflow versions are kept in memory (at most [`WORKFLOW_CACHE`]).
    pub fn cached_workflow_versions(&self) -> usize {
        self.workflows.lock().map_or(0, |c| c.len())
    }

    /// What the state cache holds now: (bytes, transitions).
    pub fn state_cache_usage(&self) -> (usize, usize) {
        self.states.usage()
    }

    /// Now, by this store's clock, at the precision every backend stores (microseconds).
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Closes the pools.
    pub async fn close(self) -> Result<()> {
        if self.backend() == DbBackend::Sqlite {
            if let Some(mut turn) = self.write_turn().await {
                turn.close().await?;
            }
            self.write_db.close().await?;
        }
        Ok(self.db.close().await?)
    }
}

/// Now, at the precision every backend stores (microseconds), so a reloaded state equals its replay.
pub(crate) fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

impl Store {
    /// The one row `sql` (placeholders from [`ph`]) finds with `values`: from the read pool,
    /// else from the primary (a replica may not have a row just written yet).
    pub(crate) async fn one_row_fresh(
        &self,
        sql: &str,
        values: Vec<sea_orm::Value>,
    ) -> Result<Option<sea_orm::QueryResult>> {
        for db in [&self.db, &self.write_db] {
            let statement = sea_orm::Statement::from_sql_and_values(
                db.get_database_backend(),
                sql,
                values.clone(),
            );
            if let Some(row) = db.query_one_raw(statement).await? {
                return Ok(Some(row));
            }
        }
        Ok(None)
    }
}

/// `t` as sqlx stores a moment in SQLite (RFC 3339, UTC offset, as many fraction digits as it
/// needs): for statements that pass moments inside a JSON parameter, so that the rows they store
/// are the same bytes as the ORM's.
pub(crate) fn sqlite_moment(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false)
}

/// The `n`th (1-based) placeholder of a raw statement: `$n` on PostgreSQL, `?` on SQLite.
pub(crate) fn ph(backend: DbBackend, n: usize) -> String {
    if backend == DbBackend::Postgres {
        format!("${n}")
    } else {
        "?".to_owned()
    }
}
