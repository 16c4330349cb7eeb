//! `node_states` on SQLite as a `WITHOUT ROWID` table keyed by `(transition_id, node_id)`: a
//! transition's node rows sit together in the key's order instead of where each was first
//! inserted, and the separate index of the primary key goes (the table is that index). A write
//! changes a few nodes of one transition; as a rowid table their rows had spread over several
//! pages as they grew, each page written to the WAL. PostgreSQL keeps its table (nothing to gain
//! there: its heap is not ordered by a key either way).
//!
//! The table is rebuilt from its own `CREATE` statement (same columns, types and constraints)
//! with `WITHOUT ROWID` added, and the rows copied.

use sea_orm::{ConnectionTrait, DbBackend, Statement};
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Rebuilds `node_states` from its stored definition, changed by `change`.
async fn rebuild(
    manager: &SchemaManager<'_>,
    change: impl Fn(&str) -> String,
) -> Result<(), DbErr> {
    let db = manager.get_connection();
    let row = db
        .query_one_raw(Statement::from_string(
            DbBackend::Sqlite,
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'node_states'",
        ))
        .await?
        .ok_or_else(|| DbErr::Migration("node_states has no definition".into()))?;
    let sql: String = row.try_get_by_index(0)?;
    let Some(rest) = sql
        .strip_prefix("CREATE TABLE \"node_states\"")
        .or_else(|| sql.strip_prefix("CREATE TABLE node_states"))
    else {
        return Err(DbErr::Migration(format!(
            "unexpected definition of node_states: {sql}"
        )));
    };
    let new = change(&format!("CREATE TABLE \"node_states_rebuilt\"{rest}"));
    db.execute_unprepared(&new).await?;
    db.execute_unprepared("INSERT INTO node_states_rebuilt SELECT * FROM node_states")
        .await?;
    db.execute_unprepared("DROP TABLE node_states").await?;
    db.execute_unprepared("ALTER TABLE node_states_rebuilt RENAME TO node_states")
        .await?;
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    /// All or nothing on SQLite too (sea-orm runs SQLite's migrations outside a transaction by
    /// default): a crash between its statements must not leave it half applied.
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Sqlite {
            return Ok(());
        }
        rebuild(manager, |sql| format!("{} WITHOUT ROWID", sql.trim_end())).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Sqlite {
            return Ok(());
        }
        rebuild(manager, |sql| {
            sql.trim_end()
                .trim_end_matches("WITHOUT ROWID")
                .trim_end()
                .to_owned()
        })
        .await
    }
}
