//! The tamper-evident log: `events.hash` (hex SHA-256 over the event as stored and the previous
//! event's hash, see `opsgate_domain::hash`) and `transitions.head_hash` (the last event's hash).
//! Events stored before get their chains computed here, one transition at a time.

use opsgate_domain::hash::{GENESIS, StoredEvent, event_hash, hex};
use sea_orm::{ConnectionTrait, Value};
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::string_null;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Events {
    Table,
    TransitionId,
    Seq,
    Kind,
    Actor,
    At,
    Payload,
    Attribution,
    Hash,
}

#[derive(DeriveIden)]
enum Transitions {
    Table,
    Id,
    HeadHash,
}

/// Transitions chained per round trip of ids.
const PAGE: u64 = 500;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Events::Table)
                    .add_column(string_null(Events::Hash))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Transitions::Table)
                    .add_column(string_null(Transitions::HeadHash))
                    .to_owned(),
            )
            .await?;
        chain_existing(manager).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Transitions::Table)
                    .drop_column(Transitions::HeadHash)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Events::Table)
                    .drop_column(Events::Hash)
                    .to_owned(),
            )
            .await
    }
}

/// Computes the chain of every stored transition's events, in `seq` order.
async fn chain_existing(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let db = manager.get_connection();
    let backend = manager.get_database_backend();
    let mut after = String::new();
    loop {
        let ids = db
            .query_all_raw(
                backend.build(
                    Query::select()
                        .column(Transitions::Id)
                        .from(Transitions::Table)
                        .and_where(Expr::col(Transitions::Id).gt(after.clone()))
                        .order_by(Transitions::Id, Order::Asc)
                        .limit(PAGE),
                ),
            )
            .await?;
        if ids.is_empty() {
            return Ok(());
        }
        for row in &ids {
            let id: String = row.try_get("", "id")?;
            chain_one(db, backend, &id).await?;
            after = id;
        }
    }
}

async fn chain_one(
    db: &impl ConnectionTrait,
    backend: sea_orm::DbBackend,
    id: &str,
) -> Result<(), DbErr> {
    let rows = db
        .query_all_raw(
            backend.build(
                Query::select()
                    .columns([
                        Events::Seq,
                        Events::Kind,
                        Events::Actor,
                        Events::At,
                        Events::Payload,
                        Events::Attribution,
                    ])
                    .from(Events::Table)
                    .and_where(Expr::col(Events::TransitionId).eq(id))
                    .order_by(Events::Seq, Order::Asc),
            ),
        )
        .await?;
    let mut prev = GENESIS;
    for row in &rows {
        let seq: i64 = row.try_get("", "seq")?;
        let kind: String = row.try_get("", "kind")?;
        let actor: String = row.try_get("", "actor")?;
        let at: chrono::DateTime<chrono::Utc> = row.try_get("", "at")?;
        let payload: String = row.try_get("", "payload")?;
        let attribution: Option<String> = row.try_get("", "attribution")?;
        prev = event_hash(
            &prev,
            &StoredEvent {
                transition_id: id,
                seq: <u64 as TryFrom<i64>>::try_from(seq).unwrap_or_default(),
                kind: &kind,
                actor: &actor,
                at,
                payload: &payload,
                attribution: attribution.as_deref(),
            },
        );
        db.execute_raw(
            backend.build(
                Query::update()
                    .table(Events::Table)
                    .value(Events::Hash, hex(&prev))
                    .and_where(Expr::col(Events::TransitionId).eq(id))
                    .and_where(Expr::col(Events::Seq).eq(seq)),
            ),
        )
        .await?;
    }
    let head: Value = if rows.is_empty() {
        Value::String(None)
    } else {
        hex(&prev).into()
    };
    db.execute_raw(
        backend.build(
            Query::update()
                .table(Transitions::Table)
                .value(Transitions::HeadHash, head)
                .and_where(Expr::col(Transitions::Id).eq(id)),
        ),
    )
    .await?;
    Ok(())
}
