//! The SQLite write connection, owned by the store instead of pooled: holding it is this
//! process's write turn, and a write transaction on it costs no round trip of its own.
//!
//! Through a pool, every write transaction took the connection from the pool and gave it back at
//! the end, and sqlx gives a connection back by pinging it first (a spawned task and a round trip
//! to the connection's thread, `sqlx-core` 0.9 `PoolConnection::return_to_pool`); the next
//! `begin` waited for that. On the one writer (group commit, `writer`) this stood between every
//! two batches: `begin` took ~290-410 us of a ~1.8-3 ms batch in scenario 1 (docs/benchmarks.md).
//! Owned, the connection is simply there for whoever holds the turn.
//!
//! A transaction is `BEGIN IMMEDIATE` ... `COMMIT`/`ROLLBACK` sent as statements, and costs no
//! round trip of its own at either end: `BEGIN IMMEDIATE` goes with the transaction's first
//! query, and [`OwnedTxn::commit_with`] sends the last statements with the `COMMIT` (each round
//! trip is a hand-over to the connection's thread and back, ~70-150 us under load; a group-commit
//! batch made five). A first statement that is not a query has its `BEGIN` sent alone: SQLite
//! reports a statement's changes as those of the last `INSERT`, `UPDATE` or `DELETE` it ran,
//! which for a `BEGIN` are the previous transaction's, and sqlx sums them over a string's
//! statements (a query's rows are its own). A transaction its holder abandoned (a request cancelled
//! mid-way, a panic) is rolled back by the next holder of the turn before anything else runs on
//! the connection, so nothing half-written is committed.

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
    slot: Mutex<Held>,
}

struct Held {
    turn: TurnGuard,
    /// `BEGIN IMMEDIATE` was sent (or goes with the statement being sent).
    begun: bool,
}

const BEGIN: &str = "BEGIN IMMEDIATE";

impl Held {
    /// The connection with the transaction begun on it: `BEGIN IMMEDIATE` sent now if it was
    /// not yet.
    async fn begun(&mut self) -> Result<&mut SqliteConnection, DbErr> {
        if !self.begun {
            self.mark_begun();
            self.turn
                .conn()?
                .execute(BEGIN)
                .await
                .map_err(sqlx_error_to_exec_err)?;
        }
        self.turn.conn()
    }

    /// `sql`, preceded by `BEGIN IMMEDIATE` when nothing began the transaction yet.
    fn with_begin(&mut self, sql: &str) -> String {
        if self.begun {
            sql.to_owned()
        } else {
            self.mark_begun();
            format!("{BEGIN};\n{sql}")
        }
    }

    /// From here a transaction may be open on the connection (even if what began it fails: the
    /// next turn's `settle` rolls back whatever is there).
    fn mark_begun(&mut self) {
        self.begun = true;
        self.turn.open = true;
    }

    /// Sends `sql`, which ends the transaction (with a `COMMIT` or `ROLLBACK`). When it fails
    /// (a statement before the `COMMIT`, or the `COMMIT` itself: SQLITE_BUSY, a full disk), what
    /// is there is rolled back now rather than keep the database's write lock until the next turn.
    async fn finish(mut self, sql: &str, values: Option<sea_orm::Values>) -> Result<(), DbErr> {
        let ended = run(sql, values)
            .execute(self.turn.conn()?)
            .await
            .map_err(sqlx_error_to_exec_err);
        match ended {
            Ok(_) => self.turn.open = false,
            Err(_) => self.turn.settle().await,
        }
        ended.map(|_| ())
    }
}

impl OwnedTxn {
    /// A transaction on the turn's connection. Nothing is sent yet: `BEGIN IMMEDIATE` (the
    /// database's write lock, taken up front) goes with the first statement.
    pub(crate) fn begin(turn: TurnGuard) -> Self {
        Self {
            slot: Mutex::new(Held { turn, begun: false }),
        }
    }

    pub(crate) async fn commit(self) -> Result<(), DbErr> {
        self.end("COMMIT").await
    }

    /// Runs `last` (several statements at once, their changes not counted) and commits, in one
    /// round trip. Nothing of the transaction is stored when it fails.
    pub(crate) async fn commit_with(self, last: Statement) -> Result<(), DbErr> {
        let mut held = self.slot.into_inner();
        let sql = format!("{};\nCOMMIT", held.with_begin(&last.sql));
        held.finish(&sql, last.values).await
    }

    pub(crate) async fn rollback(self) -> Result<(), DbErr> {
        self.end("ROLLBACK").await
    }

    async fn end(self, sql: &'static str) -> Result<(), DbErr> {
        let held = self.slot.into_inner();
        if !held.begun {
            // Nothing was sent: there is nothing to end.
            return Ok(());
        }
        held.finish(sql, None).await
    }
}

/// `statements` as one statement of several, for SQLite (which binds each statement's `?`s from
/// the next values).
pub(crate) fn joined(statements: Vec<Statement>) -> Statement {
    let mut sql = String::new();
    let mut values = Vec::new();
    for statement in statements {
        if !sql.is_empty() {
            sql.push_str(";\n");
        }
        sql.push_str(&statement.sql);
        if let Some(v) = statement.values {
            values.extend(v.0);
        }
    }
    Statement::from_sql_and_values(DbBackend::Sqlite, sql, values)
}

fn run(
    sql: &str,
    values: Option<sea_orm::Values>,
) -> sqlx::query::Query<'_, sqlx::Sqlite, SqlxValues> {
    sqlx::query_with(
        sqlx::AssertSqlSafe(sql),
        SqlxValues(values.unwrap_or(sea_orm::Values(Vec::new()))),
    )
}

#[sea_orm::prelude::async_trait::async_trait]
impl ConnectionTrait for OwnedTxn {
    fn get_database_backend(&self) -> DbBackend {
        DbBackend::Sqlite
    }

    async fn execute_raw(&self, statement: Statement) -> Result<ExecResult, DbErr> {
        let mut held = self.slot.lock().await;
        let result = run(&statement.sql, statement.values)
            .execute(held.begun().await?)
            .await
            .map_err(sqlx_error_to_exec_err)?;
        Ok(result.into())
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        let mut held = self.slot.lock().await;
        let result = held
            .begun()
            .await?
            .execute(sqlx::AssertSqlSafe(sql.to_owned()))
            .await
            .map_err(sqlx_error_to_exec_err)?;
        Ok(result.into())
    }

    async fn query_one_raw(&self, statement: Statement) -> Result<Option<QueryResult>, DbErr> {
        let mut held = self.slot.lock().await;
        let sql = held.with_begin(&statement.sql);
        match run(&sql, statement.values)
            .fetch_optional(held.turn.conn()?)
            .await
        {
            Ok(row) => Ok(row.map(Into::into)),
            Err(e) => Err(sqlx_error_to_query_err(e)),
        }
    }

    async fn query_all_raw(&self, statement: Statement) -> Result<Vec<QueryResult>, DbErr> {
        let mut held = self.slot.lock().await;
        let sql = held.with_begin(&statement.sql);
        let rows = run(&sql, statement.values)
            .fetch_all(held.turn.conn()?)
            .await
            .map_err(sqlx_error_to_query_err)?;
        Ok(rows.into_iter().map(Into::into).collect())
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::sqlx::{self, ConnectOptions as _, Connection as _};
    use sea_orm::{ConnectionTrait, DbBackend, Statement};

    async fn names(store: &crate::Store) -> Vec<String> {
        store
            .connection()
            .query_all_raw(sql(
                "SELECT name FROM pending_backfills WHERE name LIKE 'test-%' ORDER BY name",
            ))
            .await
            .unwrap()
            .iter()
            .map(|row| row.try_get_by_index::<String>(0).unwrap())
            .collect()
    }

    fn sql(text: &str) -> Statement {
        Statement::from_string(DbBackend::Sqlite, text)
    }

    fn insert(name: &str) -> Statement {
        sql(&format!(
            "INSERT INTO pending_backfills (name) VALUES ('{name}')"
        ))
    }

    /// A transaction dropped without commit (a request cancelled mid-way) leaves nothing, and
    /// the next write turn starts cleanly; a committed one is there.
    #[tokio::test]
    async fn an_abandoned_write_transaction_is_rolled_back_by_the_next_turn() {
        let (store, dir) = temp_store("abandoned").await;
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

        done(store, dir).await;
    }

    async fn done(store: crate::Store, dir: std::path::PathBuf) {
        store.close().await.unwrap();
        let _ = std::fs::remove_dir_all(dir);
    }

    async fn temp_store(name: &str) -> (crate::Store, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!(
            "opsgate-write-conn-{name}-{}",
            uuid::Uuid::now_v7().simple()
        ));
        let options = crate::ConnectOptions::new(format!("sqlite://{}/x.db", dir.display()));
        (crate::Store::connect(options).await.unwrap(), dir)
    }

    /// `BEGIN IMMEDIATE` rides with a transaction's first query: the write lock is held from that
    /// read on (another connection cannot write until the commit), and what was read is what the
    /// transaction writes on.
    #[tokio::test]
    async fn the_first_query_of_a_write_transaction_takes_the_write_lock() {
        let (store, dir) = temp_store("lock").await;
        let txn = store.begin_write().await.unwrap();
        let rows = txn
            .query_all_raw(sql("SELECT count(*) FROM pending_backfills"))
            .await
            .unwrap();
        assert_eq!(rows.len(), 1);

        let mut other = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(dir.join("x.db"))
            .busy_timeout(std::time::Duration::from_millis(100))
            .connect()
            .await
            .unwrap();
        let other_writes = async |other: &mut sqlx::SqliteConnection| {
            sqlx::query("INSERT INTO pending_backfills (name) VALUES ('test-other')")
                .execute(other)
                .await
        };
        let Err(e) = other_writes(&mut other).await else {
            panic!("another connection wrote while the transaction held the write lock");
        };
        assert!(e.to_string().contains("locked"), "{e}");

        txn.execute_raw(insert("test-mine")).await.unwrap();
        txn.commit().await.unwrap();
        other_writes(&mut other).await.unwrap();
        other.close().await.unwrap();
        assert_eq!(names(&store).await, ["test-mine", "test-other"]);
        done(store, dir).await;
    }

    /// A transaction's first statement that is not a query reports its own changes, not those of
    /// the previous transaction's last statement (which SQLite reports for a `BEGIN`).
    #[tokio::test]
    async fn a_first_update_counts_only_its_own_changes() {
        let (store, dir) = temp_store("changes").await;
        let txn = store.begin_write().await.unwrap();
        for name in ["test-a", "test-b", "test-c"] {
            txn.execute_raw(insert(name)).await.unwrap();
        }
        txn.execute_raw(sql(
            "UPDATE pending_backfills SET name = name || '-x' WHERE name LIKE 'test-%'",
        ))
        .await
        .unwrap();
        txn.commit().await.unwrap();

        let txn = store.begin_write().await.unwrap();
        let changed = txn
            .execute_raw(sql("DELETE FROM pending_backfills WHERE name = 'test-a-x'"))
            .await
            .unwrap();
        assert_eq!(changed.rows_affected(), 1);
        txn.commit().await.unwrap();
        done(store, dir).await;
    }

    /// The last statements sent with the commit: all stored together, or, when one fails,
    /// nothing of the transaction (not the statements before it in the string, not the ones
    /// before it in the transaction), and the next turn writes normally.
    #[tokio::test]
    async fn statements_sent_with_the_commit_are_stored_whole_or_not_at_all() {
        let (store, dir) = temp_store("commit-with").await;
        let txn = store.begin_write().await.unwrap();
        txn.execute_raw(insert("test-first")).await.unwrap();
        let failed = txn
            .commit_with(vec![
                insert("test-second"),
                sql("INSERT INTO no_such_table VALUES (1)"),
            ])
            .await;
        assert!(failed.is_err(), "{failed:?}");
        assert_eq!(names(&store).await, Vec::<String>::new());

        let txn = store.begin_write().await.unwrap();
        txn.execute_raw(insert("test-first")).await.unwrap();
        txn.commit_with(vec![insert("test-second"), insert("test-third")])
            .await
            .unwrap();
        // With nothing sent before, the BEGIN goes with them.
        let txn = store.begin_write().await.unwrap();
        txn.commit_with(vec![insert("test-fourth")]).await.unwrap();
        assert_eq!(
            names(&store).await,
            ["test-first", "test-fourth", "test-second", "test-third"]
        );
        done(store, dir).await;
    }
}
