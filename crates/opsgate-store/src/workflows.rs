//! Workflow versions: register (a changed source is the next version), read and list.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use opsgate_domain::{Actor, Workflow};
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Statement,
};

use crate::entities::{workflow_events, workflows};
use crate::error::is_unique_violation;
use crate::hex::sha256_hex;
use crate::{Error, Result, Store, now, ph};

/// One stored workflow version, parsed.
#[derive(Debug, Clone)]
pub struct WorkflowRecord {
    pub id: i64,
    pub version: u32,
    pub source: String,
    pub sha256: String,
    pub registered_at: DateTime<Utc>,
    pub workflow: Workflow,
}

/// The outcome of registering a source.
#[derive(Debug, Clone)]
pub struct Registered {
    pub record: Arc<WorkflowRecord>,
    /// False when the same source was already the latest version.
    pub created: bool,
}

/// A workflow name with its latest version.
#[derive(Debug, Clone)]
pub struct WorkflowSummary {
    pub name: String,
    pub latest_version: u32,
    pub description: String,
    pub registered_at: DateTime<Utc>,
}

impl Store {
    /// Validates `source` and stores it as the next version of its workflow, unless it equals the
    /// latest; `actor` is recorded as who registered it. `file` names the source in validation
    /// messages. Parsing runs on the blocking pool: a large source takes tens of milliseconds,
    /// which must not stall the runtime worker other calls are served on.
    pub async fn register_workflow(
        &self,
        file: &str,
        source: &str,
        actor: &Actor,
    ) -> Result<Registered> {
        let (name, text) = (file.to_owned(), source.to_owned());
        let workflow = tokio::task::spawn_blocking(move || Workflow::parse(&name, &text))
            .await
            .map_err(|e| Error::Unavailable(format!("workflow parser task failed: {e}")))?
            .map_err(opsgate_domain::Error::from)?;
        self.register_parsed(workflow, file, source, &[], actor)
            .await
    }

    /// Like [`Store::register_workflow`], for a caller that already parsed `source` (from `file`)
    /// into `workflow`: the parse is kept (and cached) instead of being repeated.
    pub async fn register_parsed(
        &self,
        workflow: Workflow,
        file: &str,
        source: &str,
        templates: &[(String, String)],
        actor: &Actor,
    ) -> Result<Registered> {
        let name = workflow.name().to_string();
        let declared_version = workflow.declared_version();
        let mut parsed = Some(workflow);
        // The templates are part of the version: a changed template is a new version, and a
        // running transition keeps the one it started with.
        let sha256 = if templates.is_empty() {
            sha256_hex(source.as_bytes())
        } else {
            let mut all = source.as_bytes().to_vec();
            for (path, content) in templates {
                all.push(0);
                all.extend_from_slice(path.as_bytes());
                all.push(0);
                all.extend_from_slice(content.as_bytes());
            }
            sha256_hex(&all)
        };
        // Two replicas registering the same file race on the unique (name, version) index: the loser retries
        // and then finds the winner's row.
        for _ in 0..3 {
            let txn = self.begin_write().await?;
            let latest = workflows::Entity::find()
                .filter(workflows::Column::Name.eq(name.as_str()))
                .order_by_desc(workflows::Column::Version)
                .one(&txn)
                .await?;
            // The same bytes as the latest version; or, registered without templates (over the
            // API, which has no directory), the same text: the same workflow, its templates kept.
            if let Some(latest) = &latest
                && (latest.sha256 == sha256 || (templates.is_empty() && latest.source == source))
            {
                txn.rollback().await?;
                // Same bytes as the stored version, so the same parse.
                let record = self.record(latest.clone(), parsed.take())?;
                return Ok(Registered {
                    record,
                    created: false,
                });
            }
            let version = latest.map_or(1, |l| l.version + 1);
            if let Some(declared) = declared_version
                && i64::from(declared) != i64::from(version)
            {
                txn.rollback().await?;
                return Err(opsgate_domain::Error::FailedPrecondition(format!(
                    "workflow '{}' declares version {declared}, but registering this source makes it version {version}: \
                     set `version: {version}` (or remove `version:` to number versions automatically)",
                    name
                ))
                .into());
            }
            let insert = workflows::ActiveModel {
                id: NotSet,
                name: Set(name.clone()),
                version: Set(version),
                source: Set(source.to_owned()),
                sha256: Set(sha256.clone()),
                registered_at: Set(now()),
            };
            match workflows::Entity::insert(insert)
                .exec_with_returning(&txn)
                .await
            {
                Ok(row) => {
                    let event = workflow_events::ActiveModel {
                        id: NotSet,
                        workflow_id: Set(row.id),
                        kind: Set("workflow_registered".to_owned()),
                        actor: Set(actor.to_string()),
                        at: Set(row.registered_at),
                        payload: Set(serde_json::json!({
                            "name": row.name,
                            "version": row.version,
                            "sha256": row.sha256,
                            "file": file,
                        })
                        .to_string()),
                    };
                    workflow_events::Entity::insert(event)
                        .exec_without_returning(&txn)
                        .await?;
                    let backend = txn.get_database_backend();
                    for (path, content) in templates {
                        txn.execute_raw(Statement::from_sql_and_values(
                            backend,
                            format!(
                                "INSERT INTO workflow_templates (workflow_id, path, content, \
                                     sha256) VALUES ({}, {}, {}, {})",
                                ph(backend, 1),
                                ph(backend, 2),
                                ph(backend, 3),
                                ph(backend, 4)
                            ),
                            [
                                row.id.into(),
                                path.clone().into(),
                                content.clone().into(),
                                sha256_hex(content.as_bytes()).into(),
                            ],
                        ))
                        .await?;
                    }
                    txn.commit().await?;
                    tracing::info!(workflow = %row.name, version = row.version, actor = %actor, "workflow version registered");
                    let record = self.record(row, parsed.take())?;
                    return Ok(Registered {
                        record,
                        created: true,
                    });
                }
                Err(e) if is_unique_violation(&e) => {
                    txn.rollback().await?;
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Conflict {
            kind: "workflow",
            id: name,
        })
    }

    /// One version of a workflow; the latest when `version` is `None`.
    pub async fn get_workflow(
        &self,
        name: &str,
        version: Option<u32>,
    ) -> Result<Arc<WorkflowRecord>> {
        self.find_workflow(&self.db, name, version).await
    }

    pub(crate) async fn find_workflow(
        &self,
        conn: &impl ConnectionTrait,
        name: &str,
        version: Option<u32>,
    ) -> Result<Arc<WorkflowRecord>> {
        let mut query = workflows::Entity::find().filter(workflows::Column::Name.eq(name));
        if let Some(v) = version {
            let v = i32::try_from(v)
                .map_err(|_| Error::NotFound(format!("workflow '{name}' version {v} not found")))?;
            query = query.filter(workflows::Column::Version.eq(v));
        }
        let row = query
            .order_by_desc(workflows::Column::Version)
            .one(conn)
            .await?
            .ok_or_else(|| {
                Error::NotFound(match version {
                    Some(v) => format!("workflow '{name}' version {v} not found"),
                    None => format!("workflow '{name}' not found"),
                })
            })?;
        self.record(row, None)
    }

    /// A stored version by row id, parsed once and cached.
    pub(crate) async fn workflow_by_id(
        &self,
        conn: &impl ConnectionTrait,
        id: i64,
    ) -> Result<Arc<WorkflowRecord>> {
        if let Some(hit) = self.cached(id) {
            return Ok(hit);
        }
        let row = workflows::Entity::find_by_id(id)
            .one(conn)
            .await?
            .ok_or_else(|| Error::Corrupt(format!("workflow row {id} is missing")))?;
        self.record(row, None)
    }

    fn cached(&self, id: i64) -> Option<Arc<WorkflowRecord>> {
        self.workflows.lock().ok()?.get(&id).cloned()
    }

    /// Who registered each version of workflow `name`, oldest first: (version, actor, when).
    pub async fn workflow_registrations(
        &self,
        name: &str,
    ) -> Result<Vec<(u32, String, DateTime<Utc>)>> {
        // Ids and version numbers only (never the sources), then every registration at once.
        let versions: Vec<(i64, i32)> = workflows::Entity::find()
            .select_only()
            .column(workflows::Column::Id)
            .column(workflows::Column::Version)
            .filter(workflows::Column::Name.eq(name))
            .into_tuple()
            .all(&self.db)
            .await?;
        let version_of: std::collections::HashMap<i64, u32> = versions
            .into_iter()
            .map(|(id, v)| (id, u32::try_from(v).unwrap_or_default()))
            .collect();
        let events = workflow_events::Entity::find()
            .filter(workflow_events::Column::WorkflowId.is_in(version_of.keys().copied()))
            .order_by_asc(workflow_events::Column::Id)
            .all(&self.db)
            .await?;
        let mut out: Vec<(u32, String, DateTime<Utc>)> = events
            .into_iter()
            .filter_map(|e| Some((*version_of.get(&e.workflow_id)?, e.actor, e.at)))
            .collect();
        out.sort_by_key(|(version, _, _)| *version);
        Ok(out)
    }

    /// The cached record of a stored version, built from `parsed` when the caller has the parse of
    /// this exact source already, otherwise by parsing it.
    fn record(
        &self,
        row: workflows::Model,
        parsed: Option<Workflow>,
    ) -> Result<Arc<WorkflowRecord>> {
        if let Some(hit) = self.cached(row.id) {
            return Ok(hit);
        }
        let file = format!("{}@v{}", row.name, row.version);
        let workflow = match parsed {
            Some(workflow) => workflow,
            None => {
                Workflow::parse(&file, &row.source).map_err(|e| Error::Corrupt(e.to_string()))?
            }
        };
        let record = Arc::new(WorkflowRecord {
            id: row.id,
            version: u32::try_from(row.version)
                .map_err(|_| Error::Corrupt(format!("{file}: negative version")))?,
            source: row.source,
            sha256: row.sha256,
            registered_at: row.registered_at,
            workflow,
        });
        if let Ok(mut cache) = self.workflows.lock() {
            cache.put(record.id, record.clone());
        }
        Ok(record)
    }

    /// Every workflow name with its latest version, sorted by name. Only the latest version of
    /// each name is read (chosen in SQL), never every version's source.
    pub async fn list_workflows(&self) -> Result<Vec<WorkflowSummary>> {
        let rows = workflows::Entity::find()
            .from_raw_sql(Statement::from_string(
                self.backend(),
                "SELECT w.* FROM workflows w \
                 WHERE w.version = (SELECT MAX(v.version) FROM workflows v WHERE v.name = w.name) \
                 ORDER BY w.name",
            ))
            .all(&self.db)
            .await?;
        let mut out: Vec<WorkflowSummary> = Vec::with_capacity(rows.len());
        for row in rows {
            let record = self.record(row, None)?;
            out.push(WorkflowSummary {
                name: record.workflow.name().to_string(),
                latest_version: record.version,
                description: record.workflow.description().to_owned(),
                registered_at: record.registered_at,
            });
        }
        Ok(out)
    }
}

/// A template stored with a workflow version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredTemplate {
    pub path: String,
    pub content: String,
    pub sha256: String,
}

impl Store {
    /// The template `path` stored with workflow version `workflow_id`, if it was.
    pub async fn workflow_template(
        &self,
        workflow_id: i64,
        path: &str,
    ) -> Result<Option<StoredTemplate>> {
        let backend = self.db.get_database_backend();
        let row = self
            .db
            .query_one_raw(Statement::from_sql_and_values(
                backend,
                format!(
                    "SELECT path, content, sha256 FROM workflow_templates WHERE workflow_id = {} \
                     AND path = {}",
                    ph(backend, 1),
                    ph(backend, 2)
                ),
                [workflow_id.into(), path.into()],
            ))
            .await?;
        row.map(|r| {
            Ok(StoredTemplate {
                path: r.try_get("", "path")?,
                content: r.try_get("", "content")?,
                sha256: r.try_get("", "sha256")?,
            })
        })
        .transpose()
    }
}
