//! Opening the database: SQLite file creation and pragmas, PostgreSQL pool, migrations at start-up.

use std::sync::Arc;

use chrono::{DateTime, SubsecRound, Utc};
use std::time::{Duration, Instant};

use opsgate_migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectionTrait, Database, DbBackend, TransactionTrait};

use crate::cache::StateCache;
use crate::writer::Writer;
use crate::{Error, Result, Store};

/// Where `opsgate serve` keeps its data when no URL is given.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/opsgate.db";

/// How to open the store.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// `sqlite://PATH` (created with its directory if missing) or `postgres://...`.
    pub url: String,
    /// Pool size; SQLite writes are serialised by the database whatever this is.
    pub max_connections: u32,
    /// How long a request waits for a connection (and SQLite for its write lock).
    pub busy_timeout: Duration,
    /// Bytes of decoded transition states kept in memory (0: none).
    pub state_cache_bytes: usize,
    /// SQLite only: take the database's lock file (`PATH.lock`) for as long as the store lives, so
    /// that no second server writes the same file, and serve reads from the state cache. A second
    /// exclusive store on the same file waits up to `busy_timeout`, then fails. PostgreSQL ignores
    /// it (replicas share the database and check the cache against the stored `seq`).
    pub exclusive: bool,
    /// Where decisions read the time (a waiver's end, a delegation's dates).
    pub clock: Clock,
    /// Store each write's notices in the notification outbox (when channels are configured).
    pub notifications: bool,
    /// Keep the people index (`/me`, a person's board) with each start and change of people;
    /// on by default. Benchmarks turn it off to measure the write path without it.
    pub people_index: bool,
    /// Add a start's service to the catalog when it is not there (with its event); on by
    /// default. Benchmarks turn it off to measure the write path without it.
    pub catalog: bool,
}

/// Where the store reads the time: the system clock, or one a test controls.
#[derive(Clone, Default)]
pub struct Clock(Option<Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>>);

impl Clock {
    /// A clock that asks `now` (tests move time with it).
    pub fn from_fn(now: impl Fn() -> DateTime<Utc> + Send + Sync + 'static) -> Self {
        Self(Some(Arc::new(now)))
    }

    /// Now, truncated to microseconds (what every backend stores, so a reloaded state equals
    /// its replay).
    pub fn now(&self) -> DateTime<Utc> {
        self.0
            .as_ref()
            .map_or_else(Utc::now, |now| now())
            .trunc_subsecs(6)
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Clock(test)"
        } else {
            "Clock(system)"
        })
    }
}

impl ConnectOptions {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            max_connections: 16,
            busy_timeout: Duration::from_secs(5),
            state_cache_bytes: crate::DEFAULT_STATE_CACHE_MIB * 1024 * 1024,
            exclusive: false,
            clock: Clock::default(),
            notifications: false,
            people_index: true,
            catalog: true,
        }
    }
}

/// The pragmas of every SQLite connection, with its `synchronous` level (sea-orm keeps one such
/// function per options, so each connection's must be whole).
fn sqlite_options(
    busy: Duration,
    synchronous: SqliteSynchronous,
) -> impl Fn(SqliteConnectOptions) -> SqliteConnectOptions + Send + Sync + 'static {
    move |o| {
        o.create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(synchronous)
            .busy_timeout(busy)
            .foreign_keys(true)
    }
}

impl Store {
    /// Opens (creating if needed) the database and applies pending migrations.
    pub async fn connect(options: ConnectOptions) -> Result<Self> {
        let url = options.url.trim();
        check_url(url)?;
        let mut lock = None;
        let mut opts = sea_orm::ConnectOptions::new(url.to_owned());
        opts.max_connections(options.max_connections)
            .acquire_timeout(options.busy_timeout)
            .sqlx_logging(false);
        if let Some(path) = sqlite_path(url) {
            if let Some(dir) = std::path::Path::new(path).parent()
                && !dir.as_os_str().is_empty()
            {
                std::fs::create_dir_all(dir).map_err(|e| {
                    Error::Unavailable(format!("cannot create directory {}: {e}", dir.display()))
                })?;
            }
            if options.exclusive {
                lock = Some(Arc::new(lock_file(path, options.busy_timeout).await?));
            }
            // A local file does not drop connections: no ping (a round trip to the connection's
            // worker thread) before every query.
            opts.test_before_acquire(false);
            opts.map_sqlx_sqlite_opts(sqlite_options(
                options.busy_timeout,
                // Durable commits: an acknowledged write survives power loss.
                SqliteSynchronous::Full,
            ));
        }
        let sqlite = url.starts_with("sqlite:");
        let (db, write_db, relaxed_db) = if sqlite {
            let mut one = opts.clone();
            one.max_connections(1).min_connections(1);
            let write_db = Database::connect(one.clone()).await?;
            migrate(&write_db).await?;
            // The options as a whole: sea-orm keeps one function, a second call replaces it.
            one.map_sqlx_sqlite_opts(sqlite_options(
                options.busy_timeout,
                SqliteSynchronous::Normal,
            ));
            let relaxed_db = Database::connect(one).await?;
            (Database::connect(opts).await?, write_db, relaxed_db)
        } else {
            let db = Database::connect(opts).await?;
            migrate(&db).await?;
            (db.clone(), db.clone(), db)
        };
        // SQLite's write transactions run on a connection of their own, outside any pool
        // (`write_conn`), with the write connection's pragmas.
        let write_turn = if sqlite {
            use sea_orm::sqlx::ConnectOptions as _;
            let conn = sqlite_options(options.busy_timeout, SqliteSynchronous::Full)(
                url.parse::<SqliteConnectOptions>()
                    .map_err(|e| Error::Config(format!("invalid database url: {e}")))?,
            )
            .disable_statement_logging()
            .connect()
            .await
            .map_err(|e| Error::Unavailable(format!("cannot open the write connection: {e}")))?;
            Some(crate::write_conn::turn(conn))
        } else {
            None
        };
        let mut store = Store {
            db,
            write_db,
            relaxed_db,
            workflows: Arc::new(std::sync::Mutex::new(lru::LruCache::new(
                std::num::NonZeroUsize::MIN.saturating_add(crate::WORKFLOW_CACHE - 1),
            ))),
            write_turn,
            states: Arc::new(StateCache::new(options.state_cache_bytes)),
            exclusive: lock.is_some(),
            writer: None,
            _lock: lock,
            clock: options.clock.clone(),
            batches: Arc::default(),
            notify: options.notifications,
            people_index: options.people_index,
            catalog: options.catalog,
            outbox_signal: Arc::new(tokio::sync::watch::channel(0).0),
            changed: Arc::new(tokio::sync::broadcast::channel(crate::watch::CAPACITY).0),
            known_services: Arc::default(),
            write_routes: Arc::default(),
            settlements: Arc::default(),
        };
        // Before any write: transitions from before the people index get their rows (a
        // read-only database keeps what it has; the next start tries again).
        if store.people_index
            && let Err(e) = store.fill_people_index().await
        {
            tracing::warn!(error = %e, "the people index could not be filled: /me may miss older transitions");
        }
        // Before any write, too: a write sets only the stall columns it changes.
        if let Err(e) = store.fill_stall_columns().await {
            tracing::warn!(error = %e, "the stall columns could not be filled: the stalled list keeps the transitions lacking them as candidates");
        }
        if sqlite {
            store.writer = Some(Writer::spawn(store.clone()));
        }
        tracing::debug!(backend = ?store.backend(), "database ready");
        debug_assert!(matches!(
            store.backend(),
            DbBackend::Sqlite | DbBackend::Postgres
        ));
        Ok(store)
    }
}

/// Refuses a database URL that cannot work, before connecting: an unsupported scheme, or one
/// the driver cannot parse (a bad port, a bad option). A configuration error, not a retryable
/// fault; the message repeats the URL without its password.
fn check_url(url: &str) -> Result<()> {
    use std::str::FromStr as _;
    let shown = redact(url);
    let invalid =
        |e: &dyn std::fmt::Display| Error::Config(format!("invalid database url '{shown}': {e}"));
    if url.starts_with("sqlite:") {
        sea_orm::sqlx::sqlite::SqliteConnectOptions::from_str(url).map_err(|e| invalid(&e))?;
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        sea_orm::sqlx::postgres::PgConnectOptions::from_str(url).map_err(|e| invalid(&e))?;
    } else {
        return Err(Error::Config(format!(
            "unsupported database url '{shown}': use sqlite://PATH or postgres://USER@HOST/DB"
        )));
    }
    Ok(())
}

/// `url` with any password replaced by `***`.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((userinfo, host)) = rest.split_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

/// Key of the PostgreSQL advisory lock that serialises migrations across replicas.
const MIGRATION_LOCK: i64 = 0x006f_7073_6761_7465; // "opsgate" in ASCII

/// Applies pending migrations, all of them or none: they run in one transaction on both backends
/// (DDL is transactional in SQLite and PostgreSQL), so a failure or a crash part of the way
/// leaves the schema as the previous version left it, and that version's server still starts
/// on it. sea-orm would run SQLite's migrations outside any transaction, each recorded after it
/// ran: a crash between the two left a migration applied but unrecorded, and every later start
/// failed on it. On PostgreSQL, replicas starting together take turns: the transaction holds a
/// transaction-scoped advisory lock, so the second replica finds the migrations applied.
async fn migrate(db: &sea_orm::DatabaseConnection) -> Result<()> {
    let txn = db.begin().await?;
    if db.get_database_backend() == DbBackend::Postgres {
        txn.execute_unprepared(&format!("SELECT pg_advisory_xact_lock({MIGRATION_LOCK})"))
            .await?;
    }
    Migrator::up(&txn, None).await?;
    txn.commit().await?;
    Ok(())
}

/// Takes the exclusive lock on `DB.lock` beside the SQLite database, waiting up to `wait` for a
/// server that is stopping to let go of it.
async fn lock_file(db_path: &str, wait: Duration) -> Result<std::fs::File> {
    let path = format!("{db_path}.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::Unavailable(format!("cannot open lock file {path}: {e}")))?;
    let deadline = Instant::now() + wait;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(Error::Unavailable(format!(
                    "database {db_path} is in use by another opsgate server (it holds {path}); \
                     stop that server or give this one another --database-url"
                )));
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(Error::Unavailable(format!("cannot lock {path}: {e}")));
            }
        }
    }
}

/// The file path of a `sqlite:` URL, without its query string; `None` for other schemes and in-memory databases.
fn sqlite_path(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && path != ":memory:").then_some(path)
}

#[cfg(test)]
mod tests {
    use super::sqlite_path;

    #[test]
    fn bad_urls_are_configuration_errors_without_the_password() {
        for (url, says) in [
            ("mysql://x/y", "unsupported database url 'mysql://x/y'"),
            (
                "postgres://u:secret@127.0.0.1:notaport/db",
                "invalid database url 'postgres://u:***@127.0.0.1:notaport/db'",
            ),
        ] {
            match super::check_url(url) {
                Err(crate::Error::Config(m)) => {
                    assert!(m.starts_with(says), "{m}");
                    assert!(!m.contains("secret"), "{m}");
                }
                other => panic!("{url}: {other:?}"),
            }
        }
        assert!(super::check_url("sqlite://data/opsgate.db").is_ok());
        assert!(super::check_url("postgres://postgres@127.0.0.1:5432/test").is_ok());
    }

    #[test]
    fn sqlite_paths() {
        assert_eq!(
            sqlite_path("sqlite://data/opsgate.db"),
            Some("data/opsgate.db")
        );
        assert_eq!(
            sqlite_path("sqlite:///tmp/x.db?mode=rwc"),
            Some("/tmp/x.db")
        );
        assert_eq!(sqlite_path("sqlite::memory:"), None);
        assert_eq!(sqlite_path("postgres://x@y/z"), None);
    }

    /// A migration that fails part of the way leaves nothing of the migrations before it in
    /// that run: the database is as it was, and starts once the cause is gone.
    #[tokio::test]
    async fn a_failing_migration_leaves_the_database_as_it_was() {
        use sea_orm::{ConnectionTrait, Database, DbBackend, Statement};
        let dir =
            std::env::temp_dir().join(format!("opsgate-migrate-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}/x.db?mode=rwc", dir.display());
        let tables = |db: sea_orm::DatabaseConnection| async move {
            let rows = db
                .query_all_raw(Statement::from_string(
                    DbBackend::Sqlite,
                    "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name",
                ))
                .await
                .unwrap();
            rows.iter()
                .map(|r| r.try_get_by_index::<String>(0).unwrap())
                .collect::<Vec<_>>()
        };
        // A table in the way of the eleventh migration (`people`): the ten before it succeed.
        let db = Database::connect(&url).await.unwrap();
        db.execute_unprepared("CREATE TABLE people (x INTEGER)")
            .await
            .unwrap();
        db.close().await.unwrap();
        let failed = crate::Store::connect(super::ConnectOptions::new(url.clone())).await;
        assert!(
            failed.is_err(),
            "the migrations should fail on the table in the way"
        );
        let db = Database::connect(&url).await.unwrap();
        assert_eq!(tables(db.clone()).await, ["people"]);
        // With it gone, they all apply.
        db.execute_unprepared("DROP TABLE people").await.unwrap();
        db.close().await.unwrap();
        let store = crate::Store::connect(super::ConnectOptions::new(url.clone()))
            .await
            .unwrap();
        let applied = tables(store.write_db.clone()).await;
        for table in ["people", "seaql_migrations", "transitions", "deliveries"] {
            assert!(applied.iter().any(|t| t == table), "{table}: {applied:?}");
        }
        drop(store);
        let _ = std::fs::remove_dir_all(dir);
    }

    /// The bookkeeping connection once lost every pragma but `synchronous` (sea-orm keeps one
    /// options function; a second call replaced the first), and with them the busy timeout.
    #[tokio::test]
    async fn every_sqlite_connection_has_the_configured_pragmas() {
        use sea_orm::{ConnectionTrait, DbBackend, Statement};
        let dir =
            std::env::temp_dir().join(format!("opsgate-pragmas-{}", uuid::Uuid::now_v7().simple()));
        let mut options = super::ConnectOptions::new(format!("sqlite://{}/x.db", dir.display()));
        options.busy_timeout = std::time::Duration::from_millis(1234);
        let store = crate::Store::connect(options).await.unwrap();
        let pragma = |conn: &sea_orm::DatabaseConnection, name: &str| {
            let conn = conn.clone();
            let sql = format!("PRAGMA {name}");
            async move {
                let row = conn
                    .query_one_raw(Statement::from_string(DbBackend::Sqlite, sql))
                    .await
                    .unwrap()
                    .unwrap();
                row.try_get_by_index::<i64>(0).unwrap()
            }
        };
        // synchronous: FULL (2) for the writes, NORMAL (1) for the bookkeeping.
        for (conn, synchronous) in [(&store.write_db, 2), (&store.relaxed_db, 1), (&store.db, 2)] {
            assert_eq!(pragma(conn, "busy_timeout").await, 1234);
            assert_eq!(pragma(conn, "foreign_keys").await, 1);
            assert_eq!(pragma(conn, "synchronous").await, synchronous);
        }
        // The write turn's own connection, where write transactions run: durable commits.
        let txn = store.begin_write().await.unwrap();
        assert!(matches!(txn, crate::WriteTxn::Owned(_)));
        for (name, value) in [
            ("busy_timeout", 1234),
            ("foreign_keys", 1),
            ("synchronous", 2),
        ] {
            let row = txn
                .query_one_raw(Statement::from_string(
                    DbBackend::Sqlite,
                    format!("PRAGMA {name}"),
                ))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(row.try_get_by_index::<i64>(0).unwrap(), value, "{name}");
        }
        txn.rollback().await.unwrap();
        drop(store);
        let _ = std::fs::remove_dir_all(dir);
    }
}
