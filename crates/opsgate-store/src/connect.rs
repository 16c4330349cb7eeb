//! Opening the database: SQLite file creation and pragmas, PostgreSQL pool, migrations at start-up.

use std::time::Duration;

use opsgate_migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectionTrait, Database, DbBackend, TransactionTrait};

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
}

impl ConnectOptions {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            max_connections: 16,
            busy_timeout: Duration::from_secs(5),
        }
    }
}

impl Store {
    /// Opens (creating if needed) the database and applies pending migrations.
    pub async fn connect(options: ConnectOptions) -> Result<Self> {
        let url = options.url.trim();
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
            let busy = options.busy_timeout;
            opts.map_sqlx_sqlite_opts(move |o| {
                o.create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    // Durable commits: an acknowledged write survives power loss.
                    .synchronous(SqliteSynchronous::Full)
                    .busy_timeout(busy)
                    .foreign_keys(true)
            });
        } else if !url.starts_with("postgres://") && !url.starts_with("postgresql://") {
            return Err(Error::Unavailable(format!(
                "unsupported database url '{url}': use sqlite://PATH or postgres://USER@HOST/DB"
            )));
        }
        let db = Database::connect(opts).await?;
        migrate(&db).await?;
        let write_turn = (db.get_database_backend() == DbBackend::Sqlite)
            .then(|| std::sync::Arc::new(tokio::sync::Mutex::new(())));
        let store = Store {
            db,
            workflows: Default::default(),
            write_turn,
        };
        tracing::debug!(backend = ?store.backend(), "database ready");
        debug_assert!(matches!(
            store.backend(),
            DbBackend::Sqlite | DbBackend::Postgres
        ));
        Ok(store)
    }
}

/// Key of the PostgreSQL advisory lock that serialises migrations across replicas.
const MIGRATION_LOCK: i64 = 0x006f_7073_6761_7465; // "opsgate" in ASCII

/// Applies pending migrations. On PostgreSQL, replicas starting together take turns: the
/// migrations run in one transaction holding a transaction-scoped advisory lock (DDL is
/// transactional there), so the second replica finds them applied.
async fn migrate(db: &sea_orm::DatabaseConnection) -> Result<()> {
    if db.get_database_backend() != DbBackend::Postgres {
        Migrator::up(db, None).await?;
        return Ok(());
    }
    let txn = db.begin().await?;
    txn.execute_unprepared(&format!("SELECT pg_advisory_xact_lock({MIGRATION_LOCK})"))
        .await?;
    Migrator::up(&txn, None).await?;
    txn.commit().await?;
    Ok(())
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
}
