//! `opsgate.v1.CatalogService`: the service catalog (`opsgate service add|set|show|list`): the
//! SMO adds and changes services; anyone signed in reads them, with every version's transition.

use opsgate_proto::v1 as pb;
use opsgate_proto::v1::catalog_service_server::CatalogService;
use opsgate_store::{CatalogEntry, ServiceFields};
use tonic::{Request, Response, Status};

use super::{Api, required};
use crate::convert;
use crate::error::status;

fn entry(e: &CatalogEntry) -> pb::CatalogEntry {
    pb::CatalogEntry {
        name: e.name.clone(),
        description: e.description.clone(),
        owner: e.owner.clone(),
        service_manager: e.service_manager.clone(),
        criticality: e.criticality.clone(),
        default_workflow: e.default_workflow.clone(),
        created_at: Some(convert::timestamp(e.created_at)),
        created_by: e.created_by.clone(),
        updated_at: Some(convert::timestamp(e.updated_at)),
        updated_by: e.updated_by.clone(),
    }
}

/// A field as given, trimmed.
fn trimmed(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_owned())
}

impl Api {
    /// Refuses a default workflow that is not registered (a typo would only show at the next
    /// start).
    async fn check_workflow(&self, fields: &ServiceFields) -> Result<(), Status> {
        match fields.default_workflow.as_deref() {
            Some(name) if !name.is_empty() => self
                .store
                .get_workflow(name, None)
                .await
                .map(drop)
                .map_err(status),
            _ => Ok(()),
        }
    }
}

#[tonic::async_trait]
impl CatalogService for Api {
    async fn add_service(
        &self,
        request: Request<pb::AddServiceRequest>,
    ) -> Result<Response<pb::AddServiceResponse>, Status> {
        let caller = self
            .auth
            .changer(&request, "opsgate.v1.CatalogService/AddService")
            .await?;
        let req = request.into_inner();
        let name = required("name", &req.name)?;
        let fields = ServiceFields {
            description: trimmed(Some(req.description)),
            owner: trimmed(Some(req.owner)),
            service_manager: trimmed(Some(req.service_manager)),
            criticality: trimmed(Some(req.criticality)),
            default_workflow: trimmed(Some(req.default_workflow)),
        };
        self.check_workflow(&fields).await?;
        let added = self
            .store
            .add_service(name, &fields, &caller.actor)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::AddServiceResponse {
            service: Some(entry(&added)),
        }))
    }

    async fn set_service(
        &self,
        request: Request<pb::SetServiceRequest>,
    ) -> Result<Response<pb::SetServiceResponse>, Status> {
        let caller = self
            .auth
            .changer(&request, "opsgate.v1.CatalogService/SetService")
            .await?;
        let req = request.into_inner();
        let name = required("name", &req.name)?.to_owned();
        let fields = ServiceFields {
            description: trimmed(req.description),
            owner: trimmed(req.owner),
            service_manager: trimmed(req.service_manager),
            criticality: trimmed(req.criticality),
            default_workflow: trimmed(req.default_workflow),
        };
        if fields == ServiceFields::default() {
            return Err(crate::error::invalid_argument(
                "service",
                "say what changes: a description, owner, service manager, criticality or \
                 default workflow",
            ));
        }
        self.check_workflow(&fields).await?;
        let changed = self
            .store
            .set_service(&name, &fields, &caller.actor)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::SetServiceResponse {
            service: Some(entry(&changed)),
        }))
    }

    async fn get_service(
        &self,
        request: Request<pb::GetServiceRequest>,
    ) -> Result<Response<pb::GetServiceResponse>, Status> {
        self.auth
            .authorize(&request, "opsgate.v1.CatalogService/GetService")
            .await?;
        let req = request.into_inner();
        let name = required("name", &req.name)?;
        let found = self
            .store
            .service(name)
            .await
            .map_err(status)?
            .ok_or_else(|| status(opsgate_store::not_in_catalog(name)))?;
        let versions = self
            .store
            .service_versions(name)
            .await
            .map_err(status)?
            .into_iter()
            .map(|v| pb::ServiceVersion {
                version: v.version,
                transition_id: v.transition_id,
                status: convert::transition_status(v.status).into(),
                workflow_name: v.workflow_name,
                workflow_version: v.workflow_version,
                started_at: Some(convert::timestamp(v.started_at)),
                target_go_live: v.target_go_live.to_string(),
                accepted_at: v.accepted.as_ref().map(|(at, _)| convert::timestamp(*at)),
                accepted_by: v.accepted.map(|(_, by)| by).unwrap_or_default(),
            })
            .collect();
        Ok(Response::new(pb::GetServiceResponse {
            service: Some(entry(&found)),
            versions,
        }))
    }

    async fn list_services(
        &self,
        request: Request<pb::ListServicesRequest>,
    ) -> Result<Response<pb::ListServicesResponse>, Status> {
        self.auth
            .authorize(&request, "opsgate.v1.CatalogService/ListServices")
            .await?;
        let services = self
            .store
            .list_services()
            .await
            .map_err(status)?
            .iter()
            .map(entry)
            .collect();
        Ok(Response::new(pb::ListServicesResponse { services }))
    }
}
