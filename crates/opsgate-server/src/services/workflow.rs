//! `opsgate.v1.WorkflowService`: register, get and list workflow versions.

use opsgate_proto::v1 as pb;
use opsgate_proto::v1::workflow_service_server::WorkflowService;
use tonic::{Request, Response, Status};

use super::{Api, required};
use crate::convert;
use crate::error::{domain_status, status};
use opsgate_domain::WorkflowName;

#[tonic::async_trait]
impl WorkflowService for Api {
    async fn register_workflow(
        &self,
        request: Request<pb::RegisterWorkflowRequest>,
    ) -> Result<Response<pb::RegisterWorkflowResponse>, Status> {
        let actor = self
            .auth
            .changer(&request, "opsgate.v1.WorkflowService/RegisterWorkflow")
            .await?
            .actor;
        let req = request.into_inner();
        let file = match req.file_name.trim() {
            "" => "<request>",
            name => name,
        };
        let registered = self
            .store
            .register_workflow(file, &req.source, &actor)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::RegisterWorkflowResponse {
            workflow: Some(convert::workflow(&registered.record)),
            created: registered.created,
        }))
    }

    async fn get_workflow(
        &self,
        request: Request<pb::GetWorkflowRequest>,
    ) -> Result<Response<pb::GetWorkflowResponse>, Status> {
        self.auth
            .authorize(&request, "opsgate.v1.WorkflowService/GetWorkflow")
            .await?;
        let req = request.into_inner();
        let name = required("name", &req.name)?;
        WorkflowName::parse(name).map_err(domain_status)?;
        let record = self
            .store
            .get_workflow(name, req.version)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::GetWorkflowResponse {
            workflow: Some(convert::workflow(&record)),
        }))
    }

    async fn list_workflows(
        &self,
        request: Request<pb::ListWorkflowsRequest>,
    ) -> Result<Response<pb::ListWorkflowsResponse>, Status> {
        self.auth
            .authorize(&request, "opsgate.v1.WorkflowService/ListWorkflows")
            .await?;
        let workflows = self.store.list_workflows().await.map_err(status)?;
        Ok(Response::new(pb::ListWorkflowsResponse {
            workflows: workflows
                .into_iter()
                .map(convert::workflow_summary)
                .collect(),
        }))
    }
}
