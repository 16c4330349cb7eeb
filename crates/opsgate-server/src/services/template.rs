//! `TransitionService.GetTemplate`: the template a deliverable starts from, as stored with the
//! workflow version the transition runs (`opsgate template show`, and the transition page's
//! template link), for whoever may read the transition.

use opsgate_proto::v1 as pb;
use tonic::{Request, Response, Status};

use super::{Api, required, transition_id};
use crate::error::status;

impl Api {
    pub(super) async fn get_template_rpc(
        &self,
        request: Request<pb::GetTemplateRequest>,
    ) -> Result<Response<pb::GetTemplateResponse>, Status> {
        let caller = self
            .auth
            .authorize(&request, "opsgate.v1.TransitionService/GetTemplate")
            .await?;
        let req = request.into_inner();
        let id = transition_id("transition_id", &req.transition_id)?;
        let node = required("deliverable_id", &req.deliverable_id)?;
        let view = self.store.get_transition(id).await.map_err(status)?;
        self.may_read(caller.as_ref(), &view).await?;
        self.template(&view, node).await.map(Response::new)
    }

    /// The template of deliverable `node` of `view`.
    pub(crate) async fn template(
        &self,
        view: &opsgate_store::TransitionView,
        node: &str,
    ) -> Result<pb::GetTemplateResponse, Status> {
        let wf = &view.workflow.workflow;
        let Some(deliverable) = wf.position(node).and_then(|i| wf.node(i).deliverable()) else {
            return Err(Status::not_found(format!(
                "workflow {} has no deliverable '{node}'",
                wf.name()
            )));
        };
        let Some(path) = deliverable.template.as_deref() else {
            return Err(Status::not_found(format!(
                "deliverable '{node}' of workflow {} names no template",
                wf.name()
            )));
        };
        let version = view.workflow.version;
        if opsgate_domain::workflow::is_link(path) {
            return Ok(pb::GetTemplateResponse {
                path: path.to_owned(),
                link: path.to_owned(),
                workflow_version: version,
                ..Default::default()
            });
        }
        match self
            .store
            .workflow_template(view.workflow.id, path)
            .await
            .map_err(status)?
        {
            Some(t) => Ok(pb::GetTemplateResponse {
                path: t.path,
                content: t.content,
                sha256: t.sha256,
                link: String::new(),
                workflow_version: version,
            }),
            None => Err(Status::not_found(format!(
                "the template {path} of '{node}' was not stored with version {version} of \
                 workflow {} (it was registered through the API, without its directory; load \
                 it with `opsgate serve --workflows DIR` to store its templates)",
                wf.name()
            ))),
        }
    }
}
