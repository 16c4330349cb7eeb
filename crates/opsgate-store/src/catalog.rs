//! The service catalog: the services the organisation runs, with owner, service manager,
//! criticality and default workflow; who added or changed them (`service_events`); every
//! version's transition. A start for a service not in the catalog adds it in the same
//! transaction ([`catalog_statements`]).

use chrono::{DateTime, NaiveDate, Utc};
use opsgate_domain::{Actor, TransitionStatus};
use sea_orm::{ConnectionTrait, DbBackend, Statement, Value};

use crate::{Error, Result, Store, ph};

/// Most services one listing returns.
pub const MAX_SERVICES: u64 = 10_000;
/// Longest description kept.
pub const MAX_DESCRIPTION: usize = 4096;

/// A service in the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogEntry {
    pub name: String,
    pub description: String,
    pub owner: String,
    pub service_manager: String,
    pub criticality: String,
    pub default_workflow: String,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub updated_at: DateTime<Utc>,
    pub updated_by: String,
}

/// What a service is added with, or changed to (`None`: unchanged).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceFields {
    pub description: Option<String>,
    pub owner: Option<String>,
    pub service_manager: Option<String>,
    pub criticality: Option<String>,
    pub default_workflow: Option<String>,
}

/// One version of a service and its transition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceVersion {
    pub version: String,
    pub transition_id: String,
    pub status: TransitionStatus,
    pub workflow_name: String,
    pub workflow_version: u32,
    pub started_at: DateTime<Utc>,
    pub target_go_live: NaiveDate,
    /// When and by whom the handover was accepted.
    pub accepted: Option<(DateTime<Utc>, String)>,
}

const COLUMNS: &str = "name, description, owner, service_manager, criticality, \
                       default_workflow, created_at, created_by, updated_at, updated_by";

fn entry(r: &sea_orm::QueryResult) -> Result<CatalogEntry> {
    Ok(CatalogEntry {
        name: r.try_get("", "name")?,
        description: r.try_get("", "description")?,
        owner: r.try_get("", "owner")?,
        service_manager: r.try_get("", "service_manager")?,
        criticality: r.try_get("", "criticality")?,
        default_workflow: r.try_get("", "default_workflow")?,
        created_at: r.try_get("", "created_at")?,
        created_by: r.try_get("", "created_by")?,
        updated_at: r.try_get("", "updated_at")?,
        updated_by: r.try_get("", "updated_by")?,
    })
}

/// The statement that records `kind` of service `name` by `actor` at `at`, with `payload`.
fn event(
    backend: DbBackend,
    name: &str,
    kind: &str,
    actor: &str,
    at: DateTime<Utc>,
    payload: &serde_json::Value,
) -> Statement {
    Statement::from_sql_and_values(
        backend,
        format!(
            "INSERT INTO service_events (service, kind, actor, at, payload) VALUES ({}, {}, {}, \
             {}, {})",
            ph(backend, 1),
            ph(backend, 2),
            ph(backend, 3),
            ph(backend, 4),
            ph(backend, 5)
        ),
        [
            name.into(),
            kind.into(),
            actor.into(),
            at.into(),
            payload.to_string().into(),
        ],
    )
}

/// Services remembered as being in the catalog before the memory starts again.
pub(crate) const MAX_KNOWN: usize = 100_000;

/// A service a start may add to the catalog.
pub(crate) struct Added {
    pub service: String,
    pub service_manager: String,
    pub workflow: String,
    pub actor: String,
    pub at: DateTime<Utc>,
}

/// The statements a batch of starts adds to its transaction for services the catalog may lack
/// (one row each): their entries (service manager and workflow from the start) and a
/// `service_added` event for each entry really added; nothing for a service that is there.
/// PostgreSQL: one statement, the events made from what the insert returned, so that a
/// concurrent transaction adding the same service (which waits on the entry's key and then adds
/// nothing) records no second event. SQLite (one writer): the events of the services not there
/// yet, then the entries.
pub(crate) fn catalog_statements(backend: DbBackend, added: &[Added]) -> Vec<Statement> {
    let timestamp = if backend == DbBackend::Postgres {
        "TIMESTAMPTZ"
    } else {
        "TEXT"
    };
    // Placeholders numbered in the order they appear (SQLite's `?` are positional).
    let mut rows = Vec::new();
    let mut values: Vec<Value> = Vec::new();
    for (i, a) in added.iter().enumerate() {
        let p: Vec<String> = (1..=6).map(|k| ph(backend, i * 6 + k)).collect();
        rows.push(format!(
            "({}, {}, {}, {}, CAST({} AS {timestamp}), {})",
            p[0], p[1], p[2], p[3], p[4], p[5]
        ));
        let payload = serde_json::json!({
            "by": "the start of a transition",
            "workflow": a.workflow,
        });
        values.extend([
            a.service.clone().into(),
            a.service_manager.clone().into(),
            a.workflow.clone().into(),
            a.actor.clone().into(),
            a.at.into(),
            payload.to_string().into(),
        ]);
    }
    let v = format!(
        "v (service, service_manager, workflow, actor, at, payload) AS (VALUES {})",
        rows.join(", ")
    );
    let entries = format!(
        "INSERT INTO services ({COLUMNS}) SELECT service, '', '', service_manager, '', \
         workflow, at, actor, at, actor FROM v WHERE true ON CONFLICT (name) DO NOTHING"
    );
    if backend == DbBackend::Postgres {
        return vec![Statement::from_sql_and_values(
            backend,
            format!(
                "WITH {v}, ins AS ({entries} RETURNING name) INSERT INTO service_events \
                 (service, kind, actor, at, payload) SELECT v.service, 'service_added', \
                 v.actor, v.at, v.payload FROM v JOIN ins ON ins.name = v.service"
            ),
            values,
        )];
    }
    vec![
        Statement::from_sql_and_values(
            backend,
            format!(
                "WITH {v} INSERT INTO service_events (service, kind, actor, at, payload) SELECT \
                 service, 'service_added', actor, at, payload FROM v WHERE NOT EXISTS (SELECT 1 \
                 FROM services s WHERE s.name = v.service)"
            ),
            values.clone(),
        ),
        Statement::from_sql_and_values(backend, format!("WITH {v} {entries}"), values),
    ]
}

fn check(fields: &ServiceFields) -> Result<()> {
    let invalid = |field: &'static str, message: String| {
        Err(Error::Domain(opsgate_domain::Error::InvalidArgument {
            field,
            message,
        }))
    };
    if fields
        .description
        .as_ref()
        .is_some_and(|d| d.len() > MAX_DESCRIPTION)
    {
        return invalid("description", format!("at most {MAX_DESCRIPTION} bytes"));
    }
    for (field, value) in [
        ("owner", &fields.owner),
        ("service_manager", &fields.service_manager),
        ("criticality", &fields.criticality),
        ("default_workflow", &fields.default_workflow),
    ] {
        if let Some(v) = value
            && (v.len() > 200 || v.chars().any(char::is_control))
        {
            return invalid(
                field,
                format!(
                    "'{}' must be at most 200 characters, without control characters",
                    opsgate_domain::clip(v)
                ),
            );
        }
    }
    Ok(())
}

impl Store {
    /// Adds service `name` with `fields` as `by`; `AlreadyExists` when it is there.
    pub async fn add_service(
        &self,
        name: &str,
        fields: &ServiceFields,
        by: &Actor,
    ) -> Result<CatalogEntry> {
        opsgate_domain::transition::check_service_field("service name", name)?;
        check(fields)?;
        let at = self.now();
        let txn = self.begin_write().await?;
        let backend = txn.get_database_backend();
        let text = |v: &Option<String>| v.clone().unwrap_or_default();
        let inserted = txn
            .execute_raw(Statement::from_sql_and_values(
                backend,
                format!(
                    "INSERT INTO services ({COLUMNS}) VALUES ({}) ON CONFLICT (name) DO NOTHING",
                    (1..=10)
                        .map(|n| ph(backend, n))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                [
                    name.into(),
                    text(&fields.description).into(),
                    text(&fields.owner).into(),
                    text(&fields.service_manager).into(),
                    text(&fields.criticality).into(),
                    text(&fields.default_workflow).into(),
                    at.into(),
                    by.to_string().into(),
                    at.into(),
                    by.to_string().into(),
                ],
            ))
            .await?;
        if inserted.rows_affected() == 0 {
            txn.rollback().await?;
            return Err(Error::AlreadyExists(format!(
                "service '{}' is in the catalog already: change it with opsgate service set",
                opsgate_domain::clip(name)
            )));
        }
        txn.execute_raw(event(
            backend,
            name,
            "service_added",
            &by.to_string(),
            at,
            &serde_json::json!({ "by": "the catalog" }),
        ))
        .await?;
        txn.commit().await?;
        self.service(name)
            .await?
            .ok_or_else(|| Error::Corrupt("a service just added is missing".into()))
    }

    /// Changes the fields of service `name` that `fields` sets, as `by`; `NotFound` when the
    /// catalog has no such service.
    pub async fn set_service(
        &self,
        name: &str,
        fields: &ServiceFields,
        by: &Actor,
    ) -> Result<CatalogEntry> {
        check(fields)?;
        let at = self.now();
        let txn = self.begin_write().await?;
        let backend = txn.get_database_backend();
        let mut sets = Vec::new();
        let mut values: Vec<Value> = Vec::new();
        let mut changed = serde_json::Map::new();
        for (column, value) in [
            ("description", &fields.description),
            ("owner", &fields.owner),
            ("service_manager", &fields.service_manager),
            ("criticality", &fields.criticality),
            ("default_workflow", &fields.default_workflow),
        ] {
            if let Some(v) = value {
                values.push(v.clone().into());
                sets.push(format!("{column} = {}", ph(backend, values.len())));
                changed.insert(column.to_owned(), v.clone().into());
            }
        }
        values.push(at.into());
        sets.push(format!("updated_at = {}", ph(backend, values.len())));
        values.push(by.to_string().into());
        sets.push(format!("updated_by = {}", ph(backend, values.len())));
        values.push(name.into());
        let done = txn
            .execute_raw(Statement::from_sql_and_values(
                backend,
                format!(
                    "UPDATE services SET {} WHERE name = {}",
                    sets.join(", "),
                    ph(backend, values.len())
                ),
                values,
            ))
            .await?;
        if done.rows_affected() == 0 {
            txn.rollback().await?;
            return Err(not_in_catalog(name));
        }
        txn.execute_raw(event(
            backend,
            name,
            "service_changed",
            &by.to_string(),
            at,
            &serde_json::Value::Object(changed),
        ))
        .await?;
        txn.commit().await?;
        self.service(name)
            .await?
            .ok_or_else(|| Error::Corrupt("a service just changed is missing".into()))
    }

    /// Service `name`, if the catalog has it.
    pub async fn service(&self, name: &str) -> Result<Option<CatalogEntry>> {
        let backend = self.db.get_database_backend();
        let sql = format!(
            "SELECT {COLUMNS} FROM services WHERE name = {}",
            ph(backend, 1)
        );
        self.one_row_fresh(&sql, vec![name.into()])
            .await?
            .map(|r| entry(&r))
            .transpose()
    }

    /// Every service, by name, at most [`MAX_SERVICES`].
    pub async fn list_services(&self) -> Result<Vec<CatalogEntry>> {
        let backend = self.db.get_database_backend();
        let rows = self
            .db
            .query_all_raw(Statement::from_string(
                backend,
                format!("SELECT {COLUMNS} FROM services ORDER BY name LIMIT {MAX_SERVICES}"),
            ))
            .await?;
        rows.iter().map(entry).collect()
    }

    /// Every version of service `name` with its transition, newest first, and who accepted
    /// each handover when.
    pub async fn service_versions(&self, name: &str) -> Result<Vec<ServiceVersion>> {
        let backend = self.db.get_database_backend();
        let rows = self
            .db
            .query_all_raw(Statement::from_sql_and_values(
                backend,
                format!(
                    "SELECT t.id, t.service_version, t.status, t.workflow_name, \
                     t.workflow_version, t.created_at, t.target_go_live, e.at AS accepted_at, \
                     e.actor AS accepted_by FROM transitions t LEFT JOIN events e ON \
                     e.transition_id = t.id AND e.kind = 'handover_accepted' WHERE \
                     t.service_name = {} ORDER BY t.created_at DESC, t.id DESC LIMIT {MAX_SERVICES}",
                    ph(backend, 1)
                ),
                [name.into()],
            ))
            .await?;
        rows.iter()
            .map(|r| {
                let status: String = r.try_get("", "status")?;
                let accepted_at: Option<DateTime<Utc>> = r.try_get("", "accepted_at")?;
                let accepted_by: Option<String> = r.try_get("", "accepted_by")?;
                let version: i32 = r.try_get("", "workflow_version")?;
                Ok(ServiceVersion {
                    version: r.try_get("", "service_version")?,
                    transition_id: r.try_get("", "id")?,
                    status: TransitionStatus::parse(&status).ok_or_else(|| {
                        Error::Corrupt(format!("unknown transition status '{status}'"))
                    })?,
                    workflow_name: r.try_get("", "workflow_name")?,
                    workflow_version: u32::try_from(version).unwrap_or(0),
                    started_at: r.try_get("", "created_at")?,
                    target_go_live: r.try_get("", "target_go_live")?,
                    accepted: accepted_at.zip(accepted_by),
                })
            })
            .collect()
    }
}

/// `NotFound` for a service the catalog lacks, saying how to add it.
pub fn not_in_catalog(name: &str) -> Error {
    Error::NotFound(format!(
        "service '{}' is not in the catalog: the SMO adds it with opsgate service add '{}' \
         --owner NAME --service-manager NAME --criticality tier-2 --default-workflow WORKFLOW",
        opsgate_domain::clip(name),
        opsgate_domain::clip(name)
    ))
}
