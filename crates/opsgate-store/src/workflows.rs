//! Workflow versions: register (a changed source is the next version), read and list.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use opsgate_domain::Workflow;
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
};
use sha2::{Digest, Sha256};

use crate::entities::workflows;
use crate::error::is_unique_violation;
use crate::{Error, Result, Store, now};

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

fn sha256_hex(source: &str) -> String {
    hex::encode(Sha256::digest(source.as_bytes()))
}

impl Store {
    /// Validates `source` and stores it as the next version of its workflow, unless it equals the latest.
    /// `file` names the source in validation messages.
    pub async fn register_workflow(&self, file: &str, source: &str) -> Result<Registered> {
        let workflow = Workflow::parse(file, source).map_err(opsgate_domain::Error::from)?;
        self.register_parsed(workflow, source).await
    }

    /// Like [`Store::register_workflow`], for a caller that already parsed `source` into `workflow`:
    /// the parse is kept (and cached) instead of being repeated.
    pub async fn register_parsed(&self, workflow: Workflow, source: &str) -> Result<Registered> {
        let name = workflow.name().to_string();
        let declared_version = workflow.declared_version();
        let mut parsed = Some(workflow);
        let sha256 = sha256_hex(source);
        // Two replicas registering the same file race on the unique (name, version) index: the loser retries
        // and then finds the winner's row.
        for _ in 0..3 {
            let txn = self.begin_write().await?;
            let latest = workflows::Entity::find()
                .filter(workflows::Column::Name.eq(name.as_str()))
                .order_by_desc(workflows::Column::Version)
                .one(txn.conn())
                .await?;
            if let Some(latest) = &latest
                && latest.sha256 == sha256
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
                .exec_with_returning(txn.conn())
                .await
            {
                Ok(row) => {
                    txn.commit().await?;
                    tracing::info!(workflow = %row.name, version = row.version, "workflow version registered");
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
        Err(Error::Conflict(format!("workflow {name}")))
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
            cache.insert(record.id, record.clone());
        }
        Ok(record)
    }

    /// Every workflow name with its latest version, sorted by name.
    pub async fn list_workflows(&self) -> Result<Vec<WorkflowSummary>> {
        let rows = workflows::Entity::find()
            .order_by_asc(workflows::Column::Name)
            .order_by_desc(workflows::Column::Version)
            .all(&self.db)
            .await?;
        let mut out: Vec<WorkflowSummary> = Vec::new();
        for row in rows {
            if out.last().is_some_and(|s| s.name == row.name) {
                continue;
            }
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
