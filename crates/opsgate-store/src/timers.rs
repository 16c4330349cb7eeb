//! Timers: finding the transitions with work due soon (the `next_due` stall index), and firing
//! reminders, overdue notices and escalations: each recorded in `timers` in the transaction that
//! stores its notice in the outbox, so that each fires once across restarts and replicas.

use std::collections::HashSet;

use chrono::NaiveDate;
use opsgate_domain::TransitionStatus;
use opsgate_domain::notice::Notice;
use opsgate_domain::timers::Timer;
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Statement,
};

use crate::changes::outbox_row;
use crate::entities::{outbox, transitions};
use crate::{Result, Store, ph};

impl Store {
    /// Ids of unfinished transitions with work not done that is due by `horizon`, in id order,
    /// after `after`, at most `limit`: a range seek on the `next_due` index.
    pub async fn timer_candidates(
        &self,
        horizon: NaiveDate,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<String>> {
        use transitions::Column as C;
        let mut query = transitions::Entity::find()
            .select_only()
            .column(C::Id)
            .filter(C::NextDue.lte(horizon))
            .filter(C::Status.ne(TransitionStatus::Completed.as_str()))
            .order_by_asc(C::Id)
            .limit(limit);
        if let Some(after) = after {
            query = query.filter(C::Id.gt(after));
        }
        Ok(query.into_tuple().all(&self.db).await?)
    }

    /// Fires the timers of `due` not fired before: one transaction records each and stores its
    /// notice in the outbox. Returns how many fired. A timer another replica fires at the same
    /// moment is stored once (its key is the primary key) and its notice only with it.
    pub async fn fire_timers(&self, due: &[(Timer, Notice)]) -> Result<usize> {
        if due.is_empty() {
            return Ok(0);
        }
        let fired = self.fired(due).await?;
        let new: Vec<&(Timer, Notice)> = due
            .iter()
            .filter(|(t, n)| !fired.contains(&key(&n.transition_id, t)))
            .collect();
        if new.is_empty() {
            return Ok(0);
        }
        let now = self.now();
        let txn = self.begin_write().await?;
        let conn = &txn;
        let backend = conn.get_database_backend();
        let mut rows = Vec::new();
        for (timer, notice) in new {
            let inserted = conn
                .execute_raw(Statement::from_sql_and_values(
                    backend,
                    format!(
                        "INSERT INTO timers (transition_id, node_id, kind, due, fired_at) VALUES \
                         ({}, {}, {}, {}, {}) ON CONFLICT DO NOTHING",
                        ph(backend, 1),
                        ph(backend, 2),
                        ph(backend, 3),
                        ph(backend, 4),
                        ph(backend, 5)
                    ),
                    [
                        notice.transition_id.clone().into(),
                        timer.node.to_string().into(),
                        timer.kind.as_str().into(),
                        timer.due.into(),
                        now.into(),
                    ],
                ))
                .await?
                .rows_affected();
            if inserted == 1 {
                rows.push(outbox_row(notice, now)?);
            }
        }
        let count = rows.len();
        if !rows.is_empty() {
            outbox::Entity::insert_many(rows)
                .exec_without_returning(conn)
                .await?;
        }
        txn.commit().await?;
        if count > 0 {
            self.signal_outbox();
        }
        Ok(count)
    }

    /// The keys of the timers of `due`'s transitions fired before.
    async fn fired(&self, due: &[(Timer, Notice)]) -> Result<HashSet<String>> {
        let mut ids: Vec<&str> = due.iter().map(|(_, n)| n.transition_id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut fired = HashSet::new();
        let backend = self.db.get_database_backend();
        for chunk in ids.chunks(500) {
            let list = (1..=chunk.len())
                .map(|i| ph(backend, i))
                .collect::<Vec<_>>()
                .join(", ");
            let rows = self
                .db
                .query_all_raw(Statement::from_sql_and_values(
                    backend,
                    format!(
                        "SELECT transition_id, node_id, kind, due FROM timers WHERE transition_id \
                         IN ({list})"
                    ),
                    chunk.iter().map(|&id| id.into()).collect::<Vec<_>>(),
                ))
                .await?;
            for row in rows {
                let id: String = row.try_get("", "transition_id")?;
                let node: String = row.try_get("", "node_id")?;
                let kind: String = row.try_get("", "kind")?;
                let due: NaiveDate = row.try_get("", "due")?;
                fired.insert(format!("{id}\n{node}\n{kind}\n{due}"));
            }
        }
        Ok(fired)
    }
}

fn key(transition_id: &str, t: &Timer) -> String {
    format!(
        "{transition_id}\n{}\n{}\n{}",
        t.node,
        t.kind.as_str(),
        t.due
    )
}
