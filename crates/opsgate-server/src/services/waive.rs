//! `TransitionService.WaiveDeliverable`: the SMO lets a deliverable count as done until a
//! moment, with a reason.

use opsgate_domain::Command;
use opsgate_proto::v1 as pb;
use tonic::{Request, Response, Status};

use super::{Api, Change, required};
use crate::convert;
use crate::idempotency::keep;

const METHOD: &str = "opsgate.v1.TransitionService/WaiveDeliverable";

impl Api {
    pub(super) async fn waive_deliverable_rpc(
        &self,
        request: Request<pb::WaiveDeliverableRequest>,
    ) -> Result<Response<pb::WaiveDeliverableResponse>, Status> {
        let (caller, req, recalled) = match self.begin_change(request, METHOD).await? {
            Change::Answered(answer) => return Ok(Response::new(answer)),
            Change::New(caller, req, recalled) => (caller, req, recalled),
        };
        let command = Command::Waive {
            node: required("deliverable_id", &req.deliverable_id)?.to_owned(),
            reason: req.reason,
            until: convert::moment("until", req.until.as_ref())?,
        };
        let transition = self.command(&req.transition_id, command, &caller).await?;
        let answer = pb::WaiveDeliverableResponse {
            transition: Some(transition),
        };
        keep(&self.store, recalled, &answer).await;
        Ok(Response::new(answer))
    }
}
