//! `opsgate.v1.GateService`: the gate decision a CI pipeline asks for before deploying.

use opsgate_domain::GateDecision;
use opsgate_proto::v1 as pb;
use opsgate_proto::v1::check_gate_request::Target;
use opsgate_proto::v1::gate_service_server::GateService;
use tonic::{Request, Response, Status};

use opsgate_store::TransitionView;

use super::{Api, required, transition_id};
use crate::auth::Caller;
use crate::convert;
use crate::error::{domain_status, invalid_argument, status};
use opsgate_domain::transition::check_service_field;

#[tonic::async_trait]
impl GateService for Api {
    async fn check_gate(
        &self,
        request: Request<pb::CheckGateRequest>,
    ) -> Result<Response<pb::CheckGateResponse>, Status> {
        let caller = self
            .auth
            .authorize(&request, "opsgate.v1.GateService/CheckGate")
            .await?;
        let view = self
            .gate_view(caller.as_ref(), request.into_inner().target)
            .await?;
        let decision = GateDecision::of(&view.workflow.workflow, &view.state);
        Ok(Response::new(convert::gate(&view, &decision)))
    }

    type WatchGateStream = super::watch_gate::WatchStream;

    async fn watch_gate(
        &self,
        request: Request<pb::WatchGateRequest>,
    ) -> Result<Response<Self::WatchGateStream>, Status> {
        self.watch(request).await
    }
}

impl Api {
    /// The transition a gate question names, as it stands now, if `caller` may ask about it.
    pub(crate) async fn gate_view(
        &self,
        caller: Option<&Caller>,
        target: Option<Target>,
    ) -> Result<TransitionView, Status> {
        let view = match target {
            Some(Target::TransitionId(id)) => {
                self.store
                    .get_transition(transition_id("transition_id", &id)?)
                    .await
            }
            Some(Target::Service(service)) => {
                let name = required("service.name", &service.name)?;
                let version = required("service.version", &service.version)?;
                check_service_field("service.name", name).map_err(domain_status)?;
                check_service_field("service.version", version).map_err(domain_status)?;
                if let Some(caller) = caller {
                    // Before the lookup: a pipeline learns nothing of other services.
                    caller.reaches(name)?;
                }
                self.store.find_transition(name, version).await
            }
            None => {
                return Err(invalid_argument(
                    "target",
                    "give a transition_id, or a service name and version",
                ));
            }
        }
        .map_err(status)?;
        if let Some(caller) = caller {
            caller.reaches(&view.state.meta.service_name)?;
        }
        self.expired(view).await
    }
}
