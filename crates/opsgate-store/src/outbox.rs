//! The notification outbox: the notices of a write's events are stored in the same transaction
//! as the events: as their deliveries directly when they go only to channels (`WriteRoutes`),
//! else in `outbox`, fanned out once into one delivery per channel and recipient
//! (`deliveries`). Each delivery is claimed under a lease by exactly one dispatcher (on
//! PostgreSQL `FOR UPDATE SKIP LOCKED`, so replicas share the work; a crashed replica's leases
//! run out and its deliveries are claimed again), settled (a delivered one's row removed; on
//! SQLite by the next write batch), listed when it failed for good, and retried by the SMO.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use opsgate_domain::notice::{Notice, NoticeKind};
use sea_orm::{ConnectionTrait, DbBackend, Statement, Value};

use crate::{Error, Result, Store, ph};

/// How a delivery stands.
pub const PENDING: &str = "pending";
/// Delivered: only rows stored before a delivered delivery's row was removed at once (2026-12-07)
/// still say so.
pub const DELIVERED: &str = "delivered";
/// Failed on every attempt of the schedule: the dead-letter list.
pub const FAILED: &str = "failed";
/// Its endpoint answered 410 Gone (or was disabled by an earlier one).
pub const DISABLED: &str = "disabled";

/// One delivery of a notice to a channel (and recipient).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The row's id; 0 in a delivery handed to the dispatcher straight from its insert (it is
    /// settled by `webhook_id`).
    pub id: i64,
    pub channel: String,
    /// The person, for channels that reach people; empty for an endpoint.
    pub recipient: String,
    /// The same on every attempt.
    pub webhook_id: String,
    pub status: String,
    /// Attempts made so far.
    pub attempts: u32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub notice: Notice,
}

impl Delivery {
    /// A delivery of `notice` made at `at`, not attempted yet, as its insert stores it (the row
    /// id is not known: 0).
    pub(crate) fn pending(
        channel: String,
        recipient: String,
        webhook_id: String,
        at: DateTime<Utc>,
        notice: Notice,
    ) -> Self {
        Self {
            id: 0,
            channel,
            recipient,
            webhook_id,
            status: PENDING.to_owned(),
            attempts: 0,
            next_attempt_at: at,
            last_error: None,
            created_at: at,
            notice,
        }
    }
}

/// What came of an attempt, to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settle {
    Delivered,
    /// Try again at `at`.
    Retry {
        at: DateTime<Utc>,
        error: String,
    },
    /// The schedule is spent: dead-letter it.
    Failed {
        error: String,
    },
    /// The endpoint is gone: this delivery and the channel are disabled.
    Disabled {
        error: String,
    },
}

/// How much is waiting, for the metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backlog {
    /// Notices not fanned out yet.
    pub notices: u64,
    /// Deliveries waiting for an attempt.
    pub pending: u64,
    /// Dead-lettered or disabled deliveries.
    pub failed: u64,
}

/// The dispatcher's routes to channels, installed while it runs (`Store::route_in_writes`): a
/// write whose notice goes only to channels (no route of its kind reaches people) stores the
/// notice's deliveries itself, in its own transaction and claimed for `lease`, and hands them to
/// `sink` after its commit; no outbox row, no fan-out transaction. A notice of a kind some route
/// takes to people goes through the outbox as before (the fan-out reads the delegations in force
/// for it).
pub struct WriteRoutes {
    /// The channels a notice of this kind goes to, or `None` when the outbox must take it.
    pub channels_for: Box<dyn Fn(NoticeKind) -> Option<Vec<String>> + Send + Sync>,
    /// Takes the deliveries a commit stored (already claimed by this process).
    pub sink: Box<dyn Fn(Vec<Delivery>) + Send + Sync>,
    pub lease: chrono::Duration,
}

impl std::fmt::Debug for WriteRoutes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteRoutes")
            .field("lease", &self.lease)
            .finish_non_exhaustive()
    }
}

/// The `webhook-id` of the delivery to `channel` of the `index`th notice a write stored for
/// `transition` at `seq`, made at `at`.
pub(crate) fn written_webhook_id(
    at: DateTime<Utc>,
    transition: &str,
    seq: u64,
    kind: &str,
    index: usize,
    channel: &str,
) -> String {
    derived_webhook_id(
        at,
        &format!("w\n{transition}\n{seq}\n{kind}\n{index}\n{channel}"),
    )
}

/// A `webhook-id` derived from when the notice was made and what identifies its delivery, not
/// random: made again for the same delivery, it is the same, and receivers deduplicate on it.
/// The time comes first (milliseconds, 12 hex digits, then 20 of a hash), so that new ids sort
/// after the ones stored before: the unique index on them grows at its end, a page or two a write
/// batch, where ids made of a hash alone put each delivery on a page of its own (scenario 1 with
/// a webhook for every notice wrote ~8 index pages a batch).
fn derived_webhook_id(at: DateTime<Utc>, identity: &str) -> String {
    let millis = u64::try_from(at.timestamp_millis()).unwrap_or(0);
    format!(
        "msg_{millis:012x}{}",
        &crate::sha256_hex(identity.as_bytes())[..20]
    )
}

/// The statement storing `made`, each with the outbox row it came from (0: none) and the
/// notice's JSON it keeps (a write's deliveries, which have no outbox row), claimed for `lease`
/// from its creation: whoever made them attempts them at once. At most 1,000 rows (9 values
/// each; PostgreSQL takes at most 65,535 per statement).
pub(crate) fn deliveries_statement(
    backend: DbBackend,
    made: &[(i64, &Delivery, Option<&str>)],
    lease: chrono::Duration,
) -> Statement {
    if backend == DbBackend::Sqlite {
        return sqlite_deliveries_statement(made, lease);
    }
    let tuples = (0..made.len())
        .map(|i| {
            let p = |k: usize| ph(backend, 9 * i + k);
            format!(
                "({}, {}, {}, {}, {}, 0, {}, {}, {}, {})",
                p(1),
                p(2),
                p(3),
                p(4),
                p(5),
                p(6),
                p(7),
                p(8),
                p(9),
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    let mut values: Vec<Value> = Vec::with_capacity(9 * made.len());
    for (outbox_id, d, notice) in made {
        values.extend([
            (*outbox_id).into(),
            d.channel.clone().into(),
            d.recipient.clone().into(),
            d.webhook_id.clone().into(),
            PENDING.into(),
            d.created_at.into(),
            (d.created_at + lease).into(),
            d.created_at.into(),
            notice.map(str::to_owned).into(),
        ]);
    }
    Statement::from_sql_and_values(
        backend,
        format!(
            "INSERT INTO deliveries (outbox_id, channel, recipient, webhook_id, status, attempts, \
             next_attempt_at, claimed_until, created_at, notice) VALUES {tuples}"
        ),
        values,
    )
}

/// The insert of `made` on SQLite: the rows in one JSON array parameter, so that the statement's
/// text is the same for any number of rows and SQLite prepares it once (a multi-row `VALUES`
/// list is new text, prepared again, for every count).
fn sqlite_deliveries_statement(
    made: &[(i64, &Delivery, Option<&str>)],
    lease: chrono::Duration,
) -> Statement {
    let rows: Vec<serde_json::Value> = made
        .iter()
        .map(|(outbox_id, d, notice)| {
            serde_json::json!({
                "o": outbox_id,
                "c": d.channel,
                "r": d.recipient,
                "w": d.webhook_id,
                "a": crate::sqlite_moment(d.created_at),
                "l": crate::sqlite_moment(d.created_at + lease),
                "n": notice,
            })
        })
        .collect();
    Statement::from_sql_and_values(
        DbBackend::Sqlite,
        format!(
            "INSERT INTO deliveries (outbox_id, channel, recipient, webhook_id, status, attempts, \
             next_attempt_at, claimed_until, created_at, notice) SELECT value ->> 'o', \
             value ->> 'c', value ->> 'r', value ->> 'w', '{PENDING}', 0, value ->> 'a', \
             value ->> 'l', value ->> 'a', value ->> 'n' FROM jsonb_each(?)"
        ),
        [serde_json::Value::Array(rows).to_string().into()],
    )
}

/// The statements storing `outcomes` (by `webhook-id`): the delivered ones (removed), the common
/// outcome, in one statement per 1,000; each other outcome its own.
pub(crate) fn settle_statements(
    backend: DbBackend,
    outcomes: &[(String, Settle)],
) -> Vec<Statement> {
    let p = |n| ph(backend, n);
    let mut statements = Vec::new();
    let delivered: Vec<&str> = outcomes
        .iter()
        .filter(|(_, o)| *o == Settle::Delivered)
        .map(|(id, _)| id.as_str())
        .collect();
    // A delivered delivery has nothing left to do: its row goes (with the notice's JSON it
    // carried), so the table holds what is pending or failed, not every notice ever sent, and a
    // write's deliveries are inserted and removed on the same few pages.
    if backend == DbBackend::Sqlite {
        // One JSON parameter: a text prepared once, whatever the number.
        if !delivered.is_empty() {
            let ids = serde_json::Value::from(delivered).to_string();
            statements.push(Statement::from_sql_and_values(
                backend,
                "DELETE FROM deliveries WHERE webhook_id IN (SELECT value FROM json_each(?))",
                [ids.into()],
            ));
        }
    } else {
        for chunk in delivered.chunks(1000) {
            let list = (0..chunk.len())
                .map(|i| p(i + 1))
                .collect::<Vec<_>>()
                .join(", ");
            let values: Vec<Value> = chunk.iter().map(|id| Value::from(*id)).collect();
            statements.push(Statement::from_sql_and_values(
                backend,
                format!("DELETE FROM deliveries WHERE webhook_id IN ({list})"),
                values,
            ));
        }
    }
    for (id, outcome) in outcomes {
        let (sql, values): (String, Vec<Value>) = match outcome {
            Settle::Delivered => continue,
            Settle::Retry { at, error } => (
                format!(
                    "UPDATE deliveries SET attempts = attempts + 1, next_attempt_at = {}, \
                     claimed_until = NULL, last_error = {} WHERE webhook_id = {}",
                    p(1),
                    p(2),
                    p(3)
                ),
                vec![(*at).into(), clip(error).into(), id.as_str().into()],
            ),
            Settle::Failed { error } | Settle::Disabled { error } => (
                format!(
                    "UPDATE deliveries SET status = {}, attempts = attempts + 1, \
                     claimed_until = NULL, last_error = {} WHERE webhook_id = {}",
                    p(1),
                    p(2),
                    p(3)
                ),
                vec![
                    if matches!(outcome, Settle::Failed { .. }) {
                        FAILED
                    } else {
                        DISABLED
                    }
                    .into(),
                    clip(error).into(),
                    id.as_str().into(),
                ],
            ),
        };
        statements.push(Statement::from_sql_and_values(backend, sql, values));
    }
    statements
}

/// Most bytes of an error kept with a delivery.
const MAX_ERROR: usize = 500;

fn clip(text: &str) -> String {
    let mut end = text.len().min(MAX_ERROR);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

/// On PostgreSQL, rows another replica holds are passed over (SQLite has one writer).
fn skip_locked(backend: DbBackend) -> &'static str {
    if backend == DbBackend::Postgres {
        " FOR UPDATE SKIP LOCKED"
    } else {
        ""
    }
}

const DELIVERY_COLUMNS: &str = "d.id, d.channel, d.recipient, d.webhook_id, d.status, d.attempts, \
     d.next_attempt_at, d.last_error, d.created_at, COALESCE(d.notice, o.notice) AS notice";

/// Deliveries with their notice: their own (stored by a write) or their outbox row's.
const DELIVERIES_WITH_NOTICE: &str = "deliveries d LEFT JOIN outbox o ON o.id = d.outbox_id";

fn delivery(row: &sea_orm::QueryResult) -> Result<Delivery> {
    let notice: String = row.try_get("", "notice")?;
    Ok(Delivery {
        id: row.try_get("", "id")?,
        channel: row.try_get("", "channel")?,
        recipient: row.try_get("", "recipient")?,
        webhook_id: row.try_get("", "webhook_id")?,
        status: row.try_get("", "status")?,
        attempts: u32::try_from(row.try_get::<i32>("", "attempts")?).unwrap_or(0),
        next_attempt_at: row.try_get("", "next_attempt_at")?,
        last_error: row.try_get("", "last_error")?,
        created_at: row.try_get("", "created_at")?,
        notice: serde_json::from_str(&notice)?,
    })
}

impl Store {
    /// Installs the dispatcher's routes to channels (`WriteRoutes`); `None` removes them (the
    /// dispatcher stopped: notices go to the outbox again).
    pub fn route_in_writes(&self, routes: Option<WriteRoutes>) {
        if let Ok(mut installed) = self.write_routes.write() {
            *installed = routes.map(std::sync::Arc::new);
        }
    }

    /// The routes writes store deliveries by, while the dispatcher runs.
    pub(crate) fn write_routes(&self) -> Option<std::sync::Arc<WriteRoutes>> {
        self.write_routes.read().ok().and_then(|r| r.clone())
    }

    /// Whether writes store their notices in the outbox.
    pub fn notifications(&self) -> bool {
        self.notify
    }

    /// A receiver that changes after every commit that stored notices (the dispatcher's
    /// wake-up; the database stays the truth).
    pub fn outbox_signal(&self) -> tokio::sync::watch::Receiver<u64> {
        self.outbox_signal.subscribe()
    }

    pub(crate) fn signal_outbox(&self) {
        self.outbox_signal.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Fans out up to `limit` notices: `route` says which channels (and recipients) each goes
    /// to; one transaction stores the deliveries, claimed for `lease` by the caller (who attempts
    /// them at once, without a claim of its own), and marks the notices done. Returns the
    /// notices taken and the deliveries made. On PostgreSQL, replicas fanning out at once take
    /// different notices.
    pub async fn fan_out(
        &self,
        limit: u64,
        lease: chrono::Duration,
        route: impl Fn(&Notice) -> Vec<(String, String)>,
    ) -> Result<(usize, Vec<Delivery>)> {
        let txn = self.begin_bookkeeping().await?;
        let conn = &txn;
        let backend = conn.get_database_backend();
        let lock = skip_locked(backend);
        let rows = conn
            .query_all_raw(Statement::from_sql_and_values(
                backend,
                format!(
                    "SELECT id, notice FROM outbox WHERE fanned_out = {} ORDER BY id LIMIT {}{lock}",
                    ph(backend, 1),
                    ph(backend, 2)
                ),
                [false.into(), i64::try_from(limit).unwrap_or(i64::MAX).into()],
            ))
            .await?;
        if rows.is_empty() {
            txn.rollback().await?;
            return Ok((0, Vec::new()));
        }
        let now = self.now();
        let mut ids = Vec::with_capacity(rows.len());
        // Each delivery with the outbox row it comes from.
        let mut made: Vec<(i64, Delivery)> = Vec::new();
        for row in &rows {
            let id: i64 = row.try_get("", "id")?;
            let notice: Notice = serde_json::from_str(&row.try_get::<String>("", "notice")?)?;
            ids.push(id);
            for (channel, recipient) in route(&notice) {
                // Derived, not random: a notice fanned out again (its first fan-out lost to a
                // power cut, `begin_bookkeeping`) gets the same id, which receivers deduplicate on.
                let webhook_id = derived_webhook_id(
                    notice.at,
                    &format!(
                        "{id}\n{}\n{}\n{}\n{channel}\n{recipient}",
                        notice.transition_id,
                        notice.seq,
                        notice.kind.as_str()
                    ),
                );
                made.push((
                    id,
                    Delivery::pending(channel, recipient, webhook_id, now, notice.clone()),
                ));
            }
        }
        for chunk in made.chunks(1000) {
            let rows: Vec<(i64, &Delivery, Option<&str>)> =
                chunk.iter().map(|(o, d)| (*o, d, None)).collect();
            conn.execute_raw(deliveries_statement(backend, &rows, lease))
                .await?;
        }
        let list = ids
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        conn.execute_unprepared(&format!(
            "UPDATE outbox SET fanned_out = TRUE WHERE id IN ({list})"
        ))
        .await?;
        txn.commit().await?;
        Ok((ids.len(), made.into_iter().map(|(_, d)| d).collect()))
    }

    /// Claims up to `limit` deliveries of `channel` that are due, for `lease`: nobody else
    /// claims them until it runs out.
    pub async fn claim_deliveries(
        &self,
        channel: &str,
        limit: u64,
        lease: chrono::Duration,
    ) -> Result<Vec<Delivery>> {
        let now = self.now();
        let txn = self.begin_bookkeeping().await?;
        let conn = &txn;
        let backend = conn.get_database_backend();
        let lock = skip_locked(backend);
        let rows = conn
            .query_all_raw(Statement::from_sql_and_values(
                backend,
                format!(
                    "SELECT id FROM deliveries WHERE status = {p1} AND channel = {p2} \
                     AND next_attempt_at <= {p3} AND (claimed_until IS NULL OR claimed_until < {p4}) \
                     ORDER BY next_attempt_at LIMIT {p5}{lock}",
                    p1 = ph(backend, 1),
                    p2 = ph(backend, 2),
                    p3 = ph(backend, 3),
                    p4 = ph(backend, 4),
                    p5 = ph(backend, 5),
                ),
                [
                    PENDING.into(),
                    channel.into(),
                    now.into(),
                    now.into(),
                    i64::try_from(limit).unwrap_or(i64::MAX).into(),
                ],
            ))
            .await?;
        if rows.is_empty() {
            txn.rollback().await?;
            return Ok(Vec::new());
        }
        let ids = rows
            .iter()
            .map(|r| r.try_get::<i64>("", "id").map(|id| id.to_string()))
            .collect::<std::result::Result<Vec<_>, _>>()?
            .join(", ");
        conn.execute_raw(Statement::from_sql_and_values(
            backend,
            format!(
                "UPDATE deliveries SET claimed_until = {} WHERE id IN ({ids})",
                ph(backend, 1)
            ),
            [(now + lease).into()],
        ))
        .await?;
        let claimed = conn
            .query_all_raw(Statement::from_string(
                backend,
                format!(
                    "SELECT {DELIVERY_COLUMNS} FROM {DELIVERIES_WITH_NOTICE} \
                     WHERE d.id IN ({ids}) ORDER BY d.next_attempt_at, d.id"
                ),
            ))
            .await?;
        txn.commit().await?;
        claimed.iter().map(delivery).collect()
    }

    /// Queues outcomes of attempts to be stored: on SQLite by the next write batch, in its own
    /// transaction (no turn of its own on the one writer), else by [`Store::settle_queued`].
    pub fn queue_settlements(&self, outcomes: impl IntoIterator<Item = (String, Settle)>) {
        if let Ok(mut queued) = self.settlements.lock() {
            queued.extend(outcomes);
        }
    }

    /// Stores the queued outcomes no write batch took, in a transaction of their own.
    pub async fn settle_queued(&self) -> Result<()> {
        if self
            .settlements
            .lock()
            .map(|q| q.is_empty())
            .unwrap_or(true)
        {
            return Ok(());
        }
        let txn = self.begin_bookkeeping().await?;
        // Taken with the write turn held: a batch that took them first has committed them.
        let outcomes = self.take_settlements();
        if outcomes.is_empty() {
            txn.rollback().await?;
            return Ok(());
        }
        let conn = &txn;
        let written = async {
            for statement in settle_statements(conn.get_database_backend(), &outcomes) {
                conn.execute_raw(statement).await?;
            }
            Ok::<(), Error>(())
        }
        .await;
        match written {
            Ok(()) => match txn.commit().await {
                Ok(()) => Ok(()),
                Err(e) => {
                    self.queue_settlements(outcomes);
                    Err(e)
                }
            },
            Err(e) => {
                let _ = txn.rollback().await;
                self.queue_settlements(outcomes);
                Err(e)
            }
        }
    }

    /// The queued outcomes, taken (a writer that fails to commit them queues them again).
    pub(crate) fn take_settlements(&self) -> Vec<(String, Settle)> {
        self.settlements
            .lock()
            .map(|mut q| std::mem::take(&mut *q))
            .unwrap_or_default()
    }

    /// Marks `channel` disabled (an endpoint answered 410): its deliveries are not attempted
    /// until the SMO retries one.
    pub async fn disable_channel(&self, channel: &str, reason: &str) -> Result<()> {
        let backend = self.write_db.get_database_backend();
        let now = self.now();
        let sql = format!(
            "INSERT INTO notify_endpoints (channel, disabled_at, reason) VALUES ({}, {}, {}) \
             ON CONFLICT (channel) DO UPDATE SET disabled_at = excluded.disabled_at, \
             reason = excluded.reason",
            ph(backend, 1),
            ph(backend, 2),
            ph(backend, 3)
        );
        let txn = self.begin_bookkeeping().await?;
        txn.execute_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [channel.into(), now.into(), clip(reason).into()],
        ))
        .await?;
        txn.commit().await?;
        Ok(())
    }

    /// The channels disabled, with why.
    pub async fn disabled_channels(&self) -> Result<HashMap<String, String>> {
        let backend = self.db.get_database_backend();
        let rows = self
            .db
            .query_all_raw(Statement::from_string(
                backend,
                "SELECT channel, reason FROM notify_endpoints WHERE disabled_at IS NOT NULL",
            ))
            .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get::<String>("", "channel")?,
                    r.try_get::<Option<String>>("", "reason")?
                        .unwrap_or_default(),
                ))
            })
            .collect()
    }

    /// The dead-letter list: deliveries that failed for good or whose endpoint is gone, the
    /// latest first.
    pub async fn failed_deliveries(&self, limit: u64) -> Result<Vec<Delivery>> {
        let backend = self.db.get_database_backend();
        let rows = self
            .db
            .query_all_raw(Statement::from_sql_and_values(
                backend,
                format!(
                    "SELECT {DELIVERY_COLUMNS} FROM {DELIVERIES_WITH_NOTICE} \
                     WHERE d.status IN ({}, {}) ORDER BY d.id DESC LIMIT {}",
                    ph(backend, 1),
                    ph(backend, 2),
                    ph(backend, 3)
                ),
                [
                    FAILED.into(),
                    DISABLED.into(),
                    i64::try_from(limit).unwrap_or(i64::MAX).into(),
                ],
            ))
            .await?;
        rows.iter().map(delivery).collect()
    }

    /// Queues a failed or disabled delivery again, from its first attempt, and enables its
    /// channel again.
    pub async fn retry_delivery(&self, id: i64) -> Result<Delivery> {
        let now = self.now();
        let txn = self.begin_write().await?;
        let conn = &txn;
        let backend = conn.get_database_backend();
        let found = conn
            .query_one_raw(Statement::from_sql_and_values(
                backend,
                format!(
                    "SELECT {DELIVERY_COLUMNS} FROM {DELIVERIES_WITH_NOTICE} \
                     WHERE d.id = {}",
                    ph(backend, 1)
                ),
                [id.into()],
            ))
            .await?
            .ok_or_else(|| Error::NotFound(format!("delivery {id} not found")))?;
        let found = delivery(&found)?;
        if found.status != FAILED && found.status != DISABLED {
            txn.rollback().await?;
            return Err(Error::Domain(opsgate_domain::Error::FailedPrecondition(
                format!(
                    "delivery {id} is {}: only failed or disabled deliveries are retried",
                    found.status
                ),
            )));
        }
        conn.execute_raw(Statement::from_sql_and_values(
            backend,
            format!(
                "UPDATE deliveries SET status = {}, attempts = 0, next_attempt_at = {}, \
                 claimed_until = NULL WHERE id = {}",
                ph(backend, 1),
                ph(backend, 2),
                ph(backend, 3)
            ),
            [PENDING.into(), now.into(), id.into()],
        ))
        .await?;
        conn.execute_raw(Statement::from_sql_and_values(
            backend,
            format!(
                "DELETE FROM notify_endpoints WHERE channel = {}",
                ph(backend, 1)
            ),
            [found.channel.clone().into()],
        ))
        .await?;
        txn.commit().await?;
        self.signal_outbox();
        Ok(Delivery {
            status: PENDING.to_owned(),
            attempts: 0,
            next_attempt_at: now,
            ..found
        })
    }

    /// Leases held by this process before a restart end now (SQLite: one process owns the
    /// file, so nobody else holds them).
    pub async fn release_claims(&self) -> Result<()> {
        if !self.exclusive {
            return Ok(());
        }
        let txn = self.begin_bookkeeping().await?;
        txn.execute_unprepared(
            "UPDATE deliveries SET claimed_until = NULL WHERE claimed_until IS NOT NULL",
        )
        .await?;
        txn.commit().await?;
        Ok(())
    }

    /// Notices and deliveries waiting, and failed ones.
    pub async fn outbox_backlog(&self) -> Result<Backlog> {
        let backend = self.db.get_database_backend();
        let row = self
            .db
            .query_one_raw(Statement::from_string(
                backend,
                "SELECT \
                 (SELECT COUNT(*) FROM outbox WHERE fanned_out = FALSE) AS notices, \
                 (SELECT COUNT(*) FROM deliveries WHERE status = 'pending') AS pending, \
                 (SELECT COUNT(*) FROM deliveries WHERE status IN ('failed', 'disabled')) AS failed",
            ))
            .await?;
        let get = |name: &str| -> Result<u64> {
            Ok(match &row {
                Some(r) => u64::try_from(r.try_get::<i64>("", name)?).unwrap_or(0),
                None => 0,
            })
        };
        Ok(Backlog {
            notices: get("notices")?,
            pending: get("pending")?,
            failed: get("failed")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    /// SQLite prepares a statement once per text: a delivery insert and the removal of delivered
    /// ones keep one text for any number of rows.
    #[test]
    fn sqlite_delivery_statements_have_one_text_for_any_number_of_rows() {
        let at = Utc
            .timestamp_millis_opt(1_700_000_000_000)
            .single()
            .unwrap();
        let notice = Notice {
            kind: NoticeKind::DeliverableSubmitted,
            transition_id: "t".into(),
            seq: 1,
            at,
            service_name: "s".into(),
            service_version: "1".into(),
            workflow: "w".into(),
            node_id: None,
            node_title: None,
            actor: "Pat".into(),
            headline: "the gate opened".into(),
            act_next: vec![],
            action: None,
            due: None,
            recipients: vec![],
            mailboxes: Default::default(),
        };
        let made: Vec<Delivery> = (0..3)
            .map(|i| {
                Delivery::pending(
                    "hook".into(),
                    String::new(),
                    format!("msg_{i}"),
                    at,
                    notice.clone(),
                )
            })
            .collect();
        let rows = |n: usize| -> Vec<(i64, &Delivery, Option<&str>)> {
            made.iter().take(n).map(|d| (0, d, Some("{}"))).collect()
        };
        let lease = chrono::Duration::seconds(60);
        let one = deliveries_statement(DbBackend::Sqlite, &rows(1), lease);
        let three = deliveries_statement(DbBackend::Sqlite, &rows(3), lease);
        assert_eq!(one.sql, three.sql);
        assert_ne!(one.values, three.values);
        let delivered = |n: usize| -> Vec<(String, Settle)> {
            (0..n)
                .map(|i| (format!("msg_{i}"), Settle::Delivered))
                .collect()
        };
        let one = settle_statements(DbBackend::Sqlite, &delivered(1));
        let three = settle_statements(DbBackend::Sqlite, &delivered(3));
        assert_eq!((one.len(), three.len()), (1, 1));
        assert_eq!(one[0].sql, three[0].sql);
    }

    /// The same delivery gets the same id; a delivery made later sorts after one made earlier,
    /// whatever identifies them (the unique index grows at its end).
    #[test]
    fn webhook_ids_are_derived_and_sort_by_when_their_notice_was_made() {
        let t = |ms: i64| Utc.timestamp_millis_opt(ms).single().unwrap();
        let id = |ms, transition: &str| written_webhook_id(t(ms), transition, 3, "x", 0, "hook");
        assert_eq!(id(1_700_000_000_000, "a"), id(1_700_000_000_000, "a"));
        assert_ne!(id(1_700_000_000_000, "a"), id(1_700_000_000_000, "b"));
        let mut made: Vec<String> = (0..50)
            .map(|i| id(1_700_000_000_000 + i, &format!("t{}", 50 - i)))
            .collect();
        let sorted = {
            let mut s = made.clone();
            s.sort();
            s
        };
        assert_eq!(made, sorted);
        made.dedup();
        assert_eq!(made.len(), 50);
        assert!(made.iter().all(|m| m.len() == 36 && m.starts_with("msg_")));
    }
}
