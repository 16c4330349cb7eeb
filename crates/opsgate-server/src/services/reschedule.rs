//! `TransitionService.RescheduleTransition`: the project manager (or the SMO) moves the target
//! go-live with a reason; due dates anchored on it move, calendars update, everyone is told.

use chrono::NaiveDate;
use opsgate_domain::{Command, clip};
use opsgate_proto::v1 as pb;
use tonic::{Request, Response, Status};

use super::{Api, Change, required};
use crate::error::invalid_argument;
use crate::idempotency::keep;

const METHOD: &str = "opsgate.v1.TransitionService/RescheduleTransition";

impl Api {
    pub(super) async fn reschedule_transition_rpc(
        &self,
        request: Request<pb::RescheduleTransitionRequest>,
    ) -> Result<Response<pb::RescheduleTransitionResponse>, Status> {
        let (caller, req, recalled) = match self.begin_change(request, METHOD).await? {
            Change::Answered(answer) => return Ok(Response::new(answer)),
            Change::New(caller, req, recalled) => (caller, req, recalled),
        };
        let date = required("target_go_live", &req.target_go_live)?;
        let target_go_live = NaiveDate::parse_from_str(date, "%Y-%m-%d").map_err(|e| {
            invalid_argument(
                "target_go_live",
                format!("'{}' is not a date as YYYY-MM-DD: {e}", clip(date)),
            )
        })?;
        let command = Command::Reschedule {
            target_go_live,
            reason: req.reason,
        };
        let transition = self.command(&req.transition_id, command, &caller).await?;
        let answer = pb::RescheduleTransitionResponse {
            transition: Some(transition),
        };
        keep(&self.store, recalled, &answer).await;
        Ok(Response::new(answer))
    }
}
