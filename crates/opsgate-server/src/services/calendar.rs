//! `TransitionService.GetCalendar`: a transition's meetings and dates as iCalendar (`opsgate
//! transition calendar`, and `/transitions/{id}/calendar.ics`), for whoever may read it.

use opsgate_proto::v1 as pb;
use tonic::{Request, Response, Status};

use super::{Api, transition_id};
use crate::error::status;

impl Api {
    pub(super) async fn get_calendar_rpc(
        &self,
        request: Request<pb::GetCalendarRequest>,
    ) -> Result<Response<pb::GetCalendarResponse>, Status> {
        let caller = self
            .auth
            .authorize(&request, "opsgate.v1.TransitionService/GetCalendar")
            .await?;
        let req = request.into_inner();
        let id = transition_id("transition_id", &req.transition_id)?;
        let view = self.store.get_transition(id).await.map_err(status)?;
        self.may_read(caller.as_ref(), &view).await?;
        Ok(Response::new(pb::GetCalendarResponse {
            ics: self.calendar(&view),
        }))
    }

    /// The feed of `view`.
    pub(crate) fn calendar(&self, view: &opsgate_store::TransitionView) -> String {
        let mut options = (*self.calendar).clone();
        options.link = options
            .link
            .map(|base| format!("{base}/transitions/{}", view.id));
        opsgate_domain::calendar::transition_calendar(
            &view.workflow.workflow,
            &view.state,
            &view.id,
            &options,
        )
    }
}
