//! Who has a part in which transition (`transition_people`, written with each start and change of
//! people), and the two reads it serves: the unfinished transitions of some people (`/me`, a
//! person's board), and one page of the board in order of lateness (the `next_due` index).

use chrono::NaiveDate;
use opsgate_domain::Actor;
use opsgate_domain::transition::people_with_a_part;
use sea_orm::{ConnectionTrait, DbBackend, Statement, Value};

use crate::{Result, Store, ph};

/// Most transitions read back for a set of people.
pub const MAX_PARTS: u64 = 5_000;
/// Transitions from before the people index filled per round at start-up.
const FILL_ROUND: usize = 500;

/// What one page of the board shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BoardQuery {
    pub workflow: Option<String>,
    pub service: Option<String>,
    /// Only transitions one of these people has a part in (a viewer who is neither SMO nor
    /// auditor, or the board's person filter).
    pub people: Option<Vec<Actor>>,
}

/// `IN (...)` over `values`, numbering placeholders from `first`.
fn list(backend: DbBackend, first: usize, count: usize) -> String {
    (first..first + count)
        .map(|n| ph(backend, n))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Store {
    /// Fills the people index for transitions stored before it existed (the migration marks
    /// that in `pending_backfills`); how many. Run when the database is opened; idempotent
    /// (rows present are kept), safe on several replicas.
    pub(crate) async fn fill_people_index(&self) -> Result<usize> {
        let backend = self.write_db.get_database_backend();
        let pending = self
            .write_db
            .query_one_raw(Statement::from_string(
                backend,
                "SELECT name FROM pending_backfills WHERE name = 'transition_people'",
            ))
            .await?;
        if pending.is_none() {
            return Ok(0);
        }
        // Some are missing: every transition's rows again (those present are kept), a page at
        // a time from the row's own meta (one pass, no lookup per transition).
        let mut filled = 0;
        let mut token: Option<String> = None;
        loop {
            let page = self
                .list_transitions(FILL_ROUND as u32, token.as_deref())
                .await?;
            let mut people = Vec::new();
            for t in &page.transitions {
                let workflow = self
                    .get_workflow(&t.workflow_name, Some(t.workflow_version))
                    .await?;
                for person in people_with_a_part(&workflow.workflow, &t.meta) {
                    people.push((person.to_string(), t.id.clone()));
                }
            }
            for statement in
                crate::changes::people_statements(self.write_db.get_database_backend(), people)?
            {
                self.write_db.execute_raw(statement).await?;
            }
            filled += page.transitions.len();
            match page.next_page_token {
                Some(next) => token = Some(next),
                None => break,
            }
        }
        self.write_db
            .execute_raw(Statement::from_string(
                backend,
                "DELETE FROM pending_backfills WHERE name = 'transition_people'",
            ))
            .await?;
        tracing::info!(
            transitions = filled,
            "people index: filled for transitions stored before it"
        );
        Ok(filled)
    }

    /// The unfinished transitions any of `people` has a part in, by id, at most [`MAX_PARTS`].
    pub async fn transitions_of(&self, people: &[Actor]) -> Result<Vec<String>> {
        if people.is_empty() {
            return Ok(Vec::new());
        }
        let backend = self.db.get_database_backend();
        let sql = format!(
            "SELECT DISTINCT p.transition_id AS id FROM transition_people p JOIN transitions t \
             ON t.id = p.transition_id WHERE p.person IN ({}) AND t.status <> 'completed' \
             ORDER BY p.transition_id LIMIT {MAX_PARTS}",
            list(backend, 1, people.len())
        );
        let values: Vec<Value> = people.iter().map(|p| p.to_string().into()).collect();
        let rows = self
            .db
            .query_all_raw(Statement::from_sql_and_values(backend, sql, values))
            .await?;
        rows.iter()
            .map(|r| r.try_get("", "id").map_err(Into::into))
            .collect()
    }

    /// One page of the board: the ids of unfinished transitions matching `query`, the most
    /// overdue open work first (its due date, from the stall index), those with nothing dated
    /// open last, each in id order; from just after `after` (a previous page's
    /// [`BoardCursor`]), at most `limit`; and the cursor of the next page when more follow. A
    /// seek on the `next_due` index: any page costs what the first does.
    pub async fn board_page(
        &self,
        query: &BoardQuery,
        after: Option<&BoardCursor>,
        limit: u64,
    ) -> Result<(Vec<String>, Option<BoardCursor>)> {
        let backend = self.db.get_database_backend();
        let mut filter = String::from("status <> 'completed'");
        let mut values: Vec<Value> = Vec::new();
        if let Some(workflow) = &query.workflow {
            values.push(workflow.clone().into());
            filter.push_str(&format!(
                " AND workflow_name = {}",
                ph(backend, values.len())
            ));
        }
        if let Some(service) = &query.service {
            values.push(service.clone().into());
            filter.push_str(&format!(
                " AND service_name = {}",
                ph(backend, values.len())
            ));
        }
        if let Some(people) = &query.people {
            if people.is_empty() {
                return Ok((Vec::new(), None));
            }
            filter.push_str(&format!(
                " AND id IN (SELECT transition_id FROM transition_people WHERE person IN ({}))",
                list(backend, values.len() + 1, people.len())
            ));
            values.extend(people.iter().map(|p| Value::from(p.to_string())));
        }
        let rows = |sql: String, values: Vec<Value>| async move {
            let rows = self
                .db
                .query_all_raw(Statement::from_sql_and_values(backend, sql, values))
                .await?;
            rows.iter()
                .map(|r| {
                    Ok((
                        r.try_get::<String>("", "id")?,
                        r.try_get::<Option<NaiveDate>>("", "next_due")?,
                    ))
                })
                .collect::<Result<Vec<(String, Option<NaiveDate>)>>>()
        };
        let want = limit + 1;
        let mut out: Vec<(String, Option<NaiveDate>)> = Vec::new();
        // The dated ones (unless the previous page already reached the undated ones).
        if after.is_none_or(|a| a.due.is_some()) {
            let mut v = values.clone();
            let mut seek = String::new();
            if let Some(BoardCursor { due: Some(due), id }) = after {
                v.push((*due).into());
                let d1 = ph(backend, v.len());
                v.push((*due).into());
                let d2 = ph(backend, v.len());
                v.push(id.clone().into());
                let i = ph(backend, v.len());
                seek = format!(" AND next_due >= {d1} AND (next_due > {d2} OR id > {i})");
            }
            out = rows(
                format!(
                    "SELECT id, next_due FROM transitions WHERE {filter} AND next_due IS NOT \
                     NULL{seek} ORDER BY next_due, id LIMIT {want}"
                ),
                v,
            )
            .await?;
        }
        if (out.len() as u64) < want {
            let mut v = values.clone();
            let mut seek = String::new();
            if let Some(BoardCursor { due: None, id }) = after {
                v.push(id.clone().into());
                seek = format!(" AND id > {}", ph(backend, v.len()));
            }
            let more = want - out.len() as u64;
            out.extend(
                rows(
                    format!(
                        "SELECT id, next_due FROM transitions WHERE {filter} AND next_due IS \
                         NULL{seek} ORDER BY id LIMIT {more}"
                    ),
                    v,
                )
                .await?,
            );
        }
        let next = if out.len() as u64 > limit {
            out.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
            out.last().map(|(id, due)| BoardCursor {
                due: *due,
                id: id.clone(),
            })
        } else {
            None
        };
        Ok((out.into_iter().map(|(id, _)| id).collect(), next))
    }
}

/// Where a board page ends: the last row's earliest open due date (none for the undated ones)
/// and id. Written in a page's address as `DATE~ID` (or `~ID`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoardCursor {
    pub due: Option<NaiveDate>,
    pub id: String,
}

impl BoardCursor {
    /// As written in a page's address.
    pub fn to_text(&self) -> String {
        match self.due {
            Some(due) => format!("{due}~{}", self.id),
            None => format!("~{}", self.id),
        }
    }

    /// From a page's address; `None` when it is not one.
    pub fn parse(text: &str) -> Option<Self> {
        let (due, id) = text.split_once('~')?;
        let due = if due.is_empty() {
            None
        } else {
            Some(due.parse().ok()?)
        };
        (!id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-'))
            .then(|| Self {
                due,
                id: id.to_owned(),
            })
    }
}
