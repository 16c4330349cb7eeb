//! The service catalog (issue "What the SMO hands every transition"): `services`, one row per
//! service the organisation runs, and `service_events`, who added or changed which service.
//! The service names of existing transitions become catalog entries here.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let conn = manager.get_connection();
        let timestamp = match manager.get_database_backend() {
            sea_orm_migration::sea_orm::DbBackend::Postgres => "TIMESTAMPTZ",
            _ => "TEXT",
        };
        let serial = match manager.get_database_backend() {
            sea_orm_migration::sea_orm::DbBackend::Postgres => "BIGSERIAL PRIMARY KEY",
            _ => "INTEGER PRIMARY KEY AUTOINCREMENT",
        };
        conn.execute_unprepared(&format!(
            "CREATE TABLE services (name VARCHAR(200) NOT NULL PRIMARY KEY, description TEXT \
             NOT NULL, owner VARCHAR(200) NOT NULL, service_manager VARCHAR(200) NOT NULL, \
             criticality VARCHAR(64) NOT NULL, default_workflow VARCHAR(200) NOT NULL, \
             created_at {timestamp} NOT NULL, created_by VARCHAR(200) NOT NULL, updated_at \
             {timestamp} NOT NULL, updated_by VARCHAR(200) NOT NULL)"
        ))
        .await?;
        conn.execute_unprepared(&format!(
            "CREATE TABLE service_events (id {serial}, service VARCHAR(200) NOT NULL, kind \
             VARCHAR(64) NOT NULL, actor VARCHAR(200) NOT NULL, at {timestamp} NOT NULL, \
             payload TEXT NOT NULL)"
        ))
        .await?;
        conn.execute_unprepared(
            "CREATE INDEX service_events_service ON service_events (service, id)",
        )
        .await?;
        // Existing service names: entries with the latest transition's workflow as default.
        conn.execute_unprepared(
            "INSERT INTO services (name, description, owner, service_manager, criticality, \
             default_workflow, created_at, created_by, updated_at, updated_by) SELECT \
             t.service_name, '', '', '', '', (SELECT l.workflow_name FROM transitions l WHERE \
             l.service_name = t.service_name ORDER BY l.created_at DESC, l.id DESC LIMIT 1), \
             MIN(t.created_at), 'migration', MIN(t.created_at), 'migration' FROM transitions t \
             GROUP BY t.service_name",
        )
        .await?;
        conn.execute_unprepared(
            "INSERT INTO service_events (service, kind, actor, at, payload) SELECT name, \
             'service_added', 'migration', created_at, '{\"from\":\"existing transitions\"}' \
             FROM services",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let conn = manager.get_connection();
        conn.execute_unprepared("DROP TABLE service_events").await?;
        conn.execute_unprepared("DROP TABLE services").await?;
        Ok(())
    }
}
