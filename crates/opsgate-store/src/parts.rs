//! Who has a part in which transition (`transition_people`, written with each start and change of
//! people), and the two reads it serves: the unfinished transitions of some people (`/me`, a
//! person's board), and one page of the board in order of lateness (the `next_due` index).

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
    /// Fills the people index for transitions stored before it existed (or by a build without
    /// it); how many. Run when the database is opened; idempotent, safe on several replicas.
    pub(crate) async fn fill_people_index(&self) -> Result<usize> {
        let mut filled = 0;
        loop {
            let rows = self
                .write_db
                .query_all_raw(Statement::from_string(
                    self.write_db.get_database_backend(),
                    format!(
                        "SELECT id FROM transitions t WHERE NOT EXISTS (SELECT 1 FROM \
                         transition_people p WHERE p.transition_id = t.id) LIMIT {FILL_ROUND}"
                    ),
                ))
                .await?;
            if rows.is_empty() {
                return Ok(filled);
            }
            let mut people = Vec::new();
            for row in &rows {
                let id: String = row.try_get("", "id")?;
                let view = self.get_transition(&id).await?;
                for person in people_with_a_part(&view.workflow.workflow, &view.state.meta) {
                    people.push((person.to_string(), id.clone()));
                }
            }
            let statement =
                crate::changes::people_statement(self.write_db.get_database_backend(), people)?;
            self.write_db.execute_raw(statement).await?;
            filled += rows.len();
            tracing::info!(filled, "people index: transitions from before it filled");
        }
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
    /// open last; `offset` rows skipped, at most `limit`; and whether more follow.
    pub async fn board_page(
        &self,
        query: &BoardQuery,
        offset: u64,
        limit: u64,
    ) -> Result<(Vec<String>, bool)> {
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
                return Ok((Vec::new(), false));
            }
            filter.push_str(&format!(
                " AND id IN (SELECT transition_id FROM transition_people WHERE person IN ({}))",
                list(backend, values.len() + 1, people.len())
            ));
            values.extend(people.iter().map(|p| Value::from(p.to_string())));
        }
        let ids = |sql: String| {
            let values = values.clone();
            async move {
                let rows = self
                    .db
                    .query_all_raw(Statement::from_sql_and_values(backend, sql, values))
                    .await?;
                rows.iter()
                    .map(|r| r.try_get::<String>("", "id").map_err(Into::into))
                    .collect::<Result<Vec<String>>>()
            }
        };
        let want = limit + 1;
        let mut out = ids(format!(
            "SELECT id FROM transitions WHERE {filter} AND next_due IS NOT NULL \
             ORDER BY next_due, id LIMIT {want} OFFSET {offset}"
        ))
        .await?;
        if (out.len() as u64) < want {
            // Past the dated ones: how many there are says where the undated ones start.
            let dated = if out.is_empty() {
                let rows = self
                    .db
                    .query_one_raw(Statement::from_sql_and_values(
                        backend,
                        format!(
                            "SELECT COUNT(*) AS n FROM transitions WHERE {filter} AND next_due \
                             IS NOT NULL"
                        ),
                        values.clone(),
                    ))
                    .await?;
                rows.map(|r| r.try_get::<i64>("", "n"))
                    .transpose()?
                    .map_or(0, |n| u64::try_from(n).unwrap_or(0))
            } else {
                offset + out.len() as u64
            };
            let skip = offset.saturating_sub(dated);
            let more = want - out.len() as u64;
            out.extend(
                ids(format!(
                    "SELECT id FROM transitions WHERE {filter} AND next_due IS NULL \
                     ORDER BY id LIMIT {more} OFFSET {skip}"
                ))
                .await?,
            );
        }
        let more = out.len() as u64 > limit;
        out.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok((out, more))
    }
}
