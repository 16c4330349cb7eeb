//! The SQLite write connection, owned by the store instead of pooled: holding it is this
//! process's write turn, and a write transaction on it costs one round trip to begin.
//!
//! Through a pool, every write transaction took the connection from the pool and gave it back at
//! the end, and sqlx gives a connection back by pinging it first (a spawned task and a round trip
//! to the connection's thread, `sqlx-core` 0.9 `PoolConnection::return_to_pool`); the next
//! `begin` waited for that. On the one writer (group commit, `writer`) this stood between every
//! two batches: `begin` took ~290-410 us of a ~1.8-3 ms batch in scenario 1 (docs/benchmarks.md).
//! Owned, the connection is simply there for whoever holds the turn.
//!
//! A transaction is `BEGIN IMMEDIATE` ... `COMMIT`/`ROLLBACK` sent as statements. One that its
//! holder abandoned (a request cancelled mid-way, a panic) is rolled back by the next holder of
//! the turn before anything else runs on the connection, so nothing half-written is committed.

use std::sync::Arc;

use sea_orm::sqlx::{self, Connection as _, Executor as _, sqlite::SqliteConnection};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, ExecResult, QueryResult, RuntimeErr, Statement};
use sea_query_sqlx::SqlxValues;
use tokio::sync::{Mutex, OwnedMutexGuard};

/// The write connection and whether a transaction may be open on it.
pub(crate) struct Slot {
    /// `None` once the store is closed.
    conn: Option<SqliteConnection>,
    /// A `BEGIN` ran and no `COMMIT` or `ROLLBACK` is known to have ended it.
    open: bool,
}

/// This process's SQLite write turn, with the connection that goes with it.
pub(crate) type Turn = Arc<Mutex<Slot>>;

/// A held turn, from [`take`]: no transaction is open on its connection.
pub(crate) type TurnGuard = OwnedMutexGuard<Slot>;

/// Waits for the turn (first come, first served), then rolls back any transaction its last
/// holder abandoned.
pub(crate) async fn take(turn: &Turn) -> TurnGuard {
    let mut held = turn.clone().lock_owned().await;
    held.settle().await;
    held
}

/// A new turn around `conn`.
pub(crate) fn turn(conn: SqliteConnection) -> Turn {
    Arc::new(Mutex::new(Slot {
        conn: Some(conn),
        open: false,
    }))
}

// As sea-orm reports sqlx's errors (`DbErr::Exec` and `DbErr::Query`), so that the store's
// reading of them (a constraint, a full disk) is the same on this connection as on a pool.
fn sqlx_error_to_exec_err(e: sqlx::Error) -> DbErr {
    DbErr::Exec(RuntimeErr::SqlxError(Arc::new(e)))
}

fn sqlx_error_to_query_err(e: sqlx::Error) -> DbErr {
    DbErr::Query(RuntimeErr::SqlxError(Arc::new(e)))
}

fn closed() -> DbErr {
    DbErr::Conn(RuntimeErr::Internal(
        "the SQLite write connection is closed (the store was closed)".into(),
    ))
}

impl Slot {
    fn conn(&mut self) -> Result<&mut SqliteConnection, DbErr> {
        self.conn.as_mut().ok_or_else(closed)
    }

    /// Rolls back a transaction its holder abandoned; a no-op when none is open.
    async fn settle(&mut self) {
        if !self.open {
            return;
        }
        self.open = false;
        if let Some(conn) = self.conn.as_mut()
            && let Err(e) = conn.execute("ROLLBACK").await
        {
            // "no transaction is active": it had ended (a COMMIT whose caller went away).
            tracing::debug!(error = %e, "rollback of an abandoned write transaction");
        }
    }

    /// Runs `sql` (no parameters) outside any transaction.
    pub(crate) async fn execute_unprepared(&mut self, sql: &str) -> Result<(), DbErr> {
        self.conn()?
            .execute(sqlx::AssertSqlSafe(sql.to_owned()))
            .await
            .map_err(sqlx_error_to_exec_err)?;
        Ok(())
    }

    /// `(journal_mode, synchronous)` of the connection, for the durability test.
    pub(crate) async fn pragmas(&mut self) -> Result<(String, i64), sqlx::Error> {
        let conn = self.conn.as_mut().ok_or(sqlx::Error::PoolClosed)?;
        let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&mut *conn)
            .await?;
        let synchronous: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&mut *conn)
            .await?;
        Ok((journal, synchronous))
    }

    /// Closes the connection (later turns get an error).
    pub(crate) async fn close(&mut self) -> Result<(), DbErr> {
        if let Some(conn) = self.conn.take() {
            conn.close()
                .await
                .map_err(|e| DbErr::Conn(RuntimeErr::SqlxError(Arc::new(e))))?;
        }
        Ok(())
    }
}

/// A write transaction on the owned connection, holding the turn until it ends. Dropped without
/// [`OwnedTxn::commit`] or [`OwnedTxn::rollback`], it is rolled back by the turn's next holder.
pub(crate) struct OwnedTxn {
    // Statements take `&self` (sea-orm's `ConnectionTrait`); the lock is never contended, a
    // transaction's statements run one after another.
    slot: Mutex<TurnGuard>,
}

impl OwnedTxn {
    /// `BEGIN IMMEDIATE` on the turn's connection: the database's write lock is taken up front.
    pub(crate) async fn begin(mut turn: TurnGuard) -> Result<Self, DbErr> {
        turn.conn()?
            .execute("BEGIN IMMEDIATE")
            .await
            .map_err(sqlx_error_to_exec_err)?;
        turn.open = true;
        Ok(Self {
            slot: Mutex::new(turn),
        })
    }

    pub(crate) async fn commit(self) -> Result<(), DbErr> {
        self.end("COMMIT").await
    }

    pub(crate) async fn rollback(self) -> Result<(), DbErr> {
        self.end("ROLLBACK").await
    }

    async fn end(self, sql: &'static str) -> Result<(), DbErr> {
        let mut slot = self.slot.into_inner();
        let ended = slot
            .conn()?
            .execute(sql)
            .await
            .map_err(sqlx_error_to_exec_err);
        match ended {
            Ok(_) => slot.open = false,
            // A failed COMMIT can leave the transaction open (SQLITE_BUSY): undo it now rather
            // than keep the database's write lock until the next turn.
            Err(_) => slot.settle().await,
        }
        ended.map(|_| ())
    }
}

fn query(statement: &Statement) -> sqlx::query::Query<'_, sqlx::Sqlite, SqlxValues> {
    let values = statement
        .values
        .clone()
        .unwrap_or(sea_orm::Values(Vec::new()));
    sqlx::query_with(
        sqlx::AssertSqlSafe(statement.sql.as_str()),
        SqlxValues(values),
    )
}

#[sea_orm::prelude::async_trait::async_trait]
impl ConnectionTrait for OwnedTxn {
    fn get_database_backend(&self) -> DbBackend {
        DbBackend::Sqlite
    }

    async fn execute_raw(&self, statement: Statement) -> Result<ExecResult, DbErr> {
        let mut slot = self.slot.lock().await;
        let result = query(&statement)
            .execute(slot.conn()?)
            .await
            .map_err(sqlx_error_to_exec_err)?;
        Ok(result.into())
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        let mut slot = self.slot.lock().await;
        let result = slot
            .conn()?
            .execute(sqlx::AssertSqlSafe(sql.to_owned()))
            .await
            .map_err(sqlx_error_to_exec_err)?;
        Ok(result.into())
    }

    async fn query_one_raw(&self, statement: Statement) -> Result<Option<QueryResult>, DbErr> {
        let mut slot = self.slot.lock().await;
        match query(&statement).fetch_optional(slot.conn()?).await {
            Ok(row) => Ok(row.map(Into::into)),
            Err(e) => Err(sqlx_error_to_query_err(e)),
        }
    }

    async fn query_all_raw(&self, statement: Statement) -> Result<Vec<QueryResult>, DbErr> {
        let mut slot = self.slot.lock().await;
        let rows = query(&statement)
            .fetch_all(slot.conn()?)
            .await
            .map_err(sqlx_error_to_query_err)?;
        Ok(rows.into_iter().map(Into::into).collect())
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::{ConnectionTrait, DbBackend, Statement};

    async fn names(store: &crate::Store) -> Vec<String> {
        store
            .connection()
            .query_all_raw(Statement::from_string(
                DbBackend::Sqlite,
                "SELECT name FROM pending_backfills WHERE name LIKE 'test-%' ORDER BY name",
            ))
            .await
            .unwrap()
            .iter()
            .map(|row| row.try_get_by_index::<String>(0).unwrap())
            .collect()
    }

    fn insert(name: &str) -> Statement {
        Statement::from_string(
            DbBackend::Sqlite,
            format!("INSERT INTO pending_backfills (name) VALUES ('{name}')"),
        )
    }

    /// A transaction dropped without commit (a request cancelled mid-way) leaves nothing, and
    /// the next write turn starts cleanly; a committed one is there.
    #[tokio::test]
    async fn an_abandoned_write_transaction_is_rolled_back_by_the_next_turn() {
        let dir = std::env::temp_dir().join(format!(
            "opsgate-write-conn-{}",
            uuid::Uuid::now_v7().simple()
        ));
        let options = crate::ConnectOptions::new(format!("sqlite://{}/x.db", dir.display()));
        let store = crate::Store::connect(options).await.unwrap();

        let abandoned = store.begin_write().await.unwrap();
        abandoned
            .execute_raw(insert("test-abandoned"))
            .await
            .unwrap();
        drop(abandoned);

        let txn = store.begin_write().await.unwrap();
        txn.execute_raw(insert("test-committed")).await.unwrap();
        txn.commit().await.unwrap();
        assert_eq!(names(&store).await, ["test-committed"]);

        let rolled_back = store.begin_write().await.unwrap();
        rolled_back
            .execute_raw(insert("test-rolled-back"))
            .await
            .unwrap();
        rolled_back.rollback().await.unwrap();
        store
            .execute_on_write_connection("PRAGMA user_version = 0")
            .await
            .unwrap();
        assert_eq!(names(&store).await, ["test-committed"]);

        store.close().await.unwrap();
        let _ = std::fs::remove_dir_all(dir);
    }
}
